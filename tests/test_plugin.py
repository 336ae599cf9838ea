"""The plugin end to end on a miniature course (tests/data/course): statuses, partial
credit, budgets, broken submissions, interruption, isolation, report shapes (lab_9_9);
whose fault a failure in a worker is (lab_9_8); marker checks at collection.
No engine is involved: the subject here is labgrade itself."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import COURSE, items_by_name as by_name, run_grade, start_grading


def _env(tmp_path: Path, env: dict | None) -> dict:
    # the starter's conftest.py writes this file if it is ever loaded (it must not be)
    return {"SELFTEST_CONFTEST_MARK": str(tmp_path / "conftest-loaded"), **(env or {})}


def grade_course(tmp_path: Path, lab: str, *args: str, env: dict | None = None,
          course: Path = COURSE) -> tuple[dict, subprocess.CompletedProcess]:
    """`pytest labs/<lab> --grade <args>` in the miniature course: grade.json and the run."""
    return run_grade(lab, *args, report_dir=tmp_path / "reports", env=_env(tmp_path, env),
                     course=course, timeout=300)


def plain_pytest(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """pytest without --grade (public tests, usage errors): nothing is graded."""
    return subprocess.run([sys.executable, "-m", "pytest", *args, "--report-dir",
                           str(tmp_path / "reports")], cwd=COURSE, capture_output=True,
                          text=True, timeout=300, env={**os.environ, **_env(tmp_path, None)})


def test_solution_statuses_and_scores(tmp_path):
    graded, proc = grade_course(tmp_path, "lab_9_9", "--solution", "--profile", "cpu")
    items = by_name(graded)
    assert items["test_add"]["status"] == "passed" and items["test_add"]["score"] == 10
    assert items["test_partial"]["status"] == "partial" and items["test_partial"]["score"] == 5
    assert items["test_partial"]["measured"] == {"correct": 2}
    assert items["test_needs_gpu"]["status"] == "ungradable"
    assert items["test_gpu_only"]["status"] == "out_of_scope"
    assert items["test_grader_bug"]["status"] == "error"
    assert "KeyError" in items["test_grader_bug"]["hidden_detail"]
    assert "tell the course staff" in items["test_grader_bug"]["message"]
    # max never shrinks for ungradable items; the profile's out-of-scope item leaves it
    assert graded["max_score"] == 50 and graded["score"] == 35
    assert "TOTAL 35/50" in proc.stdout
    # hidden grader source never reaches the terminal
    assert "{}[\"missing\"]" not in proc.stdout and "def test_" not in proc.stdout


def test_profile_table_takes_items_out_of_scope(tmp_path):
    """lab.toml's `not_graded` table of a profile removes items with its reason; the hub
    table (--models hub) can put them back."""
    items = by_name(grade_course(tmp_path, "lab_9_9", "--solution", "--profile", "gpu")[0])
    assert items["test_speed"]["status"] == "out_of_scope"
    assert "not timed on this profile" in items["test_speed"]["message"]
    assert items["test_gpu_only"]["status"] == "passed"
    hub, _ = grade_course(tmp_path, "lab_9_9", "--solution", "--profile", "gpu", "--models",
                          "hub")
    assert by_name(hub)["test_speed"]["status"] == "passed"
    assert hub["environment"]["models"] == "hub"


def test_starter_gets_zero_with_actionable_messages(tmp_path):
    starter, _ = grade_course(tmp_path, "lab_9_9", "--starter", "--profile", "cpu")
    assert starter["score"] == 0
    items = by_name(starter)
    assert items["test_add"]["status"] == "failed"
    assert "add: TODO" in items["test_add"]["message"]
    assert "mod.py" in items["test_add"]["message"]  # the student's own traceback line
    assert not (tmp_path / "conftest-loaded").exists(), "a submission conftest was loaded"


def test_syntax_error_costs_items_not_the_run(tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "mod.py").write_text("def add(a, b)\n    return a + b\n")
    items = by_name(grade_course(tmp_path, "lab_9_9", "--submission", str(broken), "--profile",
                          "cpu")[0])
    assert items["test_add"]["status"] == "failed"
    assert "SyntaxError" in items["test_add"]["message"]
    assert items["test_grader_bug"]["status"] == "error"  # the rest still graded


def test_missing_file_is_a_clear_failure(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    graded, _ = grade_course(tmp_path, "lab_9_9", "--submission", str(empty), "--profile", "cpu")
    message = by_name(graded)["test_add"]["message"]
    assert "mod.py is missing" in message


def test_hang_costs_only_that_item(tmp_path):
    graded, _ = grade_course(tmp_path, "lab_9_9", "--solution", "--profile", "cpu",
                      env={"SELFTEST_SLEEP": "600", "SELFTEST_TIMEOUT": "3"})
    items = by_name(graded)
    assert items["test_slow"]["status"] == "failed"
    assert "budget" in items["test_slow"]["message"]
    assert items["test_plain_assert"]["status"] == "passed"  # a fresh worker took over


def test_interrupt_still_writes_reports(tmp_path):
    grading = start_grading("lab_9_9", "--solution", "--profile", "cpu", course=COURSE,
                            report_dir=tmp_path / "reports",
                            env=_env(tmp_path, {"SELFTEST_SLEEP": "600"}))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait until test_slow is running
        if grading.grade_path.exists() and by_name(json.loads(grading.grade_path.read_text()))[
                "test_partial"]["status"] != "not_run":
            break
        time.sleep(0.2)
    time.sleep(1.0)
    grading.interrupt()
    graded, _ = grading.finish(timeout=60)
    assert graded["interrupted"] is True
    items = by_name(graded)
    assert items["test_add"]["status"] == "passed"
    assert items["test_hidden"]["status"] == "not_run"
    assert graded["max_score"] == 50  # items that never ran still count


def test_sigterm_still_writes_reports(tmp_path):
    grading = start_grading("lab_9_9", "--solution", "--profile", "cpu", course=COURSE,
                            report_dir=tmp_path / "reports",
                            env=_env(tmp_path, {"SELFTEST_SLEEP": "600"}))
    time.sleep(4)
    grading.proc.terminate()
    graded, _ = grading.finish(timeout=60)
    assert graded["interrupted"] is True


def test_report_shapes(tmp_path):
    graded, _ = grade_course(tmp_path, "lab_9_9", "--solution", "--profile", "cpu")
    out = tmp_path / "reports" / "lab_9_9"
    classroom = json.loads((out / "classroom.json").read_text())
    assert set(classroom) == {"version", "status", "max_score", "tests"}
    assert classroom["status"] == "error"  # a grader error must be visible as such
    assert classroom["max_score"] == graded["max_score"]
    assert sum(t["score"] for t in classroom["tests"]) == graded["score"]
    for test in classroom["tests"]:
        assert set(test) == {"name", "status", "score", "message", "test_code", "filename",
                             "line_no", "duration"}
        assert test["status"] in {"pass", "fail", "error"}
    hidden = next(t for t in classroom["tests"] if t["name"].startswith("test_hidden"))
    assert hidden["message"] == ""
    gradescope = json.loads((out / "results.json").read_text())
    assert gradescope["score"] == graded["score"]
    assert isinstance(gradescope["execution_time"], int)
    for test in gradescope["tests"]:
        assert {"name", "score", "max_score", "status", "output", "visibility"} <= set(test)
        assert test["status"] in {"passed", "failed"}
    assert sum(t["max_score"] for t in gradescope["tests"]) == graded["max_score"]
    assert (out / "junit.xml").read_text().startswith("<?xml")


def test_without_grade_runs_public_tests_only(tmp_path):
    proc = plain_pytest(tmp_path, "labs/lab_9_9")
    assert "1 passed" in proc.stdout
    assert not (tmp_path / "reports").exists()


def test_usage_errors_are_clear(tmp_path):
    proc = plain_pytest(tmp_path, "labs/lab_9_9", "--solution")
    assert proc.returncode != 0 and "need --grade" in proc.stderr
    proc = plain_pytest(tmp_path, "README.md", "--grade")
    assert proc.returncode != 0 and "is not a lab" in proc.stderr


def test_whose_fault_a_worker_failure_is(tmp_path):
    """Student code that raises fails its item, naming the function; grader-owned code
    (a labgrade probe, a graders.<id> module in a grader-owned worker) that breaks is a
    grader error with its traceback for the staff only, unless it raised StudentFault."""
    graded, proc = grade_course(tmp_path, "lab_9_8", "--solution", "--profile", "cpu")
    items = by_name(graded)
    student = items["test_student_exception"]
    assert student["status"] == "failed"
    assert "explode() failed: RuntimeError: my function broke" in student["message"]
    assert "mod.py" in student["message"]  # the student's own traceback line
    through_probe = items["test_probe_calling_student_code"]
    assert through_probe["status"] == "failed" and "explode() failed" in through_probe["message"]
    for name, cause in (("test_probe_bug", "FileNotFoundError"),
                        ("test_grader_module_bug", "KeyError")):
        item = items[name]
        assert item["status"] == "error", item
        assert "tell the course staff" in item["message"]
        assert cause not in item["message"] and cause in item["hidden_detail"]
        assert "in the worker" in item["hidden_detail"]
    assert cause not in proc.stdout  # grader tracebacks never reach the terminal
    blamed = items["test_grader_module_blames_student"]
    assert blamed["status"] == "failed"
    assert blamed["message"].startswith("block_size must be 16, 32 or 64, got 7")
    # graders.<id> imports only in a worker given trusted_root
    assert items["test_grader_module_runs"]["status"] == "passed"
    assert items["test_student_worker_cannot_import_graders"]["status"] == "passed"


BAD_MARKERS = {
    "no_points": ("", "@pytest.mark.points is missing"),
    "zero_points": ("@pytest.mark.points(0)", "must be a positive number"),
    "bad_visibility": ("@pytest.mark.points(5)\n@pytest.mark.visibility('hiden')",
                       "visibility('hiden') is not a visibility level"),
    "zero_budget": ("@pytest.mark.points(5)\n@pytest.mark.budget(0)",
                    "positive number of seconds"),
    "unknown_profile": ("@pytest.mark.points(5)\n@pytest.mark.profiles('tpu')",
                        "must name profiles among cpu, gpu"),
    "timeout_marker": ("@pytest.mark.points(5)\n@pytest.mark.timeout(30)",
                       "write @pytest.mark.budget(seconds)"),
}


@pytest.mark.parametrize("case", sorted(BAD_MARKERS))
def test_bad_markers_are_collection_errors(tmp_path, case):
    """A grader item with a missing or wrong marker stops the run at collection with a
    message naming the test and the fix (it never scores 0/0 or leaks hidden feedback)."""
    course = tmp_path / "course"
    shutil.copytree(COURSE, course, ignore=shutil.ignore_patterns("__pycache__"))
    decorators, expected = BAD_MARKERS[case]
    (course / "graders" / "lab_9_9" / "test_markers.py").write_text(
        f"import pytest\n\n\n{decorators}\ndef test_{case}():\n    pass\n")
    graded, proc = grade_course(tmp_path, "lab_9_9", "--solution", "--profile", "cpu",
                                course=course)
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, proc.stdout + proc.stderr
    assert "error during collection" in proc.stdout
    assert f"graders/lab_9_9/test_markers.py::test_{case}: " in proc.stdout
    assert expected in proc.stdout
    assert graded["interrupted"] is True  # Classroom sees an error, never a clean 0/0
