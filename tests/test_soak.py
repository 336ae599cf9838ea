"""Soak: 20 consecutive grading runs, some interrupted with SIGINT mid-run (while a worker
runs student code and a grader-owned service is up), then nothing of ours is left:
no process, no listening port, no /dev/shm segment. Two of the runs are real lab_2_1
gradings interrupted while the vLLM engine and server start."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

COURSE = Path(__file__).parent / "data" / "course"
ROOT = Path(__file__).resolve().parents[1]


def _ours(tag: str) -> list[psutil.Process]:
    """Processes carrying this soak's tag in their environment (inherited by everything the
    grading runs start), so other work on the machine is never counted or touched."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get("LABGRADE_SOAK_TAG") == tag:
                found.append(proc)
        except psutil.Error:
            continue
    return found


def _our_shm() -> list[str]:
    return [p for p in os.listdir("/dev/shm") if p.startswith("labgrade_")]


def _listening_ports(procs: list[psutil.Process]) -> list[int]:
    ports = []
    for proc in procs:
        try:
            ports += [c.laddr.port for c in proc.net_connections() if c.status == "LISTEN"]
        except psutil.Error:
            pass
    return ports


def _run(cwd: Path, args: list[str], report_dir: Path, interrupt_after: float | None,
         env: dict) -> dict:
    cmd = [sys.executable, "-m", "pytest", *args, "--grade", "--report-dir", str(report_dir),
           "-p", "no:cacheprovider"]
    env = {**env, "SELFTEST_SLEEP": "20" if interrupt_after else "0"}
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    lab = args[0].split("/")[-1]
    report = report_dir / lab / "grade.json"
    if interrupt_after is not None:
        deadline = time.monotonic() + 120
        while not report.exists() and time.monotonic() < deadline:  # mid-run, not mid-startup
            time.sleep(0.1)
        time.sleep(interrupt_after)
        proc.send_signal(signal.SIGINT)
    proc.wait(timeout=300)
    return json.loads(report.read_text())


@pytest.mark.slow
def test_twenty_runs_leave_nothing_behind(tmp_path):
    tag = f"soak-{os.getpid()}-{time.time_ns()}"
    env = {**os.environ, "SELFTEST_CONFTEST_MARK": str(tmp_path / "mark"),
           "LABGRADE_SOAK_TAG": tag}
    plan = []
    for i in range(18):
        plan.append((COURSE, ["labs/lab_9_9", "--solution", "--profile", "cpu"],
                     1.0 + (i % 3) if i % 2 else None))
    plan.append((ROOT, ["labs/lab_2_1", "--solution", "--profile", "cpu"], 8.0))
    plan.append((ROOT, ["labs/lab_2_1", "--solution", "--profile", "cpu"], 25.0))
    interrupted = 0
    for i, (cwd, args, interrupt_after) in enumerate(plan):
        grade = _run(cwd, args, tmp_path / f"run{i}", interrupt_after, env)
        assert grade["items"], "every run writes its report"
        interrupted += bool(grade["interrupted"])
    assert interrupted >= 10
    time.sleep(1.0)
    leftovers = _ours(tag)
    assert leftovers == [], [" ".join(p.cmdline()) for p in leftovers]
    assert _listening_ports(leftovers) == []
    assert _our_shm() == []
