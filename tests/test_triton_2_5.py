"""triton_2_5 graded for real (embedded tritonserver, promtool, Prometheus,
kubernetes-validate, check-jsonschema): the solution gets full marks, the starter 0, each
known-wrong submission loses the item it targets while a neighbouring item still passes.
Every run must leave no tritonserver, stub or Prometheus process behind. The hidden inputs
themselves are checked against the real server: every hidden broken repository fails to
load, every hidden good repository loads."""

from __future__ import annotations

import random
import re
import shutil
from pathlib import Path

import pytest

from conftest import ROOT, items_by_name, run_grade
from labgrade.runtime.triton import ModelLoadError, TritonServer, triton_available

LAB = "triton_2_5"
WRONG = ROOT / "fixtures" / LAB
TRITON_OK, TRITON_WHY = triton_available()
needs_triton = pytest.mark.skipif(not TRITON_OK, reason=f"embedded Triton missing: {TRITON_WHY}")

# fixture -> (-k selection, the item it loses, a neighbour that still passes, message parts)
KNOWN_WRONG = {
    "wrong_pipeline_wiring": ("repaired or ci_workflow", "test_repaired_models_load",
                              "test_ci_workflow_valid", ["pipeline", "scaled"]),
    "wrong_params_edited": ("pipeline_answers or repaired", "test_pipeline_answers",
                            "test_repaired_models_load", ["lab's numbers"]),
    "wrong_diagnose_dtype_as_syntax": ("diagnose", "test_diagnose_names_the_fault",
                                       "test_diagnose_names_the_place",
                                       ["expected fault 'bad_dtype', got 'config_syntax'"]),
    "wrong_diagnose_where_without_line": ("diagnose", "test_diagnose_names_the_place",
                                          "test_diagnose_names_the_fault",
                                          ["config.pbtxt:"]),
    "wrong_rollout_unload_first": ("rollout_zero or pipeline_answers",
                                   "test_rollout_zero_downtime", "test_pipeline_answers",
                                   ["requests from the grader", "do not unload first"]),
    "wrong_rollback_oldest": ("rollback or rollout_zero", "test_rollback_to_previous",
                              "test_rollout_zero_downtime", ["1 -> 2 -> 3", "returned 1"]),
    "wrong_rollback_in_memory": ("rollback or rollout_zero", "test_rollback_to_previous",
                                 "test_rollout_zero_downtime", ["new process"]),
    "wrong_ci_push_only": ("ci_workflow or check_script", "test_ci_workflow_valid",
                           "test_check_script_catches_broken_repositories", ["pull_request"]),
    "wrong_check_dtype_list": ("check_script or ci_workflow",
                               "test_check_script_catches_broken_repositories",
                               "test_ci_workflow_valid", ["rejects repositories that load"]),
    "wrong_manifest_readiness_live": ("manifest_probes or manifest_resources",
                                      "test_manifest_probes_volume_metrics",
                                      "test_manifest_resources_and_autoscaling",
                                      ["/v2/health/ready"]),
    "wrong_manifest_hpa_cpu": ("manifest_resources or manifest_probes",
                               "test_manifest_resources_and_autoscaling",
                               "test_manifest_probes_volume_metrics", ["Triton signal"]),
    "wrong_manifest_hpa_v2beta2": ("manifests_validate or manifest_probes",
                                   "test_manifests_validate",
                                   "test_manifest_probes_volume_metrics",
                                   ["removed in Kubernetes 1.30"]),
    "wrong_alert_by_version": ("hidden_tests or rules_check", "test_alert_rules_hidden_tests",
                               "test_alert_rules_check", ["TritonQueueTimeHigh", "version"]),
    "wrong_alert_ratio_inverted": ("fire_live or rules_check", "test_alerts_fire_live",
                                   "test_alert_rules_check",
                                   ["TritonFailureRatioHigh", "without failures"]),
}


def grade(*extra: str, report_dir: Path) -> dict:
    """`pytest labs/triton_2_5 --grade ...` (conftest.run_grade also proves that nothing was
    left behind); returns grade.json."""
    result, _ = run_grade(LAB, *extra, report_dir=report_dir, timeout=400)
    return result


@pytest.fixture(scope="module")
def solution(tmp_path_factory) -> dict:
    return grade("--solution", report_dir=tmp_path_factory.mktemp("solution") / "r")


# ------------------------------------------------------------------ the hidden inputs
@needs_triton
def test_hidden_repositories_fail_and_load_as_published(tmp_path):
    """On the real server: each hidden broken repository is refused, each hidden good
    repository (what the check script must accept) loads."""
    import importlib

    broken = importlib.import_module("graders.triton_2_5.broken")
    rng = random.Random()
    cases = broken.hidden_cases(rng)

    def folders(files) -> set[str]:  # model folders and the models ensembles ask for
        asked = {m for text in files.values() for m in re.findall(r'model_name: "([^"]+)"', text)}
        return {path.split("/")[0] for path in files} | asked

    taken = set().union(*(folders(c.files) | {c.model} for c in cases))
    while True:  # one repository holds both: a good model named like a broken one's
        goods = broken.good_repositories(rng)  # (missing) step would mend or replace it
        if not taken & set().union(*map(folders, goods.values())):
            break
    repository = tmp_path / "model_repository"
    for files in [c.files for c in cases] + list(goods.values()):
        broken.write_files(repository, files)
    assert {c.fault for c in cases} == set(broken.FAULTS)
    with TritonServer(repository, log_dir=tmp_path, auto_complete_config=False,
                      stop_grace=0.0) as server:
        for files in goods.values():
            models = sorted({p.split("/")[0] for p in files},
                            key=lambda m: "ensemble" in files[f"{m}/config.pbtxt"])
            for model in models:
                server.load(model, timeout=60)
        for case in cases:
            for need in case.needs:
                server.load(need, timeout=60)
            with pytest.raises(ModelLoadError):
                server.load(case.model, timeout=60)
    shutil.rmtree(repository)


# ------------------------------------------------------------------ real gradings
@pytest.mark.slow
@needs_triton
def test_solution_gets_full_marks(solution):
    failed = {i["name"]: i["message"] for i in solution["items"] if i["status"] != "passed"}
    assert not failed, failed
    assert solution["score"] == solution["max_score"] == 100


@pytest.mark.slow
@needs_triton
def test_solution_reports_failed_requests_and_the_alert_timeline(solution):
    items = items_by_name(solution)
    rollout = items["test_rollout_zero_downtime"]["measured"]
    assert rollout["failed_requests"] == 0 and rollout["requests"] > 50
    assert set(rollout["served_by_version"]) == {"1", "2", "3"}
    assert items["test_rollback_to_previous"]["measured"]["rollback_failed_requests"] == 0
    live = items["test_alerts_fire_live"]["measured"]
    fired = {(alert, model) for _, alert, model, state in live["alert_timeline"]
             if state == "firing"}
    assert fired >= {("TritonQueueTimeHigh", "slow"), ("TritonPendingRequestsHigh", "slow"),
                     ("TritonFailureRatioHigh", "flaky"), ("TritonModelNotReady", "steady")}
    assert all(live["live_checks"].values())
    diagnose = items["test_diagnose_names_the_fault"]["measured"]
    assert diagnose["fault_right"] == diagnose["hidden_cases"] == 18
    check = items["test_check_script_catches_broken_repositories"]["measured"]
    assert check["broken_caught"] == check["broken_total"] == 16


@pytest.mark.slow
@needs_triton
def test_starter_scores_zero(tmp_path):
    result = grade("--starter", report_dir=tmp_path / "r")
    assert result["score"] == 0 and result["max_score"] == 100
    statuses = {i["status"] for i in result["items"]}
    assert statuses == {"failed"}, [(i["name"], i["status"], i["message"][:200])
                                    for i in result["items"] if i["status"] != "failed"]


@pytest.mark.slow
@needs_triton
@pytest.mark.parametrize("fixture", sorted(KNOWN_WRONG))
def test_known_wrong_submission_loses_its_item(tmp_path, fixture):
    selection, loses, keeps, words = KNOWN_WRONG[fixture]
    result = grade("--submission", str(WRONG / fixture), "-k", selection,
                   report_dir=tmp_path / "r")
    items = items_by_name(result)
    lost = items[loses]
    assert lost["status"] in ("failed", "partial"), (loses, lost)
    assert lost["score"] < lost["max_score"]
    for word in words:
        assert word in lost["message"], (word, lost["message"])
    assert items[keeps]["status"] == "passed", (keeps, items[keeps])
