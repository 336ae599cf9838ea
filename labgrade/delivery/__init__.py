"""Delivery: getting labs to students and grading them at scale.

- `release`    the student template repository (starters, READMEs, public checks, the
               framework, a GitHub Classroom workflow), without graders or solutions;
- `workflow`   the Classroom workflow itself;
- `gradescope` a Gradescope autograder zip (setup.sh + run_autograder);
- `batch`      many submissions graded in parallel (local process pool or Ray).

Everything here is driven by `labgrade.cli` (`labgrade release|gradescope|batch`).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import labgrade

# never shipped: caches, build output, editor litter
SKIP_DIRS = frozenset({"__pycache__", ".pytest_cache", ".benchmarks", ".ipynb_checkpoints",
                       ".labgrade", ".mypy_cache", ".ruff_cache", ".git", ".venv",
                       ".venv-triton", "node_modules"})
SKIP_SUFFIXES = (".pyc", ".pyo", ".swp", "~", ".egg-info", ".tmp")
SKIP_NAMES = frozenset({".DS_Store", "Thumbs.db"})

# what a student (or an autograder) needs besides the labs, relative to the framework root
FRAMEWORK_PATHS = ("labgrade", "pyproject.toml", "Makefile", "requirements", "conftest.py")
FRAMEWORK_GLOBS = ("scripts/setup*.sh",)


class DeliveryError(Exception):
    """A problem with the course or the options; the message says what to do."""


def framework_root() -> Path:
    """The source checkout the running labgrade comes from (it holds pyproject.toml)."""
    root = Path(labgrade.__file__).resolve().parent.parent
    if not (root / "pyproject.toml").is_file():
        raise DeliveryError(f"labgrade at {root} is not a source checkout (no pyproject.toml); "
                            "run this from the course repository's .venv")
    return root


def find_course_root(start: Path | None = None) -> Path:
    """The nearest directory at or above `start` holding both labs/ and graders/."""
    start = (start or Path.cwd()).resolve()
    for base in (start, *start.parents):
        if (base / "labs").is_dir() and (base / "graders").is_dir():
            return base
    root = framework_root()
    if (root / "labs").is_dir() and (root / "graders").is_dir():
        return root
    raise DeliveryError(f"no course repository (a folder with labs/ and graders/) at or above "
                        f"{start}; pass --root")


def _skipped(name: str, is_dir: bool) -> bool:
    if name in SKIP_NAMES or name.endswith(SKIP_SUFFIXES):
        return True
    return is_dir and name in SKIP_DIRS


def walk_files(root: Path) -> Iterator[Path]:
    """Files under `root` (or `root` itself), sorted, without caches and litter."""
    root = Path(root)
    if root.is_file():
        yield root
        return
    if not root.is_dir():
        return
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not _skipped(d, True))
        for name in sorted(filenames):
            if not _skipped(name, False):
                path = Path(dirpath) / name
                if path.is_file():
                    yield path


def file_mode(path: Path) -> int:
    """0o755 for executables, 0o644 otherwise: the only mode bits a release keeps."""
    return 0o755 if path.stat().st_mode & stat.S_IXUSR else 0o644


def framework_files(root: Path | None = None) -> list[tuple[str, Path]]:
    """(relative path, source) of the framework files a student repository needs."""
    root = root or framework_root()
    out: list[tuple[str, Path]] = []
    for rel in FRAMEWORK_PATHS:
        for path in walk_files(root / rel):
            out.append((path.relative_to(root).as_posix(), path))
    for pattern in FRAMEWORK_GLOBS:
        for path in sorted(root.glob(pattern)):
            if path.is_file():
                out.append((path.relative_to(root).as_posix(), path))
    return sorted(out)
