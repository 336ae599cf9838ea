"""The supervisor and the policy without a grading (fast lane): exit statuses pass through,
nothing outlives a SIGKILLed parent, limits apply, the view hides and shows what it should."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from labgrade import isolation

AS_ROOT = os.geteuid() == 0


def run(argv, iso=None, student=True, **kwargs):
    wrapped, env = isolation.wrap(iso, argv, env=dict(os.environ), student=student)
    return subprocess.run(wrapped, env=env, capture_output=True, text=True, timeout=60,
                          **kwargs)


def test_exit_status_and_signal_death_pass_through():
    assert run([sys.executable, "-c", "raise SystemExit(3)"]).returncode == 3
    killed = run([sys.executable, "-c", "import os, signal; os.kill(os.getpid(), 11)"])
    assert killed.returncode == -signal.SIGSEGV


def test_nothing_outlives_a_sigkilled_parent(tmp_path):
    """A middle process stands for the grading process: it starts a supervised service
    that daemonizes a grandchild, then is SIGKILLed. Both must go."""
    marker = f"{time.time_ns()}.4343"
    service = (f"import os, time\nif os.fork() == 0:\n    os.setsid()\n"
               f"    os.execvp('sleep', ['sleep', '{marker}'])\ntime.sleep(600)")
    wrapped, env = isolation.wrap(None, [sys.executable, "-c", service], env=dict(os.environ))
    parent = subprocess.Popen([sys.executable, "-c",
                               "import subprocess, sys, json, time\n"
                               f"subprocess.Popen({wrapped!r}, env={env!r})\ntime.sleep(600)"])
    try:
        deadline = time.monotonic() + 20
        while not _sleepers(marker) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _sleepers(marker), "the service never started"
        parent.kill()
        parent.wait()
        deadline = time.monotonic() + 10
        while _sleepers(marker) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _sleepers(marker) == []
    finally:
        for proc in _sleepers(marker):
            proc.kill()


def _sleepers(marker: str) -> list[psutil.Process]:
    return [p for p in psutil.process_iter(["cmdline"]) if marker in (p.info["cmdline"] or [])]


@pytest.mark.skipif(not AS_ROOT, reason="the user level needs root")
def test_user_level_hides_and_shows(tmp_path):
    course = tmp_path / "course"
    for folder in ("graders", "solutions/lab_x", "labs"):
        (course / folder).mkdir(parents=True)
    (course / "graders" / "secret.py").write_text("hidden")
    (course / "solutions" / "lab_x" / "mod.py").write_text("shown")
    tmp_path.chmod(0o755)
    Path(tmp_path.parent).chmod(0o755)  # pytest's base folder (0700): the bind still works
    iso = isolation.configure("user", course_root=course, report_root=tmp_path / "reports",
                              submissions=[course / "solutions" / "lab_x"])
    try:
        code = ("import os, sys\n"
                f"print(os.getuid(), sorted(os.listdir({str(course / 'graders')!r})),"
                f" open({str(course / 'solutions/lab_x/mod.py')!r}).read(),"
                f" os.environ['HOME'])")
        result = run([sys.executable, "-I", "-c", code], iso=iso)
    finally:
        isolation.deactivate()
    assert result.returncode == 0, result.stderr
    uid, rest = result.stdout.split(" ", 1)
    assert int(uid) == iso.uid != 0
    assert rest.strip() == "[] shown /tmp/home"


def test_limits_apply_and_grader_processes_are_not_confined():
    iso = isolation.Isolation("none", "test", limits={"nofile": 64, "nproc": 100000,
                                                      "core": 0, "fsize": 1 << 20})
    code = "import resource; print(resource.getrlimit(resource.RLIMIT_NOFILE)[0])"
    assert run([sys.executable, "-c", code], iso=iso).stdout.strip() == "64"
    assert run([sys.executable, "-c", code], iso=iso, student=False).stdout.strip() != "64"


@pytest.mark.skipif(not AS_ROOT, reason="the user level needs root")
def test_student_compile_caches_are_their_own_and_writable(tmp_path, monkeypatch):
    """vLLM/Inductor/Triton caches that point into labgrade's (hidden) cache are moved, for
    student code, to a folder of the sandbox user's: writable there, the grader's own
    compile cache out of reach."""
    for folder in (tmp_path.parent, tmp_path):
        Path(folder).chmod(0o755)
    cache = tmp_path / "cache"
    monkeypatch.setenv("LABGRADE_CACHE", str(cache))
    grader_cache = cache / "compile" / "torchinductor"
    grader_cache.mkdir(parents=True)
    (grader_cache / "graph.py").write_text("the grader's")
    course = tmp_path / "course"
    (course / "graders").mkdir(parents=True)
    iso = isolation.configure("user", course_root=course, report_root=tmp_path / "reports")
    try:
        code = ("import os\nd = os.environ['TORCHINDUCTOR_CACHE_DIR']\n"
                "open(os.path.join(d, 'mine.py'), 'w').write('x')\n"
                f"print(d, os.path.exists({str(grader_cache / 'graph.py')!r}))")
        wrapped, env = isolation.wrap(iso, [sys.executable, "-I", "-c", code],
                                      env={**os.environ,
                                           "TORCHINDUCTOR_CACHE_DIR": str(grader_cache)})
        result = subprocess.run(wrapped, env=env, capture_output=True, text=True, timeout=60)
    finally:
        isolation.deactivate()
    assert result.returncode == 0, result.stderr
    where, sees_graders = result.stdout.split()
    assert Path(where) == cache.resolve() / "compile" / f"student-{iso.uid}" / "torchinductor"
    assert sees_graders == "False"
    assert (Path(where) / "mine.py").read_text() == "x"
