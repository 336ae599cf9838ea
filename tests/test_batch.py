"""`labgrade batch`: many submissions of lab_9_9, each graded by its own process, one
report folder each and a gradebook; memory-aware default parallelism; the same gradebook
from a local Ray instance."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from labgrade import cli
from labgrade.delivery import batch

ROOT = Path(__file__).resolve().parents[1]
COURSE = Path(__file__).parent / "data" / "course"
GiB = 1 << 30


def make_submissions(base: Path) -> Path:
    subs = base / "submissions"
    solution = COURSE / "solutions" / "lab_9_9" / "mod.py"
    starter = COURSE / "labs" / "lab_9_9" / "mod.py"
    for name, rel, src in (("alice", "mod.py", solution), ("bob", "mod.py", starter),
                           ("carol", "labs/lab_9_9/mod.py", solution)):
        (subs / name / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, subs / name / rel)
    (subs / "dave").mkdir()
    (subs / "dave" / "mod.py").write_text("def add(a, b)\n")  # a syntax error
    (subs / ".hidden").mkdir()  # not a submission
    return subs


def read_gradebook(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def timed_items(*grades: dict) -> set[str]:
    """Items scored on a wall-clock measurement (lab_9_9's test_speed): on a loaded machine
    they may differ between two gradings of the same code, so comparisons leave them out."""
    return {i["name"] for g in grades for i in g["items"]
            if any(k.endswith("_seconds") for k in i.get("measured", {}))}


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("batch")
    subs = make_submissions(base)
    out = base / "out"
    code = cli.main(["batch", str(subs), "--lab", "lab_9_9", "--root", str(COURSE), "-j", "2",
                     "--out", str(out)])
    return subs, out, code


def test_default_parallelism_respects_memory(tmp_path):
    plan = batch.make_plan(ROOT, "lab_2_1")  # reads lab.toml only; nothing is graded
    assert plan.memory_bytes == 6 * GiB and plan.cpus == 2  # its [resources]
    assert batch.default_jobs(plan, memory=24 * GiB, cpus=2) == 1   # this machine: by cores
    assert batch.default_jobs(plan, memory=24 * GiB, cpus=16) == 3  # 24 GiB x 0.85 / 6 GiB
    assert batch.default_jobs(plan, memory=2 * GiB, cpus=16) == 1   # never below one
    tiny = batch.make_plan(COURSE, "lab_9_9")
    assert tiny.memory_bytes == 1 * GiB and batch.default_jobs(tiny, memory=24 * GiB,
                                                                  cpus=2) == 2
    course = tmp_path / "course"
    shutil.copytree(COURSE / "graders", course / "graders")
    toml = course / "graders" / "lab_9_9" / "lab.toml"
    toml.write_text(toml.read_text() + "\n[resources]\nmemory_gib = 6\ncpus = 2\n")
    heavy = batch.make_plan(course, "lab_9_9")
    assert heavy.memory_bytes == 6 * GiB and heavy.cpus == 2
    assert batch.default_jobs(heavy, memory=24 * GiB, cpus=16) == 3


def test_batch_grades_each_submission_in_isolation(local_run):
    subs, out, code = local_run
    assert code == 0
    rows = read_gradebook(out / "gradebook.csv")
    assert [r["name"] for r in rows] == ["alice", "bob", "carol", "dave"]
    for row in rows:
        grade = json.loads((out / row["name"] / "lab_9_9" / "grade.json").read_text())
        assert (out / row["name"] / "lab_9_9" / "report.html").exists()
        assert (out / row["name"] / "pytest.log").exists()
        assert float(row["score"]) == grade["score"]
        assert float(row["max_score"]) == grade["max_score"]
        for status in batch.STATUSES:
            assert int(row[status]) == sum(i["status"] == status for i in grade["items"])
        assert row["outcome"] == "ok" and float(row["wall_seconds"]) > 0
        # each run graded its own folder (carol's nested labs/lab_9_9 was found)
        assert Path(grade["submission"]).is_relative_to(subs / row["name"])
    grades = {r["name"]: json.loads((out / r["name"] / "lab_9_9" / "grade.json").read_text())
              for r in rows}
    timed = timed_items(*grades.values())
    untimed = {n: sum(i["score"] for i in g["items"] if i["name"] not in timed)
               for n, g in grades.items()}
    assert untimed["alice"] == untimed["carol"] > 0 and float(rows[1]["score"]) == 0
    assert untimed["bob"] == untimed["dave"] == 0
    summary = json.loads((out / "batch.json").read_text())
    assert summary["jobs"] == 2 and summary["submissions"] == 4


def test_a_hanging_submission_is_stopped_and_reported(tmp_path, monkeypatch):
    subs = tmp_path / "subs"
    (subs / "hang").mkdir(parents=True)
    shutil.copy(COURSE / "solutions" / "lab_9_9" / "mod.py", subs / "hang")
    monkeypatch.setenv("SELFTEST_SLEEP", "600")  # slow() never returns in time
    out = tmp_path / "out"
    code = cli.main(["batch", str(subs), "--lab", "lab_9_9", "--root", str(COURSE),
                     "--timeout", "6", "--out", str(out)])
    assert code == 1
    (row,) = read_gradebook(out / "gradebook.csv")
    assert row["outcome"] == "timeout"
    grade = json.loads((out / "hang" / "lab_9_9" / "grade.json").read_text())
    assert grade["interrupted"] and float(row["score"]) == grade["score"]


def test_ray_gives_the_same_gradebook(local_run, tmp_path):
    pytest.importorskip("ray", reason="ray is not installed: add ray==2.60.0 and "
                                      "msgpack==1.2.4 to the lock for the Ray path")
    subs, local_out, _ = local_run
    out = tmp_path / "ray-out"
    proc = subprocess.run([sys.executable, "-m", "labgrade.cli", "batch", str(subs), "--lab",
                           "lab_9_9", "--root", str(COURSE), "--out", str(out), "--ray"],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    ray_rows, local_rows = (read_gradebook(d / "gradebook.csv") for d in (out, local_out))
    fixed = ("name", "max_score", "outcome", "exit_code")
    assert [[r[k] for k in fixed] for r in ray_rows] == [[r[k] for k in fixed]
                                                         for r in local_rows]
    for row in ray_rows:  # item by item, leaving out wall-clock-scored items
        ray_grade, local_grade = (json.loads((d / row["name"] / "lab_9_9" / "grade.json")
                                             .read_text()) for d in (out, local_out))
        assert float(row["score"]) == ray_grade["score"]
        timed = timed_items(ray_grade, local_grade)
        assert [(i["name"], i["status"], i["score"]) for i in ray_grade["items"]
                if i["name"] not in timed] == [(i["name"], i["status"], i["score"])
                                               for i in local_grade["items"]
                                               if i["name"] not in timed]
    assert json.loads((out / "batch.json").read_text())["backend"] == "ray"
    assert (out / "alice" / "lab_9_9" / "report.html").exists()
