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
            workflow.render(["lab_2_1"], workflow.WorkflowOptions(**bad))


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
        assert reporter["env"][f"{step['id'].upper()}_RESULTS"] == (
            f"${{{{ steps.{step['id']}.outputs.result }}}}")


# ---------------------------------------------------------------- Classroom, simulated
def reporter_points(reporter_step: dict, outputs: dict[str, dict[str, str]]) -> str:
    """autograding-grading-reporter@v1 (src/main.js, notify-classroom.js), in Python:
    each runner's `<RUNNER>_RESULTS` env var is base64 JSON; Points = sum of tests[].score
    over sum of max_score."""
    env = {}
    for name, value in reporter_step["env"].items():
        m = re.fullmatch(r"\$\{\{ steps\.([A-Za-z0-9_-]+)\.outputs\.([A-Za-z0-9_]+) \}\}", value)
        env[name] = outputs.get(m.group(1), {}).get(m.group(2), "") if m else value
    total = maximum = 0
    for runner in filter(None, re.split(r"[\s,]", reporter_step["with"]["runners"])):
        results = json.loads(base64.b64decode(env[f"{runner.strip().upper()}_RESULTS"]))
        if results["max_score"]:
            maximum += results["max_score"]
            total += sum(t["score"] for t in results["tests"])
    return f"Points {total:g}/{maximum:g}"


def run_step(step: dict, cwd: Path, env: dict) -> tuple[subprocess.CompletedProcess, dict]:
    output = cwd.parent / f"github_output_{step.get('id', 'x')}"
    output.write_text("")
    proc = subprocess.run(["bash", "-e", "-c", step["run"]], cwd=cwd, capture_output=True,
                          text=True, timeout=300, env={**env, "GITHUB_OUTPUT": str(output)})
    values = dict(line.split("=", 1) for line in output.read_text().splitlines() if "=" in line)
    return proc, values


def test_classroom_result_reaches_the_reporter(tmp_path):
    """Release lab_9_9, fake the private checkout, run the workflow's own shell steps, and
    feed the step output to a Python port of the reporter: Points X/Y == grade.json."""
    repo = tmp_path / "student-repo"
    assert do_release(repo, "lab_9_9", COURSE) == 0
    # the student's work (the reference answer, so the score is not trivially 0) ...
    shutil.copy(COURSE / "solutions" / "lab_9_9" / "mod.py", repo / "labs" / "lab_9_9")
    # ... and a planted graders/ of their own, which must not survive
    (repo / "graders" / "lab_9_9").mkdir(parents=True)
    (repo / "graders" / "lab_9_9" / "test_free.py").write_text("def test_free(): pass\n")
    # what actions/checkout leaves for the private repository
    private = repo / ".graders"
    shutil.copytree(COURSE / "graders", private / "graders",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(repo / "labgrade", private / "labgrade")
    (private / "labgrade" / "COURSE_COPY").write_text("")
    os.symlink(Path(sys.executable).parents[1], repo / ".venv")  # `make setup`, done already

    wf = yaml.safe_load((repo / workflow.WORKFLOW_PATH).read_text())
    steps = wf["jobs"][workflow.JOB_ID]["steps"]
    env = {**os.environ, "SELFTEST_CONFTEST_MARK": str(tmp_path / "conftest-loaded")}
    outputs: dict[str, dict[str, str]] = {}
    for step in steps:
        if step["name"] == "Put the graders in place" or step["name"].startswith("Grade "):
            proc, values = run_step(step, repo, env)
            assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
            if "id" in step:
                outputs[step["id"]] = values
    assert not (repo / ".graders").exists()
    assert not (repo / "graders" / "lab_9_9" / "test_free.py").exists()
    assert (repo / "labgrade" / "COURSE_COPY").exists()  # the course's framework copy

    grade = json.loads((repo / ".labgrade" / "lab_9_9" / "grade.json").read_text())
    assert grade["score"] > 0
    decoded = json.loads(base64.b64decode(outputs["lab99"]["result"]))
    assert decoded["max_score"] == grade["max_score"]
    assert sum(t["score"] for t in decoded["tests"]) == grade["score"]
    in_scope = [i for i in grade["items"] if i["status"] != "out_of_scope"]
    assert [(t["name"], t["score"]) for t in decoded["tests"]] == [
        (i["name"], i["score"]) for i in in_scope]
    assert reporter_points(steps[-1], outputs) == (
        f"Points {grade['score']:g}/{grade['max_score']:g}")


def test_classroom_step_without_a_result_still_reports(tmp_path):
    """Grading that cannot even start (no interpreter) gives the reporter an error result."""
    repo = tmp_path / "student-repo"
    assert do_release(repo, "lab_9_9", COURSE, "--python", "/nonexistent/python") == 0
    wf = yaml.safe_load((repo / workflow.WORKFLOW_PATH).read_text())
    step = next(s for s in wf["jobs"][workflow.JOB_ID]["steps"] if s.get("id") == "lab99")
    proc, values = run_step(step, repo, dict(os.environ))
    assert proc.returncode == 1 and "::error" in proc.stdout
    decoded = json.loads(base64.b64decode(values["result"]))
    assert decoded["status"] == "error" and decoded["tests"][0]["status"] == "error"
