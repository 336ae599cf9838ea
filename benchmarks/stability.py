"""Stability of a lab's grade: grade the reference solution N times, print every score and
every measured ratio with its spread, and fail unless all the scores are identical.

    .venv/bin/python benchmarks/stability.py [--lab lab_2_2] [--runs 5] [--profile cpu]

Each run is a fresh `pytest labs/<lab> --grade --solution` process, one after another (on
a shared machine, alongside whatever else runs there: that noise is the point). A run that
the plugin refuses to score because labgrade/ or the graders changed while it ran (someone
editing a shared checkout) is repeated, and said so. For every
item that measured a speed-up (a `<name>` with a `<name>_spread` next to it in grade.json)
the table shows the median ratio, its spread (max - min over the rounds) and the
thresholds' margin: how far the median stayed above the item's full-marks threshold.
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

# lab.toml keys of full-marks thresholds, per measured ratio (for the margin column)
def one_run(lab: str, profile: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "pytest", f"labs/{lab}", "--grade",
                               "--solution", "--profile", profile, "--report-dir", tmp, "-q",
                               "-p", "no:cacheprovider"], cwd=ROOT, capture_output=True,
                              text=True)
        wall = time.perf_counter() - started
        path = Path(tmp) / lab / "grade.json"
        if not path.exists():
            sys.exit(f"no grade.json:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        grade = json.loads(path.read_text())
    ratios = {}  # every curve-scored measurement, with the thresholds it was scored on
    for item in grade["items"]:
        measured = item.get("measured", {})
        for key, value in measured.items():
            curve = measured.get(f"curve:{key}")
            if isinstance(curve, dict):
                ratios[key] = {"median": value, "spread": measured.get(f"{key}_spread", 0.0),
                               "quartiles": measured.get(f"{key}_quartiles"),
                               "full_at": curve["full_at"]}
    items = {i["name"]: i["score"] for i in grade["items"] if i["status"] != "out_of_scope"}
    tainted = any("was modified during this run" in i["message"] for i in grade["items"])
    return {"score": grade["score"], "tainted": tainted, "max": grade["max_score"], "wall": wall,
            "ratios": ratios, "items": items,
            "not_full": {i["name"]: i["message"][:200] for i in grade["items"]
                         if i["status"] not in ("passed", "out_of_scope")}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lab", default="lab_2_2")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--profile", default="cpu")
    args = parser.parse_args()
    runs = []
    for i in range(args.runs):
        run = one_run(args.lab, args.profile)
        for _ in range(3):
            # someone changed labgrade/ or the graders mid-run (a shared checkout): the
            # plugin then gives no score at all; that is not the grade's instability
            if not run["tainted"]:
                break
            print(f"run {i + 1}: the grading environment changed during the run; again")
            run = one_run(args.lab, args.profile)
        runs.append(run)
        parts = [f"{k} {v['median']:.3f} (spread {v['spread']:.2f})"
                 for k, v in sorted(run["ratios"].items())]
        print(f"run {i + 1}: score {run['score']:g}/{run['max']:g}, {run['wall']:.1f} s; "
              + "; ".join(parts), flush=True)
        for name, message in run["not_full"].items():
            print(f"    {name}: {message}")

    print(f"\n{args.lab} solution, {args.profile} profile, {args.runs} runs")
    keys = sorted({k for r in runs for k in r["ratios"]})
    header = f"{'measured':26}{'min':>8}{'median':>8}{'max':>8}{'spread max':>12}{'full at':>9}" \
             f"{'margin':>9}"
    print(header)
    for key in keys:
        values = [r["ratios"][key]["median"] for r in runs if key in r["ratios"]]
        spreads = [r["ratios"][key]["spread"] for r in runs if key in r["ratios"]]
        full = next(r["ratios"][key]["full_at"] for r in runs if key in r["ratios"])
        margin = f"{min(values) / full:8.2f}x" if full else f"{'':>9}"
        print(f"{key:26}{min(values):8.3f}{statistics.median(values):8.3f}{max(values):8.3f}"
              f"{max(spreads):12.2f}{full if full is not None else '':>9}{margin}")
    walls = [r["wall"] for r in runs]
    print(f"{'wall time (s)':26}{min(walls):8.1f}{statistics.median(walls):8.1f}"
          f"{max(walls):8.1f}")
    scores = {r["score"] for r in runs}
    per_item = {name: {r["items"].get(name) for r in runs} for name in runs[0]["items"]}
    unstable = {n: sorted(s) for n, s in per_item.items() if len(s) > 1}
    listed = ", ".join(f"{r['score']:g}" for r in runs)
    print(f"scores: {listed} -> "
          + ("identical" if len(scores) == 1 and not unstable else f"NOT identical {unstable}"))
    return 0 if len(scores) == 1 and not unstable else 1


if __name__ == "__main__":
    sys.exit(main())
