"""labgrade.runtime.prom, the one Prometheus reader, and its thin users (triton `Metrics`,
openai_http `Scrape`), on exposition text captured from real servers (tests/data/prom/:
vLLM 0.32's OpenAI server and tritonserver 2.51) and on what prometheus_client renders for
a student's app (lab_2_3). No server runs here.
"""

from __future__ import annotations

import asyncio
import http.server
import math
import threading
from pathlib import Path

import httpx
import pytest

from labgrade.probes.openai_http import Scrape, delta, parse_metrics, scrape, scrape_async
from labgrade.runtime import prom
from labgrade.runtime.triton import Metrics

DATA = Path(__file__).parent / "data" / "prom"
VLLM = (DATA / "vllm-0.32-server.txt").read_text()
TRITON = (DATA / "tritonserver-2.51.txt").read_text()


# ------------------------------------------------------------------------ vLLM's /metrics
@pytest.fixture(scope="module")
def vllm() -> prom.Snapshot:
    return prom.parse(VLLM)


def test_counters_answer_to_the_family_and_the_total_name(vllm):
    # vLLM writes `# TYPE vllm:prompt_tokens_total counter`; the parser names the family
    # vllm:prompt_tokens and keeps the samples' _total name
    assert vllm.types["vllm:prompt_tokens"] == "counter"
    assert vllm.value("vllm:prompt_tokens") == vllm.value("vllm:prompt_tokens_total") == 33.0
    assert vllm.value("vllm:generation_tokens") == 24.0  # 3 requests x 8 tokens
    assert vllm.value("http_requests", handler="/v1/completions", status="2xx") == 3.0
    assert "vllm:prompt_tokens" in vllm and "vllm:prompt_tokens_total" in vllm


def test_created_timestamps_are_never_summed_into_a_counter(vllm):
    assert vllm.value("vllm:prompt_tokens_created") > 1e9  # only when asked by that name
    assert vllm.value("vllm:prompt_tokens") == 33.0


def test_a_name_that_is_a_prefix_of_others_reads_only_itself(vllm):
    # vllm:prompt_tokens, vllm:prompt_tokens_cached, vllm:prompt_tokens_by_source, ...
    assert vllm.value("vllm:prompt_tokens_cached") == 0.0
    assert [s.name for s in vllm.samples("vllm:prompt_tokens")] == ["vllm:prompt_tokens_total"]


def test_labels_filter_and_sum(vllm):
    by_source = vllm.samples("vllm:prompt_tokens_by_source")
    assert {s.labels["source"] for s in by_source} == {
        "local_compute", "local_cache_hit", "external_kv_transfer"}
    assert vllm.value("vllm:prompt_tokens_by_source", source="local_compute") == 33.0
    assert vllm.value("vllm:prompt_tokens_by_source") == 33.0  # summed over sources
    assert vllm.value("vllm:num_requests_running", model_name="tiny", engine=0) == 0.0
    info = vllm.labels("vllm:cache_config_info")
    assert info[0]["enable_prefix_caching"] == "True" and info[0]["block_size"] == "128"


def test_histograms_have_cumulative_buckets_ending_at_count(vllm):
    ttft = vllm.histogram("vllm:time_to_first_token_seconds", model_name="tiny")
    assert ttft.count == 3.0 and 0 < ttft.sum < 3 and ttft.mean == pytest.approx(ttft.sum / 3)
    bounds = list(ttft.buckets)
    assert bounds == sorted(bounds) and bounds[-1] == math.inf
    assert ttft.buckets[math.inf] == ttft.count
    counts = list(ttft.buckets.values())
    assert counts == sorted(counts)  # cumulative
    # a histogram whose own name ends in _total is still a histogram, not a counter
    assert vllm.types["vllm:iteration_tokens_total"] == "histogram"
    assert vllm.histogram("vllm:iteration_tokens_total").count == 24.0
    with pytest.raises(prom.MetricMissing):
        vllm.value("vllm:iteration_tokens")
    with pytest.raises(prom.MetricMissing):
        vllm.histogram("vllm:prompt_tokens")  # a counter


def test_a_missing_metric_raises_unless_a_default_says_what_absence_means(vllm):
    with pytest.raises(prom.MetricMissing, match="no metric 'vllm:nope'"):
        vllm.value("vllm:nope")
    with pytest.raises(prom.MetricMissing, match='present: {engine="0", model_name="tiny"}'):
        vllm.value("vllm:prompt_tokens", model_name="other")
    with pytest.raises(prom.MetricMissing, match="is a histogram"):
        vllm.value("vllm:time_to_first_token_seconds")
    assert vllm.value("vllm:nope", default=0.0) == 0.0
    assert vllm.value("vllm:prompt_tokens", model_name="other", default=-1.0) == -1.0
    assert issubclass(prom.MetricMissing, prom.MetricsError)
    assert "vllm:nope" not in vllm


def test_delta_counts_absent_before_as_zero_and_absent_after_as_missing(vllm):
    after = prom.parse(VLLM.replace("vllm:generation_tokens_total{engine=\"0\",model_name="
                                    "\"tiny\"} 24.0", "vllm:generation_tokens_total{engine="
                                    "\"0\",model_name=\"tiny\"} 40.0"))
    assert prom.delta(vllm, after, "vllm:generation_tokens") == 16.0
    assert prom.delta(prom.parse(""), after, "vllm:generation_tokens") == 40.0
    with pytest.raises(prom.MetricMissing):
        prom.delta(vllm, prom.parse(""), "vllm:generation_tokens")


def test_text_that_is_not_exposition_format_is_a_metrics_error():
    for garbage in ("this is { not prometheus", "<html><body>hi</body></html>", 'x{a=1} 2'):
        with pytest.raises(prom.MetricsError, match="not Prometheus exposition text"):
            prom.parse(garbage)


# ----------------------------------------------------------------- tritonserver's metrics
def test_triton_counters_summed_over_versions_or_for_one_version():
    metrics = Metrics(TRITON)
    assert metrics.text == TRITON
    # model "add" (versions 1 and 2) and "add_one", whose name starts with "add"
    assert metrics.value("nv_inference_count", model="add") == 7.0  # 6 + 1, not add_one's 8
    assert metrics.value("nv_inference_count", model="add", version="1") == 6.0
    assert metrics.value("nv_inference_count", model="add_one") == 8.0
    assert metrics.value("nv_inference_count_total", model="add") == 7.0
    assert metrics.value("nv_inference_count") == 15.0
    assert metrics.value("nv_inference_request_success", model="add") == 4.0
    assert metrics.value("nv_inference_request_failure", model="add") == 0.0  # 8 reasons
    assert metrics.value("nv_cpu_utilization") >= 0
    per_version = {s.labels["version"]: s.value
                   for s in metrics.samples("nv_inference_count", model="add")}
    assert per_version == {"1": 6.0, "2": 1.0}


def test_triton_missing_model_follows_the_same_rule():
    metrics = Metrics(TRITON)
    assert metrics.value("nv_inference_count", model="new", default=0.0) == 0.0
    with pytest.raises(prom.MetricMissing, match='model="add_one"'):
        metrics.value("nv_inference_count", model="ad")
    with pytest.raises(prom.MetricMissing, match="no metric"):
        metrics.value("nv_no_such_metric")


# ------------------------------------------------- a student's app (lab_2_3) through Scrape
def _app_metrics(gauge_instead_of_counter: bool = False) -> str:
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

    registry = CollectorRegistry()
    if gauge_instead_of_counter:
        Gauge("app_requests", "requests", ["endpoint", "status"], registry=registry) \
            .labels("/v1/completions", "200").set(2)
    else:
        requests = Counter("app_requests", "requests", ["endpoint", "status"],
                           registry=registry)
        requests.labels("/v1/completions", "200").inc(2)
        requests.labels("/v1/chat/completions", "422").inc()
    latency = Histogram("app_request_latency_seconds", "latency", ["endpoint"],
                        registry=registry)
    latency.labels("/v1/completions").observe(0.2)
    latency.labels("/v1/completions").observe(3.0)
    return generate_latest(registry).decode()


def test_scrape_reads_a_student_app_with_absent_series_as_zero():
    page = parse_metrics(_app_metrics())
    assert page.error == ""
    assert page.has("app_requests_total") and not page.has("app_generated_tokens_total")
    assert page.types["app_request_latency_seconds"] == "histogram"
    assert page.value("app_requests_total", endpoint="/v1/completions", status="200") == 2
    assert page.value("app_requests_total", endpoint="/v1/completions", status="422") == 0
    assert page.value("app_generated_tokens_total") == 0
    buckets = page.series("app_request_latency_seconds_bucket", endpoint="/v1/completions")
    assert buckets[-1][0]["le"] == "+Inf" and buckets[-1][1] == 2.0
    assert page.value("app_request_latency_seconds_count", endpoint="/v1/completions") == 2
    empty = parse_metrics("")
    assert delta(empty, page, "app_requests_total", status="422") == 1


def test_scrape_does_not_take_a_gauge_for_the_counter_asked_for():
    page = parse_metrics(_app_metrics(gauge_instead_of_counter=True))
    assert page.has("app_requests") and not page.has("app_requests_total")


def test_scrape_never_raises_and_says_why():
    bad = parse_metrics("this is { not prometheus")
    assert "not Prometheus exposition text" in bad.error and bad.value("x") == 0
    assert not bad.has("x") and bad.types == {}
    unread = Scrape(error="GET /metrics answered 500")
    assert unread.error.endswith("500") and unread.value("app_requests_total") == 0
    assert "failed" in scrape("http://127.0.0.1:9", timeout=1).error


# ---------------------------------------------------------------- over HTTP, all readers
class _Pages(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = TRITON.encode() if self.path == "/metrics" else b"no"
        self.send_response(200 if self.path == "/metrics" else 404)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def pages():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Pages)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_every_reader_scrapes_the_same_numbers(pages):
    assert prom.scrape(pages + "/metrics").value("nv_inference_count", model="add") == 7.0
    assert scrape(pages).value("nv_inference_count", model="add") == 7.0
    with pytest.raises(prom.MetricsError, match="404"):
        prom.scrape(pages + "/nothing")
    assert "404" in scrape(pages, "/nothing").error

    async def both():
        async with httpx.AsyncClient(timeout=5) as client:
            return await scrape_async(client, pages), await scrape_async(client, pages, "/x")

    good, missing = asyncio.run(both())
    assert good.value("nv_inference_count", model="add_one") == 8.0
    assert "404" in missing.error
