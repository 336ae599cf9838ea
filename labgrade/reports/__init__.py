"""Exporters: each reads a finished LabResult; `write_all` writes every file for one lab."""

from __future__ import annotations

import json
import os
from pathlib import Path

from labgrade.reports import classroom, gradejson, gradescope, html, junit
from labgrade.scoring import LabResult


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_all(result: LabResult, out_dir: Path) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "grade.json": json.dumps(gradejson.to_dict(result), indent=2),
        "classroom.json": json.dumps(classroom.to_dict(result), indent=2),
        "results.json": json.dumps(gradescope.to_dict(result), indent=2),
        "junit.xml": junit.to_xml(result),
        "report.html": html.render_safely(result),  # never raises: grading must go on
    }
    written = {}
    for name, text in files.items():
        _atomic_write(out_dir / name, text)
        written[name] = out_dir / name
    return written
