"""lab_2_5 graded for real: one vLLM server, real Prometheus and Alertmanager. The solution
gets full marks with the alert's pending -> firing timeline in grade.json, the starter 0,
each known-wrong submission loses the items it targets while a neighbour still passes.
run_grade also proves that no server, Prometheus or Alertmanager outlives a grading.

Time (2 cores): the solution and the live known-wrong each start the vLLM server (~35 s);
the offline known-wrongs select only items that need no server (a few seconds each)."""

from __future__ import annotations

import pytest

from conftest import ROOT, items_by_name, run_grade, verdict

pytestmark = pytest.mark.slow
LAB = "lab_2_5"
WRONG = ROOT / "fixtures" / LAB

# fixture -> (-k selection, items that must fail, items that must still pass, message parts)
KNOWN_WRONG = {
    "wrong_rules_syntax": ("rules_valid or alertmanager_config_valid or dashboard_structure",
                           ["test_rules_valid"],
                           ["test_alertmanager_config_valid", "test_dashboard_structure"],
                           ["promtool check rules", "line 30"]),
    "wrong_recording_burn": ("recording_rules or burn or capacity_alerts",
                             ["test_recording_rules", "test_error_budget_burn_alert"],
                             ["test_capacity_alerts"], ["model_name:vllm_ttft_seconds:p95_30s"]),
    "wrong_alert_no_for": ("latency_alerts or recording_rules", ["test_latency_alerts"],
                           ["test_recording_rules"], ["VLLMHighTTFT"]),
    "wrong_am_dashboard": ("routing or alertmanager_config_valid or dashboard_structure or "
                           "queries_parse",
                           ["test_routing_grouping_inhibition", "test_dashboard_queries_parse"],
                           ["test_alertmanager_config_valid", "test_dashboard_structure"],
                           ["panel 'Queue' query B", "inhibit"]),
    # (its over-eager VLLMHighTTFT may fire and, critical, inhibit VLLMQueueBacklog's
    # notification: test_live_alert_delivered is not a control here)
    "wrong_live": ("light_load or return_data or fixed_concurrency or definitions or poisson "
                   "or queries_parse",
                   ["test_alert_quiet_under_light_load", "test_dashboard_queries_return_data",
                    "test_fixed_concurrency_vs_server_and_reference", "test_metric_definitions",
                    "test_poisson_arrivals"],
                   ["test_dashboard_queries_parse"],
                   ["fired under light load", "panel 'Throughput' A", "server's own histogram",
                    "goodput", "coefficient of variation"]),
}


@pytest.fixture(scope="module")
def solution(tmp_path_factory) -> dict:
    grade, proc = run_grade(LAB, "--solution", report_dir=tmp_path_factory.mktemp("sol"),
                            timeout=400)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return grade


def test_solution_gets_full_marks(solution):
    failed = {i["name"]: i["message"] for i in solution["items"] if i["status"] != "passed"}
    assert not failed, failed
    assert solution["score"] == solution["max_score"] == 100


def test_solution_records_the_alert_timeline(solution):
    measured = items_by_name(solution)["test_alert_pending_then_firing"]["measured"]
    overload = measured["overload"]
    assert overload["pending_at_s"] is not None and overload["firing_at_s"] is not None
    assert overload["firing_at_s"] - overload["pending_at_s"] >= 8  # for: 10s
    assert [s for _, s in overload["states"]][-2:] == ["pending", "firing"]
    assert measured["healthy"]["firing_at_s"] is None and measured["healthy_requests"] >= 3
    bench = items_by_name(solution)["test_fixed_concurrency_vs_server_and_reference"]["measured"]
    assert bench["server"]["requests"] == 40 and bench["max_in_flight"] == 8


def test_starter_scores_zero(tmp_path):
    grade, proc = run_grade(LAB, "--starter", report_dir=tmp_path / "r", timeout=300)
    assert grade["score"] == 0 and grade["max_score"] == 100
    statuses = {i["status"] for i in grade["items"]}
    assert statuses == {"failed"}, {i["name"]: (i["status"], i["message"][:200])
                                    for i in grade["items"]}


@pytest.mark.parametrize("fixture", sorted(KNOWN_WRONG))
def test_known_wrong_submission_loses_its_items(tmp_path, fixture):
    selection, must_fail, must_pass, parts = KNOWN_WRONG[fixture]
    grade, proc = run_grade(LAB, "--submission", str(WRONG / fixture), "-k", selection,
                            report_dir=tmp_path / "r", timeout=300)
    items = items_by_name(grade)
    for name in must_fail:
        assert items[name]["status"] == "failed", verdict(items[name])
        assert items[name]["score"] == 0
    for name in must_pass:
        assert items[name]["status"] == "passed", verdict(items[name])
    messages = "\n".join(items[name]["message"] for name in must_fail)
    for part in parts:
        assert part in messages, (part, messages)
