"""Grader-side Triton I/O shared by the items: one request from the grader's own client,
and the model's counters (metrics port and statistics extension)."""

from __future__ import annotations

import time

import numpy as np


def infer(server, protocol: str, model: str, x: np.ndarray, version: str = ""):
    """One request from the grader's own client (to `version`, or the one Triton picks);
    returns (output or None, error text)."""
    if protocol == "http":
        import tritonclient.http as module
        client = server.http_client()
    else:
        import tritonclient.grpc as module
        client = server.grpc_client()
    from tritonclient.utils import InferenceServerException

    try:
        inp = module.InferInput("X", list(x.shape), "FP32")
        inp.set_data_from_numpy(x)
        result = client.infer(model, [inp], model_version=version,
                              outputs=[module.InferRequestedOutput("Y")])
        return result.as_numpy("Y"), ""
    except InferenceServerException as exc:
        return None, str(exc)
    finally:
        client.close()


def counts(server, model: str) -> dict:
    metrics = server.metrics()
    stats = server.statistics(model)["model_stats"]
    return {
        "metric_inferences": metrics.value("nv_inference_count", model=model, default=0.0),
        "metric_success": metrics.value("nv_inference_request_success", model=model,
                                        default=0.0),
        "metric_failure": metrics.value("nv_inference_request_failure", model=model,
                                        default=0.0),
        "stats_inferences": sum(int(s.get("inference_count", 0)) for s in stats),
        "stats_success": sum(int(s["inference_stats"]["success"]["count"]) for s in stats),
    }


def counts_after(server, model: str, before: dict, requests: int, timeout: float = 3.0) -> dict:
    """Counters once every request of the burst is accounted for (or `timeout` passed):
    the statistics are reported when the execution ends, a hair after the response."""
    deadline = time.monotonic() + timeout
    while True:
        now = counts(server, model)
        settled = (now["metric_success"] + now["metric_failure"]
                   - before["metric_success"] - before["metric_failure"]) >= requests
        if settled or time.monotonic() > deadline:
            return now
        time.sleep(0.05)
