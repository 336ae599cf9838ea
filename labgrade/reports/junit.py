"""JUnit XML per lab, from the result model (one testcase per item), valid against the
JUnit schema pytest and Jenkins use (`junit-10.xsd`, shipped in tests/data):

- score data sits where that schema allows it: the suite's `<properties>` (score,
  max_score, and `<item>.score` / `<item>.max_score` / `<item>.status` per item — the
  place pytest's `record_testsuite_property` uses; `<properties>` inside a `<testcase>`,
  what `record_property` writes, breaks the schema) and each testcase's `<system-out>`
  ("points 2.5/10 (partial)");
- the schema has no `<error>` in a testcase, so grader errors and items that never ran
  are `<failure type="error">` / `<failure type="not_run">`; `failures` counts every
  `<failure>`, `errors` is 0; out-of-scope items are `<skipped>`;
- characters XML 1.0 cannot hold (ANSI colour escapes from student output, NULs) are
  written as `#x1B` the way pytest's `bin_xml_escape` does; messages are capped
  (`limits.cap`).
"""

from __future__ import annotations

import re
from xml.etree import ElementTree as ET

from labgrade.reports.limits import cap
from labgrade.scoring import LabResult, Status

_NOT_XML = re.compile("[^\u0009\u000a\u000d\u0020-\u007e\u0080-\ud7ff\ue000-\ufffd"
                      "\U00010000-\U0010ffff]")
_FAILED = {Status.FAILED: "failed", Status.PARTIAL: "partial",
           Status.UNGRADABLE: "ungradable", Status.ERROR: "error", Status.NOT_RUN: "not_run"}


def xml_text(value: object) -> str:
    """`value` as text XML 1.0 can carry: illegal characters become #xNN (pytest's
    bin_xml_escape)."""
    def visible(match: re.Match) -> str:
        code = ord(match.group())
        return f"#x{code:02X}" if code <= 0xFF else f"#x{code:04X}"
    return _NOT_XML.sub(visible, str(value))


def _points(value: float) -> str:
    return f"{round(value, 2):g}"


def to_xml(result: LabResult) -> str:
    failures = sum(i.status in _FAILED for i in result.items)
    skipped = sum(not i.in_scope for i in result.items)
    suite = ET.Element("testsuite", name=xml_text(result.lab_id),
                       tests=str(len(result.items)), failures=str(failures), errors="0",
                       skipped=str(skipped), time=f"{result.execution_time:.3f}")
    properties = ET.SubElement(suite, "properties")

    def prop(name: str, value: object) -> None:
        ET.SubElement(properties, "property", name=xml_text(name), value=xml_text(value))

    prop("score", _points(result.score))
    prop("max_score", _points(result.max_score))
    prop("profile", result.profile)
    for item in result.items:
        prop(f"{item.name}.score", _points(item.score))
        prop(f"{item.name}.max_score", _points(item.max_score))
        prop(f"{item.name}.status", item.status.value)
    for item in result.items:
        case = ET.SubElement(suite, "testcase", classname=xml_text(result.lab_id),
                             name=xml_text(item.name), time=f"{item.duration:.3f}")
        message = xml_text(cap(item.message))
        if item.status in _FAILED:
            first_line = message.splitlines()[0] if message else ""
            ET.SubElement(case, "failure", type=_FAILED[item.status],
                          message=cap(first_line, 200)).text = message
        elif not item.in_scope:
            ET.SubElement(case, "skipped", message=message)
        points = (f"points {_points(item.score)}/{_points(item.max_score)} "
                  f"({item.status.value})" if item.in_scope else "out of scope")
        ET.SubElement(case, "system-out").text = points
    return ET.tostring(suite, encoding="unicode", xml_declaration=True)
