"""Hidden promtool unit tests for the student's Triton alerts, one test file per alert,
derived from the README's definitions: the thresholds just above and below, a model
served in two versions (the alert is per model), several failure reasons, an idle model
(0/0 must not fire), names that are prefixes of other names, a model that disappears next
to one where only a version goes. Fresh model names each run."""

from __future__ import annotations

import random

INTERVAL = "15s"
EVAL = "2m"   # conditions hold from the second sample (15 s): a `for:` up to 30 s has fired


def _counter(step: float, samples: int = 20) -> str:
    return f"0+{step:g}x{samples}"


def _series(name: str, labels: dict[str, str], values: str) -> dict:
    text = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return {"series": f"{name}{{{text}}}", "values": values}


def _test(alertname: str, series: list[dict], firing: list[str], severity: str,
          quiet_at: str | None = None, at: str = EVAL) -> dict:
    checks = [{"eval_time": at, "alertname": alertname,
               "exp_alerts": [{"exp_labels": {"model": m, "severity": severity}}
                              for m in sorted(firing)]}]
    if quiet_at is not None:
        checks.insert(0, {"eval_time": quiet_at, "alertname": alertname, "exp_alerts": []})
    return {"interval": INTERVAL, "input_series": series, "alert_rule_test": checks}


def _names(rng: random.Random, count: int) -> list[str]:
    stems = rng.sample(["detector", "ranker", "embedder", "scorer", "reader", "tagger"], count)
    return [f"{s}{rng.randrange(1, 9)}" for s in stems]


def queue_time(rng: random.Random) -> dict:
    """Average queue time per successful request over 1 minute above 100 ms, per model."""
    hot, idle, split = _names(rng, 3)
    cool = hot + "_v2"  # a prefix of it must not decide
    ok = rng.choice([10, 20])
    series = [
        _series("nv_inference_request_success", {"model": hot, "version": "1"}, _counter(ok)),
        _series("nv_inference_queue_duration_us", {"model": hot, "version": "1"},
                _counter(ok * 150_000)),
        _series("nv_inference_request_success", {"model": cool, "version": "1"}, _counter(ok)),
        _series("nv_inference_queue_duration_us", {"model": cool, "version": "1"},
                _counter(ok * 60_000)),
        _series("nv_inference_request_success", {"model": idle, "version": "1"}, "0x20"),
        _series("nv_inference_queue_duration_us", {"model": idle, "version": "1"}, "0x20"),
        # two versions: 80 ms and 140 ms, 110 ms for the model
        _series("nv_inference_request_success", {"model": split, "version": "1"}, _counter(5)),
        _series("nv_inference_queue_duration_us", {"model": split, "version": "1"},
                _counter(5 * 80_000)),
        _series("nv_inference_request_success", {"model": split, "version": "2"}, _counter(5)),
        _series("nv_inference_queue_duration_us", {"model": split, "version": "2"},
                _counter(5 * 140_000)),
    ]
    return _test("TritonQueueTimeHigh", series, [hot, split], "warning")


def failure_ratio(rng: random.Random) -> dict:
    """Failed / (successful + failed) over 1 minute above 5 %, per model, all reasons."""
    bad, rejected, mixed, idle = _names(rng, 4)
    fine = bad + "_large"
    reasons = ("BACKEND", "OTHER", "REJECTED", "CANCELED")

    def model(name: str, success: float, failures: dict[str, float]) -> list[dict]:
        out = [_series("nv_inference_request_success", {"model": name, "version": "1"},
                       _counter(success) if success else "0x20")]
        for reason in reasons:
            step = failures.get(reason, 0)
            out.append(_series("nv_inference_request_failure",
                               {"model": name, "reason": reason, "version": "1"},
                               _counter(step) if step else "0x20"))
        return out

    series = (model(bad, 90, {"BACKEND": 10}) + model(fine, 99, {"BACKEND": 1})
              + model(rejected, 0, {"REJECTED": 4})
              + model(mixed, 90, {"BACKEND": 3, "OTHER": 3, "CANCELED": 3})
              + model(idle, 0, {}))
    return _test("TritonFailureRatioHigh", series, [bad, rejected, mixed], "critical")


def pending(rng: random.Random) -> dict:
    """Pending requests summed over the model's versions above 8."""
    busy, calm, split, edge = _names(rng, 4)
    series = [
        _series("nv_inference_pending_request_count", {"model": busy, "version": "1"}, "12x20"),
        _series("nv_inference_pending_request_count", {"model": calm, "version": "1"}, "3x20"),
        _series("nv_inference_pending_request_count", {"model": split, "version": "1"}, "5x20"),
        _series("nv_inference_pending_request_count", {"model": split, "version": "2"}, "5x20"),
        _series("nv_inference_pending_request_count", {"model": edge, "version": "1"}, "8x20"),
    ]
    return _test("TritonPendingRequestsHigh", series, [busy, split], "warning")


def model_not_ready(rng: random.Random) -> dict:
    """A model whose series all disappear (unloaded, failed reload) fires; a model that
    only loses one version does not; nothing fires while all are there."""
    gone, stays, canary = _names(rng, 3)
    series = [
        _series("nv_inference_count", {"model": gone, "version": "1"}, "0+1x4 stale"),
        _series("nv_inference_count", {"model": stays, "version": "1"}, _counter(1)),
        _series("nv_inference_count", {"model": canary, "version": "1"}, _counter(1)),
        _series("nv_inference_count", {"model": canary, "version": "2"}, "0+1x4 stale"),
    ]
    # gone at 75 s: a `for:` up to 30 s has fired by 2m30s
    return _test("TritonModelNotReady", series, [gone], "critical", quiet_at="45s", at="2m30s")


HIDDEN = {"TritonQueueTimeHigh": queue_time, "TritonFailureRatioHigh": failure_ratio,
          "TritonPendingRequestsHigh": pending, "TritonModelNotReady": model_not_ready}


def test_file(rules_file: str, test: dict) -> dict:
    return {"rule_files": [rules_file], "evaluation_interval": INTERVAL, "tests": [test]}


test_file.__test__ = False  # not a pytest test
