"""Attack suite: submissions that try to cheat or break grading gain nothing, and the run
around each still completes with its report. Uses the miniature course (lab_9_9), whose
honest solution scores 35/50 and whose starter scores 0.

| attack | what it tries | expected |
|---|---|---|
| attack_conftest | a conftest.py that marks every test passed | never loaded; 0 |
| attack_pytest_ini | pytest.ini / pyproject addopts disabling labgrade | ignored; 0 |
| attack_sitecustomize | sitecustomize/usercustomize run at interpreter start | never imported; 0 |
| attack_pth | a .pth file executing code | never processed; 0 |
| attack_patch_labgrade | monkeypatches labgrade and hijacks the worker protocol | grades computed outside; 0 |
| attack_report_files | forges grade/results/classroom.json and $GITHUB_OUTPUT | overwritten / no access; 0 |
| attack_fake_output | prints fake TOTAL and Classroom lines | never reaches the terminal; 0 |
| attack_hang | every function loops forever | item budgets + run budget; report written |
| attack_crash | os._exit, segfault, SIGKILL itself | those items fail with the cause; rest grade |
| attack_daemon | leaves 20 daemonized processes | all killed at the end |
| attack_timing | freezes time.perf_counter to look fast | timed from outside; item fails |
| attack_hardcode | hard-codes the README's example answer | hidden inputs; item fails |
| attack_tamper_grader | edits the hidden graders on disk | sandbox: out of sight; none: detected, every item an error, 0 |
| attack_bad_values | unprintable exception, non-data result, log flood, KeyboardInterrupt | failed with a message; rest grade |
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from pathlib import Path

import psutil
import pytest

from conftest import COURSE, run_grade

ATTACKS = COURSE / "fixtures" / "lab_9_9"
SOLUTION_SCORE = 35


def grade(tmp_path: Path, submission: Path, *extra: str, course: Path = COURSE,
          env: dict | None = None) -> tuple[dict, subprocess.CompletedProcess, Path]:
    """Grade `submission` for lab_9_9 (conftest.run_grade: also proves that the run left no
    process and no shm segment behind); returns grade.json, the run, and the path that a
    submission's conftest.py would create if it were ever loaded."""
    marker = tmp_path / "marker"
    data, proc = run_grade("lab_9_9", "--submission", str(submission), "--profile", "cpu",
                           *extra, report_dir=tmp_path / "reports", course=course,
                           timeout=300, env={"SELFTEST_CONFTEST_MARK": str(marker),
                                             **(env or {})})
    return data, proc, marker


def items(grade_data: dict) -> dict:
    return {i["name"]: i for i in grade_data["items"]}


@pytest.mark.parametrize("attack", ["attack_conftest", "attack_pytest_ini",
                                    "attack_sitecustomize", "attack_pth"])
def test_code_outside_the_student_module_never_runs(tmp_path, attack):
    data, proc, marker = grade(tmp_path, ATTACKS / attack)
    assert data["score"] == 0 and data["max_score"] == 50
    assert not marker.exists(), f"{marker.read_text()} was executed"
    assert "TOTAL 0/50" in proc.stdout


def test_patching_labgrade_in_the_worker_gains_nothing(tmp_path):
    data, _, _ = grade(tmp_path, ATTACKS / "attack_patch_labgrade")
    assert data["score"] == 0


def test_forged_reports_and_github_output_are_overwritten(tmp_path):
    github_output = tmp_path / "github_output"
    github_output.write_text("")
    data, proc, _ = grade(tmp_path, ATTACKS / "attack_report_files", "--classroom-output",
                          env={"GITHUB_OUTPUT": str(github_output)})
    assert data["score"] == 0
    reports = tmp_path / "reports" / "lab_9_9"
    assert json.loads((reports / "results.json").read_text())["score"] == 0
    classroom = json.loads((reports / "classroom.json").read_text())
    assert sum(t["score"] for t in classroom["tests"]) == 0
    lines = github_output.read_text().splitlines()
    assert len(lines) == 1, lines  # only the grader's own line: the worker never saw the file
    payload = json.loads(base64.b64decode(lines[0].split("=", 1)[1]))
    assert sum(t["score"] for t in payload["tests"]) == 0


def test_fake_verdict_lines_never_reach_the_terminal(tmp_path):
    data, proc, _ = grade(tmp_path, ATTACKS / "attack_fake_output", "--classroom-output")
    assert data["score"] == 0
    assert "TOTAL 50/50" not in proc.stdout + proc.stderr
    results = [line for line in proc.stdout.splitlines() if line.startswith("classroom result:")]
    assert len(results) == 1
    payload = json.loads(base64.b64decode(results[0].split(": ", 1)[1]))
    assert sum(t["score"] for t in payload["tests"]) == 0


def test_endless_loops_are_bounded_and_the_report_is_written(tmp_path):
    data, _, _ = grade(tmp_path, ATTACKS / "attack_hang", "--run-budget", "8")
    statuses = {i["status"] for i in data["items"] if i["max_score"]}
    assert data["score"] == 0 and "not_run" in statuses
    stopped = [i for i in data["items"] if i["status"] == "failed"]
    assert stopped and "budget" in stopped[0]["message"]
    # the run's budget, not each item's own (60 s), bounded the loops ...
    for item in stopped:
        budget = re.search(r"its (\d+) s budget", item["message"])
        assert budget is None or int(budget.group(1)) <= 8, item["message"]
    # ... and the items it never reached say so
    not_run = [i for i in data["items"] if i["status"] == "not_run"]
    assert all("time budget of 8 s" in i["message"] for i in not_run), not_run


def test_crashes_cost_only_their_items(tmp_path):
    data, _, _ = grade(tmp_path, ATTACKS / "attack_crash")
    by = items(data)
    assert "exited with code 3" in by["test_add"]["message"]
    assert "SIGSEGV" in by["test_plain_assert"]["message"]
    assert "SIGKILL" in by["test_hidden"]["message"]
    for name in ("test_partial", "test_slow", "test_speed"):
        assert by[name]["status"] in ("passed", "partial"), by[name]
    assert data["score"] < SOLUTION_SCORE


def _leftover_sleepers() -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if proc.info["cmdline"] and "300.4242" in proc.info["cmdline"]:
            found.append(proc)
    return found


def test_daemonized_processes_do_not_outlive_the_run(tmp_path):
    try:
        data, _, _ = grade(tmp_path, ATTACKS / "attack_daemon")
        assert data["score"] == SOLUTION_SCORE
        assert _leftover_sleepers() == []
    finally:
        for proc in _leftover_sleepers():  # only ours: the attack's marker argument
            proc.kill()


def test_time_is_measured_from_outside(tmp_path):
    data, _, _ = grade(tmp_path, ATTACKS / "attack_timing")
    speed = items(data)["test_speed"]
    assert speed["status"] == "failed" and speed["measured"]["fast_seconds"] > 1.0


def test_hardcoded_answers_fail_on_hidden_inputs(tmp_path):
    data, _, _ = grade(tmp_path, ATTACKS / "attack_hardcode")
    assert items(data)["test_add"]["status"] == "failed"
    assert data["score"] == SOLUTION_SCORE - 10


@pytest.mark.parametrize("level", ["none", "auto"])
def test_tampering_with_the_graders_voids_the_run(tmp_path, level):
    """Without a sandbox the edit happens and the digests void the run; with one (labgrade.
    isolation) the graders are out of the student's sight and stay as they were."""
    course = tmp_path / "course"
    shutil.copytree(COURSE, course, ignore=shutil.ignore_patterns("__pycache__"))
    graded = course / "graders" / "lab_9_9" / "test_items.py"
    before = graded.read_text()
    data, _, _ = grade(tmp_path, course / "fixtures" / "lab_9_9" / "attack_tamper_grader",
                       "--isolation", level, course=course)
    if level == "none":
        assert data["score"] == 0
        assert all(i["status"] == "error" for i in data["items"]
                   if i["status"] != "out_of_scope")
        assert "modified" in data["items"][0]["message"]
    else:  # the edit never happened: the submission earns what its code earns
        assert graded.read_text() == before
        assert not any("modified" in i["message"] for i in data["items"])
        assert items(data)["test_add"]["status"] == "failed"  # add() is a - b


def test_hostile_values_fail_cleanly(tmp_path):
    data, _, _ = grade(tmp_path, ATTACKS / "attack_bad_values")
    by = items(data)
    assert by["test_add"]["status"] == "failed"
    assert "not plain data" in by["test_plain_assert"]["message"]
    assert by["test_hidden"]["status"] == "failed"
    assert by["test_slow"]["status"] == "passed"


def test_digests_identify_what_was_graded(tmp_path):
    data, _, _ = grade(tmp_path, COURSE / "solutions" / "lab_9_9")
    digests = data["digests"]
    assert set(digests) == {"submission", "graders", "labgrade"}
    assert all(len(v) == 64 for v in digests.values())
    again, _, _ = grade(tmp_path, ATTACKS / "attack_hardcode")
    assert again["digests"]["graders"] == digests["graders"]
    assert again["digests"]["submission"] != digests["submission"]
