"""The published-targets table of each labs/<id>/README.md, generated from its lab.toml.

A lab's `[targets]` table names the settings its README publishes; the table goes between
two marker comments in the README, one column per profile:

    <!-- targets:begin ... -->
    | target | cpu profile | gpu profile |
    ...
    <!-- targets:end -->

`python -m labgrade.labs readmes` rewrites the tables; `--check` (and tests/test_labs.py)
fails while one is out of date. Edit lab.toml, never the table.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from labgrade.labs import Lab, LabConfigError, Target, all_lab_ids, load_lab

BEGIN = "<!-- targets:begin"
END = "<!-- targets:end -->"
_BLOCK = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.S)
NOT_SET = "—"
NOT_GRADED = "not graded"


def format_value(key: str, value: object, unit: str = "") -> str:
    """A setting as a reader wants it: 1.3x, 256 MiB, 1, 3, 8."""
    if isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, int) and key.endswith("_bytes"):
        gib = value / (1 << 30)
        text = f"{gib:g} GiB" if gib >= 1 else f"{value / (1 << 20):g} MiB"
    elif isinstance(value, (int, float)):
        text = f"{value:g}"
    elif isinstance(value, list):
        text = ", ".join(format_value(key, v) for v in value)
    elif isinstance(value, dict):
        text = ", ".join(f"{k}: {format_value(key, v)}" for k, v in value.items())
    else:
        text = str(value)
    if not unit:
        return text
    return f"{text}{unit}" if unit in ("x", "%") else f"{text} {unit}"


def cell(lab: Lab, profile: str, target: Target) -> str:
    settings = lab.settings(profile)
    if target.item and target.item in settings.get("not_graded", {}):
        return NOT_GRADED
    if target.key not in settings:
        return NOT_SET
    return format_value(target.key, settings[target.key], target.unit)


def table(lab: Lab) -> str:
    """The marker-delimited block for the lab's README."""
    profiles = list(lab.profiles)
    lines = [f"{BEGIN}: generated from graders/{lab.id}/lab.toml [targets] by "
             f"`python -m labgrade.labs readmes`; edit lab.toml, not this table -->",
             "| target | " + " | ".join(f"{p} profile" for p in profiles) + " |",
             "|---|" + "---|" * len(profiles)]
    for target in lab.targets:
        cells = [cell(lab, p, target) for p in profiles]
        lines.append(f"| {target.text} | " + " | ".join(cells) + " |")
    lines.append(END)
    return "\n".join(lines)


def readme_path(lab: Lab) -> Path:
    return lab.starter_dir / "README.md"


def updated_readme(lab: Lab) -> tuple[str, str] | None:
    """(current text, text with a fresh table), or None for a lab that publishes no
    targets. A README without the markers is an error: say where the table goes."""
    if not lab.targets:
        return None
    path = readme_path(lab)
    current = path.read_text()
    if len(_BLOCK.findall(current)) != 1:
        raise LabConfigError(f"{path.relative_to(lab.root)}: needs exactly one "
                             f"'{BEGIN} -->' ... '{END}' pair where the targets table of "
                             f"graders/{lab.id}/lab.toml goes")
    return current, _BLOCK.sub(lambda _: table(lab), current)


def stale_readmes(root: Path) -> list[Path]:
    stale = []
    for lab_id in all_lab_ids(root):
        lab = load_lab(root, lab_id)
        texts = updated_readme(lab)
        if texts is not None and texts[0] != texts[1]:
            stale.append(readme_path(lab))
    return stale


def main(root: Path, *, check: bool = False) -> int:
    stale = stale_readmes(root)
    if check:
        for path in stale:
            print(f"{path}: targets table out of date; run `python -m labgrade.labs readmes`",
                  file=sys.stderr)
        return 1 if stale else 0
    for path in stale:
        lab = load_lab(root, path.parent.name)
        path.write_text(updated_readme(lab)[1])
        print(f"updated {path}")
    return 0
