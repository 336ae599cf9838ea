"""rules.yml offline: promtool check rules, the student's own rule tests, then the hidden
promtool unit tests on synthetic series (README, 'rules.yml')."""

from __future__ import annotations

import pytest
import yaml

from labgrade import Fail
from labgrade.monitoring import tools

from .rulefiles import run_hidden
from .stack import ungradable_without_tools

RECORDS = ("model_name:vllm_requests:rate30s", "model_name:vllm_ttft_seconds:p95_30s",
           "model_name:vllm_kv_cache_usage:max")
ALERTS = ("VLLMHighTTFT", "VLLMQueueBacklog", "VLLMKVCacheNearFull", "VLLMTargetDown",
          "VLLMErrorBudgetBurn")
STUDENT_TESTS = "rules_test.yml"


@pytest.mark.points(8)
def test_rules_valid(rules_file, submission, score):
    """promtool accepts rules.yml, it names every required rule, and the student's own
    rules_test.yml (if shipped) passes."""
    with ungradable_without_tools():
        path = rules_file.require()
        names = {rule.get("record") or rule.get("alert")
                 for group in yaml.safe_load(path.read_text()).get("groups") or []
                 for rule in group.get("rules") or []}
        missing = [n for n in RECORDS + ALERTS if n not in names]
        if missing:
            raise Fail(f"rules.yml passes promtool but lacks {', '.join(missing)} "
                       "(README, 'rules.yml': the names are exact)")
        own = submission.path / STUDENT_TESTS
        if own.exists():
            result = tools.test_rules(own)
            if not result.ok:
                raise Fail(f"your own {STUDENT_TESTS} fails (`promtool test rules "
                           f"{STUDENT_TESTS}`):\n{result.output}")
            score.measure(own_rule_tests="passed")
        else:
            score.measure(own_rule_tests="not shipped")


@pytest.mark.points(7)
def test_recording_rules(rules_file, run_dir):
    with ungradable_without_tools():
        run_hidden(rules_file.require(), "recording", run_dir / "rule_tests" / "recording",
                   "request rate, TTFT p95 from buckets, KV-cache usage")


@pytest.mark.points(7)
def test_latency_alerts(rules_file, run_dir):
    with ungradable_without_tools():
        run_hidden(rules_file.require(), "latency", run_dir / "rule_tests" / "latency",
                   "VLLMHighTTFT and VLLMQueueBacklog")


@pytest.mark.points(5)
def test_capacity_alerts(rules_file, run_dir):
    with ungradable_without_tools():
        run_hidden(rules_file.require(), "capacity", run_dir / "rule_tests" / "capacity",
                   "VLLMKVCacheNearFull and VLLMTargetDown")


@pytest.mark.points(7)
def test_error_budget_burn_alert(rules_file, run_dir):
    with ungradable_without_tools():
        run_hidden(rules_file.require(), "burn", run_dir / "rule_tests" / "burn",
                   "VLLMErrorBudgetBurn (multi-window burn rate)")
