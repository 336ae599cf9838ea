"""Items: /metrics (prometheus_client) agrees with the traffic the grader sent.

The grader scrapes /metrics, sends known requests (completions and chat, plain and
streamed, and some that must be refused with 422), scrapes again and compares the change
of each metric with what it sent.
"""

import math

import pytest

from labgrade import Fail

from .traffic import CHAT, COMPLETIONS, MetricsRun

REQUESTS = "app_requests_total"
LATENCY = "app_request_latency_seconds"
TOKENS = "app_generated_tokens_total"


def _usable(once) -> MetricsRun:
    run: MetricsRun = once.get()
    for page, when in ((run.before, "before"), (run.after, "after")):
        if page.error:
            raise Fail(f"/metrics could not be read {when} the traffic: {page.error}. Serve "
                       "prometheus_client's generate_latest() with its CONTENT_TYPE_LATEST.")
    broken = [s for s in run.sent if s.status == 0 or (s.status == 200 and s.note)]
    if broken:
        raise Fail(f"a request of the metrics check failed: {broken[0].endpoint}: "
                   f"{broken[0].note}")
    return run


@pytest.mark.points(5)
def test_metrics_requests_by_status(metrics_run):
    run = _usable(metrics_run)
    if not run.after.has(REQUESTS):
        raise Fail(f"/metrics has no counter {REQUESTS} (a Counter named 'app_requests' with "
                   "labels endpoint and status; README, 'Metrics')")
    wrong = []
    for endpoint in (COMPLETIONS, CHAT):
        for status in sorted({s.status for s in run.sent if s.endpoint == endpoint}):
            sent = run.count(endpoint, status)
            seen = run.after.value(REQUESTS, endpoint=endpoint, status=str(status)) - \
                run.before.value(REQUESTS, endpoint=endpoint, status=str(status))
            if seen != sent:
                wrong.append(f'{{endpoint="{endpoint}", status="{status}"}} went up by '
                             f"{seen:g}, the grader sent {sent}")
    if wrong:
        hint = (" Requests refused by validation (422) never reach your handler: count in a "
                "middleware that sees every response." if any('"422"' in w for w in wrong)
                else "")
        raise Fail(f"{REQUESTS} does not match the traffic: " + "; ".join(wrong) + "." + hint)


@pytest.mark.points(5)
def test_metrics_latency_histogram(metrics_run, score):
    run = _usable(metrics_run)
    if run.after.types.get(LATENCY) != "histogram":
        raise Fail(f"/metrics has no histogram {LATENCY} (a Histogram with label endpoint; "
                   "README, 'Metrics')")
    for endpoint in (COMPLETIONS, CHAT):
        buckets = sorted(((float(lab["le"]), v) for lab, v in
                          run.after.series(LATENCY + "_bucket", endpoint=endpoint)),
                         key=lambda b: b[0])
        count = run.after.value(LATENCY + "_count", endpoint=endpoint)
        if not buckets or buckets[-1][0] != math.inf or buckets[-1][1] != count or \
                any(b[1] > c[1] for b, c in zip(buckets, buckets[1:])):
            raise Fail(f"{LATENCY}{{endpoint=\"{endpoint}\"}} is not a well-formed histogram "
                       "(cumulative buckets ending in le=\"+Inf\" equal to _count)")
        grew = count - run.before.value(LATENCY + "_count", endpoint=endpoint)
        everything, served = run.count(endpoint), run.count(endpoint, 200)
        if grew not in (everything, served):
            raise Fail(f"{LATENCY}_count{{endpoint=\"{endpoint}\"}} went up by {grew:g}; the "
                       f"grader sent {everything} requests there ({served} answered 200). "
                       "Observe one latency per request.")
        counted = [s for s in run.sent if s.endpoint == endpoint
                   and (grew == everything or s.status == 200)]
        client_sum = sum(s.latency for s in counted)
        server_sum = run.after.value(LATENCY + "_sum", endpoint=endpoint) - \
            run.before.value(LATENCY + "_sum", endpoint=endpoint)
        score.measure(**{f"latency_sum_{'chat' if endpoint == CHAT else 'completions'}_s":
                         [round(server_sum, 3), round(client_sum, 3)]})
        if server_sum > client_sum * 1.1 + 0.05 * len(counted):
            raise Fail(f"the latencies recorded for {endpoint} add up to {server_sum:.3f} s, "
                       f"more than the {client_sum:.3f} s the grader measured from outside")
        if server_sum < 0.5 * client_sum:
            raise Fail(f"the latencies recorded for {endpoint} add up to {server_sum:.3f} s, "
                       f"but the grader measured {client_sum:.3f} s from outside. For a stream "
                       "the latency runs until its last chunk is sent, not until the handler "
                       "returns the StreamingResponse.")


@pytest.mark.points(5)
def test_metrics_generated_tokens(metrics_run):
    run = _usable(metrics_run)
    if not run.after.has(TOKENS):
        raise Fail(f"/metrics has no counter {TOKENS} (a Counter named "
                   "'app_generated_tokens'; README, 'Metrics')")
    served = [s for s in run.sent if s.status == 200]
    if any(s.completion_tokens is None for s in served):
        raise Fail("some answers report no usage.completion_tokens, so the grader cannot tell "
                   "how many tokens were generated (streams: support stream_options."
                   "include_usage)")
    sent = sum(s.completion_tokens for s in served)
    grew = run.after.value(TOKENS) - run.before.value(TOKENS)
    if grew != sent:
        raise Fail(f"{TOKENS} went up by {grew:g}; the answers report {sent} completion tokens "
                   "in all (usage.completion_tokens, streams included). Count completion tokens "
                   "only: not prompt tokens, chunks or characters.")
