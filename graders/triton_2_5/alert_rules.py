"""The student's alert rule file read as data (after `promtool check rules` accepted it),
and the copies the grader runs: without annotations for the hidden promtool tests (promtool
compares annotations too, and the README leaves their text free), with `for:` shortened
for the live run."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import yaml

_DURATION = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def duration_seconds(text: str | None) -> float:
    """A Prometheus duration ("1m30s") in seconds; 0 for none."""
    if not text:
        return 0.0
    parts = _DURATION.findall(str(text))
    if not parts or "".join(n + u for n, u in parts) != str(text):
        raise ValueError(f"not a Prometheus duration: {text!r}")
    return sum(int(n) * _SECONDS[u] for n, u in parts)


def load_rules(path: Path) -> dict:
    return yaml.safe_load(path.read_text()) or {}


def alerting_rules(rules: dict) -> list[dict]:
    return [rule for group in rules.get("groups") or [] for rule in group.get("rules") or []
            if "alert" in rule]


def rewritten(rules: dict, *, annotations: bool, max_for: str | None = None) -> dict:
    """A copy of the rule file: annotations dropped unless `annotations`; every `for:`
    longer than `max_for` set to it."""
    result = copy.deepcopy(rules)
    for rule in alerting_rules(result):
        if not annotations:
            rule.pop("annotations", None)
        if max_for is not None and duration_seconds(rule.get("for")) > duration_seconds(max_for):
            rule["for"] = max_for
    return result


def write(rules: dict, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(rules, sort_keys=False))
    return path
