"""GitHub Classroom: the grader `result` output that classroom's grading reporter reads.

The reporter base64-decodes each runner's `result`, sums `tests[].score` and posts
`Points X/Y` where Y is `max_score`.
"""

from __future__ import annotations

import base64
import json

from labgrade.scoring import LabResult, Status

_STATUS = {Status.PASSED: "pass", Status.PARTIAL: "fail", Status.FAILED: "fail",
           Status.ERROR: "error", Status.UNGRADABLE: "fail", Status.NOT_RUN: "error"}


def to_dict(result: LabResult) -> dict:
    tests = []
    for item in result.items:
        if not item.in_scope:
            continue
        tests.append({
            "name": item.name, "status": _STATUS[item.status], "score": item.score,
            "message": item.message if item.visibility == "visible" else "",
            "test_code": f"pytest {result.lab_id} --grade -k {item.name}",
            "filename": item.filename, "line_no": item.line_no,
            "duration": int(item.duration * 1000),
        })
    if result.has_errors:
        status = "error"
    elif result.score >= result.max_score:
        status = "pass"
    else:
        status = "fail"
    return {"version": 1, "status": status, "max_score": result.max_score, "tests": tests}


def encode(payload: dict) -> str:
    """Base64 of compact JSON: the value of the workflow step's `result` output."""
    compact = json.dumps(payload, separators=(",", ":"))
    return base64.b64encode(compact.encode()).decode()
