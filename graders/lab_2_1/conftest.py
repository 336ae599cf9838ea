"""Shared state for the lab_2_1 graders: the student's engine, the reference, the server.

None of these fixtures raises on a student mistake: each records it in a `Deferred`, and
the items that need the thing call `.require()` (labgrade.kit).
"""

from __future__ import annotations

import pytest

from labgrade.fixtures import *  # noqa: F403  (lab, submission, settings, run_dir)
from labgrade.kit import Deferred, needed, profile_view
from labgrade.runtime.vllm import ENGINE_ENV, OpenAIServer, ReferenceEngine, resolve_model

from . import engine, server


@pytest.fixture(scope="package")
def model(settings) -> str:
    return resolve_model(settings["model"])


@pytest.fixture(scope="package")
def student_profile(settings, lab) -> dict:
    """The profile dict handed to the student's functions (README, 'Profiles')."""
    budget = "kv_cache_budget_bytes" if settings["device"] == "cpu" else "gpu_memory_budget"
    return profile_view(settings, lab.profile, "device", "dtype", "max_model_len", budget)


@pytest.fixture(scope="package")
def reference(lab, model, settings) -> ReferenceEngine:
    reference = ReferenceEngine(model, settings, lab.profile, lab.run_dir)
    lab.on_close(reference.close)
    return reference


@pytest.fixture(scope="package")
def engine_args(submission, model, student_profile) -> Deferred[dict]:
    """What the student's engine_kwargs() returned."""
    args: Deferred[dict] = Deferred("your engine_kwargs()")
    submission.worker_env.update(ENGINE_ENV)
    with args.recording():
        args.set(engine.engine_arguments(submission, model, student_profile))
    return args


@pytest.fixture(scope="package")
def student_engine(submission, engine_args, settings) -> Deferred[engine.BuiltEngine]:
    """The engine vLLM built from those arguments (memory pulled inside the budget)."""
    built: Deferred[engine.BuiltEngine] = Deferred("your engine")
    with built.recording():
        built.set(engine.build(submission, engine_args.require(), settings))
    return built


@pytest.fixture(scope="package")
def llm_ref(student_engine) -> dict:
    """The handle to the student's engine inside the worker (fails the item if absent)."""
    student_engine.require()
    return engine.LLM_REF


@pytest.fixture(scope="package", autouse=True)
def _start_server_early(request: pytest.FixtureRequest, settings) -> None:
    """Start the server before the first item when a selected item needs it: its ~30 s
    start-up then overlaps the engine items instead of adding to them.

    On a GPU, vLLM sizes an engine's KV cache by profiling the card, and memory another
    process takes meanwhile counts as the engine's own (H200, 2026-12-03: the solution's
    engine got -0.74 GiB of KV cache and failed while its server started beside it). There
    the engines start one at a time: the reference (unless its answers are cached), the
    student's engine, then the server, which still overlaps the engine items."""
    if settings["device"] != "cpu":
        if needed(request, "reference"):
            request.getfixturevalue("reference").start()
        if needed(request, "student_engine"):
            request.getfixturevalue("student_engine")
    if needed(request, "student_server"):
        request.getfixturevalue("student_server")


@pytest.fixture(scope="package")
def student_server(lab, model, settings, student_profile) -> Deferred[OpenAIServer]:
    """The student's server, launched in the background; items call `.require()`."""
    launched: Deferred[OpenAIServer] = Deferred("your server", ready=OpenAIServer.wait)
    with launched.recording("your server could not be launched: "):
        launched.set(server.launch(lab, model, settings, student_profile))
    return launched
