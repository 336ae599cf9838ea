"""A fake lab exercising every scoring path of the plugin (the subject is labgrade itself)."""

import os

import pytest

from labgrade import Fail, Ungradable, curve


@pytest.mark.points(10)
def test_add(submission, settings):
    got = submission.call("mod", "add", 2, settings["factor"])
    if got != 5:
        raise Fail(f"add(2, 3) returned {got!r}, expected 5")


@pytest.mark.points(10)
def test_partial(submission, score):
    ratio = submission.call("mod", "ratio")
    score.measure(ratio=ratio)
    score.set(curve(ratio, zero_at=1.0, full_at=2.0), f"ratio {ratio}")


@pytest.mark.points(5)
@pytest.mark.timeout(float(os.environ.get("SELFTEST_TIMEOUT", "60")))
def test_slow(submission):
    assert submission.call("mod", "slow", timeout=30) == "done", "slow() must return 'done'"


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
