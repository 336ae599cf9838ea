"""Gradescope's results.json (autograder specification: score, execution_time, output,
tests[] with name/score/max_score/status/output/visibility, optional leaderboard[]).
Each test's output is capped (`limits.cap`)."""

from __future__ import annotations

from labgrade.reports.limits import cap
from labgrade.scoring import LabResult, Status


def to_dict(result: LabResult) -> dict:
    tests = []
    leaderboard = []
    for item in result.items:
        if not item.in_scope:
            continue
        tests.append({
            "name": item.name, "score": item.score, "max_score": item.max_score,
            "status": "passed" if item.status is Status.PASSED else "failed",
            "output": cap(f"[{item.status.value}] {item.message}".strip()),
            "visibility": item.visibility, "tags": [result.lab_id, result.profile],
        })
        for key, value in item.measured.items():
            if key.startswith("leaderboard:") and isinstance(value, (int, float)):
                leaderboard.append({"name": key.split(":", 1)[1], "value": value,
                                    "order": "desc"})
    payload = {
        "score": result.score,
        "execution_time": int(result.execution_time),
        "output": (f"{result.lab_id} ({result.profile} profile): "
                   f"{result.score:g}/{result.max_score:g}"
                   + (" — grading was interrupted" if result.interrupted else "")),
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": tests,
    }
    if leaderboard:
        payload["leaderboard"] = leaderboard
    return payload
