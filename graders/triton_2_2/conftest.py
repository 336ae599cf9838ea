"""Shared state for the triton_2_2 graders: one embedded tritonserver per grading run.

The student's model_repository/ is DATA: it is copied into the run folder and served by
the bundled tritonserver (explicit model control, auto-completion off — the shipped
configs are complete; the student adds the version policies). Student Python runs in the
Python-backend stubs (the shipped model.py files) and in the worker subprocess
(lifecycle.py and splitter.py, via `submission.call`), never here.

Every item sets up the server state it needs itself (`Lab.deploy`: a load with a
grader-written configuration override that pins the versions), so items do not depend on
each other's order or on a -k selection, and a wrong version policy costs only the policy
item. What students' functions do is observed on the server: ready versions from the
repository index, per-version `nv_inference_count` from the metrics port, the answers.

Server crashes. The Python backend of tritonserver 2.51 occasionally aborts the whole
server (`boost::interprocess::lock_exception`, upstream issue #8882), more often on a busy
machine. That is not the student's doing: an item that fails while the server crashes
under it becomes a grader error (unless it passed anyway), and the next item gets a fresh
server (each item sets up its own state, so nothing else is lost).
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from labgrade import Fail
from labgrade.fixtures import *  # noqa: F403  (lab, submission, settings, run_dir)
from labgrade.runtime.process import ServiceError
from labgrade.runtime.triton import (ModelLoadError, TritonError, TritonNotInstalled,
                                     TritonServer)
from labgrade.runtime.triton_crash import (CrashWatch, crash_text, log_mark,
                                           rerun_once_on_crash)
from labgrade.scoring import GraderError, Ungradable

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]

MAX_STARTS = 3


def grader_config(model: str, versions, kind: str) -> dict:
    """The shipped configuration of `model` with a pinned version policy (grader-owned)."""
    return {
        "name": model,
        "backend": "python",
        "max_batch_size": 8,
        "input": [{"name": "FEATURES", "data_type": "TYPE_FP32", "dims": [4]}],
        "output": [{"name": "SCORE", "data_type": "TYPE_FP32", "dims": [1]}],
        "instance_group": [{"kind": kind, "count": 1}],
        "version_policy": {"specific": {"versions": sorted(int(v) for v in versions)}},
    }


@dataclass
class Triton:
    """The server (or why there is none) and the grader's own moves on it."""

    repository: Path
    settings: dict
    log_dir: Path
    server: TritonServer | None = None
    problem: str | None = None
    environment_missing: bool = False
    repository_problem: str | None = None
    starts: int = 0
    crashes: list[str] = field(default_factory=list)
    watch: CrashWatch | None = None

    def start(self) -> None:
        """A fresh server (the previous one, if any, is killed first)."""
        if self.watch is not None:
            self.watch.close()
        if self.server is not None:
            self.server.stop(grace=0)
            self.server = None
        self.starts += 1
        try:
            server = TritonServer(self.repository, log_dir=self.log_dir,
                                  python_env=_python_env(self.settings),
                                  startup_timeout=self.settings["server_start_timeout"],
                                  auto_complete_config=self.settings["auto_complete_config"],
                                  allow_gpu_metrics=self.settings.get("allow_gpu_metrics", False))
            self.server = server
            server.start()
            self.watch = CrashWatch(server)
        except TritonNotInstalled as exc:
            self.problem, self.environment_missing, self.server = str(exc), True, None
        except (TritonError, ServiceError, OSError) as exc:
            self.problem, self.server = str(exc), None

    def stop(self) -> None:
        if self.watch is not None:
            self.watch.close()
        if self.server is not None:
            self.server.stop(grace=float(self.settings.get("stop_grace", 0.0)))

    def log_mark(self) -> int:
        return log_mark(self.server)

    def crash_text(self, since: int = 0) -> str | None:
        return crash_text(self.server, since)

    def recover(self) -> None:
        """After a crash (during an earlier item): a fresh server, up to MAX_STARTS."""
        crash = self.crash_text()
        if crash is not None:
            self.crashes.append(crash)
            if self.starts < MAX_STARTS:
                self.start()  # crashed during an earlier item: a fresh server
            else:
                self.server.stop(grace=0)
                self.server = None
                self.problem = f"it crashed {len(self.crashes)} times; last log lines:\n{crash}"

    def require(self) -> TritonServer:
        self.recover()
        if self.server is None:
            if self.environment_missing:
                raise Ungradable(f"the embedded Triton server is not installed here: "
                                 f"{self.problem}")
            raise GraderError(f"tritonserver is not available: {self.problem}")
        if self.repository_problem:
            raise Fail(self.repository_problem)
        return self.server

    @property
    def http(self) -> str:
        """host:port, as the student's tritonclient.http takes it."""
        return self.require().http_url.removeprefix("http://")

    def ready_versions(self, model: str) -> set[int]:
        server = self.require()
        return {int(e["version"]) for e in server.repository_index()
                if e.get("name") == model and e.get("state") == "READY" and "version" in e}

    def wait_ready_versions(self, model: str, expected: set[int],
                            timeout: float = 5.0) -> set[int]:
        """Ready versions once they equal `expected` or `timeout` passed (unloads of
        versions that leave finish in the background)."""
        deadline = time.monotonic() + timeout
        while True:
            ready = self.ready_versions(model)
            if ready == expected or time.monotonic() > deadline:
                return ready
            time.sleep(0.05)

    def deploy(self, model: str, versions) -> None:
        """Set up an item: `model` serving exactly `versions`, by the grader's own load."""
        server = self.require()
        config = grader_config(model, versions, self.settings["instance_kind"])
        try:
            server.load(model, config=config, timeout=self.settings["load_timeout"])
        except ModelLoadError as exc:
            raise Fail(f"the grader could not load {model} versions {sorted(versions)} from "
                       f"your repository to set up this item (the model.py files are given: "
                       f"restore them from the starter if you changed them):\n{exc}") from None
        ready = self.wait_ready_versions(model, set(versions), timeout=2.0)
        if ready != set(versions):
            raise GraderError(f"set-up: {model} serves {sorted(ready)} after loading "
                              f"{sorted(versions)}")

    def version_counts(self, model: str) -> dict[int, float]:
        """nv_inference_count per loaded version of `model` (metrics port)."""
        metrics = self.require().metrics()
        return {int(s.labels["version"]): s.value
                for s in metrics.samples("nv_inference_count", model=model)}


def stage_repository(submission_dir: Path, run_dir: Path) -> tuple[Path, str | None]:
    target = run_dir / "model_repository"
    shutil.rmtree(target, ignore_errors=True)
    for old_log in run_dir.glob("tritonserver*.log"):  # the folder shows this run's logs
        old_log.unlink(missing_ok=True)
    source = submission_dir / "model_repository"
    if not source.is_dir():
        target.mkdir(parents=True)
        return target, ("model_repository/ is missing from your submission: start from the "
                        "starter folder labs/triton_2_2/model_repository/")
    shutil.copytree(source, target, symlinks=True,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints"))
    return target, None


def _python_env(settings: dict) -> Path | None:
    configured = settings.get("python_env")
    if not configured:
        return None
    path = Path(configured)
    return path if path.is_absolute() else REPO_ROOT / path


_SERVERS: list[Triton] = []  # for the crash hook below


@pytest.fixture(scope="package")
def triton(lab, submission, settings) -> Triton:
    repo, problem = stage_repository(submission.path, lab.run_dir)
    state = Triton(repository=repo, settings=settings, log_dir=lab.run_dir,
                   repository_problem=problem)
    lab.on_close(state.stop)
    _SERVERS.append(state)
    state.start()
    return state


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_runtest_call(item):
    """Rerun an item once if tritonserver crashed during it (labgrade.runtime.triton_crash;
    trylast: inside the plugin's time budget, which then covers both runs)."""
    return (yield from rerun_once_on_crash(item, _SERVERS[-1] if _SERVERS else None))
