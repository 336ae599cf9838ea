"""JUnit XML per lab, from the result model (one testcase per item)."""

from __future__ import annotations

from xml.etree import ElementTree as ET

from labgrade.scoring import LabResult, Status


def to_xml(result: LabResult) -> str:
    failures = sum(i.status in (Status.FAILED, Status.PARTIAL, Status.UNGRADABLE)
                   for i in result.items)
    errors = sum(i.status in (Status.ERROR, Status.NOT_RUN) for i in result.items)
    skipped = sum(not i.in_scope for i in result.items)
    suite = ET.Element("testsuite", name=result.lab_id, tests=str(len(result.items)),
                       failures=str(failures), errors=str(errors), skipped=str(skipped),
                       time=f"{result.execution_time:.3f}")
    for item in result.items:
        case = ET.SubElement(suite, "testcase", classname=result.lab_id, name=item.name,
                             time=f"{item.duration:.3f}")
        ET.SubElement(case, "properties")
        for key, value in (("score", item.score), ("max_score", item.max_score),
                           ("status", item.status.value)):
            ET.SubElement(case.find("properties"), "property", name=key, value=str(value))
        if item.status in (Status.FAILED, Status.PARTIAL, Status.UNGRADABLE):
            ET.SubElement(case, "failure", message=item.message[:200]).text = item.message
        elif item.status in (Status.ERROR, Status.NOT_RUN):
            ET.SubElement(case, "error", message=item.message[:200]).text = item.message
        elif not item.in_scope:
            ET.SubElement(case, "skipped", message=item.message)
    return ET.tostring(suite, encoding="unicode", xml_declaration=True)
