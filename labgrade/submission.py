"""The submission under grade, and the worker subprocess that runs its code.

The grading process never imports student code. `Worker` starts `labgrade.worker` in its
own process group with an isolated interpreter (`-I`: no user site, no PYTHONPATH, no
script directory on sys.path), talks JSON lines with it, times every call from the outside,
and kills the whole group on timeout or teardown.

What a failed call raises (the worker decides whose fault it was):

    Fail
     +-- StudentCodeError      the student's code raised, returned unusable data, or a
          |                    grader probe failed because of the student's input
          +-- WorkerDied       the process running it crashed or was killed
          +-- WorkerTimeout    it did not return in time (the process is stopped)
    GraderError
     +-- TrustedCodeError      grader-owned code (`labgrade.*`, `graders.*`) broke in the
                               worker: status `error`, its traceback for the staff only
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from labgrade import isolation
from labgrade.runtime import gpu
from labgrade.runtime.process import register_pid_group, safe_environ, unregister_pid_group
from labgrade.scoring import Fail, GraderError


class StudentCodeError(Fail):
    """Student code raised, returned something unusable, hung, or crashed its worker."""


class WorkerDied(StudentCodeError):
    pass


class WorkerTimeout(StudentCodeError):
    pass


class TrustedCodeError(GraderError):
    """Grader-owned code failed inside a worker, and not because of the student's input."""

    def __init__(self, message: str, worker_traceback: str = "") -> None:
        super().__init__(message)
        self.worker_traceback = worker_traceback  # the worker's side, for the staff


@dataclass(frozen=True)
class CallResult:
    value: object
    seconds: float


class Worker:
    """A long-lived subprocess hosting student code (and objects it returns, by name)."""

    def __init__(self, root: Path, *, log_path: Path, env: Mapping[str, str] | None = None,
                 python: str = sys.executable, label: str = "worker",
                 trusted_root: Path | None = None, student: bool = False,
                 writable: Sequence[Path] = ()) -> None:
        """`root`: the submission (or, for a grader-owned worker, its run directory).
        `trusted_root`: the course root, for a grader-owned worker that never imports
        student code: it may then import `graders.<id>.<module>`.
        `student`: it runs student code, so it runs in the sandbox (labgrade.isolation),
        where `writable` folders are the only ones it may write."""
        if student and trusted_root is not None:
            raise ValueError("a worker that runs student code cannot import the graders")
        self.root = Path(root).resolve()
        self.trusted_root = Path(trusted_root).resolve() if trusted_root else None
        self.log_path = Path(log_path)
        self.env = safe_environ(env)
        # the worker must import labgrade even though -I drops PYTHONPATH and the cwd
        self.python = python
        self.label = label
        self.student = student
        self.writable = [Path(w) for w in writable]
        self._gpu_name = f"{label} ({self.log_path.name})"  # in the lab's GPU memory ledger
        self.proc: subprocess.Popen | None = None
        self.dead_reason: str | None = None

    def start(self) -> "Worker":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        gpu.before_start(self._gpu_name)
        argv = [self.python, "-I", "-B", "-m", "labgrade.worker", str(self.root)]
        if self.trusted_root is not None:
            argv += ["--trusted-root", str(self.trusted_root)]
        # under the supervisor always (nothing outlives the grading); confined if student
        argv, env = isolation.wrap(None, argv, env=self.env, cwd=str(self.log_path.parent),
                                   student=self.student, writable=self.writable)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                env=env, cwd=self.log_path.parent, start_new_session=True,
            )
        register_pid_group(self.proc.pid)
        return self

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def rss_bytes(self) -> int:
        """Resident memory of the worker and its children, measured from outside."""
        if not self.alive():
            return 0
        try:
            # below the supervisor (labgrade.isolation.launch), which is not the student's
            procs = psutil.Process(self.proc.pid).children(recursive=True)
            return sum(p.memory_info().rss for p in procs if p.is_running())
        except psutil.Error:
            return 0

    def call(self, module: str, func: str, *args: object, store: str | None = None,
             timeout: float = 120.0, **kwargs: object) -> CallResult:
        if self.proc is None:
            self.start()
        if not self.alive():
            raise WorkerDied(self.dead_reason or f"the {self.label} process is not running"
                             f"{self._log_hint()}")
        request = {"module": module, "func": func, "args": list(args), "kwargs": kwargs,
                   "store": store}
        _trace_call(module, func)
        started = time.perf_counter()
        try:
            self.proc.stdin.write((json.dumps(request) + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise self._died(f"{module}.{func}()") from None
        try:
            line = self._read_line(timeout, f"{module}.{func}()")
        except (KeyboardInterrupt, Exception) as exc:
            if not isinstance(exc, StudentCodeError):
                # interrupted mid-call (item budget, Ctrl-C): the worker is still busy with
                # this request, so it cannot serve the next one
                self.dead_reason = f"{module}.{func}() was interrupted and its process stopped"
                self.kill()
            raise
        seconds = time.perf_counter() - started
        reply = json.loads(line)
        if not reply["ok"]:
            if reply.get("blame") == "grader":
                raise TrustedCodeError(f"{module}.{func}() failed in the {self.label}: "
                                       f"{reply['error']}", reply.get("traceback", ""))
            detail = reply["error"]
            if reply.get("traceback"):
                detail += "\n" + reply["traceback"]
            raise StudentCodeError(detail)
        return CallResult(reply["value"], seconds)

    def _read_line(self, timeout: float, what: str) -> bytes:
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        buffer = b""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.kill()
                self.dead_reason = f"{what} did not return within {timeout:.0f} s and was stopped"
                raise WorkerTimeout(self.dead_reason)
            ready, _, _ = select.select([fd], [], [], min(remaining, 1.0))
            if not ready:
                continue
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                raise self._died(what)
            buffer += chunk
            if buffer.endswith(b"\n"):
                return buffer

    def _died(self, what: str) -> WorkerDied:
        code = self.proc.wait(timeout=5) if self.proc else None
        reason = _describe_exit(code)
        self.dead_reason = f"the process running your code {reason} during {what}"
        self.kill()
        return WorkerDied(self.dead_reason + self._log_hint())

    def _log_hint(self) -> str:
        try:
            tail = self.log_path.read_bytes()[-2500:].decode("utf-8", "replace").strip()
        except OSError:
            return ""
        return f"\n--- end of its log ---\n{tail}" if tail else ""

    def kill(self) -> None:
        if self.proc is None:
            return
        gpu.before_stop(self._gpu_name)
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        unregister_pid_group(self.proc.pid)
        gpu.after_stop(self._gpu_name)

    def close(self) -> None:
        """Ask the worker to exit; kill its group if it does not."""
        if self.proc is None:
            return
        gpu.before_stop(self._gpu_name)
        if self.alive():
            try:
                self.proc.stdin.write(b'{"op": "exit"}\n')
                self.proc.stdin.flush()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self.kill()


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "stopped answering"
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


CALL_TRACE = "LABGRADE_CALL_TRACE"  # `labgrade audit`: a file recording which item called what


def _trace_call(module: str, func: str) -> None:
    """Under `labgrade audit`, note which item (pytest's own PYTEST_CURRENT_TEST, "(setup)"
    when a fixture made the call) called `module.func`: audit maps functions to items."""
    path = os.environ.get(CALL_TRACE)
    if path:
        with open(path, "a") as out:
            out.write(json.dumps({"item": os.environ.get("PYTEST_CURRENT_TEST", ""),
                                  "module": module, "func": func}) + "\n")


class Respawning:
    """A long-lived worker, replaced by a fresh one when the previous one died (a timeout
    or a crash). Replacement n logs to `<log_dir>/<stem>-<n>.log`; `restarts` counts them
    (objects kept in a dead worker are gone: callers compare it to know)."""

    def __init__(self, start: Callable[[Path], Worker], log_dir: Path, stem: str) -> None:
        self._start = start
        self._log_dir = log_dir
        self._stem = stem
        self._worker: Worker | None = None
        self.restarts = 0

    def get(self) -> Worker:
        if self._worker is None or not self._worker.alive():
            if self._worker is not None:
                self._worker.kill()
                self.restarts += 1
            self._worker = self._start(self._log_dir / f"{self._stem}-{self.restarts}.log")
        return self._worker

    def close(self) -> None:
        if self._worker is not None:  # a lab that never called student code has none
            self._worker.close()


class Submission:
    """A directory laid out like `labs/<id>` (the starter, a solution, or a student's copy)."""

    def __init__(self, path: Path, lab_id: str, run_dir: Path,
                 worker_env: Mapping[str, str] | None = None) -> None:
        self.path = Path(path).resolve()
        self.lab_id = lab_id
        self.run_dir = run_dir
        # the one folder the student's worker may write (files it hands back, e.g. arrays)
        self.scratch = Path(run_dir) / "student-scratch"
        self.worker_env = dict(worker_env or {})  # read at each (re)start of the worker
        self._worker = Respawning(lambda log: Worker(self.path, log_path=log,
                                                     env=self.worker_env, label="worker",
                                                     student=True,
                                                     writable=[self.scratch]).start(),
                                  run_dir, "worker")

    def require(self, relpath: str) -> Path:
        target = self.path / relpath
        if not target.exists():
            raise Fail(f"{relpath} is missing from your submission ({self.path}). "
                       f"Start from the starter file in labs/{self.lab_id}/.")
        return target

    def worker(self) -> Worker:
        """The long-lived worker; a new one if the previous one died (timeout, crash)."""
        return self._worker.get()

    def call(self, module: str, func: str, *args: object, timeout: float = 120.0,
             **kwargs: object) -> object:
        return self.worker().call(module, func, *args, timeout=timeout, **kwargs).value

    def close(self) -> None:
        self._worker.close()
