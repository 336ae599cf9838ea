"""triton_2_2 graded for real (embedded tritonserver): the solution gets full marks, the
starter 0, each known-wrong submission loses the item it targets while the items it does
not touch still pass. Every run must leave no tritonserver or stub process and no
/dev/shm segment behind. The A/B test's numbers (stats.py) are checked exactly, and its
false-fail rate on the reference splitter is checked by simulation."""

from __future__ import annotations

import importlib.util
import random
from pathlib import Path

import pytest

from conftest import ROOT, items_by_name, run_grade, verdict
from labgrade.runtime.triton import triton_available

LAB = "triton_2_2"
WRONG = ROOT / "fixtures" / LAB
TRITON_OK, TRITON_WHY = triton_available()
needs_triton = pytest.mark.skipif(not TRITON_OK, reason=f"embedded Triton missing: {TRITON_WHY}")

# fixture -> (-k selection, items that must fail, items that must still pass, message parts)
KNOWN_WRONG = {
    "wrong_policy_specific": ("version_policies or load_and_unload", ["test_version_policies"],
                              ["test_load_and_unload"], ["[3, 4]", "specific"]),
    "wrong_unload_everything": ("load_and_unload or serve_versions", ["test_load_and_unload"],
                                ["test_serve_versions"], ["also changed classifier"]),
    "wrong_serve_versions_partial_config": ("serve_versions or load_and_unload",
                                            ["test_serve_versions"], ["test_load_and_unload"],
                                            ["max_batch_size 8 -> 0", "get_model_config"]),
    "wrong_rollback_unload_first": ("rollback or serve_versions",
                                    ["test_rollback_without_downtime"],
                                    ["test_serve_versions"], ["configuration override"]),
    "wrong_split_ignores_weights": ("split_matches or sticky",
                                    ["test_ab_split_matches_weights"],
                                    ["test_ab_assignment_is_sticky"], ["293..345"]),
    "wrong_split_not_sticky": ("sticky or rollback", ["test_ab_assignment_is_sticky"],
                               ["test_rollback_without_downtime"], ["same version"]),
    # hash() of the user id: sticky inside one process, salted differently in the next
    "wrong_split_process_hash": ("split_matches or sticky", ["test_ab_assignment_is_sticky"],
                                 ["test_ab_split_matches_weights"],
                                 ["process was restarted", "hashlib"]),
    # rolls back to the oldest ready version: right with two versions served, not with three
    "wrong_rollback_oldest": ("rollback or serve_versions", ["test_rollback_without_downtime"],
                              ["test_serve_versions"], ["[1, 2, 3]", "returned 1"]),
}


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


stats = _load(ROOT / "graders" / LAB / "stats.py", "triton_2_2_stats")


# ------------------------------------------------------------------ the statistics, no server
def test_published_acceptance_region_and_error_rates():
    n, p, alpha = 400, 0.8, 0.001
    lo, hi = stats.acceptance_region(n, p, alpha)
    assert (lo, hi) == (293, 345)
    false_fail = stats.false_fail_probability(n, p, alpha)
    assert false_fail <= alpha < 0.01
    assert abs(false_fail - 0.00089) < 0.00002
    pass_prob = {q: stats.acceptance_probability(n, q, lo, hi) for q in (0.5, 0.7, 0.9, 0.2)}
    assert pass_prob[0.5] < 1e-20          # 50/50 when 80/20 was asked: fails for sure
    assert pass_prob[0.2] < 1e-100         # swapped weights
    assert pass_prob[0.7] < 0.09           # power 91.5 % against 70/30
    assert pass_prob[0.9] < 0.011          # power 99.0 % against 90/10
    assert stats.two_sided_p_value(320, n, p) == pytest.approx(1.0, abs=0.06)
    assert stats.two_sided_p_value(200, n, p) < 1e-30


def test_settings_match_the_published_test():
    from labgrade.labs import load_lab

    lab = load_lab(ROOT, LAB)
    for profile in lab.profiles:
        settings = lab.settings(profile)
        assert settings["ab_users"] == 400 and settings["ab_alpha"] == 0.001
        assert settings["ab_weights"] == {"2": 0.8, "3": 0.2}
        assert "ab_seed" not in settings  # a fresh draw of users per run


def test_reference_splitter_false_fail_rate_by_simulation():
    """The solution's hash splitter over fresh random user ids, 300 simulated gradings: the
    split test fails about alpha of the time (0.3 expected; more than 3 would be a bias)."""
    spec = importlib.util.spec_from_file_location("ref_splitter",
                                                  ROOT / "solutions" / LAB / "splitter.py")
    splitter = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(splitter)
    lo, hi = stats.acceptance_region(400, 0.8, 0.001)
    rng = random.Random(20261126)
    weights = {"2": 0.8, "3": 0.2}
    failures, counts = 0, []
    for _ in range(300):
        k = sum(splitter.choose_version(f"user-{rng.getrandbits(64):016x}", weights) == "2"
                for _ in range(400))
        counts.append(k)
        failures += not lo <= k <= hi
    assert failures <= 3, failures
    mean = sum(counts) / len(counts)
    assert abs(mean - 320) < 2.5, mean  # E = 320, sd of the mean 0.46
    # and the 50/50 splitter of the known-wrong fixture never passes
    wrong = _load(WRONG / "wrong_split_ignores_weights" / "splitter.py", "wrong_splitter")
    for _ in range(20):
        k = sum(wrong.choose_version(f"user-{rng.getrandbits(64):016x}", weights) == "2"
                for _ in range(400))
        assert not lo <= k <= hi


# ------------------------------------------------------------------ real gradings
def grade(*extra: str, report_dir: Path, env: dict | None = None,
          timeout: float = 300) -> tuple[dict, str]:
    """`pytest labs/triton_2_2 --grade ...` (conftest.run_grade: also proves that nothing was
    left behind); returns grade.json and the run's output."""
    result, proc = run_grade(LAB, *extra, report_dir=report_dir, timeout=timeout, env=env)
    return result, proc.stdout + proc.stderr


@pytest.mark.slow
@needs_triton
def test_solution_gets_full_marks(tmp_path):
    grade_json, out = grade("--solution", report_dir=tmp_path / "r")
    failed = {i["name"]: i["message"] for i in grade_json["items"] if i["status"] != "passed"}
    assert not failed, failed
    assert grade_json["score"] == grade_json["max_score"] == 100
    assert "TOTAL 100/100" in out
    split = items_by_name(grade_json)["test_ab_split_matches_weights"]["measured"]
    assert split["users"] == 400 and split["acceptance_region"] == [293, 345]
    assert sum(split["served"].values()) == 400 and split["served"] == split["labels"]
    rollback = items_by_name(grade_json)["test_rollback_without_downtime"]["measured"]
    assert rollback["requests_failed"] == 0 and rollback["polls_without_ready_version"] == 0
    policies = items_by_name(grade_json)["test_version_policies"]["measured"]
    assert policies["classifier_ready_after_v4"] == [3, 4] and policies["ranker_ready"] == [1]


@pytest.mark.slow
@needs_triton
def test_starter_scores_zero(tmp_path):
    grade_json, _ = grade("--starter", report_dir=tmp_path / "r")
    assert grade_json["score"] == 0 and grade_json["max_score"] == 100
    statuses = {i["status"] for i in grade_json["items"]}
    assert statuses == {"failed"}, statuses
    assert all("TODO" in i["message"] for i in grade_json["items"]), [
        i["message"][:200] for i in grade_json["items"]]


@pytest.mark.slow
@needs_triton
@pytest.mark.parametrize("fixture", sorted(KNOWN_WRONG))
def test_known_wrong_submission_loses_its_item(tmp_path, fixture):
    selection, must_fail, must_pass, words = KNOWN_WRONG[fixture]
    grade_json, _ = grade("--submission", str(WRONG / fixture), "-k", selection,
                          report_dir=tmp_path / "r")
    items = items_by_name(grade_json)
    for name in must_fail:
        assert items[name]["status"] == "failed", verdict(items[name])
        assert items[name]["score"] == 0
    for word in words:
        assert word in items[must_fail[0]]["message"], (word, items[must_fail[0]]["message"])
    for name in must_pass:
        assert items[name]["status"] == "passed", verdict(items[name])
