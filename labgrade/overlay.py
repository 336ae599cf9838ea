"""Known-wrong submissions as overlays on the reference solution.

`fixtures/<id>/wrong_<what>/` holds only the files that make it wrong; the submission it
stands for is `solutions/<id>/` with those files on top. `materialise()` writes that
submission into a folder of its own, the same bytes every time, so it can be graded like
any other (`pytest labs/<id> --grade --submission <folder>`).

A fixture may explain itself in a `WRONG.md`; that note is never part of the submission.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from labgrade.labs import LAB_ID

PREFIX = "wrong_"
NOTE = "WRONG.md"            # a fixture's own explanation, not part of the submission
NEVER_COPIED = ("__pycache__",)


class OverlayError(ValueError):
    """A fixture that cannot be materialised; the message says what to fix."""


@dataclass(frozen=True)
class Overlay:
    lab: str
    name: str          # wrong_<what>
    solution: Path     # solutions/<id>
    files: Path        # fixtures/<id>/wrong_<what>

    def changed_files(self) -> list[Path]:
        """The overlay's own files, relative to it, sorted (the note left out)."""
        return [rel for rel in _tree(self.files) if rel != Path(NOTE)]


def find_overlay(path: Path, root: Path) -> Overlay | None:
    """The overlay that `path` names when it is `<root>/fixtures/<id>/wrong_<what>`,
    else None (a solution, a starter, a student's folder, an attack fixture)."""
    try:
        rel = Path(path).resolve().relative_to(Path(root).resolve() / "fixtures")
    except ValueError:
        return None
    if len(rel.parts) != 2 or not rel.parts[1].startswith(PREFIX):
        return None
    return overlay(root, rel.parts[0], rel.parts[1])


def overlay(root: Path, lab: str, name: str) -> Overlay:
    """fixtures/<lab>/<name> of the course at `root`, checked: it exists and lies inside
    fixtures/<lab>/, and the lab has a solution to lay it on."""
    root = Path(root).resolve()
    if not LAB_ID.match(lab):
        raise OverlayError(f"{lab!r} is not a lab id (like lab_2_1 or triton_2_2)")
    fixtures = root / "fixtures" / lab
    files = fixtures / name
    if Path(name).name != name or not name.startswith(PREFIX) or files.is_symlink():
        raise OverlayError(f"{name!r} is not a known-wrong fixture name: pick one of "
                           f"{', '.join(_names(fixtures)) or '(none)'} in {fixtures}")
    if not files.is_dir():
        raise OverlayError(f"no {files}: pick one of {', '.join(_names(fixtures)) or '(none)'}")
    solution = root / "solutions" / lab
    if not solution.is_dir():
        raise OverlayError(f"no {solution}: an overlay is laid on the lab's solution")
    return Overlay(lab=lab, name=name, solution=solution, files=files)


def materialise(item: Overlay, out: Path) -> Path:
    """Write the submission `item` stands for into `out` (created; it must not exist or be
    empty): a copy of the solution, then the overlay's files on top. Returns `out`."""
    out = Path(out).resolve()
    for source in (item.solution, item.files):
        if out == source.resolve() or source.resolve() in out.parents:
            raise OverlayError(f"{out} lies inside {source}: choose an output folder elsewhere")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise OverlayError(f"{out} is not an empty folder: remove it or choose another")
    out.mkdir(parents=True, exist_ok=True)
    for base, files in ((item.solution, _tree(item.solution)),
                        (item.files, item.changed_files())):
        for rel in files:
            target = out / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(base / rel, target)
            shutil.copymode(base / rel, target)
    return out


def _tree(folder: Path) -> list[Path]:
    """Every file under `folder`, relative and sorted; a link (which could point anywhere)
    is refused rather than followed."""
    found = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if any(part in NEVER_COPIED for part in rel.parts):
            continue
        if path.is_symlink():
            raise OverlayError(f"{path} is a link: put a plain file there (a fixture must not "
                               "reach outside its folder)")
        if path.is_file():
            found.append(rel)
    return found


def _names(fixtures: Path) -> list[str]:
    return sorted(p.name for p in fixtures.glob(f"{PREFIX}*") if p.is_dir()) \
        if fixtures.is_dir() else []
