"""Grader-side checks shared by the items: outputs vs the reference network, and the
native configuration and the vLLM-backend repository read as data."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
from triton_2_1.tritonio import infer

from labgrade import Fail
from labgrade.runtime.triton import default_triton_venv, parse_model_config


def check_outputs(server, model: str, reference_net, rng, settings, what: str,
                  parameters: dict | None = None) -> int:
    """Hidden single rows (HTTP and gRPC) and batches of batch_sizes rows (HTTP) vs the
    reference network. Returns the number of requests sent."""
    cases = [("http" if i % 2 == 0 else "grpc", 1) for i in range(settings["hidden_inputs"])]
    cases += [("http", n) for n in settings["batch_sizes"]]
    for i, (protocol, rows) in enumerate(cases):
        x = rng.standard_normal((rows, 16)).astype(np.float32)
        got, error = infer(server, protocol, model, x)
        if error:
            raise Fail(f"{what}: hidden request {i + 1} ({rows} row(s) over {protocol.upper()}) "
                       f"failed: {error}")
        want = reference_net(x)
        if got is None or got.shape != want.shape:
            raise Fail(f"{what}: hidden request {i + 1} ({rows} rows) returned Y of shape "
                       f"{None if got is None else list(got.shape)}; expected {list(want.shape)}"
                       " (one row of 4 per input row: keep the batch dimension dynamic)")
        if not np.allclose(got, want, atol=settings["atol"], rtol=settings["rtol"]):
            diff = float(np.max(np.abs(got.astype(np.float64) - want)))
            raise Fail(f"{what}: hidden request {i + 1} ({rows} rows over {protocol.upper()}) "
                       f"differs from the reference network by up to {diff:.3g} (tolerance "
                       f"{settings['atol']:g}); expected {np.round(want[0], 5).tolist()}, got "
                       f"{np.round(got[0], 5).tolist()}")
    return len(cases)


def onnx_interface(path) -> dict:
    """Input and output names and shapes of an ONNX file (read with `onnx` in the Triton
    environment, where it is installed)."""
    code = ("import json, sys, onnx\nm = onnx.load(sys.argv[1])\n"
            "dims = lambda v: [d.dim_value or d.dim_param for d in "
            "v.type.tensor_type.shape.dim]\n"
            "print(json.dumps({'inputs': [[v.name, dims(v)] for v in m.graph.input], "
            "'outputs': [[v.name, dims(v)] for v in m.graph.output]}))")
    python = default_triton_venv() / "bin" / "python"
    proc = subprocess.run([str(python), "-I", "-c", code, str(path)], capture_output=True,
                          text=True, timeout=60)
    if proc.returncode != 0:
        raise Fail(f"your export does not load with onnx.load: {proc.stderr.strip()[-800:]}")
    return json.loads(proc.stdout)


def read_config(submission, relpath: str) -> tuple[dict, str]:
    """(the config as a dict, "it still has TODOs. " or "") — a parse error is a Fail."""
    text = submission.require(relpath).read_text(errors="replace")
    todo = "it still has TODOs. " if "TODO" in text else ""
    try:
        return parse_model_config(text), todo
    except ValueError as exc:
        raise Fail(f"{relpath}: {todo}{exc}") from None


def engine_arg_fields() -> set[str]:
    """The installed vLLM's AsyncEngineArgs fields (what Triton's vLLM backend passes
    model.json to), read in a subprocess: the grading process does not import vLLM."""
    code = ("import dataclasses, json\nfrom vllm.engine.arg_utils import AsyncEngineArgs\n"
            "print(json.dumps([f.name for f in dataclasses.fields(AsyncEngineArgs)]))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"could not read vLLM's AsyncEngineArgs: {proc.stderr[-800:]}")
    return set(json.loads(proc.stdout.strip().splitlines()[-1]))
