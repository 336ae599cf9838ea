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


class MemoryLedger:
    """GPU memory around every process a lab's graders start (workers, servers).

    Before a process starts while none of the lab's processes runs, memory must be back near
    the lab's baseline (what was in use before grading it): an engine that did not give its
    memory back fails the next start with a clear message instead of an out-of-memory crash
    deep inside vLLM. Every start and stop is recorded for the reports.
    """

    def __init__(self, baseline: GpuMemory, *, slack: int = GiB, timeout: float = 60.0) -> None:
        self.baseline = baseline
        self.slack = slack
        self.timeout = timeout
        self.live: set[str] = set()
        self.stopping: set[str] = set()
        self.unreleased: str | None = None  # why memory did not come back after the last stop
        self.events: list[dict] = [_event("lab start", "", baseline)]

    def before_start(self, name: str) -> None:
        if self.live:
            now = memory()
        else:
            now = wait_for_release(self.baseline.used, slack=self.slack, timeout=self.timeout,
                                   what="the lab's previous process")
        self.events.append(_event("before start", name, now))
        self.live.add(name)

    def before_stop(self, name: str) -> None:
        """Record what is in use while the process still runs (its engine's share)."""
        if name in self.live and name not in self.stopping:
            self.stopping.add(name)
            self.events.append(_event("before stop", name, memory()))

    def after_stop(self, name: str) -> None:
        if name not in self.live:
            return  # stopped before (kill after close) or started before this lab
        self.live.discard(name)
        self.stopping.discard(name)
        self.unreleased = None
        if self.live:
            now = memory()
        else:
            try:
                now = wait_for_release(self.baseline.used, slack=self.slack,
                                       timeout=self.timeout, what=name)
            except GpuMemoryNotReleased as exc:
                self.unreleased = str(exc)  # the next start waits again, or finish() raises
                now = memory()
        self.events.append(_event("after stop", name, now))

    def finish(self) -> None:
        """At the lab's end, every process stopped: fail if the last one's memory never
        came back (after_stop already waited for it)."""
        if self.unreleased:
            raise GpuMemoryNotReleased(self.unreleased)


def _event(event: str, name: str, now: GpuMemory | None) -> dict:
    record = {"event": event, "process": name, "at": round(time.time(), 3)}
    if now is not None:
        record.update(used_gib=round(now.used / GiB, 3), free_gib=round(now.free / GiB, 3))
    return record


_ACTIVE: MemoryLedger | None = None


def activate(ledger: MemoryLedger | None) -> None:
    """Make `ledger` the one process starts and stops report to (None: none)."""
    global _ACTIVE
    _ACTIVE = ledger


def before_start(name: str) -> None:
    if _ACTIVE is not None:
        _ACTIVE.before_start(name)


def before_stop(name: str) -> None:
    if _ACTIVE is not None:
        _ACTIVE.before_stop(name)


def after_stop(name: str) -> None:
    if _ACTIVE is not None:
        _ACTIVE.after_stop(name)
