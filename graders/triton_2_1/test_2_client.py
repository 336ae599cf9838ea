"""Items about the student's client functions (client.py), run in the worker subprocess
against the real server and the grader's reference model `mlp_reference` — so they grade
even when the student's own model does not load."""

from __future__ import annotations

import numpy as np
import pytest

from labgrade import Fail
from labgrade.submission import StudentCodeError

from .tritonio import counts, counts_after, infer


def _rows(value, n: int, width: int, func: str) -> np.ndarray:
    """The student's return value as an [n, width] array, or Fail saying what is wrong."""
    shape_hint = f"a list of {n} lists of {width} floats"
    if not isinstance(value, list) or not all(isinstance(r, list) for r in value):
        raise Fail(f"{func}() must return {shape_hint} (one per input row); got "
                   f"{str(value)[:200]}")
    if len(value) != n or any(len(r) != width for r in value):
        raise Fail(f"{func}() returned {len(value)} rows of lengths "
                   f"{sorted({len(r) for r in value})}; expected {shape_hint}")
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise Fail(f"{func}() must return numbers; got {str(value)[:200]}") from None


def _check_client(submission, server, settings, reference_net, rng, score, *, func: str,
                  url: str, protocol: str) -> None:
    hint = "tritonclient.http" if protocol == "HTTP" else "tritonclient.grpc"
    model = settings["reference_model"]
    for n in (5, 1):
        x = rng.standard_normal((n, settings["input_dim"])).astype(np.float32)
        before = counts(server, model)
        try:
            value = submission.call("client", func, url, model, x.tolist(), timeout=30)
        except StudentCodeError as exc:
            raise Fail(f"{func}() raised for a batch of {n} rows: {exc}\n(url {url!r} is the "
                       f"server's {protocol} address: use {hint})") from None
        after = counts_after(server, model, before, 1)
        got = _rows(value, n, settings["output_dim"], func)
        want = reference_net(x)
        if not np.allclose(got, want, atol=settings["atol"], rtol=settings["rtol"]):
            diff = float(np.max(np.abs(got - want)))
            raise Fail(f"{func}() for a batch of {n} rows returned values that differ from the "
                       f"model's output (max |difference| {diff:.3g}); expected first row "
                       f"{np.round(want[0], 5).tolist()}, got {np.round(got[0], 5).tolist()}. "
                       "Send the rows as input \"X\" (FP32, shape [N, 16]) and return output "
                       "\"Y\" as it comes.")
        seen_requests = after["metric_success"] - before["metric_success"]
        seen_rows = after["metric_inferences"] - before["metric_inferences"]
        if seen_requests != 1 or seen_rows != n:
            raise Fail(f"{func}() for {n} rows reached the server as {seen_requests:.0f} "
                       f"request(s) carrying {seen_rows:.0f} rows; send the whole batch as ONE "
                       f"{protocol} request")
    score.measure(protocol=protocol)


@pytest.mark.points(15)
def test_client_http(submission, reference_model, settings, reference_net, rng, score):
    """infer_http(url, model, batch) against mlp_reference: right rows, one HTTP request."""
    server = reference_model.require_reference()
    _check_client(submission, server, settings, reference_net, rng, score, func="infer_http",
                  url=server.http_url.removeprefix("http://"), protocol="HTTP")


@pytest.mark.points(15)
def test_client_grpc(submission, reference_model, settings, reference_net, rng, score):
    """infer_grpc(url, model, batch) against mlp_reference, given the gRPC port (an HTTP
    client cannot talk to it)."""
    server = reference_model.require_reference()
    _check_client(submission, server, settings, reference_net, rng, score, func="infer_grpc",
                  url=server.grpc_url, protocol="gRPC")


@pytest.mark.points(10)
def test_client_reads_metrics_and_statistics(submission, reference_model, settings, rng,
                                             score):
    """inference_count(metrics_url, model) and inference_statistics(url, model) agree with
    the server's own numbers after requests of 2, 3 and 5 rows (so that counting requests
    instead of samples shows)."""
    server = reference_model.require_reference()
    model = settings["reference_model"]
    before = counts(server, model)
    for n in (2, 3, 5):
        x = rng.standard_normal((n, settings["input_dim"])).astype(np.float32)
        _, error = infer(server, "http", model, x)
        if error:
            raise RuntimeError(f"the reference model refused a request: {error}")
    truth = counts_after(server, model, before, 3)
    stats = server.statistics(model)["model_stats"]
    executions = sum(int(s.get("execution_count", 0)) for s in stats)

    count = submission.call("client", "inference_count", server.metrics_url, model, timeout=30)
    if isinstance(count, bool) or not isinstance(count, (int, float)):
        raise Fail(f"inference_count() must return a number; got {str(count)[:200]}")
    if count != truth["metric_inferences"]:
        hint = ""
        if count == truth["metric_success"]:
            hint = (" — that is nv_inference_request_success, the number of requests; "
                    "nv_inference_count counts samples (rows)")
        raise Fail(f"inference_count(metrics_url, {model!r}) returned {count}; the server's "
                   f"nv_inference_count for that model is {truth['metric_inferences']:.0f}"
                   f"{hint}. Read the sample with the label model=\"{model}\" (all versions).")

    stats_value = submission.call("client", "inference_statistics", server.http_url.removeprefix(
        "http://"), model, timeout=30)
    want = {"inference_count": truth["stats_inferences"], "execution_count": executions,
            "success_count": truth["stats_success"]}
    if not isinstance(stats_value, dict):
        raise Fail(f"inference_statistics() must return a dict with keys {sorted(want)}; got "
                   f"{str(stats_value)[:200]}")
    wrong = {k: stats_value.get(k) for k in want if stats_value.get(k) != want[k]}
    if wrong:
        raise Fail("inference_statistics() disagrees with the statistics endpoint: "
                   + ", ".join(f"{k} is {wrong[k]}, expected {want[k]}" for k in wrong))
    score.measure(inference_count=count, **{f"stats_{k}": v for k, v in want.items()})
