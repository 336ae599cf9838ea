"""The SLO alert on a live deployment: real Prometheus scrapes the real vLLM server and
evaluates the student's rules; light load must leave VLLMHighTTFT quiet, overload must take
it pending -> firing (README, 'The live alert')."""

from __future__ import annotations

import pytest

from labgrade import Fail


def _timeline(run, score) -> None:
    score.measure(alert=run.alert, healthy=run.healthy.as_measurement(),
                  overload=run.overload.as_measurement(),
                  healthy_requests=run.healthy_requests, overload_requests=run.overload_requests,
                  server_ttft_p95_s=run.ttft_p95_overload)


@pytest.mark.points(6)
def test_alert_quiet_under_light_load(alert_run, settings, score):
    run = alert_run.get()
    _timeline(run, score)
    if run.healthy_requests < 3:  # the server answered almost nothing: not the student's
        raise RuntimeError(f"light load sent only {run.healthy_requests} requests")
    if run.healthy.firing_at is not None:
        raise Fail(f"{run.alert} fired under light load (one request at a time, "
                   f"{run.healthy_requests} requests) after {run.healthy.firing_at:.1f} s: "
                   f"its threshold or expression is wrong (README: TTFT p95 over 30 s above "
                   f"0.5 s for 10 s). States seen: {run.healthy.as_measurement()['states']}")


@pytest.mark.points(10)
def test_alert_pending_then_firing(alert_run, vllm_server, settings, score):
    run = alert_run.get()
    _timeline(run, score)
    score.measure(server_ready_seconds=vllm_server.value.ready_after)
    tl = run.overload
    measured = f"server's TTFT p95 at the end: {run.ttft_p95_overload}"
    if tl.firing_at is None:
        raise Fail(f"{run.alert} did not fire within {settings['firing_timeout_s']} s of "
                   f"overload ({settings['overload_concurrency']} requests in flight; "
                   f"{measured} s). States seen: {tl.as_measurement()['states']}")
    if tl.pending_at is None:
        raise Fail(f"{run.alert} went straight to firing without a pending phase: it needs "
                   f"`for: {settings['live_alert_for_s']}s` (README)")
    held = tl.firing_at - tl.pending_at
    if held < settings["live_alert_for_s"] - 2:
        raise Fail(f"{run.alert} was pending only {held:.1f} s before firing; README: "
                   f"`for: {settings['live_alert_for_s']}s`")
