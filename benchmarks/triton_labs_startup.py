"""Start-up cost of the Triton labs' solution repositories, as their graders serve them.

For each lab, `--runs` times:

    start tritonserver (explicit mode, auto-completion off as the graders run it) -> live
    -> load the lab's models concurrently -> all ready

and report p50/p90 of "all ready" measured from the start call, p50 of "live", the peak RSS
of the server plus its Python-backend stubs (psutil over the server's process group,
sampled every 20 ms from start until ready — `GroupRss` of benchmarks/triton_startup.py),
PSS once ready (shared torch pages counted once) and the stop time as the graders stop
(SIGKILL to the process group, shm removed: `stop(grace=0)`). One extra start first warms
the page cache.

  triton_2_1   solutions/triton_2_1/model_repository (mlp: PyTorch MLP in the Python
               backend) plus the grader's reference model mlp_reference beside it (what a
               grading run loads): 2 stubs, the student's importing torch, the
               reference numpy only
  triton_2_2   solutions/triton_2_2/model_repository: classifier (latest 2 -> versions 2,3)
               and ranker (specific [1]): 3 numpy-only stubs

    .venv/bin/python benchmarks/triton_labs_startup.py [--runs 10] [--labs triton_2_1,triton_2_2]
                                                      [--auto-complete] [--json out.json]

Target: all ready <= 3 s (p50) on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from labgrade.runtime.triton import TritonServer, triton_available  # noqa: E402
from triton_startup import MiB, GroupRss, group_memory, percentile  # noqa: E402


def stage_triton_2_1(target: Path) -> list[str]:
    shutil.copytree(ROOT / "solutions" / "triton_2_1" / "model_repository", target,
                    ignore=shutil.ignore_patterns("__pycache__"))
    reference = target / "mlp_reference"
    shutil.copytree(ROOT / "graders" / "triton_2_1" / "reference" / "mlp_reference", reference,
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(ROOT / "graders" / "triton_2_1" / "mlp.npz", reference / "1" / "mlp.npz")
    return ["mlp", "mlp_reference"]


def stage_triton_2_2(target: Path) -> list[str]:
    shutil.copytree(ROOT / "solutions" / "triton_2_2" / "model_repository", target,
                    ignore=shutil.ignore_patterns("__pycache__"))
    return ["classifier", "ranker"]


LABS = {"triton_2_1": stage_triton_2_1, "triton_2_2": stage_triton_2_2}


def one_run(repo: Path, models: list[str], log_dir: Path, auto_complete: bool) -> dict:
    server = TritonServer(repo, log_dir=log_dir, startup_timeout=60,
                          auto_complete_config=auto_complete)
    sampler = GroupRss().start()
    started = time.monotonic()
    try:
        server.start()
        sampler.pgid = server.pid
        live = time.monotonic() - started
        server.load_all(models, parallel=True)
        if not all(server.model_ready(m) for m in models):
            raise RuntimeError("a model is not ready after load")
        ready = time.monotonic() - started
        peak = sampler.close()
        pss = group_memory(server.pid, "pss")
        processes = len(server.pids())
    finally:
        sampler.close()
        stop_started = time.monotonic()
        server.stop(grace=0)
        stop = time.monotonic() - stop_started
    return {"live_s": live, "ready_s": ready, "peak_rss": peak, "pss": pss,
            "processes": processes, "stop_s": stop}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--labs", default=",".join(LABS))
    parser.add_argument("--auto-complete", action="store_true",
                        help="leave auto-completion on (the graders turn it off)")
    parser.add_argument("--json", type=Path, default=None, help="also write raw results here")
    args = parser.parse_args()

    ok, why = triton_available()
    if not ok:
        print(f"skipped: {why}", file=sys.stderr)
        return 2
    labs = [lab.strip() for lab in args.labs.split(",") if lab.strip()]
    results: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="triton-labs-bench-") as tmp:
        for lab in labs:
            repo = Path(tmp) / lab
            models = LABS[lab](repo)
            run = lambda: one_run(repo, models, Path(tmp) / "logs", args.auto_complete)  # noqa: E731
            run()  # warm the page cache
            results[lab] = [run() for _ in range(args.runs)]

    auto = "on" if args.auto_complete else "off"
    print(f"\nembedded tritonserver, {os.cpu_count()} CPUs, {args.runs} starts per lab, "
          f"concurrent loads, auto-complete-config {auto}")
    header = (f"{'lab':>11} {'procs':>5} {'live p50':>9} {'ready p50':>10} {'ready p90':>10} "
              f"{'peak RSS p50':>13} {'peak RSS max':>13} {'PSS p50':>9} {'stop p50':>9}")
    print(header)
    print("-" * len(header))
    for lab, runs in results.items():
        col = lambda key: [r[key] for r in runs]  # noqa: E731
        print(f"{lab:>11} {runs[0]['processes']:>5} "
              f"{percentile(col('live_s'), 50):>8.2f}s "
              f"{percentile(col('ready_s'), 50):>9.2f}s {percentile(col('ready_s'), 90):>9.2f}s "
              f"{percentile(col('peak_rss'), 50) / MiB:>10.0f}MiB "
              f"{max(col('peak_rss')) / MiB:>10.0f}MiB "
              f"{percentile(col('pss'), 50) / MiB:>6.0f}MiB "
              f"{percentile(col('stop_s'), 50):>8.2f}s")
    if args.json:
        args.json.write_text(json.dumps({"auto_complete_config": auto, "runs": results},
                                        indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
