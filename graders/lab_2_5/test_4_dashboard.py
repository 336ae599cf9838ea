"""dashboard.json: structure (labgrade.monitoring.dashboard says exactly what is checked),
every panel query parsed after Grafana's variables are substituted, then evaluated on the
live Prometheus right after the overload (README, 'dashboard.json')."""

from __future__ import annotations

import math

import pytest

from labgrade import Fail
from labgrade.kit import Deferred
from labgrade.monitoring import dashboard, promql
from labgrade.runtime.prometheus import PrometheusAPIError

# what the panels must show, by the metrics their queries read
COVERAGE = {
    "output token throughput": ("vllm:generation_tokens_total",),
    "TTFT percentiles": ("vllm:time_to_first_token_seconds_bucket",),
    "TPOT percentiles": ("vllm:request_time_per_output_token_seconds_bucket",
                         "vllm:inter_token_latency_seconds_bucket"),
    "KV-cache usage": ("vllm:kv_cache_usage_perc",),
    "queue": ("vllm:num_requests_waiting",),
}
QUANTILE_METRICS = {"TTFT percentiles", "TPOT percentiles"}


@pytest.fixture(scope="module")
def board(submission) -> Deferred[dict]:
    loaded: Deferred[dict] = Deferred("your dashboard.json")
    with loaded.recording():
        try:
            loaded.set(dashboard.load(submission.require("dashboard.json")))
        except dashboard.DashboardError as exc:
            raise Fail(str(exc)) from None
    return loaded


def _parsed(data: dict) -> list[tuple[dashboard.Query, promql.ParsedQuery | str]]:
    values = dashboard.template_values(data)
    out = []
    for query in dashboard.queries(data):
        try:
            out.append((query, promql.parse(query.expr, values)))
        except promql.QueryError as exc:
            out.append((query, str(exc)))
    return out


@pytest.mark.points(4)
def test_dashboard_structure(board):
    data = board.require()
    problems = dashboard.structure_problems(data)
    parsed = [p for _, p in _parsed(data) if isinstance(p, promql.ParsedQuery)]
    for what, metrics in COVERAGE.items():
        readers = [p for p in parsed if set(metrics) & set(p.metrics)]
        if what in QUANTILE_METRICS:
            readers = [p for p in readers if "histogram_quantile" in p.promql]
        if not readers:
            problems.append(f"no panel shows {what} (a query reading "
                            f"{' or '.join(metrics)}"
                            + (" through histogram_quantile" if what in QUANTILE_METRICS
                               else "") + ")")
    if problems:
        raise Fail("dashboard.json:\n- " + "\n- ".join(problems))


@pytest.mark.points(4)
def test_dashboard_queries_parse(board, score):
    data = board.require()
    results = _parsed(data)
    if not results:
        raise Fail("dashboard.json has no panel queries (targets[].expr)")
    bad = [f"panel {q.panel!r} query {q.ref_id}: {err} (in: {q.expr})"
           for q, err in results if isinstance(err, str)]
    score.measure(queries=len(results), unparseable=len(bad))
    if bad:
        raise Fail("PromQL that does not parse (after Grafana's variables were "
                   "substituted: $__rate_interval=30s, $__interval=5s, $__range=5m):\n- "
                   + "\n- ".join(bad))


@pytest.mark.points(6)
def test_dashboard_queries_return_data(board, alert_run, monitoring, settings, score):
    data = board.require()
    run = alert_run.get()
    prom = monitoring.get().prometheus
    model = settings["served_model_name"]
    problems, checked = [], 0
    if not dashboard.queries(data):
        raise Fail("dashboard.json has no panel queries (targets[].expr) to evaluate")
    for query, parsed in _parsed(data):
        if isinstance(parsed, str):
            problems.append(f"panel {query.panel!r} {query.ref_id}: does not parse: {parsed}")
            continue
        checked += 1
        try:
            result = prom.query(parsed.promql, at=run.load_end - 1)
        except PrometheusAPIError as exc:
            problems.append(f"panel {query.panel!r} {query.ref_id}: Prometheus rejected it: "
                            f"{exc}")
            continue
        finite = [r for r in result if math.isfinite(float(r["value"][1]))]
        if not finite:
            problems.append(f"panel {query.panel!r} {query.ref_id}: no data on the live "
                            f"server right after load ({parsed.promql})")
        elif any(r["metric"].get("model_name") != model for r in finite):
            problems.append(f"panel {query.panel!r} {query.ref_id}: series without "
                            f"model_name=\"{model}\" ({[r['metric'] for r in finite][:3]}); "
                            "keep the model_name label (e.g. sum by (model_name))")
    score.measure(queries_evaluated=checked)
    if problems:
        raise Fail("dashboard queries on the live Prometheus:\n- " + "\n- ".join(problems))
