"""Whose fault a failed worker call is (no grading run: the Worker on its own).

The student's code failing is a StudentCodeError (a Fail); grader-owned code failing is a
TrustedCodeError (a GraderError) unless it raised StudentFault or the failure came out of
the student's files; `graders.<id>` imports only in a worker given trusted_root."""

from __future__ import annotations

from pathlib import Path

import pytest

from labgrade.scoring import Fail, GraderError
from labgrade.submission import StudentCodeError, TrustedCodeError, Worker

COURSE = Path(__file__).parent / "data" / "course"
NUMPY_IO = "labgrade.probes.numpy_io"
HELPERS = "graders.lab_9_8.helpers"


@pytest.fixture
def student_worker(tmp_path):
    submission = tmp_path / "submission"
    submission.mkdir()
    (submission / "mod.py").write_text(
        "def explode():\n    raise RuntimeError('my function broke')\n\n"
        "class Evil(Exception):\n    def __str__(self):\n        raise ValueError\n\n"
        "def unprintable():\n    raise Evil()\n")
    worker = Worker(submission, log_path=tmp_path / "worker.log").start()
    yield worker
    worker.close()


@pytest.fixture
def grader_worker(tmp_path):
    worker = Worker(tmp_path, log_path=tmp_path / "grader.log", label="grader's worker",
                    trusted_root=COURSE).start()
    yield worker
    worker.close()


def test_student_code_failing_is_the_students(student_worker):
    with pytest.raises(StudentCodeError) as info:
        student_worker.call("mod", "explode")
    assert isinstance(info.value, Fail)
    assert "RuntimeError: my function broke" in str(info.value)
    assert "in explode" in str(info.value)  # the student's own frame


def test_an_unprintable_student_exception_is_described(student_worker):
    with pytest.raises(StudentCodeError, match="unprintable Evil"):
        student_worker.call("mod", "unprintable")
    assert student_worker.alive()


def test_a_probe_calling_student_code_blames_the_student(student_worker, tmp_path):
    with pytest.raises(StudentCodeError, match="my function broke"):
        student_worker.call(NUMPY_IO, "call", str(student_worker.root), "mod", "explode", {},
                            {}, str(tmp_path / "out"))


def test_a_probe_failing_on_its_own_is_a_grader_error(student_worker, tmp_path):
    with pytest.raises(TrustedCodeError) as info:
        student_worker.call(NUMPY_IO, "call", str(student_worker.root), "mod", "explode",
                            {"w": str(tmp_path / "never-written.npy")}, {},
                            str(tmp_path / "out"))
    assert isinstance(info.value, GraderError) and not isinstance(info.value, Fail)
    assert "FileNotFoundError" in str(info.value)
    assert "numpy_io.py" in info.value.worker_traceback  # the full traceback, for staff


def test_a_missing_trusted_module_is_a_grader_error(student_worker):
    with pytest.raises(TrustedCodeError):
        student_worker.call("labgrade.probes.no_such_probe", "run")


def test_graders_modules_need_trusted_root(student_worker, grader_worker):
    with pytest.raises(TrustedCodeError, match="trusted_root"):
        student_worker.call(HELPERS, "square", 3)
    assert grader_worker.call(HELPERS, "square", 3).value == 9


def test_grader_code_blames_the_student_only_through_student_fault(grader_worker):
    with pytest.raises(TrustedCodeError, match="KeyError"):
        grader_worker.call(HELPERS, "broken")
    with pytest.raises(StudentCodeError, match="block_size must be 16, 32 or 64, got 7"):
        grader_worker.call(HELPERS, "check_block_size", {"block_size": 7})
