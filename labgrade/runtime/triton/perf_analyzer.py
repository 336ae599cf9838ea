"""perf_analyzer, Triton's own load generator, run against a server for graders.

The binary ships inside the `tritonclient==2.51.0` wheel (`<venv>/bin/perf_analyzer`; the
PyPI package `perf-analyzer` is an empty placeholder). `scripts/setup-triton-env.sh`
installs it in the Triton environment together with `nvidia-cuda-runtime-cu12`, whose
`libcudart.so.12` it links against even on a CPU machine; Debian's `libb64-0d` is the other
library it needs. No GPU is used.

    pa = find_perf_analyzer()
    result = pa.measure("127.0.0.1:8000", "pytorch_model", concurrency=4,
                        input_data=path_to_json, log_path=run_dir / "perf_analyzer.log")
    result.throughput_rps, result.latency_avg_ms, result.latency_p50_ms
"""

from __future__ import annotations

import csv
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from labgrade.runtime.triton.distribution import SETUP_HINT, default_triton_venv
from labgrade.runtime.triton.errors import TritonError, TritonNotInstalled

# perf_analyzer's CSV has no average column: its average latency (the "latency" it prints)
# is the sum of these parts
AVG_PARTS = ("Client Send", "Network+Server Send/Recv", "Server Queue", "Server Compute Input",
             "Server Compute Infer", "Server Compute Output", "Client Recv")
CUDART_DIR = "lib/python{version}/site-packages/nvidia/cuda_runtime/lib"


@dataclass(frozen=True)
class PerfResult:
    """One perf_analyzer measurement (its CSV row), latencies in milliseconds."""

    concurrency: int
    throughput_rps: float
    latency_avg_ms: float
    latency_p50_ms: float
    latency_p99_ms: float

    def as_dict(self) -> dict:
        return {k: round(v, 3) if isinstance(v, float) else v for k, v in asdict(self).items()}


@dataclass(frozen=True)
class PerfAnalyzer:
    binary: Path
    library_path: str

    def command(self, url: str, model: str, *, concurrency: int, interval_ms: int, csv_path: Path,
                protocol: str = "http", input_data: Path | None = None) -> list[str]:
        return [str(self.binary), "-m", model, "-u", url, "-i", protocol,
                f"--concurrency-range={concurrency}", "--measurement-mode=time_windows",
                f"--measurement-interval={interval_ms}", "--max-trials=3",
                "--stability-percentage=999", "-f", str(csv_path),
                *(["--input-data", str(input_data)] if input_data else [])]

    def measure(self, url: str, model: str, *, concurrency: int, interval_ms: int = 1000,
                log_path: Path, protocol: str = "http", input_data: Path | None = None,
                timeout: float = 120.0) -> PerfResult:
        """Run one measurement; raise TritonError with perf_analyzer's own output if it
        fails."""
        with tempfile.TemporaryDirectory(prefix="labgrade-pa-") as tmp:
            csv_path = Path(tmp) / "result.csv"
            argv = self.command(url, model, concurrency=concurrency, interval_ms=interval_ms,
                                csv_path=csv_path, protocol=protocol, input_data=input_data)
            with open(log_path, "ab") as log:
                log.write(("$ " + " ".join(argv) + "\n").encode())
                log.flush()
                try:
                    proc = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT,
                                          env={"LD_LIBRARY_PATH": self.library_path,
                                               "PATH": "/usr/bin:/bin"},
                                          timeout=timeout, start_new_session=True)
                except subprocess.TimeoutExpired:
                    raise TritonError(f"perf_analyzer took more than {timeout:.0f} s on "
                                      f"{model} (log: {log_path})") from None
            if proc.returncode != 0 or not csv_path.is_file():
                tail = "\n".join(Path(log_path).read_text(errors="replace").splitlines()[-15:])
                raise TritonError(f"perf_analyzer failed on {model} (exit {proc.returncode}):"
                                  f"\n{tail}")
            text = csv_path.read_text()
            with open(log_path, "a") as log:
                log.write(text)
            return parse_csv(text)


def parse_csv(text: str) -> PerfResult:
    """perf_analyzer's `-f` CSV (latencies in microseconds) -> PerfResult of its first row."""
    rows = list(csv.DictReader(text.splitlines()))
    if not rows:
        raise TritonError(f"perf_analyzer wrote no measurement: {text[:300]!r}")
    row = rows[0]
    return PerfResult(
        concurrency=int(row["Concurrency"]),
        throughput_rps=float(row["Inferences/Second"]),
        latency_avg_ms=sum(float(row[c]) for c in AVG_PARTS) / 1000,
        latency_p50_ms=float(row["p50 latency"]) / 1000,
        latency_p99_ms=float(row["p99 latency"]) / 1000)


def find_perf_analyzer(venv: Path | None = None) -> PerfAnalyzer:
    """perf_analyzer in the Triton environment, with the CUDA runtime library it links."""
    venv = Path(venv) if venv is not None else default_triton_venv()
    binary = venv / "bin" / "perf_analyzer"
    if not binary.is_file():
        raise TritonNotInstalled(f"no perf_analyzer in {venv}/bin (it ships in the "
                                 f"tritonclient==2.51.0 wheel): {SETUP_HINT}")
    cudart = sorted(venv.glob(CUDART_DIR.format(version="*")))
    if not cudart or not any(cudart[0].glob("libcudart.so.12*")):
        raise TritonNotInstalled(f"perf_analyzer needs libcudart.so.12 from "
                                 f"nvidia-cuda-runtime-cu12 in {venv}: {SETUP_HINT}")
    return PerfAnalyzer(binary=binary, library_path=str(cudart[0]))
