"""bench_client.py: definitions on hidden per-request records (exact, against
labgrade.bench.metrics), then on the live server: fixed concurrency checked against the
server's own counters and histograms and against labgrade.bench's client at the same load,
and Poisson arrivals (README, 'bench_client.py')."""

from __future__ import annotations

import math
import statistics

import pytest

from labgrade import Fail
from labgrade.bench import Workload, compute, run_load
from labgrade.bench.metrics import RequestSample
from labgrade.kit import call_student
from labgrade.runtime import prom

MODULE = "bench_client"
PERCENTILES = (50, 90, 99)
STATS = ("ttft", "tpot", "itl", "e2el")


def _prompts(n: int, salt: str) -> list[str]:
    """Different lengths, and the same prompt twice (a client keyed by prompt loses one)."""
    base = [f"{salt} request {i}: " + "describe the weather " * (1 + i % 7) for i in range(n)]
    base[n // 2] = base[0]
    return base


def _samples(records: list[dict]) -> list[RequestSample]:
    out = []
    for r in records:
        if not r.get("success"):
            out.append(RequestSample(start=r["start_s"], success=False, error=r.get("error", "")))
        else:
            out.append(RequestSample(start=r["start_s"], ttft=r["ttft_s"], latency=r["e2el_s"],
                                     itl=tuple(r["itl_s"]), output_tokens=r["output_tokens"]))
    return out


def _close(a: float, b: float, rel: float = 1e-6) -> bool:
    return abs(a - b) <= rel * max(1.0, abs(b))


def _compare(got: dict, want, where: str) -> list[str]:
    """Student's metrics dict vs labgrade.bench's RunMetrics."""
    problems = []
    for key, expect in (("completed", want.completed), ("failed", want.failed),
                        ("total_output_tokens", want.total_output_tokens),
                        ("request_throughput", want.request_throughput),
                        ("output_throughput", want.output_throughput),
                        ("goodput", want.goodput)):
        value = got.get(key)
        if expect is None:
            if value is not None:
                problems.append(f"{where}: {key} = {value}, expected None (no SLO given)")
        elif not isinstance(value, (int, float)) or not _close(float(value), float(expect)):
            problems.append(f"{where}: {key} = {value!r}, expected {expect:.6g}")
    for stat in STATS:
        want_stat = getattr(want, stat)
        for field in ("mean", *(f"p{p}" for p in PERCENTILES)):
            expect, value = want_stat.get(field, math.nan), (got.get(stat) or {}).get(field)
            if math.isnan(expect):
                if value is not None:
                    problems.append(f"{where}: {stat}.{field} = {value}, expected None "
                                    "(no such values)")
            elif not isinstance(value, (int, float)) or not _close(float(value), expect):
                problems.append(f"{where}: {stat}.{field} = {value!r}, expected {expect:.6g}")
    return problems


def _record(start, ttft, itl, tokens, success=True):
    e2el = ttft + sum(itl)
    return {"start_s": start, "ttft_s": ttft if success else None,
            "e2el_s": e2el if success else None, "itl_s": list(itl) if success else [],
            "output_tokens": tokens if success else 0, "success": success,
            "error": "" if success else "HTTP 500"}


# hidden records: a single-token output (no TPOT), a failed request, equal values, uneven
# gaps, one that meets some SLOs but not all
HIDDEN_RECORDS = [
    _record(0.0, 0.30, [0.02, 0.05, 0.01], 4),
    _record(0.1, 0.25, [], 1),
    _record(0.2, 0.40, [0.03] * 7, 8),
    _record(0.2, 0.40, [0.03] * 7, 8),
    _record(0.3, 0.0, [], 0, success=False),
    _record(0.5, 1.20, [0.10, 0.02, 0.02, 0.30, 0.01], 6),
    _record(0.6, 0.20, [0.20] * 4, 5),  # meets the TTFT SLO, misses TPOT and E2E
]
HIDDEN_CASES = [  # (duration, slo)
    (2.0, None),
    (2.0, {"ttft": 0.5}),
    (3.5, {"ttft": 0.5, "tpot": 0.04}),
    (3.5, {"e2el": 0.7, "tpot": 0.03}),
]


@pytest.mark.points(6)
def test_metric_definitions(submission, score):
    """compute_metrics on hidden records vs labgrade.bench.metrics.compute (vllm bench
    serve's definitions), exact to 1e-6."""
    problems = []
    for duration, slo in HIDDEN_CASES:
        got = call_student(submission, MODULE, "compute_metrics", HIDDEN_RECORDS, duration,
                           slo, list(PERCENTILES), returns=dict)
        want = compute(_samples(HIDDEN_RECORDS), duration, slo, PERCENTILES)
        problems += _compare(got, want, f"duration {duration} s, slo {slo}")
    if problems:
        raise Fail("compute_metrics() disagrees with the README's definitions on hidden "
                   "records (one has a single output token, one failed, two are equal):\n- "
                   + "\n- ".join(problems[:12]))


def _run_student(submission, url: str, settings: dict, prompts, **mode) -> dict:
    result = call_student(submission, MODULE, "run_benchmark", url,
                          settings["served_model_name"], prompts,
                          max_tokens=settings["bench_max_tokens"], timeout=settings["bench_timeout_s"],
                          returns=dict, **mode)
    records = result.get("requests")
    if not isinstance(records, list) or len(records) != len(prompts):
        raise Fail(f"run_benchmark() must return one record per prompt under 'requests' "
                   f"({len(prompts)} prompts, got "
                   f"{len(records) if isinstance(records, list) else records!r:.80})")
    return result


def _server_delta(before: prom.Snapshot, after: prom.Snapshot, model: str) -> dict:
    def d(name: str) -> float:
        return after.value(name, model_name=model) - before.value(name, 0.0, model_name=model)
    return {"requests": d("vllm:e2e_request_latency_seconds_count"),
            "output_tokens": d("vllm:generation_tokens_total"),
            "ttft_mean": d("vllm:time_to_first_token_seconds_sum")
            / max(d("vllm:time_to_first_token_seconds_count"), 1),
            "e2el_mean": d("vllm:e2e_request_latency_seconds_sum")
            / max(d("vllm:e2e_request_latency_seconds_count"), 1)}


def _max_in_flight(records: list[dict]) -> int:
    events = sorted([(r["start_s"], 1) for r in records if r["success"]]
                    + [(r["start_s"] + r["e2el_s"], -1) for r in records if r["success"]])
    level = peak = 0
    for _, step in events:
        level += step
        peak = max(peak, level)
    return peak


@pytest.mark.points(8)
def test_fixed_concurrency_vs_server_and_reference(submission, vllm_server, settings, score):
    server = vllm_server.require()
    model, conc = settings["served_model_name"], settings["bench_concurrency"]
    prompts = _prompts(settings["bench_prompts"], "fixed")
    before = prom.scrape(server.base_url + "/metrics")
    got = _run_student(submission, server.base_url, settings, prompts, concurrency=conc,
                       slo={"ttft": 1.0, "tpot": 0.05})
    after = prom.scrape(server.base_url + "/metrics")
    srv = _server_delta(before, after, model)
    ref_load = run_load(server.base_url, model, Workload(prompts, settings["bench_max_tokens"]),
                        concurrency=conc)
    ref = compute(ref_load.samples, ref_load.duration)
    records = got["requests"]
    own = compute(_samples(records), float(got.get("duration_s") or 0.0),
                  {"ttft": 1.0, "tpot": 0.05}, PERCENTILES)
    tol_s, tol_f = settings["ttft_mean_tolerance_s"], settings["ttft_mean_tolerance_fraction"]
    ttft_mean = (got.get("ttft") or {}).get("mean")
    e2el_mean = (got.get("e2el") or {}).get("mean")
    ratio = (got.get("output_throughput") or 0.0) / ref.output_throughput
    if isinstance(ttft_mean, (int, float)):  # the client's own overhead at this load
        score.measure(client_overhead_ttft_s=round(ttft_mean - srv["ttft_mean"], 4))
    score.measure(server=srv, student_ttft_mean_s=ttft_mean, student_e2el_mean_s=e2el_mean,
                  reference_ttft_mean_s=ref.ttft["mean"], throughput_ratio=round(ratio, 3),
                  max_in_flight=_max_in_flight(records))
    problems = []
    if got.get("completed") != len(prompts) or srv["requests"] != len(prompts):
        problems.append(f"completed = {got.get('completed')}; the server finished "
                        f"{srv['requests']:.0f} requests for {len(prompts)} prompts")
    if got.get("total_output_tokens") != srv["output_tokens"]:
        problems.append(f"total_output_tokens = {got.get('total_output_tokens')}, the server "
                        f"generated {srv['output_tokens']:.0f} (vllm:generation_tokens_total)")
    problems += _compare(got, own, "your run's aggregates vs its own records")[:4]
    for what, mine, theirs in (("TTFT", ttft_mean, srv["ttft_mean"]),
                               ("E2E latency", e2el_mean, srv["e2el_mean"])):
        limit = max(tol_s, tol_f * theirs)
        if not isinstance(mine, (int, float)) or not (theirs - limit <= mine <= theirs + limit):
            problems.append(f"mean {what} {mine!r} s vs the server's own histogram mean "
                            f"{theirs:.4f} s: allowed ±{limit:.3f} s")
    peak = _max_in_flight(records)
    if not conc - 1 <= peak <= conc:
        problems.append(f"{peak} requests were in flight at once; concurrency={conc}")
    if not settings["throughput_ratio_min"] <= ratio <= settings["throughput_ratio_max"]:
        problems.append(f"output throughput {got.get('output_throughput')!r} tok/s is "
                        f"{ratio:.2f}x the reference client's {ref.output_throughput:.1f} "
                        f"at the same load (allowed {settings['throughput_ratio_min']}-"
                        f"{settings['throughput_ratio_max']}x)")
    if problems:
        raise Fail(f"run_benchmark(concurrency={conc}) on {len(prompts)} hidden prompts "
                   f"(max_tokens {settings['bench_max_tokens']}):\n- " + "\n- ".join(problems))


@pytest.mark.points(4)
def test_poisson_arrivals(submission, vllm_server, settings, score):
    server = vllm_server.require()
    rate, n = settings["poisson_rate"], settings["poisson_prompts"]
    prompts = _prompts(n, "poisson")
    before = prom.scrape(server.base_url + "/metrics")
    got = _run_student(submission, server.base_url, settings, prompts, request_rate=rate,
                       seed=7)
    after = prom.scrape(server.base_url + "/metrics")
    served = _server_delta(before, after, settings["served_model_name"])["requests"]
    starts = sorted(r["start_s"] for r in got["requests"])
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    mean_gap = statistics.fmean(gaps)
    cv = statistics.pstdev(gaps) / mean_gap if mean_gap > 0 else 0.0
    score.measure(mean_gap_s=round(mean_gap, 4), gap_cv=round(cv, 3), served=served)
    problems = []
    tol = settings["poisson_gap_tolerance"]
    if not abs(mean_gap * rate - 1) <= tol:
        problems.append(f"mean gap between sends {mean_gap:.4f} s; 1/rate = {1 / rate:.4f} s "
                        f"(allowed ±{tol:.0%})")
    low, high = settings["poisson_cv_range"]
    if not low <= cv <= high:
        problems.append(f"gaps' coefficient of variation {cv:.2f}: exponential gaps (a "
                        f"Poisson process) have 1, allowed {low}-{high}")
    if served != n or got.get("completed") != n:
        problems.append(f"completed = {got.get('completed')}, the server finished "
                        f"{served:.0f} of {n}")
    if problems:
        raise Fail(f"run_benchmark(request_rate={rate}) on {n} hidden prompts:\n- "
                   + "\n- ".join(problems))
