"""Lab triton_2_2 — model lifecycle through Triton's model-control API (reference solution).

The server runs in explicit model-control mode. `url` is host:port of its HTTP endpoint, as
tritonclient.http takes it. Versions are ints.
"""

from __future__ import annotations

import json
import time

import tritonclient.http as httpclient


def _client(url: str) -> httpclient.InferenceServerClient:
    return httpclient.InferenceServerClient(url=url, network_timeout=120.0)


def load(url: str, model: str) -> None:
    """Load `model` as its repository configuration says (its version_policy decides which
    versions are served)."""
    client = _client(url)
    try:
        client.load_model(model)
    finally:
        client.close()


def unload(url: str, model: str) -> None:
    """Unload `model` (every version of it, and nothing else); return once it is gone."""
    client = _client(url)
    try:
        client.unload_model(model)
        # Triton answers at once and takes the versions down behind the answer (UNLOADING,
        # already not "ready"): gone is when the index shows none READY or UNLOADING
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            states = {entry.get("state") for entry in client.get_model_repository_index()
                      if entry.get("name") == model}
            if not states & {"READY", "UNLOADING"}:
                return
            time.sleep(0.02)
        raise TimeoutError(f"{model} was still unloading after 30 s")
    finally:
        client.close()


def serve_versions(url: str, model: str, versions: list[int]) -> None:
    """Serve exactly `versions` of the (loaded) `model`, without downtime.

    A load with a configuration override replaces the whole configuration, so start from the
    one the server uses now and change only the version policy. Versions that stay are kept
    serving while the new ones load; versions that leave are unloaded afterwards.
    """
    client = _client(url)
    try:
        config = client.get_model_config(model)
        config["version_policy"] = {"specific": {"versions": sorted(int(v) for v in versions)}}
        client.load_model(model, config=json.dumps(config))
    finally:
        client.close()


def rollback(url: str, model: str) -> int:
    """The newest served version of `model` is bad: serve only the newest version below it
    that is ready now (kept warm by the version policy), without downtime. Returns it."""
    client = _client(url)
    try:
        ready = sorted(int(v) for v in client.get_model_metadata(model)["versions"])
    finally:
        client.close()
    if len(ready) < 2:
        raise RuntimeError(f"{model} serves only {ready}: no previous version to roll back to")
    previous = ready[-2]
    serve_versions(url, model, [previous])
    return previous
