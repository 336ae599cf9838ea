"""Items: the student's lifecycle functions (lifecycle.py, run in the worker) — load and
unload, serving chosen versions, and a rollback without downtime — judged by what the
server does."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np
import pytest

from labgrade import Fail
from labgrade.kit import call_student


def _call(submission, func: str, *args):
    """lifecycle.func(*args) in the worker; Fail naming the function if it raises."""
    return call_student(submission, "lifecycle", func, *args, timeout=60)


def _answer(server, model: str, version: str = "") -> tuple[str | None, str]:
    """One request from the grader's own client: (the version that answered, error)."""
    import tritonclient.http as httpclient
    from tritonclient.utils import InferenceServerException

    client = server.http_client()
    try:
        x = httpclient.InferInput("FEATURES", [1, 4], "FP32")
        x.set_data_from_numpy(np.ones((1, 4), dtype=np.float32))
        result = client.infer(model, [x], model_version=version)
        score = result.as_numpy("SCORE")
        if score is None or score.shape != (1, 1):
            return None, f"SCORE came back as {None if score is None else list(score.shape)}"
        return str(result.get_response().get("model_version")), ""
    except InferenceServerException as exc:
        return None, str(exc)
    finally:
        client.close()


@pytest.mark.points(15)
def test_load_and_unload(submission, triton):
    """unload(url, "ranker") takes every ranker version down and leaves classifier alone;
    load(url, "ranker") brings ranker back, answering requests."""
    server = triton.require()
    triton.deploy("classifier", [2, 3])
    triton.deploy("ranker", [1])
    _call(submission, "unload", triton.http, "ranker")
    ranker = triton.wait_ready_versions("ranker", set())
    classifier = triton.ready_versions("classifier")
    if ranker:
        raise Fail(f"after unload(url, 'ranker') ranker still serves versions {sorted(ranker)}: "
                   "unload the model through the model-control API (unload_model)")
    if classifier != {2, 3}:
        raise Fail(f"unload(url, 'ranker') also changed classifier: it served [2, 3] before and "
                   f"serves {sorted(classifier)} after. Unload only the model you were given.")
    _call(submission, "load", triton.http, "ranker")
    ranker = triton.ready_versions("ranker")
    if not ranker:
        raise Fail("after load(url, 'ranker') no version of ranker is ready: load the model "
                   "through the model-control API (load_model)")
    version, error = _answer(server, "ranker")
    if error:
        raise Fail(f"after load(url, 'ranker') a request to ranker failed: {error}")
    if triton.ready_versions("classifier") != {2, 3}:
        raise Fail("load(url, 'ranker') changed the versions classifier serves: load only the "
                   "model you were given")


def _interface(config: dict) -> dict:
    def tensors(kind):
        return [(t.get("name"), t.get("data_type"), list(t.get("dims", [])))
                for t in config.get(kind, [])]
    return {"backend": config.get("backend"), "max_batch_size": config.get("max_batch_size", 0),
            "input": tensors("input"), "output": tensors("output")}


@pytest.mark.points(15)
def test_serve_versions(submission, triton):
    """serve_versions(url, "classifier", [1, 3]) then [3]: exactly those versions ready,
    the rest of the configuration (backend, batching, tensors) unchanged, requests answered
    by the versions asked for."""
    server = triton.require()
    triton.deploy("classifier", [2, 3])
    before = _interface(server.model_config("classifier"))
    for versions in ([1, 3], [3]):
        _call(submission, "serve_versions", triton.http, "classifier", versions)
        ready = triton.wait_ready_versions("classifier", set(versions))
        if ready != set(versions):
            raise Fail(f"after serve_versions(url, 'classifier', {versions}) the server has "
                       f"versions {sorted(ready)} ready; expected exactly {versions}. Load the "
                       "model with a configuration override whose version_policy is "
                       "specific { versions: [...] }.")
        after = _interface(server.model_config("classifier"))
        changed = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
        if changed:
            raise Fail(f"after serve_versions(url, 'classifier', {versions}) the model's "
                       "configuration changed besides its versions: "
                       + "; ".join(f"{k} {old} -> {new}" for k, (old, new) in changed.items())
                       + ". A configuration override replaces the WHOLE configuration: start "
                       "from the current one (get_model_config) and change only "
                       "version_policy.")
        for version in versions:
            answered, error = _answer(server, "classifier", str(version))
            if error or answered != str(version):
                raise Fail(f"after serve_versions(url, 'classifier', {versions}) a request to "
                           f"version {version} failed: {error or answered}")


@dataclass
class Traffic:
    """While the student's code runs: unversioned requests from the grader (`clients`
    threads) and a watch on the repository index every `interval` s (was any version of the
    model READY?). The watch catches a gap in service even when few requests fall into it."""

    server: object
    model: str
    clients: int = 1
    pause: float = 0.004
    interval: float = 0.01
    log: list[tuple[float, str | None, str]] = field(default_factory=list)
    gaps: list[float] = field(default_factory=list)       # times with no READY version
    polls: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> "Traffic":
        self._threads = [threading.Thread(target=self._send, daemon=True)
                         for _ in range(self.clients)]
        self._threads.append(threading.Thread(target=self._watch, daemon=True))
        for thread in self._threads:
            thread.start()
        return self

    def _send(self) -> None:
        import tritonclient.http as httpclient
        from tritonclient.utils import InferenceServerException

        client = self.server.http_client()
        x = httpclient.InferInput("FEATURES", [1, 4], "FP32")
        x.set_data_from_numpy(np.ones((1, 4), dtype=np.float32))
        try:
            while not self._stop.is_set():
                sent = time.monotonic()
                try:
                    result = client.infer(self.model, [x])
                    self.log.append((sent, str(result.get_response().get("model_version")), ""))
                except InferenceServerException as exc:
                    self.log.append((sent, None, str(exc)))
                time.sleep(self.pause)
        finally:
            client.close()

    def _watch(self) -> None:
        while not self._stop.is_set():
            at = time.monotonic()
            try:
                index = self.server.repository_index()
            except Exception:  # noqa: BLE001 - a missed poll is not a gap
                index = None
            if index is not None:
                self.polls += 1
                if not any(e.get("name") == self.model and e.get("state") == "READY"
                           for e in index):
                    self.gaps.append(at)
            self._stop.wait(self.interval)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)


@pytest.mark.points(20)
def test_rollback_without_downtime(submission, triton, score):
    """From versions [2, 3], rollback(url, "classifier") returns 2 and leaves exactly [2]
    ready, while the grader's unversioned requests keep flowing: none may fail, and every
    request sent after rollback returned is answered by version 2. From [1, 3] the answer
    is 1 (the newest READY version below the newest, not "newest minus one"), and from
    [1, 2, 3] it is 2 (not the oldest)."""
    server = triton.require()
    triton.deploy("classifier", [2, 3])
    # the worker's start-up and imports happen now, not while the traffic runs
    submission.call("labgrade.probes.triton_client", "preload", "lifecycle", timeout=60)
    with Traffic(server, "classifier") as traffic:
        time.sleep(0.2)
        started = time.monotonic()
        value = _call(submission, "rollback", triton.http, "classifier")
        returned = time.monotonic()
        time.sleep(0.3)
    during = [entry for entry in traffic.log if started <= entry[0] <= returned]
    failed = [entry for entry in traffic.log if entry[1] is None]
    after = [entry for entry in traffic.log if entry[0] > returned]
    score.measure(rollback_seconds=round(returned - started, 3), requests_during=len(during),
                  requests_failed=len(failed), index_polls=traffic.polls,
                  polls_without_ready_version=len(traffic.gaps))
    if value is None or str(value) != "2":
        raise Fail(f"rollback(url, 'classifier') returned {value!r} with versions [2, 3] "
                   "served; the version to roll back to is 2 (return it as an int)")
    ready = triton.wait_ready_versions("classifier", {2})
    if ready != {2}:
        raise Fail(f"after rollback the server has versions {sorted(ready)} ready; expected "
                   "only [2]")
    if failed:
        example = failed[0][2]
        gone = any(word in example for word in ("unknown model", "no available versions",
                                                "not ready", "unavailable"))
        hint = (" Unloading first leaves nothing to serve: load the model again with a "
                "configuration override that serves only the previous version — Triton keeps "
                "the loaded versions serving until the new configuration is in place."
                if gone else "")
        raise Fail(f"{len(failed)} of {len(traffic.log)} requests failed while rollback() ran "
                   f"(for example: {example[:200]}).{hint}")
    if traffic.gaps:
        span = (max(traffic.gaps) - min(traffic.gaps)) * 1000
        raise Fail(f"while rollback() ran, the server had NO ready version of classifier for "
                   f"about {max(span, 10):.0f} ms ({len(traffic.gaps)} of {traffic.polls} checks "
                   "of the repository index): every request in that window fails. Do not "
                   "unload first: load the model again with a configuration override that "
                   "serves only the previous version — Triton keeps the loaded versions "
                   "serving until the new configuration is in place.")
    wrong = [entry[1] for entry in after if entry[1] != "2"]
    if wrong:
        raise Fail(f"{len(wrong)} of {len(after)} requests sent after rollback() returned were "
                   f"answered by version {wrong[0]}, not 2: the rollback must be complete when "
                   "the function returns")
    for served, previous in (([1, 3], 1), ([1, 2, 3], 2)):
        triton.deploy("classifier", served)
        value = _call(submission, "rollback", triton.http, "classifier")
        ready = triton.wait_ready_versions("classifier", {previous})
        if str(value) != str(previous) or ready != {previous}:
            raise Fail(f"with versions {served} served, rollback returned {value!r} and left "
                       f"{sorted(ready)} ready; expected {previous} and [{previous}] — the "
                       "previous version is the newest READY one below the newest (ask the "
                       "server which are ready), not newest minus one, not the oldest")
