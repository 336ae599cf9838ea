"""compare.py, the student's own measurement of the backends, cross-checked by perf_analyzer
on the same server in the same run, and by the wall time of the student's own call."""

from __future__ import annotations

import time

import pytest

from labgrade import Fail, Ungradable
from labgrade.kit import call_student
from labgrade.runtime.triton import TritonError, TritonNotInstalled
from labgrade.runtime.triton.perf_analyzer import find_perf_analyzer

KEYS = ("throughput_rps", "latency_avg_ms")


@pytest.mark.points(10)
def test_comparison_agrees_with_perf_analyzer(backends, submission, lab, settings, score):
    """compare(url, models, concurrency, requests) vs perf_analyzer at the same concurrency,
    right after it: throughput and average latency within the published bands; the
    throughputs fit the time compare() took (requests / throughput summed over the models
    cannot exceed it); throughput x latency at most `concurrency` requests in flight.

    In flight is bounded, not matched: a Python client on a loaded 2-core machine may keep
    fewer than `concurrency` requests in flight (measured: 1.04 of 3 for the reference
    solution's threads in CI) and its numbers are then still right. Requests / summed
    latencies, the usual counting error, is caught by the wall time instead: it claims the
    measurement took `concurrency` times longer than the call did."""
    try:
        analyzer = find_perf_analyzer()
    except TritonNotInstalled as exc:
        raise Ungradable(str(exc)) from None
    models = settings["compare_models"]
    server = backends.require()
    for model in models:
        backends.require_model(model)
    url = server.http_url.removeprefix("http://")
    conc = settings["compare_concurrency"]
    requests = settings["compare_requests"]
    began = time.monotonic()
    got = call_student(submission, "compare", "compare", url, models, conc, requests,
                       returns=dict, timeout=120)
    call_seconds = time.monotonic() - began
    side_by_side, problems, implied_seconds = {}, [], 0.0
    for model in models:
        mine = got.get(model)
        if not isinstance(mine, dict) or not all(isinstance(mine.get(k), (int, float))
                                                 for k in KEYS):
            raise Fail(f"compare() must return {{model: {{{', '.join(KEYS)}: number}}}} for "
                       f"{models}; got {got!r:.300}")
        if mine["throughput_rps"] <= 0 or mine["latency_avg_ms"] <= 0:
            raise Fail(f"{model}: throughput_rps and latency_avg_ms must be positive; got "
                       f"{mine!r:.200}")
        implied_seconds += requests / mine["throughput_rps"]
        try:
            ref = analyzer.measure(url, model, concurrency=conc,
                                   interval_ms=settings["perf_interval_ms"],
                                   log_path=lab.run_dir / "perf_analyzer.log")
        except TritonError as exc:
            raise RuntimeError(str(exc)) from None
        ratios = {"throughput": mine["throughput_rps"] / ref.throughput_rps,
                  "latency": mine["latency_avg_ms"] / ref.latency_avg_ms}
        # closed loop: requests in flight = throughput x latency (Little's law)
        in_flight = mine["throughput_rps"] * mine["latency_avg_ms"] / 1000.0 / conc
        low, high = settings["inflight_band"]
        if not low <= in_flight <= high:
            problems.append(f"{model}: your throughput x your average latency is "
                            f"{in_flight * conc:.2f} requests in flight, with at most {conc} "
                            f"(accepted {low * conc:.2f}..{high * conc:.2f}: Little's law; "
                            f"check the units: latency in milliseconds, the mean per request)")
        side_by_side[model] = {"yours": {k: round(float(mine[k]), 3) for k in KEYS},
                               "perf_analyzer": ref.as_dict(),
                               "ratio": {k: round(v, 3) for k, v in ratios.items()}}
        for key, band in (("throughput", settings["throughput_band"]),
                          ("latency", settings["latency_band"])):
            if not band[0] <= ratios[key] <= band[1]:
                problems.append(f"{model}: your {key} is {ratios[key]:.2f}x perf_analyzer's "
                                f"(accepted {band[0]}..{band[1]}x)")
    slack = settings["wall_time_slack"]
    if implied_seconds > call_seconds * slack:
        problems.append(f"your throughputs say measuring {requests} requests per model took "
                        f"{implied_seconds:.2f} s in all, but compare() returned after "
                        f"{call_seconds:.2f} s (accepted up to {slack}x): throughput counted as "
                        f"requests / summed latencies assumes one request in flight at a time")
    score.measure(concurrency=conc, side_by_side=side_by_side,
                  implied_seconds=round(implied_seconds, 3),
                  call_seconds=round(call_seconds, 3))
    if problems:
        raise Fail("; ".join(problems) + ". Throughput = requests completed / wall time from "
                   "the first send to the last answer, with `concurrency` requests in flight; "
                   "latency in milliseconds per request")
