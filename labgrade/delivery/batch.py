"""`labgrade batch SUBMISSIONS_DIR --lab ID`: grade many submissions, in parallel, isolated.

Each submission (a sub-folder of SUBMISSIONS_DIR, laid out like `labs/<id>` or holding
`labs/<id>/` or `<id>/`) is graded by its own process,

    python -m pytest labs/<id> --grade --submission <dir> --report-dir OUT/<name>

run from the course root, so nothing is shared between two submissions but the machine.
Each leaves OUT/<name>/<id>/ (grade.json, results.json, report.html, ...) and
OUT/<name>/pytest.log; OUT/gradebook.csv has one row per submission, sorted by name.

Parallelism: on one machine a pool of N such processes, N (default) limited by cores and by
memory: a lab's per-run memory estimate (lab.toml `[resources] memory_gib`, else its
profile's `rss_budget_bytes`, else 1 GiB) against the machine's available memory. Beyond one machine,
`--ray` runs each grading as a Ray task requesting the same CPUs, memory and (gpu profile)
GPUs; every node needs the course checkout (and its .venv) at the same path.
"""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from labgrade.delivery import DeliveryError
from labgrade.labs import Lab, LabConfigError, load_lab

GiB = 1 << 30
STATUSES = ("passed", "partial", "failed", "error", "ungradable", "out_of_scope", "not_run")
FIELDS = ("name", "score", "max_score", "percent", *STATUSES, "wall_seconds", "outcome",
          "exit_code")
DEFAULT_MEMORY = 1 * GiB
MEMORY_HEADROOM = 0.85  # use at most this share of the available memory


@dataclass(frozen=True)
class Plan:
    lab_id: str
    course_root: Path
    profile: str
    memory_bytes: int        # estimated peak memory of one grading run
    cpus: float              # cores one run keeps busy
    gpus: float              # GPUs one run needs (gpu profile)
    timeout: float           # seconds per submission


@dataclass
class Outcome:
    name: str
    submission: Path
    wall_seconds: float = 0.0
    exit_code: int | None = None
    outcome: str = "ok"          # ok | timeout | crashed | no-result
    grade: dict | None = None
    report_dir: Path | None = None
    detail: str = ""
    extra: dict = field(default_factory=dict)

    def row(self) -> dict:
        counts = {s: 0 for s in STATUSES}
        score = max_score = ""
        if self.grade:
            for item in self.grade.get("items", []):
                if item.get("status") in counts:
                    counts[item["status"]] += 1
            score, max_score = self.grade.get("score", ""), self.grade.get("max_score", "")
        percent = (f"{100 * score / max_score:.1f}" if isinstance(score, (int, float))
                   and isinstance(max_score, (int, float)) and max_score else "")
        return {"name": self.name, "score": _g(score), "max_score": _g(max_score),
                "percent": percent, **counts, "wall_seconds": f"{self.wall_seconds:.1f}",
                "outcome": self.outcome,
                "exit_code": "" if self.exit_code is None else self.exit_code}


def _g(value) -> str:
    return f"{value:g}" if isinstance(value, (int, float)) else str(value)


# ------------------------------------------------------------------------ planning
def lab_meta(course_root: Path, lab_id: str) -> Lab:
    """The lab's graders/<id>/lab.toml, read by labgrade.labs (the one reader)."""
    try:
        return load_lab(Path(course_root), lab_id)
    except LabConfigError as exc:
        raise DeliveryError(str(exc)) from None


def memory_estimate(lab: Lab, profile: str) -> int:
    """Peak memory of one grading run of this lab, in bytes: [resources] memory_gib, else
    the cpu profile's rss_budget_bytes, else 1 GiB."""
    if lab.resources.memory_gib is not None:
        return int(lab.resources.memory_gib * GiB)
    budget = lab.settings(profile).get("rss_budget_bytes")
    if isinstance(budget, (int, float)) and profile == "cpu":
        return int(budget)
    return DEFAULT_MEMORY


def available_memory() -> int:
    try:
        import psutil
        return int(psutil.virtual_memory().available)
    except Exception:  # noqa: BLE001
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def default_jobs(plan: Plan, *, memory: int | None = None, cpus: int | None = None) -> int:
    """How many gradings fit at once: by cores and by memory, at least one."""
    memory = available_memory() if memory is None else memory
    cpus = cpu_count() if cpus is None else cpus
    by_cpu = max(1, int(cpus // max(plan.cpus, 1e-9)))
    by_memory = max(1, int(memory * MEMORY_HEADROOM // max(plan.memory_bytes, 1)))
    return max(1, min(by_cpu, by_memory))


def make_plan(course_root: Path, lab_id: str, *, profile: str = "cpu",
              timeout: float | None = None, memory_gib: float | None = None,
              cpus: float | None = None, gpus: float | None = None) -> Plan:
    lab = lab_meta(course_root, lab_id)
    memory = int(memory_gib * GiB) if memory_gib else memory_estimate(lab, profile)
    if cpus is None:
        cpus = lab.resources.cpus or 1.0
    if gpus is None:
        gpus = 1.0 if profile == "gpu" else 0.0
    if timeout is None:
        timeout = lab.resources.minutes * 60 if lab.resources.minutes else 1800.0
    return Plan(lab_id, Path(course_root).resolve(), profile, memory, cpus, gpus, timeout)


def discover(submissions_dir: Path) -> list[tuple[str, Path]]:
    root = Path(submissions_dir)
    if not root.is_dir():
        raise DeliveryError(f"{root} is not a folder of submissions")
    found = [(p.name, p.resolve()) for p in sorted(root.iterdir())
             if p.is_dir() and not p.name.startswith((".", "_"))]
    if not found:
        raise DeliveryError(f"{root} holds no submission folders")
    return found


def submission_dir_for(path: Path, lab_id: str) -> Path:
    for candidate in (path / "labs" / lab_id, path / lab_id):
        if candidate.is_dir():
            return candidate
    return path


# ------------------------------------------------------------------ one grading
def grade_command(plan: Plan, submission: Path, report_dir: Path,
                  python: str = sys.executable) -> list[str]:
    return [python, "-m", "pytest", f"labs/{plan.lab_id}", "--grade", "--submission",
            str(submission), "--report-dir", str(report_dir), "--profile", plan.profile,
            "-p", "no:cacheprovider", "-q"]


_LIVE: dict[int, subprocess.Popen] = {}
_LIVE_LOCK = threading.Lock()


def run_one(plan: Plan, name: str, submission: Path, report_dir: Path) -> Outcome:
    """Grade one submission in its own process group; its reports go to report_dir."""
    report_dir.mkdir(parents=True, exist_ok=True)
    log_path = report_dir / "pytest.log"
    outcome = Outcome(name, submission, report_dir=report_dir)
    cmd = grade_command(plan, submission_dir_for(submission, plan.lab_id), report_dir)
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    started = time.monotonic()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=plan.course_root, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        with _LIVE_LOCK:
            _LIVE[proc.pid] = proc
        try:
            outcome.exit_code = proc.wait(timeout=plan.timeout)
        except subprocess.TimeoutExpired:
            outcome.outcome = "timeout"
            _stop_group(proc)  # SIGTERM first: the plugin still writes its reports
            outcome.exit_code = proc.returncode
        finally:
            with _LIVE_LOCK:
                _LIVE.pop(proc.pid, None)
    outcome.wall_seconds = time.monotonic() - started
    grade_path = report_dir / plan.lab_id / "grade.json"
    try:
        outcome.grade = json.loads(grade_path.read_text())
    except (OSError, ValueError):
        outcome.grade = None
    if outcome.outcome == "ok":
        # pytest exits 0 (all passed) or 1 (some items failed) on a normal grading
        if outcome.grade is None:
            outcome.outcome = "no-result"
        elif outcome.grade.get("interrupted") or outcome.exit_code not in (0, 1):
            outcome.outcome = "crashed"
    if outcome.outcome != "ok":
        outcome.detail = log_path.read_bytes()[-1500:].decode("utf-8", "replace")
    return outcome


def _stop_group(proc: subprocess.Popen, grace: float = 20.0) -> None:
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def stop_all() -> None:
    with _LIVE_LOCK:
        procs = list(_LIVE.values())
    for proc in procs:
        _stop_group(proc, grace=5.0)


# ------------------------------------------------------------------ the gradebook
def write_gradebook(outcomes: list[Outcome], out: Path) -> Path:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    for outcome in sorted(outcomes, key=lambda o: o.name):
        writer.writerow(outcome.row())
    path = out / "gradebook.csv"
    path.write_text(buffer.getvalue())
    return path


# --------------------------------------------------------------------- backends
def run_local(plan: Plan, submissions: list[tuple[str, Path]], out: Path, jobs: int,
              progress=None) -> list[Outcome]:
    outcomes: list[Outcome] = []
    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="grade") as pool:
        futures = [pool.submit(run_one, plan, name, path, out / name)
                   for name, path in submissions]
        try:
            for future in futures:
                outcome = future.result()
                outcomes.append(outcome)
                if progress:
                    progress(outcome)
        except BaseException:
            for future in futures:
                future.cancel()
            stop_all()
            raise
    return outcomes


def _tar_dir(path: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(path, arcname=".", filter=_strip_owner)
    return buffer.getvalue()


def _strip_owner(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    if info.name.split("/")[-1] in ("__pycache__",) or info.name.endswith(".pyc"):
        return None
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _untar(data: bytes, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        tar.extractall(dest, filter="data")


def _ray_grade(plan_dict: dict, name: str, submission_tar: bytes) -> dict:
    """Body of the Ray task: unpack the submission on the node, grade it, pack reports."""
    import tempfile

    import ray
    plan = Plan(**{**plan_dict, "course_root": Path(plan_dict["course_root"])})
    node_id = ray.get_runtime_context().get_node_id()
    if not (plan.course_root / "graders" / plan.lab_id).is_dir():
        return {"name": name, "node_id": node_id,
                "error": f"this node has no course checkout at {plan.course_root}"}
    with tempfile.TemporaryDirectory(prefix=f"labgrade-{name}-") as tmp:
        tmp_path = Path(tmp)
        submission = tmp_path / "submission"
        _untar(submission_tar, submission)
        report_dir = tmp_path / "reports"
        outcome = run_one(plan, name, submission, report_dir)
        return {"name": name, "wall_seconds": outcome.wall_seconds,
                "exit_code": outcome.exit_code, "outcome": outcome.outcome,
                "detail": outcome.detail, "reports": _tar_dir(report_dir),
                "node": os.uname().nodename, "node_id": node_id}


def _able_nodes(ray, needs: dict[str, float]) -> int:
    """How many live nodes could ever run a task needing `needs` (total resources)."""
    able = 0
    for node in ray.nodes():
        total = node.get("Resources", {})
        if node.get("Alive") and all(total.get(k, 0) >= v for k, v in needs.items() if v):
            able += 1
    return able


def run_ray(plan: Plan, submissions: list[tuple[str, Path]], out: Path, *,
            address: str | None = None, resources: dict[str, float] | None = None,
            progress=None, poll_seconds: float = 5.0) -> list[Outcome]:
    """Each submission a Ray task needing the plan's CPUs, memory, GPUs and `resources`
    (custom node resources, e.g. {"grader": 1} to keep gradings on the nodes that offer
    it). A task whose node dies is reported as crashed (never retried, never lost); when
    no live node can run the remaining tasks any more, they are reported as crashed too."""
    try:
        import ray
    except ImportError:
        raise DeliveryError("--ray needs the `ray` package in this environment "
                            "(pip install 'labgrade[ray]', or ray==2.60.0); without --ray "
                            "batch grades on this machine with a local process pool") from None
    started_here = False
    if not ray.is_initialized():
        kwargs = {"address": address} if address else {"include_dashboard": False}
        ray.init(log_to_driver=False, logging_level="ERROR", **kwargs)
        started_here = True
    resources = dict(resources or {})
    needs = {"CPU": plan.cpus, "GPU": plan.gpus, "memory": plan.memory_bytes, **resources}
    try:
        task = ray.remote(_ray_grade).options(
            num_cpus=plan.cpus, num_gpus=plan.gpus, memory=plan.memory_bytes,
            resources=resources or None, max_retries=0)
        plan_dict = {**plan.__dict__, "course_root": str(plan.course_root)}
        pending = {task.remote(plan_dict, name, _tar_dir(path)): (name, path)
                   for name, path in submissions}
        outcomes: list[Outcome] = []

        def report(outcome: Outcome) -> None:
            outcomes.append(outcome)
            if progress:
                progress(outcome)

        while pending:
            done, _ = ray.wait(list(pending), num_returns=1, timeout=poll_seconds)
            if not done:
                if _able_nodes(ray, needs) == 0:
                    for ref, (name, path) in list(pending.items()):
                        ray.cancel(ref, force=True)
                        report(Outcome(name, path, report_dir=out / name, outcome="crashed",
                                       detail=f"no live Ray node offers {needs}: not graded"))
                    pending.clear()
                continue
            ref = done[0]
            name, path = pending.pop(ref)
            outcome = Outcome(name, path, report_dir=out / name)
            try:
                reply = ray.get(ref)
            except Exception as exc:  # noqa: BLE001 - a lost node or a task error
                outcome.outcome, outcome.detail = "crashed", f"ray: {exc}"[:1500]
            else:
                outcome.extra["node_id"] = reply.get("node_id", "")
                if "error" in reply:
                    outcome.outcome, outcome.detail = "crashed", reply["error"]
                else:
                    _untar(reply["reports"], out / name)
                    outcome.wall_seconds = reply["wall_seconds"]
                    outcome.exit_code = reply["exit_code"]
                    outcome.outcome = reply["outcome"]
                    outcome.detail = reply["detail"]
                    outcome.extra["node"] = reply["node"]
                    try:
                        outcome.grade = json.loads(
                            (out / name / plan.lab_id / "grade.json").read_text())
                    except (OSError, ValueError):
                        outcome.grade = None
            report(outcome)
        return outcomes
    finally:
        if started_here:
            ray.shutdown()


def batch(submissions_dir: Path, plan: Plan, out: Path, *, jobs: int | None = None,
          ray_address: str | None = None, use_ray: bool = False,
          ray_resources: dict[str, float] | None = None, progress=None
          ) -> tuple[list[Outcome], Path, float]:
    submissions = discover(submissions_dir)
    names = [n for n, _ in submissions]
    if len(set(names)) != len(names):
        raise DeliveryError("two submissions share a name")
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    if use_ray:
        outcomes = run_ray(plan, submissions, out, address=ray_address,
                           resources=ray_resources, progress=progress)
    else:
        outcomes = run_local(plan, submissions, out, jobs or default_jobs(plan),
                             progress=progress)
    wall = time.monotonic() - started
    path = write_gradebook(outcomes, out)
    summary = {"lab": plan.lab_id, "profile": plan.profile, "submissions": len(outcomes),
               "backend": "ray" if use_ray else "local",
               "jobs": None if use_ray else (jobs or default_jobs(plan)),
               "memory_estimate_bytes": plan.memory_bytes, "wall_seconds": round(wall, 1),
               "outcomes": {o.name: {"outcome": o.outcome, **o.extra, "detail": o.detail[-300:]}
                            for o in sorted(outcomes, key=lambda o: o.name)}}
    (out / "batch.json").write_text(json.dumps(summary, indent=2) + "\n")
    return outcomes, path, wall

