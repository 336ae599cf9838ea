"""The measurement core (labgrade.bench) and the Prometheus reader (labgrade.runtime.prom),
without an engine: metric definitions on hand-made samples, the A/B comparator's order and
ratios, the load generator against a small streaming server with a known schedule, and
exposition-text parsing (including prometheus_client's `_total` renaming)."""

from __future__ import annotations

import json
import math
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from labgrade.bench import (Comparison, RequestSample, Workload, clear_of, compare, compute,
                            percentile, run_load)
from labgrade.runtime import prom


# ------------------------------------------------------------------------------ metrics
def test_percentile_interpolates_like_numpy():
    values = [3.0, 1.0, 4.0, 1.5, 9.0, 2.6]
    for q in (0, 10, 50, 90, 99, 100):
        assert percentile(values, q) == pytest.approx(np.percentile(values, q))
    assert math.isnan(percentile([], 50))


def test_compute_follows_vllm_bench_serve_definitions():
    samples = [
        # start, TTFT, E2E, gaps between content chunks, output tokens
        RequestSample(start=0.0, ttft=0.10, latency=0.50, itl=(0.1, 0.1, 0.2),
                      output_tokens=5, prompt_tokens=7),
        RequestSample(start=0.2, ttft=0.30, latency=0.30, itl=(), output_tokens=1),
        RequestSample(start=0.4, ttft=0.20, latency=1.20, itl=(0.5, 0.5), output_tokens=3),
        RequestSample(start=0.5, success=False, error="HTTP 500"),
    ]
    m = compute(samples, duration=2.0, slo={"ttft": 0.25, "e2el": 1.0})
    assert m.completed == 3 and m.failed == 1
    assert m.total_output_tokens == 9
    assert m.request_throughput == pytest.approx(1.5)
    assert m.output_throughput == pytest.approx(4.5)
    assert m.ttft["median"] == pytest.approx(0.20)
    # TPOT = (E2E - TTFT) / (tokens - 1), only for requests with more than one token
    assert m.tpot["mean"] == pytest.approx(((0.4 / 4) + (1.0 / 2)) / 2)
    # ITL pools the gaps of all requests
    assert m.itl["median"] == pytest.approx(np.median([0.1, 0.1, 0.2, 0.5, 0.5]))
    assert m.e2el["p99"] == pytest.approx(np.percentile([0.5, 0.3, 1.2], 99))
    # goodput: requests meeting every SLO given (the 1st only: the 2nd misses TTFT,
    # the 3rd misses E2E), per second of the run
    assert m.goodput == pytest.approx(0.5)


def test_tpot_of_a_single_token_request_is_undefined():
    assert RequestSample(start=0, ttft=0.1, latency=0.1, output_tokens=1).tpot is None


# ----------------------------------------------------------------------------- compare
def _recorder(values: list[float], log: list[str], name: str):
    it = iter(values)

    def measure() -> float:
        log.append(name)
        return next(it)
    return measure


def test_compare_interleaves_alternating_who_goes_first():
    log: list[str] = []
    result = compare(_recorder([2.0] * 4, log, "b"), _recorder([1.0] * 4, log, "c"),
                     rounds=3, warmup=1)
    assert log == ["b", "c",            # warm-up
                   "b", "c", "c", "b", "b", "c"]
    assert result.ratios == (2.0, 2.0, 2.0) and result.median == 2.0 and result.spread == 0


def test_compare_ratio_direction_for_times_and_rates():
    times = compare(lambda: 3.0, lambda: 1.5, rounds=1, warmup=0)
    assert times.median == pytest.approx(2.0)  # candidate takes half the time: 2x better
    rates = compare(lambda: 100.0, lambda: 150.0, rounds=1, warmup=0, higher_is_better=True)
    assert rates.median == pytest.approx(1.5)


def test_compare_median_ignores_a_disturbed_round():
    base = [1.0, 1.0, 9.0, 1.0, 1.0]  # round 3's baseline hit by a noisy neighbour
    cand = [0.5] * 5
    result = compare(_recorder(base, [], "b"), _recorder(cand, [], "c"), rounds=5, warmup=0)
    assert result.median == pytest.approx(2.0)
    assert result.spread == pytest.approx(16.0)
    assert result.quartiles == (pytest.approx(2.0), pytest.approx(2.0))


def test_compare_repeats_keep_each_sides_best_per_round():
    log: list[str] = []
    # per round two measurements per side; interference only ever adds time
    base = [1.0, 5.0, 7.0, 1.0]
    cand = [0.5, 0.6, 0.5, 9.0]
    result = compare(_recorder(base, log, "b"), _recorder(cand, log, "c"), rounds=2,
                     warmup=0, repeats=2)
    assert log == ["b", "c", "c", "b", "c", "b", "b", "c"]
    assert result.baseline == (1.0, 1.0) and result.candidate == (0.5, 0.5)
    assert result.ratios == (2.0, 2.0)
    rates = compare(_recorder([10, 30], [], "b"), _recorder([20, 60], [], "c"), rounds=1,
                    warmup=0, repeats=2, higher_is_better=True)
    assert rates.baseline == (30,) and rates.candidate == (60,) and rates.median == 2.0


def test_compare_adds_rounds_only_while_unsettled():
    # clear case: the quartiles of 5 rounds of 2.0 are far above both thresholds
    calls: list[str] = []
    clear = compare(_recorder([2.0] * 20, calls, "b"), _recorder([1.0] * 20, calls, "c"),
                    rounds=5, warmup=0, max_rounds=11, settled=clear_of(1.1, 1.3))
    assert len(clear.ratios) == 5 and len(calls) == 10
    # close case: ratios around the full-marks threshold keep it going to max_rounds
    base = [1.2, 1.4, 1.25, 1.35, 1.3] * 4
    close = compare(_recorder(base, [], "b"), _recorder([1.0] * 20, [], "c"), rounds=5,
                    warmup=0, max_rounds=11, settled=clear_of(1.1, 1.3))
    assert len(close.ratios) == 11
    # without `settled`, max_rounds changes nothing
    plain = compare(lambda: 1.0, lambda: 1.0, rounds=3, warmup=0, max_rounds=9)
    assert len(plain.ratios) == 3
    with pytest.raises(ValueError):
        compare(lambda: 1.0, lambda: 1.0, rounds=5, max_rounds=3)


def test_clear_of_needs_the_whole_interquartile_range_on_one_side():
    settled = clear_of(1.1, 1.3)
    assert settled(Comparison((1.4, 1.5, 1.6, 1.7), (), ()))      # above both
    assert settled(Comparison((0.9, 1.0, 1.0, 1.05), (), ()))     # below both
    assert not settled(Comparison((1.2, 1.25, 1.4, 1.5), (), ()))  # q1 under 1.3
    assert not settled(Comparison((1.0, 1.05, 1.2, 1.5), (), ()))  # straddles 1.1


def test_compare_rejects_nonsense_and_summarizes():
    with pytest.raises(ValueError):
        compare(lambda: 1.0, lambda: 1.0, rounds=0)
    summary = Comparison((1.0, 2.0, 3.0), (1, 2, 3), (1, 1, 1)).summary("speedup", digits=2)
    assert summary == {"speedup": 2.0, "speedup_spread": 2.0, "speedup_quartiles": [1.5, 2.5],
                       "speedup_rounds": [1.0, 2.0, 3.0]}
    assert "2.00x (median of 1 interleaved rounds" in Comparison((2.0,), (2,), (1,)).describe()


# ----------------------------------------------------------------------------- loadgen
class _FakeServer:
    """OpenAI-style streaming completions with a known schedule: the first chunk after
    `ttft`, then one chunk per `itl`, then a usage chunk and [DONE]. Counts requests in
    flight. `/metrics` serves a fixed exposition text; a prompt "fail" answers 500."""

    ttft = 0.05
    itl = 0.01
    metrics = ""

    def __init__(self, ttft: float | None = None) -> None:
        if ttft is not None:
            self.ttft = ttft
        self.in_flight = 0
        self.max_in_flight = 0
        self.bodies: list[dict] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                body = outer.metrics.encode()
                self.send_response(200 if self.path == "/metrics" else 404)
                self.send_header("content-type", "text/plain; version=0.0.4")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                request = json.loads(self.rfile.read(int(self.headers["content-length"])))
                with outer.lock:
                    outer.bodies.append(request)
                    outer.in_flight += 1
                    outer.max_in_flight = max(outer.max_in_flight, outer.in_flight)
                try:
                    self._answer(request)
                finally:
                    with outer.lock:
                        outer.in_flight -= 1

            def _answer(self, request: dict) -> None:
                if request["prompt"] == "fail":
                    body = b'{"error": "boom"}'
                    self.send_response(500)
                    self.send_header("content-length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("connection", "close")
                self.end_headers()
                n = request["max_tokens"]

                def send(payload) -> None:
                    data = payload if isinstance(payload, str) else json.dumps(payload)
                    self.wfile.write(f"data: {data}\n\n".encode())
                    self.wfile.flush()

                time.sleep(outer.ttft)
                for i in range(n):
                    if i:
                        time.sleep(outer.itl)
                    send({"choices": [{"index": 0, "text": f" t{i}"}]})
                send({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": n}})
                send("[DONE]")
                self.close_connection = True

        class Server(ThreadingHTTPServer):
            request_queue_size = 256  # many clients connect at once

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "_FakeServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_run_load_measures_a_known_schedule():
    with _FakeServer() as server:
        workload = Workload(prompts=[f"p{i}" for i in range(6)], max_tokens=5)
        result = run_load(server.url, "m", workload, concurrency=2, warmup=1)
    assert len(result.samples) == 6 and all(s.success for s in result.samples)
    assert len(server.bodies) == 7  # one warm-up request, not in the samples
    assert server.max_in_flight <= 2
    body = server.bodies[-1]
    assert body["stream"] is True and body["ignore_eos"] is True and body["model"] == "m"
    assert body["stream_options"] == {"include_usage": True}
    for s in result.samples:
        assert s.output_tokens == 5 and s.prompt_tokens == 3
        assert s.text == " t0 t1 t2 t3 t4"
        assert len(s.itl) == 4
        assert 0.04 <= s.ttft < 0.5  # the first event with choices, as vllm bench serve
        assert s.latency == pytest.approx(s.ttft + sum(s.itl))  # ends at the last token
        assert s.tpot == pytest.approx((s.latency - s.ttft) / 4)
    m = compute(result.samples, result.duration)
    assert m.completed == 6 and m.total_output_tokens == 30
    # 6 requests, 2 at a time, ~0.09 s each: three waves
    assert result.duration >= 3 * (0.05 + 4 * 0.01) * 0.9


def test_run_load_without_a_cap_sends_everything_at_once():
    # like vllm bench serve: no client-side connection limit, so none of 70 requests waits
    # for a connection after its start time was taken (a pool of 64 would hold 6 back)
    with _FakeServer(ttft=1.0) as server:
        result = run_load(server.url, "m", Workload(prompts=[f"p{i}" for i in range(70)],
                                                    max_tokens=1))
    assert all(s.success for s in result.samples)
    assert server.max_in_flight > 64


def test_run_load_poisson_arrivals_and_failures():
    with _FakeServer() as server:
        workload = Workload(prompts=["a", "fail", "b", "c"], max_tokens=2, extra={"seed": 1})
        started = time.perf_counter()
        result = run_load(server.url, "m", workload, rate=50.0, seed=3)
        elapsed = time.perf_counter() - started
    failed = [s for s in result.samples if not s.success]
    assert len(failed) == 1 and failed[0].error.startswith("HTTP 500")
    assert all(body.get("seed") == 1 for body in server.bodies)
    assert elapsed < 5
    starts = sorted(s.start for s in result.samples)
    assert starts[-1] - starts[0] > 0  # requests were spread out, not sent together


# ---------------------------------------------------------------------------- prometheus
EXPOSITION = """\
# HELP vllm:prefix_cache_queries Prefix cache queries, in terms of number of queried tokens.
# TYPE vllm:prefix_cache_queries counter
vllm:prefix_cache_queries_total{engine="0",model_name="tiny"} 1200.0
vllm:prefix_cache_queries_created{engine="0",model_name="tiny"} 1.7e9
# HELP vllm:prefix_cache_hits Prefix cache hits, in terms of number of cached tokens.
# TYPE vllm:prefix_cache_hits counter
vllm:prefix_cache_hits_total{engine="0",model_name="tiny"} 900.0
# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="tiny"} 2.0
vllm:num_requests_running{engine="1",model_name="tiny"} 3.0
# HELP vllm:cache_config_info Information of the LLMEngine CacheConfig
# TYPE vllm:cache_config_info gauge
vllm:cache_config_info{block_size="32",enable_prefix_caching="True",engine="0"} 1.0
# HELP vllm:time_to_first_token_seconds Histogram of time to first token in seconds.
# TYPE vllm:time_to_first_token_seconds histogram
vllm:time_to_first_token_seconds_bucket{engine="0",le="0.01",model_name="tiny"} 1.0
vllm:time_to_first_token_seconds_bucket{engine="0",le="0.1",model_name="tiny"} 3.0
vllm:time_to_first_token_seconds_bucket{engine="0",le="+Inf",model_name="tiny"} 4.0
vllm:time_to_first_token_seconds_count{engine="0",model_name="tiny"} 4.0
vllm:time_to_first_token_seconds_sum{engine="0",model_name="tiny"} 0.9
"""


def test_prom_reads_counters_by_either_name_and_sums_label_sets():
    snap = prom.parse(EXPOSITION)
    assert snap.value("vllm:prefix_cache_queries") == 1200.0  # never adds *_created
    assert snap.value("vllm:prefix_cache_queries_total") == 1200.0
    assert snap.value("vllm:num_requests_running") == 5.0
    assert snap.value("vllm:num_requests_running", engine=1) == 3.0
    assert "vllm:prefix_cache_hits_total" in snap and "vllm:nope" not in snap
    assert snap.labels("vllm:cache_config_info")[0]["enable_prefix_caching"] == "True"
    with pytest.raises(prom.MetricsError):
        snap.value("vllm:nope")
    assert snap.value("vllm:nope", default=0.0) == 0.0


def test_prom_histograms_and_deltas():
    before = prom.parse(EXPOSITION)
    after = prom.parse(EXPOSITION.replace("900.0", "1500.0"))
    assert prom.delta(before, after, "vllm:prefix_cache_hits") == 600.0
    assert prom.delta(prom.parse(""), after, "vllm:prefix_cache_hits") == 1500.0
    h = before.histogram("vllm:time_to_first_token_seconds")
    assert (h.count, h.sum) == (4.0, 0.9) and h.mean == pytest.approx(0.225)
    assert h.buckets == {0.01: 1.0, 0.1: 3.0, math.inf: 4.0}
    with pytest.raises(prom.MetricsError):
        before.histogram("vllm:prefix_cache_hits")


def test_prom_reads_what_prometheus_client_renders():
    from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

    registry = CollectorRegistry()
    counter = Counter("vllm:generation_tokens", "tokens", ["model_name"], registry=registry)
    counter.labels("m").inc(42)
    Gauge("vllm:kv_cache_usage_perc", "usage", registry=registry).set(0.25)
    snap = prom.parse(generate_latest(registry).decode())
    # prometheus_client appends _total to counters; both spellings work
    assert snap.value("vllm:generation_tokens", model_name="m") == 42.0
    assert snap.value("vllm:generation_tokens_total") == 42.0
    assert snap.value("vllm:kv_cache_usage_perc") == 0.25


def test_prom_scrapes_an_endpoint_and_reports_garbage():
    _FakeServer.metrics = EXPOSITION
    with _FakeServer() as server:
        snap = prom.scrape(server.url + "/metrics")
        assert snap.value("vllm:prefix_cache_hits") == 900.0
        with pytest.raises(prom.MetricsError, match="404"):
            prom.scrape(server.url + "/nothing")
    with pytest.raises(prom.MetricsError):
        prom.scrape("http://127.0.0.1:9/metrics", timeout=1)
    with pytest.raises(prom.MetricsError):
        prom.parse("this is { not prometheus")
