"""GPU memory ledger, GPU memory given in bytes, and the profiles' model settings, without a
GPU.

The ledger's subject is its own bookkeeping; `gpu.memory` (nvidia-smi) is replaced by a
scripted sequence of readings here, since CI has no GPU. The real path runs on an H100
(benchmarks/results/gpu/*.grade.json hold its records)."""

from pathlib import Path

import pytest

from labgrade.labs import LabConfigError, load_lab
from labgrade.runtime import gpu, vllm
from labgrade.runtime.gpu import GiB, MiB, GpuMemory, GpuMemoryNotReleased, MemoryLedger

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


# ------------------------------------------------------------ GPU memory given in bytes
VLLM_LABS = ("lab_2_1", "lab_2_2", "lab_2_3")
T4, H200 = 15 * GiB, 139 * GiB


def test_sizes_parse_and_become_this_cards_fraction():
    assert gpu.parse_size("2 GiB") == 2 * GiB and gpu.parse_size("512MiB") == 512 * MiB
    assert gpu.parse_size("1.5 GiB") == 3 * GiB // 2
    with pytest.raises(ValueError, match="'0.2'"):
        gpu.parse_size("0.2")
    assert gpu.fraction_of(2 * GiB, 80 * GiB) == 0.025
    assert gpu.fraction_of(1 * GiB, 3 * GiB) == 0.3334  # rounded up: never below the bytes
    with pytest.raises(ValueError, match="does not fit"):
        gpu.fraction_of(20 * GiB, T4)


def test_size_for_card_reaches_nested_tables_and_leaves_the_rest():
    settings = {"gpu_memory_utilization": "2 GiB", "gpu_memory_budget": 0.3,
                "kv_cache_bytes": 268435456, "note": "2 GiB",
                "engine_kwargs": {"gpu_memory_utilization": "4 GiB", "dtype": "bfloat16"}}
    sized = gpu.size_for_card(settings, 80 * GiB)
    assert sized == {"gpu_memory_utilization": 0.025, "gpu_memory_budget": 0.3,
                     "kv_cache_bytes": 268435456, "note": "2 GiB",
                     "engine_kwargs": {"gpu_memory_utilization": 0.05, "dtype": "bfloat16"}}
    assert settings["engine_kwargs"]["gpu_memory_utilization"] == "4 GiB"  # a copy


@pytest.mark.parametrize("lab_id", VLLM_LABS)
@pytest.mark.parametrize("total", [T4, H200], ids=["T4", "H200"])
def test_grader_engines_take_the_same_bytes_on_any_card(lab_id, total):
    lab = load_lab(ROOT, lab_id)
    settings = gpu.size_for_card(lab.settings("gpu"), total)
    kwargs = vllm.reference_engine_kwargs("m", settings)
    declared = lab.settings("gpu")["gpu_memory_utilization"]
    assert kwargs["gpu_memory_utilization"] * total == pytest.approx(
        gpu.parse_size(declared), rel=1e-3)
    assert kwargs["kv_cache_memory_bytes"] < gpu.parse_size(declared)
    assert kwargs["enforce_eager"] is True  # grader engines never compile


@pytest.mark.parametrize("lab_id", VLLM_LABS)
def test_each_vllm_lab_states_its_gpu_memory_need(lab_id):
    """Every memory setting of the gpu profile fits inside the lab's declared need, which a
    16 GiB card holds (the device proof: benchmarks/results/gpu/, graded capped to it)."""
    lab = load_lab(ROOT, lab_id)
    need = lab.resources.gpu_memory_gib
    assert need is not None and need * GiB <= T4
    settings = lab.settings("gpu")
    sizes = [v for k, v in [*settings.items(), *settings.get("engine_kwargs", {}).items()]
             if k in gpu.FRACTION_KEYS]
    assert sizes and all(isinstance(v, str) and gpu.parse_size(v) <= need * GiB for v in sizes)


def test_hub_models_can_be_named_on_the_command_line():
    lab = load_lab(ROOT, "lab_2_1")
    settings = lab.settings("cpu", "hub", {"model": "org/tiny", "served_model_name": "tiny"})
    assert settings["model"] == "org/tiny" and settings["device"] == "cpu"
    gpu_hub = lab.settings("gpu", "hub", {"model": "org/tiny"})
    assert gpu_hub["model"] == "org/tiny" and gpu_hub["served_model_name"] == "opt-125m"
    assert lab.settings("cpu", "tiny", {"model": "org/tiny"})["model"].startswith("tiny:")


def test_a_hub_model_missing_offline_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    import huggingface_hub.constants as constants
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(vllm.ModelUnavailable, match=r"'labgrade-test/absent'.*HF_HUB_CACHE") as exc:
        vllm.resolve_model("labgrade-test/absent")
    assert str(tmp_path) in str(exc.value)
