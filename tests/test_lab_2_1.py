"""lab_2_1 graded for real: solution full marks, starter zero, each known-wrong submission
loses the item it targets (and, where shown, the rest of the lab still grades)."""

from __future__ import annotations

import base64
import json

import pytest

from conftest import ROOT, items_by_name, plotted_curves, verdict

pytestmark = pytest.mark.slow
WRONG = ROOT / "fixtures" / "lab_2_1"
# item -> measurement scored on a curve (report.html plots it against `curve:<key>`)
CURVE_ITEMS = {"test_continuous_batching_speedup": "speedup"}
# item -> limit checked (report.html plots it against `limit:<key>`)
LIMIT_ITEMS = {"test_engine_within_memory_budget": "worker_rss_bytes"}

# fixture -> (-k selection, items that must fail, items that must still pass)
KNOWN_WRONG = {
    "wrong_kv_budget": ("memory_budget or in_order", ["test_engine_within_memory_budget"],
                        ["test_one_output_per_prompt_in_order"]),
    "wrong_dtype": ("builds_from_your_arguments", ["test_engine_builds_from_your_arguments"], []),
    "wrong_order": ("in_order or greedy", ["test_one_output_per_prompt_in_order"],
                    ["test_greedy_matches_reference"]),
    # one output per distinct prompt: the hidden batch repeats a prompt
    "wrong_dedup": ("in_order or max_tokens", ["test_one_output_per_prompt_in_order"],
                    ["test_max_tokens[3]", "test_max_tokens[20]"]),
    "wrong_max_tokens": ("max_tokens", ["test_max_tokens[3]", "test_max_tokens[20]"], []),
    "wrong_stop": ("stop_strings or greedy", ["test_stop_strings"],
                   ["test_greedy_matches_reference"]),
    "wrong_greedy": ("greedy", ["test_greedy_matches_reference"], []),
    "wrong_sequential": ("speedup or in_order", ["test_continuous_batching_speedup"],
                         ["test_one_output_per_prompt_in_order"]),
    "wrong_console_script": ("server", ["test_server_health", "test_server_lists_the_model",
                                        "test_server_completions",
                                        "test_server_chat_completions"], []),
    "wrong_served_name": ("server_health or lists_the_model",
                          ["test_server_lists_the_model"], ["test_server_health"]),
    "wrong_server_max_len": ("server_completions or server_chat", ["test_server_completions"],
                             ["test_server_chat_completions"]),
    "wrong_chat_template": ("server_chat or server_health", ["test_server_chat_completions"],
                            ["test_server_health"]),
}
# fixture -> (item, words its message must contain)
MESSAGES = {"wrong_dedup": ("test_one_output_per_prompt_in_order", "appears twice")}


def test_solution_gets_full_marks(grade_lab, tmp_path):
    grade, proc = grade_lab("lab_2_1", "--solution", "--classroom-output")
    failed = {i["name"]: i["message"] for i in grade["items"] if i["status"] != "passed"}
    assert not failed, failed
    assert grade["score"] == grade["max_score"] == 100
    assert proc.returncode == 0
    assert "TOTAL 100/100" in proc.stdout
    # the Classroom result printed for the workflow decodes to the same score
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("classroom result: "))
    payload = json.loads(base64.b64decode(line.split(": ", 1)[1]))
    assert sum(t["score"] for t in payload["tests"]) == grade["score"]
    assert payload["max_score"] == 100 and payload["status"] == "pass"
    items = items_by_name(grade)
    for name, key in CURVE_ITEMS.items():
        curve = items[name]["measured"].get(f"curve:{key}")
        assert curve and curve["zero_at"] < curve["full_at"], (name, items[name]["measured"])
        assert key in items[name]["measured"]
    assert plotted_curves(tmp_path / "reports" / "lab_2_1") == set(CURVE_ITEMS.items())
    for name, key in LIMIT_ITEMS.items():
        assert "max" in items[name]["measured"].get(f"limit:{key}", {}), verdict(items[name])


def test_starter_scores_zero(grade_lab):
    grade, proc = grade_lab("lab_2_1", "--starter")
    assert grade["score"] == 0 and grade["max_score"] == 100
    statuses = {i["status"] for i in grade["items"]}
    assert statuses == {"failed"}, statuses  # the student's doing, not a grader error
    assert all("TODO" in i["message"] for i in grade["items"])


@pytest.mark.parametrize("fixture", sorted(KNOWN_WRONG))
def test_known_wrong_submission_loses_its_item(grade_lab, fixture):
    selection, must_fail, must_pass = KNOWN_WRONG[fixture]
    grade, proc = grade_lab("lab_2_1", "--submission", str(WRONG / fixture), "-k", selection)
    items = items_by_name(grade)
    for name in must_fail:
        assert items[name]["status"] == "failed", verdict(items[name])
        assert items[name]["score"] == 0
        assert items[name]["message"], "a failed item must say why"
    for name in must_pass:
        assert items[name]["status"] == "passed", verdict(items[name])
    if fixture in MESSAGES:
        name, words = MESSAGES[fixture]
        assert words in items[name]["message"], items[name]["message"]
