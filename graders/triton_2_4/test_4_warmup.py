"""Task 4: warmup. `embedder` builds a table in its first execution (about 1.2 s); with
model_warmup that runs while the model loads, before it is READY, so the first real request
is as fast as the next ones."""

from __future__ import annotations

import time

import numpy as np
import pytest

from labgrade import Fail

from .load import fp32_input

FIRST_CALL_SECONDS = 1.2  # labs/triton_2_4/model_repository/embedder/1/model.py


@pytest.mark.points(10)
def test_warmup_before_ready(triton, settings, score):
    server = triton.require_model("embedder")
    load_s = triton.load_seconds("embedder")
    config = server.model_config("embedder")
    client = server.grpc_client()
    try:
        x = np.random.default_rng().standard_normal((1, 16)).astype(np.float32)
        times = []
        for _ in range(8):
            started = time.monotonic()
            client.infer("embedder", [fp32_input("X", x)])
            times.append(time.monotonic() - started)
    finally:
        client.close()
    first_ms, median_ms = times[0] * 1000, float(np.median(times[1:])) * 1000
    limit_ms = max(settings["warmup_outlier_floor_ms"],
                   settings["warmup_outlier_factor"] * median_ms)
    score.measure(load_seconds=load_s, first_request_ms=round(first_ms, 1),
                  median_next_ms=round(median_ms, 1),
                  **{"limit:first_request_ms": {"max": round(limit_ms, 1)}})
    warmups = config.get("model_warmup", [])
    if not warmups:
        raise Fail(f"embedder has no model_warmup: its first request took {first_ms:.0f} ms "
                   f"(the next ones {median_ms:.0f} ms): add a model_warmup sample to "
                   "model_repository/embedder/config.pbtxt")
    if first_ms > limit_ms:
        raise Fail(f"embedder's first request after it became READY took {first_ms:.0f} ms, "
                   f"the next ones {median_ms:.0f} ms (limit {limit_ms:.0f} ms): the warmup "
                   f"({[w.get('name') for w in warmups]}) did not run the model's first "
                   "execution before READY")
    if load_s is not None and load_s < FIRST_CALL_SECONDS:
        raise Fail(f"embedder became READY after {load_s:.2f} s, before its first execution "
                   f"(~{FIRST_CALL_SECONDS} s) could have run")
