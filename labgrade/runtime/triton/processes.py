"""What a server leaves behind: its processes and its POSIX shared memory.

Each Python model instance runs in a stub process (same process group as the server) and
shares a 1 MiB-and-growing POSIX shared-memory region with it, named
`/dev/shm/<prefix><uuid4>`; Triton's default prefix is `triton_python_backend_shm_region_`.
Every `TritonServer` passes its own prefix, `labgrade_triton_<grader pid>_<random hex>_`,
so that `stop()` removes exactly its own leftovers (a stub killed by SIGKILL leaks its
region) and `sweep_stale_shm()` can remove regions of grading processes that died.
"""

from __future__ import annotations

import glob
import os
import re
import signal
from collections.abc import Iterable
from pathlib import Path

SHM_DIR = Path("/dev/shm")
SHM_PREFIX_ROOT = "labgrade_triton_"
DEFAULT_TRITON_SHM_PREFIX = "triton_python_backend_shm_region_"


def _proc_stat(pid: int) -> tuple[str, int, int, int] | None:
    """(state, ppid, pgrp, starttime) from /proc/<pid>/stat, or None if gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rfind(")") + 2:].split()
    return fields[0], int(fields[1]), int(fields[2]), int(fields[19])


def _all_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def process_group_pids(pgid: int, *, include_zombies: bool = False) -> list[int]:
    """Processes whose process group is `pgid` (zombies left out unless asked)."""
    found = []
    for pid in _all_pids():
        stat = _proc_stat(pid)
        if stat and stat[2] == pgid and (include_zombies or stat[0] != "Z"):
            found.append(pid)
    return sorted(found)


def descendant_pids(root: int) -> list[tuple[int, int]]:
    """(pid, starttime) of every live descendant of `root`."""
    children: dict[int, list[tuple[int, int]]] = {}
    for pid in _all_pids():
        stat = _proc_stat(pid)
        if stat and stat[0] != "Z":
            children.setdefault(stat[1], []).append((pid, stat[3]))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child[0])
    return found


def shm_segments(prefix: str) -> list[Path]:
    """POSIX shared-memory segments under /dev/shm whose name starts with `prefix`."""
    if not prefix or "/" in prefix:
        raise ValueError(f"bad shm prefix {prefix!r}")
    return sorted(Path(p) for p in glob.glob(str(SHM_DIR / (glob.escape(prefix) + "*"))))


def sweep_stale_shm() -> list[Path]:
    """Remove labgrade Triton shm segments of grading processes that no longer exist.

    Names are `labgrade_triton_<grader pid>_<hex>_<uuid>`; a segment is removed only if
    that pid is gone, so servers of live graders (and other users' Triton) are untouched.
    """
    removed = []
    for path in SHM_DIR.glob(SHM_PREFIX_ROOT + "*"):
        match = re.match(re.escape(SHM_PREFIX_ROOT) + r"(\d+)_[0-9a-f]+_", path.name)
        if match and _proc_stat(int(match.group(1))) is None:
            try:
                path.unlink()
                removed.append(path)
            except OSError:
                pass
    return removed


def kill_leftovers(processes: Iterable[tuple[int, int]]) -> None:
    """SIGKILL each (pid, starttime) from `descendant_pids` that still runs as that same
    process (a stub that left the server's process group, e.g. by setsid in student code)."""
    for pid, started in processes:
        stat = _proc_stat(pid)
        if stat and stat[3] == started and stat[0] != "Z":
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
