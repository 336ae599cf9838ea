"""Grading time with and without the sandbox (labgrade.isolation), side by side in one run.

    flock /tmp/labgrade-e2e.lock .venv/bin/python benchmarks/sandbox_overhead.py \
        --labs lab_2_1 triton_2_1 --rounds 2

Each grading is a fresh `pytest labs/<lab> --grade --solution --isolation LEVEL` process
timed from outside; per lab the two levels alternate (none, auto, auto, none, ...) so drift
on a shared machine hits both alike. Prints every run (level in force, score, wall time)
and per lab the median wall time of each level and the overhead in percent. A run whose
solution does not get full marks stops the benchmark (the sandbox broke something).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def grade_once(lab: str, level: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "pytest", f"labs/{lab}", "--grade",
                               "--solution", "--profile", "cpu", "--isolation", level,
                               "--report-dir", tmp, "-q", "-p", "no:cacheprovider"],
                              cwd=ROOT, capture_output=True, text=True)
        wall = time.perf_counter() - started
        grade_path = Path(tmp) / lab / "grade.json"
        if not grade_path.exists():
            sys.exit(f"{lab} --isolation {level}: no grade.json\n{proc.stdout[-3000:]}"
                     f"\n{proc.stderr[-3000:]}")
        grade = json.loads(grade_path.read_text())
    if grade["score"] != grade["max_score"]:
        sys.exit(f"{lab} --isolation {level}: the solution did not get full marks\n"
                 f"{proc.stdout[-4000:]}")
    return {"lab": lab, "asked": level, "level": grade["environment"]["isolation"]["level"],
            "score": f"{grade['score']:g}/{grade['max_score']:g}", "wall": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labs", nargs="+", default=["lab_2_1", "triton_2_1"])
    parser.add_argument("--rounds", type=int, default=2, help="runs per level and lab")
    options = parser.parse_args()
    runs = []
    for lab in options.labs:
        for i in range(options.rounds):
            for level in (("none", "auto") if i % 2 == 0 else ("auto", "none")):
                run = grade_once(lab, level)
                runs.append(run)
                print(f"{lab:<12} --isolation {level:<5} level={run['level']:<6} "
                      f"score {run['score']:>8}  wall {run['wall']:6.1f} s", flush=True)
    print()
    print(f"{'lab':<12} {'none (s)':>9} {'sandbox (s)':>12} {'overhead':>9}")
    for lab in options.labs:
        plain = statistics.median(r["wall"] for r in runs if r["lab"] == lab
                                  and r["asked"] == "none")
        boxed = statistics.median(r["wall"] for r in runs if r["lab"] == lab
                                  and r["asked"] == "auto")
        print(f"{lab:<12} {plain:9.1f} {boxed:12.1f} {100 * (boxed - plain) / plain:+8.1f}%")


if __name__ == "__main__":
    main()
