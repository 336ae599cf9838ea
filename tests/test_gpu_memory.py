"""GPU memory ledger and the gpu profile's settings, without a GPU.

The ledger's subject is its own bookkeeping; `gpu.memory` (nvidia-smi) is replaced by a
scripted sequence of readings here, since CI has no GPU. The real path runs on an H100
(benchmarks/results/gpu/*.grade.json hold its records)."""

from pathlib import Path

import pytest

from labgrade.labs import LabConfigError, load_lab
from labgrade.runtime import gpu
from labgrade.runtime.gpu import GiB, GpuMemory, GpuMemoryNotReleased, MemoryLedger

ROOT = Path(__file__).resolve().parents[1]


def _readings(monkeypatch, used_gib: list[float]) -> None:
    values = iter(used_gib)
    last = [used_gib[0]]

    def memory(index: int = 0) -> GpuMemory:
        last[0] = next(values, last[0])
        return GpuMemory(used=int(last[0] * GiB), total=80 * GiB)

    monkeypatch.setattr(gpu, "memory", memory)
    monkeypatch.setattr(gpu.time, "sleep", lambda s: None)


def test_start_waits_until_memory_is_back(monkeypatch):
    _readings(monkeypatch, [5.0, 3.0, 1.2])  # an engine still freeing memory
    ledger = MemoryLedger(GpuMemory(used=1 * GiB, total=80 * GiB))
    ledger.before_start("engine")
    assert ledger.events[-1]["used_gib"] == pytest.approx(1.2)
    assert ledger.live == {"engine"}


def test_start_fails_clearly_when_memory_never_comes_back(monkeypatch):
    _readings(monkeypatch, [30.0])
    clock = iter(range(0, 1000, 10))
    monkeypatch.setattr(gpu.time, "monotonic", lambda: next(clock))
    ledger = MemoryLedger(GpuMemory(used=1 * GiB, total=80 * GiB), timeout=60)
    with pytest.raises(GpuMemoryNotReleased, match="nvidia-smi"):
        ledger.before_start("engine")


def test_side_by_side_processes_do_not_wait_for_each_other(monkeypatch):
    _readings(monkeypatch, [1.0, 12.0, 20.0, 20.0, 12.0, 12.0, 1.0])
    ledger = MemoryLedger(GpuMemory(used=1 * GiB, total=80 * GiB))
    ledger.before_start("reference engine")
    ledger.before_start("student engine")  # 12 GiB in use by the first: no wait, no error
    ledger.before_stop("student engine")
    ledger.before_stop("student engine")  # close, then kill: recorded once
    ledger.after_stop("student engine")
    ledger.before_stop("reference engine")
    ledger.after_stop("reference engine")
    ledger.after_stop("reference engine")  # a second kill records nothing
    assert [e["event"] for e in ledger.events] == [
        "lab start", "before start", "before start", "before stop", "after stop",
        "before stop", "after stop"]
    assert ledger.events[3]["used_gib"] == pytest.approx(20.0)
    assert ledger.events[-1]["used_gib"] == pytest.approx(1.0)


def test_hub_models_replace_the_tiny_ones():
    lab = load_lab(ROOT, "lab_2_2")
    tiny, hub = lab.settings("gpu"), lab.settings("gpu", "hub")
    assert tiny["model"].startswith("tiny:") and "hub" not in tiny
    assert hub["model"].startswith("Qwen/") and hub["dtype"] == tiny["dtype"]
    with pytest.raises(LabConfigError, match="no hub models"):
        lab.settings("cpu", "hub")


def test_lab_end_fails_when_the_last_process_kept_its_memory(monkeypatch):
    _readings(monkeypatch, [1.0, 9.0])  # the engine's 8 GiB never come back
    clock = iter(range(0, 1000, 10))
    monkeypatch.setattr(gpu.time, "monotonic", lambda: next(clock))
    ledger = MemoryLedger(GpuMemory(used=1 * GiB, total=80 * GiB), timeout=60)
    ledger.before_start("engine")
    ledger.after_stop("engine")  # waits, records, does not raise mid-teardown
    assert ledger.events[-1]["used_gib"] == pytest.approx(9.0)
    with pytest.raises(GpuMemoryNotReleased, match="engine"):
        ledger.finish()


def test_lab_end_passes_when_memory_came_back(monkeypatch):
    _readings(monkeypatch, [1.0, 9.0, 1.0])
    ledger = MemoryLedger(GpuMemory(used=1 * GiB, total=80 * GiB))
    ledger.before_start("engine")
    ledger.after_stop("engine")
    ledger.finish()
