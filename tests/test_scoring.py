"""Unit tests of the result model, the curve, and the exporters."""

import base64
import json

import pytest

from labgrade.reports import classroom, gradescope, junit
from labgrade.scoring import ItemResult, LabResult, Status, curve


def lab(*items: ItemResult, interrupted: bool = False) -> LabResult:
    return LabResult(lab_id="lab_2_1", profile="cpu", mode="grade", submission="/s",
                     items=items, started_at=100.0, finished_at=112.5, interrupted=interrupted)


def item(name: str, status: Status, score: float, max_score: float, **kw) -> ItemResult:
    return ItemResult(nodeid=f"g::{name}", name=name, status=status, score=score,
                      max_score=max_score, **kw)


@pytest.mark.parametrize("measured,expected", [(1.0, 0.0), (0.5, 0.0), (1.25, 0.5),
                                               (1.5, 1.0), (9.0, 1.0), (float("nan"), 0.0)])
def test_curve_higher_is_better(measured, expected):
    assert curve(measured, zero_at=1.0, full_at=1.5) == pytest.approx(expected)


def test_curve_lower_is_better():
    assert curve(1.5, zero_at=2.0, full_at=1.0) == pytest.approx(0.5)
    assert curve(0.5, zero_at=2.0, full_at=1.0) == 1.0


def test_totals_skip_out_of_scope_but_keep_ungradable():
    result = lab(item("a", Status.PASSED, 10, 10), item("b", Status.UNGRADABLE, 0, 5),
                 item("c", Status.OUT_OF_SCOPE, 0, 5))
    assert (result.score, result.max_score) == (10, 15)


def test_classroom_payload_roundtrips_through_base64():
    result = lab(item("a", Status.PASSED, 10, 10), item("b", Status.PARTIAL, 2.5, 5))
    payload = classroom.to_dict(result)
    decoded = json.loads(base64.b64decode(classroom.encode(payload)))
    assert decoded == payload
    assert decoded["status"] == "fail" and decoded["max_score"] == 15
    assert [t["status"] for t in decoded["tests"]] == ["pass", "fail"]


def test_gradescope_leaderboard_from_measurements():
    result = lab(item("speed", Status.PASSED, 10, 10, measured={"leaderboard:speed-up": 9.5}))
    payload = gradescope.to_dict(result)
    assert payload["leaderboard"] == [{"name": "speed-up", "value": 9.5, "order": "desc"}]
    assert payload["execution_time"] == 12


def test_interrupted_run_is_an_error_for_classroom():
    result = lab(item("a", Status.PASSED, 10, 10), item("b", Status.NOT_RUN, 0, 10),
                 interrupted=True)
    assert classroom.to_dict(result)["status"] == "error"
    assert "interrupted" in gradescope.to_dict(result)["output"]
    assert '<failure type="not_run"' in junit.to_xml(result)  # junit-10.xsd has no <error>
