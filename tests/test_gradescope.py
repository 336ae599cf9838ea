"""`labgrade gradescope`: the autograder zip, and its run_autograder run locally on the
miniature lab_9_9 with /autograder mapped through AUTOGRADER_ROOT."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from labgrade import cli
from labgrade.delivery import gradescope
from labgrade.delivery.gradescope_results import problems

ROOT = Path(__file__).resolve().parents[1]
COURSE = Path(__file__).parent / "data" / "course"


def timed_items(*grades: dict) -> set[str]:
    """Items scored on a wall-clock measurement (lab_9_9's test_speed): on a loaded machine
    they may differ between two gradings of the same code, so comparisons leave them out."""
    return {i["name"] for g in grades for i in g["items"]
            if any(k.endswith("_seconds") for k in i.get("measured", {}))}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gs") / "lab_9_9.zip"
    assert cli.main(["gradescope", "lab_9_9", "--root", str(COURSE), "--out", str(out)]) == 0
    return out


def autograder(tmp_path: Path, bundle: Path, files: dict[str, Path], **env: str) -> dict:
    """Lay out /autograder under tmp_path, run run_autograder, return results.json."""
    ag = tmp_path / "autograder"
    gradescope.extract(bundle, ag / "source")
    for rel, src in files.items():
        target = ag / "submission" / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, target)
    (ag / "submission").mkdir(parents=True, exist_ok=True)
    # Gradescope copies run_autograder to /autograder/ and runs it from there
    shutil.copy(ag / "source" / "run_autograder", ag / "run_autograder")
    full_env = {**os.environ, "AUTOGRADER_ROOT": str(ag), "LABGRADE_PYTHON": sys.executable,
                "SELFTEST_CONFTEST_MARK": str(tmp_path / "conftest-loaded"), **env}
    proc = subprocess.run(["bash", str(ag / "run_autograder")], cwd=tmp_path, env=full_env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    results = json.loads((ag / "results" / "results.json").read_text())
    assert problems(results) == [], results
    return results


def test_zip_is_deterministic_and_holds_what_gradescope_needs(bundle, tmp_path):
    again = tmp_path / "again.zip"
    assert cli.main(["gradescope", "lab_9_9", "--root", str(COURSE), "--out", str(again)]) == 0
    assert again.read_bytes() == bundle.read_bytes()
    with zipfile.ZipFile(bundle) as zf:
        infos = {i.filename: i for i in zf.infolist()}
    for name in ("setup.sh", "run_autograder"):
        assert (infos[name].external_attr >> 16) & 0o111, f"{name} must be executable"
    assert "graders/lab_9_9/test_items.py" in infos and "labs/lab_9_9/mod.py" in infos
    assert "labgrade/delivery/gradescope_results.py" in infos and "pyproject.toml" in infos
    assert not any(n.startswith("solutions/") for n in infos)
    assert not any(part.startswith(("wrong_", "attack_"))
                   for n in infos if n.startswith("fixtures/") for part in n.split("/"))
    ag = tmp_path / "x"
    gradescope.extract(bundle, ag)
    for script in ("setup.sh", "run_autograder"):
        assert subprocess.run(["bash", "-n", str(ag / script)]).returncode == 0


def test_run_autograder_grades_like_pytest(bundle, tmp_path):
    solution = COURSE / "solutions" / "lab_9_9" / "mod.py"
    results = autograder(tmp_path / "flat", bundle, {"mod.py": solution})
    # the same submission graded directly
    direct = tmp_path / "direct"
    subprocess.run([sys.executable, "-m", "pytest", "labs/lab_9_9", "--grade", "--solution",
                    "--profile", "cpu", "--report-dir", str(direct)], cwd=COURSE,
                   capture_output=True, timeout=300,
                   env={**os.environ, "SELFTEST_CONFTEST_MARK": str(tmp_path / "m")})
    expected = json.loads((direct / "lab_9_9" / "results.json").read_text())
    timed = timed_items(json.loads((direct / "lab_9_9" / "grade.json").read_text()))
    same = lambda r: [(t["name"], t["score"], t["max_score"]) for t in r["tests"]  # noqa: E731
                      if t["name"] not in timed]
    assert results["score"] == sum(t["score"] for t in results["tests"]) > 0
    assert same(results) == same(expected) and len(same(expected)) >= 5
    assert [t["name"] for t in results["tests"]] == [t["name"] for t in expected["tests"]]
    # a whole repository handed in (labs/<id>/...) grades the same
    nested = autograder(tmp_path / "repo", bundle, {"labs/lab_9_9/mod.py": solution,
                                                    "README.md": ROOT / "README.md"})
    assert same(nested) == same(results)


def test_run_autograder_always_leaves_a_valid_result(bundle, tmp_path):
    results = autograder(tmp_path, bundle, {"mod.py": COURSE / "labs" / "lab_9_9" / "mod.py"},
                         LABGRADE_PYTHON="/nonexistent/python")
    assert results["score"] == 0
    assert "could not finish grading lab_9_9" in results["output"]
    assert "not a judgement of your code" in results["output"]
    staff = results["tests"][0]
    assert staff["visibility"] == "hidden" and "nonexistent" in staff["output"]


def test_run_autograder_time_limit_keeps_what_was_graded(bundle, tmp_path):
    """A hanging submission: the hard limit (SIGTERM from `timeout`) stops grading, and
    what was graded before still reaches Gradescope (the run budget is off here)."""
    results = autograder(tmp_path, bundle,
                         {"mod.py": COURSE / "solutions" / "lab_9_9" / "mod.py"},
                         LABGRADE_TIME_LIMIT="6", LABGRADE_RUN_BUDGET="0",
                         SELFTEST_SLEEP="600")
    by_name = {t["name"]: t for t in results["tests"]}
    assert by_name["test_add"]["status"] == "passed"
    assert "interrupted" in results["output"]
    assert any(t["output"].startswith("[not_run]") for t in results["tests"])
    assert results["score"] == sum(t["score"] for t in results["tests"])


def test_settings_for_what_the_lab_declares(tmp_path, capsys):
    """`labgrade gradescope` names the container and timeout to choose, from lab.toml
    [resources]; run_autograder's limit and budget stay inside that timeout."""
    course = course_with_resources(tmp_path, "memory_gib = 2.5\ncpus = 2\nminutes = 12\n")
    out = tmp_path / "lab.zip"
    assert cli.main(["gradescope", "lab_9_9", "--root", str(course), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "container (CPU / memory): 2.0 CPU, 3.0 GB RAM" in printed
    assert "autograder timeout: 20 minutes" in printed
    assert "Gradescope's defaults are too small for this lab" in printed
    with zipfile.ZipFile(out) as zf:
        readme = zf.read("README.md").decode()
        run = zf.read("run_autograder").decode()
    assert "2.0 CPU, 3.0 GB RAM" in readme and "20 minutes" in readme
    assert "LIMIT=${LABGRADE_TIME_LIMIT:-1140}" in run and "BUDGET=1080" in run
    # --timeout-minutes: the timeout actually configured
    assert cli.main(["gradescope", "lab_9_9", "--root", str(course), "--out", str(out),
                     "--timeout-minutes", "10"]) == 0
    with zipfile.ZipFile(out) as zf:
        assert "LIMIT=${LABGRADE_TIME_LIMIT:-540}" in zf.read("run_autograder").decode()


def course_with_resources(tmp_path: Path, resources: str) -> Path:
    course = tmp_path / "course"
    shutil.copytree(COURSE, course, ignore=shutil.ignore_patterns("__pycache__"))
    toml = course / "graders" / "lab_9_9" / "lab.toml"
    toml.write_text(toml.read_text() + "\n[resources]\n" + resources)
    return course


def test_grading_out_of_memory_says_so(tmp_path):
    """Under a memory limit below the lab's declared need (here an address-space limit of
    768 MiB against memory_gib = 1), a submission that needs more memory ends with a
    results.json that says grading ran out of memory and how much to allow."""
    prlimit = shutil.which("prlimit")
    if prlimit is None:
        pytest.skip("prlimit (util-linux) is not installed")
    course = course_with_resources(tmp_path, "memory_gib = 1\n")
    out = tmp_path / "lab.zip"
    assert cli.main(["gradescope", "lab_9_9", "--root", str(course), "--out", str(out)]) == 0
    hog = tmp_path / "mod.py"
    hog.write_text((COURSE / "solutions" / "lab_9_9" / "mod.py").read_text()
                   + "\n\ndef add(a, b):\n    block = bytearray(900 << 20)\n"
                     "    return a + b + len(block) * 0\n")
    ag = tmp_path / "autograder"
    gradescope.extract(out, ag / "source")
    (ag / "submission").mkdir(parents=True)
    shutil.copy(hog, ag / "submission" / "mod.py")
    env = {**os.environ, "AUTOGRADER_ROOT": str(ag), "LABGRADE_PYTHON": sys.executable,
           "SELFTEST_CONFTEST_MARK": str(tmp_path / "m")}
    proc = subprocess.run([prlimit, f"--as={768 << 20}", "bash",
                           str(ag / "source" / "run_autograder")], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    results = json.loads((ag / "results" / "results.json").read_text())
    assert problems(results) == []
    assert results["score"] == 0
    assert results["output"].startswith("Grading ran out of memory: the autograder container "
                                        "allows 768 MiB and this lab needs about 1 GiB")
    assert "set the autograder's memory to at least 1.5 GB" in results["output"]
    assert "not a judgement of your code" in results["output"]
