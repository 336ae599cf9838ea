"""The student's deployment files read through labgrade.deploy, each into a `Deferred`:
a file the tools reject fails the items that read it (with the tool's own text), and only
those; a tool that is not installed makes them ungradable with the way to install it."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from labgrade.deploy import ArtefactError, ToolMissing
from labgrade.deploy.compose import load_compose, raw_compose
from labgrade.deploy.dockerfile import read_dockerfile
from labgrade.deploy.kubernetes import load_manifests
from labgrade.kit import Deferred

T = TypeVar("T")
KEY_ENV = "GATEWAY_API_KEYS"


def read(what: str, load: Callable[[], T]) -> Deferred[T]:
    artefact: Deferred[T] = Deferred(what)
    with artefact.recording():
        try:
            artefact.set(load())
        except ArtefactError as exc:
            artefact.fail(str(exc))
        except ToolMissing as exc:
            artefact.ungradable(str(exc))
    return artefact


def dockerfile(submission) -> Deferred:
    return read("your Dockerfile", lambda: read_dockerfile(submission.require("Dockerfile")))


def compose_copy(submission, run_dir: Path) -> Path:
    """The submission copied to the run folder, with `.env` made from `.env.example` when
    absent (README: real keys never travel with the submission)."""
    submission.require("compose.yaml")
    target = run_dir / "compose-project"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(submission.path, target, symlinks=False,
                    ignore=shutil.ignore_patterns("__pycache__", ".labgrade", "*.pyc"))
    if not (target / ".env").exists() and (target / ".env.example").exists():
        shutil.copyfile(target / ".env.example", target / ".env")
    return target / "compose.yaml"


def compose(submission, run_dir: Path) -> Deferred:
    return read("your compose.yaml", lambda: load_compose(compose_copy(submission, run_dir)))


def compose_as_written(submission) -> Deferred:
    return read("your compose.yaml", lambda: raw_compose(submission.require("compose.yaml")))


def manifests(submission) -> Deferred:
    return read("your k8s/ manifests", lambda: load_manifests(submission.require("k8s")))
