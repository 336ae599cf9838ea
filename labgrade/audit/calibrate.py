"""`labgrade calibrate <lab> --profile P`: thresholds for this host, from the reference.

Grades the reference solution `runs` times on this host, and for every curve item (a
`curve:<key>` measurement: labgrade.kit.score_curve) proposes

    full_at = fraction x median of the reference       (median / fraction if lower is better)
    zero_at = baseline + margin                        (baseline - margin if lower is better)

where the baseline is what no optimisation at all measures (1.0 for a ratio measured side
by side, 0 otherwise; `--baseline key=value` to say). The thresholds are found in the
profile by value (the curve's recorded `zero_at`/`full_at` equal a `*zero_at`/`*full_at`
setting; ties go to the setting sharing a word with the curve's key). The host overlay
(labgrade.labs.host_overlay_path) holds the proposed settings and, beside them, what was
measured; graders read it through the one lab.toml reader and grade.json names it.
"""

from __future__ import annotations

import platform
import time
from pathlib import Path

from labgrade.audit.grading import Graded, grade
from labgrade.audit.run import curves_of
from labgrade.labs import host_overlay_path, load_lab


class CalibrationError(RuntimeError):
    pass


def _setting_for(settings: dict, curve_key: str, suffix: str, value: float) -> str | None:
    names = [k for k, v in settings.items() if k.endswith(suffix)
             and isinstance(v, (int, float)) and not isinstance(v, bool)
             and abs(float(v) - float(value)) < 1e-9]
    words = set(curve_key.split("_"))

    def shared(name: str) -> int:
        return len(words & set(name[:-len(suffix)].strip("_").split("_")))

    names.sort(key=shared, reverse=True)
    if len(names) > 1 and shared(names[0]) == shared(names[1]):
        return None
    return names[0] if names else None


def propose(curve: dict, settings: dict, *, fraction: float, margin: float,
            baseline: float) -> dict:
    """One curve's proposal: the settings it changes, or why it changes none."""
    higher = curve["full_at"] >= curve["zero_at"]
    median = curve["median"]
    full = round(fraction * median if higher else median / fraction, 3)
    zero = round(baseline + margin if higher else baseline - margin, 3)
    keys = {"full_at": _setting_for(settings, curve["key"], "full_at", curve["full_at"]),
            "zero_at": _setting_for(settings, curve["key"], "zero_at", curve["zero_at"])}
    out = {"item": curve["item"], "key": curve["key"], "median": median,
           "values": curve["values"], "stdev": curve["stdev"], "baseline": baseline,
           "published": {"zero_at": curve["zero_at"], "full_at": curve["full_at"]},
           "settings": {}}
    if None in keys.values():
        out["skipped"] = (f"no single profile setting holds this curve's thresholds "
                          f"({curve['zero_at']}, {curve['full_at']})")
    elif (zero >= full) if higher else (zero <= full):
        out["skipped"] = (f"the reference measures {median:g} here: {fraction:g} of it "
                          f"({full:g}) is not clear of the baseline {baseline:g} + margin "
                          f"{margin:g}; this host cannot grade {curve['key']} fairly")
    else:
        out["settings"] = {keys["full_at"]: full, keys["zero_at"]: zero}
    return out


def calibrate(root: Path, lab_id: str, profile: str, *, runs: int = 5, fraction: float = 0.8,
              margin: float = 0.1, baselines: dict[str, float] | None = None,
              out: Path | None = None, work: Path, timeout: float = 1800,
              select: str | None = None, progress=print) -> tuple[Path, dict]:
    """Run the reference `runs` times and write the host overlay; returns its path and
    the proposal (plain data)."""
    if runs < 2:
        raise CalibrationError("calibrate needs --runs of at least 2 (a spread needs two)")
    lab = load_lab(root, lab_id, host=False)
    if profile not in lab.profiles:
        raise CalibrationError(f"{lab_id} has no {profile} profile in {lab.toml_path}")
    settings = lab.settings(profile)
    graded: list[Graded] = []
    started = time.monotonic()
    for n in range(runs):
        g = grade(root, lab_id, lab.solution_dir, work / f"run-{n + 1}", profile=profile,
                  label=f"reference#{n + 1}", select=select, timeout=timeout)
        if g.problem:
            raise CalibrationError(f"reference run {n + 1} did not grade: {g.problem}")
        progress(f"  reference run {n + 1}/{runs}: {g.score:g} in {g.wall_seconds:.0f} s")
        graded.append(g)
    curves = curves_of(graded)
    if not curves:
        raise CalibrationError(f"{lab_id} records no curve (score_curve) under the {profile} "
                               "profile: nothing to calibrate")
    proposals = []
    for c in curves:
        ratio = any(f"{c['key']}_rounds" in r.items[c["item"]]["measured"] for r in graded
                    if c["item"] in r.items)
        base = (baselines or {}).get(c["key"], 1.0 if ratio else 0.0)
        proposals.append(propose(c, settings, fraction=fraction, margin=margin,
                                 baseline=base))
    target = Path(out) if out else host_overlay_path(root, lab_id, profile)
    target.parent.mkdir(parents=True, exist_ok=True)
    summary = {"lab": lab_id, "profile": profile, "host": platform.node(),
               "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "runs": runs, "fraction": fraction, "margin": margin, "select": select or "",
               "wall_seconds": round(time.monotonic() - started, 1),
               "reference_scores": [g.score for g in graded], "curves": proposals}
    target.write_text(to_toml(summary))
    return target, summary


def _toml_value(value) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return repr(value)


def to_toml(summary: dict) -> str:
    lines = [f"# labgrade calibrate: thresholds of {summary['lab']}'s {summary['profile']} "
             f"profile for host {summary['host']}",
             f"# full marks at {summary['fraction']:g} x the reference's median; none at the "
             f"baseline + {summary['margin']:g}. Delete this file to grade with the published "
             "thresholds.", ""]
    for key in ("lab", "profile", "host", "written_at", "runs", "select", "fraction", "margin",
                "wall_seconds", "reference_scores"):
        lines.append(f"{key} = {_toml_value(summary[key])}")
    lines += ["", "[settings]"]
    for c in summary["curves"]:
        for key, value in c["settings"].items():
            lines.append(f"{key} = {_toml_value(value)}   # was {c['published']}")
    for c in summary["curves"]:
        lines += ["", f"[measurements.{c['key']}]"]
        for key in ("item", "median", "stdev", "values", "baseline"):
            lines.append(f"{key} = {_toml_value(c[key])}")
        lines.append(f"published_zero_at = {c['published']['zero_at']!r}")
        lines.append(f"published_full_at = {c['published']['full_at']!r}")
        if "skipped" in c:
            lines.append(f"skipped = {_toml_value(c['skipped'])}")
    return "\n".join(lines) + "\n"
