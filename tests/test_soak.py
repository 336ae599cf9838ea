"""Soak: 20 consecutive grading runs, some interrupted with SIGINT mid-run (while a worker
runs student code and a grader-owned service is up), then nothing of ours is left:
no process, no listening port, no /dev/shm segment. Two of the runs are real lab_2_1
gradings interrupted while the vLLM engine and server start."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from conftest import COURSE, ROOT, shm_segments_of, start_grading, tagged_processes

SOAK_TAG = "LABGRADE_SOAK_TAG"  # in the environment of everything the soak's gradings start


def _listening_ports(procs: list[psutil.Process]) -> set[int]:
    ports = set()
    for proc in procs:
        try:
            ports |= {c.laddr.port for c in proc.net_connections() if c.status == "LISTEN"}
        except psutil.Error:
            pass
    return ports


class PortWatch(threading.Thread):
    """Every port a process carrying the soak's tag listens on, sampled while the runs go."""

    def __init__(self, tag: str) -> None:
        super().__init__(daemon=True)
        self.tag, self.ports, self.done = tag, set(), threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.5):
            self.ports |= _listening_ports(tagged_processes(self.tag, SOAK_TAG))


def soak_leftovers(tag: str, ports: set[int], pids: set[int]) -> list[str]:
    """What the soak's runs left: processes carrying its tag, ports they listened on that
    still listen, shm segments named after the gradings it started (never anyone else's)."""
    left = [f"process {p.pid}: {' '.join(p.cmdline())[:200]}"
            for p in tagged_processes(tag, SOAK_TAG)]
    left += [f"port {c.laddr.port} still listening (pid {c.pid})"
             for c in psutil.net_connections("tcp")
             if c.status == "LISTEN" and c.laddr.port in ports]
    left += [f"shm /dev/shm/{name}" for name in shm_segments_of(pids)]
    return left


@pytest.mark.slow
def test_twenty_runs_leave_nothing_behind(tmp_path):
    tag = f"soak-{os.getpid()}-{time.time_ns()}"
    env = {"SELFTEST_CONFTEST_MARK": str(tmp_path / "mark"), SOAK_TAG: tag}
    plan = []
    for i in range(18):
        plan.append((COURSE, "lab_9_9", 1.0 + (i % 3) if i % 2 else None))
    plan.append((ROOT, "lab_2_1", 8.0))
    plan.append((ROOT, "lab_2_1", 25.0))
    watch = PortWatch(tag)
    watch.start()
    interrupted, pids = 0, set()
    try:
        for i, (course, lab, interrupt_after) in enumerate(plan):
            grading = start_grading(
                lab, "--solution", "--profile", "cpu", report_dir=tmp_path / f"run{i}",
                course=course, env={**env, "SELFTEST_SLEEP": "20" if interrupt_after else "0"})
            pids.add(grading.proc.pid)
            if interrupt_after is not None:
                grading.wait_until_grading()  # mid-run, not mid-startup
                time.sleep(interrupt_after)
                grading.interrupt()
            grade, _ = grading.finish(timeout=300)  # each run: nothing of it is left
            assert grade["items"], "every run writes its report"
            interrupted += bool(grade["interrupted"])
    finally:
        watch.done.set()
        watch.join()
    assert interrupted >= 10
    assert watch.ports, "no grader-owned service was ever seen listening: nothing was checked"
    assert soak_leftovers(tag, watch.ports, pids) == []


PLANTED = """
import socket, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen()
print(s.getsockname()[1], flush=True)
time.sleep(60)
"""


def test_the_leftover_check_sees_what_it_must():
    """The soak's final check fails on a process, a port and a segment of its own (and
    counts nobody else's)."""
    tag = f"soak-selftest-{os.getpid()}-{time.time_ns()}"
    proc = subprocess.Popen([sys.executable, "-c", PLANTED], text=True,
                            stdout=subprocess.PIPE, env={**os.environ, SOAK_TAG: tag})
    segment = Path("/dev/shm") / f"labgrade_soaktest_{proc.pid}_x"
    other = Path("/dev/shm") / f"labgrade_soaktest_{proc.pid + 1}_x"
    try:
        port = int(proc.stdout.readline())
        segment.write_bytes(b"")
        other.write_bytes(b"")
        left = soak_leftovers(tag, {port}, {proc.pid})
        assert len(left) == 3, left
        assert any(f"port {port}" in x for x in left) and any(segment.name in x for x in left)
        assert not any(other.name in x for x in left)
    finally:
        proc.kill()
        proc.wait()
        segment.unlink(missing_ok=True)
        other.unlink(missing_ok=True)
    deadline = time.monotonic() + 10
    while soak_leftovers(tag, {port}, {proc.pid}) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert soak_leftovers(tag, {port}, {proc.pid}) == []
