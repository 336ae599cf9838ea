"""compare.py, the student's own measurement of the backends, cross-checked by perf_analyzer
on the same server in the same run."""

from __future__ import annotations

import pytest

from labgrade import Fail, Ungradable
from labgrade.kit import call_student
from labgrade.runtime.triton import TritonError, TritonNotInstalled
from labgrade.runtime.triton.perf_analyzer import find_perf_analyzer

KEYS = ("throughput_rps", "latency_avg_ms")


@pytest.mark.points(10)
def test_comparison_agrees_with_perf_analyzer(backends, submission, lab, settings, score):
    """compare(url, models, concurrency, requests) vs perf_analyzer at the same concurrency,
    right after it: throughput and average latency within the published bands, and
    consistent with `concurrency` requests in flight (throughput x latency)."""
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
    got = call_student(submission, "compare", "compare", url, models, conc,
                       settings["compare_requests"], returns=dict, timeout=120)
    side_by_side, problems = {}, []
    for model in models:
        mine = got.get(model)
        if not isinstance(mine, dict) or not all(isinstance(mine.get(k), (int, float))
                                                 for k in KEYS):
            raise Fail(f"compare() must return {{model: {{{', '.join(KEYS)}: number}}}} for "
                       f"{models}; got {got!r:.300}")
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
                            f"{in_flight * conc:.2f} requests in flight, but {conc} were "
                            f"(accepted {low * conc:.2f}..{high * conc:.2f}: Little's law)")
        side_by_side[model] = {"yours": {k: round(float(mine[k]), 3) for k in KEYS},
                               "perf_analyzer": ref.as_dict(),
                               "ratio": {k: round(v, 3) for k, v in ratios.items()}}
        for key, band in (("throughput", settings["throughput_band"]),
                          ("latency", settings["latency_band"])):
            if not band[0] <= ratios[key] <= band[1]:
                problems.append(f"{model}: your {key} is {ratios[key]:.2f}x perf_analyzer's "
                                f"(accepted {band[0]}..{band[1]}x)")
    score.measure(concurrency=conc, side_by_side=side_by_side)
    if problems:
        raise Fail("; ".join(problems) + ". Throughput = requests completed / wall time from "
                   "the first send to the last answer, with `concurrency` requests in flight; "
                   "latency in milliseconds per request")
