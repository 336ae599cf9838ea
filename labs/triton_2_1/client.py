"""Lab triton_2_1 — clients for the "mlp" model (see README.md, task 2).

The grader calls these functions in a separate process, against a real Triton server.
`url` is host:port as tritonclient wants it ("127.0.0.1:8000": the HTTP port for the HTTP
functions, the gRPC port for infer_grpc); `metrics_url` is the full URL of the metrics
endpoint ("http://127.0.0.1:8002/metrics"). Return plain data (lists, dicts, numbers) —
not numpy arrays.
"""

from __future__ import annotations


def infer_http(url: str, model: str, batch: list[list[float]]) -> list[list[float]]:
    """Send `batch` (N rows of 16 floats, N <= 8) to `model` as ONE request over HTTP
    (`tritonclient.http`) and return its output "Y" as N rows of 4 floats.

    TODO
    """
    raise NotImplementedError("infer_http: TODO")


def infer_grpc(url: str, model: str, batch: list[list[float]]) -> list[list[float]]:
    """The same as infer_http, over gRPC (`tritonclient.grpc`).

    TODO
    """
    raise NotImplementedError("infer_grpc: TODO")


def inference_count(metrics_url: str, model: str) -> int:
    """The value of Triton's `nv_inference_count` metric for `model` (summed over its
    versions), read from the Prometheus text at `metrics_url`.

    TODO
    """
    raise NotImplementedError("inference_count: TODO")


def inference_statistics(url: str, model: str) -> dict:
    """From the statistics endpoint (HTTP, `get_inference_statistics`), summed over the
    versions of `model`: {"inference_count": int, "execution_count": int,
    "success_count": int}, where success_count is the number of successful requests
    (inference_stats.success.count).

    TODO
    """
    raise NotImplementedError("inference_statistics: TODO")
