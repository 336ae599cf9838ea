"""The client side of Triton's HTTP/REST API (KServe v2 plus extensions), shared by the
embedded server (`TritonServer`) and the course's container (`TritonContainer`)."""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from labgrade.runtime.triton.config import model_config_json
from labgrade.runtime.triton.errors import ModelLoadError, TritonRequestError
from labgrade.runtime.triton.feedback import explain_load_failure, relevant_log_lines
from labgrade.runtime.triton.metrics import Metrics
from labgrade.runtime.triton.net import LOOPBACK, get_ok, port_open


class TritonAPI:
    """Client-side methods over Triton's HTTP/REST API (KServe v2 plus extensions).

    Subclasses provide `http_url`, `grpc_url`, `metrics_url`, `model_repository` and the log
    hooks `log_tail()`, `_log_mark()`, `_log_since(mark)`.
    """

    request_timeout: float = 30.0
    model_repository: Path | None = None
    # sent with every API call: e.g. the key of a server launched with
    # --http-restricted-api=model-repository:<header>=<key>
    api_headers: Mapping[str, str] = {}

    # -- to provide ---------------------------------------------------------------------
    @property
    def http_url(self) -> str:
        raise NotImplementedError

    @property
    def grpc_url(self) -> str:
        raise NotImplementedError

    @property
    def metrics_url(self) -> str:
        raise NotImplementedError

    def log_tail(self, lines: int = 30) -> str:
        raise NotImplementedError

    def log_text(self) -> str:
        """The whole server log so far."""
        return self._log_since(0)

    def _log_mark(self) -> int:
        return 0

    def _log_since(self, mark: int) -> str:
        return ""

    def _strip_paths(self) -> list[str]:
        """Path prefixes removed from error messages (students see repository-relative)."""
        return [str(self.model_repository)] if self.model_repository else []

    # -- plumbing -----------------------------------------------------------------------
    def _call(self, method: str, path: str, body: Any = None, *,
              timeout: float | None = None) -> tuple[int, Any]:
        """One API call: (status, decoded JSON or None). Raises only if nothing answered."""
        data = json.dumps(body).encode() if body is not None else None
        headers = dict(self.api_headers)
        if data is not None:
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.http_url + path, data=data, method=method,
                                         headers=headers)
        try:
            with LOOPBACK.open(request, timeout=timeout or self.request_timeout) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        except (urllib.error.URLError, OSError) as exc:
            message = (f"Triton at {self.http_url} did not answer {method} {path}: "
                       f"{getattr(exc, 'reason', exc)}")
            try:
                tail = self.log_tail(15)
            except Exception:  # noqa: BLE001 - the log is a bonus here
                tail = ""
            if tail:
                message += f"\n--- last lines of the server log ---\n{tail}"
            raise TritonRequestError(message) from exc
        if not raw:
            return status, None
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw.decode("utf-8", "replace")

    def _checked(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        status, payload = self._call(method, path, body, **kw)
        if not 200 <= status < 300:
            message = _error_text(payload)
            raise TritonRequestError(f"{method} {path} -> HTTP {status}: {message}",
                                     status=status, server_message=message)
        return payload

    # -- health and metadata ------------------------------------------------------------
    def live(self) -> bool:
        return get_ok(self.http_url + "/v2/health/live")

    def is_up(self) -> bool:
        """Live, and the gRPC and metrics ports answer: what a start waits for (in explicit
        mode /v2/health/ready stays false while any model failed to load)."""
        host, _, port = self.grpc_url.rpartition(":")
        return (get_ok(self.http_url + "/v2/health/live", timeout=1.0)
                and port_open(int(port), host) and get_ok(self.metrics_url, timeout=2.0))

    def server_metadata(self) -> dict:
        return self._checked("GET", "/v2")

    # -- model control ------------------------------------------------------------------
    def load(self, model: str, config: str | Mapping[str, Any] | None = None, *,
             timeout: float = 300.0) -> float:
        """Load (or reload) `model`; return seconds taken. Raise ModelLoadError with the
        server's reason if it does not load.

        `config` overrides the repository's config.pbtxt: a dict, JSON text, or pbtxt text.
        """
        body = None
        if config is not None:
            try:
                body = {"parameters": {"config": model_config_json(config)}}
            except ValueError as exc:
                raise ModelLoadError(model, str(exc)) from exc
        mark = self._log_mark()
        started = time.monotonic()
        try:
            status, payload = self._call("POST", f"/v2/repository/models/{_q(model)}/load",
                                         body, timeout=timeout)
        except TritonRequestError as exc:
            if isinstance(exc.__cause__, (TimeoutError, socket.timeout)) or "timed out" in str(exc):
                raise ModelLoadError(
                    model, f"loading did not finish within {timeout:.0f} s (does initialize() "
                    "block or take too long?)",
                    log_lines=self._load_log_lines(model, mark)) from exc
            raise
        elapsed = time.monotonic() - started
        if 200 <= status < 300:
            return elapsed
        server_message = _error_text(payload)
        log_lines = self._load_log_lines(model, mark, wait=True)
        reason = explain_load_failure(model, server_message, log_lines,
                                      repository=self._strip_paths())
        raise ModelLoadError(model, reason, status=status, server_message=server_message,
                             log_lines=log_lines)

    def load_all(self, models: Iterable[str], *, parallel: bool = True,
                 timeout: float = 300.0) -> dict[str, float]:
        """Load several models (concurrently by default); seconds per model. If some fail,
        raise the ModelLoadError of the first one (in the given order) after all finished."""
        models = list(models)
        if not parallel or len(models) < 2:
            return {m: self.load(m, timeout=timeout) for m in models}
        with ThreadPoolExecutor(max_workers=min(8, len(models))) as pool:
            futures = {m: pool.submit(self.load, m, timeout=timeout) for m in models}
            results: dict[str, float] = {}
            first_error: BaseException | None = None
            for model, future in futures.items():
                try:
                    results[model] = future.result()
                except BaseException as exc:  # noqa: BLE001 - re-raised below
                    first_error = first_error or exc
        if first_error is not None:
            raise first_error
        return results

    def unload(self, model: str, *, unload_dependents: bool = False, wait: bool = True,
               timeout: float = 60.0) -> None:
        """Unload `model`; with `wait`, return only once no version of it is loaded."""
        body = {"parameters": {"unload_dependents": True}} if unload_dependents else None
        self._checked("POST", f"/v2/repository/models/{_q(model)}/unload", body)
        if not wait:
            return
        deadline = time.monotonic() + timeout
        while True:
            states = [e.get("state") for e in self.repository_index() if e.get("name") == model]
            if not any(s in ("READY", "LOADING", "UNLOADING") for s in states):
                return
            if time.monotonic() > deadline:
                raise TritonRequestError(
                    f"model '{model}' still {states} {timeout:.0f} s after unload")
            time.sleep(0.05)

    def model_ready(self, model: str, version: str = "") -> bool:
        status, _ = self._call("GET", _model_path(model, version) + "/ready")
        return status == 200

    def model_config(self, model: str, version: str = "") -> dict:
        """The configuration the server uses (after auto-completion)."""
        return self._checked("GET", _model_path(model, version) + "/config")

    def repository_index(self, *, ready_only: bool = False) -> list[dict]:
        """Every model of the repository: {name, version?, state?, reason?}."""
        return self._checked("POST", "/v2/repository/index", {"ready": bool(ready_only)}) or []

    def statistics(self, model: str = "", version: str = "") -> dict:
        """`/v2/models[/<model>[/versions/<v>]]/stats`: {"model_stats": [...]} with
        inference_count, execution_count, inference_stats.{success,fail,queue,...}.{count,ns}."""
        path = _model_path(model, version) if model else "/v2/models"
        return self._checked("GET", path + "/stats")

    # -- metrics ------------------------------------------------------------------------
    def metrics_text(self) -> str:
        try:
            with LOOPBACK.open(self.metrics_url, timeout=self.request_timeout) as resp:
                return resp.read().decode("utf-8", "replace")
        except (urllib.error.URLError, OSError) as exc:
            raise TritonRequestError(f"no metrics from {self.metrics_url}: {exc}") from exc

    def metrics(self) -> Metrics:
        return Metrics(self.metrics_text())

    # -- clients ------------------------------------------------------------------------
    def http_client(self, **kwargs: Any):
        """A `tritonclient.http.InferenceServerClient` for this server."""
        import tritonclient.http as httpclient
        return httpclient.InferenceServerClient(url=self.http_url.removeprefix("http://"), **kwargs)

    def grpc_client(self, **kwargs: Any):
        """A `tritonclient.grpc.InferenceServerClient` for this server."""
        import tritonclient.grpc as grpcclient
        return grpcclient.InferenceServerClient(url=self.grpc_url, **kwargs)

    # -- helpers ------------------------------------------------------------------------
    def _load_log_lines(self, model: str, mark: int, wait: bool = False) -> list[str]:
        """Server log lines about `model` written since `mark` (errors, decoded)."""
        deadline = time.monotonic() + (1.0 if wait else 0.0)
        while True:
            lines = relevant_log_lines(self._log_since(mark), model)
            if lines or time.monotonic() >= deadline:
                return lines
            time.sleep(0.05)


def _q(part: str) -> str:
    return urllib.parse.quote(str(part), safe="")


def _model_path(model: str, version: str = "") -> str:
    return f"/v2/models/{_q(model)}" + (f"/versions/{_q(version)}" if version else "")


def _error_text(payload: Any) -> str:
    if isinstance(payload, dict) and "error" in payload:
        return str(payload["error"])
    return "" if payload is None else str(payload)
