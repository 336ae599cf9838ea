"""One embedded tritonserver per grading run of a Triton lab, and what the lab's items ask
of it.

    from labgrade.kit.triton import TritonDeployment, rerun_after_crash

    @pytest.fixture(scope="package")
    def triton(lab, submission, settings):
        return TritonDeployment.for_lab(lab, submission, settings).start()

    pytest_runtest_call = rerun_after_crash   # in the lab's conftest.py

The student's model repository is DATA: it is copied into the run folder
(`<run>/model_repository`) and the bundled tritonserver (labgrade.runtime.triton) serves
the copy in explicit model-control mode. Student Python runs only in Triton's
Python-backend stubs and in the submission's worker, never in the grading process.

Nothing here raises for a student's mistake while the package fixture builds the
deployment: a missing repository (`submitted`) and each model's load outcome are recorded
as `Deferred`s, and each item asks for what it needs:

- `require()`: the server, with the student's repository staged;
- `require_model(name)`: the student's model loaded, else Fail with the server's reason;
  a grader-owned model (`ours`) that does not load is a grader error;
- without a server: Ungradable when Triton is not installed here, else a grader error.

Server crashes. The Python backend of tritonserver 2.51 now and then aborts the whole server
while a stub initialises (`boost::interprocess::lock_exception`, upstream issue #8882): seen
in about 1 of 20-50 starts on a 2-core machine under load. That is not the student's doing,
so: a crash while loading starts a fresh server and loads the models one at a time (the
grader's first); a crash that recurs while one of the student's models loads is put down to
it (its load error) and the server is started once more without it, so the other items
still grade; a crash during an item reruns the item once on a fresh server with the models
reloaded (`rerun_after_crash`), and a second crash makes it a grader error. At most
`max_starts` starts per run.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest

from labgrade.kit.deferred import Deferred
from labgrade.runtime.process import ServiceError
from labgrade.runtime.triton import (ModelLoadError, TritonError, TritonNotInstalled,
                                     TritonServer)
from labgrade.runtime.triton.crash import CrashWatch, crash_text, log_mark, rerun_once_on_crash
from labgrade.scoring import Fail, GraderError, Ungradable

IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints")


def stage_repository(submission_dir: Path, run_dir: Path, lab_id: str) -> tuple[Path, str | None]:
    """Copy the submission's model_repository/ to `<run_dir>/model_repository` (and clear the
    previous run's server logs). Returns (the copy, a problem for the student or None)."""
    target = run_dir / "model_repository"
    shutil.rmtree(target, ignore_errors=True)
    for old_log in run_dir.glob("tritonserver*.log"):  # the folder shows this run's logs
        old_log.unlink(missing_ok=True)
    source = submission_dir / "model_repository"
    if not source.is_dir():
        target.mkdir(parents=True)
        return target, (f"model_repository/ is missing from your submission: start from the "
                        f"starter folder labs/{lab_id}/model_repository/")
    shutil.copytree(source, target, symlinks=True, ignore=IGNORED)
    return target, None


class TritonDeployment:
    """The server (or why there is none), its restarts, and the outcome of each load."""

    def __init__(self, repository: Path, settings: Mapping[str, Any], log_dir: Path, *,
                 python_env: Path | None = None, problem: str | None = None,
                 setup_config: Callable[[str], dict] | None = None,
                 max_starts: int = 5, server_args: Iterable[str] = (),
                 api_headers: Mapping[str, str] | None = None) -> None:
        """`problem`: why the student's repository cannot be served (Fail for `require()`).
        `setup_config(model)`: the configuration `deploy` loads `model` with.
        `server_args`: more tritonserver flags (e.g. the student's, checked by the lab);
        `api_headers`: sent with the grader's API calls (a restricted API's key)."""
        self.repository = repository
        self.settings = settings
        self.log_dir = log_dir
        self.python_env = python_env
        self.setup_config = setup_config
        self.max_starts = max_starts
        self.server_args = list(server_args)
        self.api_headers = dict(api_headers or {})
        self.submitted: Deferred[Path] = Deferred("your model repository")
        if problem:
            self.submitted.fail(problem)
        self.submitted.set(repository)
        self.server: TritonServer | None = None
        self.problem: str | None = None  # why there is no server (for the course staff)
        self.environment_missing = False
        self.crashes: list[str] = []
        self.starts = 0
        self._wanted: list[str] = []          # loaded on every start, in this order
        self._ours: set[str] = set()          # grader-owned models
        self._loads: dict[str, Deferred[float]] = {}
        self._unanswered: dict[str, str] = {}  # a load that got no answer (a crash)
        self._crashed_on: Counter[str] = Counter()
        self._watch: CrashWatch | None = None
        self._lock = threading.RLock()

    @classmethod
    def for_lab(cls, lab, submission, settings: Mapping[str, Any],
                **kwargs: Any) -> "TritonDeployment":
        """Stage the submission's repository in the lab's run folder; the server stops when
        the lab closes. `settings["python_env"]` (optional) is relative to the course root."""
        repository, problem = stage_repository(submission.path, lab.run_dir, lab.lab.id)
        env = settings.get("python_env")
        deployment = cls(repository, settings, lab.run_dir, problem=problem,
                         python_env=(lab.lab.root / env) if env else None, **kwargs)
        lab.on_close(deployment.stop)
        return deployment

    # -- starting and stopping ----------------------------------------------------------
    def start(self, *, student: Iterable[str] = (), ours: Iterable[str] = ()) -> "TritonDeployment":
        """Start the server and load the student's models and the grader's (concurrently;
        after a crash one at a time, the grader's first)."""
        ours, student = list(ours), list(student)
        self._ours.update(ours)
        self._wanted = list(dict.fromkeys([*ours, *student]))
        self._bring_up()
        return self

    def stop(self) -> None:
        if self._watch is not None:
            self._watch.close()
        if self.server is not None:
            self.server.stop(grace=float(self.settings.get("stop_grace", 0.0)))

    def _start_server(self) -> bool:
        self.starts += 1
        if self._watch is not None:
            self._watch.close()
        try:
            self.server = TritonServer(
                self.repository, log_dir=self.log_dir, python_env=self.python_env,
                startup_timeout=self.settings["server_start_timeout"],
                auto_complete_config=self.settings["auto_complete_config"],
                allow_gpu_metrics=self.settings.get("allow_gpu_metrics", False),
                extra_args=self.server_args)
            self.server.api_headers = self.api_headers
            self.server.start()
            self._watch = CrashWatch(self.server)
        except TritonNotInstalled as exc:
            self.problem, self.environment_missing, self.server = str(exc), True, None
            return False
        except (TritonError, ServiceError, OSError) as exc:
            self.problem, self.server = str(exc), None
            return False
        return True

    def _bring_up(self) -> None:
        parallel = self.starts == 0
        while self.starts < self.max_starts:
            if not self._start_server():
                return
            self._loads, self._unanswered = {}, {}
            for model in self._wanted:
                if self._crashed_on[model] >= 2:  # the student's, see _load_watched's caller
                    self._loads[model] = Deferred(model)
                    self._loads[model].fail(
                        f"tritonserver crashed each time it loaded your model "
                        f"({self._crashed_on[model]} times): does initialize() signal or kill "
                        f"its parent process? The last lines of the server log:\n"
                        f"{self.crashes[-1]}")
            models = sorted((m for m in self._wanted if m not in self._loads
                             and (m in self._ours or self.submitted.failure is None)),
                            key=lambda m: m not in self._ours)
            crash = self._load_watched(models, parallel)
            if crash is None:
                return
            text, during = crash
            self.crashes.append(text)
            if not parallel and during not in self._ours:
                self._crashed_on[during] += 1
            parallel = False
            self.server.stop(grace=0)
        self.problem = (f"tritonserver crashed {len(self.crashes)} times; the last lines of "
                        f"its log:\n{self.crashes[-1] if self.crashes else '(none)'}")
        if self.server is not None:
            self.server.stop(grace=0)
        self.server = None

    # -- loading ------------------------------------------------------------------------
    def _load(self, model: str) -> None:
        outcome = self._loads[model] = Deferred(model)
        try:
            seconds = self.server.load(model, timeout=float(self.settings["load_timeout"]))
            outcome.set(round(seconds, 3))
        except ModelLoadError as exc:
            outcome.fail(str(exc))
        except Exception as exc:  # noqa: BLE001 - no answer: a crash (checked by the caller)
            self._unanswered[model] = f"{type(exc).__name__}: {exc}"

    def _load_watched(self, models: list[str], parallel: bool) -> tuple[str, str] | None:
        """Load `models` (concurrently, or one by one) watching for a server crash. Returns
        (the crash's log lines, the model(s) loading then) or None."""
        for group in [models] if parallel else [[m] for m in models]:
            threads = [threading.Thread(target=self._load, args=(m,), daemon=True)
                       for m in group]
            for thread in threads:
                thread.start()
            while any(t.is_alive() for t in threads):
                crash = self.crash_text()
                if crash:
                    self.server.stop(grace=0)  # a crashed server may hang: kill it
                    for thread in threads:
                        thread.join(timeout=30)
                    return crash, ",".join(group)
                time.sleep(0.05)
            crash = self.crash_text()
            if crash:
                self.server.stop(grace=0)
                return crash, ",".join(group)
        return None

    # -- crashes (what labgrade.runtime.triton.crash.rerun_once_on_crash uses) ----------
    def crash_text(self, since: int = 0) -> str | None:
        return crash_text(self.server, since)

    def log_mark(self) -> int:
        return log_mark(self.server)

    def recover(self) -> None:
        """After a crash (during an earlier item): a fresh server, the models reloaded."""
        with self._lock:
            crash = self.crash_text() if self.server is not None else None
            if crash is not None:
                self.crashes.append(crash)
                self.server.stop(grace=0)
                self._bring_up()

    # -- what items call ----------------------------------------------------------------
    def require_server(self) -> TritonServer:
        """The server, whatever the student's repository holds (for grader-owned models)."""
        self.recover()
        if self.server is None:
            if self.environment_missing:
                raise Ungradable(f"the embedded Triton server is not installed here: "
                                 f"{self.problem}")
            raise GraderError(f"tritonserver is not available: {self.problem}")
        return self.server

    def require(self) -> TritonServer:
        """The server serving the student's repository (Fail when there is none to serve)."""
        server = self.require_server()
        self.submitted.require()
        return server

    def require_model(self, model: str, *, ours: bool | None = None) -> TritonServer:
        """The server with `model` loaded. A model that no selected item announced in
        `start()` is loaded now; `ours` says whose it is (default: as announced, else the
        student's)."""
        grader_owned = model in self._ours if ours is None else ours
        server = self.require_server() if grader_owned else self.require()
        with self._lock:
            if model not in self._wanted:
                self._wanted.append(model)
                if grader_owned:
                    self._ours.add(model)
                self._load(model)
        if model in self._unanswered:
            raise GraderError(f"loading {model} got no answer: {self._unanswered[model]}")
        outcome = self._loads.get(model)
        if outcome is None:
            raise GraderError(f"{model} was needed but never loaded")
        try:
            outcome.require()
        except Fail as exc:
            if grader_owned:
                raise GraderError(f"the grader's model {model} did not load: {exc}") from None
            raise Fail(f"your model did not load, so this cannot be checked.\n{exc}") from None
        return server

    def load_seconds(self, model: str) -> float | None:
        outcome = self._loads.get(model)
        return outcome.value if outcome is not None else None

    @property
    def http(self) -> str:
        """host:port of the HTTP endpoint, as a student's tritonclient.http takes it."""
        return self.require().http_url.removeprefix("http://")

    # -- versions -----------------------------------------------------------------------
    def ready_versions(self, model: str) -> set[int]:
        """The versions of `model` the repository index reports READY."""
        return {int(e["version"]) for e in self.require().repository_index()
                if e.get("name") == model and e.get("state") == "READY" and "version" in e}

    def wait_ready_versions(self, model: str, expected: set[int],
                            timeout: float = 5.0) -> set[int]:
        """Ready versions once they equal `expected` or `timeout` passed (versions that leave
        are unloaded in the background)."""
        deadline = time.monotonic() + timeout
        while True:
            ready = self.ready_versions(model)
            if ready == expected or time.monotonic() > deadline:
                return ready
            time.sleep(0.05)

    def deploy(self, model: str, versions: Iterable[int]) -> None:
        """Set up an item: `model` serving exactly `versions`, loaded by the grader with
        `setup_config(model)` and a `specific` version policy."""
        server = self.require()
        versions = sorted(int(v) for v in versions)
        if self.setup_config is None:
            raise GraderError("deploy() needs the deployment's setup_config")
        config = {**self.setup_config(model),
                  "version_policy": {"specific": {"versions": versions}}}
        try:
            server.load(model, config=config, timeout=float(self.settings["load_timeout"]))
        except ModelLoadError as exc:
            raise Fail(f"the grader could not load {model} versions {versions} from your "
                       "repository to set up this item, with its own configuration, so the "
                       "model's code failed (the lab gives it: restore it from the starter if "
                       f"you changed it):\n{exc}") from None
        ready = self.wait_ready_versions(model, set(versions), timeout=2.0)
        if ready != set(versions):
            raise GraderError(f"set-up: {model} serves {sorted(ready)} after loading {versions}")

    def version_counts(self, model: str) -> dict[int, float]:
        """nv_inference_count of each loaded version of `model` (metrics port)."""
        return {int(s.labels["version"]): s.value
                for s in self.require().metrics().samples("nv_inference_count", model=model)}


def _deployment_of(item: pytest.Item) -> TritonDeployment | None:
    return next((value for value in getattr(item, "funcargs", {}).values()
                 if isinstance(value, TritonDeployment)), None)


@pytest.hookimpl(wrapper=True, trylast=True)
def rerun_after_crash(item: pytest.Item):
    """A Triton lab's `pytest_runtest_call` (bind it in the conftest): an item that uses a
    TritonDeployment and fails while the server crashes runs once more on a fresh server
    (labgrade.runtime.triton.crash; trylast: inside the item's time budget, which then
    covers both runs)."""
    return (yield from rerun_once_on_crash(item, _deployment_of(item)))
