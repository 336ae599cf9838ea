"""Items: speculative decoding (n-gram and draft model): greedy outputs unchanged, and the
single-stream latency it saves. Speculation buys latency at low batch sizes and can lower
batched throughput, so every timing here is one request at a time."""

import itertools
import statistics

import pytest

from labgrade import Fail
from labgrade.bench import clear_of, compare
from labgrade.kit import first_difference, score_curve
from labgrade.runtime import prom

from . import workloads

CHECK_TOKENS = 48


def _greedy(host, engine) -> dict:
    """Greedy outputs of the check prompts on an engine, and its spec-decode counters
    over that run (cached per engine)."""
    if "greedy" not in engine.cache:
        before = prom.parse(host.call("metrics_text", engine.name))
        texts = host.call("greedy", engine.name, workloads.SPEC_CHECK, CHECK_TOKENS)
        after = prom.parse(host.call("metrics_text", engine.name))
        counters = {k: prom.delta(before, after, f"vllm:spec_decode_{k}")
                    if f"vllm:spec_decode_{k}" in after else 0.0
                    for k in ("num_drafts", "num_draft_tokens", "num_accepted_tokens")}
        engine.cache["greedy"] = {"texts": texts, "counters": counters}
    return engine.cache["greedy"]


def _require_same_outputs(host, engine, what: str) -> dict:
    reference = _greedy(host, host.get("base").require())["texts"]
    run = _greedy(host, engine)
    for prompt, got, want in zip(workloads.SPEC_CHECK, run["texts"], reference):
        if got != want:
            raise Fail(f"with {what}, greedy output for {prompt[:40]!r} changed: "
                       f"{first_difference(got, want)}. Speculative decoding must not change "
                       "what the model generates: speculate with the target's own settings "
                       "(check dtype and anything else you changed)")
    return run["counters"]


def _acceptance(counters: dict) -> tuple[float, float]:
    drafts, proposed = counters["num_drafts"], counters["num_draft_tokens"]
    accepted = counters["num_accepted_tokens"]
    rate = accepted / proposed if proposed else 0.0
    mean_length = 1.0 + accepted / drafts if drafts else 1.0
    return rate, mean_length


def _latency_ratio(host, settings, candidate: str, seen: list,
                   thresholds: tuple[float, float]) -> "object":
    clock = settings["clock"]
    max_tokens = int(settings["spec_max_tokens"])
    prompts = {"base": itertools.cycle(workloads.SPEC_LATENCY),
               candidate: itertools.cycle(workloads.SPEC_LATENCY)}

    def side(name: str):
        def measure() -> float:
            value = host.call("latency", name, next(prompts[name]), max_tokens)
            seen.append((name, value))
            return value[clock]
        return measure

    return compare(side("base"), side(candidate), rounds=int(settings["spec_rounds"]),
                   repeats=int(settings["spec_repeats"]),
                   max_rounds=int(settings["spec_max_rounds"]),
                   settled=clear_of(*thresholds))


def _wall_ratio(seen: list, candidate: str) -> float | None:
    base = [v["wall"] for n, v in seen if n == "base"][1:]
    cand = [v["wall"] for n, v in seen if n == candidate][1:]
    ratios = [b / max(c, 1e-9) for b, c in zip(base, cand)]
    return round(statistics.median(ratios), 3) if ratios else None


@pytest.mark.points(5)
def test_ngram_keeps_greedy_outputs(host, ngram_engine, score):
    """With the student's n-gram speculation, greedy outputs of hidden prompts (48 tokens,
    batched) are identical to the grader's engine without speculation, and the engine
    really speculates (vllm:spec_decode_num_drafts grows)."""
    engine = ngram_engine.require()
    counters = _require_same_outputs(host, engine, "your n-gram speculation")
    rate, length = _acceptance(counters)
    score.measure(ngram_num_speculative_tokens=engine.facts.get("spec_tokens"),
                  ngram_acceptance_rate=round(rate, 3),
                  ngram_mean_acceptance_length=round(length, 3))
    if counters["num_drafts"] <= 0:
        raise Fail("the engine proposed no speculative tokens on prompts whose continuations "
                   "repeat: check prompt_lookup_min / prompt_lookup_max")


@pytest.mark.points(10)
@pytest.mark.budget(400)
def test_ngram_speedup(host, ngram_engine, settings, score):
    """Single-stream latency, the grader's engine without speculation vs the student's
    n-gram speculation, on prompts whose greedy continuations repeat phrases.

    Method: single requests (settings spec_max_tokens tokens, ignore_eos), the same prompt
    to both engines, the prompts cycling through a hidden set, timed inside the grader's
    engine process (settings clock: that process's CPU time on the cpu profile, wall clock
    on gpu); baseline and candidate alternate request by request; a round holds settings
    spec_repeats requests per side and keeps each side's best; 1 warm-up request per side,
    settings spec_rounds rounds, the side that goes first alternating, and more rounds (up
    to spec_max_rounds) while the ratios' quartiles straddle a threshold. The median of the
    per-round ratios (without / with) is scored on a linear curve (ngram_zero_at -> 0,
    ngram_full_at -> full points); spread and quartiles are recorded. A speed-up counts
    only with unchanged greedy outputs. On 2 busy CPU cores the reference solution
    (4 speculative tokens, lookup 2..4) measures 1.9-2.9x; without speculation it is 1.0x."""
    engine = ngram_engine.require()
    _require_same_outputs(host, engine, "your n-gram speculation")
    seen: list = []
    result = _latency_ratio(host, settings, "ngram", seen,
                            (settings["ngram_zero_at"], settings["ngram_full_at"]))
    score.measure(clock=settings["clock"],
                  latency_without_ms=round(statistics.median(result.baseline) * 1e3, 1),
                  latency_ngram_ms=round(statistics.median(result.candidate) * 1e3, 1),
                  ngram_speedup_wall_per_request=_wall_ratio(seen, "ngram"),
                  **{"leaderboard:n-gram speed-up": round(result.median, 2)})
    score_curve(score, "ngram_speedup", result, unit="x", zero_at=settings["ngram_zero_at"],
                full_at=settings["ngram_full_at"],
                message="single-stream latency with your n-gram speculation: "
                        + result.describe("speed-up"),
                fail_hint="propose several tokens per step (num_speculative_tokens) from "
                          "n-grams short enough to match (prompt_lookup_min/max)")


@pytest.mark.points(10)
def test_draft_model_speculation(host, draft_engine, settings, score):
    """Draft-model speculation with the given draft (same tokenizer): the engine builds,
    speculates with the draft (vllm:spec_decode_num_drafts grows), its drafts are accepted
    at a rate of at least settings draft_min_acceptance, and greedy outputs are identical
    to the engine without speculation. (Its speed-up is graded on the gpu profile: on 2 CPU
    cores a tiny draft costs about as much per step as the tiny target.)"""
    engine = draft_engine.require()
    counters = _require_same_outputs(host, engine, "your draft-model speculation")
    rate, length = _acceptance(counters)
    score.measure(draft_num_speculative_tokens=engine.facts.get("spec_tokens"),
                  draft_acceptance_rate=round(rate, 3),
                  draft_mean_acceptance_length=round(length, 3))
    if counters["num_drafts"] <= 0:
        raise Fail("the engine proposed no draft tokens: is speculative_config using the "
                   "draft model?")
    minimum = settings["draft_min_acceptance"]
    if rate < minimum:
        raise Fail(f"only {rate:.2f} of the draft's proposed tokens were accepted (mean "
                   f"acceptance length {length:.2f}); at least {minimum} is expected: each "
                   "extra speculative token is less likely to be right, so propose fewer")


@pytest.mark.points(10)
@pytest.mark.profiles("gpu")
@pytest.mark.budget(600)
def test_draft_model_speedup(host, draft_engine, settings, score):
    """Single-stream latency without speculation vs with the student's draft model: same
    method as the n-gram item (interleaved rounds, median ratio, linear curve draft_zero_at
    -> 0, draft_full_at -> full points, wall clock). GPU profile only: on CPU the tiny draft
    gains nothing (measured 0.8-1.1x on 2 cores)."""
    engine = draft_engine.require()
    _require_same_outputs(host, engine, "your draft-model speculation")
    seen: list = []
    result = _latency_ratio(host, settings, "draft", seen,
                            (settings["draft_zero_at"], settings["draft_full_at"]))
    score.measure(clock=settings["clock"],
                  latency_without_ms=round(statistics.median(result.baseline) * 1e3, 1),
                  latency_draft_ms=round(statistics.median(result.candidate) * 1e3, 1),
                  draft_speedup_wall_per_request=_wall_ratio(seen, "draft"))
    score_curve(score, "draft_speedup", result, unit="x", zero_at=settings["draft_zero_at"],
                full_at=settings["draft_full_at"],
                message="single-stream latency with your draft model: "
                        + result.describe("speed-up"),
                fail_hint="a draft model pays off when most of its proposals are accepted: "
                          "propose fewer tokens per step (num_speculative_tokens)")
