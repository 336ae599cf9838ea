"""The student's CI workflow read as data: GitHub's workflow schema (check-jsonschema's
vendored copy, the tool's own messages), then what the lab asks of it."""

from __future__ import annotations

from pathlib import Path

from labgrade.deploy.tools import check_jsonschema_binary, run, safe_tool_env

REPOSITORY_DIR = "model_repository"
CHECK_SCRIPT = "check_repository.py"


def schema_problems(path: Path) -> list[str]:
    """GitHub workflow schema violations (check-jsonschema's lines); [] when it conforms."""
    proc = run([check_jsonschema_binary(), "--builtin-schema", "vendor.github-workflows",
                "--output-format", "text", path], cwd=path.parent, env=safe_tool_env())
    if proc.returncode == 0:
        return []
    text = (proc.stdout + proc.stderr).replace(str(path), path.name)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return [ln for ln in lines if not ln.startswith("Schema validation errors")] or lines


def triggers(workflow: dict) -> dict:
    """The `on:` table as a dict (YAML 1.1 reads a bare `on` key as True)."""
    on = workflow.get("on", workflow.get(True))
    if isinstance(on, str):
        return {on: None}
    if isinstance(on, list):
        return {event: None for event in on}
    return on if isinstance(on, dict) else {}


def requirement_problems(workflow: dict) -> list[str]:
    """What the README asks beyond the schema, one line per missing piece."""
    problems = []
    on = triggers(workflow)
    for event in ("push", "pull_request"):
        if event not in on:
            problems.append(f"the workflow does not run on `{event}`")
            continue
        paths = (on[event] or {}).get("paths") if isinstance(on[event], dict) else None
        if not paths or not any(str(p).startswith(REPOSITORY_DIR) for p in paths):
            problems.append(f"`on.{event}` has no `paths:` filter naming {REPOSITORY_DIR}/** "
                            "(the check should run when the model repository changes)")
    steps = [step for job in (workflow.get("jobs") or {}).values() if isinstance(job, dict)
             for step in (job.get("steps") or []) if isinstance(step, dict)]
    uses = [str(step.get("uses", "")) for step in steps]
    for action in ("actions/checkout", "actions/setup-python"):
        if not any(u.startswith(action + "@") for u in uses):
            problems.append(f"no step uses {action}@<version>")
    runs = [str(step.get("run", "")) for step in steps]
    if not any(CHECK_SCRIPT in r and REPOSITORY_DIR in r for r in runs):
        problems.append(f"no step runs `python {CHECK_SCRIPT} {REPOSITORY_DIR}`")
    return problems
