"""What the exporters hand to other systems stays within their limits and their formats:
capped messages, a Classroom result node can receive whose float sum is the 2-decimal
total, junit.xml valid against junit-10.xsd whatever the messages hold."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import classroom_sim as sim
import pytest

from labgrade.reports import classroom, gradescope, junit, limits, write_all
from labgrade.scoring import ItemResult, LabResult, Status

XSD = Path(__file__).parent / "data" / "junit-10.xsd"
ANSI = "\x1b[31mred\x1b[0m \x00 \x07 \ufffe"


def item(name: str, status: Status, score: float, max_score: float, message: str = "",
         **kw) -> ItemResult:
    return ItemResult(f"graders/lab_9_9/test_items.py::{name}", name, status, score,
                      max_score, message, **kw)


def lab(*items: ItemResult) -> LabResult:
    return LabResult("lab_9_9", "cpu", "grade", "/sub", tuple(items), 0.0, 2.5)


def every_status(message: str) -> LabResult:
    return lab(item("test_pass", Status.PASSED, 10, 10),
               item("test_partial", Status.PARTIAL, 3.33, 10, message),
               item("test_fail", Status.FAILED, 0, 5, message),
               item("test_error", Status.ERROR, 0, 5, message),
               item("test_not_run", Status.NOT_RUN, 0, 5, "grading stopped before this "
                    "item ran"),
               item("test_ungradable", Status.UNGRADABLE, 0, 5, "no GPU"),
               item("test_gpu_only", Status.OUT_OF_SCOPE, 0, 5, "gpu only"),
               item("test_hidden", Status.FAILED, 0, 5, message, visibility="hidden"))


def schema():
    xmlschema = pytest.importorskip("xmlschema", reason=(
        "xmlschema validates junit.xml against tests/data/junit-10.xsd: add "
        "xmlschema==4.3.2 and elementpath==5.1.4 to the lock"))
    return xmlschema.XMLSchema(str(XSD))


def test_cap_marks_what_it_cut():
    assert limits.cap("short") == "short"
    text = "é" * 5000  # 10000 bytes of 2-byte characters
    capped = limits.cap(text, 1000)
    assert len(capped.encode()) <= 1000
    assert capped.endswith("… (truncated, 10000 bytes)")
    assert set(capped[:-len(limits.marker(10000))]) == {"é"}  # never half a character


def test_a_1_mb_exception_gives_a_small_marked_result():
    huge = "Traceback (most recent call last):\n" + "x" * (1 << 20)
    result = every_status(huge)
    encoded = classroom.encode(classroom.to_dict(result))
    assert len(encoded) < 64 * 1024
    payload = json.loads(base64.b64decode(encoded))
    partial = next(t for t in payload["tests"] if t["name"].startswith("test_partial"))
    assert "(truncated, " in partial["message"]
    assert len(partial["message"].encode()) <= limits.MESSAGE_BYTES
    for test in gradescope.to_dict(result)["tests"]:
        assert len(test["output"].encode()) <= limits.MESSAGE_BYTES
    # many items with huge messages: the whole result still fits
    many = lab(*(item(f"test_{i}", Status.FAILED, 0, 1, huge) for i in range(60)))
    assert len(classroom.encode(classroom.to_dict(many))) <= limits.CLASSROOM_RESULT_BYTES


def test_node_receives_the_capped_result(tmp_path):
    """Before the cap, a 1 MB message made a result node could not even be started with
    ("Argument list too long"); now the reporter reads it and posts the points."""
    result = every_status("x" * (1 << 20))
    outputs = {"lab99": {"result": classroom.encode(classroom.to_dict(result))}}
    step = {"env": {"LAB99_RESULTS": "${{ steps.lab99.outputs.result }}"},
            "with": {"runners": "lab99"}}
    node = sim.node_reporter(step, outputs)
    if node is None:
        pytest.skip("node is not installed")
    assert sim.posted_points(node) == "Points 13.33/45", node.stdout + node.stderr
    # not-run and error items are named in what the reporter prints
    assert "Error: test_not_run did not run" in node.stdout
    assert "Error: test_error could not be graded" in node.stdout


def test_reporter_sum_is_the_two_decimal_total():
    scores = [8.33] * 10 + [0.0, 0.0] + [0.1, 0.2] + [3.3333333]
    assert classroom.reporter_sum([round(s, 2) for s in scores]) != round(sum(scores), 2)
    fixed = classroom.exact_scores(scores)
    assert repr(classroom.reporter_sum(fixed)) == "86.93"
    assert [round(s, 2) for s in fixed] == [round(s, 2) for s in scores]
    result = lab(*(item(f"test_{i}", Status.PARTIAL, s, 10) for i, s in enumerate(
        [8.33] * 10)))
    payload = classroom.to_dict(result)
    assert repr(classroom.reporter_sum([t["score"] for t in payload["tests"]])) == "83.3"
    node = sim.node_reporter({"env": {"LAB99_RESULTS": "${{ steps.lab99.outputs.result }}"},
                              "with": {"runners": "lab99"}},
                             {"lab99": {"result": classroom.encode(payload)}})
    if node is not None:
        assert sim.posted_points(node) == "Points 83.3/100", node.stdout


def test_one_result_line_for_several_labs():
    a, b = every_status("m"), every_status("m")
    line = classroom.github_output_line([a, b])
    assert line.count("\n") == 1 and line.startswith("result=")
    payload = json.loads(base64.b64decode(line.split("=", 1)[1]))
    assert payload["max_score"] == 90 and len(payload["tests"]) == 14


def test_junit_is_schema_valid_with_hostile_messages(tmp_path):
    xsd = schema()
    for message in (ANSI, "x" * (1 << 20), "", "<tag> & \"quotes\" ]]>"):
        text = junit.to_xml(every_status(message))
        errors = [e.reason for e in xsd.iter_errors(text)]
        assert not errors, errors[:3]
        assert "#x1B[31m" in junit.to_xml(every_status(ANSI))
    written = write_all(every_status(ANSI), tmp_path / "lab_9_9")
    assert xsd.is_valid(str(written["junit.xml"]))
    # score data kept where the schema allows: suite properties and system-out
    from xml.etree import ElementTree as ET
    root = ET.parse(written["junit.xml"]).getroot()
    props = {p.get("name"): p.get("value") for p in root.find("properties")}
    assert props["score"] == "13.33" and props["test_partial.score"] == "3.33"
    assert props["test_partial.max_score"] == "10" and props["test_error.status"] == "error"
    case = next(c for c in root.iter("testcase") if c.get("name") == "test_partial")
    assert case.find("system-out").text == "points 3.33/10 (partial)"
    assert case.find("failure").get("type") == "partial"
