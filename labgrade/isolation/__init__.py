"""Least privilege for student code: one policy for every process that runs it.

The two spawn sites — `labgrade.submission.Worker` and `labgrade.runtime.process.
ManagedProcess` (the student's servers and apps, a tritonserver serving student models) —
ask `wrap()` for the command line when they run student code. The grading process chose
the level once (`configure`, from `--isolation` / `$LABGRADE_ISOLATION`, default auto):

    user   as root: a dedicated unprivileged user (`labgrade-sandbox`, created on demand)
           in a private mount namespace — tmpfs over the graders, solutions, fixtures, the
           reports, labgrade's cache (reference answers) and the grader's HOME; the venvs,
           interpreters, tiny models, the submission and the run folder bound back
           read-only; a size-capped private /tmp, /var/tmp, /dev/shm (HOME and TMPDIR live
           there). Another uid cannot signal the grading process or read its /proc.
    bwrap  not root, unprivileged user namespaces available: the same view through
           bubblewrap, plus its own PID namespace and /proc (the grading process is out of
           sight), same uid.
    none   neither is possible: student code runs as the grader's user (the reason is
           recorded); limits and the supervisor still apply.

At every level each process runs under `launch.py`, a supervisor that applies resource
limits (processes, open files, file size, no core), keeps daemonized children below it and
kills them all when the grading process dies, even by SIGKILL. Memory is not limited by an
rlimit: vLLM and torch reserve far more address space than they use (RLIMIT_AS breaks
them); the grader's item budgets and Gradescope's container limit bound it.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

LEVELS = ("user", "bwrap", "none")
CHOICES = ("auto", *LEVELS)
ENV_VAR = "LABGRADE_ISOLATION"
SANDBOX_USER = "labgrade-sandbox"
LAUNCHER = Path(__file__).resolve().with_name("launch.py")
SCRATCH_DIRS = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock")  # world-writable: made private
SCRATCH_SIZE = os.environ.get("LABGRADE_SANDBOX_SCRATCH", "2g")
HOME_IN_SANDBOX = "/tmp/home"


def default_limits(uid: int) -> dict[str, int]:
    """rlimits for student processes running as `uid`. NPROC counts every process *and
    thread* of the uid, those of other gradings on the host (and, below level user, the
    grader's own) included: the cap sits that far above what the uid already runs (else
    setuid to a busy sandbox uid fails with EAGAIN)."""
    nproc = int(os.environ.get("LABGRADE_SANDBOX_NPROC", "2048")) + _threads_of(uid)
    return {"nproc": nproc, "nofile": 8192, "core": 0,
            "fsize": int(float(os.environ.get("LABGRADE_SANDBOX_FSIZE_GB", "4")) * (1 << 30))}


def _threads_of(uid: int) -> int:
    count = 0
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.stat(f"/proc/{name}").st_uid == uid:
                    count += len(os.listdir(f"/proc/{name}/task"))
            except OSError:
                continue
    return count


@dataclass(frozen=True)
class Isolation:
    """The level in force for this grading run, why, and what it hides and shows."""
    level: str
    reason: str
    hidden: tuple[str, ...] = ()
    readable: tuple[str, ...] = ()
    uid: int | None = None
    gid: int | None = None
    limits: dict = field(default_factory=dict)

    def describe(self) -> dict:
        """For grade.json's environment."""
        return {"level": self.level, "reason": self.reason,
                "user": SANDBOX_USER if self.level == "user" else None,
                "hidden": list(self.hidden), "limits": dict(self.limits)}

    def view_ops(self, writable: Sequence[str] = ()) -> list[list]:
        """Mount operations, parents before children: scratch tmpfs, tmpfs over hidden
        paths, read-only binds of what must stay visible, writable binds."""
        ops: list[tuple[int, int, list]] = []
        for path in SCRATCH_DIRS:
            if os.path.isdir(path):
                ops.append((_depth(path), 0, ["scratch", path, SCRATCH_SIZE]))
        for path in filter(os.path.isdir, self.hidden):
            ops.append((_depth(path), 1, ["tmpfs", path, "1m"]))
        for path in self.readable:
            if os.path.exists(path):
                ops.append((_depth(path), 2, ["ro", path]))
        for path in writable:
            ops.append((_depth(path), 3, ["rw", str(Path(path).resolve())]))
        kept: list[list] = []
        for _, _, op in sorted(ops, key=lambda o: (o[0], o[1])):
            cover = next((k for k in reversed(kept) if _under(op[1], k[1])), None)
            if op[0] == "tmpfs" and cover is not None and cover[0] in ("tmpfs", "scratch"):
                continue  # already out of sight
            kept.append(op)
        return kept


def _under(path: str, parent: str) -> bool:
    return path != parent and Path(path).is_relative_to(parent)


def _depth(path: str) -> int:
    return len(Path(path).parts)


_ACTIVE: Isolation | None = None


def active() -> Isolation | None:
    """The level configured for this grading process (None outside a grading)."""
    return _ACTIVE


def configure(choice: str, *, course_root: Path, report_root: Path,
              submissions: Iterable[Path] = (), run_dirs: Iterable[Path] = ()) -> Isolation:
    """Choose the level (auto: user as root, else bwrap, else none) and make it active.
    Hidden from student code: the course's graders/, solutions/, fixtures/, `report_root`,
    labgrade's cache and the grader's HOME; shown read-only: `submissions`, `run_dirs`
    (logs, the staged model repository), the course root, interpreters, venvs, models."""
    global _ACTIVE
    if choice not in CHOICES:
        raise ValueError(f"isolation must be one of {', '.join(CHOICES)}, got {choice!r}")
    hidden, readable = _paths(Path(course_root), Path(report_root),
                              [*submissions, *run_dirs])
    _ACTIVE = _choose(choice, hidden, readable)
    return _ACTIVE


def deactivate() -> None:
    global _ACTIVE
    _ACTIVE = None


def _paths(course_root: Path, report_root: Path,
           shown: Iterable[Path]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    from labgrade.runtime.tinymodels import cache_root  # lazy: no torch at import
    course_root = course_root.resolve()
    cache = cache_root().resolve()
    hidden = {str(course_root / d) for d in ("graders", "solutions", "fixtures")}
    hidden |= {str(report_root.resolve()), str(cache), str(Path.home().resolve())}
    readable = {str(course_root), str(cache / "models"), str(cache / "triton"),
                str(LAUNCHER.parent.parent),  # the labgrade package (the workers import it)
                str(Path(sys.prefix).resolve()), str(Path(sys.base_prefix).resolve()),
                str(Path(sys.executable).resolve().parent.parent)}
    readable |= {str(Path(p).resolve()) for p in shown}
    readable |= _triton_roots() | _installed_labgrade()
    hf = Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface"))
    if hf.is_dir():
        readable.add(str(hf.resolve()))
    return tuple(sorted(hidden)), tuple(sorted(readable))


def _installed_labgrade() -> set[str]:
    """The labgrade package that the interpreter imports when started the sandbox's way
    (`-I`: an editable install points at its checkout, which may lie under /tmp, private in
    the sandbox) — that package folder only, never the checkout's graders or solutions."""
    try:
        found = subprocess.run([sys.executable, "-I", "-c", "import labgrade; "
                                "print(labgrade.__path__[0])"], capture_output=True,
                               text=True, timeout=60, cwd="/")
    except (OSError, subprocess.TimeoutExpired):
        return set()
    where = found.stdout.strip()
    return {str(Path(where).resolve())} if found.returncode == 0 and where else set()


def _triton_roots() -> set[str]:
    """The Triton venv and the interpreter it was made from (its pyvenv.cfg `home`)."""
    from labgrade.runtime.triton.distribution import default_triton_venv
    roots: set[str] = set()
    try:
        venv = Path(default_triton_venv()).resolve()
    except Exception:  # noqa: BLE001 - no Triton here: nothing to show
        return roots
    roots.add(str(venv))
    cfg = venv / "pyvenv.cfg"
    if cfg.is_file():
        for line in cfg.read_text().splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "home" and value.strip():
                roots.add(str(Path(value.strip()).resolve().parent))
    return roots


def _choose(choice: str, hidden: tuple[str, ...], readable: tuple[str, ...]) -> Isolation:
    tried: list[str] = []
    order = ("user", "bwrap") if choice == "auto" else (choice,)
    for level in order:
        if level == "none":
            break
        iso, problem = _try(level, hidden, readable)
        if iso is not None:
            if tried:  # why a stronger level was not used (grade.json, console)
                iso = Isolation(iso.level, f"{iso.reason} ({'; '.join(tried)})", iso.hidden,
                                iso.readable, iso.uid, iso.gid, iso.limits)
            return iso
        tried.append(f"{level}: {problem}")
        if choice != "auto":
            raise RuntimeError(f"isolation level {level!r} is not available here: {problem}")
    reason = ("chosen with --isolation none" if choice == "none"
              else "; ".join(tried) or "no sandbox available")
    return Isolation("none", reason, limits=default_limits(os.getuid()))


def _try(level: str, hidden, readable) -> tuple[Isolation | None, str]:
    if level == "user":
        if os.geteuid() != 0:
            return None, "needs root (the grader runs as uid %d)" % os.geteuid()
        try:
            uid, gid = sandbox_user()
        except OSError as exc:
            return None, str(exc)
        from labgrade.runtime.tinymodels import cache_root
        for shown in ("models", "triton"):  # tiny models, the Triton backend folder
            _open_to_all(cache_root().resolve() / shown)
        iso = Isolation("user", f"student code runs as {SANDBOX_USER} (uid {uid}) in a "
                        "private mount namespace", hidden, readable, uid, gid,
                        default_limits(uid))
    else:
        if shutil.which("bwrap") is None:
            return None, "bubblewrap (bwrap) is not installed"
        iso = Isolation("bwrap", "bubblewrap: graders and the grader's home hidden, own "
                        "PID namespace", hidden, readable, limits=default_limits(os.getuid()))
    problem = _probe(iso)
    return (iso, "") if problem is None else (None, problem)


def _open_to_all(root: Path) -> None:
    """The tiny models are no secret, but their folders may have been made 0700 (mkdtemp
    then rename): readable by the sandbox's user, as the interpreters are."""
    if not root.is_dir():
        return
    for dirpath, dirnames, filenames in os.walk(root):
        for path, bits in [(dirpath, 0o555),
                           *((os.path.join(dirpath, n), 0o444) for n in filenames)]:
            try:
                os.chmod(path, os.stat(path).st_mode | bits)
            except FileNotFoundError:  # another grading's temporary file, renamed meanwhile
                continue


def sandbox_user() -> tuple[int, int]:
    """uid and gid of the dedicated user, created on first use (as root)."""
    try:
        entry = pwd.getpwnam(SANDBOX_USER)
        return entry.pw_uid, entry.pw_gid
    except KeyError:
        pass
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    result = subprocess.run([useradd, "--system", "--user-group", "--no-create-home",
                             "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin",
                             SANDBOX_USER], capture_output=True, text=True)
    if result.returncode != 0 and result.returncode != 9:  # 9: created meanwhile
        raise OSError(f"could not create the user {SANDBOX_USER}: {result.stderr.strip()}")
    entry = pwd.getpwnam(SANDBOX_USER)
    return entry.pw_uid, entry.pw_gid


def _probe(iso: Isolation) -> str | None:
    """Run the interpreter through the sandbox once: None if it works, else why not."""
    argv, env = wrap(iso, [sys.executable, "-I", "-c", "import labgrade"],
                     env=dict(os.environ), cwd=str(Path(LAUNCHER).parent))
    try:
        result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    if result.returncode != 0:
        return (result.stderr.strip().splitlines() or [f"exit code {result.returncode}"])[-1]
    return None


def wrap(iso: Isolation | None, argv: Sequence[str], *, env: Mapping[str, str],
         cwd: str | None = None, writable: Sequence[str | Path] = (),
         student: bool = True) -> tuple[list[str], dict[str, str]]:
    """The command line and environment that run `argv` under the supervisor: confined by
    `iso` (the active level when None) when `student`; a grader-owned process (`student`
    False, or no level configured) only gets the supervision (it dies with the grader)."""
    iso = iso if iso is not None else _ACTIVE
    argv = [str(a) for a in argv]
    child_env = dict(env)
    if iso is None or not student:
        spec = {"cwd": str(cwd) if cwd else None}
        return [sys.executable, "-I", "-S", str(LAUNCHER), json.dumps(spec), "--",
                *argv], child_env
    child_env, caches = _student_caches(iso, child_env)
    writable = [str(Path(w).resolve()) for w in [*writable, *caches]]
    for path in writable:  # a bind (user, bwrap) needs its source; none: the student's folder
        Path(path).mkdir(parents=True, exist_ok=True)
    spec: dict = {"rlimits": iso.limits, "cwd": str(cwd) if cwd else None}
    if iso.level == "user":
        for path in writable:
            _give(path, iso.uid, iso.gid)
        child_env.update(HOME=HOME_IN_SANDBOX, TMPDIR="/tmp", USER=SANDBOX_USER,
                         LOGNAME=SANDBOX_USER)
        spec.update(uid=iso.uid, gid=iso.gid, view=iso.view_ops(writable),
                    make_dirs=[HOME_IN_SANDBOX])
    elif iso.level == "bwrap":
        argv = [*_bwrap_args(iso, writable, cwd), "--", *argv]
        child_env.update(HOME=HOME_IN_SANDBOX, TMPDIR="/tmp")
    launcher = [sys.executable, "-I", "-S", str(LAUNCHER), json.dumps(spec), "--", *argv]
    return launcher, child_env  # the supervisor hands its environment on unchanged


COMPILE_CACHE_VARS = ("VLLM_CACHE_ROOT", "TORCHINDUCTOR_CACHE_DIR", "TRITON_CACHE_DIR")


def _student_caches(iso: Isolation, env: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """Compile caches (labgrade.runtime.vllm.engine_caches) that point into labgrade's
    cache, moved for student code to a folder of its own uid, writable in the sandbox: the
    grader's cache stays hidden and out of student reach, and warm gradings still skip
    torch.compile. One such folder is shared by the submissions graded on a host."""
    from labgrade.runtime.tinymodels import cache_root  # lazy: no torch at import
    cache = cache_root().resolve()
    uid = iso.uid if iso.level == "user" and iso.uid is not None else os.getuid()
    own = cache / "compile" / f"student-{uid}"
    moved: list[str] = []
    for var in COMPILE_CACHE_VARS:
        value = env.get(var)
        if value and Path(value).resolve().is_relative_to(cache):
            env[var] = str(own / Path(value).name)
            Path(env[var]).mkdir(parents=True, exist_ok=True)  # a bind needs its source
            moved.append(env[var])
    return env, moved


def _give(path: str, uid: int, gid: int) -> None:
    """A writable directory of the sandbox: owned by its user, created if absent."""
    Path(path).mkdir(parents=True, exist_ok=True)
    os.chown(path, uid, gid)


def _bwrap_args(iso: Isolation, writable: Sequence[str], cwd: str | None) -> list[str]:
    args = [shutil.which("bwrap") or "bwrap", "--dev-bind", "/", "/", "--unshare-pid",
            "--proc", "/proc", "--die-with-parent"]
    for op in iso.view_ops(writable):
        kind, path = op[0], op[1]
        if kind in ("scratch", "tmpfs"):
            size = _bytes(op[2])
            args += ["--perms", "1777" if kind == "scratch" else "0755", "--size", str(size),
                     "--tmpfs", path]
        elif kind == "ro":
            args += ["--ro-bind", path, path]
        else:
            args += ["--bind", path, path]
    args += ["--dir", HOME_IN_SANDBOX]
    if cwd:
        args += ["--chdir", str(cwd)]
    return args


def _bytes(size: str) -> int:
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    size = size.strip().lower()
    return int(float(size[:-1]) * units[size[-1]]) if size[-1] in units else int(size)
