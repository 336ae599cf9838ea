"""alertmanager.yml: amtool, then a real Alertmanager with the student's config delivering
to the grader's webhook sink: hidden alerts for routing, grouping and inhibition, and the
alert the live overload fired (README, 'alertmanager.yml')."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from labgrade import Fail
from labgrade.monitoring import alertmanager as am_config
from labgrade.runtime.prometheus import Alertmanager, WebhookSink

from .stack import ungradable_without_tools


@pytest.mark.points(4)
def test_alertmanager_config_valid(alertmanager_file):
    with ungradable_without_tools():
        alertmanager_file.require()


def _alert(minutes: int = 10, **labels: str) -> dict:
    now = dt.datetime.now(dt.timezone.utc)
    return {"labels": labels, "annotations": {},
            "startsAt": now.isoformat(), "endsAt": (now + dt.timedelta(minutes=minutes)).isoformat()}


def _deliveries(sink: WebhookSink) -> list[tuple[str, tuple]]:
    """(receiver path, sorted alert label sets) per notification of firing alerts."""
    out = []
    for note in sink.notifications:
        alerts = [a for a in note.body.get("alerts", []) if a.get("status") == "firing"]
        if alerts:
            out.append((note.path.strip("/"), tuple(sorted(
                tuple(sorted(a["labels"].items())) for a in alerts))))
    return out


@pytest.mark.points(8)
def test_routing_grouping_inhibition(alertmanager_file, run_dir, score):
    """Hidden alerts, two models whose names are prefixes of each other:
    critical -> oncall, warning -> team; one notification per (alertname, model_name);
    a critical alert silences the warnings of its own model only."""
    with ungradable_without_tools():
        text = alertmanager_file.require()
        with WebhookSink() as sink, Alertmanager(am_config.for_grading(text, sink.url),
                                                 work_dir=run_dir / "am-hidden") as manager:
            backlog = dict(alertname="VLLMQueueBacklog", severity="critical", model_name="tiny")
            down = dict(alertname="VLLMTargetDown", severity="critical", job="vllm",
                        instance="127.0.0.1:8000")
            manager.post_alerts([_alert(**backlog), _alert(**down)])
            time.sleep(1.5)  # the inhibiting alert is active before its targets arrive
            ttft_tiny = dict(alertname="VLLMHighTTFT", severity="warning", model_name="tiny")
            ttft_llama = dict(alertname="VLLMHighTTFT", severity="warning",
                              model_name="tiny-llama")
            kv = [dict(alertname="VLLMKVCacheNearFull", severity="warning",
                       model_name="tiny-llama", engine=e) for e in ("0", "1")]
            manager.post_alerts([_alert(**ttft_tiny), _alert(**ttft_llama),
                                 *[_alert(**k) for k in kv]])
            expected = {
                ("oncall", (tuple(sorted(backlog.items())),)),
                ("oncall", (tuple(sorted(down.items())),)),
                ("team", (tuple(sorted(ttft_llama.items())),)),
                ("team", tuple(sorted(tuple(sorted(k.items())) for k in kv))),
            }
            deadline = time.monotonic() + 12
            while time.monotonic() < deadline and not expected <= set(_deliveries(sink)):
                time.sleep(0.2)
            time.sleep(2.5)  # a notification that must not come has had its chance
            got = _deliveries(sink)
    score.measure(deliveries=[[p, [dict(a) for a in alerts]] for p, alerts in got])
    problems = []
    for receiver, alerts in sorted(expected - set(got)):
        labelsets = [dict(a) for a in alerts]
        hint = ""
        if any(a.get("severity") == "warning" and a.get("model_name") != "tiny"
               for a in labelsets):
            hint = (" (nothing critical fired for this model: does an inhibit rule silence "
                    "other models' warnings? it needs equal: [model_name])")
        problems.append(f"expected one notification to {receiver!r} with {labelsets}{hint}")
    for receiver, alerts in got:
        labelsets = [dict(a) for a in alerts]
        if any(a == ttft_tiny for a in labelsets):
            problems.append(f"{ttft_tiny} was delivered to {receiver!r}: a firing critical "
                            "alert of the same model must inhibit it")
        elif (receiver, alerts) not in expected:
            problems.append(f"unexpected notification to {receiver!r}: {labelsets}")
    if problems:
        raise Fail("Alertmanager with your config (webhooks pointed at the grader, timings "
                   "shortened) delivered differently from the README's routes:\n- "
                   + "\n- ".join(problems))


@pytest.mark.points(6)
def test_live_alert_delivered(alert_run, monitoring, settings, score):
    """The overload's backlog alert went Prometheus -> Alertmanager -> the on-call
    webhook with its labels."""
    with ungradable_without_tools():
        stack = monitoring.get()
        if stack.alertmanager is None:
            raise Fail(f"no Alertmanager ran with your config: {stack.alertmanager_problem}")
        alert_run.get()
        name, model = settings["delivered_alert"], settings["served_model_name"]

        def wanted(note) -> bool:
            return any(a.get("labels", {}).get("alertname") == name
                       for a in note.body.get("alerts", []))

        note = stack.sink.wait_for(wanted, timeout=settings["delivery_timeout_s"])
    seen = [(n.path, n.alertnames) for n in stack.sink.notifications]
    score.measure(notifications=seen)
    if note is None:
        raise Fail(f"{name} fired in Prometheus during the overload but no notification "
                   f"for it reached the webhook within {settings['delivery_timeout_s']} s; "
                   f"notifications seen: {seen}")
    alert = next(a for a in note.body["alerts"] if a["labels"].get("alertname") == name)
    want = {"alertname": name, "severity": "critical", "model_name": model}
    wrong = {k: alert["labels"].get(k) for k, v in want.items() if alert["labels"].get(k) != v}
    if note.path.strip("/") != "oncall" or wrong:
        raise Fail(f"{name} reached receiver {note.path.strip('/')!r} with labels "
                   f"{alert['labels']}; expected receiver 'oncall' and labels {want}")
