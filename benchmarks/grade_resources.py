"""What one grading of a lab needs: peak memory of the whole grading process tree (the
pytest process, workers, engines, servers, tritonserver), and wall time, for the lab's
`[resources]` table in lab.toml (Gradescope's container settings and batch parallelism
come from it).

    python benchmarks/grade_resources.py lab_2_1 lab_2_2 ...   (default: every lab)

Grades each lab's reference solution once, sampling the tree's resident memory every
0.2 s from outside. Prints the measurement and the table it suggests: memory with 50 %
headroom (rounded up to 0.5 GiB), minutes with 2x headroom on the wall time measured
here. Run it on an idle machine of the kind that grades.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from labgrade.labs import all_lab_ids  # noqa: E402  (after the path is set)

GiB = 1 << 30


def tree_rss(root: psutil.Process) -> int:
    try:
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for proc in procs:
        try:
            total += proc.memory_info().rss
        except psutil.Error:
            continue
    return total


def measure(lab: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "pytest", f"labs/{lab}", "--grade",
                                 "--solution", "--profile", "cpu", "--report-dir", tmp, "-q",
                                 "-p", "no:cacheprovider"], cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        root = psutil.Process(proc.pid)
        peak = 0
        while proc.poll() is None:
            peak = max(peak, tree_rss(root))
            time.sleep(0.2)
        out = proc.stdout.read()
        wall = time.perf_counter() - started
    total = next((line.strip() for line in out.splitlines() if "TOTAL" in line), "no TOTAL")
    return {"lab": lab, "peak_bytes": peak, "wall_s": wall, "total": total}


def suggestion(m: dict) -> str:
    memory = math.ceil(m["peak_bytes"] * 1.5 / GiB * 2) / 2
    minutes = max(1, math.ceil(m["wall_s"] * 2 / 60))
    return f"[resources]\nmemory_gib = {memory:g}\ncpus = 2\nminutes = {minutes}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("labs", nargs="*")
    args = parser.parse_args()
    for lab in args.labs or all_lab_ids(ROOT):
        m = measure(lab)
        print(f"{lab}: peak {m['peak_bytes'] / GiB:.2f} GiB, wall {m['wall_s']:.0f} s, "
              f"{m['total']}")
        print(suggestion(m) + "\n", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
