"""Helpers for the framework's own tests: run a real grading in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# tests/data holds a miniature course (with attack submissions that carry their own
# conftest.py files): data for the tests, never collected as tests.
collect_ignore = ["data"]


def run_grade(lab: str, *extra: str, report_dir: Path, timeout: float = 900,
              env: dict | None = None) -> tuple[dict, subprocess.CompletedProcess]:
    """`pytest labs/<lab> --grade <extra>` in a fresh process; returns grade.json and the run."""
    cmd = [sys.executable, "-m", "pytest", f"labs/{lab}", "--grade", "--report-dir",
           str(report_dir), "-p", "no:cacheprovider", *extra]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})
    grade_path = report_dir / lab / "grade.json"
    assert grade_path.exists(), f"no grade.json\nstdout:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return json.loads(grade_path.read_text()), proc


def items_by_name(grade: dict) -> dict[str, dict]:
    return {item["name"]: item for item in grade["items"]}


@pytest.fixture
def grade_lab(tmp_path):
    def _grade(lab: str, *extra: str, **kwargs):
        return run_grade(lab, *extra, report_dir=tmp_path / "reports", **kwargs)
    return _grade
