"""One grading of one submission, as a student's would run: `pytest labs/<id> --grade` in a
subprocess of its own, read back from its grade.json."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from labgrade.submission import CALL_TRACE

SCORED = ("passed", "partial", "failed", "error")  # statuses of items that really ran
_RUNNING: set[subprocess.Popen] = set()  # gradings in flight, for stop_all()


def stop_all() -> None:
    """Stop every grading still running (audit interrupted): SIGTERM, which the plugin turns
    into an orderly stop of its services, then SIGKILL of the process group."""
    for proc in list(_RUNNING):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in list(_RUNNING):
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)


@dataclass(frozen=True)
class Graded:
    """What one grading gave: per item its status, score and message (items it did not run
    are absent); `problem` when the run itself broke (no grade.json, a timeout)."""
    label: str
    items: dict[str, dict] = field(default_factory=dict)
    wall_seconds: float = 0.0
    problem: str = ""
    grade_path: str = ""

    @property
    def score(self) -> float:
        return sum(i["score"] for i in self.items.values())


def grade(root: Path, lab: str, submission: Path, report_dir: Path, *, profile: str,
          label: str, items: list[str] | None = None, select: str | None = None,
          timeout: float = 1800, trace: Path | None = None) -> Graded:
    """Grade `submission` (a folder laid out like labs/<lab>) in the course at `root`;
    only `items` (test names) when given, and only what the -k expression `select` picks."""
    cmd = [sys.executable, "-m", "pytest", f"labs/{lab}", "--grade", "--submission",
           str(submission), "--profile", profile, "--report-dir", str(report_dir),
           "-p", "no:cacheprovider", "-q"]
    chosen = [f"({select})"] if select else []
    if items:
        chosen.append(f"({' or '.join(sorted(items))})")
    if chosen:
        cmd += ["-k", " and ".join(chosen)]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop(CALL_TRACE, None)
    if trace is not None:
        env[CALL_TRACE] = str(trace)
    report_dir.mkdir(parents=True, exist_ok=True)
    log = report_dir / "pytest-output.txt"
    started = time.monotonic()
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=root, stdout=out, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
        _RUNNING.add(proc)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGTERM)  # the plugin stops in order on SIGTERM
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            return Graded(label, wall_seconds=time.monotonic() - started,
                          problem=f"grading ran past {timeout:g} s (see {log})")
        finally:
            _RUNNING.discard(proc)
    wall = time.monotonic() - started
    path = report_dir / lab / "grade.json"
    if not path.is_file():
        tail = log.read_text(errors="replace")[-1500:]
        return Graded(label, wall_seconds=wall,
                      problem=f"no grade.json (pytest exit {proc.returncode}): {tail}")
    data = json.loads(path.read_text())
    found = {i["name"]: {"status": i["status"], "score": i["score"],
                         "max_score": i["max_score"], "message": i["message"],
                         "measured": i.get("measured") or {}}
             for i in data["items"] if i["status"] in SCORED}
    return Graded(label, found, wall, grade_path=str(path))
