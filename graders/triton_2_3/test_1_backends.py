"""One network behind two backends: PyTorch and ONNX Runtime in the Python backend, the
export itself (served by the grader's onnx_check), and the native onnxruntime config."""

from __future__ import annotations

import pytest

from labgrade import Fail

from .checks import check_outputs, onnx_interface, read_config

NATIVE = "container_repository/onnx_native/config.pbtxt"


@pytest.mark.points(10)
def test_pytorch_model_outputs(backends, settings, reference_net, rng, score):
    """pytorch_model answers hidden inputs (1 row over HTTP and gRPC; batches of 1, 3, 8)
    like the reference network."""
    server = backends.require_model("pytorch_model")
    score.measure(requests=check_outputs(server, "pytorch_model", reference_net, rng, settings,
                                         "pytorch_model"))


@pytest.mark.points(15)
def test_onnx_export_matches_pytorch(export, backends, settings, reference_net, rng, score):
    """`python export.py WEIGHTS OUT` writes an ONNX file that the grader's own ONNX Runtime
    model (onnx_check) loads and that computes the network on hidden inputs, any batch
    size."""
    export.require()
    try:
        server = backends.require_model("onnx_check", ours=False)
    except Fail as exc:
        raise Fail(f"your export did not load in ONNX Runtime (the grader's model "
                   f"onnx_check):\n{str(exc).split(chr(10), 1)[-1]}") from None
    score.measure(requests=check_outputs(server, "onnx_check", reference_net, rng, settings,
                                         "your export in ONNX Runtime"))


@pytest.mark.points(10)
def test_onnx_model_outputs(backends, settings, reference_net, rng, score):
    """onnx_model (ONNX Runtime inside the Python backend, on your export) answers hidden
    inputs like the reference network."""
    server = backends.require_model("onnx_model")
    score.measure(requests=check_outputs(server, "onnx_model", reference_net, rng, settings,
                                         "onnx_model"))


@pytest.mark.points(10)
def test_native_onnxruntime_config(submission, export, settings):
    """The config for Triton's native ONNX Runtime backend (the course image), read as data:
    backend, batch size, and tensors that match your exported graph's names and shapes."""
    config, todo = read_config(submission, NATIVE)
    problems = []
    backend = config.get("backend") or config.get("platform")
    if backend not in ("onnxruntime", "onnxruntime_onnx"):
        problems.append(f"backend is {backend!r}: the native backend is \"onnxruntime\" "
                        "(or platform \"onnxruntime_onnx\"), not the Python backend")
    if int(config.get("max_batch_size", 0)) != settings["max_batch_size"]:
        problems.append(f"max_batch_size is {config.get('max_batch_size', 0)}; expected "
                        f"{settings['max_batch_size']} (the export's batch axis is dynamic)")
    graph = {"inputs": [["X", ["batch", 16]]], "outputs": [["Y", ["batch", 4]]]}
    if export.failure is None and export.value is not None:
        graph = onnx_interface(export.value)
    for kind, entries in (("input", graph["inputs"]), ("output", graph["outputs"])):
        declared = {e.get("name"): e for e in config.get(kind, [])}
        for name, dims in entries:
            entry = declared.get(name)
            if entry is None:
                problems.append(f"your exported graph has {kind} {name!r}, the config declares "
                                f"{sorted(declared) or 'none'} (the native backend matches "
                                "tensors by name)")
                continue
            if entry.get("data_type") != "TYPE_FP32":
                problems.append(f"{kind} {name} is {entry.get('data_type')}; expected TYPE_FP32")
            want = [int(d) for d in dims[1:]]
            got = [int(d) for d in entry.get("dims", [])]
            if got != want:
                problems.append(f"{kind} {name} has dims {got}; the graph's shape without the "
                                f"batch axis is {want}")
    if problems:
        raise Fail(f"{NATIVE}: {todo}" + "; ".join(problems))
