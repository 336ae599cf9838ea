"""Task 2: dynamic batching of `scorer` under a latency SLO. The same model without dynamic
batching (`scorer_unbatched`: the student's configuration minus `dynamic_batching`) is
measured side by side, rounds interleaved; the throughput ratio is the median of the
per-round ratios. Mean batch size = delta nv_inference_count / delta nv_inference_exec_count
over the batched rounds; p95 latency over every batched request."""

from __future__ import annotations

import numpy as np
import pytest

from labgrade import Fail
from labgrade.bench import clear_of, compare
from labgrade.kit import Once, score_curve
from labgrade.runtime.triton import ModelLoadError

from .load import Burst, closed_loop, fp32_input
from .repository import BASELINE, unbatched
from .stats import batch_counters


class Measurement:
    def __init__(self, deployment, settings) -> None:
        self.server = deployment.require_model("scorer")
        config = self.server.model_config("scorer")
        self.config = config
        try:
            self.server.load(BASELINE, config=unbatched(config),
                             timeout=float(settings["load_timeout"]))
        except ModelLoadError as exc:
            raise Fail(f"the grader's unbatched copy of scorer (your configuration without "
                       f"dynamic_batching) did not load: {exc}") from None
        self.settings = settings
        self.batched: list[Burst] = []
        rows = np.random.default_rng().standard_normal((64, 1, 16)).astype(np.float32)
        self.inputs = lambda i: [fp32_input("X", rows[i % len(rows)])]
        client = self.client = self.server.grpc_client()
        try:
            self._burst(BASELINE)   # warm both (stubs, connections) before measuring
            self._burst("scorer")
            before = batch_counters(self.server, "scorer")
            self.comparison = compare(lambda: self._burst(BASELINE),
                                      lambda: self._burst("scorer", keep=True),
                                      rounds=settings["batch_rounds"],
                                      max_rounds=settings["batch_max_rounds"],
                                      higher_is_better=True, warmup=0,
                                      settled=clear_of(settings["batch_ratio_zero_at"],
                                                       settings["batch_ratio_full_at"]))
            after = batch_counters(self.server, "scorer")
        finally:
            client.close()
        executions = after["exec_count"] - before["exec_count"]
        self.mean_batch = (after["count"] - before["count"]) / max(executions, 1.0)
        latencies = [t for burst in self.batched for t in burst.latencies]
        self.p95_ms = float(np.percentile(latencies, 95)) * 1000

    def _burst(self, model: str, keep: bool = False) -> float:
        burst = closed_loop(self.client, model, self.inputs, self.settings["batch_requests"],
                            self.settings["batch_concurrency"])
        if burst.errors:
            raise Fail(f"{model} answered {len(burst.errors)} of "
                       f"{self.settings['batch_requests']} requests with an error, e.g. "
                       f"{burst.errors[0]}")
        if keep:
            self.batched.append(burst)
        return burst.throughput


@pytest.fixture(scope="package")
def batching(batching_models, settings) -> Once[Measurement]:
    return Once(lambda: Measurement(batching_models, settings))


@pytest.mark.points(15)
@pytest.mark.budget(120)
def test_batching_throughput(batching, settings, score):
    m = batching.get()
    score.measure(mean_batch_size=round(m.mean_batch, 2),
                  **{"limit:mean_batch_size": {"min": settings["min_mean_batch"]}},
                  dynamic_batching=m.config.get("dynamic_batching", "(none)"),
                  instance_group=m.config.get("instance_group"))
    if m.mean_batch < settings["min_mean_batch"]:
        raise Fail(f"scorer executed {m.mean_batch:.2f} requests per execution on average "
                   f"(nv_inference_count / nv_inference_exec_count) under "
                   f"{settings['batch_concurrency']} concurrent requests; at least "
                   f"{settings['min_mean_batch']:g} was expected: enable dynamic_batching in "
                   "model_repository/scorer/config.pbtxt")
    score_curve(score, "throughput_ratio", m.comparison,
                zero_at=settings["batch_ratio_zero_at"], full_at=settings["batch_ratio_full_at"],
                unit="x", message=f"batched / unbatched throughput: {m.comparison.describe('ratio')}",
                fail_hint="check preferred_batch_size and max_queue_delay_microseconds in "
                          "model_repository/scorer/config.pbtxt")


@pytest.mark.points(10)
@pytest.mark.budget(120)
def test_batching_latency_slo(batching, settings, score):
    m = batching.get()
    slo = settings["slo_p95_ms"]
    score.measure(p95_ms=round(m.p95_ms, 1), **{"limit:p95_ms": {"max": slo}})
    if m.p95_ms > slo:
        why = ("scorer has no dynamic_batching: requests queue up one execution at a time"
               if "dynamic_batching" not in m.config else
               "a long max_queue_delay_microseconds (or a preferred_batch_size the load never "
               "fills) makes requests wait in the queue")
        raise Fail(f"p95 latency of scorer under {settings['batch_concurrency']} concurrent "
                   f"requests was {m.p95_ms:.0f} ms (mean batch {m.mean_batch:.2f}); the SLO "
                   f"is {slo} ms: {why}")
