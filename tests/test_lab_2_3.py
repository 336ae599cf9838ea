"""lab_2_3 graded for real: solution full marks, starter zero, each known-wrong submission
loses the items it targets while the items it does not touch still pass.

Every grading starts the student's app (vLLM's async engine: ~30-50 s on 2 cores), so the
known-wrong submissions carry several independent defects each and their runs select only
the items that matter with -k: five app starts cover all fourteen items.
"""

from __future__ import annotations

import base64
import json

import pytest

from conftest import ROOT, items_by_name, plotted_curves, verdict

pytestmark = pytest.mark.slow
WRONG = ROOT / "fixtures" / "lab_2_3"
# item -> measurement scored on a curve (`curve:<key>`): this lab has none, every timing
# item is a limit check
CURVE_ITEMS: dict[str, str] = {}
# item -> limit checked (report.html plots it against `limit:<key>`)
LIMIT_ITEMS = {"test_requests_overlap": ("speedup", "min"),
               "test_health_responsive_under_load": ("health_median_s", "max"),
               "test_disconnect_aborts_stream": ("tokens_after_disconnect", "max"),
               "test_disconnect_aborts_plain_request": ("tokens_after_disconnect", "max")}

# fixture -> (-k selection, items that must fail, items that must still pass)
KNOWN_WRONG = {
    # synchronous LLM.generate inside async handlers
    "wrong_blocking": ("test_health or test_completions or overlap",
                       ["test_requests_overlap", "test_health_responsive_under_load"],
                       ["test_health", "test_completions"]),
    # no [DONE]; no chat template; plain completions echo the prompt
    "wrong_protocol": ("(test_health and not load) or test_completions or test_chat or "
                       "test_stream or wrong_types",
                       ["test_completions", "test_chat_completions", "test_stream_completions",
                        "test_stream_chat"],
                       ["test_health", "test_rejects_wrong_types"]),
    # no range limits; metrics in the handlers (no 422s, stream latency to first token,
    # prompt tokens counted)
    "wrong_unchecked": ("test_completions or validation or metrics or "
                        "(test_health and not load)",
                        ["test_rejects_out_of_range_values", "test_metrics_requests_by_status",
                         "test_metrics_latency_histogram", "test_metrics_generated_tokens",
                         "test_health"],
                        ["test_completions", "test_rejects_wrong_types"]),
    # usage counts words (in range, but not what the engine generated); the chat stream
    # sends the text so far; an exception handler turns 422 into 400 (the messages must blame
    # those, not the chat template or missing constraints)
    "wrong_usage": ("(test_health and not load) or test_completions or test_chat or "
                    "test_stream or rejects",
                    ["test_completions", "test_stream_completions", "test_chat_completions",
                     "test_stream_chat", "test_rejects_wrong_types",
                     "test_rejects_out_of_range_values"],
                    ["test_health"]),
    # generation in a background task; plain requests never watch for a disconnect
    "wrong_no_abort": ("test_completions or stream_completions or disconnect",
                       ["test_disconnect_aborts_stream", "test_disconnect_aborts_plain_request"],
                       ["test_completions", "test_stream_completions"]),
}


def test_solution_gets_full_marks(grade_lab, tmp_path):
    grade, proc = grade_lab("lab_2_3", "--solution", "--classroom-output")
    failed = {i["name"]: i["message"] for i in grade["items"] if i["status"] != "passed"}
    assert not failed, failed
    assert grade["score"] == grade["max_score"] == 100
    assert proc.returncode == 0
    assert "TOTAL 100/100" in proc.stdout
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("classroom result: "))
    payload = json.loads(base64.b64decode(line.split(": ", 1)[1]))
    assert sum(t["score"] for t in payload["tests"]) == grade["score"]
    # the measurements behind the timing items are kept for the staff
    items = items_by_name(grade)
    assert items["test_disconnect_aborts_stream"]["measured"]["tokens_after_disconnect"] < 240
    assert items["test_requests_overlap"]["measured"]["in_flight_together"] >= 2
    for name, key in CURVE_ITEMS.items():
        assert f"curve:{key}" in items[name]["measured"], (name, items[name]["measured"])
    assert plotted_curves(tmp_path / "reports" / "lab_2_3") == set(CURVE_ITEMS.items())
    for name, (key, side) in LIMIT_ITEMS.items():
        measured = items[name]["measured"]
        assert side in measured.get(f"limit:{key}", {}) and key in measured, (name, measured)


def test_starter_scores_zero(grade_lab):
    grade, proc = grade_lab("lab_2_3", "--starter")
    assert grade["score"] == 0 and grade["max_score"] == 100
    statuses = {i["status"] for i in grade["items"]}
    assert statuses == {"failed"}, statuses  # the student's doing, not a grader error
    # every item says why: create_app() is still the TODO stub
    assert all("create_app" in i["message"] and "TODO" in i["message"]
               for i in grade["items"]), [i["message"] for i in grade["items"]][:2]


@pytest.mark.parametrize("fixture", sorted(KNOWN_WRONG))
def test_known_wrong_submission_loses_its_items(grade_lab, fixture):
    selection, must_fail, must_pass = KNOWN_WRONG[fixture]
    grade, proc = grade_lab("lab_2_3", "--submission", str(WRONG / fixture), "-k", selection)
    items = items_by_name(grade)
    for name in must_fail:
        assert items[name]["status"] == "failed", verdict(items[name])
        assert items[name]["score"] == 0
        assert items[name]["message"], "a failed item must say why"
    for name in must_pass:
        assert items[name]["status"] == "passed", verdict(items[name])
    for name, words in MESSAGES.get(fixture, {}).items():
        assert all(w in items[name]["message"] for w in words), (name, items[name]["message"])


# fixture -> item -> what its message must name (the real cause, not the part that was right)
MESSAGES = {
    "wrong_usage": {
        "test_chat_completions": ("usage", "token ids", "reply is right"),
        "test_stream_chat": ("the delta",),
        "test_rejects_wrong_types": ("exception handler", "400"),
    },
    # vLLM's own 400 for values the models let through: the constraints are missing
    "wrong_unchecked": {"test_rejects_out_of_range_values": ("Declare the constraints",)},
}
