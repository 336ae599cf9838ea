"""Grader-side helpers that run INSIDE a worker process, next to an offline vLLM engine.

They are the grader's own code (trusted logic) but execute where the engine lives; the
grading process only receives plain data and times each call from outside.
"""

from __future__ import annotations

import gc


def build_engine(kwargs: dict):
    from vllm import LLM

    return LLM(**kwargs)


def engine_facts(llm) -> dict:
    config = llm.llm_engine.vllm_config
    cache = config.cache_config
    return {
        "max_model_len": config.model_config.max_model_len,
        "dtype": str(config.model_config.dtype).replace("torch.", ""),
        "kv_cache_memory_bytes": cache.kv_cache_memory_bytes,
        "block_size": cache.block_size,
        "enforce_eager": config.model_config.enforce_eager,
    }


def greedy_generate(llm, prompts: list[str], max_tokens: int,
                    stop: list[str] | None = None) -> list[str]:
    """The grader's own correct batched greedy generation (the reference)."""
    from vllm import SamplingParams

    params = SamplingParams(max_tokens=max_tokens, temperature=0.0, stop=stop)
    return [o.outputs[0].text for o in llm.generate(prompts, params, use_tqdm=False)]


def sequential_generate(llm, prompts: list[str], max_tokens: int) -> list[str]:
    """Baseline for continuous batching: one request at a time, in a loop."""
    from vllm import SamplingParams

    params = SamplingParams(max_tokens=max_tokens, temperature=0.0, ignore_eos=True)
    return [llm.generate([p], params, use_tqdm=False)[0].outputs[0].text for p in prompts]


def shutdown(llm) -> None:
    """Give the engine's memory back (in-process engine core needs the explicit shutdown)."""
    try:
        llm.llm_engine.engine_core.shutdown()
    finally:
        del llm
        gc.collect()
        try:
            from vllm.distributed.parallel_state import cleanup_dist_env_and_memory

            cleanup_dist_env_and_memory()
        except Exception:  # noqa: BLE001 - best effort
            pass
