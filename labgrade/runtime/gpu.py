"""GPU memory, read with nvidia-smi (the grading process never imports torch).

Engines run in worker or server processes; when one ends, its memory must come back before
the next engine starts. `wait_for_release` polls until used memory is back near a baseline
and fails with a message that names what still holds memory.

Sizes in bytes: vLLM takes GPU memory as a fraction of the card (`gpu_memory_utilization`),
so the same fraction is 28 GiB on an H200 and 3 GiB on a T4. A lab's gpu profile gives
those settings as memory instead ("2 GiB"); `size_for_card` turns them into this card's
fraction when grading starts, so every engine takes the same bytes on any card.

`python -m labgrade.runtime.gpu hold --leave 12GiB` holds all but 12 GiB of the card until
killed: grading beside it proves a lab fits a card of that size.
"""

from __future__ import annotations

import argparse
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass

GiB = 1 << 30
MiB = 1 << 20
# settings that vLLM reads as a fraction of the card: lab.toml may give them as memory
FRACTION_KEYS = ("gpu_memory_utilization", "gpu_memory_budget")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(GiB|MiB)\s*$")


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


def parse_size(text: str) -> int:
    """'2 GiB' / '512 MiB' -> bytes (ValueError naming the text otherwise)."""
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a memory size: write e.g. '2 GiB' or '512 MiB'")
    return int(float(match.group(1)) * (GiB if match.group(2) == "GiB" else MiB))


def fraction_of(size: int, total: int) -> float:
    """`size` bytes as a fraction of a card of `total` bytes, rounded up to 1e-4 (vLLM
    takes 0 < fraction <= 1; a card smaller than `size` cannot host it)."""
    if size > total:
        raise ValueError(f"{size / GiB:.1f} GiB does not fit this GPU ({total / GiB:.1f} GiB)")
    return min(1.0, -(-size * 10_000 // total) / 10_000)


def size_for_card(settings: Mapping, total: int) -> dict:
    """A copy of `settings` whose FRACTION_KEYS given as memory ('2 GiB'), also inside
    nested tables (engine_kwargs), are this card's fraction of that memory."""
    out = {}
    for key, value in settings.items():
        if isinstance(value, Mapping):
            value = size_for_card(value, total)
        elif key in FRACTION_KEYS and isinstance(value, str):
            value = fraction_of(parse_size(value), total)
        out[key] = value
    return out


def hold(leave: int) -> None:
    """Allocate all but `leave` bytes of GPU 0's free memory and keep it until SIGTERM or
    SIGINT: a small card, emulated on a large one."""
    import torch

    free, _ = torch.cuda.mem_get_info()
    size = free - leave
    if size <= 0:
        raise SystemExit(f"only {free / GiB:.1f} GiB free: nothing to hold")
    block = torch.empty(size, dtype=torch.uint8, device="cuda")  # noqa: F841 - held
    torch.cuda.synchronize()
    print(f"holding {size / GiB:.1f} GiB; {leave / GiB:.1f} GiB left free", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(SystemExit(0)))
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m labgrade.runtime.gpu")
    sub = parser.add_subparsers(dest="command", required=True)
    held = sub.add_parser("hold", help="hold all but --leave of the GPU's free memory")
    held.add_argument("--leave", type=parse_size, required=True, help="e.g. 12GiB")
    args = parser.parse_args(argv)
    if args.command == "hold":
        hold(args.leave)


if __name__ == "__main__":
    main()
