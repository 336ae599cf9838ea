"""The server's log file: a fresh one per start, and reading it from an offset (a "mark")."""

from __future__ import annotations

from pathlib import Path


def fresh_log_path(log_dir: Path) -> Path:
    """`log_dir/tritonserver.log`, or `tritonserver-N.log` if taken; created empty."""
    log_dir.mkdir(parents=True, exist_ok=True)
    path, n = log_dir / "tritonserver.log", 1
    while path.exists():
        n += 1
        path = log_dir / f"tritonserver-{n}.log"
    path.touch()
    return path


def file_size(path: Path | None) -> int:
    """The size of `path` now (0 if none or unreadable): a mark for `read_from`."""
    try:
        return path.stat().st_size if path else 0
    except OSError:
        return 0


def read_from(path: Path | None, offset: int) -> str:
    """What `path` holds after `offset` bytes ("" if none or unreadable)."""
    if path is None:
        return ""
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            return handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
