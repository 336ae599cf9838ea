"""grade.json: the internal result model, as written to disk (every other report derives
from the same LabResult)."""

from __future__ import annotations

from labgrade.scoring import ItemResult, LabResult

SCHEMA_VERSION = 1


def item_dict(item: ItemResult) -> dict:
    return {
        "nodeid": item.nodeid, "name": item.name, "status": item.status.value,
        "score": item.score, "max_score": item.max_score, "message": item.message,
        "visibility": item.visibility, "duration": round(item.duration, 3),
        "filename": item.filename, "line_no": item.line_no, "measured": item.measured,
        "hidden_detail": item.hidden_detail,
    }


def to_dict(result: LabResult) -> dict:
    return {
        "schema_version": SCHEMA_VERSION,
        "lab": result.lab_id, "title": result.title, "profile": result.profile, "mode": result.mode,
        "submission": result.submission, "score": result.score,
        "max_score": result.max_score, "interrupted": result.interrupted,
        "started_at": result.started_at, "finished_at": result.finished_at,
        "execution_time": round(result.execution_time, 3),
        "digests": result.digests, "environment": result.environment,
        "items": [item_dict(i) for i in result.items],
    }
