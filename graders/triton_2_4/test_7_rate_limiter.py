"""Task 5: the rate limiter. `urgent` (1 instance) and `bulk` (3 instances) share one
"accel" resource (the student's --rate-limit flags and each instance group's rate_limiter):
no two executions may overlap, whichever model they belong to (every execution reports its
own time span), and urgent, at a higher priority, keeps its latency while bulk is loaded."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from labgrade import Fail

from .load import closed_loop, fp32_input

MODELS = ("urgent", "bulk")


def _limiter(config: dict) -> list[dict]:
    return [g.get("rate_limiter", {}) for g in config.get("instance_group", [])]


def _overlaps(spans: np.ndarray) -> int:
    """Executions that start before the previous one (in start order) ended."""
    spans = np.unique(spans, axis=0)  # one row per execution
    spans = spans[np.argsort(spans[:, 0])]
    return int(np.sum(spans[1:, 0] < np.maximum.accumulate(spans[:-1, 1])))


@pytest.mark.points(10)
@pytest.mark.budget(90)
def test_rate_limiter_priorities(triton, server_flags, settings, score):
    flags = server_flags.require()
    server = triton.require_model("urgent")
    triton.require_model("bulk")
    if not flags.has("--rate-limit") or not flags.has("--rate-limit-resource"):
        raise Fail("server_flags.txt must turn the rate limiter on (--rate-limit="
                   "execution_count) and declare the accelerator (--rate-limit-resource="
                   "accel:1)")
    limiters = {m: _limiter(server.model_config(m)) for m in MODELS}
    score.measure(rate_limiters=limiters)
    for model, groups in limiters.items():
        if not all(any(r.get("name") == "accel" for r in g.get("resources", []))
                   for g in groups):
            raise Fail(f"{model}'s instance_group asks for no \"accel\" resource: both models "
                       "must hold the one accelerator while they execute (rate_limiter { "
                       "resources [...] } in model_repository/" + model + "/config.pbtxt)")
    client = server.grpc_client()
    x = [fp32_input("X", np.zeros((1, 4), dtype=np.float32))]

    def urgent_requests(n: int) -> tuple[list[float], list[np.ndarray]]:
        times, spans = [], []
        for _ in range(n):
            started = time.monotonic()
            spans.append(client.infer("urgent", x).as_numpy("SPAN"))
            times.append(time.monotonic() - started)
            time.sleep(0.01)
        return times, spans

    stop, bulk_spans, bulk_errors = threading.Event(), [], []

    def bulk_load() -> None:
        bulk_client = server.grpc_client()
        try:
            while not stop.is_set():
                burst = closed_loop(bulk_client, "bulk", lambda i: x, 24,
                                    settings["bulk_concurrency"], output="SPAN")
                bulk_spans.extend(burst.outputs)
                bulk_errors.extend(burst.errors)
        finally:
            bulk_client.close()

    try:
        alone, _ = urgent_requests(10)
        loader = threading.Thread(target=bulk_load, daemon=True)
        loader.start()
        time.sleep(0.3)
        loaded, urgent_spans = urgent_requests(settings["urgent_requests"])
        stop.set()
        loader.join(timeout=30)
    finally:
        stop.set()
        client.close()
    if bulk_errors:
        raise Fail(f"bulk answered {len(bulk_errors)} requests with an error, e.g. "
                   f"{bulk_errors[0]}")
    overlaps = _overlaps(np.concatenate(urgent_spans + bulk_spans))
    p95_ms = float(np.percentile(loaded, 95)) * 1000
    alone_ms = float(np.median(alone)) * 1000
    limit = settings["urgent_p95_ms"]
    score.measure(urgent_alone_median_ms=round(alone_ms, 1), urgent_loaded_p95_ms=round(p95_ms, 1),
                  overlapping_executions=overlaps, bulk_requests=len(bulk_spans),
                  **{"limit:urgent_loaded_p95_ms": {"max": limit}})
    if overlaps:
        raise Fail(f"{overlaps} executions of urgent and bulk ran while another held the "
                   "accelerator: the resource is not shared (the server's "
                   "--rate-limit-resource and each instance's rate_limiter)")
    if p95_ms > limit:
        raise Fail(f"urgent's p95 latency while bulk was loaded was {p95_ms:.0f} ms (alone: "
                   f"median {alone_ms:.0f} ms), above {limit} ms: give urgent's instances a "
                   "higher priority than bulk's (rate_limiter priority: a smaller number "
                   "gets more scheduling chances)")
