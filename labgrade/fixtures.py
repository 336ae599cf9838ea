"""Per-lab pytest fixtures. A lab's `graders/<id>/conftest.py` imports them:

    from labgrade.fixtures import *  # noqa: F403  (lab, submission, settings, run_dir)

Imported there they are registered for that package, so "package" scope means "this lab":
several labs graded in one run each get their own submission, worker and services.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from labgrade.labs import Lab
from labgrade.plugin import grading_session
from labgrade.runtime import gpu
from labgrade.submission import Submission


__all__ = ["lab", "submission", "settings", "run_dir"]


class LabContext:
    """Per-lab state of one grading run: the lab, its submission, its settings, closers."""

    def __init__(self, lab: Lab, submission_dir: Path, profile: str, run_dir: Path,
                 models: str = "tiny") -> None:
        self.lab = lab
        self.profile = profile
        self.settings = lab.settings(profile, models)
        self.run_dir = run_dir
        self.submission = Submission(submission_dir, lab.id, run_dir)
        self._closers: list[Callable[[], None]] = []
        baseline = gpu.memory()  # None without an NVIDIA GPU
        self.gpu_ledger = gpu.MemoryLedger(baseline) if baseline else None
        gpu.activate(self.gpu_ledger)
        self.cache: dict[str, object] = {}  # expensive per-lab objects (engines, servers)
        self.environment: dict[str, object] = {}  # graders' facts for grade.json (tool versions)

    def on_close(self, closer: Callable[[], None]) -> None:
        self._closers.append(closer)

    def close(self) -> None:
        while self._closers:
            closer = self._closers.pop()
            try:
                closer()
            except Exception:  # noqa: BLE001 - keep closing the rest
                pass
        self.submission.close()
        gpu.activate(None)
        if self.gpu_ledger is not None:  # every process of this lab has ended by now
            self.gpu_ledger.finish()


@pytest.fixture(scope="package")
def lab(request: pytest.FixtureRequest) -> LabContext:
    """The LabContext of the lab (package `graders/<id>`) the requesting test belongs to."""
    session = grading_session(request.config)
    lab_id = session.lab_of(request.node)
    if lab_id not in session.contexts:
        lab_request = session.requests[lab_id]
        session.contexts[lab_id] = LabContext(lab_request.lab, lab_request.submission_dir,
                                              session.profile, session.run_dir(lab_id),
                                              session.models)
    return session.contexts[lab_id]


@pytest.fixture(scope="package")
def submission(lab: LabContext) -> Submission:
    return lab.submission


@pytest.fixture(scope="package")
def settings(lab: LabContext) -> dict:
    """The lab's settings for the active profile (graders/<id>/lab.toml)."""
    return lab.settings


@pytest.fixture(scope="package")
def run_dir(lab: LabContext) -> Path:
    return lab.run_dir
