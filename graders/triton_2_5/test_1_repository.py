"""Items: the public broken model set, repaired — every model loads on the real server, and
the pipeline answers hidden inputs as the lab's numbers say."""

from __future__ import annotations

import numpy as np
import pytest

from labgrade import Fail
from labgrade.scoring import GraderError

from .public_set import PUBLIC_MODELS, pipeline_reference


def _load_outcomes(triton) -> dict[str, str]:
    """model -> "" when it loaded, else the server's reason (the order matters: the
    ensemble needs its steps)."""
    outcomes = {}
    for model in PUBLIC_MODELS:
        try:
            triton.require_model(model)
            outcomes[model] = ""
        except Fail as exc:
            outcomes[model] = str(exc).removeprefix(
                "your model did not load, so this cannot be checked.\n")
    return outcomes


@pytest.mark.points(8)
def test_repaired_models_load(triton, score):
    """scale, score and pipeline each load (explicit load, auto-completion off); the
    feedback is the server's own reason for each one that does not."""
    triton.require()
    outcomes = _load_outcomes(triton)
    loaded = [m for m, why in outcomes.items() if not why]
    score.measure(loaded=loaded, load_seconds={m: triton.load_seconds(m) for m in loaded})
    if len(loaded) == len(PUBLIC_MODELS):
        return
    problems = "\n".join(f"- {m}: {why}" for m, why in outcomes.items() if why)
    message = (f"{len(loaded)} of {len(PUBLIC_MODELS)} models load "
               f"({', '.join(loaded) or 'none'}). What the server said:\n{problems}")
    if not loaded:
        raise Fail(message)
    score.set(len(loaded) / len(PUBLIC_MODELS), message)


@pytest.mark.points(4)
def test_pipeline_answers(triton, settings, score):
    """pipeline answers hidden batches (sizes from lab.toml) with the lab's numbers: scale's
    params.json and score's direction unchanged, the steps wired in order."""
    import tritonclient.http as httpclient
    from tritonclient.utils import InferenceServerException

    server = triton.require_model("pipeline")
    rng = np.random.default_rng()
    client = server.http_client()
    worst = 0.0
    try:
        for batch in settings["pipeline_batches"]:
            raw = rng.standard_normal((batch, 4)).astype(np.float32)
            x = httpclient.InferInput("RAW", [batch, 4], "FP32")
            x.set_data_from_numpy(raw)
            try:
                got = client.infer("pipeline", [x]).as_numpy("SCORE")
            except InferenceServerException as exc:
                raise Fail(f"pipeline refused a batch of {batch} rows of 4 floats (input RAW): "
                           f"{exc}") from None
            want = pipeline_reference(raw)
            if got is None or got.shape != want.shape:
                raise Fail(f"pipeline's SCORE for a batch of {batch} came back with shape "
                           f"{None if got is None else list(got.shape)}; expected "
                           f"{list(want.shape)}")
            error = float(np.max(np.abs(got - want)))
            worst = max(worst, error)
            if error > settings["atol"]:
                row = int(np.argmax(np.abs(got - want).ravel()))
                raise Fail(f"pipeline's SCORE differs from the lab's numbers on a hidden batch "
                           f"of {batch}: row {row} got {got.ravel()[row]:.6f}, expected "
                           f"{want.ravel()[row]:.6f} (max error {error:.2e} > "
                           f"{settings['atol']}). Repair the configuration, not the math: "
                           "scale/1/params.json and score's DIRECTION are given.")
    finally:
        client.close()
    if not np.isfinite(worst):
        raise GraderError("the reference produced non-finite values")
    score.measure(max_abs_error=worst)
