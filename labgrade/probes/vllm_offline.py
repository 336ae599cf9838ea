"""Grader-side helpers that run INSIDE a worker process, next to an offline vLLM engine.

They are the grader's own code (trusted logic) but execute where the engine lives; the
grading process only receives plain data and times each call from outside. A failure here
is a grader error, except where the student's input caused it: then `StudentFault`.
"""

from __future__ import annotations

import gc

from labgrade.scoring import StudentFault


def build_engine(kwargs: dict):
    """An engine from these arguments. vLLM rejecting them is a StudentFault: the arguments
    are the student's engine_kwargs(), except for the reference engine, whose caller
    (labgrade.runtime.vllm) turns any failure of its start into a grader error itself."""
    from vllm import LLM

    try:
        return LLM(**kwargs)
    except Exception as exc:
        raise StudentFault(f"{type(exc).__name__}: {exc}") from exc


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


def greedy_completions(llm, prompts: list[str], max_tokens: int,
                       stop: list[str] | None = None) -> list[dict]:
    """The grader's own correct batched greedy generation (the reference): per prompt the
    text, the number of generated token ids and the finish reason, so graders can check
    counts a student reports (usage) against the engine, not only their range."""
    from vllm import SamplingParams

    params = SamplingParams(max_tokens=max_tokens, temperature=0.0, stop=stop)
    return [{"text": c.text, "completion_tokens": len(c.token_ids),
             "finish_reason": c.finish_reason}
            for c in (o.outputs[0] for o in llm.generate(prompts, params, use_tqdm=False))]


def greedy_generate(llm, prompts: list[str], max_tokens: int,
                    stop: list[str] | None = None) -> list[str]:
    """The texts of `greedy_completions`."""
    return [c["text"] for c in greedy_completions(llm, prompts, max_tokens, stop)]


def sequential_generate(llm, prompts: list[str], max_tokens: int) -> list[str]:
    """Baseline for continuous batching: one request at a time, in a loop, on the
    student's engine (an engine their arguments or their code broke is their fault)."""
    from vllm import SamplingParams

    params = SamplingParams(max_tokens=max_tokens, temperature=0.0, ignore_eos=True)
    try:
        return [llm.generate([p], params, use_tqdm=False)[0].outputs[0].text for p in prompts]
    except Exception as exc:
        raise StudentFault(f"generating on the engine built from your engine_kwargs() "
                           f"failed: {type(exc).__name__}: {exc}") from exc


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
