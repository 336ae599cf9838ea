"""Lab triton_2_5 — zero-downtime rollout and rollback through Triton's model-control API
(reference solution).

The server runs in explicit model-control mode; `url` is host:port of its HTTP endpoint.
Requests without a version go to the newest READY version. A load with a configuration
override swaps the configuration in place: versions that stay keep serving, new ones
start, and the ones that leave are unloaded only once the new ones are ready.

The history (the version served before the last rollout) is kept ON THE SERVER, in the
loaded configuration's `parameters`, so a rollback works from any process.
"""

from __future__ import annotations

import json

import tritonclient.http as httpclient

HISTORY_KEY = "previous_version"


def _client(url: str) -> httpclient.InferenceServerClient:
    return httpclient.InferenceServerClient(url=url, network_timeout=120.0)


def _serve(client, config: dict, model: str, versions: list[int], previous: int) -> None:
    config = dict(config)
    config["version_policy"] = {"specific": {"versions": sorted(set(versions))}}
    parameters = dict(config.get("parameters") or {})
    parameters[HISTORY_KEY] = {"string_value": str(previous)}
    config["parameters"] = parameters
    client.load_model(model, config=json.dumps(config))


def rollout(url: str, model: str, version: int) -> int:
    """Serve only `version` of `model`, with no failed request on the way; return the
    version it replaced."""
    client = _client(url)
    try:
        current = max(int(v) for v in client.get_model_metadata(model)["versions"])
        config = client.get_model_config(model)
        # 1. the new version starts beside the current one (traffic moves to the newest
        #    ready version: for an upgrade, now)
        _serve(client, config, model, [current, int(version)], current)
        # 2. only the new one: the current version leaves once this configuration is live
        _serve(client, config, model, [int(version)], current)
        return current
    finally:
        client.close()


def rollback(url: str, model: str) -> int:
    """Serve again the version that served before the last rollout; return it."""
    client = _client(url)
    try:
        parameters = client.get_model_config(model).get("parameters") or {}
    finally:
        client.close()
    if HISTORY_KEY not in parameters:
        raise RuntimeError(f"{model} has no rollout history: nothing to roll back to")
    previous = int(parameters[HISTORY_KEY]["string_value"])
    rollout(url, model, previous)
    return previous
