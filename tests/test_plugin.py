"""The plugin end to end on a miniature course (tests/data/course, lab_9_9): statuses,
partial credit, timeouts, broken submissions, interruption, isolation, report shapes.
No engine is involved: the subject here is labgrade itself."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

COURSE = Path(__file__).parent / "data" / "course"


def run(tmp_path: Path, *args: str, env: dict | None = None, wait: bool = True):
    marker = tmp_path / "conftest-loaded"
    full_env = {**os.environ, "SELFTEST_CONFTEST_MARK": str(marker), **(env or {})}
    cmd = [sys.executable, "-m", "pytest", *args, "--report-dir", str(tmp_path / "reports")]
    if not wait:
        return subprocess.Popen(cmd, cwd=COURSE, env=full_env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
    return subprocess.run(cmd, cwd=COURSE, env=full_env, capture_output=True, text=True,
                          timeout=300)


def grade_json(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "reports" / "lab_9_9" / "grade.json").read_text())


def by_name(grade: dict) -> dict:
    return {i["name"]: i for i in grade["items"]}


def test_solution_statuses_and_scores(tmp_path):
    proc = run(tmp_path, "labs/lab_9_9", "--grade", "--solution", "--profile", "cpu")
    items = by_name(grade_json(tmp_path))
    assert items["test_add"]["status"] == "passed" and items["test_add"]["score"] == 10
    assert items["test_partial"]["status"] == "partial" and items["test_partial"]["score"] == 5
    assert items["test_partial"]["measured"] == {"correct": 2}
    assert items["test_needs_gpu"]["status"] == "ungradable"
    assert items["test_gpu_only"]["status"] == "out_of_scope"
    assert items["test_grader_bug"]["status"] == "error"
    assert "KeyError" in items["test_grader_bug"]["hidden_detail"]
    assert "tell the course staff" in items["test_grader_bug"]["message"]
    grade = grade_json(tmp_path)
    # max never shrinks for ungradable items; the profile's out-of-scope item leaves it
    assert grade["max_score"] == 50 and grade["score"] == 35
    assert "TOTAL 35/50" in proc.stdout
    # hidden grader source never reaches the terminal
    assert "{}[\"missing\"]" not in proc.stdout and "def test_" not in proc.stdout


def test_profile_table_takes_items_out_of_scope(tmp_path):
    """lab.toml's `not_graded` table of a profile removes items with its reason; the hub
    table (--models hub) can put them back."""
    run(tmp_path, "labs/lab_9_9", "--grade", "--solution", "--profile", "gpu")
    items = by_name(grade_json(tmp_path))
    assert items["test_speed"]["status"] == "out_of_scope"
    assert "not timed on this profile" in items["test_speed"]["message"]
    assert items["test_gpu_only"]["status"] == "passed"
    run(tmp_path, "labs/lab_9_9", "--grade", "--solution", "--profile", "gpu",
        "--models", "hub")
    grade = grade_json(tmp_path)
    assert by_name(grade)["test_speed"]["status"] == "passed"
    assert grade["environment"]["models"] == "hub"


def test_starter_gets_zero_with_actionable_messages(tmp_path):
    run(tmp_path, "labs/lab_9_9", "--grade", "--starter", "--profile", "cpu")
    grade = grade_json(tmp_path)
    assert grade["score"] == 0
    items = by_name(grade)
    assert items["test_add"]["status"] == "failed"
    assert "add: TODO" in items["test_add"]["message"]
    assert "mod.py" in items["test_add"]["message"]  # the student's own traceback line
    assert not (tmp_path / "conftest-loaded").exists(), "a submission conftest was loaded"


def test_syntax_error_costs_items_not_the_run(tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "mod.py").write_text("def add(a, b)\n    return a + b\n")
    run(tmp_path, "labs/lab_9_9", "--grade", "--submission", str(broken), "--profile", "cpu")
    items = by_name(grade_json(tmp_path))
    assert items["test_add"]["status"] == "failed"
    assert "SyntaxError" in items["test_add"]["message"]
    assert items["test_grader_bug"]["status"] == "error"  # the rest still graded


def test_missing_file_is_a_clear_failure(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    run(tmp_path, "labs/lab_9_9", "--grade", "--submission", str(empty), "--profile", "cpu")
    message = by_name(grade_json(tmp_path))["test_add"]["message"]
    assert "mod.py is missing" in message


def test_hang_costs_only_that_item(tmp_path):
    run(tmp_path, "labs/lab_9_9", "--grade", "--solution", "--profile", "cpu",
        env={"SELFTEST_SLEEP": "600", "SELFTEST_TIMEOUT": "3"})
    items = by_name(grade_json(tmp_path))
    assert items["test_slow"]["status"] == "failed"
    assert "budget" in items["test_slow"]["message"]
    assert items["test_plain_assert"]["status"] == "passed"  # a fresh worker took over


def test_interrupt_still_writes_reports(tmp_path):
    proc = run(tmp_path, "labs/lab_9_9", "--grade", "--solution", "--profile", "cpu",
               env={"SELFTEST_SLEEP": "600"}, wait=False)
    report = tmp_path / "reports" / "lab_9_9" / "grade.json"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait until test_slow is running
        if report.exists() and by_name(json.loads(report.read_text()))["test_partial"][
                "status"] != "not_run":
            break
        time.sleep(0.2)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    grade = grade_json(tmp_path)
    assert grade["interrupted"] is True
    items = by_name(grade)
    assert items["test_add"]["status"] == "passed"
    assert items["test_hidden"]["status"] == "not_run"
    assert grade["max_score"] == 50  # items that never ran still count


def test_sigterm_still_writes_reports(tmp_path):
    proc = run(tmp_path, "labs/lab_9_9", "--grade", "--solution", "--profile", "cpu",
               env={"SELFTEST_SLEEP": "600"}, wait=False)
    time.sleep(4)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert grade_json(tmp_path)["interrupted"] is True


def test_report_shapes(tmp_path):
    run(tmp_path, "labs/lab_9_9", "--grade", "--solution", "--profile", "cpu")
    out = tmp_path / "reports" / "lab_9_9"
    grade = grade_json(tmp_path)
    classroom = json.loads((out / "classroom.json").read_text())
    assert set(classroom) == {"version", "status", "max_score", "tests"}
    assert classroom["status"] == "error"  # a grader error must be visible as such
    assert classroom["max_score"] == grade["max_score"]
    assert sum(t["score"] for t in classroom["tests"]) == grade["score"]
    for test in classroom["tests"]:
        assert set(test) == {"name", "status", "score", "message", "test_code", "filename",
                             "line_no", "duration"}
        assert test["status"] in {"pass", "fail", "error"}
    hidden = next(t for t in classroom["tests"] if t["name"] == "test_hidden")
    assert hidden["message"] == ""
    gradescope = json.loads((out / "results.json").read_text())
    assert gradescope["score"] == grade["score"]
    assert isinstance(gradescope["execution_time"], int)
    for test in gradescope["tests"]:
        assert {"name", "score", "max_score", "status", "output", "visibility"} <= set(test)
        assert test["status"] in {"passed", "failed"}
    assert sum(t["max_score"] for t in gradescope["tests"]) == grade["max_score"]
    assert (out / "junit.xml").read_text().startswith("<?xml")


def test_without_grade_runs_public_tests_only(tmp_path):
    proc = run(tmp_path, "labs/lab_9_9")
    assert "1 passed" in proc.stdout
    assert not (tmp_path / "reports").exists()


def test_usage_errors_are_clear(tmp_path):
    proc = run(tmp_path, "labs/lab_9_9", "--solution")
    assert proc.returncode != 0 and "need --grade" in proc.stderr
    proc = run(tmp_path, "README.md", "--grade")
    assert proc.returncode != 0 and "is not a lab" in proc.stderr
