"""Start-up cost of the embedded Triton server with Python-backend PyTorch models.

For N models (default N=1 and N=3), each a small PyTorch MLP in its model.py (so the
torch import in every stub is paid for real), repeat `--runs` times:

    start tritonserver (explicit mode) -> live -> load all N models -> all ready

and report p50/p90 of "live" and "all ready" (both measured from the start call), the peak
RSS of the server plus its stub processes (psutil over the server's process group, sampled
every 20 ms from start until ready), PSS once all are ready (shared torch pages counted
once), and the stop time. Loads are issued concurrently (`load_all`), as a grader would;
`--sequential` loads one after another instead; `--no-auto-complete` starts the server with
`--disable-auto-complete-config` (the Python backend then starts one stub per load, not two).

    .venv/bin/python benchmarks/triton_startup.py [--runs 10] [--models 1,3]
                                                  [--sequential] [--no-auto-complete]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from labgrade.runtime.triton import TritonServer, process_group_pids, triton_available

MiB = 1 << 20

CONFIG = """
name: "{name}"
backend: "python"
max_batch_size: 8
input [ {{ name: "X" data_type: TYPE_FP32 dims: [ 32 ] }} ]
output [ {{ name: "Y" data_type: TYPE_FP32 dims: [ 4 ] }} ]
instance_group [ {{ kind: KIND_CPU count: 1 }} ]
"""

MODEL = """
import numpy as np
import torch
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        torch.manual_seed(0)
        torch.set_num_threads(1)
        self.net = torch.nn.Sequential(
            torch.nn.Linear(32, 128), torch.nn.ReLU(),
            torch.nn.Linear(128, 128), torch.nn.ReLU(),
            torch.nn.Linear(128, 4),
        ).eval()

    def execute(self, requests):
        responses = []
        for request in requests:
            x = torch.from_numpy(pb_utils.get_input_tensor_by_name(request, "X").as_numpy())
            with torch.inference_mode():
                y = self.net(x).numpy().astype(np.float32)
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("Y", y)]))
        return responses
"""


def make_repository(root: Path, n: int) -> list[str]:
    names = [f"mlp_{i}" for i in range(n)]
    for name in names:
        (root / name / "1").mkdir(parents=True)
        (root / name / "config.pbtxt").write_text(textwrap.dedent(CONFIG.format(name=name)))
        (root / name / "1" / "model.py").write_text(textwrap.dedent(MODEL).lstrip())
    return names


class GroupRss:
    """Samples the summed RSS of a process group in a thread; keeps the peak."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.pgid: int | None = None
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "GroupRss":
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            if self.pgid is not None:
                self.peak = max(self.peak, group_memory(self.pgid, "rss"))
            self._stop.wait(self.interval)

    def close(self) -> int:
        self._stop.set()
        self._thread.join()
        if self.pgid is not None:
            self.peak = max(self.peak, group_memory(self.pgid, "rss"))
        return self.peak


def group_memory(pgid: int, kind: str = "rss") -> int:
    total = 0
    for pid in process_group_pids(pgid):
        try:
            proc = psutil.Process(pid)
            total += proc.memory_info().rss if kind == "rss" else proc.memory_full_info().pss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return total


def one_run(repo: Path, names: list[str], log_dir: Path, sequential: bool,
            auto_complete: bool = True) -> dict:
    server = TritonServer(repo, log_dir=log_dir, startup_timeout=60,
                          auto_complete_config=auto_complete)
    sampler = GroupRss().start()
    started = time.monotonic()
    try:
        server.start()
        sampler.pgid = server.pid
        live = time.monotonic() - started
        server.load_all(names, parallel=not sequential)
        if not all(server.model_ready(name) for name in names):
            raise RuntimeError("a model is not ready after load")
        ready = time.monotonic() - started
        peak = sampler.close()
        pss = group_memory(server.pid, "pss")
        processes = len(server.pids())
        check_answers(server, names)
    finally:
        sampler.close()
        stop_started = time.monotonic()
        server.stop()
        stop = time.monotonic() - stop_started
    return {"live_s": live, "ready_s": ready, "peak_rss": peak, "pss": pss,
            "processes": processes, "stop_s": stop}


def check_answers(server: TritonServer, names: list[str]) -> None:
    """One inference per model: a non-empty, finite answer (numpy 2 would give empty)."""
    import tritonclient.http as httpclient

    client = server.http_client()
    try:
        x = httpclient.InferInput("X", [2, 32], "FP32")
        x.set_data_from_numpy(np.ones((2, 32), dtype=np.float32))
        for name in names:
            y = client.infer(name, [x]).as_numpy("Y")
            if y is None or y.shape != (2, 4) or not np.isfinite(y).all():
                raise RuntimeError(f"{name} answered {y!r}")
    finally:
        client.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    return statistics.quantiles(ordered, n=100, method="inclusive")[int(q) - 1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--models", default="1,3", help="comma-separated model counts")
    parser.add_argument("--sequential", action="store_true", help="load one model at a time")
    parser.add_argument("--no-auto-complete", action="store_true",
                        help="--disable-auto-complete-config (one stub per load, not two)")
    parser.add_argument("--json", type=Path, default=None, help="also write raw results here")
    args = parser.parse_args()

    ok, why = triton_available()
    if not ok:
        print(f"skipped: {why}", file=sys.stderr)
        return 2

    counts = [int(n) for n in args.models.split(",") if n.strip()]
    results: dict[int, list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="triton-bench-") as tmp:
        for n in counts:
            repo = Path(tmp) / f"repo-{n}"
            names = make_repository(repo, n)
            run = lambda: one_run(repo, names, Path(tmp) / "logs", args.sequential,  # noqa: E731
                                  not args.no_auto_complete)
            run()  # warm the page cache
            results[n] = [run() for _ in range(args.runs)]

    mode = "sequential" if args.sequential else "concurrent"
    auto = "off" if args.no_auto_complete else "on"
    print(f"\nembedded tritonserver, {os.cpu_count()} CPUs, {args.runs} starts each, "
          f"{mode} loads, auto-complete-config {auto}, PyTorch MLP per Python model")
    header = (f"{'models':>6} {'procs':>5} {'live p50':>9} {'ready p50':>10} {'ready p90':>10} "
              f"{'peak RSS p50':>13} {'peak RSS max':>13} {'PSS p50':>9} {'stop p50':>9}")
    print(header)
    print("-" * len(header))
    for n, runs in results.items():
        col = lambda key: [r[key] for r in runs]  # noqa: E731
        print(f"{n:>6} {runs[0]['processes']:>5} "
              f"{percentile(col('live_s'), 50):>8.2f}s "
              f"{percentile(col('ready_s'), 50):>9.2f}s {percentile(col('ready_s'), 90):>9.2f}s "
              f"{percentile(col('peak_rss'), 50) / MiB:>10.0f}MiB "
              f"{max(col('peak_rss')) / MiB:>10.0f}MiB "
              f"{percentile(col('pss'), 50) / MiB:>6.0f}MiB "
              f"{percentile(col('stop_s'), 50):>8.2f}s")
    if args.json:
        args.json.write_text(json.dumps({"mode": mode, "auto_complete_config": auto,
                                         "runs": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
