"""GitHub Classroom: the grader `result` output that Classroom's grading reporter reads.

What `classroom-resources/autograding-grading-reporter@v1` (dist/main.js) does with it:
it base64-decodes each runner's `<RUNNER>_RESULTS`, posts `Points X/Y` with X the plain
JavaScript sum of `tests[].score` and Y `max_score`, and prints one line per test:
"✅ name" (pass), "❌ name" (fail), or for status error only the message ("Error: ...").
Its per-runner table and "Total points for <runner>" count *passed tests* (passed ÷
tests × max_score), not points; Points X/Y is the score. So, for students to read one
unambiguous story:

- every test's name carries its points ("test_x: 2.5/10 points");
- an error or not-run item's message starts with the item's name;
- scores are rounded to 2 decimals and the float sum JavaScript computes is exactly the
  2-decimal total (no `83.30000000000001`);
- each message is capped (`limits.cap`) and the whole result stays under
  `limits.CLASSROOM_RESULT_BYTES` once base64-encoded.
"""

from __future__ import annotations

import base64
import json
import math

from labgrade.reports.limits import CLASSROOM_RESULT_BYTES, MESSAGE_BYTES, cap
from labgrade.scoring import ItemResult, LabResult, Status

_STATUS = {Status.PASSED: "pass", Status.PARTIAL: "fail", Status.FAILED: "fail",
           Status.ERROR: "error", Status.UNGRADABLE: "fail", Status.NOT_RUN: "error"}


def test_code(lab_id: str, item_name: str) -> str:
    """The command that grades one item, as the reporter prints it under "Test code"."""
    return f"pytest labs/{lab_id} --grade -k {item_name}"


def _points(value: float) -> str:
    return f"{round(value, 2):g}"


def _message(item: ItemResult, limit: int) -> str:
    shown = item.message if item.visibility == "visible" else ""
    if item.status is Status.NOT_RUN:
        text = f"{item.name} did not run: {shown or 'grading stopped before it'}"
    elif item.status is Status.ERROR:
        text = (f"{item.name} could not be graded (a problem on the grading side, not in "
                f"your code): {shown or 'the course staff have the details'}")
    else:
        text = shown
    return cap(text, limit)


def reporter_sum(scores: list[float]) -> float:
    """The total the reporter posts: left-to-right IEEE double sum from 0, as in its
    JavaScript (Python floats add the same way)."""
    total = 0.0
    for score in scores:
        total += score
    return total


def exact_scores(scores: list[float]) -> list[float]:
    """Scores rounded to 2 decimals whose reporter_sum is the 2-decimal total exactly.

    Where plain rounding leaves a float residue in the sum, the last non-zero score is
    replaced by its nearest double that makes the running sum land on the total (it
    differs from the rounded score by a few ulps, and the reporter never prints it)."""
    rounded = [round(s, 2) for s in scores]
    target = round(math.fsum(rounded), 2)
    if reporter_sum(rounded) == target:
        return rounded
    last = max((i for i, s in enumerate(rounded) if s), default=None)
    if last is None:
        return rounded
    before = reporter_sum(rounded[:last])
    candidate = target - before
    for _ in range(8):
        for c in (candidate, math.nextafter(candidate, math.inf),
                  math.nextafter(candidate, -math.inf)):
            trial = rounded[:last] + [c] + rounded[last + 1:]
            if reporter_sum(trial) == target:
                return trial
        candidate = math.nextafter(candidate, math.inf)
    return rounded


def _payload(result: LabResult, message_limit: int) -> dict:
    items = [i for i in result.items if i.in_scope]
    scores = exact_scores([i.score for i in items])
    tests = []
    for item, score in zip(items, scores):
        tests.append({
            "name": f"{item.name}: {_points(item.score)}/{_points(item.max_score)} points",
            "status": _STATUS[item.status], "score": score,
            "message": _message(item, message_limit),
            "test_code": test_code(result.lab_id, item.name),
            "filename": item.filename, "line_no": item.line_no,
            "duration": int(item.duration * 1000),
        })
    if result.has_errors:
        status = "error"
    elif result.score >= result.max_score:
        status = "pass"
    else:
        status = "fail"
    return {"version": 1, "status": status, "max_score": round(result.max_score, 2),
            "tests": tests}


def to_dict(result: LabResult) -> dict:
    """The Classroom result for one lab, small enough to pass as a step output."""
    limit = MESSAGE_BYTES
    while True:
        payload = _payload(result, limit)
        if len(encode(payload)) <= CLASSROOM_RESULT_BYTES or limit <= 64:
            return payload
        limit //= 2


def combined(payloads: list[dict]) -> dict:
    """One result for several labs graded in one call (a step has one `result` output):
    the tests of all, the maxima summed, the worst status."""
    if len(payloads) == 1:
        return payloads[0]
    order = ("pass", "fail", "error")
    tests = [dict(t) for p in payloads for t in p["tests"]]
    for test, score in zip(tests, exact_scores([t["score"] for t in tests])):
        test["score"] = score
    return {"version": 1,
            "status": max((p["status"] for p in payloads), key=order.index),
            "max_score": round(sum(p["max_score"] for p in payloads), 2), "tests": tests}


def encode(payload: dict) -> str:
    """Base64 of compact JSON: the value of the workflow step's `result` output."""
    compact = json.dumps(payload, separators=(",", ":"))
    return base64.b64encode(compact.encode()).decode()


def github_output_line(results: list[LabResult]) -> str:
    """The one `result=...` line a grading call appends to $GITHUB_OUTPUT, however many
    labs it graded."""
    return f"result={encode(combined([to_dict(r) for r in results]))}\n"
