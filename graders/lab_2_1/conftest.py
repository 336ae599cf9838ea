"""Shared state for the lab_2_1 graders: the student's engine, the reference, the server.

Session fixtures here are per lab (this directory). None of them raises on a student
mistake: they record what happened, and each item calls `.require()` so the mistake costs
the items that need the thing, with the student's own error as feedback.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from labgrade import Fail
from labgrade.fixtures import *  # noqa: F403  (lab, submission, settings, run_dir)
from labgrade.runtime import gpu
from labgrade.runtime.process import ServiceError, free_port
from labgrade.runtime.vllm import ENGINE_ENV, OpenAIServer, ReferenceEngine, resolve_model
from labgrade.submission import StudentCodeError

PROBES = "labgrade.probes.vllm_offline"


def student_profile(settings: dict, profile_name: str) -> dict:
    """The profile dict handed to the student's functions (README documents its keys)."""
    view = {"name": profile_name, "device": settings["device"], "dtype": settings["dtype"],
            "max_model_len": settings["max_model_len"]}
    if settings["device"] == "cpu":
        view["kv_cache_budget_bytes"] = settings["kv_cache_budget_bytes"]
    else:
        view["gpu_memory_budget"] = settings["gpu_memory_budget"]
    return view


@dataclass
class StudentEngine:
    kwargs: dict | None = None
    kwargs_error: str | None = None
    budget_problems: list[str] = field(default_factory=list)
    build_error: str | None = None
    build_seconds: float = 0.0
    rss_bytes: int = 0
    facts: dict = field(default_factory=dict)
    gpu_free_before: int | None = None  # bytes, around the engine build (gpu profile)
    gpu_free_after: int | None = None

    def require_kwargs(self) -> dict:
        if self.kwargs is None:
            raise Fail(f"engine_kwargs() did not give usable arguments: {self.kwargs_error}")
        return self.kwargs

    def require_built(self) -> None:
        self.require_kwargs()
        if self.build_error:
            raise Fail(f"vLLM could not build an engine from your engine_kwargs(): "
                       f"{self.build_error}")


def check_budget(kwargs: dict, settings: dict) -> list[str]:
    problems = []
    if settings["device"] == "cpu":
        kv = kwargs.get("kv_cache_memory_bytes")
        budget = settings["kv_cache_budget_bytes"]
        if kv is None:
            problems.append("kv_cache_memory_bytes is not set: on CPU, vLLM then sizes the "
                            "KV cache from the machine's free memory (gigabytes)")
        elif not isinstance(kv, int) or kv <= 0:
            problems.append(f"kv_cache_memory_bytes must be a positive int, got {kv!r}")
        elif kv > budget:
            problems.append(f"kv_cache_memory_bytes={kv:,} is over the budget of "
                            f"{budget:,} bytes ({budget >> 20} MiB)")
    else:
        util = kwargs.get("gpu_memory_utilization", 0.9)
        if util > settings["gpu_memory_budget"]:
            problems.append(f"gpu_memory_utilization={util} is over the budget of "
                            f"{settings['gpu_memory_budget']}")
    return problems


def _capped(kwargs: dict, settings: dict) -> dict:
    """The student's arguments with the memory setting pulled inside the budget, so the
    remaining items still grade when only the budget item is wrong."""
    capped = dict(kwargs)
    if settings["device"] == "cpu":
        kv = capped.get("kv_cache_memory_bytes")
        if not isinstance(kv, int) or not 0 < kv <= settings["kv_cache_budget_bytes"]:
            capped["kv_cache_memory_bytes"] = settings["kv_cache_bytes"]
    elif capped.get("gpu_memory_utilization", 0.9) > settings["gpu_memory_budget"]:
        capped["gpu_memory_utilization"] = settings["gpu_memory_utilization"]
    return capped


@pytest.fixture(scope="package")
def model(settings) -> str:
    return resolve_model(settings["model"])


@pytest.fixture(scope="package")
def profile_view(settings, lab) -> dict:
    return student_profile(settings, lab.profile)


@pytest.fixture(scope="package")
def reference(lab, model, settings) -> ReferenceEngine:
    engine = ReferenceEngine(model, settings, lab.profile, lab.run_dir)
    lab.on_close(engine.close)
    return engine


@pytest.fixture(scope="package")
def student_engine(lab, submission, model, settings, profile_view) -> StudentEngine:
    state = StudentEngine()
    submission.worker_env.update(ENGINE_ENV)
    try:
        kwargs = submission.call("deploy", "engine_kwargs", model, profile_view, timeout=60)
    except StudentCodeError as exc:
        state.kwargs_error = str(exc)
        return state
    if not isinstance(kwargs, dict):
        state.kwargs_error = f"it returned {type(kwargs).__name__}, not a dict"
        return state
    if kwargs.get("model") != model:
        state.kwargs_error = f"'model' must be the path you were given ({model}), got " \
                             f"{kwargs.get('model')!r}"
        return state
    state.kwargs = kwargs
    state.budget_problems = check_budget(kwargs, settings)
    worker = submission.worker()
    before = gpu.memory()
    try:
        result = worker.call(PROBES, "build_engine", _capped(kwargs, settings), store="llm",
                             timeout=settings["engine_start_timeout"])
        state.build_seconds = result.seconds
        state.rss_bytes = worker.rss_bytes()
        after = gpu.memory()
        if before is not None and after is not None:
            state.gpu_free_before, state.gpu_free_after = before.free, after.free
        state.facts = worker.call(PROBES, "engine_facts", {"$ref": "llm"}, timeout=60).value
    except StudentCodeError as exc:
        state.build_error = str(exc)
    return state


@pytest.fixture(scope="package")
def llm_ref(student_engine) -> dict:
    """The handle to the student's engine inside the worker (fails the item if absent)."""
    student_engine.require_built()
    return {"$ref": "llm"}


class StudentServer:
    def __init__(self) -> None:
        self.server: OpenAIServer | None = None
        self.error: str | None = None

    def require(self) -> OpenAIServer:
        if self.server is None:
            raise Fail(f"your server could not be launched: {self.error}")
        try:
            self.server.wait()
        except ServiceError as exc:
            raise Fail(f"your server did not come up: {exc}") from None
        return self.server


@pytest.fixture(scope="package", autouse=True)
def _launch_server_early(request: pytest.FixtureRequest) -> None:
    """Start the server before the first item when any selected item needs it: its ~30 s
    start-up then overlaps the engine items instead of adding to them."""
    here = Path(__file__).parent
    if any("student_server" in item.fixturenames and here in Path(item.path).parents
           for item in request.session.items):
        request.getfixturevalue("student_server")


@pytest.fixture(scope="package")
def student_server(lab, submission, model, settings, profile_view) -> StudentServer:
    """The student's server, launched in the background; items call `.require()`."""
    state = StudentServer()
    port = free_port()
    try:
        argv = submission.call("deploy", "server_command", model, host="127.0.0.1", port=port,
                               served_model_name=settings["served_model_name"],
                               profile=profile_view, timeout=60)
    except StudentCodeError as exc:
        state.error = f"server_command() failed: {exc}"
        return state
    if not (isinstance(argv, list) and argv and all(isinstance(a, str) for a in argv)):
        state.error = f"server_command() must return a list of strings, got {argv!r:.200}"
        return state
    server = OpenAIServer(argv, port=port, log_path=lab.run_dir / "student-server.log",
                          startup_timeout=settings["server_start_timeout"])
    lab.on_close(server.stop)
    server.start_in_background()
    state.server = server
    return state
