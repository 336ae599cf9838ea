"""Helpers for the framework's own tests: run a real grading in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[1]

# tests/data holds a miniature course (with attack submissions that carry their own
# conftest.py files): data for the tests, never collected as tests.
collect_ignore = ["data"]


MODIFIED = "grading environment (labgrade) was modified during this run"


def run_grade(lab: str, *extra: str, report_dir: Path, timeout: float = 900,
              env: dict | None = None) -> tuple[dict, subprocess.CompletedProcess]:
    """`pytest labs/<lab> --grade <extra>` in a fresh process; returns grade.json and the run
    (stdout and stderr). Then proof that it left nothing behind: no live process started
    from its report folder (servers, stubs, workers) and no shm segment named after its
    pid. A run that outlives `timeout` gets SIGTERM (an orderly stop) before the test fails.
    One retry when an edit of labgrade/ during the run voided it (a shared checkout)."""
    cmd = [sys.executable, "-m", "pytest", f"labs/{lab}", "--grade", "--report-dir",
           str(report_dir), "-p", "no:cacheprovider", *extra]
    for attempt in range(2):
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env={**os.environ, **(env or {})})
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.terminate()  # the plugin turns SIGTERM into an orderly stop
            proc.communicate(timeout=60)
            raise
        assert_nothing_left(proc.pid, report_dir)
        grade_path = report_dir / lab / "grade.json"
        assert grade_path.exists(), f"no grade.json\nstdout:\n{out[-3000:]}\n{err[-3000:]}"
        grade = json.loads(grade_path.read_text())
        if attempt == 0 and grade["items"] and \
                all(MODIFIED in i["message"] for i in grade["items"]):
            continue
        break
    return grade, subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def assert_nothing_left(pid: int, report_dir: Path) -> None:
    shm = sorted(Path("/dev/shm").glob(f"labgrade_triton_{pid}_*"))
    assert not shm, f"shared-memory segments left behind: {shm}"
    marker = str(report_dir)
    left = []
    for proc in psutil.process_iter(["pid", "cmdline", "cwd"]):
        try:
            text = " ".join(proc.info["cmdline"] or []) + " " + (proc.info["cwd"] or "")
            if marker in text and proc.status() != psutil.STATUS_ZOMBIE:
                left.append((proc.info["pid"], text[:200]))
        except psutil.Error:
            continue
    assert not left, f"processes left behind: {left}"


def items_by_name(grade: dict) -> dict[str, dict]:
    return {item["name"]: item for item in grade["items"]}


@pytest.fixture
def grade_lab(tmp_path):
    def _grade(lab: str, *extra: str, **kwargs):
        return run_grade(lab, *extra, report_dir=tmp_path / "reports", **kwargs)
    return _grade
