"""The grader kit (labgrade.kit) on its own: deferred values, student calls through a real
worker, the curve scorer's record, text differences. No engines."""

from __future__ import annotations

import pytest

from labgrade.bench.compare import Comparison
from labgrade.kit import Deferred, Once, call_student, first_difference, profile_view, score_curve
from labgrade.plugin import ScoreCard
from labgrade.runtime.process import ServiceError
from labgrade.scoring import Fail, GraderError, Ungradable
from labgrade.submission import StudentCodeError, Submission


# ------------------------------------------------------------------------- Deferred
def test_deferred_hands_out_its_value():
    engine = Deferred("your engine")
    engine.set({"blocks": 7})
    assert engine.ok and engine.require() == {"blocks": 7}


def test_deferred_replays_the_first_recorded_failure_to_every_item():
    engine = Deferred("your engine")
    with engine.recording("vLLM could not build your engine: "):
        raise StudentCodeError("ValueError: block_size must be a power of two")
    engine.fail("a later, less useful reason")
    assert not engine.ok
    for _ in range(2):
        with pytest.raises(Fail, match="vLLM could not build your engine: ValueError: block"):
            engine.require()


def test_deferred_never_prepared_is_the_graders_fault():
    with pytest.raises(GraderError, match="your server was needed but never prepared"):
        Deferred("your server").require()


def test_deferred_ungradable_and_other_errors_pass_through():
    gpu = Deferred("the GPU engine")
    with gpu.recording():
        raise Ungradable("no NVIDIA GPU here")
    with pytest.raises(Ungradable):
        gpu.require()
    broken = Deferred("x")
    with pytest.raises(KeyError):  # a grader bug is not recorded as the student's failure
        with broken.recording():
            raise KeyError("grader bug")


def test_deferred_ready_turns_a_service_error_into_the_students_failure():
    calls = []

    def wait(server):
        calls.append(server)
        raise ServiceError("exited with code 2", log_tail="unrecognized arguments: --bogus")

    server = Deferred("your server", ready=wait)
    server.set("srv")
    with pytest.raises(Fail, match="your server did not come up: exited with code 2"):
        server.require()
    with pytest.raises(Fail, match="did not come up"):
        server.require()
    assert calls == ["srv"]  # once failed, it stays failed without waiting again


def test_once_runs_once_and_replays_failure():
    runs = []

    def produce():
        runs.append(1)
        raise Fail("the app answered 500")

    once = Once(produce)
    for _ in range(3):
        with pytest.raises(Fail, match="answered 500"):
            once.get()
    assert runs == [1]


# --------------------------------------------------------------------- call_student
@pytest.fixture
def submission(tmp_path):
    root = tmp_path / "sub"
    root.mkdir()
    (root / "deploy.py").write_text(
        "def kwargs(model):\n    return {'model': model}\n"
        "def broken(model):\n    raise ValueError('no engine for ' + model)\n"
        "def wrong_type():\n    return [1, 2]\n"
        "def flag():\n    return True\n")
    sub = Submission(root, "lab_test", tmp_path / "run")
    (tmp_path / "run").mkdir()
    yield sub
    sub.close()


def test_call_student_returns_plain_data(submission):
    assert call_student(submission, "deploy", "kwargs", "m", returns=dict) == {"model": "m"}


def test_call_student_names_the_function_that_failed(submission):
    with pytest.raises(Fail) as info:
        call_student(submission, "deploy", "broken", "tiny")
    assert str(info.value).startswith("broken() failed: ValueError: no engine for tiny")
    assert "deploy.py" in str(info.value)  # the student's own traceback line
    # the hidden case that made it fail, as a mismatch message would name it
    assert str(info.value).endswith("The call: broken('tiny')")


def test_call_student_checks_the_returned_type(submission):
    with pytest.raises(Fail, match=r"wrong_type\(\) must return a dict, got list: \[1, 2\]"):
        call_student(submission, "deploy", "wrong_type", returns=dict)
    with pytest.raises(Fail, match="must return a int, got bool"):
        call_student(submission, "deploy", "flag", returns=int)


def test_profile_view_names_missing_settings():
    settings = {"device": "cpu", "dtype": "float32"}
    assert profile_view(settings, "cpu", "device", served="m") == \
        {"name": "cpu", "device": "cpu", "served": "m"}
    with pytest.raises(KeyError, match="max_model_len"):
        profile_view(settings, "cpu", "max_model_len")


# ---------------------------------------------------------------------- score_curve
def test_score_curve_records_the_measurement_with_its_thresholds():
    card = ScoreCard()
    fraction = score_curve(card, "speedup", 1.25, zero_at=1.0, full_at=1.5,
                           message="batched generation is 1.25x faster")
    assert fraction == pytest.approx(0.5)
    assert card.fraction == pytest.approx(0.5)
    assert card.measured["speedup"] == 1.25
    assert card.measured["curve:speedup"] == {"zero_at": 1.0, "full_at": 1.5}
    assert card.message == "batched generation is 1.25x faster (full marks at 1.5, none at 1)"


def test_score_curve_fails_at_zero_with_the_hint_and_keeps_the_record():
    card = ScoreCard()
    with pytest.raises(Fail, match=r"0.9x \(full marks at 1.5, none at 1\): send all prompts"):
        score_curve(card, "speedup", 0.9, zero_at=1.0, full_at=1.5, message="0.9x",
                    fail_hint="send all prompts in one call")
    assert card.measured["curve:speedup"] == {"zero_at": 1.0, "full_at": 1.5}


def test_score_curve_lower_is_better_and_comparisons():
    card = ScoreCard()
    comparison = Comparison(ratios=(1.2, 1.4, 1.6), baseline=(1.0,) * 3, candidate=(1.0,) * 3)
    assert score_curve(card, "ttft_speedup", comparison, zero_at=1.0, full_at=1.8,
                       message="m") == pytest.approx(0.5)
    assert card.measured["ttft_speedup"] == 1.4
    assert card.measured["ttft_speedup_rounds"] == [1.2, 1.4, 1.6]
    latency = ScoreCard()
    assert score_curve(latency, "p95_ms", 150, zero_at=200, full_at=100, message="m") == 0.5


# -------------------------------------------------------------------- first_difference
def test_first_difference_short_and_long():
    assert first_difference("abcX", "abcd") == \
        "expected 'abcd', got 'abcX' (first difference at character 3)"
    long_want = "a" * 200 + "b" + "c" * 50
    long_got = "a" * 200 + "B" + "c" * 50
    text = first_difference(long_got, long_want)
    assert text.startswith("from character 200 on, expected ...")
    assert "'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaab" in text and "B" in text
    assert first_difference("abc", "abcdef").endswith("(first difference at character 3)")
