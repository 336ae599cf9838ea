"""Lab discovery (labs/<id> <-> graders/<id> <-> solutions/<id>) and the one lab.toml reader.

`graders/<id>/lab.toml` is read once, by `load_lab`, into a typed `Lab`; nothing else parses
it (batch planning and releases ask `load_lab`; exporters read the finished result):

    id = "lab_2_1"                 # required: the folder's name
    title = "vLLM deployment"      # required
    files = ["deploy.py"]          # required: what the student hands in
    item_timeout = 300             # default per-item budget in seconds (default 300)
    uses = ["triton_2_1"]          # other labs whose grader modules these graders import
                                   # (packed with them, e.g. into a Gradescope autograder)

    [resources]                    # optional: what one grading run needs (batch planning)
    memory_gib = 3                 # also cpus, minutes; each a positive number
    gpu_memory_gib = 12            # on the gpu profile: GPU memory one grading needs at most

    [targets]                      # optional: settings published in labs/<id>/README.md
    speedup_full_at = { text = "batching speed-up, full points", unit = "x" }
    # text (required), unit, item (the item graded against it: "not graded" on a profile
    # whose not_graded names it); a plain string is the text. See labgrade.targets.

    [profiles.cpu]                 # settings and thresholds graders read via Lab.settings()
    ...
    [profiles.cpu.not_graded]      # item name = why it is out of scope on this profile
    [profiles.gpu]
    extends = "cpu"                # start from cpu's settings; every key set here replaces
    ...                            # the inherited value whole (tables are not merged)
    [profiles.gpu.hub]             # --models hub: replaces the keys it names

A host overlay (`labgrade calibrate` writes one) adjusts a profile's thresholds to this
host: `<root>/.labgrade/hosts/<id>.<profile>.toml` (or under $LABGRADE_HOST_OVERLAYS), its
`[settings]` table replacing keys the profile already has, with numbers; graders use it when
present, and grade.json's environment names it (`host_overlay`).

A mistake is a LabConfigError that names the file and the key.
`python -m labgrade.labs settings` prints every lab's effective settings (JSON);
`python -m labgrade.labs readmes [--check]` regenerates the READMEs' targets tables.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import re
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType

from labgrade.profiles import PROFILES

LAB_ID = re.compile(r"^(lab|triton)_\d+_\d+$")
AREAS = ("labs", "graders", "solutions")
DEFAULT_ITEM_TIMEOUT = 300.0


class LabConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Resources:
    """What one grading run of the lab needs; None where lab.toml does not say."""
    memory_gib: float | None = None
    cpus: float | None = None
    minutes: float | None = None
    gpu_memory_gib: float | None = None  # gpu profile, every engine of the lab together


@dataclass(frozen=True)
class Target:
    """A setting published in the lab's README (labgrade.targets renders the table)."""
    key: str
    text: str
    unit: str = ""
    item: str = ""  # the item graded against it


@dataclass(frozen=True)
class Profile:
    """One profile's effective settings (`extends` resolved); `hub` and `not_graded` are
    split out of the settings table but stay part of what `Lab.settings` returns."""
    name: str
    settings: Mapping[str, object]
    not_graded: Mapping[str, str] = field(default_factory=dict)
    hub: Mapping[str, object] = field(default_factory=dict)
    extends: str = ""
    host_overlay: str = ""  # the host overlay file applied to `settings`, if any


@dataclass(frozen=True)
class Lab:
    id: str
    root: Path  # the course repository
    title: str = ""
    files: tuple[str, ...] = ()
    item_timeout: float = DEFAULT_ITEM_TIMEOUT
    uses: tuple[str, ...] = ()  # labs whose grader modules this lab's graders import
    profiles: Mapping[str, Profile] = field(default_factory=dict)
    resources: Resources = Resources()
    targets: tuple[Target, ...] = ()

    @property
    def starter_dir(self) -> Path:
        return self.root / "labs" / self.id

    @property
    def graders_dir(self) -> Path:
        return self.root / "graders" / self.id

    @property
    def solution_dir(self) -> Path:
        return self.root / "solutions" / self.id

    @property
    def toml_path(self) -> Path:
        return self.graders_dir / "lab.toml"

    def settings(self, profile: str, models: str = "tiny",
                 hub_models: Mapping[str, str] | None = None) -> dict:
        """The lab's settings for one profile ({} when the lab defines none), its
        `not_graded` table under that key. With models="hub", the profile's
        `[profiles.<name>.hub]` table (the course's real models, for hosts that reach a
        model hub) replaces the keys it names; `hub_models` (--hub-model KEY=ID) replaces
        or adds keys of that table."""
        found = self.profiles.get(profile)
        if found is None:
            table: dict = {}
            hub: Mapping = {}
        else:
            table = copy.deepcopy(dict(found.settings))  # a grader may change its copy
            if found.not_graded:
                table["not_graded"] = dict(found.not_graded)
            hub = found.hub
        if hub_models:
            hub = {**hub, **hub_models}
        if models == "hub":
            if not hub:
                raise LabConfigError(f"{self.id}: the {profile} profile names no hub models "
                                     f"([profiles.{profile}.hub] in graders/{self.id}/lab.toml)")
            table.update(copy.deepcopy(dict(hub)))
        return table


# ------------------------------------------------------------------------ the schema
@dataclass(frozen=True)
class Key:
    """A top-level key of lab.toml: its check, whether it is required, what it means."""
    check: str  # "text" | "texts" | "seconds" | "table"
    required: bool
    means: str


SCHEMA: dict[str, Key] = {
    "id": Key("text", True, "the lab's id, equal to its folder's name"),
    "title": Key("text", True, "the lab's title (release notes, reports)"),
    "files": Key("texts", True, "the files the student hands in, relative to labs/<id>"),
    "item_timeout": Key("seconds", False, "default per-item time budget in seconds (300)"),
    "uses": Key("texts", False, "labs whose grader modules these graders import"),
    "resources": Key("table", False, "what one grading run needs: memory_gib, cpus, minutes"),
    "targets": Key("table", False, "settings published in labs/<id>/README.md"),
    "profiles": Key("table", False, "settings per profile (cpu, gpu)"),
}
RESOURCE_KEYS = ("memory_gib", "cpus", "minutes", "gpu_memory_gib")
TARGET_KEYS = ("text", "unit", "item")


class _Reader:
    """Validates one lab.toml; every complaint names the file and the key."""

    def __init__(self, shown: str) -> None:
        self.shown = shown  # the file as the message names it

    def error(self, key: str, problem: str) -> LabConfigError:
        return LabConfigError(f"{self.shown}: {key}: {problem}")

    def text(self, key: str, value: object) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.error(key, f"must be a non-empty string, got {value!r}")
        return value

    def table(self, key: str, value: object) -> dict:
        if not isinstance(value, dict):
            raise self.error(key, f"must be a table, got {value!r}")
        return value

    def positive(self, key: str, value: object) -> float:
        if (isinstance(value, bool) or not isinstance(value, (int, float))
                or not math.isfinite(value) or value <= 0):
            raise self.error(key, f"must be a positive number, got {value!r}")
        return float(value)

    def top_level(self, meta: dict, lab_id: str) -> None:
        for key in meta:
            if key not in SCHEMA:
                hint = (" (what one grading run needs goes in [resources]: "
                        f"{', '.join(RESOURCE_KEYS)})" if key in ("memory_gib", "cpus",
                                                                  "batch_timeout") else "")
                raise self.error(key, f"unknown key{hint}; lab.toml knows "
                                      f"{', '.join(SCHEMA)}")
        for key, spec in SCHEMA.items():
            if spec.required and key not in meta:
                raise self.error(key, f"required ({spec.means})")
            if key not in meta:
                continue
            value = meta[key]
            if spec.check == "text":
                self.text(key, value)
            elif spec.check == "texts":
                if not isinstance(value, list) or not value:
                    raise self.error(key, f"must be a non-empty list of paths, got {value!r}")
                for i, entry in enumerate(value):
                    self.text(f"{key}[{i}]", entry)
            elif spec.check == "seconds":
                self.positive(key, value)
            else:
                self.table(key, value)
        if meta["id"] != lab_id:
            raise self.error("id", f"is {meta['id']!r} but the folder is {lab_id!r}")

    def resources(self, table: dict) -> Resources:
        values = {}
        for key, value in table.items():
            if key not in RESOURCE_KEYS:
                raise self.error(f"resources.{key}",
                                 f"unknown key; [resources] knows {', '.join(RESOURCE_KEYS)}")
            values[key] = self.positive(f"resources.{key}", value)
        return Resources(**values)

    def profiles(self, tables: dict) -> dict[str, Profile]:
        for name, table in tables.items():
            if name not in PROFILES:
                raise self.error(f"profiles.{name}",
                                 f"unknown profile; profiles are {', '.join(PROFILES)}")
            self.table(f"profiles.{name}", table)
        resolved: dict[str, Profile] = {}
        for name in tables:
            self._resolve(name, tables, resolved, ())
        return {name: resolved[name] for name in PROFILES if name in resolved}

    def _resolve(self, name: str, tables: dict, resolved: dict, chain: tuple) -> Profile:
        if name in resolved:
            return resolved[name]
        own = dict(tables[name])
        base: dict = {}
        parent = ""
        if "extends" in own:
            parent = self.text(f"profiles.{name}.extends", own.pop("extends"))
            if parent not in tables:
                raise self.error(f"profiles.{name}.extends",
                                 f"names {parent!r}, which this file does not define")
            if parent in chain + (name,):
                raise self.error(f"profiles.{name}.extends",
                                 f"profiles extend each other in a circle: "
                                 f"{' -> '.join(chain + (name, parent))}")
            inherited = self._resolve(parent, tables, resolved, chain + (name,))
            base = dict(inherited.settings)
            base.update({k: dict(v) for k, v in (("not_graded", inherited.not_graded),
                                                 ("hub", inherited.hub)) if v})
        base.update(own)
        hub = dict(self.table(f"profiles.{name}.hub", base.pop("hub", {})))
        if "extends" in hub:
            raise self.error(f"profiles.{name}.hub.extends", "a hub table cannot extend")
        not_graded = self._not_graded(f"profiles.{name}.not_graded", base.pop("not_graded", {}))
        if "not_graded" in hub:
            self._not_graded(f"profiles.{name}.hub.not_graded", hub["not_graded"])
        profile = Profile(name, MappingProxyType(base), MappingProxyType(not_graded),
                          MappingProxyType(hub), parent)
        resolved[name] = profile
        return profile

    def _not_graded(self, key: str, table: object) -> dict[str, str]:
        table = self.table(key, table)
        for item, why in table.items():
            if not item.startswith("test_"):
                raise self.error(f"{key}.{item}", "names no item: item names start with test_")
            self.text(f"{key}.{item}", why)
        return dict(table)

    def targets(self, table: dict, profiles: Mapping[str, Profile]) -> tuple[Target, ...]:
        out = []
        for key, value in table.items():
            where = f"targets.{key}"
            entry = {"text": value} if isinstance(value, str) else self.table(where, value)
            for field_name in entry:
                if field_name not in TARGET_KEYS:
                    raise self.error(f"{where}.{field_name}",
                                     f"unknown key; a target knows {', '.join(TARGET_KEYS)}")
            text = self.text(f"{where}.text", entry.get("text"))
            unit = entry.get("unit", "")
            if not isinstance(unit, str):
                raise self.error(f"{where}.unit", f"must be a string, got {unit!r}")
            item = entry.get("item", "")
            if item:
                self.text(f"{where}.item", item)
            if not any(key in p.settings for p in profiles.values()):
                raise self.error(where, "names no setting of any profile")
            out.append(Target(key, text, unit, item))
        return tuple(out)


HOST_OVERLAYS_ENV = "LABGRADE_HOST_OVERLAYS"


def host_overlay_path(root: Path, lab_id: str, profile: str) -> Path:
    """Where this host's calibrated overlay of a lab's profile lives (it may not exist)."""
    folder = os.environ.get(HOST_OVERLAYS_ENV) or Path(root) / ".labgrade" / "hosts"
    return Path(folder) / f"{lab_id}.{profile}.toml"


def _with_host_overlay(root: Path, lab_id: str, profile: Profile) -> Profile:
    path = host_overlay_path(root, lab_id, profile.name)
    if not path.is_file():
        return profile
    reader = _Reader(str(path))
    try:
        table = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise LabConfigError(f"{path}: {exc} (delete it, or run labgrade calibrate again)") \
            from exc
    settings = dict(profile.settings)
    for key, value in reader.table("settings", table.get("settings", {})).items():
        if key not in settings:
            raise reader.error(f"settings.{key}", f"the {profile.name} profile of {lab_id} "
                                                  "has no such setting")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise reader.error(f"settings.{key}", f"must be a number, got {value!r}")
        settings[key] = value
    return replace(profile, settings=MappingProxyType(settings), host_overlay=str(path))


def load_lab(root: Path, lab_id: str, host: bool = True) -> Lab:
    """graders/<lab_id>/lab.toml, checked; with this host's overlays (host=False: as
    published)."""
    graders = root / "graders" / lab_id
    path = graders / "lab.toml"
    if not graders.is_dir():
        raise LabConfigError(
            f"no graders for {lab_id!r} under {graders}. In a student repository the hidden "
            f"graders are fetched by the autograder; ask your course staff.")
    shown = _shown(path, root)
    if not path.is_file():
        raise LabConfigError(f"{shown} is missing: every lab needs one (id, title, files; "
                             "see labgrade/labs.py)")
    try:
        meta = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise LabConfigError(f"{shown}: {exc}") from exc
    reader = _Reader(shown)
    reader.top_level(meta, lab_id)
    profiles = reader.profiles(meta.get("profiles", {}))
    for i, used in enumerate(meta.get("uses", [])):
        if not LAB_ID.match(used) or used == lab_id or not (root / "graders" / used).is_dir():
            raise reader.error(f"uses[{i}]", f"{used!r} is not another lab with graders/<id>/")
    if host:
        profiles = {name: _with_host_overlay(root, lab_id, p) for name, p in profiles.items()}
    return Lab(id=lab_id, root=root, title=meta["title"], files=tuple(meta["files"]),
               item_timeout=float(meta.get("item_timeout", DEFAULT_ITEM_TIMEOUT)),
               uses=tuple(meta.get("uses", ())),
               profiles=MappingProxyType(profiles),
               resources=reader.resources(meta.get("resources", {})),
               targets=reader.targets(meta.get("targets", {}), profiles))


def _shown(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


# ------------------------------------------------------------------------ discovery
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


def effective_settings(root: Path) -> dict:
    """Every lab's settings per profile as graders see them, with --models hub where the
    profile names hub models: what a change to lab.toml really changes."""
    out: dict = {}
    for lab_id in all_lab_ids(root):
        lab = load_lab(root, lab_id, host=False)
        out[lab_id] = {}
        for name, profile in lab.profiles.items():
            entry = {"tiny": lab.settings(name)}
            if profile.hub:
                entry["hub"] = lab.settings(name, "hub")
            out[lab_id][name] = entry
    return out


# ------------------------------------------------------------------------ command line
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m labgrade.labs",
                                     description="Inspect lab.toml files.")
    parser.add_argument("--root", type=Path, default=Path("."), help="the course repository")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("settings", help="print every lab's effective settings as JSON")
    readmes = commands.add_parser("readmes", help="regenerate the targets table of each "
                                                  "labs/<id>/README.md from its lab.toml")
    readmes.add_argument("--check", action="store_true",
                         help="change nothing; exit 1 if a README's table is out of date")
    args = parser.parse_args(argv)
    try:
        if args.command == "settings":
            print(json.dumps(effective_settings(args.root), indent=1, sort_keys=True))
            return 0
        from labgrade import targets
        return targets.main(args.root, check=args.check)
    except LabConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
