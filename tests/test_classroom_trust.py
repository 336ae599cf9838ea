"""Trust, end to end on GitHub Classroom: attack submissions run through the released
workflow's own shell steps (as the Actions runner runs them), and the score the reporter
would post is what counts.

| attack | what it tries | expected |
|---|---|---|
| attack_forge_classroom | writes .labgrade/<lab>/classroom.json (100/100), appends a forged result= to the grader's $GITHUB_OUTPUT, SIGKILLs the grading | isolation none: Points 0/50, the grading step red; default isolation: nothing forged, nothing killed, the lab's real points |

With `--isolation none` (the level of a machine that offers neither a sandbox user nor user
namespaces) the attack reaches the grading process, and the delivery (the step output
written by the wrapper, never by pytest) is the defence; at the default level the student's
code cannot write the repository's results or signal the grading at all.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
from pathlib import Path

import classroom_sim as sim
import pytest

from labgrade import cli

COURSE = Path(__file__).parent / "data" / "course"
ATTACKS = COURSE / "fixtures" / "lab_9_9"


def _attacked_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "student-repo"
    assert cli.main(["release", "lab_9_9", "--out", str(repo), "--root", str(COURSE),
                     "--graders-repo", "course-staff/graders"]) == 0
    shutil.copy(ATTACKS / "attack_forge_classroom" / "mod.py", repo / "labs" / "lab_9_9")
    sim.fake_private_checkout(repo, COURSE)
    return repo


def test_forged_classroom_result_and_killed_grading_post_zero(tmp_path):
    repo = _attacked_repo(tmp_path)
    env = {**os.environ, "SELFTEST_CONFTEST_MARK": str(tmp_path / "conftest-loaded"),
           "LABGRADE_ISOLATION": "none"}
    outputs, ran = sim.run_job(repo, env)
    assert ran == [("Put the graders in place", 0), ("Grade lab_9_9", 1)]
    # the attack did what it meant to: the forged file is there, the grading was killed
    forged = repo / ".labgrade" / "lab_9_9" / "classroom.json"
    assert json.loads(forged.read_text())["max_score"] == 100
    partial = tmp_path / "runner-temp" / "labgrade" / "lab_9_9" / "grade.json"
    assert json.loads(partial.read_text())["interrupted"]  # killed before its final report
    # ... and gained nothing: the step output is the lab's own zero result
    result = json.loads(base64.b64decode(outputs["lab99"]["result"]))
    assert result["max_score"] == 50 and result["status"] == "error"
    assert sum(t["score"] for t in result["tests"]) == 0
    reporter = sim.steps_of(repo)[-1]
    assert sim.reporter_points(reporter, outputs) == "Points 0/50"
    node = sim.node_reporter(reporter, outputs)
    if node is not None:
        assert sim.posted_points(node) == "Points 0/50", node.stdout + node.stderr
        assert node.returncode == 1


def test_isolated_student_code_can_neither_forge_nor_kill(tmp_path):
    """The default level: the forge writes nothing, the kill misses, the grading finishes
    and the reporter posts what the graders measured (the attack's own failures included)."""
    repo = _attacked_repo(tmp_path)
    env = {**os.environ, "SELFTEST_CONFTEST_MARK": str(tmp_path / "conftest-loaded")}
    env.pop("LABGRADE_ISOLATION", None)
    outputs, ran = sim.run_job(repo, env)
    grade = json.loads((tmp_path / "runner-temp" / "labgrade" / "lab_9_9" / "grade.json")
                       .read_text())
    isolation = grade["environment"]["isolation"]
    if isolation["level"] == "none" and "--isolation none" not in isolation["reason"]:
        assert not (Path("/usr/bin/bwrap").exists() or os.geteuid() == 0), isolation
        pytest.skip(f"no isolation level works on this machine: {isolation['reason']}")
    assert ran == [("Put the graders in place", 0), ("Grade lab_9_9", 0)], isolation
    assert not grade["interrupted"]
    assert not (repo / ".labgrade" / "lab_9_9" / "classroom.json").exists()
    result = json.loads(base64.b64decode(outputs["lab99"]["result"]))
    assert result["max_score"] == 50
    posted = sum(t["score"] for t in result["tests"])
    assert posted == grade["score"] < 50
    reporter = sim.steps_of(repo)[-1]
    assert sim.reporter_points(reporter, outputs) == f"Points {grade['score']:g}/50"
