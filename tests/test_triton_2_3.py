"""triton_2_3 graded for real (embedded tritonserver, the grader's vLLM OpenAI server,
perf_analyzer): the solution gets full marks, the starter 0, each known-wrong submission
loses the item it targets while a neighbouring item still passes. Every grading must leave
no process and no /dev/shm segment behind (conftest.run_grade checks).

Time: the starter and the overlays are graded two at a time after the solution (each is
mostly waiting on its servers; tests/grading_slots.py allows two), to stay near the 4-minute
budget on 2 cores."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import ROOT, items_by_name, run_grade
from labgrade.runtime.triton import triton_available

LAB = "triton_2_3"
WRONG = ROOT / "fixtures" / LAB
TRITON_OK, TRITON_WHY = triton_available()
needs_triton = pytest.mark.skipif(not TRITON_OK, reason=f"embedded Triton missing: {TRITON_WHY}")

# fixture -> (item it must lose, neighbour that must still pass, words of the message)
KNOWN_WRONG = {
    "wrong_pytorch_relu_after_last": ("test_pytorch_model_outputs", "test_onnx_model_outputs",
                                      ["differs from the reference network"]),
    "wrong_pytorch_init_raises": ("test_pytorch_model_outputs", "test_onnx_model_outputs",
                                  ["did not load", "mlp.pt"]),
    "wrong_export_static_batch": ("test_onnx_export_matches_pytorch",
                                  "test_pytorch_model_outputs", ["3 row"]),
    "wrong_export_not_onnx": ("test_onnx_export_matches_pytorch", "test_pytorch_model_outputs",
                              ["ONNX Runtime", "onnx_check"]),
    "wrong_onnx_config_syntax": ("test_onnx_model_outputs", "test_onnx_export_matches_pytorch",
                                 ["did not load", "line"]),
    "wrong_router_ignores_parameter": ("test_router_routes_by_parameter",
                                       "test_onnx_model_outputs",
                                       ["'onnx_model': 3.0", "nv_inference_count"]),
    "wrong_native_tensor_names": ("test_native_onnxruntime_config",
                                  "test_onnx_export_matches_pytorch", ["'X'", "input__0"]),
    "wrong_vllm_args_misspelt": ("test_vllm_backend_repository",
                                 "test_native_onnxruntime_config", ["gpu_mem_utilization"]),
    "wrong_compare_serial_throughput": ("test_comparison_agrees_with_perf_analyzer",
                                        "test_router_routes_by_parameter", ["throughput"]),
    "wrong_stream_buffered": ("test_stream_arrives_incrementally",
                              "test_stream_text_matches_engine", ["held back", "engine takes"]),
    "wrong_stream_sampled": ("test_stream_text_matches_engine",  # (sampled text may end
                             "test_router_routes_by_parameter", ["greedy"]),  # early: not kept)
    "wrong_stream_ignores_cancel": ("test_cancel_stops_generation",
                                    "test_stream_text_matches_engine",
                                    ["of the 900 tokens", "is_cancelled"]),
}
LLM_ITEMS = {"test_stream_arrives_incrementally", "test_stream_text_matches_engine",
             "test_cancel_stops_generation"}


def grade(*extra: str, report_dir: Path) -> dict:
    result, _ = run_grade(LAB, *extra, report_dir=report_dir, timeout=300)
    return result


@pytest.fixture(scope="module")
def solution(tmp_path_factory) -> dict:
    return grade("--solution", report_dir=tmp_path_factory.mktemp("solution"))


@pytest.fixture(scope="module")
def others(solution, tmp_path_factory) -> dict[str, dict]:
    """The starter and every known-wrong submission (on its two items), two gradings at a
    time once the solution's is done (its comparison item measures speed: it runs alone);
    those that start a vLLM server first."""
    def one(name: str) -> tuple[str, dict]:
        if name == "starter":
            return name, grade("--starter", report_dir=tmp_path_factory.mktemp(name))
        lose, keep, _ = KNOWN_WRONG[name]
        return name, grade("--submission", str(WRONG / name), "-k", f"{lose} or {keep}",
                           report_dir=tmp_path_factory.mktemp(name))

    llm = [n for n, (lose, keep, _) in KNOWN_WRONG.items() if {lose, keep} & LLM_ITEMS]
    order = llm + ["starter"] + [n for n in KNOWN_WRONG if n not in llm]
    with ThreadPoolExecutor(2) as pool:
        return dict(pool.map(one, order))


@pytest.mark.slow
@needs_triton
def test_solution_gets_full_marks(solution):
    failed = {i["name"]: i["message"] for i in solution["items"]
              if i["status"] not in ("passed", "out_of_scope")}
    assert not failed, failed
    assert solution["score"] == solution["max_score"] == 100
    items = items_by_name(solution)
    assert items["test_vllm_backend_serves"]["status"] == "out_of_scope"
    assert "numpy" in items["test_vllm_backend_serves"]["message"]
    # perf_analyzer's and the student's numbers side by side
    side = items["test_comparison_agrees_with_perf_analyzer"]["measured"]["side_by_side"]
    assert set(side) == {"pytorch_model", "onnx_model"}
    for numbers in side.values():
        assert numbers["perf_analyzer"]["throughput_rps"] > 0
        assert numbers["yours"]["throughput_rps"] > 0
    cancel = items["test_cancel_stops_generation"]["measured"]
    assert cancel["running"] == 0 and 0 < cancel["generated_after_cancel"] < cancel["asked"] / 2
    streams = items["test_stream_arrives_incrementally"]["measured"]["streams"]
    assert {s["stream"] for s in streams} == {1, 2} and all(s["responses"] >= 8 for s in streams)
    routed = items["test_router_routes_by_parameter"]["measured"]["routed"]
    assert [r["backend"] for r in routed] == ["onnx", "pytorch", "onnx", None]


@pytest.mark.slow
@needs_triton
def test_starter_scores_zero(others):
    result = others["starter"]
    assert result["score"] == 0 and result["max_score"] == 100
    statuses = {i["name"]: i["status"] for i in result["items"]}
    assert set(statuses.values()) == {"failed", "out_of_scope"}, statuses
    items = items_by_name(result)
    # bad input shows the tool's own words: the export's traceback, the server's load error
    assert "NotImplementedError" in items["test_onnx_export_matches_pytorch"]["message"]
    assert "TODO" in items["test_native_onnxruntime_config"]["message"]


@pytest.mark.slow
@needs_triton
@pytest.mark.parametrize("fixture", sorted(KNOWN_WRONG))
def test_known_wrong_submission_loses_its_item(others, fixture):
    lose, keep, words = KNOWN_WRONG[fixture]
    items = items_by_name(others[fixture])
    assert items[lose]["status"] == "failed" and items[lose]["score"] == 0, items[lose]
    for word in words:
        assert word in items[lose]["message"], (word, items[lose]["message"])
    assert items[keep]["status"] == "passed", (keep, items[keep])
