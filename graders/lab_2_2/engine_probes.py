"""lab_2_2's probes, run INSIDE the grader's engine worker (see labgrade.probes.vllm_engines,
which hosts the engines): the prefix workload's per-request cache counts, its prompts' token
prefix, and the single-request timings the speed-up items compare.

The grader calls every probe of its engine worker through this module: the generic ones
(build, greedy, metrics, ...) are re-exported from labgrade.probes.vllm_engines.
"""

from __future__ import annotations

import statistics
import time

from labgrade.probes.vllm_engines import (build, facts, greedy, hf_config, metrics_text,
                                          reset_prefix_cache, running)

__all__ = ["build", "facts", "greedy", "hf_config", "latency", "metrics_text",
           "reset_prefix_cache", "sequential", "token_counts", "ttft"]


def _params(max_tokens: int, ignore_eos: bool = False):
    from vllm import SamplingParams

    return SamplingParams(max_tokens=max_tokens, temperature=0.0, ignore_eos=ignore_eos)


def sequential(name: str, prompts: list[str], max_tokens: int) -> dict:
    """One request at a time (each can reuse what the earlier ones cached), with each
    request's prompt length and its count of prompt tokens served from the cache."""
    params = _params(max_tokens)
    texts, tokens, cached = [], [], []
    for prompt in prompts:
        with running(name) as llm:
            out = llm.generate([prompt], params, use_tqdm=False)[0]
        texts.append(out.outputs[0].text)
        tokens.append(len(out.prompt_token_ids))
        cached.append(int(out.num_cached_tokens or 0))
    return {"texts": texts, "prompt_tokens": tokens, "cached_tokens": cached}


def _timed(name: str, prompt: str, params) -> tuple[float, float]:
    with running(name) as llm:
        wall, cpu = time.perf_counter(), time.process_time()
        llm.generate([prompt], params, use_tqdm=False)
        return time.perf_counter() - wall, time.process_time() - cpu


def ttft(name: str, prompts: list[str]) -> dict:
    """Time to first token of single requests, one after another: each request is a
    generate call with max_tokens=1 (tokenize, schedule, prefill, sample one token).
    Medians over the prompts, by the wall clock and by this process's CPU time."""
    params = _params(1)
    times = [_timed(name, p, params) for p in prompts]
    return {"wall": statistics.median(t[0] for t in times),
            "cpu": statistics.median(t[1] for t in times)}


def latency(name: str, prompt: str, max_tokens: int) -> dict:
    """End-to-end latency of one request on an otherwise idle engine (single stream), by
    the wall clock and by this process's CPU time."""
    wall, cpu = _timed(name, prompt, _params(max_tokens, ignore_eos=True))
    return {"wall": wall, "cpu": cpu}


def token_counts(name: str, prompts: list[str]) -> dict:
    """Prompt lengths and the longest token prefix that all prompts share."""
    with running(name) as llm:
        tokenizer = llm.get_tokenizer()
    ids = [tokenizer(p)["input_ids"] for p in prompts]
    common = 0
    if ids:
        shortest = min(len(x) for x in ids)
        while common < shortest and all(x[common] == ids[0][common] for x in ids):
            common += 1
    return {"lengths": [len(x) for x in ids], "common_prefix": common}
