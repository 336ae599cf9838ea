"""Task 3: the response cache. `mlp` (deterministic) answers repeated requests from the
cache: the hits are counted exactly in its statistics and on the metrics port. `sampler`
(not deterministic) must not be cached: its served configuration has no enabled cache and
repeated requests still get fresh answers."""

from __future__ import annotations

import numpy as np
import pytest

from labgrade import Fail

from .load import fp32_input
from .stats import cache_hits_metric, delta, model_stats


def _send(server, model: str, output: str, x: np.ndarray) -> np.ndarray:
    client = server.grpc_client()
    try:
        return client.infer(model, [fp32_input("X", x)]).as_numpy(output)
    finally:
        client.close()


@pytest.mark.points(15)
def test_response_cache(cache_models, server_flags, settings, score):
    flags = server_flags.require()
    server = cache_models.require_model("mlp")
    if not flags.has("--cache-config"):
        raise Fail("server_flags.txt sets no --cache-config: without a cache on the server, "
                   "response_cache in a model's config does nothing (e.g. "
                   "--cache-config=local,size=1048576)")
    mlp_cache = server.model_config("mlp").get("response_cache", {})
    if not mlp_cache.get("enable"):
        raise Fail("mlp is served without response_cache { enable: true }: it is "
                   "deterministic, so repeated requests should come from the cache "
                   "(model_repository/mlp/config.pbtxt)")
    rng = np.random.default_rng()
    distinct, repeats = settings["cache_distinct"], settings["cache_repeats"]
    before, hits_before = model_stats(server, "mlp"), cache_hits_metric(server, "mlp")
    rows = [rng.standard_normal((1, 16)).astype(np.float32) for _ in range(distinct)]
    for _ in range(repeats):
        for x in rows:
            _send(server, "mlp", "Y", x)
    got = delta(model_stats(server, "mlp"), before)
    metric_hits = cache_hits_metric(server, "mlp") - hits_before
    expected = distinct * (repeats - 1)
    score.measure(cache_hits_stats=got["cache_hit"], cache_hits_metric=metric_hits,
                  cache_misses=got["cache_miss"], expected_hits=expected)
    if got["cache_hit"] != expected or metric_hits != expected:
        raise Fail(f"{distinct} distinct inputs sent {repeats} times each to mlp: expected "
                   f"{expected} cache hits, the statistics show {got['cache_hit']} and "
                   f"nv_cache_num_hits_per_model {metric_hits:g}")

    server = cache_models.require_model("sampler")
    sampler_cache = server.model_config("sampler").get("response_cache", {})
    if sampler_cache.get("enable"):
        raise Fail("sampler is served with response_cache enabled: its outputs are random "
                   "draws, so a cached answer repeats one draw for every caller (remove it "
                   "from model_repository/sampler/config.pbtxt)")
    before = model_stats(server, "sampler")
    x = rng.standard_normal((1, 16)).astype(np.float32)
    outputs = [_send(server, "sampler", "Z", x) for _ in range(repeats)]
    got = delta(model_stats(server, "sampler"), before)
    if got["cache_hit"] or any(np.array_equal(outputs[0], o) for o in outputs[1:]):
        raise Fail(f"sampler repeated an answer to the same input ({got['cache_hit']} cache "
                   "hits): it must draw afresh for every request")
