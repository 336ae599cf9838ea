"""Wall time of grading a lab's reference solution, split into engine start-ups, workload
and framework overhead.

    .venv/bin/python benchmarks/grade_walltime.py --lab lab_2_1 [--runs 3] [--cold]
    .venv/bin/python benchmarks/grade_walltime.py --lab lab_2_4 --runs 1 --target-wall 90

Each run is a fresh `pytest labs/<lab> --grade --solution` process, timed from outside.
It also prints each run's score and the benchmark item's measured ratio and its spread, so
`--runs 5` doubles as the stability check (same score every run).
- engine start-ups: the student's engine build, the reference engine's (0 when its answers
  came from the cache; --cold empties that cache first), the server's time to /health
  (overlapped with the engine items: reported, not added);
- workload: time inside items (pytest's call phase);
- framework overhead: wall time minus all item phases (setup, call, teardown): interpreter
  and pytest start, collection, labgrade's hooks and reports, shutdown.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from labgrade.runtime.tinymodels import cache_root  # noqa: E402


def one_run(lab: str, cold: bool) -> dict:
    if cold:
        shutil.rmtree(cache_root() / "reference", ignore_errors=True)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "pytest", f"labs/{lab}", "--grade",
                               "--solution", "--profile", "cpu", "--report-dir", tmp, "-q",
                               "-p", "no:cacheprovider"], cwd=ROOT, capture_output=True,
                              text=True)
        wall = time.perf_counter() - started
        grade = json.loads((Path(tmp) / lab / "grade.json").read_text())
    if grade["score"] != grade["max_score"]:
        sys.exit(f"the solution did not get full marks:\n{proc.stdout[-3000:]}")
    measured = {}
    for item in grade["items"]:
        measured.update(item["measured"])
    phases = grade["environment"]["phase_seconds"]
    inside = phases["setup"] + phases["call"] + phases["teardown"]
    return {"wall": wall, "setup": phases["setup"], "call": phases["call"],
            "teardown": phases["teardown"], "overhead": wall - inside,
            "student_engine": measured.get("build_seconds", 0.0),
            "reference_engine": measured.get("reference_start_seconds", 0.0),
            "server_ready": measured.get("server_ready_seconds", 0.0),
            "speedup": measured.get("speedup", 0.0),
            "speedup_spread": measured.get("speedup_spread", 0.0),
            "score": f"{grade['score']:g}/{grade['max_score']:g}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lab", default="lab_2_1")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cold", action="store_true",
                        help="empty the reference-output cache before each run")
    parser.add_argument("--target-wall", type=float, default=None,
                        help="exit 1 when the median wall time exceeds this many seconds "
                             "(lab_2_4: 90)")
    args = parser.parse_args()
    runs = [one_run(args.lab, args.cold) for _ in range(args.runs)]
    keys = ["wall", "setup", "call", "teardown", "overhead", "student_engine",
            "reference_engine", "server_ready", "speedup", "speedup_spread"]
    print(f"{args.lab} solution, cpu profile, {args.runs} run(s)"
          f"{' (cold reference cache)' if args.cold else ''}; seconds")
    print(f"{'':18}" + "".join(f"{'run ' + str(i + 1):>9}" for i in range(len(runs)))
          + f"{'median':>9}")
    for key in keys:
        values = [r[key] for r in runs]
        print(f"{key:18}" + "".join(f"{v:9.2f}" for v in values)
              + f"{statistics.median(values):9.2f}")
    overhead = statistics.median(r["overhead"] / r["wall"] for r in runs)
    print(f"framework overhead: {overhead:.1%} of wall time; scores: "
          + ", ".join(r["score"] for r in runs))
    wall = statistics.median(r["wall"] for r in runs)
    if args.target_wall is not None and wall > args.target_wall:
        sys.exit(f"median wall time {wall:.1f} s exceeds the target {args.target_wall:g} s")


if __name__ == "__main__":
    main()
