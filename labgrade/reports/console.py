"""The score table printed at the end of a grading run."""

from __future__ import annotations

import textwrap

from labgrade.scoring import LabResult, Status

_MARK = {Status.PASSED: "PASS", Status.PARTIAL: "PART", Status.FAILED: "FAIL",
         Status.ERROR: "ERR ", Status.UNGRADABLE: "N/A ", Status.OUT_OF_SCOPE: "----",
         Status.NOT_RUN: "STOP"}


def render(result: LabResult, width: int = 100) -> str:
    name_w = max([len(i.name) for i in result.items] + [20])
    lines = [f"{result.lab_id} — {result.mode} — {result.profile} profile — {result.submission}"]
    for item in result.items:
        points = f"{item.score:g}/{item.max_score:g}" if item.in_scope else "out of scope"
        lines.append(f"  {_MARK[item.status]}  {item.name:<{name_w}}  {points:>12}")
        if item.message and item.status is not Status.PASSED and item.visibility == "visible":
            for para in item.message.splitlines()[:25]:
                lines.extend(textwrap.wrap(para, width - 10, initial_indent="        ",
                                           subsequent_indent="        ") or [""])
    total = f"  TOTAL {result.score:g}/{result.max_score:g}"
    if result.interrupted:
        total += "  (grading was interrupted: items marked STOP did not run)"
    lines.append(total)
    confined = result.environment.get("isolation")
    if confined:
        lines.append(f"  isolation: {confined['level']} — {confined['reason']}")
    return "\n".join(lines)
