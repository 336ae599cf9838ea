"""Shared state for the triton_2_1 graders: one embedded tritonserver per grading run.

The student's model repository is DATA here: it is copied into the run folder
(`lab.run_dir / "model_repository"`), the lab's official weights are put at
`mlp/1/mlp.pt` in the copy (the grader's reference is computed from the same file), and the
grader's own reference model `mlp_reference` is added beside it. The bundled tritonserver
serves the copy in explicit model-control mode; student Python runs only in Triton's
Python-backend stub processes (the student's model.py) and in the worker subprocess (the
student's client functions, via `submission.call`).

Auto-completion is off (`--disable-auto-complete-config`, lab.toml `auto_complete_config`):
the lab asks for a complete config.pbtxt and `test_config_declares_the_interface` checks
it, so what the student wrote is exactly what is served, and each Python model loads with
one stub instead of two (measured 5.0 s -> 1.5 s for two PyTorch models on 2 cores). A
config that is complete under this strict mode also loads in the course image, where
auto-completion is on.

Nothing here raises on a student mistake. `Deployment` records what happened; an item
calls `deployment.require_student()` (Fail with the server's own reason when the model did
not load) or `deployment.require_reference()` (the client items: they grade against the
reference model, so a broken config.pbtxt or a raising initialize() costs only the items
about the student's model).

Server crashes. The Python backend of tritonserver 2.51 now and then aborts the whole
server while a stub initialises (`boost::interprocess::lock_exception`, upstream issue
#8882): seen in about 1 of 20-50 starts on this 2-core machine while other jobs kept its
load average at 10-20. That is not the student's doing, so: a crash while loading starts a
fresh server and loads the models one at a time (the reference first); a crash that
recurs while the student's model loads is put down to the student (their load error), and
the server is started once more without it so the client items still grade; a crash
during an item turns that item into a grader error (unless it passed anyway) and the next
item gets a fresh server with the models reloaded. At most MAX_STARTS starts per run.
"""

from __future__ import annotations

import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
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
WEIGHTS = HERE / "mlp.pt"          # what the student's model serves (the lab's file)
WEIGHTS_NPZ = HERE / "mlp.npz"     # the same numbers, for numpy (reference net and model)
REFERENCE_DIR = HERE / "reference"
REPO_ROOT = HERE.parents[1]
STUDENT_FIXTURE = "student_model"
REFERENCE_FIXTURE = "reference_model"

MAX_STARTS = 5


def _python_env(settings: dict) -> Path | None:
    configured = settings.get("python_env")
    if not configured:
        return None
    path = Path(configured)
    return path if path.is_absolute() else REPO_ROOT / path


@dataclass
class Deployment:
    """The server, its restarts, and the outcome of each model load."""

    repository: Path
    settings: dict
    log_dir: Path
    server: TritonServer | None = None
    problem: str | None = None        # why there is no server
    environment_missing: bool = False
    repository_problem: str | None = None   # the student's repository could not be staged
    models: list[str] = field(default_factory=list)          # what the selected items need
    load_errors: dict[str, str | None] = field(default_factory=dict)
    load_seconds: dict[str, float] = field(default_factory=dict)
    grader_errors: dict[str, str] = field(default_factory=dict)
    crashes: list[str] = field(default_factory=list)
    watch: CrashWatch | None = None
    starts: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def student_name(self) -> str:
        return self.settings["model"]

    @property
    def reference_name(self) -> str:
        return self.settings["reference_model"]

    # -- the server -----------------------------------------------------------------------
    def _start_server(self) -> bool:
        self.starts += 1
        if self.watch is not None:
            self.watch.close()
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
            return False
        except (TritonError, ServiceError, OSError) as exc:
            self.problem, self.server = str(exc), None
            return False
        return True

    def stop(self) -> None:
        if self.watch is not None:
            self.watch.close()
        if self.server is not None:
            self.server.stop(grace=float(self.settings.get("stop_grace", 0.0)))

    def crash_text(self, since: int = 0) -> str | None:
        return crash_text(self.server, since)

    def log_mark(self) -> int:
        return log_mark(self.server)

    # -- loading ------------------------------------------------------------------------
    def _load(self, model: str) -> None:
        assert self.server is not None
        try:
            seconds = self.server.load(model, timeout=float(self.settings["load_timeout"]))
            self.load_seconds[model] = round(seconds, 3)
            self.load_errors[model] = None
        except ModelLoadError as exc:
            self.load_errors[model] = str(exc)
        except Exception as exc:  # noqa: BLE001 - no answer: a crash (checked by the caller)
            self.grader_errors[model] = f"{type(exc).__name__}: {exc}"

    def _load_watched(self, models: list[str], parallel: bool) -> tuple[str, str] | None:
        """Load `models` (concurrently, or one by one in the given order) while watching for a
        server crash. Returns (the crash's log tail, the model that was loading) or None."""
        groups = [models] if parallel else [[m] for m in models]
        for group in groups:
            threads = [threading.Thread(target=self._load, args=(m,), daemon=True)
                       for m in group]
            for thread in threads:
                thread.start()
            while True:
                running = any(t.is_alive() for t in threads)
                crash = self.crash_text()
                if crash:
                    self.server.stop(grace=0)  # a crashed server may hang: kill it
                    for thread in threads:
                        thread.join(timeout=30)
                    return crash, ",".join(group)
                if not running:
                    break
                time.sleep(0.05)
        return None

    def bring_up(self) -> None:
        """Start the server and load the needed models, watching for crashes.

        First start: concurrent loads. After a crash: a fresh server, the reference first,
        then the student's model, one at a time. A crash that recurs while the student's
        model loads is put down to it (the student's load error); the server is then started
        once more without it, so the client items still grade."""
        parallel = self.starts == 0
        student_crashes = 0
        while self.starts < MAX_STARTS:
            if not self._start_server():
                return
            self.load_errors.clear()
            self.grader_errors.clear()
            models = sorted((m for m in self.models
                             if not (m == self.student_name and (self.repository_problem
                                                                 or student_crashes >= 2))),
                            key=lambda m: m == self.student_name)
            outcome = self._load_watched(models, parallel)
            if student_crashes >= 2:
                self.load_errors[self.student_name] = (
                    f"tritonserver crashed each time it loaded your model "
                    f"({student_crashes} times): does initialize() signal or kill its parent "
                    f"process? The last lines of the server log:\n{self.crashes[-1]}")
            if outcome is None:
                return
            crash, during = outcome
            self.crashes.append(crash)
            if not parallel and during == self.student_name:
                student_crashes += 1
            parallel = False
            self.server.stop(grace=0)
        self.problem = ("tritonserver crashed while loading the models, "
                        f"{len(self.crashes)} times; the last lines of its log:\n"
                        + self.crashes[-1])
        if self.server is not None:
            self.server.stop(grace=0)
        self.server = None

    # -- what items call -----------------------------------------------------------------
    def recover(self) -> None:
        """After a crash (during an earlier item): a fresh server, the models reloaded."""
        with self._lock:
            crash = self.crash_text() if self.server is not None else None
            if crash is not None:
                self.crashes.append(crash)
                self.server.stop(grace=0)
                self.bring_up()

    def require_server(self) -> TritonServer:
        self.recover()
        if self.server is None:
            if self.environment_missing:
                raise Ungradable(f"the embedded Triton server is not installed here: "
                                 f"{self.problem}")
            raise GraderError(f"tritonserver is not available: {self.problem}")
        return self.server

    def _require_model(self, model: str) -> None:
        if model not in self.models:  # not foreseen by the selection: load it now
            self.models.append(model)
            self._load(model)
        if model in self.grader_errors:
            raise GraderError(f"loading {model} got no answer: {self.grader_errors[model]}")

    def require_student(self) -> TritonServer:
        server = self.require_server()
        if self.repository_problem:
            raise Fail(self.repository_problem)
        self._require_model(self.student_name)
        error = self.load_errors.get(self.student_name)
        if error:
            raise Fail(f"your model did not load, so this cannot be checked.\n{error}")
        return server

    def require_reference(self) -> TritonServer:
        server = self.require_server()
        self._require_model(self.reference_name)
        error = self.load_errors.get(self.reference_name)
        if error:
            raise GraderError(f"the grader's reference model did not load: {error}")
        return server


def stage_repository(submission_dir: Path, run_dir: Path, settings: dict) -> tuple[Path, str | None]:
    """Copy the student's model_repository/ into the run folder, put the official weights
    in place and add the reference model. Returns (the copy, a problem for the student)."""
    target = run_dir / "model_repository"
    shutil.rmtree(target, ignore_errors=True)
    for old_log in run_dir.glob("tritonserver*.log"):  # the folder shows this run's logs
        old_log.unlink(missing_ok=True)
    source = submission_dir / "model_repository"
    problem = None
    if source.is_dir():
        shutil.copytree(source, target, symlinks=True,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints"))
    else:
        target.mkdir(parents=True)
        problem = ("model_repository/ is missing from your submission: start from the starter "
                   "folder labs/triton_2_1/model_repository/")
    student = target / settings["model"]
    if problem is None and not (student / "config.pbtxt").is_file():
        problem = (f"model_repository/{settings['model']}/config.pbtxt is missing: the model "
                   f"must be served under the name {settings['model']!r}")
    if (student / "1").is_dir():
        shutil.copy2(WEIGHTS, student / "1" / "mlp.pt")  # the lab's weights, whatever the copy held
    reference = target / settings["reference_model"]
    shutil.rmtree(reference, ignore_errors=True)
    shutil.copytree(REFERENCE_DIR / "mlp_reference", reference,
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(WEIGHTS_NPZ, reference / "1" / "mlp.npz")
    return target, problem


def _needed_models(request: pytest.FixtureRequest, settings: dict) -> list[str]:
    """The models the selected items of this lab need (a -k run loads only those)."""
    wanted: list[str] = []
    for item in request.session.items:
        if HERE not in Path(item.path).resolve().parents:
            continue
        if STUDENT_FIXTURE in item.fixturenames and settings["model"] not in wanted:
            wanted.append(settings["model"])
        if REFERENCE_FIXTURE in item.fixturenames and settings["reference_model"] not in wanted:
            wanted.append(settings["reference_model"])
    return wanted


_DEPLOYMENTS: list[Deployment] = []  # for the crash hook below


@pytest.fixture(scope="package")
def deployment(request, lab, submission, settings) -> Deployment:
    repo, problem = stage_repository(submission.path, lab.run_dir, settings)
    state = Deployment(repository=repo, settings=settings, log_dir=lab.run_dir,
                       repository_problem=problem, models=_needed_models(request, settings))
    lab.on_close(state.stop)
    _DEPLOYMENTS.append(state)
    state.bring_up()
    return state


@pytest.fixture(scope="package")
def student_model(deployment) -> Deployment:
    """The deployment, for items about the student's own model (`require_student()`)."""
    return deployment


@pytest.fixture(scope="package")
def reference_model(deployment) -> Deployment:
    """The deployment, for items run against the grader's reference (`require_reference()`)."""
    return deployment


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_runtest_call(item):
    """Rerun an item once if tritonserver crashed during it (labgrade.runtime.triton_crash;
    trylast: inside the plugin's time budget, which then covers both runs)."""
    return (yield from rerun_once_on_crash(item, _DEPLOYMENTS[-1] if _DEPLOYMENTS else None))


class ReferenceNet:
    """The lab's MLP computed by the grader: float64 numpy from mlp.npz (the numbers of the
    lab's mlp.pt, exported by make_weights.py and checked equal by the project's tests), so
    the grading process needs no torch import (~1.5 s)."""

    def __init__(self, weights: Path) -> None:
        with np.load(weights) as state:
            self.layers = [(state[f"fc{i}.weight"].astype(np.float64),
                            state[f"fc{i}.bias"].astype(np.float64)) for i in (1, 2, 3)]

    def __call__(self, x) -> np.ndarray:
        h = np.asarray(x, dtype=np.float32).astype(np.float64)
        for i, (w, b) in enumerate(self.layers):
            h = h @ w.T + b
            if i < len(self.layers) - 1:
                h = np.maximum(h, 0.0)
        return h


@pytest.fixture(scope="package")
def reference_net() -> ReferenceNet:
    return ReferenceNet(WEIGHTS_NPZ)


@pytest.fixture(scope="package")
def rng() -> np.random.Generator:
    """Hidden inputs: fresh each run (nothing to memorise), standard normal float32."""
    return np.random.default_rng()
