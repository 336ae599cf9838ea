"""A fake lab exercising every scoring path of the plugin (the subject is labgrade itself)."""

import os

import pytest

from labgrade import Fail, Ungradable, curve


HIDDEN_PAIRS = [(-7, 11), (1000, 24)]  # the lab's README only shows add(2, 3) == 5


@pytest.mark.points(10)
def test_add(submission, settings):
    for a, b in [(2, settings["factor"]), *HIDDEN_PAIRS]:
        got = submission.call("mod", "add", a, b)
        if got != a + b:
            raise Fail(f"add({a}, {b}) returned {got!r}, expected {a + b}")


@pytest.mark.points(10)
def test_partial(submission, score):
    """Partial credit from what the grader verifies itself (never from a student's claim)."""
    inputs = (1, 2, 3, 4)
    correct = sum(submission.call("mod", "half", x) == x / 2 for x in inputs)
    score.measure(correct=correct)
    score.set(curve(correct, zero_at=0, full_at=len(inputs)), f"{correct}/4 halves right")


@pytest.mark.points(5)
@pytest.mark.budget(float(os.environ.get("SELFTEST_TIMEOUT", "60")))
def test_slow(submission, helper_service):
    from labgrade.runtime.process import http_ok

    assert http_ok(helper_service), "the helper service must answer"
    assert submission.call("mod", "slow", timeout=30) == "done", "slow() must return 'done'"


@pytest.mark.points(5)
def test_speed(submission, score):
    """Timed from the grading process: nothing the student does inside its own process
    (patching time functions, say) changes what is measured here."""
    result = submission.worker().call("mod", "fast", timeout=30)
    seconds = result.seconds
    score.measure(fast_seconds=round(seconds, 3))
    if result.value != "quick":
        raise Fail(f"fast() returned {result.value!r}, expected 'quick'")
    if seconds > 0.5:
        raise Fail(f"fast() took {seconds:.2f} s; it must return within 0.5 s")


@pytest.mark.points(5)
def test_plain_assert(submission):
    assert submission.call("mod", "flag") is True, "flag() must return True"


@pytest.mark.points(5)
@pytest.mark.visibility("hidden")
def test_hidden(submission):
    assert submission.call("mod", "secret") == 42, "secret() is wrong"


@pytest.mark.points(5)
def test_needs_gpu():
    raise Ungradable("no GPU on this machine")


@pytest.mark.points(5)
@pytest.mark.profiles("gpu")
def test_gpu_only():
    pass


@pytest.mark.points(5)
def test_grader_bug():
    {}["missing"]
