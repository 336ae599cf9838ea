"""Task 1: the ensemble `classify` = preprocess -> mlp -> postprocess, on hidden raw inputs
against the reference pipeline, each step seen running in the statistics."""

from __future__ import annotations

import time

import numpy as np
import pytest

from labgrade import Fail

from .reference import ReferencePipeline, hidden_raw
from .stats import delta, model_stats

STEPS = ("preprocess", "mlp", "postprocess")


def _infer(server, raw: np.ndarray):
    import tritonclient.grpc as grpcclient
    from tritonclient.utils import InferenceServerException

    client = server.grpc_client()
    try:
        tensor = grpcclient.InferInput("RAW", list(raw.shape), "UINT8")
        tensor.set_data_from_numpy(raw)
        result = client.infer("classify", [tensor])
        return result.as_numpy("LABEL"), result.as_numpy("PROB")
    except InferenceServerException as exc:
        raise Fail(f"classify answered a request of {raw.shape[0]} raw rows with an error: "
                   f"{exc}") from None
    finally:
        client.close()


def _ran_since(server, before: dict, requests: int, settle_s: float = 5.0) -> dict:
    """Each model's statistics since `before`. A Python-backend step answers before its
    execute() returns and its success is counted after, so a loaded machine may show the
    last request's step a moment late: wait (briefly) for the counts to settle."""
    deadline = time.monotonic() + settle_s
    while True:
        ran = {m: delta(model_stats(server, m), before[m]) for m in (*STEPS, "classify")}
        if (all(ran[m]["success"] + ran[m]["cache_hit"] >= requests for m in STEPS)
                or time.monotonic() > deadline):
            return ran
        time.sleep(0.1)


@pytest.mark.points(20)
def test_ensemble_matches_reference(ensemble_models, settings, score):
    server = ensemble_models.require_model("classify")
    reference = ReferencePipeline()
    rng = np.random.default_rng()
    before = {m: model_stats(server, m) for m in (*STEPS, "classify")}
    sizes = settings["ensemble_batches"]
    for n, rows in enumerate(sizes):
        raw = hidden_raw(rng, rows, repeat=n == len(sizes) - 1)
        label, prob = _infer(server, raw)
        want_label, want_prob = reference(raw)
        case = f"hidden request {n + 1} ({rows} rows, raw row 0 = {raw[0].tolist()})"
        if label is None or prob is None:
            raise Fail(f"{case}: classify must return LABEL and PROB")
        if label.shape != (rows, 1) or prob.shape != (rows, 4):
            raise Fail(f"{case}: LABEL has shape {label.shape} and PROB {prob.shape}; expected "
                       f"({rows}, 1) INT32 and ({rows}, 4) FP32")
        if not np.allclose(prob, want_prob, atol=settings["atol"], rtol=0):
            i = int(np.argmax(np.abs(prob - want_prob).max(axis=1)))
            raise Fail(f"{case}: PROB of row {i} is {np.round(prob[i], 5).tolist()}, the "
                       f"reference pipeline gives {np.round(want_prob[i], 5).tolist()}: check "
                       "preprocess's scaling (X = (RAW - 128) / 64), the ensemble's tensor "
                       "mapping and postprocess's softmax")
        if label.reshape(-1).tolist() != want_label.tolist():
            raise Fail(f"{case}: LABEL is {label.reshape(-1).tolist()}, expected "
                       f"{want_label.tolist()} (argmax of the MLP's output)")
    ran = _ran_since(server, before, len(sizes))
    score.measure(requests=len(sizes), steps={m: ran[m]["success"] + ran[m]["cache_hit"]
                                              for m in ran})
    # a step answered from the response cache still ran as far as the ensemble is concerned
    idle = [m for m in STEPS if ran[m]["success"] + ran[m]["cache_hit"] < len(sizes)]
    if idle:
        raise Fail(f"the statistics of {', '.join(idle)} show fewer than {len(sizes)} "
                   f"successful requests after {len(sizes)} requests to classify: every "
                   "request must go through preprocess -> mlp -> postprocess "
                   f"(ensemble_scheduling steps; measured {ran})")
