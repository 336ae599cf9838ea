"""Services as subprocesses: own process group, log in a file, readiness, teardown.

Every real service a grader starts (vLLM's OpenAI server, tritonserver, a student's app)
is a `ManagedProcess`. It is a context manager; a start that fails still stops whatever it
started. Teardown sends SIGTERM to the whole process group, waits, then SIGKILLs the group,
so engine-core children and backend stubs go with their parent. Every live instance is also
tracked in a module registry so a signal handler can stop them all (`stop_all`).
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from labgrade.runtime import gpu

_LIVE: set["ManagedProcess"] = set()
_GROUPS: set[int] = set()  # process groups started outside ManagedProcess (workers)
_LIVE_LOCK = threading.Lock()


class ServiceError(RuntimeError):
    """A service did not start or died. `log_tail` holds the end of its log."""

    def __init__(self, message: str, log_tail: str = "") -> None:
        super().__init__(message)
        self.log_tail = log_tail

    def __str__(self) -> str:
        base = super().__str__()
        if self.log_tail:
            return f"{base}\n--- last lines of the log ---\n{self.log_tail}"
        return base


_SECRET_PREFIXES = ("GITHUB_", "ACTIONS_", "RUNNER_", "GRADESCOPE_")
_SECRET_WORDS = ("TOKEN", "SECRET", "PASSWORD", "API_KEY", "CREDENTIAL")


def safe_environ(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for processes that run student code: ours, minus CI plumbing and
    secrets (a student must not append a fake `result=` to $GITHUB_OUTPUT, or read a token)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(_SECRET_PREFIXES) and not any(w in k for w in _SECRET_WORDS)}
    env.update(extra or {})
    return env


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on loopback right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return 200 <= response.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


class ManagedProcess:
    """One service process in its own process group, logging to `log_path`."""

    def __init__(self, argv: Sequence[str], *, name: str, log_path: Path,
                 env: Mapping[str, str] | None = None, cwd: Path | None = None,
                 student: bool = False, writable: Sequence[Path] = ()) -> None:
        """`student`: the process runs student code (the student's server or app, a
        tritonserver serving student models): it then starts in the sandbox of
        `labgrade.isolation`, where `writable` directories are the only ones outside its
        private scratch that it may write."""
        self.argv = [str(a) for a in argv]
        self.student = student
        self.writable = [Path(w) for w in writable]
        self.name = name
        self.log_path = Path(log_path)
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.proc: subprocess.Popen | None = None
        self.started_at: float | None = None

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> "ManagedProcess":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        gpu.before_start(self.name)
        from labgrade import isolation  # lazy: isolation imports runtime modules
        # under the supervisor always (nothing outlives the grading); confined if student
        argv, env = isolation.wrap(None, self.argv,
                                   env=os.environ if self.env is None else self.env,
                                   cwd=str(self.cwd) if self.cwd else os.getcwd(),
                                   writable=self.writable, student=self.student)
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=env, cwd=self.cwd, start_new_session=True,
            )
        except OSError as exc:
            raise ServiceError(f"could not start {self.name}: {exc}") from exc
        finally:
            log.close()
        self.started_at = time.monotonic()
        with _LIVE_LOCK:
            _LIVE.add(self)
        return self

    def wait_ready(self, probe: Callable[[], bool], *, timeout: float,
                   what: str = "ready", interval: float = 0.25) -> float:
        """Poll `probe` until true; fail at once if the process exits. Returns seconds."""
        assert self.proc is not None and self.started_at is not None
        deadline = time.monotonic() + timeout
        while True:
            if probe():
                return time.monotonic() - self.started_at
            code = self.proc.poll()
            if code is not None:
                raise ServiceError(f"{self.name} exited with code {code} before it was {what}",
                                   self.log_tail())
            if time.monotonic() > deadline:
                raise ServiceError(f"{self.name} was not {what} within {timeout:.0f} s",
                                   self.log_tail())
            time.sleep(interval)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def send_signal(self, sig: int) -> None:
        """Signal the process group, as an orchestrator signals a container: the service
        runs under the isolation supervisor, which ignores a signal sent to it alone."""
        if self.proc is not None:
            _signal_group(self.proc.pid, sig)

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the process group, wait up to `grace` s, then SIGKILL the group."""
        proc = self.proc
        if proc is None:
            return
        gpu.before_stop(self.name)
        try:
            _signal_group(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pass
            # children may outlive the leader: always sweep the group
            _signal_group(proc.pid, signal.SIGKILL)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        finally:
            with _LIVE_LOCK:
                _LIVE.discard(self)
            gpu.after_stop(self.name)

    def __enter__(self) -> "ManagedProcess":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- logs --------------------------------------------------------------------------
    def log_tail(self, lines: int = 30, max_chars: int = 4000) -> str:
        try:
            data = self.log_path.read_bytes()[-64_000:].decode("utf-8", "replace")
        except OSError:
            return ""
        tail = "\n".join(data.splitlines()[-lines:])
        return tail[-max_chars:]


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def register_pid_group(pgid: int) -> None:
    with _LIVE_LOCK:
        _GROUPS.add(pgid)


def unregister_pid_group(pgid: int) -> None:
    with _LIVE_LOCK:
        _GROUPS.discard(pgid)


def stop_all() -> None:
    """Stop every live service and worker group (signal handlers and teardown call this)."""
    with _LIVE_LOCK:
        live = list(_LIVE)
        groups = list(_GROUPS)
        _GROUPS.clear()
    for pgid in groups:
        _signal_group(pgid, signal.SIGKILL)
    for service in live:
        service.stop(grace=3.0)


# A safety net for scripts (benchmarks, tools) that end by an exception their own cleanup
# did not foresee: no service started here outlives the interpreter.
atexit.register(stop_all)
