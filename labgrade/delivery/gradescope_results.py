"""Finish a Gradescope run: put a valid results.json where Gradescope reads it, always.

Run by `run_autograder` as a plain script with whatever `python3` the image has: it uses the
standard library only (no labgrade import), so it works even when the grading environment
is broken.

    python3 gradescope_results.py PRODUCED DEST --exit-code N --log LOG --lab ID

PRODUCED is the results.json labgrade wrote (under --report-dir); when it is missing or not
a valid Gradescope result, DEST gets a result with score 0, a student-facing explanation,
and the log's tail in a hidden test for the staff.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

VISIBILITIES = {"visible", "hidden", "after_due_date", "after_published"}


def problems(payload: object) -> list[str]:
    """What makes `payload` an invalid Gradescope results.json ([] when valid)."""
    if not isinstance(payload, dict):
        return ["the top level is not an object"]
    out = []

    def number(value) -> bool:
        return (isinstance(value, (int, float)) and not isinstance(value, bool)
                and math.isfinite(value))

    tests = payload.get("tests")
    if "score" not in payload and not isinstance(tests, list):
        out.append("neither score nor tests")
    if "score" in payload and not number(payload["score"]):
        out.append("score is not a number")
    if "execution_time" in payload and not number(payload["execution_time"]):
        out.append("execution_time is not a number")
    if "output" in payload and not isinstance(payload["output"], str):
        out.append("output is not a string")
    if payload.get("visibility", "visible") not in VISIBILITIES:
        out.append("bad visibility")
    if tests is not None:
        if not isinstance(tests, list):
            out.append("tests is not a list")
        else:
            for i, test in enumerate(tests):
                if not isinstance(test, dict):
                    out.append(f"tests[{i}] is not an object")
                    continue
                for key in ("score", "max_score"):
                    if key in test and not number(test[key]):
                        out.append(f"tests[{i}].{key} is not a number")
                if test.get("visibility", "visible") not in VISIBILITIES:
                    out.append(f"tests[{i}].visibility is not a Gradescope level")
                if "status" in test and test["status"] not in ("passed", "failed"):
                    out.append(f"tests[{i}].status is not passed/failed")
    board = payload.get("leaderboard")
    if board is not None and not (isinstance(board, list) and all(
            isinstance(e, dict) and "name" in e and "value" in e for e in board)):
        out.append("leaderboard entries need name and value")
    return out


def fallback(lab: str, exit_code: int, reason: str, log_tail: str) -> dict:
    return {
        "score": 0,
        "execution_time": 0,
        "output": (f"The autograder could not finish grading {lab} ({reason}; exit code "
                   f"{exit_code}), so this submission shows 0 points for now. This is not a "
                   "judgement of your code: the course staff have been given the log. If it "
                   "persists, resubmit or contact them."),
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": [{"name": "autograder log (staff only)", "score": 0, "max_score": 0,
                   "status": "failed", "output": log_tail, "visibility": "hidden"}],
    }


def finish(produced: Path, dest: Path, *, exit_code: int, log: Path | None, lab: str) -> dict:
    payload, reason = None, ""
    try:
        payload = json.loads(produced.read_text())
        bad = problems(payload)
        if bad:
            reason, payload = "its results were malformed: " + "; ".join(bad[:5]), None
    except FileNotFoundError:
        reason = "grading stopped before it wrote any result"
    except (OSError, ValueError) as exc:
        reason = f"its results could not be read ({type(exc).__name__})"
    if payload is None:
        tail = ""
        if log is not None:
            try:
                tail = log.read_bytes()[-6000:].decode("utf-8", "replace")
            except OSError:
                tail = "(no log)"
        payload = fallback(lab, exit_code, reason, tail)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2))
    os.replace(tmp, dest)
    return payload


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("produced", type=Path)
    parser.add_argument("dest", type=Path)
    parser.add_argument("--exit-code", type=int, default=0)
    parser.add_argument("--log", type=Path, default=None)
    parser.add_argument("--lab", default="this lab")
    args = parser.parse_args(argv)
    payload = finish(args.produced, args.dest, exit_code=args.exit_code, log=args.log,
                     lab=args.lab)
    print(f"results.json: score {payload.get('score')} -> {args.dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
