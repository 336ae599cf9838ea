"""The supervisor between the grading process and one process that runs student code.

Run as `python -I -S launch.py SPEC_JSON -- ARGV...` (standard library only, so that it
starts in ~20 ms). It stays the parent of ARGV and:

- builds the sandbox's view of the filesystem when the spec asks for one (`user` level, as
  root: a private mount namespace with tmpfs over what the student may not read, read-only
  binds of what it needs, a size-capped scratch tmpfs), or runs ARGV under bubblewrap
  (`bwrap` level: the spec's argv prefix already holds the bwrap options);
- starts ARGV with resource limits, as the sandbox's user (`user` level), in its own
  private HOME and TMPDIR;
- becomes a child subreaper, so whatever ARGV daemonizes stays below it;
- watches the grading process: when it dies (even by SIGKILL) every process below the
  supervisor is killed. The parent is polled (getppid) rather than trusted to
  PR_SET_PDEATHSIG alone, which fires when the *thread* that forked exits;
- ends with ARGV's own exit status (a signal death is re-raised on itself), so the
  grading process reads "killed by SIGSEGV" as before.

SIGTERM/SIGINT sent to the process group reach ARGV; the supervisor ignores them and
follows ARGV out (then sweeps its leftovers).
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import signal
import sys

CLONE_NEWNS = 0x00020000
MS_RDONLY, MS_NOSUID, MS_NODEV = 0x1, 0x2, 0x4
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 0x20, 0x1000, 0x4000, 0x40000
PR_SET_PDEATHSIG, PR_SET_CHILD_SUBREAPER = 1, 36
RLIMITS = {"nproc": resource.RLIMIT_NPROC, "nofile": resource.RLIMIT_NOFILE,
           "fsize": resource.RLIMIT_FSIZE, "core": resource.RLIMIT_CORE}

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _enc(text: str | None) -> bytes | None:
    return text.encode() if text is not None else None


def _mount(source: str | None, target: str, fstype: str | None, flags: int,
           data: str | None = None) -> None:
    enc = _enc
    _check(_libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags),
                       enc(data)), f"mount {target}")


def build_view(ops: list[list], uid: int, gid: int) -> None:
    """Apply the spec's mount operations in a new mount namespace (as root)."""
    _check(_libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    # sources opened in the new namespace before any tmpfs: one may lie under a tmpfs
    # mounted before its bind (a bind from another namespace's mount is EINVAL)
    sources = {op[1]: os.open(op[1], os.O_PATH | os.O_CLOEXEC)
               for op in ops if op[0] in ("ro", "rw")}
    for op in ops:
        kind, path = op[0], op[1]
        if kind in ("tmpfs", "scratch"):
            mode = "1777" if kind == "scratch" else "0755"
            _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, f"size={op[2]},mode={mode}")
        else:  # ro / rw: bind the real path back at the same place
            if os.path.isdir(f"/proc/self/fd/{sources[path]}"):
                os.makedirs(path, exist_ok=True)
            elif not os.path.exists(path):
                os.makedirs(os.path.dirname(path), exist_ok=True)
                open(path, "a").close()
            _mount(f"/proc/self/fd/{sources[path]}", path, None, MS_BIND | MS_REC)
            if kind == "ro":
                _mount(None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID)
    for fd in sources.values():
        os.close(fd)


def _exec_child(spec: dict, argv: list[str], dispositions: dict) -> None:
    """In the forked child: limits, identity, then ARGV (never returns)."""
    try:
        for name, value in spec.get("rlimits", {}).items():
            _, hard = resource.getrlimit(RLIMITS[name])
            if hard != resource.RLIM_INFINITY:  # raising it needs CAP_SYS_RESOURCE
                value = min(value, hard)
            resource.setrlimit(RLIMITS[name], (value, value))
        for directory in spec.get("make_dirs", []):
            os.makedirs(directory, exist_ok=True)
            if spec.get("uid") is not None:
                os.chown(directory, spec["uid"], spec["gid"])
        if spec.get("uid") is not None:
            os.setgroups([])
            os.setgid(spec["gid"])
            os.setuid(spec["uid"])
        if spec.get("cwd"):
            os.chdir(spec["cwd"])
        for signum, handler in dispositions.items():
            signal.signal(signum, handler)
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
        os.execvp(argv[0], argv)
    except BaseException as exc:  # noqa: BLE001 - whatever it is goes to the log
        os.write(2, f"labgrade sandbox: could not start {argv[0]}: {exc}\n".encode())
        os._exit(127)


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        ppid = int(stat[stat.rfind(")") + 2:].split()[1])
        tree.setdefault(ppid, []).append(int(name))
    return tree


def kill_below(pid: int) -> None:
    """SIGKILL every descendant of `pid` until none is left (they are ours to reap)."""
    for _ in range(50):
        tree, found, todo = _children(), [], [pid]
        while todo:
            for child in tree.get(todo.pop(), []):
                found.append(child)
                todo.append(child)
        if not found:
            return
        for child in found:
            try:
                os.kill(child, signal.SIGKILL)
            except OSError:
                pass
        _reap_all()


def _reap_all() -> None:
    import time
    deadline = time.monotonic() + 0.2
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            time.sleep(0.01)


def main() -> None:
    spec = json.loads(sys.argv[1])
    argv = sys.argv[sys.argv.index("--") + 1:]
    grader = os.getppid()
    _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    dispositions = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    dispositions = {s: (h if h in (signal.SIG_IGN, signal.SIG_DFL) else signal.SIG_DFL)
                    for s, h in dispositions.items()}
    wake = [signal.SIGCHLD, signal.SIGUSR1]
    signal.pthread_sigmask(signal.SIG_BLOCK, wake)
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGUSR1, 0, 0, 0)  # a fast path; polling decides
    if os.getppid() != grader:
        sys.exit(1)
    if spec.get("view"):
        try:
            build_view(spec["view"], spec.get("uid"), spec.get("gid"))
        except OSError as exc:
            os.write(2, f"labgrade sandbox: could not build the sandbox: {exc}\n".encode())
            sys.exit(126)
    child = os.fork()
    if child == 0:
        _exec_child(spec, argv, dispositions)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.dup2(os.open(os.devnull, os.O_RDWR), 0)  # the child's pipes must see EOF when it dies
    os.dup2(0, 1)
    status = None
    while status is None:
        signal.sigtimedwait(wake, 0.5)
        while True:
            try:
                pid, raw = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                pid = 0
            if pid == 0:
                break
            if pid == child:
                status = raw
        if os.getppid() != grader:  # the grading process is gone: nothing may outlive it
            kill_below(os.getpid())
            os._exit(137)
    kill_below(os.getpid())
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if sig not in (signal.SIGKILL, signal.SIGSTOP):  # those cannot be caught or set
            signal.signal(sig, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, [sig])
        os.kill(os.getpid(), sig)
    os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1)


if __name__ == "__main__":
    main()
