"""Lab discovery: labs/<id> <-> graders/<id> <-> solutions/<id>, and lab metadata.

`graders/<id>/lab.toml` holds a lab's metadata and its per-profile settings:

    id = "lab_2_1"
    title = "vLLM deployment"
    files = ["deploy.py"]          # what the student hands in
    item_timeout = 180             # default per-item budget, seconds

    [profiles.cpu]                 # settings and thresholds graders read via Lab.settings()
    ...
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

LAB_ID = re.compile(r"^(lab|triton)_\d+_\d+$")
AREAS = ("labs", "graders", "solutions")


class LabConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Lab:
    id: str
    root: Path  # the course repository
    title: str = ""
    files: tuple[str, ...] = ()
    item_timeout: float = 300.0
    profiles: dict = field(default_factory=dict)

    @property
    def starter_dir(self) -> Path:
        return self.root / "labs" / self.id

    @property
    def graders_dir(self) -> Path:
        return self.root / "graders" / self.id

    @property
    def solution_dir(self) -> Path:
        return self.root / "solutions" / self.id

    def settings(self, profile: str, models: str = "tiny") -> dict:
        """The lab's settings for one profile ({} when the lab defines none). With
        models="hub", the profile's `[profiles.<name>.hub]` table (the course's real models,
        for hosts that reach a model hub) replaces the keys it names."""
        table = dict(self.profiles.get(profile, {}))
        hub = table.pop("hub", {})
        if models == "hub":
            if not hub:
                raise LabConfigError(f"{self.id}: the {profile} profile names no hub models "
                                     f"([profiles.{profile}.hub] in graders/{self.id}/lab.toml)")
            table.update(hub)
        return table


def load_lab(root: Path, lab_id: str) -> Lab:
    graders = root / "graders" / lab_id
    meta_path = graders / "lab.toml"
    if not graders.is_dir():
        raise LabConfigError(
            f"no graders for {lab_id!r} under {graders}. In a student repository the hidden "
            f"graders are fetched by the autograder; ask your course staff.")
    meta = {}
    if meta_path.exists():
        try:
            meta = tomllib.loads(meta_path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise LabConfigError(f"{meta_path}: {exc}") from exc
    return Lab(id=lab_id, root=root, title=meta.get("title", lab_id),
               files=tuple(meta.get("files", ())),
               item_timeout=float(meta.get("item_timeout", 300)),
               profiles=meta.get("profiles", {}))


def lab_id_of(arg: str, root: Path, invocation_dir: Path) -> str | None:
    """The lab an argument names: `labs/lab_2_1`, `solutions/lab_2_1/x.py`, or `lab_2_1`."""
    text = arg.split("::", 1)[0]
    if LAB_ID.match(text):
        return text
    path = (invocation_dir / text).resolve()
    try:
        rel = path.relative_to(root.resolve())
    except ValueError:
        return _id_in_parts(path.parts)
    parts = rel.parts
    if len(parts) >= 2 and parts[0] in AREAS + ("fixtures",) and LAB_ID.match(parts[1]):
        return parts[1]
    return None


def _id_in_parts(parts: tuple[str, ...]) -> str | None:
    for part in reversed(parts):
        if LAB_ID.match(part):
            return part
    return None


def all_lab_ids(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "graders").iterdir()
                  if p.is_dir() and LAB_ID.match(p.name)) if (root / "graders").is_dir() else []
