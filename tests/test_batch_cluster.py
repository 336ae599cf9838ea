"""`labgrade batch --ray` past one machine: a Ray head and a separate worker node, each its
own `ray start` process (own temp dir); only the worker offers the custom resource the
gradings need. The driver runs from a folder the worker never sees (submissions travel
as tarballs) and gets the local pool's gradebook; a worker node killed mid-batch leaves
its gradings reported as crashed, none lost. Every process started here is stopped by pid
(the `ray start --block` processes, then anything still carrying this test's tag)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil
import pytest

from labgrade.runtime.process import free_port
from test_batch import make_submissions, read_gradebook, timed_items

pytest.importorskip("ray", reason="ray is not installed: add ray==2.60.0 and msgpack==1.2.4 "
                                  "to the lock for the Ray path")

COURSE = Path(__file__).parent / "data" / "course"
RAY = str(Path(sys.executable).with_name("ray"))
RESOURCE = "labgrade_grader"
# The throwaway cluster stays on loopback, each node with an address of its own: the head
# on 127.0.0.2, the worker on 127.0.0.3 (Ray replaces 127.0.0.1 itself with the machine's
# outward address). Its token auth is off: drivers started with an explicit address do not
# read ~/.ray/auth_token.
HEAD_IP, WORKER_IP = "127.0.0.2", "127.0.0.3"
RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}


def tagged(tag: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter():
        try:
            if f"LABGRADE_CLUSTER_TAG={tag}".encode() in Path(
                    f"/proc/{proc.pid}/environ").read_bytes():
                found.append(proc)
        except (OSError, psutil.Error):
            continue
    return found


def cmdline(proc: psutil.Process) -> list[str]:
    try:
        return proc.cmdline()
    except psutil.Error:
        return []


class Cluster:
    def __init__(self, base: Path, worker_env: dict[str, str]) -> None:
        self.tag = uuid.uuid4().hex[:8]
        self.port = free_port(HEAD_IP)
        self.address = f"{HEAD_IP}:{self.port}"
        # short temp dirs: Ray's unix sockets live there (path length limit)
        self.temps = [Path(f"/tmp/lgr-{self.tag}-{n}") for n in ("head", "worker")]
        self.head: subprocess.Popen | None = None
        self.worker: subprocess.Popen | None = None
        try:
            self._start(base, worker_env)
        except BaseException:
            self.stop()  # a cluster that did not come up leaves nothing behind either
            raise

    def _start(self, base: Path, worker_env: dict[str, str]) -> None:
        env = {**os.environ, **RAY_ENV, "LABGRADE_CLUSTER_TAG": self.tag}
        worker_dir = base / "worker-cwd"
        worker_dir.mkdir()
        self.head = subprocess.Popen(
            [RAY, "start", "--head", "--block", f"--node-ip-address={HEAD_IP}",
             f"--port={self.port}", "--num-cpus=0",
             "--num-gpus=0", f"--temp-dir={self.temps[0]}", "--include-dashboard=false",
             "--disable-usage-stats"], env=env, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True)
        self.wait_nodes(1)
        self.worker = subprocess.Popen(
            [RAY, "start", "--block", f"--node-ip-address={WORKER_IP}",
             f"--address={self.address}", "--num-cpus=2",
             "--num-gpus=0", f"--resources={json.dumps({RESOURCE: 2})}",
             f"--temp-dir={self.temps[1]}", "--disable-usage-stats"],
            env={**env, **worker_env}, cwd=worker_dir, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True)
        self.worker_node_id = self.wait_nodes(2)

    def nodes(self) -> list[dict]:
        code = ("import json, ray; ray.init(address=%r, logging_level='ERROR', "
                "log_to_driver=False); print(json.dumps([{'id': n['NodeID'], 'alive': "
                "n['Alive'], 'res': n['Resources']} for n in ray.nodes()]))" % self.address)
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              timeout=120, env={**os.environ, **RAY_ENV})
        return json.loads(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 else []

    def wait_nodes(self, count: int) -> str:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            alive = [n for n in self.nodes() if n["alive"]]
            if len(alive) >= count:
                return next((n["id"] for n in alive if RESOURCE in n["res"]), "")
            time.sleep(2)
        raise AssertionError(f"Ray cluster at {self.address} did not reach {count} nodes")

    def kill_worker_node(self) -> None:
        """SIGKILL the worker node's raylet (the node dies as a machine would)."""
        for child in psutil.Process(self.worker.pid).children(recursive=True):
            if "raylet" in child.name():
                child.kill()

    def stop(self) -> None:
        started = [p for p in (self.worker, self.head) if p is not None]
        for proc in started:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in started:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        time.sleep(1)
        for leftover in tagged(self.tag):  # only processes started for this cluster
            try:
                leftover.kill()
            except psutil.Error:
                pass
        for temp in self.temps:
            shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture
def cluster_factory(tmp_path):
    made: list[Cluster] = []

    def make(**worker_env: str) -> Cluster:
        made.append(Cluster(tmp_path, worker_env))
        return made[-1]

    yield make
    for cluster in made:
        cluster.stop()
        assert tagged(cluster.tag) == [], "processes of the Ray cluster outlived the test"


def run_batch(driver_dir: Path, subs: Path, out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "labgrade.cli", "batch", str(subs), "--lab", "lab_9_9",
         "--root", str(COURSE), "--out", str(out), *extra], cwd=driver_dir,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, **RAY_ENV})


def test_a_ray_cluster_gives_the_local_gradebook(tmp_path, cluster_factory):
    cluster = cluster_factory()
    driver = tmp_path / "driver"
    driver.mkdir()
    subs = make_submissions(driver)  # lives only under the driver's folder
    local = run_batch(driver, subs, driver / "local", "-j", "2")
    remote = run_batch(driver, subs, driver / "cluster", f"--ray={cluster.address}",
                       "--ray-resource", f"{RESOURCE}=1")
    local_log, remote_log = local.communicate(timeout=600)[0], remote.communicate(timeout=600)[0]
    assert local.returncode == 0, local_log[-3000:]
    assert remote.returncode == 0, remote_log[-3000:]
    summary = json.loads((driver / "cluster" / "batch.json").read_text())
    assert summary["backend"] == "ray"
    # every grading ran on the worker node, the one offering the resource
    assert {o["node_id"] for o in summary["outcomes"].values()} == {cluster.worker_node_id}
    rows = {d: read_gradebook(driver / d / "gradebook.csv") for d in ("local", "cluster")}
    fixed = ("name", "max_score", "outcome", "exit_code")
    assert [[r[k] for k in fixed] for r in rows["cluster"]] == [
        [r[k] for k in fixed] for r in rows["local"]]
    for row in rows["cluster"]:
        grades = [json.loads((driver / d / row["name"] / "lab_9_9" / "grade.json").read_text())
                  for d in ("cluster", "local")]
        timed = timed_items(*grades)
        assert [[(i["name"], i["status"], i["score"]) for i in g["items"]
                 if i["name"] not in timed] for g in grades][0] == [
            (i["name"], i["status"], i["score"]) for i in grades[1]["items"]
            if i["name"] not in timed]


def test_a_worker_node_killed_mid_batch_loses_no_grading(tmp_path, cluster_factory):
    cluster = cluster_factory(SELFTEST_SLEEP="600")  # slow() hangs: gradings stay running
    driver = tmp_path / "driver"
    driver.mkdir()
    subs = make_submissions(driver)
    batch = run_batch(driver, subs, driver / "cluster", f"--ray={cluster.address}",
                      "--ray-resource", f"{RESOURCE}=1")
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:  # until a grading runs on the worker node
        if any("--grade" in cmdline(p) for p in tagged(cluster.tag)):
            break
        time.sleep(1)
    else:
        batch.kill()
        pytest.fail("no grading started on the worker node")
    cluster.kill_worker_node()
    log = batch.communicate(timeout=600)[0]
    assert batch.returncode == 1, log[-3000:]
    rows = read_gradebook(driver / "cluster" / "gradebook.csv")
    assert [r["name"] for r in rows] == ["alice", "bob", "carol", "dave"]
    assert all(r["outcome"] == "crashed" for r in rows), rows
    summary = json.loads((driver / "cluster" / "batch.json").read_text())
    assert all(o["detail"] for o in summary["outcomes"].values())
