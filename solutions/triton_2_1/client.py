"""Lab triton_2_1 — clients for the "mlp" model (reference solution).

`url` is host:port as tritonclient wants it (HTTP port for the HTTP functions, gRPC port for
the gRPC one); `metrics_url` is the full URL of the metrics endpoint
(http://host:port/metrics). Every function returns plain data (lists, dicts, numbers).
"""

from __future__ import annotations

import urllib.request

import numpy as np


def infer_http(url: str, model: str, batch: list[list[float]]) -> list[list[float]]:
    """Send `batch` (N rows of 16 floats) as ONE request over HTTP; return the N output rows."""
    import tritonclient.http as httpclient

    x = np.asarray(batch, dtype=np.float32)
    inputs = [httpclient.InferInput("X", list(x.shape), "FP32")]
    inputs[0].set_data_from_numpy(x)
    outputs = [httpclient.InferRequestedOutput("Y")]
    client = httpclient.InferenceServerClient(url=url)
    try:
        result = client.infer(model, inputs, outputs=outputs)
    finally:
        client.close()
    return result.as_numpy("Y").astype(float).tolist()


def infer_grpc(url: str, model: str, batch: list[list[float]]) -> list[list[float]]:
    """Send `batch` as ONE request over gRPC; return the N output rows."""
    import tritonclient.grpc as grpcclient

    x = np.asarray(batch, dtype=np.float32)
    inputs = [grpcclient.InferInput("X", list(x.shape), "FP32")]
    inputs[0].set_data_from_numpy(x)
    outputs = [grpcclient.InferRequestedOutput("Y")]
    client = grpcclient.InferenceServerClient(url=url)
    try:
        result = client.infer(model, inputs, outputs=outputs)
    finally:
        client.close()
    return result.as_numpy("Y").astype(float).tolist()


def inference_count(metrics_url: str, model: str) -> int:
    """nv_inference_count of `model` (all its versions) from the Prometheus metrics."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(metrics_url, timeout=10) as response:
        text = response.read().decode()
    total = 0.0
    for family in text_string_to_metric_families(text):
        if family.name != "nv_inference_count":
            continue
        for sample in family.samples:
            if sample.labels.get("model") == model:
                total += sample.value
    return int(total)


def inference_statistics(url: str, model: str) -> dict:
    """From the statistics extension (HTTP): inference_count, execution_count and
    success_count (successful requests) of `model`, summed over its versions."""
    import tritonclient.http as httpclient

    client = httpclient.InferenceServerClient(url=url)
    try:
        stats = client.get_inference_statistics(model_name=model)
    finally:
        client.close()
    totals = {"inference_count": 0, "execution_count": 0, "success_count": 0}
    for entry in stats.get("model_stats", []):
        totals["inference_count"] += int(entry.get("inference_count", 0))
        totals["execution_count"] += int(entry.get("execution_count", 0))
        totals["success_count"] += int(entry["inference_stats"]["success"]["count"])
    return totals
