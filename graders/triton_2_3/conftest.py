"""Fixtures of the triton_2_3 graders: one embedded tritonserver per grading run serving
the student's repository (labgrade.kit.triton), the student's ONNX export made beforehand
(staging.py), and, for the LLM items only, the grader's vLLM OpenAI server on the tiny model
that llm_stream streams from. That server starts only once llm_stream has loaded (a starter
or a broken llm_stream costs no engine start-up) and comes up while the other items run."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from triton_2_1.grader_models import WEIGHTS_NPZ
from triton_2_1.reference_net import ReferenceNet
from labgrade.fixtures import *  # noqa: F403  (lab, submission, settings, run_dir)
from labgrade.kit import Deferred, needed
from labgrade.kit.triton import TritonDeployment, rerun_after_crash
from labgrade.runtime.process import free_port
from labgrade.runtime.vllm import OpenAIServer, resolve_model

from . import staging

pytest_runtest_call = rerun_after_crash

BACKENDS = ["pytorch_model", "onnx_model"]


@pytest.fixture(scope="package")
def llm_server(lab, settings) -> OpenAIServer:
    """The grader's vLLM OpenAI server (greedy reference and llm_stream's upstream); the
    deployment starts it."""
    port = free_port()
    argv = [sys.executable, "-m", "vllm.entrypoints.openai.api_server",
            "--model", resolve_model(settings["llm_model"]),
            "--served-model-name", settings["llm_served_name"], "--host", "127.0.0.1",
            "--port", str(port), "--dtype", "float32", "--seed", "0",
            "--max-model-len", str(settings["llm_max_model_len"]), "--enforce-eager",
            "--kv-cache-memory-bytes", str(64 << 20)]
    server = OpenAIServer(argv, port=port, log_path=lab.run_dir / "vllm-server.log",
                          startup_timeout=settings["llm_start_timeout"], student=False)
    lab.on_close(server.stop)
    return server


@pytest.fixture(scope="package")
def deployment(request, lab, submission, settings) -> TritonDeployment:
    llm = needed(request, "llm_server")
    upstream = request.getfixturevalue("llm_server") if llm else None
    triton = TritonDeployment.for_lab(lab, submission, settings)
    staging.add_weights(triton.repository)
    exported = Deferred("your ONNX export (export.py)")
    onnx = lab.run_dir / "export" / "model.onnx"
    if needed(request, "export", "backends"):
        problem = staging.run_export(submission.path, onnx, settings["export_timeout"])
        exported.fail(problem) if problem else exported.set(onnx)
    staging.add_export(triton.repository, onnx)
    if upstream is not None:
        staging.point_llm_upstream(triton.repository, upstream.base_url,
                                   settings["llm_served_name"])
    triton.exported = exported
    student = [m for m, fixture in (("pytorch_model", "backends"), ("onnx_model", "backends"),
                                    ("router", "backends"), ("llm_stream", "llm_server"))
               if needed(request, fixture)]
    ours = ["onnx_check"] if needed(request, "export") else []
    triton.start(student=list(dict.fromkeys(student)), ours=ours)
    if upstream is not None and triton.load_seconds("llm_stream") is not None:
        upstream.start_in_background()
    return triton


@pytest.fixture(scope="package")
def backends(deployment) -> TritonDeployment:
    """Items about pytorch_model / onnx_model / router call `require_model(name)`."""
    return deployment


@pytest.fixture(scope="package")
def export(deployment) -> Deferred:
    """The student's export, made before the server started; `require()` -> its path."""
    return deployment.exported


@pytest.fixture(scope="package")
def reference_net() -> ReferenceNet:
    return ReferenceNet(WEIGHTS_NPZ)


@pytest.fixture(scope="package")
def rng() -> np.random.Generator:
    return np.random.default_rng()
