"""The BLS router: each request goes to the backend its "backend" parameter names, checked
on the backends' own inference counters."""

from __future__ import annotations

import numpy as np
import pytest
from triton_2_1.tritonio import counts, counts_after

from labgrade import Fail

TARGETS = {"pytorch": "pytorch_model", "onnx": "onnx_model"}


def _send(server, x, parameters):
    import tritonclient.http as httpclient
    from tritonclient.utils import InferenceServerException

    client = server.http_client()
    try:
        inp = httpclient.InferInput("X", list(x.shape), "FP32")
        inp.set_data_from_numpy(x)
        return client.infer("router", [inp], parameters=parameters).as_numpy("Y"), ""
    except InferenceServerException as exc:
        return None, str(exc)
    finally:
        client.close()


@pytest.mark.points(10)
def test_router_routes_by_parameter(backends, settings, reference_net, rng, score):
    """Requests with backend=onnx, pytorch, onnx (again), and none (default pytorch) each
    reach exactly the named model (its nv_inference_count rises by the rows sent, the
    other's not at all) with the right answer; an unknown backend gets an error."""
    server = backends.require_model("router")
    for model in TARGETS.values():
        backends.require_model(model)
    routed = []
    for i, (choice, rows) in enumerate([("onnx", 3), ("pytorch", 2), ("onnx", 1), (None, 4)]):
        x = rng.standard_normal((rows, 16)).astype(np.float32)
        before = {m: counts(server, m) for m in TARGETS.values()}
        got, error = _send(server, x, {"backend": choice} if choice else None)
        what = f"request {i + 1} ({rows} rows, backend={choice or '(not set)'})"
        if error:
            raise Fail(f"{what} failed: {error}")
        target = TARGETS[choice or "pytorch"]
        after = {m: counts_after(server, m, before[m], 1 if m == target else 0)
                 for m in TARGETS.values()}
        delta = {m: after[m]["metric_inferences"] - before[m]["metric_inferences"]
                 for m in TARGETS.values()}
        routed.append({"backend": choice, "rows": rows, "counts": delta})
        want = {m: float(rows if m == target else 0) for m in TARGETS.values()}
        if delta != want:
            raise Fail(f"{what}: nv_inference_count rose by {delta}; expected {want}. The "
                       "router must call exactly the model the parameter names (request."
                       "parameters() is a JSON string), once per request")
        if got is None or got.shape != (rows, 4) or not np.allclose(
                got, reference_net(x), atol=settings["atol"], rtol=settings["rtol"]):
            raise Fail(f"{what}: the router's answer differs from {target}'s network output "
                       f"(shape {None if got is None else list(got.shape)}): return the "
                       "called model's Y")
    score.measure(routed=routed)
    _, error = _send(server, rng.standard_normal((1, 16)).astype(np.float32),
                     {"backend": "tensorrt"})
    if not error:
        raise Fail("a request with backend=tensorrt (not served here) was answered; return an "
                   "InferenceResponse with a TritonError naming the accepted values")
