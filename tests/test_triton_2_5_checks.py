"""triton_2_5's checks without a server or a grading (fast lane): the hidden inputs'
invariants, the reference check script on them, the workflow and manifest checks on the
solution and the known-wrong overlays, and the hidden promtool tests (promtool is a tool,
not a server) on the solution's rules and on the overlays that must fail them."""

from __future__ import annotations

import importlib
import importlib.util
import random
import re
from pathlib import Path

import pytest
import yaml

from conftest import ROOT
from labgrade.deploy.kubernetes import load_manifests, validate_manifests
from labgrade.monitoring.tools import test_rules as promtool_test

LAB = "triton_2_5"
SOLUTION = ROOT / "solutions" / LAB
WRONG = ROOT / "fixtures" / LAB

broken = importlib.import_module("graders.triton_2_5.broken")
ci = importlib.import_module("graders.triton_2_5.ci")
manifests = importlib.import_module("graders.triton_2_5.manifests")
alert_rules = importlib.import_module("graders.triton_2_5.alert_rules")
alert_tests = importlib.import_module("graders.triton_2_5.alert_tests")


def _module(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------------ hidden repositories
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_hidden_cases_cover_every_class_with_fresh_names(seed):
    cases = broken.hidden_cases(random.Random(seed))
    assert {c.fault for c in cases} == set(broken.FAULTS)
    assert len({c.variant for c in cases}) == len(cases) == 18
    names = [c.model for c in cases] + [n for c in cases for n in c.needs]
    assert len(set(names)) == len(names)
    for case in cases:
        assert case.where.split("/")[0] == case.model
        assert f"{case.model}/config.pbtxt" in case.files or case.fault == "initialize_raised"
        if case.fault in ("config_syntax", "initialize_raised"):
            assert re.search(r":\d+$", case.where), case
    without = broken.hidden_cases(random.Random(seed), with_initialize=False)
    assert {c.fault for c in without} == set(broken.FAULTS) - {"initialize_raised"}


def test_reference_check_script_on_hidden_repositories(tmp_path):
    check = _module(SOLUTION / "check_repository.py", "t25_check")
    rng = random.Random(5)
    for k, files in enumerate(broken.good_repositories(rng).values()):
        broken.write_files(tmp_path / f"good{k}", files)
        assert check.check(tmp_path / f"good{k}") == []
    for k, case in enumerate(broken.hidden_cases(rng, with_initialize=False)):
        broken.write_files(tmp_path / f"bad{k}", case.files)
        problems = check.check(tmp_path / f"bad{k}")
        assert any(case.model in p for p in problems), (case.variant, problems)
    assert check.check(SOLUTION / "model_repository") == []
    assert check.check(ROOT / "labs" / LAB / "model_repository") != []


# ------------------------------------------------------------------ workflow and manifests
def test_workflow_checks():
    def problems(path: Path) -> list[str]:
        return ci.schema_problems(path) or ci.requirement_problems(
            yaml.safe_load(path.read_text()) or {})

    assert problems(SOLUTION / "ci" / "model-repository.yml") == []
    starter = ci.schema_problems(ROOT / "labs" / LAB / "ci" / "model-repository.yml")
    assert any("'jobs' is a required property" in p for p in starter), starter
    wrong = problems(WRONG / "wrong_ci_push_only" / "ci" / "model-repository.yml")
    assert any("pull_request" in p for p in wrong), wrong


def _manifest_problems(folder: Path) -> tuple[list[str], list[str], list[str]]:
    objects = load_manifests(folder)
    triton = manifests.find_triton(objects)
    return (validate_manifests(manifests.cluster_objects(objects), "1.30"),
            manifests.repository_problems(triton) + manifests.probe_problems(triton)
            + manifests.metrics_problems(triton, objects),
            manifests.resource_problems(triton) + manifests.autoscaling_problems(triton, objects))


@pytest.mark.parametrize("folder, failing", [
    ("solution", None),
    ("wrong_manifest_hpa_v2beta2", 0),
    ("wrong_manifest_readiness_live", 1),
    ("wrong_manifest_hpa_cpu", 2),
])
def test_manifest_checks(folder, failing):
    path = SOLUTION / "deploy" if folder == "solution" else WRONG / folder / "deploy"
    found = _manifest_problems(path)
    for index, problems in enumerate(found):
        assert bool(problems) == (index == failing), (index, problems)


def test_service_monitor_counts_as_scraping(tmp_path):
    """The other published way to scrape: a ServiceMonitor through a Service port."""
    text = (SOLUTION / "deploy" / "triton.yaml").read_text()
    text = re.sub(r"      annotations:\n(        .*\n)+", "", text)
    folder = tmp_path / "deploy"
    folder.mkdir()
    (folder / "triton.yaml").write_text(text)
    assert any("nothing scrapes" in p for p in _manifest_problems(folder)[1])
    (folder / "monitor.yaml").write_text(
        "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {name: triton}\n"
        "spec:\n  selector: {matchLabels: {app: triton}}\n  endpoints: [{port: metrics}]\n")
    assert _manifest_problems(folder) == ([], [], [])


# ------------------------------------------------------------------ alerts
def _hidden_results(rules_path: Path, folder: Path) -> dict[str, bool]:
    rules = alert_rules.rewritten(alert_rules.load_rules(rules_path), annotations=False)
    alert_rules.write(rules, folder / "rules.yml")
    results = {}
    for name, make in alert_tests.HIDDEN.items():
        test_path = folder / f"{name}.test.yml"
        test_path.write_text(yaml.safe_dump(alert_tests.test_file("rules.yml",
                                                                  make(random.Random())),
                                            sort_keys=False))
        results[name] = promtool_test(test_path).ok
    return results


def test_hidden_promtool_tests(tmp_path):
    assert all(_hidden_results(SOLUTION / "alerts" / "triton-alerts.yml", tmp_path / "s").values())
    by_version = _hidden_results(WRONG / "wrong_alert_by_version" / "alerts" / "triton-alerts.yml",
                                 tmp_path / "v")
    assert not by_version["TritonQueueTimeHigh"] and not by_version["TritonPendingRequestsHigh"]
    inverted = _hidden_results(
        WRONG / "wrong_alert_ratio_inverted" / "alerts" / "triton-alerts.yml", tmp_path / "i")
    assert inverted == {**{k: True for k in alert_tests.HIDDEN}, "TritonFailureRatioHigh": False}


def test_rule_rewrites():
    assert alert_rules.duration_seconds("1m30s") == 90
    assert alert_rules.duration_seconds(None) == 0
    with pytest.raises(ValueError):
        alert_rules.duration_seconds("30 s")
    rules = alert_rules.load_rules(SOLUTION / "alerts" / "triton-alerts.yml")
    live = alert_rules.rewritten(rules, annotations=True, max_for="1s")
    assert {r["for"] for r in alert_rules.alerting_rules(live)} == {"1s"}
    assert all("annotations" not in r for r in alert_rules.alerting_rules(
        alert_rules.rewritten(rules, annotations=False)))
    assert all("annotations" in r for r in alert_rules.alerting_rules(rules))  # a copy
