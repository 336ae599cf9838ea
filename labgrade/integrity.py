"""What keeps a grading run honest and clean, beyond running student code elsewhere.

- Digests of the grader suite, of labgrade itself and of the submission are taken when a
  run starts; the graders' and labgrade's are taken again before the reports are written.
  A change in between means something (student code runs as the same user) modified the
  grading environment: every item of the run is then an error, never a score.
- The grading process becomes a child subreaper (Linux prctl), so a process that a student
  daemonizes (double fork, setsid) is re-parented to it instead of escaping; at the end
  every remaining descendant is killed.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import signal
from pathlib import Path

import psutil

_SKIP_DIRS = {"__pycache__", ".git", ".pytest_cache", ".labgrade", ".ipynb_checkpoints"}
_PR_SET_CHILD_SUBREAPER = 36


def tree_digest(root: Path) -> str:
    """sha256 over the relative paths and bytes of every file under root (sorted)."""
    root = Path(root)
    digest = hashlib.sha256()
    if root.is_file():
        digest.update(root.read_bytes())
        return digest.hexdigest()
    if not root.is_dir():
        return "absent"
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
        for name in sorted(filenames):
            if name.endswith((".pyc", ".log")):
                continue
            path = Path(dirpath) / name
            digest.update(str(path.relative_to(root)).encode() + b"\0")
            try:
                digest.update(path.read_bytes())
            except OSError:
                digest.update(b"<unreadable>")
    return digest.hexdigest()


def become_subreaper() -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def kill_descendants() -> int:
    """SIGKILL every process below this one (workers, servers, anything they left)."""
    try:
        children = psutil.Process().children(recursive=True)
    except psutil.Error:
        return 0
    for child in children:
        try:
            child.send_signal(signal.SIGKILL)
        except psutil.Error:
            pass
    psutil.wait_procs(children, timeout=5)
    # reap zombies re-parented to us as subreaper
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            break
    return len(children)
