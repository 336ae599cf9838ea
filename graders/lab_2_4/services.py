"""The gateway items' services: the student's gateway (real uvicorn, through
labgrade.runtime.app.AppServer) in front of vLLM's own OpenAI server (grader-run,
labgrade.runtime.vllm.OpenAIServer) on the tiny model.

Order matters: the gateway starts first and is watched (/ready, /health, twice a second)
while the engine loads, so the readiness item sees the 503 -> 200 transition as it happens.
All of it runs in a background thread: the file items grade meanwhile.
"""

from __future__ import annotations

import secrets
import sys
import threading
import time
from dataclasses import dataclass, field

import httpx

from labgrade import Fail, GraderError
from labgrade.kit import profile_view
from labgrade.runtime.app import AppServer
from labgrade.runtime.process import ServiceError, free_port
from labgrade.runtime.vllm import OpenAIServer, resolve_model

from .artefacts import KEY_ENV

# one key per item, so that no item's traffic drains another's bucket
KEY_ROLES = ("auth", "auth_other", "burst", "burst_other", "stream", "log", "shutdown")


@dataclass
class Observation:
    seconds: float          # since the engine was launched
    engine_up: bool         # vLLM's /health answered 200 just after the gateway did
    ready: int | None       # the gateway's /ready status (None: no answer)
    health: int | None


@dataclass
class Keys:
    by_role: dict[str, str] = field(default_factory=dict)

    @classmethod
    def fresh(cls) -> "Keys":
        return cls({role: f"sk-{role}-{secrets.token_urlsafe(12)}" for role in KEY_ROLES})

    def env_value(self) -> str:
        return ",".join(self.by_role.values())

    def __getitem__(self, role: str) -> str:
        return self.by_role[role]


def status(url: str, timeout: float = 2.0) -> int | None:
    try:
        return httpx.get(url, timeout=timeout).status_code
    except httpx.HTTPError:
        return None


class Stack:
    """vLLM server + the student's gateway; `ready_gateway()` for the items."""

    def __init__(self, lab, settings: dict) -> None:
        self.lab = lab
        self.settings = settings
        self.keys = Keys.fresh()
        self.model = settings["served_model_name"]
        self.server_port = free_port()
        self.upstream = f"http://127.0.0.1:{self.server_port}"
        self.gateway = self.new_gateway("gateway")
        self.server: OpenAIServer | None = None
        self.observations: list[Observation] = []
        self.engine_up_at: float | None = None
        self.failure: str | None = None        # the student's: the gateway never came up
        self.grader_failure: str | None = None  # ours: the vLLM server never came up
        self._done = threading.Event()

    @classmethod
    def start(cls, lab, settings: dict) -> "Stack":
        stack = cls(lab, settings)
        lab.on_close(stack.stop)
        threading.Thread(target=stack._bring_up, daemon=True, name="lab_2_4-stack").start()
        return stack

    def student_settings(self) -> dict:
        """The dict handed to create_app(upstream, settings) (README)."""
        return profile_view(self.settings, self.lab.profile, "rate_per_s", "burst",
                            "drain_deadline_s")

    def new_gateway(self, name: str) -> AppServer:
        drain = float(self.settings["drain_deadline_s"])
        return AppServer(self.lab.submission.path, model=self.upstream,
                         profile=self.student_settings(), port=free_port(),
                         log_path=self.lab.run_dir / f"{name}.log", module="gateway",
                         startup_timeout=float(self.settings["gateway_start_timeout"]),
                         env={KEY_ENV: self.keys.env_value(), "PYTHONUNBUFFERED": "1"},
                         host_args=("--graceful-timeout", str(drain),
                                    "--exit-status-from-shutdown"))

    # -- bring-up (background thread) ------------------------------------------------------
    def _bring_up(self) -> None:
        try:
            self.gateway.start_in_background().wait()
        except ServiceError as exc:
            self.failure = f"your gateway did not come up: {exc}"
            self._done.set()
            return
        try:
            self._start_engine_and_watch()
        except ServiceError as exc:
            self.grader_failure = f"the grader's vLLM server did not start: {exc}"
        finally:
            self._done.set()

    def _start_engine_and_watch(self) -> None:
        argv = [sys.executable, "-m", "vllm.entrypoints.openai.api_server",
                "--model", resolve_model(self.settings["model"]),
                "--served-model-name", self.model, "--host", "127.0.0.1",
                "--port", str(self.server_port), *self.settings["server_args"]]
        self.server = OpenAIServer(argv, port=self.server_port,
                                   log_path=self.lab.run_dir / "vllm-server.log",
                                   startup_timeout=float(self.settings["server_start_timeout"]),
                                   env=dict(self.settings["server_env"]), student=False)
        launched = time.monotonic()
        self.server.start_in_background()
        lag = float(self.settings["ready_lag_max_s"])
        while True:
            # the gateway first, the engine after: an engine still down after /ready
            # answered was down when it answered (it does not go down while starting)
            at = time.monotonic() - launched
            ready = status(f"{self.gateway.base_url}/ready")
            health = status(f"{self.gateway.base_url}/health")
            engine_up = status(f"{self.upstream}/health") == 200
            if engine_up and self.engine_up_at is None:
                self.engine_up_at = time.monotonic() - launched
            self.observations.append(Observation(at, engine_up, ready, health))
            if self.engine_up_at is not None and (
                    self.observations[-1].ready == 200
                    or time.monotonic() - launched > self.engine_up_at + lag + 1):
                break
            if not self.server.process.alive() or \
                    time.monotonic() - launched > self.server.startup_timeout:
                self.server.wait(timeout=1)  # raises ServiceError with the log tail
                break
            time.sleep(0.5)

    # -- for the items ---------------------------------------------------------------------
    def wait(self) -> None:
        timeout = float(self.settings["gateway_start_timeout"]) + \
            float(self.settings["server_start_timeout"]) + 30
        if not self._done.wait(timeout):
            raise Fail("the gateway and the vLLM server did not come up in "
                       f"{timeout:.0f} s; gateway log:\n{self.gateway.process.log_tail()}")
        if self.failure is not None:
            raise Fail(self.failure)
        if self.grader_failure is not None:
            raise GraderError(self.grader_failure)

    def ready_gateway(self) -> AppServer:
        self.wait()
        if not self.gateway.alive():
            raise Fail("your gateway exited during the grading; its log:\n"
                       + self.gateway.process.log_tail())
        return self.gateway

    def stop(self) -> None:
        self.gateway.stop()
        if self.server is not None:
            self.server.stop()
