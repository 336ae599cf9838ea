"""Helpers for the framework's own tests: run a real grading in a subprocess, prove it left
nothing behind, and sort the tests into the fast lane and the slow one."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from grading_slots import Slot, slots_dir, wants_machine_alone
from labgrade.overlay import find_overlay, materialise

ROOT = Path(__file__).resolve().parents[1]
COURSE = ROOT / "tests" / "data" / "course"  # the miniature course (lab_9_9, no engines)

# tests/data holds a miniature course (with attack submissions that carry their own
# conftest.py files): data for the tests, never collected as tests.
collect_ignore = ["data"]

MODIFIED = "grading environment (labgrade) was modified during this run"
GRADING_TAG = "LABGRADE_TEST_GRADING"  # in the environment of everything a grading starts
FAST_LANE = "LABGRADE_FAST_LANE"       # set by `make test-fast`: no grading may start


# ------------------------------------------------------------------ the two lanes
# `make test-fast` runs `-m "not slow"`. Slow: whatever starts an engine, a server or a
# grading run. A module joins the fast lane only when listed here (a new module is slow
# until someone checks it starts none); in a listed module, mark such a test
# `@pytest.mark.slow`, use a fixture named in SLOW_FIXTURES, or name it in SLOW_TESTS.
FAST_MODULES = {"test_audit_units", "test_bench", "test_deploy", "test_deploy_lab_2_4", "test_export_limits",
                "test_gpu_memory", "test_html_report", "test_isolation_unit", "test_kit", "test_labs", "test_lint",
                "test_monitoring", "test_notebook", "test_overlay", "test_perf_analyzer", "test_process",
                "test_prom", "test_release", "test_scoring", "test_soak", "test_triton_2_5_checks",
                "test_triton_runtime", "test_worker"}
SLOW_FIXTURES = {"grade_lab", "graded", "local_run", "bundle"}
SLOW_TESTS = {"test_release.py::test_classroom_result_reaches_the_reporter",
              "test_release.py::test_release_all_one_failing_lab_keeps_the_others_points"}


def pytest_configure(config: pytest.Config) -> None:
    slots_dir()  # before xdist starts its workers, so that they all share one


def pytest_unconfigure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):  # the controller (or a run without xdist)
        shutil.rmtree(slots_dir(), ignore_errors=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if (item.path.stem not in FAST_MODULES
                or SLOW_FIXTURES & set(getattr(item, "fixturenames", ()))
                or f"{item.path.name}::{item.originalname}" in SLOW_TESTS):
            item.add_marker(pytest.mark.slow)


# ------------------------------------------------------------------ a grading run
@dataclass
class Grading:
    """`pytest labs/<lab> --grade ...` started by start_grading(), still running."""
    lab: str
    cmd: list[str]
    proc: subprocess.Popen
    report_dir: Path
    tag: str
    markers: tuple[str, ...]  # folders of this run: in a leftover's command line or cwd
    stdout: Path
    stderr: Path
    slot: Slot  # this run's share of the machine (grading_slots), released by finish()

    @property
    def grade_path(self) -> Path:
        return self.report_dir / self.lab / "grade.json"

    def wait_until_grading(self, timeout: float = 120) -> None:
        """Until grading proper has begun (the report exists: pytest has collected)."""
        deadline = time.monotonic() + timeout
        while not self.grade_path.exists() and time.monotonic() < deadline \
                and self.proc.poll() is None:
            time.sleep(0.1)

    def interrupt(self) -> None:
        """SIGINT, as a Ctrl-C in a terminal."""
        self.proc.send_signal(signal.SIGINT)

    def finish(self, timeout: float = 900,
               check_left: bool = True) -> tuple[dict, subprocess.CompletedProcess]:
        """Wait for the run (SIGTERM, an orderly stop, once it outlives `timeout`), prove it
        left nothing behind, and return grade.json and the run's output."""
        try:
            self._wait(timeout)
        finally:
            self.slot.release()
        if check_left:
            assert_nothing_left(self)
        assert self.grade_path.exists(), f"no grade.json\n{self._tail()}"
        out, err = (p.read_text(errors="replace") for p in (self.stdout, self.stderr))
        completed = subprocess.CompletedProcess(self.cmd, self.proc.returncode, out, err)
        return json.loads(self.grade_path.read_text()), completed

    def _wait(self, timeout: float) -> None:
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.terminate()  # the plugin turns SIGTERM into an orderly stop
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            raise AssertionError(f"grading still running after {timeout:g} s, stopped with "
                                 f"SIGTERM: {' '.join(self.cmd)}\n{self._tail()}") from None

    def _tail(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:]
                         for p in (self.stdout, self.stderr))


def start_grading(lab: str, *extra: str, report_dir: Path, course: Path = ROOT,
                  cwd: Path | None = None, env: dict | None = None,
                  alone: bool | None = None) -> Grading:
    """Start `pytest labs/<lab> --grade --report-dir <report_dir> <extra>` in the course at
    `course` (cwd: the course root unless given), with SIGINT at its default even when this
    suite runs with SIGINT ignored (a background job). A `--submission` that names a
    known-wrong fixture (fixtures/<id>/wrong_*: only the files it changes) is graded as the
    solution with that overlay on top, materialised beside the report folder.
    `alone`: the run needs the machine to itself (its timing items are scored; default: a
    whole --solution grading); otherwise it may share it with one other (grading_slots)."""
    if os.environ.get(FAST_LANE):
        pytest.fail("this test starts a grading: mark it @pytest.mark.slow (make test-fast "
                    "runs no gradings)")
    cwd = Path(cwd or course)
    report_dir = Path(report_dir)
    report_dir.parent.mkdir(parents=True, exist_ok=True)
    args, materialised = _materialise_overlays(list(extra), course, cwd, report_dir)
    cmd = [sys.executable, "-m", "pytest", f"labs/{lab}", "--grade", "--report-dir",
           str(report_dir), "-p", "no:cacheprovider", *args]
    tag = uuid.uuid4().hex
    slot = Slot(exclusive=wants_machine_alone(extra) if alone is None else alone)
    stdout, stderr = (report_dir.parent / f"{report_dir.name}-{s}.txt" for s in ("stdout",
                                                                                 "stderr"))
    try:
        with open(stdout, "w") as out, open(stderr, "w") as err:
            proc = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=err,
                                    env={**os.environ, **(env or {}), GRADING_TAG: tag},
                                    preexec_fn=_default_sigint)
    except BaseException:
        slot.release()
        raise
    return Grading(lab, cmd, proc, report_dir, tag,
                   tuple(str(p) for p in (report_dir, *materialised)), stdout, stderr, slot)


def run_grade(lab: str, *extra: str, report_dir: Path, timeout: float = 900,
              env: dict | None = None, course: Path = ROOT, cwd: Path | None = None,
              check_left: bool = True,
              alone: bool | None = None) -> tuple[dict, subprocess.CompletedProcess]:
    """A whole grading (see start_grading): grade.json and the run (stdout and stderr),
    after proof that it left nothing behind (check_left). One retry when an edit of
    labgrade/ during the run voided it (a shared checkout)."""
    for attempt in range(2):
        grading = start_grading(lab, *extra, report_dir=report_dir, course=course, cwd=cwd,
                                env=env, alone=alone)
        grade, proc = grading.finish(timeout, check_left=check_left)
        if attempt == 0 and grade["items"] and \
                all(MODIFIED in i["message"] for i in grade["items"]):
            continue
        return grade, proc
    raise AssertionError("unreachable")


def _default_sigint() -> None:
    # runs in the child between fork and exec: an ignored SIGINT would survive exec
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _materialise_overlays(args: list[str], course: Path, cwd: Path,
                          report_dir: Path) -> tuple[list[str], list[Path]]:
    made = []
    for i, arg in enumerate(args):
        if arg == "--submission" and i + 1 < len(args):
            at, prefix, value = i + 1, "", args[i + 1]
        elif arg.startswith("--submission="):
            at, prefix, value = i, "--submission=", arg.split("=", 1)[1]
        else:
            continue
        found = find_overlay(cwd / value, course)
        if found is None:
            continue
        out = report_dir.parent / f"{report_dir.name}-submission" / found.name
        if out.exists():  # the same report folder graded again (a retry, a second run)
            shutil.rmtree(out)
        made.append(materialise(found, out))
        args[at] = prefix + str(out)
    return args, made


# ------------------------------------------------------------------ nothing left behind
def tagged_processes(tag: str, key: str = GRADING_TAG) -> list[psutil.Process]:
    """Live processes whose environment carries `key=tag` (inherited by everything a
    grading starts), so other work on the machine is never counted."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get(key) == tag and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except psutil.Error:
            continue
    return found


def shm_segments_of(pids: set[int] | list[int]) -> list[str]:
    """/dev/shm segments labgrade named after one of `pids` (labgrade_<what>_<pid>_...)."""
    wanted = {str(p) for p in pids}
    pattern = re.compile(r"^labgrade_[a-z]+_(\d+)_")
    found = []
    for name in sorted(os.listdir("/dev/shm")):
        match = pattern.match(name)
        if match and match.group(1) in wanted:
            found.append(name)
    return found


def leftovers(grading: Grading) -> list[str]:
    """What the run left: its processes (tagged, or naming its folders) and shm segments."""
    left = [f"shm /dev/shm/{name}" for name in shm_segments_of({grading.proc.pid})]
    seen = set()
    for proc in tagged_processes(grading.tag):
        seen.add(proc.pid)
        left.append(f"process {proc.pid}: {_describe(proc)}")
    for proc in psutil.process_iter(["pid", "cmdline", "cwd"]):
        try:
            text = " ".join(proc.info["cmdline"] or []) + " " + (proc.info["cwd"] or "")
            if proc.pid not in seen and any(m in text for m in grading.markers) \
                    and proc.status() != psutil.STATUS_ZOMBIE:
                left.append(f"process {proc.pid}: {text[:200]}")
        except psutil.Error:
            continue
    return left


def assert_nothing_left(grading: Grading, grace: float = 10.0) -> None:
    """No process and no shm segment of this run survives it (a killed process may take a
    moment to go: `grace` seconds)."""
    deadline = time.monotonic() + grace
    while (left := leftovers(grading)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not left, f"left behind by {' '.join(grading.cmd)}: {left}"


def _describe(proc: psutil.Process) -> str:
    try:
        return " ".join(proc.cmdline())[:200]
    except psutil.Error:
        return "?"


# ------------------------------------------------------------------ small helpers
def plotted_curves(lab_reports: Path) -> set[tuple[str, str]]:
    """(item, key) of every curve plot in `<lab reports>/report.html`."""
    page = (lab_reports / "report.html").read_text()
    return set(re.findall(r'<svg class="plot" data-plot="curve" data-item="([^"]*)" '
                          r'data-key="([^"]*)"', page))


def items_by_name(grade: dict) -> dict[str, dict]:
    return {item["name"]: item for item in grade["items"]}


def verdict(item: dict) -> str:
    """One item as an assertion message: name, status, score and the whole message (a
    dict in an assertion is cut short, and the message is what explains a failure)."""
    return f"{item['name']}: {item['status']} ({item['score']:g}) -- {item.get('message', '')}"


@pytest.fixture
def grade_lab(tmp_path):
    def _grade(lab: str, *extra: str, **kwargs):
        return run_grade(lab, *extra, report_dir=tmp_path / "reports", **kwargs)
    return _grade
