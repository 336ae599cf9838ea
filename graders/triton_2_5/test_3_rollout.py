"""Items: the student's rollout() and rollback() (rollout.py, run in the worker) under
continuous load from the grader's load generator (loadgen.py): zero failed requests, the
served version switches when the function returns, and a rollback from a NEW process goes
back to the version served before the last rollout (three versions: "previous" is neither
the oldest nor "current minus one")."""

from __future__ import annotations

import time

import pytest

from labgrade import Fail
from labgrade.kit import call_student

from .loadgen import LoadGenerator

MODEL = "detector"
SETTLE = 0.3  # seconds of traffic watched after a call returned


def _call(submission, func: str, *args):
    return call_student(submission, "rollout", func, *args, timeout=90)


def _preload(submission) -> None:
    """The worker's start-up and imports happen now, not while the traffic runs."""
    submission.call("labgrade.probes.triton_client", "preload", "rollout", timeout=60)


def _check_switch(triton, load: LoadGenerator, what: str, version: int, started: float,
                  returned: float, failed_max: int) -> dict:
    """After `what` returned: only `version` ready, nothing failed since `started`, and
    every request sent after it returned answered by `version`."""
    ready = triton.wait_ready_versions(MODEL, {version})
    failed = load.failed(started)
    after = [a for a in load.sent_after(returned) if a.sent <= returned + SETTLE]
    other = [a for a in after if a.version is not None and a.version != str(version)]
    step = {"call": what, "seconds": round(returned - started, 3),
            "requests": len([a for a in load.answers if a.sent >= started]),
            "failed": len(failed), "ready_after": sorted(ready)}
    if len(failed) > failed_max:
        example = failed[0].error[:200]
        gone = any(w in example for w in ("unknown model", "no available versions",
                                          "not ready", "unavailable", "not found"))
        hint = (" The model had no ready version for a moment: do not unload first. Load the "
                "new version BESIDE the current one (a configuration override whose "
                "version_policy lists both), then load again with only the new one — Triton "
                "keeps serving the loaded versions until a new configuration is in place."
                if gone else "")
        raise Fail(f"{len(failed)} of {step['requests']} requests from the grader's "
                   f"{load.clients} clients failed during {what} (for example: {example}).{hint}")
    if ready != {version}:
        raise Fail(f"after {what} returned, the server has versions {sorted(ready)} of "
                   f"{MODEL} ready; expected only [{version}] (unload the old version once "
                   "the new one serves)")
    if other:
        raise Fail(f"{len(other)} of {len(after)} requests sent after {what} returned were "
                   f"answered by version {other[0].version}, not {version}: the switch must "
                   "be complete when your function returns")
    return step


@pytest.mark.points(12)
def test_rollout_zero_downtime(submission, triton, settings, score):
    """From version 1, rollout(url, "detector", 2) then rollout(url, "detector", 3) while the
    grader's clients keep sending unversioned requests: none fails, each call returns the
    version it replaced, and when it returns only the new version is ready and answering."""
    server = triton.require()
    triton.deploy(MODEL, [1])
    _preload(submission)
    steps = []
    with LoadGenerator(server, MODEL, clients=settings["rollout_clients"]) as load:
        load.wait_for_answers(20)
        current = 1
        try:
            for version in settings["rollout_versions"]:
                started = time.monotonic()
                replaced = _call(submission, "rollout", triton.http, MODEL, version)
                returned = time.monotonic()
                time.sleep(SETTLE)
                steps.append(_check_switch(triton, load, f"rollout(url, '{MODEL}', {version})",
                                           version, started, returned,
                                           settings["rollout_failed_max"]))
                if replaced is None or str(replaced) != str(current):
                    raise Fail(f"rollout(url, '{MODEL}', {version}) returned {replaced!r}; it "
                               f"replaced version {current}, so it must return {current} "
                               "(an int)")
                current = version
        finally:
            score.measure(failed_requests=len(load.failed()), requests=len(load.answers),
                          served_by_version=load.served(), steps=steps)


KEEP_HISTORY = ("Keep the history where a new process finds it (the server can hold it: a "
                "configuration override may carry `parameters`).")


@pytest.mark.points(8)
def test_rollback_to_previous(submission, triton, settings, score):
    """rollback(url, "detector"), called from a NEW process under load, serves again the
    version served before the last rollout and returns it: 2 after rollouts 1 -> 2 -> 3 (not
    the oldest, 1), and 1 after a rollout 1 -> 3 (not "current minus one", 2)."""
    server = triton.require()
    measured = []
    try:
        for rollouts, expected in (([2, 3], 2), ([3], 1)):
            triton.deploy(MODEL, [1])
            for version in rollouts:
                _call(submission, "rollout", triton.http, MODEL, version)
            history = " -> ".join(str(v) for v in [1, *rollouts])
            # the history must live outside the memory of the process that rolled out
            submission.worker().kill()
            _preload(submission)
            with LoadGenerator(server, MODEL, clients=settings["rollout_clients"]) as load:
                load.wait_for_answers(10)
                started = time.monotonic()
                try:
                    value = _call(submission, "rollback", triton.http, MODEL)
                except Fail as exc:
                    raise Fail(f"after rollouts {history}, rollback(url, '{MODEL}') was called "
                               f"from a new process (the one that rolled out is gone) and "
                               f"failed: {exc}\n{KEEP_HISTORY}") from None
                returned = time.monotonic()
                time.sleep(SETTLE)
            ready = triton.wait_ready_versions(MODEL, {expected})
            measured.append({"rollouts": history, "returned": value, "ready_after": sorted(ready),
                             "failed": len(load.failed(started))})
            if str(value) != str(expected) or ready != {expected}:
                raise Fail(f"after rollouts {history}, rollback(url, '{MODEL}') — called from a "
                           f"new process — returned {value!r} and left {sorted(ready)} ready; "
                           f"expected {expected} and [{expected}]: the version served before "
                           f"the last rollout (not the oldest, not current minus one). "
                           f"{KEEP_HISTORY}")
            _check_switch(triton, load, "rollback", expected, started, returned,
                          settings["rollout_failed_max"])
    finally:
        score.measure(rollback_failed_requests=sum(m["failed"] for m in measured),
                      rollbacks=measured)
