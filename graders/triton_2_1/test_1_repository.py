"""Items about the student's model repository: its config, loading, outputs, batching,
and the traces its requests leave in metrics and statistics."""

from __future__ import annotations

import numpy as np
import pytest

from labgrade import Fail
from labgrade.runtime.triton import parse_model_config

from .tritonio import counts, counts_after, infer

CONFIG = "model_repository/mlp/config.pbtxt"
TODO_HINT = "config.pbtxt still has TODOs. "


def _dims(entry: dict) -> list[int]:
    return [int(d) for d in entry.get("dims", [])]


@pytest.mark.points(10)
def test_config_declares_the_interface(submission, settings):
    """config.pbtxt read as data (protobuf text format): name, backend, max_batch_size,
    the input and output tensors, and the instance group of the profile."""
    text = submission.require(CONFIG).read_text(errors="replace")
    todo = TODO_HINT if "TODO" in text else ""
    try:
        config = parse_model_config(text)
    except ValueError as exc:
        raise Fail(f"{todo}{CONFIG} is not valid protobuf text: {exc}") from None
    problems = []
    name = config.get("name", settings["model"])
    if name != settings["model"]:
        problems.append(f"name is {name!r}; the model is served as {settings['model']!r} "
                        "(the folder's name)")
    if config.get("backend") != "python":
        problems.append(f"backend is {config.get('backend', '(not set)')!r}; model.py runs "
                        "in the \"python\" backend")
    mbs = int(config.get("max_batch_size", 0))
    if mbs != settings["max_batch_size"]:
        problems.append(f"max_batch_size is {mbs}; requests carry up to "
                        f"{settings['max_batch_size']} rows, so set max_batch_size: "
                        f"{settings['max_batch_size']} (the batch dimension is then implicit: "
                        "do not list it in dims)")
    for kind, wanted_name, width in (("input", "X", settings["input_dim"]),
                                     ("output", "Y", settings["output_dim"])):
        entries = config.get(kind, [])
        if len(entries) != 1:
            problems.append(f"declare exactly one {kind} ({wanted_name!r}); found "
                            f"{len(entries)}")
            continue
        entry = entries[0]
        if entry.get("name") != wanted_name:
            problems.append(f"the {kind} is called {entry.get('name')!r}; expected "
                            f"{wanted_name!r}")
        if entry.get("data_type") != "TYPE_FP32":
            problems.append(f"{kind} {wanted_name} has data_type "
                            f"{entry.get('data_type', '(not set)')}; expected TYPE_FP32")
        if _dims(entry) != [width]:
            problems.append(f"{kind} {wanted_name} has dims {_dims(entry)}; expected [ {width} ] "
                            "(per row; the batch dimension comes from max_batch_size)")
    groups = config.get("instance_group", [])
    kind = settings["instance_kind"]
    if not groups:
        problems.append(f"there is no instance_group: declare one with kind: {kind}")
    for group in groups:
        got = group.get("kind", "KIND_AUTO")
        if got != kind:
            problems.append(f"instance_group kind is {got}; on this profile use {kind}")
        if int(group.get("count", 1)) < 1:
            problems.append("instance_group count must be at least 1")
    if problems:
        raise Fail(f"{todo}{CONFIG}: " + "; ".join(problems))


@pytest.mark.points(15)
def test_repository_loads(student_model, settings, score):
    """Triton loads "mlp" from the student's repository (explicit load, strict config)."""
    server = student_model.require_model(settings["model"])
    name = settings["model"]
    score.measure(load_seconds=student_model.load_seconds(name))
    if not server.model_ready(name, "1"):
        ready = [e.get("version") for e in server.repository_index(ready_only=True)
                 if e.get("name") == name]
        raise Fail(f"model {name!r} loaded but version 1 is not ready (ready: {ready}): put "
                   "model.py in the version folder model_repository/mlp/1/")


def _compare(got, want: np.ndarray, settings: dict, what: str) -> None:
    if got is None or getattr(got, "size", 0) == 0:
        raise Fail(f"{what}: the response has no output \"Y\" (empty answer). Return "
                   "pb_utils.Tensor(\"Y\", ...) in every InferenceResponse.")
    if got.shape != want.shape:
        raise Fail(f"{what}: output \"Y\" has shape {list(got.shape)}; expected "
                   f"{list(want.shape)} (one row of {want.shape[-1]} values per input row)")
    if got.dtype != np.float32:
        raise Fail(f"{what}: output \"Y\" is {got.dtype}; the config declares TYPE_FP32")
    if not np.allclose(got, want, atol=settings["atol"], rtol=settings["rtol"]):
        diff = float(np.max(np.abs(got.astype(np.float64) - want)))
        raise Fail(f"{what}: output differs from the reference network (max |difference| "
                   f"{diff:.3g}, tolerance {settings['atol']:g}); expected "
                   f"{np.round(want[0], 5).tolist()}, got {np.round(got[0], 5).tolist()}. "
                   "Check that initialize() loads mlp.pt into MLP() and that execute() runs "
                   "the network as defined (ReLU between layers, nothing after the last).")


@pytest.mark.points(15)
def test_outputs_match_reference(student_model, settings, reference_net, rng, score):
    """Hidden single-row inputs over HTTP and gRPC (grader's clients) vs the grader's torch
    reference, within atol/rtol."""
    server = student_model.require_model(settings["model"])
    n = settings["hidden_inputs"]
    for i in range(n):
        protocol = "http" if i % 2 == 0 else "grpc"
        x = rng.standard_normal((1, settings["input_dim"])).astype(np.float32)
        got, error = infer(server, protocol, settings["model"], x)
        if error:
            raise Fail(f"a request over {protocol.upper()} with input X of shape [1, "
                       f"{settings['input_dim']}] failed: {error}")
        _compare(got, reference_net(x), settings, f"hidden input {i + 1} over "
                 f"{protocol.upper()}")
    score.measure(requests=n)


@pytest.mark.points(10)
def test_batch_dimension(student_model, settings, reference_net, rng):
    """A batch of N rows (N in batch_sizes, up to max_batch_size) returns N correct rows; a
    request of max_batch_size + 1 rows is rejected by the server."""
    server = student_model.require_model(settings["model"])
    for n in settings["batch_sizes"]:
        x = rng.standard_normal((n, settings["input_dim"])).astype(np.float32)
        got, error = infer(server, "http", settings["model"], x)
        if error:
            raise Fail(f"a batch of {n} rows (input X of shape [{n}, {settings['input_dim']}]) "
                       f"was refused: {error}. The batch dimension comes from max_batch_size.")
        if got is not None and got.shape[:1] != (n,):
            raise Fail(f"a batch of {n} rows came back with {got.shape[0] if got.ndim else 0} "
                       f"rows (shape {list(got.shape)}): execute() must run the network on the "
                       "whole [batch, 16] input and return [batch, 4]")
        _compare(got, reference_net(x), settings, f"a batch of {n} rows")
    too_many = settings["max_batch_size"] + 1
    x = rng.standard_normal((too_many, settings["input_dim"])).astype(np.float32)
    got, error = infer(server, "http", settings["model"], x)
    if not error:
        raise Fail(f"a request of {too_many} rows was accepted; with max_batch_size "
                   f"{settings['max_batch_size']} Triton must refuse it. Set max_batch_size "
                   f"to {settings['max_batch_size']} and keep the batch dimension out of dims.")


@pytest.mark.points(10)
def test_requests_show_in_metrics_and_statistics(student_model, settings, rng, score):
    """Requests of 1, 2, 3 and 8 rows (14 samples in 4 requests) must raise
    nv_inference_count by 14 and nv_inference_request_success by 4 on the metrics port, and
    inference_count by 14 and the success count by 4 in the statistics extension."""
    server = student_model.require_model(settings["model"])
    model = settings["model"]
    sizes = [1, 2, 3, settings["max_batch_size"]]
    before = counts(server, model)
    errors = []
    for n in sizes:
        x = rng.standard_normal((n, settings["input_dim"])).astype(np.float32)
        _, error = infer(server, "http", model, x)
        if error:
            errors.append(f"{n} rows: {error}")
    after = counts_after(server, model, before, len(sizes))
    delta = {k: after[k] - before[k] for k in before}
    score.measure(**{k: round(v, 1) for k, v in delta.items()})
    samples, requests = sum(sizes), len(sizes)
    if errors or delta["metric_failure"]:
        raise Fail(f"{len(errors) or int(delta['metric_failure'])} of {requests} requests failed "
                   f"(nv_inference_request_failure rose by {delta['metric_failure']:.0f}): "
                   + "; ".join(errors))
    if delta["metric_success"] != requests or delta["stats_success"] != requests:
        raise Fail(f"{requests} successful requests raised nv_inference_request_success by "
                   f"{delta['metric_success']:.0f} and the statistics' success count by "
                   f"{delta['stats_success']}")
    if delta["metric_inferences"] != samples or delta["stats_inferences"] != samples:
        hint = ""
        if delta["metric_inferences"] == requests:
            hint = (": Triton counted one inference per request, which is what it does for a "
                    "model without a batch dimension (max_batch_size 0). Declare "
                    f"max_batch_size: {settings['max_batch_size']} so that every row counts")
        raise Fail(f"{requests} requests carrying {samples} rows raised nv_inference_count by "
                   f"{delta['metric_inferences']:.0f} and the statistics' inference_count by "
                   f"{delta['stats_inferences']}; both should rise by {samples}{hint}")
