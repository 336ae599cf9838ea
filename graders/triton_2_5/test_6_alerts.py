"""Items: the student's alert rules on Triton's nv_* metrics (alerts/triton-alerts.yml).
`promtool check rules` and the published names and severities; HIDDEN promtool unit tests
(alert_tests.py); and a live run: a real tritonserver scraped by a real Prometheus that
evaluates the rules while the grader idles, overloads a slow model, makes a flaky model
fail and unloads it (alerts_live.py). The alert timeline goes into grade.json."""

from __future__ import annotations

import random
import time

import pytest
import yaml

from labgrade import Fail
from labgrade.monitoring.tools import check_rules, test_rules
from labgrade.runtime.process import ServiceError
from labgrade.runtime.prometheus import MonitoringToolMissing, PrometheusServer
from labgrade.runtime.triton import TritonNotInstalled, TritonServer
from labgrade.scoring import Ungradable

from .alert_rules import alerting_rules, duration_seconds, load_rules, rewritten, write
from .alert_tests import HIDDEN, test_file
from .alerts_live import FLAKY, SLOW, STEADY, AlertWatcher, Traffic, write_repository

RULES = "alerts/triton-alerts.yml"
SEVERITY = {"TritonQueueTimeHigh": "warning", "TritonFailureRatioHigh": "critical",
            "TritonPendingRequestsHigh": "warning", "TritonModelNotReady": "critical"}


def checked_rules(submission, settings) -> dict:
    """The rule file once promtool accepts it and it defines the published alerts."""
    path = submission.require(RULES)
    try:
        result = check_rules(path)
    except MonitoringToolMissing as exc:
        raise Ungradable(str(exc)) from None
    if not result.ok:
        raise Fail(f"promtool check rules rejected {RULES}:\n{result.output}")
    rules = load_rules(path)
    by_name = {rule["alert"]: rule for rule in alerting_rules(rules)}
    problems = []
    for name in settings["alert_names"]:
        rule = by_name.get(name)
        if rule is None:
            problems.append(f"no alert named {name}")
            continue
        severity = (rule.get("labels") or {}).get("severity")
        if severity != SEVERITY[name]:
            problems.append(f"{name}: labels.severity is {severity!r}; the README says "
                            f"{SEVERITY[name]!r}")
        if duration_seconds(rule.get("for")) > settings["alert_for_max"]:
            problems.append(f"{name}: for: {rule.get('for')} is longer than "
                            f"{settings['alert_for_max']} s")
    if problems:
        raise Fail(f"{RULES} passes promtool, but:\n" + "\n".join(f"- {p}" for p in problems))
    return rules


@pytest.mark.points(3)
def test_alert_rules_check(submission, settings):
    """`promtool check rules` accepts the file; it defines the four published alerts with
    their severities and a `for:` no longer than published."""
    checked_rules(submission, settings)


@pytest.mark.points(10)
def test_alert_rules_hidden_tests(submission, settings, run_dir, score):
    """Hidden `promtool test rules` files, one per alert (annotations left out: their text
    is free): thresholds just above and below, versions summed per model, every failure
    reason, idle models, prefix names, a vanished model vs a vanished version."""
    rules = checked_rules(submission, settings)
    folder = run_dir / "alert_tests"
    write(rewritten(rules, annotations=False), folder / "rules.yml")
    rng = random.Random()
    failures, passed = [], []
    for name, make in HIDDEN.items():
        test_path = folder / f"{name}.test.yml"
        test_path.write_text(yaml.safe_dump(test_file("rules.yml", make(rng)), sort_keys=False))
        result = test_rules(test_path)
        (passed if result.ok else failures).append(name)
        if not result.ok:
            failures[-1] = f"{name}:\n{result.output[-1500:]}"
    score.measure(hidden_tests_passed=passed)
    if failures:
        message = (f"{len(passed)} of {len(HIDDEN)} hidden promtool tests pass. "
                   "promtool's report (exp: what the README's definition gives, got: what "
                   "your rule gave):\n" + "\n".join(failures))
        if not passed:
            raise Fail(message)
        score.set(len(passed) / len(HIDDEN), message)


@pytest.mark.points(12)
@pytest.mark.budget(150)
def test_alerts_fire_live(submission, settings, run_dir, score):
    """Live: idle, nothing fires; 16 clients on a slow model fire TritonQueueTimeHigh and
    TritonPendingRequestsHigh for it (and not the failure alert); a flaky model failing half
    its requests fires TritonFailureRatioHigh; unloading it fires TritonModelNotReady.
    `for:` is shortened to 1 s for this run (the promtool tests check yours)."""
    rules = checked_rules(submission, settings)
    base = run_dir / "alerts_live"
    live_rules = write(rewritten(rules, annotations=True, max_for="1s"), base / "rules.yml")
    repository = write_repository(base / "model_repository")
    checks: dict[str, str] = {}  # check -> "" when it held, else why not
    try:
        with TritonServer(repository, log_dir=base, auto_complete_config=False,
                          stop_grace=0.0) as server:
            server.load_all([SLOW, FLAKY, STEADY])
            with PrometheusServer(work_dir=base / "prometheus",
                                  targets={"triton": [f"127.0.0.1:{server.metrics_port}"]},
                                  rule_files=[live_rules],
                                  scrape_interval=settings["scrape_interval"],
                                  evaluation_interval=settings["evaluation_interval"]) as prom:
                prom.wait_for_scrape("triton")
                with AlertWatcher(prom) as watch:
                    _run_phases(server, watch, checks, score)
                score.measure(alert_timeline=watch.timeline())
    except (TritonNotInstalled, MonitoringToolMissing) as exc:
        raise Ungradable(str(exc)) from None
    except ServiceError as exc:
        raise Fail(f"Prometheus did not run your rules: {exc}") from None
    failed = {k: v for k, v in checks.items() if v}
    score.measure(live_checks={k: not v for k, v in checks.items()})
    if failed:
        message = (f"{len(checks) - len(failed)} of {len(checks)} live checks hold:\n"
                   + "\n".join(f"- {k}: {v}" for k, v in failed.items())
                   + "\n(grade.json's alert_timeline has every state change)")
        if len(failed) == len(checks):
            raise Fail(message)
        score.set((len(checks) - len(failed)) / len(checks), message)


def _alarms(changes) -> str:
    return ", ".join(f"{a}{{model={m}}} {s} at {t:.1f} s" for t, a, m, s in changes)


def _run_phases(server, watch: AlertWatcher, checks: dict[str, str], score) -> None:
    time.sleep(6.0)
    idle = watch.active_since(0)
    checks["idle: nothing fires"] = f"alerts went active while idle: {_alarms(idle)}" if idle else ""
    started = watch.now()
    with Traffic(server, SLOW, clients=16) as slow:
        queue = watch.wait_firing("TritonQueueTimeHigh", SLOW, 25)
        pending = watch.wait_firing("TritonPendingRequestsHigh", SLOW, 10 if queue else 5)
    checks["slow model: TritonQueueTimeHigh fires"] = "" if queue is not None else \
        "did not fire within 25 s of 16 clients on a model that takes 50 ms per request"
    checks["slow model: TritonPendingRequestsHigh fires"] = "" if pending is not None else \
        "did not fire while 16 clients queued on a one-instance model"
    wrong = [c for c in watch.active_since(started)
             if c[1] in ("TritonFailureRatioHigh", "TritonModelNotReady")]
    checks["slow model: no failure or not-ready alert"] = \
        f"went active without failures: {_alarms(wrong)}" if wrong else ""
    with Traffic(server, FLAKY, clients=2, bad_every=2, pause=0.01) as flaky, \
            Traffic(server, STEADY, clients=1, pause=0.05):
        failing = watch.wait_firing("TritonFailureRatioHigh", FLAKY, 25)
    checks["flaky model: TritonFailureRatioHigh fires"] = "" if failing is not None else \
        f"did not fire within 25 s while {flaky.failed} of {flaky.sent} requests failed"
    wrong = [c for c in watch.active_since(started)
             if c[1] == "TritonFailureRatioHigh" and c[2] == STEADY]
    checks["steady model: no failure alert"] = \
        f"went active without failures: {_alarms(wrong)}" if wrong else ""
    server.unload(STEADY)
    gone = watch.wait_firing("TritonModelNotReady", STEADY, 25)
    checks["a model unloaded: TritonModelNotReady fires"] = "" if gone is not None else \
        "did not fire within 25 s of unloading the model"
    score.measure(seconds_to_fire={"TritonQueueTimeHigh": queue,
                                   "TritonPendingRequestsHigh": pending,
                                   "TritonFailureRatioHigh": failing,
                                   "TritonModelNotReady": gone},
                  slow_requests=slow.sent, flaky_requests=flaky.sent,
                  flaky_failed=flaky.failed)
