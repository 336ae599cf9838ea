"""Items about the student's client functions (client.py), run in the worker subprocess
against the real server and the grader's reference model `mlp_reference` — so they grade
even when the student's own model does not load."""

from __future__ import annotations

import numpy as np
import pytest

from labgrade import Fail
from labgrade.kit import call_student
from labgrade.scoring import GraderError

from .grader_models import twin_of
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
            value = call_student(submission, "client", func, url, model, x.tolist(), timeout=30)
        except Fail as exc:
            raise Fail(f"{exc}\n(called with a batch of {n} rows; url {url!r} is the server's "
                       f"{protocol} address: use {hint})") from None
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
    server = reference_model.require_model(settings["reference_model"], ours=True)
    _check_client(submission, server, settings, reference_net, rng, score, func="infer_http",
                  url=server.http_url.removeprefix("http://"), protocol="HTTP")


@pytest.mark.points(15)
def test_client_grpc(submission, reference_model, settings, reference_net, rng, score):
    """infer_grpc(url, model, batch) against mlp_reference, given the gRPC port (an HTTP
    client cannot talk to it)."""
    server = reference_model.require_model(settings["reference_model"], ours=True)
    _check_client(submission, server, settings, reference_net, rng, score, func="infer_grpc",
                  url=server.grpc_url, protocol="gRPC")


def _send(server, model: str, rows_and_versions, rng, width: int) -> None:
    """Requests from the grader's client: (rows, version) each ("" lets Triton pick)."""
    for n, version in rows_and_versions:
        x = rng.standard_normal((n, width)).astype(np.float32)
        _, error = infer(server, "http", model, x, version)
        if error:
            raise GraderError(f"the grader's model {model} refused a request: {error}")


def _per_version(server, model: str) -> list[dict]:
    """Each version's statistics, as inference_statistics() reports them."""
    return [{"inference_count": int(s.get("inference_count", 0)),
             "execution_count": int(s.get("execution_count", 0)),
             "success_count": int(s["inference_stats"]["success"]["count"])}
            for s in server.statistics(model)["model_stats"]]


@pytest.mark.points(10)
def test_client_reads_metrics_and_statistics(submission, reference_model, settings, rng,
                                             score):
    """inference_count(metrics_url, model) and inference_statistics(url, model) agree with
    the server's own numbers after requests of 2, 3 and 5 rows (so that counting requests
    instead of samples shows), spread over the model's two versions (so that one version's
    numbers are not the model's), with rows sent to a model whose name starts with the
    asked-for one (so that matching names by prefix shows)."""
    model = settings["reference_model"]
    server = reference_model.require_model(model, ours=True)
    twin = twin_of(model)
    reference_model.require_model(twin, ours=True)
    before = counts(server, twin)
    _send(server, twin, [(4, "")], rng, settings["input_dim"])
    counts_after(server, twin, before, 1)
    before = counts(server, model)
    _send(server, model, [(2, "1"), (3, "2"), (5, "1")], rng, settings["input_dim"])
    truth = counts_after(server, model, before, 3)
    metrics = server.metrics()
    by_version = [s.value for s in metrics.samples("nv_inference_count", model=model)]
    twin_count = metrics.value("nv_inference_count", model=twin, default=0.0)
    versions = _per_version(server, model)
    want = {k: sum(v[k] for v in versions) for k in versions[0]}

    count = call_student(submission, "client", "inference_count", server.metrics_url, model,
                         timeout=30, returns=(int, float))
    if count != truth["metric_inferences"]:
        hint = ""
        if count == truth["metric_success"]:
            hint = (" — that is nv_inference_request_success, the number of requests; "
                    "nv_inference_count counts samples (rows)")
        elif count in by_version:
            hint = (f" — that is one version's count; {model} serves {len(by_version)} "
                    "versions: add the samples of all of them")
        elif count == truth["metric_inferences"] + twin_count:
            hint = (f" — that includes the samples of {twin!r}: compare the label's value "
                    "with the model name exactly, not as a prefix")
        raise Fail(f"inference_count(metrics_url, {model!r}) returned {count}; the server's "
                   f"nv_inference_count for that model is {truth['metric_inferences']:.0f}"
                   f"{hint}. Read the samples with the label model=\"{model}\" (all "
                   "versions).")

    stats_value = call_student(submission, "client", "inference_statistics",
                               server.http_url.removeprefix("http://"), model, timeout=30,
                               returns=dict)
    wrong = {k: stats_value.get(k) for k in want if stats_value.get(k) != want[k]}
    if wrong:
        hint = ""
        if any(all(stats_value.get(k) == v[k] for k in want) for v in versions):
            hint = (f" — those are one version's numbers; {model} serves {len(versions)} "
                    "versions: sum the entries of model_stats")
        raise Fail("inference_statistics() disagrees with the statistics endpoint: "
                   + ", ".join(f"{k} is {wrong[k]}, expected {want[k]}" for k in wrong) + hint)
    score.measure(inference_count=count, versions=len(versions),
                  **{f"stats_{k}": v for k, v in want.items()})
