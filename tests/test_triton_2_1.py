"""triton_2_1 graded for real (embedded tritonserver): the solution gets full marks, the
starter 0, each known-wrong submission loses the item it targets (and, where listed, the
items it does not touch still pass — e.g. the client items grade against the reference
model when the student's model does not load). Every run must leave no tritonserver or
stub process and no /dev/shm segment behind."""

from __future__ import annotations

import base64
import filecmp
import json
from pathlib import Path

import pytest

from conftest import ROOT, items_by_name, run_grade, verdict
from labgrade.runtime.triton import triton_available

LAB = "triton_2_1"
WRONG = ROOT / "fixtures" / LAB
TRITON_OK, TRITON_WHY = triton_available()
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not TRITON_OK, reason=f"embedded Triton missing: {TRITON_WHY}")]

# fixture -> (-k selection, items that must fail, items that must still pass, message parts)
KNOWN_WRONG = {
    "wrong_instance_group": ("config_declares or repository_loads",
                             ["test_config_declares_the_interface"], ["test_repository_loads"],
                             ["instance_group", "KIND_CPU"]),
    "wrong_config_syntax": ("repository_loads or client_http", ["test_repository_loads"],
                            ["test_client_http"], ["mlp/config.pbtxt line 12, column 16"]),
    "wrong_initialize_raises": ("repository_loads or outputs or client_grpc",
                                ["test_repository_loads", "test_outputs_match_reference"],
                                ["test_client_grpc"], ["FileNotFoundError", "weights.pt",
                                                       "initialize"]),
    "wrong_untrained": ("outputs or repository_loads", ["test_outputs_match_reference"],
                        ["test_repository_loads"], ["differs from the reference network"]),
    "wrong_first_row_only": ("batch_dimension or outputs", ["test_batch_dimension"],
                             ["test_outputs_match_reference"], ["came back with 1 rows"]),
    "wrong_no_batching": ("requests_show or batch_dimension or outputs",
                          ["test_requests_show_in_metrics_and_statistics",
                           "test_batch_dimension"],
                          ["test_outputs_match_reference"], ["max_batch_size"]),
    "wrong_client_http": ("client_http or client_grpc", ["test_client_http"],
                          ["test_client_grpc"], ["5 lists of 4 floats"]),
    "wrong_client_grpc": ("client_grpc or client_http", ["test_client_grpc"],
                          ["test_client_http"], ["tritonclient.grpc"]),
    # a model that takes the whole server down: put down to the student after it recurs,
    # and the client items still grade on a server without it
    "wrong_kills_server": ("repository_loads or client_http", ["test_repository_loads"],
                           ["test_client_http"], ["crashed each time it loaded your model"]),
    "wrong_metrics_reader": ("client_reads or requests_show",
                             ["test_client_reads_metrics_and_statistics"],
                             ["test_requests_show_in_metrics_and_statistics"],
                             ["nv_inference_request_success"]),
    # the reference model serves two versions and has a twin whose name starts with its
    # own: one version's numbers, or a name matched as a substring, do not pass
    "wrong_count_one_version": ("client_reads or client_http",
                                ["test_client_reads_metrics_and_statistics"],
                                ["test_client_http"], ["one version's count"]),
    "wrong_count_name_prefix": ("client_reads or client_grpc",
                                ["test_client_reads_metrics_and_statistics"],
                                ["test_client_grpc"], ["mlp_reference_twin", "exactly"]),
    "wrong_statistics_first_version": ("client_reads or client_http",
                                       ["test_client_reads_metrics_and_statistics"],
                                       ["test_client_http"],
                                       ["inference_statistics()", "one version's numbers"]),
}


def grade(*extra: str, report_dir: Path, env: dict | None = None,
          timeout: float = 300) -> tuple[dict, str]:
    """`pytest labs/triton_2_1 --grade ...` (conftest.run_grade: also proves that nothing was
    left behind); returns grade.json and the run's output."""
    result, proc = run_grade(LAB, *extra, report_dir=report_dir, timeout=timeout, env=env)
    return result, proc.stdout + proc.stderr


def test_shipped_weights_are_the_graders():
    """labs/ and solutions/ ship byte-identical copies of the grader's mlp.pt, and mlp.npz
    (what the grader computes its reference from, in numpy) holds the same numbers."""
    import numpy as np
    import torch

    weights = ROOT / "graders" / LAB / "mlp.pt"
    for copy in (ROOT / "labs" / LAB, ROOT / "solutions" / LAB):
        assert filecmp.cmp(weights, copy / "model_repository" / "mlp" / "1" / "mlp.pt",
                           shallow=False), copy
    assert weights.stat().st_size < 16 * 1024
    state = torch.load(weights, map_location="cpu", weights_only=True)
    with np.load(ROOT / "graders" / LAB / "mlp.npz") as npz:
        assert sorted(npz.files) == sorted(state)
        for name, tensor in state.items():
            assert np.array_equal(npz[name], tensor.numpy()), name


def test_solution_gets_full_marks(tmp_path):
    grade_json, out = grade("--solution", "--classroom-output", report_dir=tmp_path / "r")
    failed = {i["name"]: i["message"] for i in grade_json["items"] if i["status"] != "passed"}
    assert not failed, failed
    assert grade_json["score"] == grade_json["max_score"] == 100
    assert "TOTAL 100/100" in out
    line = next(ln for ln in out.splitlines() if ln.startswith("classroom result: "))
    payload = json.loads(base64.b64decode(line.split(": ", 1)[1]))
    assert sum(t["score"] for t in payload["tests"]) == 100 and payload["status"] == "pass"
    items = items_by_name(grade_json)
    assert items["test_repository_loads"]["measured"]["load_seconds"] > 0
    # observability was checked on a two-version model (the sum over versions matters)
    assert items["test_client_reads_metrics_and_statistics"]["measured"]["versions"] == 2


def test_starter_scores_zero(tmp_path):
    grade_json, _ = grade("--starter", report_dir=tmp_path / "r")
    assert grade_json["score"] == 0 and grade_json["max_score"] == 100
    statuses = {i["status"] for i in grade_json["items"]}
    assert statuses == {"failed"}, statuses  # the student's doing, not a grader error
    assert all("TODO" in i["message"] for i in grade_json["items"]), [
        i["message"][:200] for i in grade_json["items"]]


@pytest.mark.parametrize("fixture", sorted(KNOWN_WRONG))
def test_known_wrong_submission_loses_its_item(tmp_path, fixture):
    selection, must_fail, must_pass, words = KNOWN_WRONG[fixture]
    grade_json, out = grade("--submission", str(WRONG / fixture), "-k", selection,
                            report_dir=tmp_path / "r")
    items = items_by_name(grade_json)
    for name in must_fail:
        assert items[name]["status"] == "failed", verdict(items[name])
        assert items[name]["score"] == 0
    for word in words:
        assert word in items[must_fail[0]]["message"], (word, items[must_fail[0]]["message"])
    for name in must_pass:
        assert items[name]["status"] == "passed", verdict(items[name])


def test_missing_triton_is_ungradable_not_a_failure(tmp_path):
    grade_json, _ = grade("--solution", "-k", "config_declares or repository_loads or client_http",
                          report_dir=tmp_path / "r",
                          env={"LABGRADE_TRITON_VENV": str(tmp_path / "no-triton")})
    items = items_by_name(grade_json)
    assert items["test_config_declares_the_interface"]["status"] == "passed"
    for name in ("test_repository_loads", "test_client_http"):
        assert items[name]["status"] == "ungradable", items[name]
        assert "make setup" in items[name]["message"]
