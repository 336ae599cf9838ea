"""Least privilege for student code (labgrade.isolation), attack by attack, before and after.

Each attack submission (tests/data/course/fixtures/lab_9_9/attack_*) is graded twice with
the miniature course: `--isolation none` (before: the attack must really work, or the test
proves nothing) and the default `auto` (after: held). `add()` carries the attack; what it
got back lands in test_add's failure message, as a real leak would.

| attack | before (none) | after (user as root / bwrap) |
|---|---|---|
| attack_read_graders | graders' source in the message | graders/ is an empty tmpfs |
| attack_read_secrets | the grader's token (/proc/<grader>/environ) and a file in its 0700 HOME | EACCES / hidden |
| attack_kill_grader | SIGKILLs the grading process: run dies | EPERM (other uid) / not in sight (PID ns); full score |
| attack_write_reports | a file planted in the report folder | EACCES / hidden |
| attack_fork_bomb | (capped by the attack itself) forks freely | stops at RLIMIT_NPROC: test_add fails, the rest grade |
| attack_disk_fill | (capped by the attack itself) writes freely | one file stops at RLIMIT_FSIZE, many at the scratch tmpfs size |

At every level nothing outlives the grading, even when it is SIGKILLed (the supervisor).
The bwrap level is exercised as an unprivileged user (nobody) with user namespaces.
"""

from __future__ import annotations

import json
import os
import time
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from conftest import (COURSE, ROOT, assert_nothing_left, items_by_name, run_grade,
                      start_grading)

ATTACKS = COURSE / "fixtures" / "lab_9_9"
SOLUTION_SCORE = 35
AS_ROOT = os.geteuid() == 0


def grade(tmp_path: Path, attack: str, level: str, env: dict | None = None,
          check_left: bool = True, alone: bool | None = None
          ) -> tuple[dict, subprocess.CompletedProcess]:
    return run_grade("lab_9_9", "--submission", str(ATTACKS / attack), "--profile", "cpu",
                     "--isolation", level, report_dir=tmp_path / level / "reports",
                     course=COURSE, timeout=300, env=env, check_left=check_left, alone=alone)


def add_message(data: dict) -> str:
    return items_by_name(data)["test_add"]["message"]


@pytest.mark.parametrize("level", ["none", "auto"])
def test_reading_the_graders(tmp_path, level):
    data, proc = grade(tmp_path, "attack_read_graders", level)
    message = add_message(data)
    if level == "none":
        assert "LEAK" in message and "HIDDEN_PAIRS" in message, message
    else:
        assert "LEAK" not in message and "HIDDEN_PAIRS" not in message, message
        assert "DENIED" in message
        assert data["environment"]["isolation"]["level"] in ("user", "bwrap")
        assert f"isolation: {data['environment']['isolation']['level']}" in proc.stdout


@pytest.mark.parametrize("level", ["none", "auto"])
def test_reading_the_graders_env_and_home(tmp_path, level):
    home = tmp_path / "grader-home"
    home.mkdir(mode=0o700)
    (home / "secret.txt").write_text("HOME-SECRET-42")
    (home / "secret.txt").chmod(0o600)
    data, _ = grade(tmp_path, "attack_read_secrets", level,
                    env={"HOME": str(home), "ATTACK_HOME": str(home),
                         "DEPLOY_TOKEN": "TOKEN-SECRET-42"})
    message = add_message(data)
    leaked = [s for s in ("TOKEN-SECRET-42", "HOME-SECRET-42") if s in message]
    if level == "none":
        assert leaked == ["TOKEN-SECRET-42", "HOME-SECRET-42"], message
    else:
        assert leaked == [], message


@pytest.mark.parametrize("level", ["none", "auto"])
def test_signalling_the_grader(tmp_path, level):
    data, proc = grade(tmp_path, "attack_kill_grader", level)
    if level == "none":  # the run died with nothing graded; its processes went with it
        assert proc.returncode == -9
        assert items_by_name(data)["test_add"]["status"] == "not_run"
    else:
        assert data["score"] == SOLUTION_SCORE and not data["interrupted"]


@pytest.mark.parametrize("level", ["none", "auto"])
def test_writing_into_the_reports(tmp_path, level):
    reports = tmp_path / level / "reports"
    data, _ = grade(tmp_path, "attack_write_reports", level,
                    env={"ATTACK_REPORT_DIR": str(reports / "lab_9_9")})
    planted = (reports / "lab_9_9" / "planted.json").exists()
    assert planted == (level == "none"), add_message(data)


@pytest.mark.parametrize("level", ["none", "auto"])
def test_fork_bomb_costs_one_item(tmp_path, level):
    # alone: the cap counts every process of the uid, a neighbour grading's engine included
    data, _ = grade(tmp_path, "attack_fork_bomb", level,
                    env={"LABGRADE_SANDBOX_NPROC": "64", "ATTACK_MAX_FORKS": "150"}, alone=True)
    message = add_message(data)
    isolation = data["environment"]["isolation"]
    message += f" [isolation {isolation['level']}: {isolation['reason']}]"
    if level == "none" and not AS_ROOT:  # the grader's own uid: the cap sits above it
        return
    if level == "none":
        assert "LEAK forked 150" in message or "stopped after" in message, message
    else:
        assert "fork bomb stopped after" in message and "Resource temporarily" in message
    assert data["score"] == SOLUTION_SCORE - 10  # only test_add is lost


@pytest.mark.parametrize("level", ["none", "auto"])
def test_disk_fill_costs_one_item(tmp_path, level):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    data, _ = grade(tmp_path, "attack_disk_fill", level,
                    env={"LABGRADE_SANDBOX_FSIZE_GB": str(16 / 1024),
                         "LABGRADE_SANDBOX_SCRATCH": "48m", "ATTACK_MAX_MB": "64",
                         "TMPDIR": str(scratch)})
    message = add_message(data)
    assert "one file stopped at 16 MB" in message, message  # RLIMIT_FSIZE, every level
    if level != "none":
        assert "No space left" in message and "in all" in message, message
        assert not any(scratch.iterdir())  # it wrote into its private tmpfs, not here
    assert data["score"] == SOLUTION_SCORE - 10


def test_services_die_with_a_killed_grader(tmp_path):
    """The grading process SIGKILLed mid-run (by anyone): its worker, the student's
    daemonized children and the services go with it (conftest's leftovers check)."""
    grading = start_grading("lab_9_9", "--submission", str(ATTACKS / "attack_daemon"),
                            "--profile", "cpu", "--isolation", "auto",
                            report_dir=tmp_path / "reports", course=COURSE,
                            env={"SELFTEST_SLEEP": "60"})
    grading.wait_until_grading()
    deadline = 60

    while deadline and "slow" not in grading.grade_path.read_text():
        time.sleep(0.5)
        deadline -= 1
    time.sleep(2)  # inside slow(): worker, its daemons and the helper service all running
    grading.proc.kill()
    grading.proc.wait()
    grading.slot.release()

    assert_nothing_left(grading)


@pytest.mark.skipif(not AS_ROOT or shutil.which("setpriv") is None,
                    reason="needs root to become an unprivileged user for the test")
@pytest.mark.parametrize("attack", ["attack_read_graders", "attack_kill_grader"])
def test_bwrap_level_as_an_unprivileged_user(attack):
    """The whole grading runs as `nobody` (the interpreter under /root made reachable in a
    private mount namespace of the test): auto picks bwrap, and the attacks are held."""
    work = Path(tempfile.mkdtemp(prefix="labgrade-bwrap-test-"))  # pytest's tmp is 0700
    try:
        stage, reports, home = work / "stage", work / "reports", work / "home"
        for folder in (work, stage, reports, home):
            folder.mkdir(exist_ok=True)
            os.chown(folder, 65534, 65534)
        python_root = Path(sys.base_prefix).resolve()
        script = (f"mkdir -p {stage}/py && mount --bind {python_root} {stage}/py && "
                  f"mount -t tmpfs -o mode=755 tmpfs /root && mkdir -p {python_root} && "
                  f"mount --move {stage}/py {python_root} && exec setpriv --reuid=65534 "
                  f"--regid=65534 --clear-groups env HOME={home} {sys.executable} -m pytest "
                  f"labs/lab_9_9 --grade -p no:cacheprovider --submission {ATTACKS / attack} "
                  f"--profile cpu --report-dir {reports}")
        proc = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True,
                              text=True, timeout=300, cwd=COURSE)
        grade_json = reports / "lab_9_9" / "grade.json"
        assert grade_json.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
        data = json.loads(grade_json.read_text())
    finally:
        shutil.rmtree(work, ignore_errors=True)
    assert data["environment"]["isolation"]["level"] == "bwrap", proc.stdout[-3000:]
    if attack == "attack_read_graders":
        assert "HIDDEN_PAIRS" not in add_message(data) and "DENIED" in add_message(data)
    else:
        assert data["score"] == SOLUTION_SCORE, proc.stdout[-3000:]


@pytest.mark.parametrize("level", ["none", "auto"])
def test_issue_19_attack_on_lab_2_1(tmp_path, level):
    """The issue's own attack: the lab_2_1 solution whose generate_batch() returns the
    graders' source and the grading process's environment (read through /proc)."""
    attack = ROOT / "fixtures" / "lab_2_1" / "attack_read_graders"
    data, _ = run_grade("lab_2_1", "--submission", str(attack), "--profile", "cpu",
                        "--isolation", level, "-k", "one_output_per_prompt",
                        report_dir=tmp_path / "reports", timeout=600,
                        env={"DEPLOY_TOKEN": "TOKEN-SECRET-42"})
    message = items_by_name(data)["test_one_output_per_prompt_in_order"]["message"]
    if level == "none":
        assert "LEAK graders" in message and "TOKEN-SECRET-42" in message, message
    else:
        assert "LEAK" not in message and "TOKEN-SECRET-42" not in message, message
