"""Items: the event loop never blocks, requests overlap, a disconnect aborts the generation.

Timing on a shared machine is noisy, so the checks compare the app with itself: /health
latency against the streams' own duration, first tokens against the first finish.
"""

import pytest

from labgrade import Fail

from . import traffic


def _load(once) -> traffic.LoadRun:
    load_run: traffic.LoadRun = once.get()
    if load_run.failed:
        n = len(load_run.rounds[-1].streams)
        raise Fail(f"{len(load_run.failed)} of {n} concurrent streams failed: "
                   f"{load_run.failed[0]}")
    return load_run


@pytest.mark.points(10)
def test_requests_overlap(load_run, settings, score):
    """Served one at a time, N requests take N times as long as one, and no second request
    gets a token before the first has finished; batched by the engine, they take little
    longer than one and all start at once. Both must show, in one of up to 3 rounds."""
    run = _load(load_run)
    best = run.best_overlap(settings)
    together, n, speedup = best.in_flight_together(), len(best.streams), best.speedup()
    score.measure(streams=n, rounds=len(run.rounds), in_flight_together=together,
                  speedup=round(speedup, 2), solo_s=round(best.solo.e2e, 3),
                  makespan_s=round(best.makespan(), 3),
                  last_first_token_s=round(best.last_first_token(), 3),
                  first_finish_s=round(best.first_finish(), 3),
                  **{"limit:speedup": {"min": settings["overlap_min_speedup"]}})
    if together < 2:
        raise Fail(f"{n} streams were sent at once, but no stream got its first token before "
                   f"the first one had finished ({best.first_finish():.2f} s; the last first "
                   f"token came at {best.last_first_token():.2f} s): requests are served one "
                   "after another. Await the engine's async generator in async handlers; never "
                   "hold a lock or call a blocking generate() around a whole request.")
    if speedup < settings["overlap_min_speedup"]:
        raise Fail(f"one request alone took {best.solo.e2e:.2f} s and {n} sent at once took "
                   f"{best.makespan():.2f} s together: {speedup:.1f}x the work in the time of "
                   f"one, where batching gives close to {n}x (at least "
                   f"{settings['overlap_min_speedup']:g}x required). The requests ran one after "
                   "another: await the engine's async generator; never hold a lock or call a "
                   "blocking generate() around a whole request.")


@pytest.mark.points(10)
def test_health_responsive_under_load(load_run, settings, score):
    run = _load(load_run)
    best = run.best_health(settings)
    polls = best.polls
    if not polls.latencies:
        raise Fail("/health was never answered while the streams ran")
    median, worst = polls.quantile(0.5), max(polls.latencies)
    e2e, limit = best.median_e2e(), best.health_limit(settings)
    score.measure(health_median_s=round(median, 4), health_max_s=round(worst, 4),
                  health_polls=len(polls.latencies), stream_median_e2e_s=round(e2e, 3),
                  health_limit_s=round(limit, 4), rounds=len(run.rounds),
                  **{"limit:health_median_s": {"max": round(limit, 4)}})
    if median > limit:
        raise Fail(f"while {len(best.streams)} streams ran (median {e2e:.2f} s each), GET "
                   f"/health took {median * 1000:.0f} ms at the median (at most "
                   f"{limit * 1000:.0f} ms allowed), {worst:.2f} s at worst, in the best of "
                   f"{len(run.rounds)} tries: something blocks the event loop. Look for "
                   "synchronous calls in async handlers (time.sleep, LLM.generate, "
                   "requests.*); await the async engine instead.")
    if polls.failures:
        raise Fail(f"/health failed {len(polls.failures)} time(s) under load "
                   f"(e.g. {polls.failures[0]})")


def _abort_item(app_url: str, settings: dict, score, *, streaming: bool) -> None:
    run = traffic.disconnect(app_url, settings, streaming=streaming)
    kind = "streamed" if streaming else "non-streamed"
    if run.missing:
        raise Fail(f"the grader watches vLLM's own metrics on your /metrics to see whether a "
                   f"request keeps running, but: {run.missing}. Serve prometheus_client's "
                   "default registry (vLLM registers vllm:* metrics there; README, 'Metrics').")
    if run.error:
        raise Fail(f"the disconnect check of a {kind} request could not run: {run.error}")
    if run.finished_first:
        raise Fail(f"the {kind} request of {run.max_tokens} tokens finished before the grader "
                   "could disconnect; it must take longer than that (is max_tokens honoured?)")
    score.measure(tokens_after_disconnect=run.generated, max_tokens=run.max_tokens,
                  disconnect_after_s=round(run.cut_after, 3),
                  engine_idle_after_s=round(run.settled_after, 3),
                  **{"limit:tokens_after_disconnect": {
                      "max": settings["abort_max_fraction"] * run.max_tokens}})
    if not run.settled:
        raise Fail(f"after the client of a {kind} request disconnected, the engine was still "
                   f"busy {settings['abort_settle_timeout_s']} s later")
    if run.generated >= settings["abort_max_fraction"] * run.max_tokens:
        hint = ("cancelling the streaming generator (Starlette does that on disconnect) must "
                "reach vLLM's generate(): do not generate in a separate task" if streaming else
                "a plain (non-streamed) handler is not cancelled on disconnect by itself: "
                "watch for the client going away (await request.receive() for "
                "'http.disconnect', or request.is_disconnected()) and cancel the generation")
        raise Fail(f"the client disconnected {run.cut_after:.2f} s into a {kind} request for "
                   f"{run.max_tokens} tokens, but the engine went on and generated "
                   f"{run.generated:g} tokens for it: the request was not aborted. The engine "
                   f"aborts a request when its generate() iterator is cancelled or closed; "
                   f"{hint}.")


@pytest.mark.points(5)
def test_disconnect_aborts_stream(app_url, settings, score):
    _abort_item(app_url, settings, score, streaming=True)


@pytest.mark.points(5)
def test_disconnect_aborts_plain_request(app_url, settings, score):
    _abort_item(app_url, settings, score, streaming=False)
