"""Failures inside workers: the student's are `failed`, the grader's own are `error`."""

import pytest

from labgrade import Fail
from labgrade.kit import call_student
from labgrade.submission import StudentCodeError, TrustedCodeError

NUMPY_IO = "labgrade.probes.numpy_io"
HELPERS = "graders.lab_9_8.helpers"


@pytest.mark.points(5)
def test_student_exception(submission):
    call_student(submission, "mod", "explode")


@pytest.mark.points(5)
def test_probe_calling_student_code(submission, run_dir):
    """A labgrade probe in the student's worker calls the student's function, which raises."""
    try:
        submission.call(NUMPY_IO, "call", str(submission.path), "mod", "explode", {}, {},
                        str(run_dir / "out"))
    except StudentCodeError as exc:
        raise Fail(f"explode() failed: {exc}") from None


@pytest.mark.points(5)
def test_probe_bug(submission, run_dir):
    """A labgrade probe in the student's worker breaks on the grader's own input."""
    submission.call(NUMPY_IO, "call", str(submission.path), "mod", "explode",
                    {"w": str(run_dir / "never-written.npy")}, {}, str(run_dir / "out"))


@pytest.mark.points(5)
def test_grader_module_runs(grader_worker):
    assert grader_worker.call(HELPERS, "square", 3).value == 9


@pytest.mark.points(5)
def test_grader_module_bug(grader_worker):
    grader_worker.call(HELPERS, "broken")


@pytest.mark.points(5)
def test_grader_module_blames_student(submission, grader_worker):
    settings = call_student(submission, "mod", "settings", returns=dict)
    grader_worker.call(HELPERS, "check_block_size", settings)


@pytest.mark.points(5)
def test_student_worker_cannot_import_graders(submission):
    with pytest.raises(TrustedCodeError, match="trusted_root"):
        submission.call(HELPERS, "square", 3)
