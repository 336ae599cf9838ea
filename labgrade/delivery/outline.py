"""A lab's items and maximum for one profile, without grading anything.

`pytest labs/<id> --grade --collect-only` collects the hidden suite (no student code, no
engine) and writes the reports of a run in which no item ran: every in-scope item with its
points, status not_run. The Classroom workflow embeds that result as the one the reporter
gets when grading dies or never starts, so it posts 0 out of the lab's real maximum and
names every item.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from labgrade.delivery import DeliveryError


def classroom_fallback(course_root: Path, lab_id: str, profile: str,
                       python: str = sys.executable) -> dict:
    """The Classroom result of a grading of `lab_id` in which nothing ran (score 0)."""
    with tempfile.TemporaryDirectory(prefix="labgrade-outline-") as tmp:
        cmd = [python, "-m", "pytest", f"labs/{lab_id}", "--grade", "--collect-only",
               "--profile", profile, "--report-dir", tmp, "-p", "no:cacheprovider", "-q"]
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
        proc = subprocess.run(cmd, cwd=course_root, capture_output=True, text=True,
                              timeout=300, env=env, stdin=subprocess.DEVNULL)
        path = Path(tmp) / lab_id / "classroom.json"
        try:
            payload = json.loads(path.read_text())
        except (OSError, ValueError):
            raise DeliveryError(
                f"could not list the items of {lab_id} ({' '.join(cmd[2:])} in {course_root} "
                f"exited with {proc.returncode}): {(proc.stdout + proc.stderr)[-1500:]}"
            ) from None
    if not payload.get("max_score") or not payload.get("tests"):
        raise DeliveryError(f"{lab_id} has no graded items on the {profile} profile")
    payload["status"] = "error"
    for test in payload["tests"]:
        test["status"], test["score"] = "error", 0
    return payload
