"""A student's ASGI app (FastAPI) served by a real uvicorn in a subprocess.

The grading process never imports the app: `labgrade.probes.asgi_host` does, in a child
process with an isolated interpreter (`-I`), its own process group and its log in a file.
The host reports how far it got (import, factory, lifespan start-up, serving) in a small
status file, so a start that fails becomes a message about the student's code instead of
a log dump.

Readiness is "answers HTTP at all": uvicorn accepts connections only after the app's
lifespan start-up (building the engine) has finished, and whether `/health` answers 200 is
itself something graders score, so it cannot be the readiness probe.

    server = AppServer(submission_dir, model=path, profile={...}, port=free_port(),
                       log_path=run_dir / "app.log")
    server.start_in_background()      # returns at once; other items grade meanwhile
    ...
    server.wait()                     # ServiceError with a student-facing message
    httpx.get(server.base_url + "/health")
    server.stop()
"""

from __future__ import annotations

import json
import os
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from labgrade.runtime.process import ManagedProcess, ServiceError, safe_environ

HOST_MODULE = "labgrade.probes.asgi_host"


def http_answers(url: str, timeout: float = 2.0) -> bool:
    """True when anything HTTP answers at `url`, whatever the status code."""
    try:
        with urllib.request.urlopen(url, timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True  # 4xx/5xx: the server is up, the route is the student's business
    except (urllib.error.URLError, OSError, ValueError):
        return False


class AppServer:
    """The student's app under uvicorn: start in the background, wait, stop."""

    def __init__(self, submission_dir: Path, *, model: str, profile: Mapping, port: int,
                 log_path: Path, module: str = "app", factory: str = "create_app",
                 startup_timeout: float = 240.0, env: Mapping[str, str] | None = None,
                 host: str = "127.0.0.1", host_args: tuple[str, ...] = ()) -> None:
        self.port = port
        self.base_url = f"http://{host}:{port}"
        self.module = module
        self.factory = factory
        self.startup_timeout = startup_timeout
        # in a folder of its own: the only one (with its scratch) the sandboxed app may write
        status_dir = Path(log_path).parent / f"{Path(log_path).stem}-status"
        status_dir.mkdir(parents=True, exist_ok=True)
        self.status_path = status_dir / "status.json"
        self.status_path.unlink(missing_ok=True)
        argv = [sys.executable, "-I", "-m", HOST_MODULE, str(Path(submission_dir).resolve()),
                "--module", module, "--factory", factory, "--model", model,
                "--profile", json.dumps(dict(profile)), "--host", host, "--port", str(port),
                "--status-file", str(self.status_path), *host_args]
        path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
        self.process = ManagedProcess(argv, name="your app", log_path=log_path,
                                      env=safe_environ({"PATH": path, **(env or {})}),
                                      cwd=Path(log_path).parent, student=True,
                                      writable=[status_dir])
        self.ready_after: float | None = None
        self.error: ServiceError | None = None
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------
    def start_in_background(self) -> "AppServer":
        try:
            self.process.start()
        except ServiceError as exc:
            self.error = exc
            self._ready.set()
            return self
        self._thread = threading.Thread(target=self._wait, daemon=True,
                                        name=f"wait-app-{self.port}")
        self._thread.start()
        return self

    def _wait(self) -> None:
        try:
            self.ready_after = self.process.wait_ready(
                lambda: http_answers(f"{self.base_url}/health"),
                timeout=self.startup_timeout, what="answering HTTP")
        except ServiceError as exc:
            # the student's own error, when the host caught one, says more than the log
            own = self.status().get("ok") is False
            self.error = ServiceError(self._explain(exc), "" if own else exc.log_tail)
        finally:
            self._ready.set()

    def wait(self, timeout: float | None = None) -> "AppServer":
        """Block until the app answers HTTP; ServiceError (student-facing) otherwise."""
        if not self._ready.wait(timeout if timeout is not None else self.startup_timeout + 30):
            raise ServiceError("your app did not start in time", self.process.log_tail())
        if self.error is not None:
            raise self.error
        return self

    def alive(self) -> bool:
        return self.process.alive()

    def stop(self) -> None:
        self.process.stop()

    # -- what went wrong ---------------------------------------------------------------
    def status(self) -> dict:
        try:
            return json.loads(self.status_path.read_text())
        except (OSError, ValueError):
            return {}

    def _explain(self, exc: ServiceError) -> str:
        status = self.status()
        where = {"import": f"importing {self.module}.py",
                 "factory": f"calling {self.factory}(model, profile)",
                 "startup": "your app's start-up (the FastAPI lifespan: building the engine)",
                 }.get(status.get("phase", ""), "")
        if status.get("ok") is False:
            detail = status.get("traceback") or status.get("error", "")
            return f"your app failed while {where}: {status.get('error', '')}" + (
                f"\n{detail}" if detail and detail != status.get("error") else "")
        if status.get("phase") == "startup":
            return f"your app did not finish {where}: {exc}"
        return str(exc)
