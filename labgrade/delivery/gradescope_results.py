"""Finish a Gradescope run: put a valid results.json where Gradescope reads it, always.

Run by `run_autograder` as a plain script with whatever `python3` the image has: it uses the
standard library only (no labgrade import), so it works even when the grading environment
is broken.

    python3 gradescope_results.py PRODUCED DEST --exit-code N --log LOG --lab ID
        [--time-limit S] [--memory-need-gib G] [--oom-kills-before N]

PRODUCED is the results.json labgrade wrote (under --report-dir); when it is missing or not
a valid Gradescope result, DEST gets a result with score 0, a student-facing explanation,
and the log's tail in a hidden test for the staff.

Running out of memory is named as such: when the container's OOM-kill count rose during
grading, or the memory allowed (cgroup limit or the address-space rlimit) is below what
the lab declares (`--memory-need-gib`, from lab.toml [resources]) and the run shows the
marks of it (MemoryError, "Cannot allocate memory", SIGKILL, ...), DEST says so to the
student (not a judgement of their code) and tells the staff how much to allow; its score
is 0 until they regrade.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
from pathlib import Path

try:
    import resource
except ImportError:  # not on Linux
    resource = None

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


MEMORY_MARKS = re.compile(r"MemoryError|Cannot allocate memory|std::bad_alloc|out of memory|"
                          r"failed to map segment|SIGKILL|Killed|exit code 137|code -9")
GiB = 1 << 30


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def memory_limit() -> int | None:
    """The smallest memory limit on this process: cgroup v2 or v1, or RLIMIT_AS."""
    found = []
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        text = _read(path).strip()
        if text.isdigit() and int(text) < 1 << 60:
            found.append(int(text))
    if resource is not None:
        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY:
            found.append(soft)
    return min(found) if found else None


def oom_kills() -> int | None:
    for path in ("/sys/fs/cgroup/memory.events", "/sys/fs/cgroup/memory/memory.oom_control"):
        for line in _read(path).splitlines():
            if line.startswith("oom_kill "):
                return int(line.split()[1])
    return None


def _size(n: float) -> str:
    return f"{n / GiB:.2f} GiB" if n >= GiB else f"{n / (1 << 20):.0f} MiB"


def memory_trouble(*, need_gib: float, oom_before: int | None, exit_code: int,
                   evidence: str, limit: int | None = None,
                   oom_after: int | None = None) -> str:
    """A student- and staff-facing sentence when grading ran out of memory, else ""."""
    limit = memory_limit() if limit is None else limit
    oom_after = oom_kills() if oom_after is None else oom_after
    killed = oom_before is not None and oom_after is not None and oom_after > oom_before
    short = bool(need_gib) and limit is not None and limit < need_gib * GiB
    if not killed and not (short and (exit_code in (137, -9) or MEMORY_MARKS.search(evidence))):
        return ""
    allowed = f"allows {_size(limit)}" if limit is not None else "has a memory limit"
    wanted = (f"this lab needs about {need_gib:g} GiB" if need_gib
              else "this lab needs more")
    ask = (f"at least {math.ceil(need_gib * 1.25 * 2) / 2:g} GB" if need_gib
           else "more memory")
    return (f"Grading ran out of memory: the autograder container {allowed} and {wanted}. "
            "This is not a judgement of your code; your submission will be regraded. "
            f"Course staff: set the autograder's memory to {ask} (Configure Autograder > "
            "Autograder settings), then regrade.")


def finish(produced: Path, dest: Path, *, exit_code: int, log: Path | None, lab: str,
           time_limit: int = 0, memory_need_gib: float = 0.0,
           oom_kills_before: int | None = None) -> dict:
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
    tail = ""
    if log is not None:
        try:
            tail = log.read_bytes()[-6000:].decode("utf-8", "replace")
        except OSError:
            tail = "(no log)"
    if payload is None and exit_code in (124, 137) and time_limit:
        reason += f" (it was stopped at the time limit of {time_limit} s)"
    outputs = " ".join(str(t.get("output", "")) for t in (payload or {}).get("tests", []))
    memory = memory_trouble(need_gib=memory_need_gib, oom_before=oom_kills_before,
                            exit_code=exit_code, evidence=tail + outputs)
    if memory:
        payload = fallback(lab, exit_code, "it ran out of memory", tail)
        payload["output"] = memory + "\n\n" + payload["output"]
    elif payload is None:
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
    parser.add_argument("--time-limit", type=int, default=0)
    parser.add_argument("--memory-need-gib", type=float, default=0.0)
    parser.add_argument("--oom-kills-before", default="")
    args = parser.parse_args(argv)
    before = int(args.oom_kills_before) if args.oom_kills_before.isdigit() else None
    payload = finish(args.produced, args.dest, exit_code=args.exit_code, log=args.log,
                     lab=args.lab, time_limit=args.time_limit,
                     memory_need_gib=args.memory_need_gib, oom_kills_before=before)
    print(f"results.json: score {payload.get('score')} -> {args.dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
