"""Run a released Classroom workflow's own shell steps locally, the way the Actions runner
does, and hand the step outputs to the reporter (tests/classroom_reporter.js under node,
or reporter_points in Python where node is missing).

Runner behaviour reproduced: each `run:` step is `bash -e` with a fresh $GITHUB_OUTPUT
file read back as `name=value` lines (the last value of a name wins); a step runs when
the job is still green or its `if:` is `always()`; `${{ steps.X.outputs.result || 'lit' }}`
takes the literal when the output is empty.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from labgrade.delivery import workflow

REPORTER_JS = Path(__file__).parent / "classroom_reporter.js"
_EXPR = re.compile(r"\$\{\{ steps\.([A-Za-z0-9_-]+)\.outputs\.([A-Za-z0-9_]+)"
                   r"(?: \|\| '([^']*)')? \}\}")


def steps_of(repo: Path) -> list[dict]:
    wf = yaml.safe_load((repo / workflow.WORKFLOW_PATH).read_text())
    return wf["jobs"][workflow.JOB_ID]["steps"]


def fake_private_checkout(repo: Path, course: Path) -> None:
    """What actions/checkout leaves for the private repository, and `make setup` done."""
    private = repo / ".graders"
    shutil.copytree(course / "graders", private / "graders",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(repo / "labgrade", private / "labgrade")
    (private / "labgrade" / "COURSE_COPY").write_text("")
    os.symlink(Path(sys.executable).parents[1], repo / ".venv")


def run_step(step: dict, cwd: Path, env: dict) -> tuple[subprocess.CompletedProcess, dict]:
    output = cwd.parent / f"github_output_{step.get('id', 'x')}"
    output.write_text("")
    proc = subprocess.run(["bash", "-e", "-c", step["run"]], cwd=cwd, capture_output=True,
                          text=True, timeout=300, env={**env, "GITHUB_OUTPUT": str(output)})
    values = dict(line.split("=", 1) for line in output.read_text().splitlines() if "=" in line)
    return proc, values


SETUP_STEP = "Set up labgrade"  # done by fake_private_checkout (this checkout's .venv)


def run_job(repo: Path, env: dict, *, only=lambda step: step["name"] != SETUP_STEP
            ) -> tuple[dict[str, dict[str, str]], list[tuple[str, int]]]:
    """Run the job's shell steps in order with the runner's if-logic (all but the set-up,
    which fake_private_checkout stands for); returns the outputs per step id and (step
    name, exit code) of each step that ran."""
    runner_temp = repo.parent / "runner-temp"
    runner_temp.mkdir(exist_ok=True)
    env = {**env, "RUNNER_TEMP": str(runner_temp)}
    outputs: dict[str, dict[str, str]] = {}
    ran: list[tuple[str, int]] = []
    green = True
    for step in steps_of(repo):
        if "run" not in step or not only(step):
            continue
        if not green and step.get("if") != "always()":
            continue
        proc, values = run_step(step, repo, env)
        ran.append((step["name"], proc.returncode))
        if proc.returncode != 0:
            green = False  # what the runner's log would show (pytest prints it on failure)
            print(f"step {step['name']!r} exited {proc.returncode}:\n{proc.stdout[-3000:]}"
                  f"\n{proc.stderr[-3000:]}")
        if "id" in step:
            outputs[step["id"]] = values
    return outputs, ran


def reporter_env(reporter_step: dict, outputs: dict[str, dict[str, str]]) -> dict[str, str]:
    env = {}
    for name, value in reporter_step["env"].items():
        m = _EXPR.fullmatch(value)
        if m:
            got = outputs.get(m.group(1), {}).get(m.group(2), "")
            env[name] = got or (m.group(3) or "")
        else:
            env[name] = value
    return env


def reporter_points(reporter_step: dict, outputs: dict[str, dict[str, str]]) -> str:
    """The reporter's Points line, computed in Python (same float sum as its JavaScript)."""
    env = reporter_env(reporter_step, outputs)
    total = maximum = 0
    for runner in reporter_step["with"]["runners"].split(","):
        results = json.loads(base64.b64decode(env[f"{runner.strip().upper()}_RESULTS"]))
        if results["max_score"]:
            maximum += results["max_score"]
            for test in results["tests"]:
                total += test["score"]
    return f"Points {total:g}/{maximum:g}"


def node_reporter(reporter_step: dict, outputs: dict[str, dict[str, str]]
                  ) -> subprocess.CompletedProcess | None:
    """tests/classroom_reporter.js run by node 20 with the reporter step's environment;
    None where node is not installed."""
    node = shutil.which("node")
    if node is None:
        return None
    env = {**os.environ, **reporter_env(reporter_step, outputs)}
    return subprocess.run([node, str(REPORTER_JS), reporter_step["with"]["runners"]],
                          env=env, capture_output=True, text=True, timeout=60)


def posted_points(proc: subprocess.CompletedProcess) -> str | None:
    m = re.search(r"::notice title=Autograding complete::(Points \S+)", proc.stdout)
    return m.group(1) if m else None
