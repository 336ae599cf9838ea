"""lab_2_2 graded for real: solution full marks, starter zero, each known-wrong submission
loses the item it targets (and, where shown, the rest of the lab still grades)."""

from __future__ import annotations

import pytest

from conftest import ROOT, items_by_name, plotted_curves, verdict

pytestmark = pytest.mark.slow
WRONG = ROOT / "fixtures" / "lab_2_2"

# fixture -> (-k selection, items that must fail, items that must still pass)
KNOWN_WRONG = {
    "wrong_kv_gqa": ("kv_", ["test_kv_bytes_per_token", "test_kv_blocks", "test_max_concurrency",
                             "test_kv_math_matches_engine"], []),
    "wrong_kv_rounding": ("kv_", ["test_kv_blocks", "test_max_concurrency"],
                          ["test_kv_bytes_per_token", "test_kv_math_matches_engine"]),
    "wrong_kv_fp8_e4m3": ("kv_bytes or kv_blocks or max_concurrency",
                          ["test_kv_bytes_per_token"], ["test_kv_blocks", "test_max_concurrency"]),
    "wrong_int8_per_tensor": ("int8 or int4", ["test_int8_per_channel"],
                              ["test_int4_groupwise", "test_int4_packed_memory"]),
    "wrong_int4_per_row": ("int8 or int4", ["test_int4_groupwise"],
                           ["test_int8_per_channel", "test_int4_packed_memory"]),
    "wrong_int4_unpacked": ("int4", ["test_int4_packed_memory"], ["test_int4_groupwise"]),
    "wrong_prefix_order": ("prefix", ["test_prefix_cache_hit_rate",
                                      "test_prefix_cache_cuts_ttft"], []),
    "wrong_prompts_dedup": ("prefix", ["test_prefix_cache_hit_rate",
                                       "test_prefix_cache_cuts_ttft"], []),
    "wrong_spec_zero": ("ngram or draft", ["test_ngram_keeps_greedy_outputs",
                                           "test_ngram_speedup",
                                           "test_draft_model_speculation"], []),
    "wrong_spec_dtype": ("ngram or draft", ["test_ngram_keeps_greedy_outputs",
                                            "test_ngram_speedup"],
                         ["test_draft_model_speculation"]),
}


def test_solution_gets_full_marks(grade_lab, tmp_path):
    grade, proc = grade_lab("lab_2_2", "--solution", "--profile", "cpu")
    failed = {i["name"]: i["message"] for i in grade["items"]
              if i["status"] not in ("passed", "out_of_scope")}
    assert not failed, failed
    assert grade["score"] == grade["max_score"] == 100
    assert proc.returncode == 0
    assert "TOTAL 100/100" in proc.stdout
    items = items_by_name(grade)
    # the GPU-only items are listed, out of scope, and leave the cpu maximum
    assert items["test_draft_model_speedup"]["status"] == "out_of_scope"
    assert items["test_quantized_serving"]["status"] == "out_of_scope"
    # every speed-up item records how stable its measurement was
    for name, key in (("test_prefix_cache_cuts_ttft", "ttft_speedup"),
                      ("test_ngram_speedup", "ngram_speedup")):
        measured = items[name]["measured"]
        assert measured[key] >= 1.3 and f"{key}_spread" in measured, measured
    assert items["test_kv_math_matches_engine"]["measured"]["vllm_num_blocks"] == 381
    # every curve-scored item graded here carries its thresholds (report.html plots them)
    curve_items = {("test_prefix_cache_hit_rate", "prefix_hit_rate"),
                   ("test_prefix_cache_cuts_ttft", "ttft_speedup"),
                   ("test_ngram_speedup", "ngram_speedup")}
    for name, key in curve_items:
        curve = items[name]["measured"].get(f"curve:{key}")
        assert curve is not None and curve["zero_at"] < curve["full_at"], (name, curve)
    assert plotted_curves(tmp_path / "reports" / "lab_2_2") == curve_items
    # the gpu-only curve item (test_draft_model_speedup, "draft_speedup") is out of scope here


def test_starter_scores_zero(grade_lab):
    grade, proc = grade_lab("lab_2_2", "--starter", "--profile", "cpu")
    assert grade["score"] == 0 and grade["max_score"] == 100
    statuses = {i["status"] for i in grade["items"] if i["status"] != "out_of_scope"}
    assert statuses == {"failed"}, statuses  # the student's doing, not a grader error
    assert all("TODO" in i["message"] for i in grade["items"] if i["status"] == "failed")


@pytest.mark.parametrize("fixture", sorted(KNOWN_WRONG))
def test_known_wrong_submission_loses_its_item(grade_lab, fixture):
    selection, must_fail, must_pass = KNOWN_WRONG[fixture]
    grade, proc = grade_lab("lab_2_2", "--submission", str(WRONG / fixture), "--profile", "cpu",
                            "-k", selection)
    items = items_by_name(grade)
    for name in must_fail:
        assert items[name]["status"] == "failed", verdict(items[name])
        assert items[name]["score"] == 0
        assert items[name]["message"], "a failed item must say why"
    if fixture == "wrong_prompts_dedup":  # the repeated request is named as the cause
        assert "comes twice" in items["test_prefix_cache_hit_rate"]["message"]
    for name in must_pass:
        assert items[name]["status"] == "passed", verdict(items[name])
