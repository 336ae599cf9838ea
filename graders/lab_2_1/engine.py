"""The student's offline engine: their engine_kwargs(), checked against the memory budget,
then built by vLLM in the submission's worker.

Both steps raise `Fail` with a student-facing message; the conftest records it in a
`Deferred` so it costs only the items that need the engine.
"""

from __future__ import annotations

from dataclasses import dataclass

from labgrade import Fail
from labgrade.kit import call_student
from labgrade.runtime import gpu
from labgrade.submission import StudentCodeError, Submission

PROBES = "labgrade.probes.vllm_offline"
LLM_REF = {"$ref": "llm"}  # the engine, kept inside the worker under this name


@dataclass(frozen=True)
class BuiltEngine:
    facts: dict  # vllm_offline.engine_facts: max_model_len, dtype, KV-cache size, ...
    build_seconds: float
    rss_bytes: int  # the whole worker holding the engine
    gpu_free_before: int | None = None  # bytes, around the build (gpu profile)
    gpu_free_after: int | None = None


def engine_arguments(submission: Submission, model: str, profile: dict) -> dict:
    """The student's engine_kwargs(model, profile), with the model they were given."""
    kwargs = call_student(submission, "deploy", "engine_kwargs", model, profile, returns=dict)
    if kwargs.get("model") != model:
        raise Fail(f"engine_kwargs() did not give usable arguments: 'model' must be the path "
                   f"you were given ({model}), got {kwargs.get('model')!r}")
    return kwargs


def budget_problems(kwargs: dict, settings: dict) -> list[str]:
    """What in the arguments breaks the profile's memory budget (empty: nothing)."""
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


def within_budget(kwargs: dict, settings: dict) -> dict:
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


def build(submission: Submission, kwargs: dict, settings: dict) -> BuiltEngine:
    """vLLM's LLM(**kwargs) in the submission's worker, kept there as LLM_REF."""
    worker = submission.worker()
    before = gpu.memory()
    try:
        result = worker.call(PROBES, "build_engine", within_budget(kwargs, settings),
                             store=LLM_REF["$ref"], timeout=settings["engine_start_timeout"])
        after = gpu.memory()
        rss_bytes = worker.rss_bytes()
        facts = worker.call(PROBES, "engine_facts", LLM_REF, timeout=60).value
    except StudentCodeError as exc:
        raise Fail(f"vLLM could not build an engine from your engine_kwargs(): {exc}") from None
    measured = before is not None and after is not None
    return BuiltEngine(facts, result.seconds, rss_bytes,
                       before.free if measured else None, after.free if measured else None)
