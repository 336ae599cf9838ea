"""Lab triton_2_2 — A/B traffic splitting between versions, sticky per user (reference
solution)."""

from __future__ import annotations

import hashlib

import numpy as np
import tritonclient.http as httpclient

_CLIENTS: dict[str, httpclient.InferenceServerClient] = {}


def choose_version(user_id: str, weights: dict[str, float]) -> str:
    """The version for `user_id`: a hash of the id mapped to [0, 1) picks a slice of the
    cumulative weights, so the same user always lands on the same version and the users
    split in proportion to the weights."""
    digest = hashlib.sha256(user_id.encode("utf-8")).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    versions = sorted(weights, key=int)
    total = float(sum(weights[v] for v in versions))
    cumulative = 0.0
    for version in versions:
        cumulative += weights[version] / total
        if u < cumulative:
            return version
    return versions[-1]  # u within rounding of 1.0


def route(url: str, model: str, user_id: str, features: list[float],
          weights: dict[str, float]) -> str:
    """Send one inference request for `user_id` to the version chosen for them; return that
    version (as a string, e.g. "2")."""
    version = choose_version(user_id, weights)
    client = _CLIENTS.get(url)
    if client is None:
        client = _CLIENTS[url] = httpclient.InferenceServerClient(url=url)
    x = np.asarray([features], dtype=np.float32)
    features_input = httpclient.InferInput("FEATURES", list(x.shape), "FP32")
    features_input.set_data_from_numpy(x)
    client.infer(model, [features_input], model_version=version)
    return version
