"""Items: prefix caching on a shared-prefix workload (hit rate from vLLM's own counters, TTFT
with the cache on vs off)."""

import statistics

import pytest

from labgrade import Fail
from labgrade.bench import clear_of, compare
from labgrade.kit import score_curve


@pytest.mark.points(15)
def test_prefix_cache_hit_rate(prefix_run, settings, score):
    """Hit rate = delta vllm:prefix_cache_hits / delta vllm:prefix_cache_queries (tokens)
    over N sequential requests (settings prefix_requests) built by the student's
    build_prompts() from one system prompt + document (~750 tokens) and a request id and
    question per request (~30 tokens), on the student's engine after a prefix-cache reset.
    Counters are exact, so the score is deterministic (where vLLM's counters miss requests,
    as vLLM 0.26 on a GPU does, each request's num_cached_tokens is counted instead). Linear curve: hit_rate_zero_at -> 0,
    hit_rate_full_at -> full points. Only whole blocks are reused: with the shared part
    first, vLLM's CPU default of 128-token blocks gives 0.74-0.89 depending on where the
    shared part ends relative to a block boundary (up to 127 of its tokens recomputed per
    request); 32-token blocks give at least 0.85 whatever the prompt format. The variable
    part first gives 0."""
    run = prefix_run.require()
    score.measure(prefix_cache_hits=run.hits, prefix_cache_queries=run.queries,
                  shared_prefix_tokens=run.common_prefix, block_size=run.block_size,
                  best_hit_rate_for_your_prompts=round(run.ideal_hit_rate, 4),
                  counted_by=run.counted_by,
                  **({"counter_queries": run.counter_queries, "counter_hits": run.counter_hits}
                     if run.counter_queries is not None else {}),
                  **{"leaderboard:prefix hit rate": round(run.hit_rate, 4)})
    if run.cache_info.get("enable_prefix_caching") not in ("True", "true", None):
        raise Fail("vllm:cache_config_info says enable_prefix_caching="
                   f"{run.cache_info.get('enable_prefix_caching')}: turn prefix caching on in "
                   "prefix_caching_kwargs()")
    common, block = run.common_prefix, run.block_size
    full_at = settings["hit_rate_full_at"]
    message = (f"prefix-cache hit rate {run.hit_rate:.3f} over {len(run.prompts)} requests "
               f"({int(run.hits):,} of {int(run.queries):,} prompt tokens from the cache)")
    if run.hits == 0 and common < block:
        hint = (f"Your prompts share only their first {common} tokens, less than one "
                f"{block}-token block: put the part every request shares (system prompt, "
                "document) first and the request's own part (id, question) last.")
    else:
        hint = (f"Your prompts share their first {common} tokens, of which whole {block}-token"
                f" blocks give {common // block * block}: the most these prompts allow at "
                f"this block size is {run.ideal_hit_rate:.3f}.")
    hint += run.where_prompts_part()
    zero_at = settings["hit_rate_zero_at"]
    if zero_at < run.hit_rate < full_at:  # partial credit: say what holds it back
        message += ". " + hint
    score_curve(score, "prefix_hit_rate", run.hit_rate, zero_at=zero_at, full_at=full_at,
                message=message, fail_hint=hint, digits=4)


@pytest.mark.points(10)
@pytest.mark.budget(400)
def test_prefix_cache_cuts_ttft(host, prefix_run, settings, score):
    """TTFT with prefix caching (the student's engine) vs without (the grader's base
    engine, same model, memory and length), on fresh requests of the same workload.

    Method: single requests with max_tokens=1 (time to first token: tokenize, schedule,
    prefill, one token), timed inside the grader's engine process (settings clock: that
    process's CPU time on the cpu profile, wall clock on gpu). Both engines get the same
    fresh request, baseline and candidate alternating request by request; a round holds
    settings ttft_repeats requests per side and keeps each side's best; 1 warm-up request
    per side, settings ttft_rounds rounds, the side that goes first alternating, and more
    rounds (up to ttft_max_rounds) while the ratios' quartiles straddle a threshold. The median
    of the per-round ratios (off / on) is scored on a linear curve (ttft_zero_at -> 0,
    ttft_full_at -> full points); spread and quartiles are recorded. Prompts of ~800
    tokens make prefill the bulk of TTFT: the reference solution measures 1.8-2.9x on 2
    cores (1.8x idle, more when busy); a cache that never hits is 1.0x and fails first on
    its hit rate."""
    run = prefix_run.require()
    if run.hits == 0:
        raise Fail("no token of your prompts came from the prefix cache (hit rate 0), so the "
                   "cache cannot speed anything up: see the hit-rate item")
    host.get("base").require()
    clock = settings["clock"]
    # the i-th call of each side sends the i-th fresh prompt: both sides see the same ones
    turns = {"base": iter(run.ttft_prompts), "prefix": iter(run.ttft_prompts)}
    walls = {"base": [], "prefix": []}

    def side(name: str):
        def measure() -> float:
            value = host.call("ttft", name, [next(turns[name])])
            walls[name].append(value["wall"])
            return value[clock]
        return measure

    zero_at, full_at = settings["ttft_zero_at"], settings["ttft_full_at"]
    result = compare(side("base"), side("prefix"), rounds=int(settings["ttft_rounds"]),
                     repeats=int(settings["ttft_repeats"]),
                     max_rounds=int(settings["ttft_max_rounds"]),
                     settled=clear_of(zero_at, full_at))
    wall = statistics.median(b / max(c, 1e-9) for b, c in zip(walls["base"][1:],
                                                               walls["prefix"][1:]))
    score.measure(clock=clock,
                  ttft_off_ms=round(statistics.median(result.baseline) * 1e3, 2),
                  ttft_on_ms=round(statistics.median(result.candidate) * 1e3, 2),
                  ttft_speedup_wall_per_request=round(wall, 3),
                  **{"leaderboard:prefix-cache TTFT speed-up": round(result.median, 2)})
    score_curve(score, "ttft_speedup", result, unit="x", zero_at=zero_at, full_at=full_at,
                message=f"TTFT with your prefix cache: {result.describe('speed-up')} over the "
                        "same engine without it",
                fail_hint="the shared part of your prompts must be reused, see the hit-rate "
                          "item")
