"""labgrade.runtime.triton.perf_analyzer without a server: its CSV read as perf_analyzer 2.51
writes it (a line recorded on this machine), and the messages when it is not installed."""

from __future__ import annotations

import pytest

from labgrade.runtime.triton import TritonNotInstalled
from labgrade.runtime.triton.perf_analyzer import find_perf_analyzer, parse_csv

RECORDED = (
    "Concurrency,Inferences/Second,Client Send,Network+Server Send/Recv,Server Queue,"
    "Server Compute Input,Server Compute Infer,Server Compute Output,Client Recv,p50 latency,"
    "p90 latency,p95 latency,p99 latency\n"
    "4,1232.95,132,1439,995,27,564,71,0,1931,8178,11128,16529\n")


def test_csv_row_becomes_milliseconds():
    result = parse_csv(RECORDED)
    assert result.concurrency == 4 and result.throughput_rps == 1232.95
    # perf_analyzer printed "latency 3230 usec" for this run: the sum of the parts
    assert result.latency_avg_ms == pytest.approx(3.228)
    assert result.latency_p50_ms == pytest.approx(1.931)
    assert result.latency_p99_ms == pytest.approx(16.529)
    assert result.as_dict()["latency_avg_ms"] == 3.228


def test_missing_binary_and_cuda_runtime_say_what_to_do(tmp_path):
    with pytest.raises(TritonNotInstalled, match="tritonclient==2.51.0.*setup"):
        find_perf_analyzer(tmp_path)
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "perf_analyzer").write_text("")
    with pytest.raises(TritonNotInstalled, match="nvidia-cuda-runtime-cu12"):
        find_perf_analyzer(tmp_path)
    lib = tmp_path / "lib/python3.11/site-packages/nvidia/cuda_runtime/lib"
    lib.mkdir(parents=True)
    (lib / "libcudart.so.12").write_text("")
    found = find_perf_analyzer(tmp_path)
    assert found.library_path == str(lib)
