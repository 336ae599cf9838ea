"""Running the hidden promtool unit tests (rule_tests/*.yml) on the student's rules."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from labgrade import Fail
from labgrade.monitoring import tools

HIDDEN = Path(__file__).parent / "rule_tests"


def without_annotations(text: str) -> str:
    """promtool compares annotations too; the hidden tests check labels only, so the
    student's free-text annotations are dropped from the copy they run on."""
    data = yaml.safe_load(text)
    for group in data.get("groups") or []:
        for rule in group.get("rules") or []:
            if isinstance(rule, dict):
                rule.pop("annotations", None)
    return yaml.safe_dump(data, sort_keys=False)


def run_hidden(rules: Path, name: str, work: Path, what: str) -> str:
    """Run rule_tests/<name>.yml against a copy of the student's rules; Fail with
    promtool's own report when a case fails. Returns promtool's output."""
    work.mkdir(parents=True, exist_ok=True)
    (work / "rules.yml").write_text(without_annotations(rules.read_text()))
    shutil.copy(HIDDEN / f"{name}.yml", work / f"{name}.yml")
    result = tools.test_rules(work / f"{name}.yml")
    if not result.ok:
        raise Fail(f"{what}: the hidden promtool unit tests ({name}) failed on your "
                   f"rules.yml. promtool says:\n{result.output}")
    return result.output
