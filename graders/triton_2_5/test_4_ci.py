"""Items: the CI workflow for the model repository (GitHub's workflow schema, then what it
must do) and the student's repository check, run as its own process on hidden good and
broken repositories (broken.py; a load-time `initialize()` failure needs a server, so it is
not among them)."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from labgrade import Fail
from labgrade.kit.student import run_student_command
from labgrade.runtime.process import safe_environ

from .broken import good_repositories, hidden_cases, write_files
from .ci import CHECK_SCRIPT, requirement_problems, schema_problems

WORKFLOW = "ci/model-repository.yml"


@pytest.mark.points(4)
def test_ci_workflow_valid(submission, score):
    """ci/model-repository.yml passes GitHub's workflow schema (check-jsonschema
    --builtin-schema vendor.github-workflows), runs on push and pull_request for
    model_repository/**, checks out the code, sets up Python and runs the check script."""
    path = submission.require(WORKFLOW)
    problems = schema_problems(path)
    if problems:
        raise Fail(f"{WORKFLOW} does not pass GitHub's workflow schema (check-jsonschema "
                   "--builtin-schema vendor.github-workflows):\n" + "\n".join(problems[:20]))
    try:
        workflow = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:  # the schema check parsed it already; kept for safety
        raise Fail(f"{WORKFLOW} does not parse: {exc}") from None
    missing = requirement_problems(workflow if isinstance(workflow, dict) else {})
    if missing:
        raise Fail(f"{WORKFLOW} is a valid workflow, but:\n" + "\n".join(f"- {p}" for p in missing))


def _run_check(script: Path, repository: Path, timeout: float) -> tuple[int | None, str]:
    """(exit code or None for a timeout, its output) of `python check_repository.py REPO`."""
    try:
        proc = run_student_command([sys.executable, script, repository],
                                   cwd=repository.parent, env=safe_environ(), timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, f"(no answer within {timeout:g} s)"
    return proc.returncode, (proc.stdout + proc.stderr).strip()


@pytest.mark.points(8)
def test_check_script_catches_broken_repositories(submission, settings, run_dir, rng, score):
    """`python check_repository.py REPO` exits 0 on hidden repositories that load, and
    non-zero, naming the broken model, on each hidden broken one."""
    script = submission.require(CHECK_SCRIPT)
    base = run_dir / "ci_repositories"
    repositories: list[tuple[str, str | None, Path]] = []  # (what, broken model or None, dir)
    for k, (what, files) in enumerate(good_repositories(rng).items()):
        repositories.append((f"good: {what}", None, base / f"good{k}" / "model_repository"))
        write_files(repositories[-1][2], files)
    for k, case in enumerate(hidden_cases(rng, with_initialize=False)):
        repositories.append((case.variant, case.model, base / f"broken{k}" / "model_repository"))
        write_files(repositories[-1][2], case.files)
    timeout = float(settings["check_timeout"])
    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = list(pool.map(lambda r: _run_check(script, r[2], timeout), repositories))
    rejected_good, missed = [], []
    for (what, model, _), (code, output) in zip(repositories, outcomes):
        if model is None and code != 0:
            rejected_good.append(f"- {what} (exit {code}): {output[-600:]}")
        elif model is not None and (code in (0, None) or model not in output):
            why = ("it exited 0" if code == 0 else "it did not finish" if code is None
                   else f"its output does not name the model {model!r}")
            missed.append(f"- a repository whose model {model!r} has a fault ({what}): {why}")
    broken = [r for r in repositories if r[1] is not None]
    caught = len(broken) - len(missed)
    score.measure(good_accepted=len(repositories) - len(broken) - len(rejected_good),
                  broken_caught=caught, broken_total=len(broken))
    if rejected_good:
        raise Fail("your check rejects repositories that load on the real server (a check "
                   "that fails everything catches nothing):\n" + "\n".join(rejected_good))
    if missed:
        message = (f"your check caught {caught} of {len(broken)} hidden broken repositories:\n"
                   + "\n".join(missed))
        if caught == 0:
            raise Fail(message)
        score.set(caught / len(broken), message)
