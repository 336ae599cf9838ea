"""GPU memory, read with nvidia-smi (the grading process never imports torch).

Engines run in worker or server processes; when one ends, its memory must come back before
the next engine starts. `wait_for_release` polls until used memory is back near a baseline
and fails with a message that names what still holds memory.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass

GiB = 1 << 30


@dataclass(frozen=True)
class GpuMemory:
    used: int
    total: int

    @property
    def free(self) -> int:
        return self.total - self.used


def memory(index: int = 0) -> GpuMemory | None:
    """Used/total bytes of one GPU, or None without an NVIDIA GPU."""
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        out = subprocess.run(["nvidia-smi", f"--id={index}",
                              "--query-gpu=memory.used,memory.total",
                              "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=20, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    used_mib, total_mib = (int(x) for x in out.strip().splitlines()[0].split(","))
    return GpuMemory(used=used_mib << 20, total=total_mib << 20)


class GpuMemoryNotReleased(RuntimeError):
    pass


def wait_for_release(baseline_used: int, *, slack: int = GiB, timeout: float = 60.0,
                     what: str = "the previous engine") -> GpuMemory | None:
    """Block until used GPU memory is within `slack` of `baseline_used`."""
    deadline = time.monotonic() + timeout
    while True:
        now = memory()
        if now is None or now.used <= baseline_used + slack:
            return now
        if time.monotonic() > deadline:
            raise GpuMemoryNotReleased(
                f"GPU memory did not come back after {what} ended: {now.used / GiB:.1f} GiB "
                f"in use, {baseline_used / GiB:.1f} GiB before it started (waited "
                f"{timeout:.0f} s). Another process may hold the GPU: check nvidia-smi.")
        time.sleep(0.5)
