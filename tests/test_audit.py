"""`labgrade audit` and `labgrade calibrate` end to end on a miniature lab
(tests/data/audit_course, lab_9_7: three items, two known-wrongs, no engine)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from conftest import FAST_LANE, ROOT
from grading_slots import Slot

COURSE = ROOT / "tests" / "data" / "audit_course"


def labgrade(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    if os.environ.get(FAST_LANE):
        pytest.fail("this test starts gradings: it belongs to the slow lane")
    slot = Slot(exclusive=True)  # audit runs two gradings at once: the machine alone
    try:
        return subprocess.run([sys.executable, "-m", "labgrade.cli", *args, "--root",
                               str(COURSE)], capture_output=True, text=True, timeout=600,
                              env={**os.environ, **(env or {})})
    finally:
        slot.release()


@pytest.fixture(scope="module")
def audited(tmp_path_factory) -> tuple[dict, subprocess.CompletedProcess, Path]:
    out = tmp_path_factory.mktemp("audit")
    proc = labgrade("audit", "lab_9_7", "--runs", "2", "-j", "2", "--only-items",
                    "--out", str(out))
    assert (out / "audit.json").is_file(), proc.stdout + proc.stderr
    return json.loads((out / "audit.json").read_text()), proc, out


def test_matrix_and_known_wrongs(audited):
    data, proc, _ = audited
    assert proc.returncode == 1  # survivors and an item no known-wrong fails
    assert [w["lost"] for w in data["wrongs"]] == [["test_kv"], ["test_oldest"]]
    assert data["starter"]["score"] == 0
    assert data["items_no_wrong_fails"] == ["test_ratio"]
    assert "items no known-wrong fails: test_ratio" in proc.stdout
    for item in ("test_kv", "test_oldest", "test_ratio"):
        assert item in proc.stdout
    assert all(info["spread"] == 0 for info in data["items"].values())


def test_mutation_score_survivors_and_equivalents(audited):
    data, proc, _ = audited
    assert data["mutants_total"] == 21
    assert [e["id"] for e in data["equivalent"]] == ["mod.py:10:NumberReplacer:0",
                                                     "mod.py:2:SwapArguments:0"]
    # describe() is called by no item: its mutants are listed apart, not counted
    assert {m["id"] for m in data["not_exercised"]} == {
        "mod.py:14:ReplaceBinaryOperator_Add_Sub:0", "mod.py:14:ConstantReturn:0"}
    assert data["mutation_score"] == {"killed": 15, "graded": 17, "fraction": 0.8824}
    # no hidden case has zero layers, so max(..., 0) -> max(..., 1) goes unnoticed
    survivors = {m["id"] for m in data["mutants"] if not m["killed"]}
    assert survivors == {"mod.py:2:NumberReplacer:2", "mod.py:2:NumberReplacer:3"}
    assert "mutation score: 15/17 killed (88.2 %)" in proc.stdout
    assert "+    return max(2 * layers * kv_heads * head_dim * dtype_bytes, 1)" in proc.stdout
    assert "2 mutants not graded: no item of this run calls describe" in proc.stdout


def test_only_items_runs_the_callers(audited):
    data, _, _ = audited
    graded = {m["id"]: m["graded_items"] for m in data["mutants"]}
    assert graded["mod.py:2:ConstantReturn:0"] == ["test_kv"]
    assert graded["mod.py:6:ConstantReturn:0"] == ["test_oldest"]
    kv = next(m for m in data["mutants"] if m["id"] == "mod.py:2:ConstantReturn:0")
    assert set(kv["items"]) == {"test_kv"}


def test_curve_headroom_and_html(audited):
    data, _, out = audited
    (curve,) = data["curves"]
    assert curve["key"] == "speedup" and curve["median"] == 2.5
    assert curve["headroom_full_sigmas"] is None  # no spread across runs: reported as such
    page = (out / "audit.html").read_text()
    assert "item &times; submission" in page and "wrong_oldest_second" in page


def test_calibrate_writes_an_overlay_graders_use(tmp_path):
    hosts = tmp_path / "hosts"
    proc = labgrade("calibrate", "lab_9_7", "--profile", "cpu", "--runs", "2",
                    "--fraction", "0.8", "--margin", "0.2", "--baseline", "speedup=1.0", "--work", str(tmp_path / "work"),
                    env={"LABGRADE_HOST_OVERLAYS": str(hosts)})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    overlay = hosts / "lab_9_7.cpu.toml"
    table = tomllib.loads(overlay.read_text())
    assert table["settings"] == {"ratio_full_at": 2.0, "ratio_zero_at": 1.2}
    assert table["measurements"]["speedup"]["values"] == [2.5, 2.5]
    report = tmp_path / "reports"
    subprocess.run([sys.executable, "-m", "pytest", "labs/lab_9_7", "--grade", "--solution",
                    "--profile", "cpu", "--report-dir", str(report), "-k", "test_ratio"],
                   cwd=COURSE, capture_output=True, timeout=300,
                   env={**os.environ, "LABGRADE_HOST_OVERLAYS": str(hosts)})
    grade = json.loads((report / "lab_9_7" / "grade.json").read_text())
    assert grade["environment"]["host_overlay"] == str(overlay)
    (item,) = [i for i in grade["items"] if i["name"] == "test_ratio"]
    assert item["measured"]["curve:speedup"] == {"zero_at": 1.2, "full_at": 2.0}


def test_interrupted_audit_leaves_no_grading(tmp_path):
    """SIGTERM (or Ctrl-C) stops the gradings in flight: none outlives the audit."""
    import signal
    import time

    import psutil

    if os.environ.get(FAST_LANE):
        pytest.fail("this test starts gradings: it belongs to the slow lane")
    out = tmp_path / "audit"
    slot = Slot(exclusive=True)
    try:
        proc = subprocess.Popen([sys.executable, "-m", "labgrade.cli", "audit", "lab_9_7",
                                 "--runs", "2", "-j", "2", "--out", str(out), "--root",
                                 str(COURSE)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)

        def gradings(marker: str = "--grade") -> list[psutil.Process]:
            found = []
            for p in psutil.process_iter(["cmdline"]):
                line = " ".join(p.info["cmdline"] or ())
                if str(out) in line and marker in line:
                    found.append(p)
            return found

        deadline = time.monotonic() + 60
        while not gradings() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert gradings(), "no grading started"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        slot.release()
    assert proc.returncode == 130, err
    assert b"running gradings were stopped" in err
    time.sleep(0.5)
    assert not gradings(""), "a grading or one of its workers outlived the audit"
