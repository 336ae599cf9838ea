"""A real Prometheus server, a real Alertmanager and a webhook sink, for graders.

Debian's binaries (`/usr/bin/prometheus`, `/usr/bin/prometheus-alertmanager`, installed by
`scripts/setup-system.sh`) run as `ManagedProcess`es on free loopback ports with generated
configs and storage in a folder of the caller's; readiness is `/-/ready`; teardown is
always complete (context managers; a failed start stops what it started). Intervals are
settings so that a grading sees rules evaluated and alerts sent within seconds.

    with WebhookSink() as sink, \\
         Alertmanager(config_text, work_dir=d / "am") as am, \\
         PrometheusServer(work_dir=d / "prom", targets={"vllm": ["127.0.0.1:8000"]},
                          rule_files=[rules], alertmanager=am.address) as prom:
        prom.query("up")                      # [{"metric": {...}, "value": [t, "1"]}]
        prom.alert_states("VLLMQueueBacklog")  # ["pending"] ...
        sink.wait_for(lambda n: ..., timeout=30)

`MonitoringToolMissing` (a `ServiceError`) says which package to install and how: graders
turn it into `Ungradable`.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import yaml

from labgrade.runtime.process import ManagedProcess, ServiceError, free_port, http_ok

SETUP_COMMAND = "scripts/setup-system.sh"  # installs the Debian packages (idempotent)
FALLBACK_DIRS = ("/usr/bin",)

# binary -> Debian package that ships it
_PACKAGES = {"prometheus": "prometheus", "promtool": "prometheus",
             "prometheus-alertmanager": "prometheus-alertmanager",
             "amtool": "prometheus-alertmanager"}


class MonitoringToolMissing(ServiceError):
    """A Prometheus tool is not installed on this machine (the item is ungradable here)."""


def tool_path(name: str) -> str:
    """The path of a Prometheus tool, or MonitoringToolMissing with the install command."""
    found = shutil.which(name)
    if found:
        return found
    for folder in FALLBACK_DIRS:  # PATH may lack /usr/bin in a trimmed environment
        if (Path(folder) / name).exists():
            return str(Path(folder) / name)
    package = _PACKAGES.get(name, name)
    raise MonitoringToolMissing(
        f"{name} is not installed on this machine: run `{SETUP_COMMAND}` "
        f"(or `sudo apt-get install -y --no-install-recommends {package}`)")


class PrometheusAPIError(RuntimeError):
    """The HTTP API answered with an error (e.g. a query that does not parse)."""


def _get_json(url: str, params: Mapping[str, Any] | None = None, timeout: float = 10.0) -> Any:
    try:
        response = httpx.get(url, params=params, timeout=timeout, trust_env=False)
    except httpx.HTTPError as exc:
        raise PrometheusAPIError(f"GET {url}: {type(exc).__name__}: {exc}") from None
    try:
        body = response.json()
    except ValueError:
        raise PrometheusAPIError(f"GET {url}: HTTP {response.status_code}, not JSON: "
                                 f"{response.text[:300]}") from None
    if isinstance(body, dict) and body.get("status") == "error":
        raise PrometheusAPIError(f"{body.get('errorType', 'error')}: {body.get('error', '')}")
    return body.get("data") if isinstance(body, dict) and "data" in body else body


class _Service:
    """Start/wait/stop shared by both servers: a ManagedProcess plus /-/ready polling."""

    name = "service"

    def __init__(self, work_dir: Path, startup_timeout: float) -> None:
        self.work_dir = Path(work_dir)
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.address}"
        self.startup_timeout = startup_timeout
        self.process: ManagedProcess | None = None
        self.ready_after: float | None = None

    def _argv(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> "_Service":
        """Write the config, launch, wait until /-/ready (ServiceError with the log tail)."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        argv = self._argv()
        self.process = ManagedProcess(argv, name=self.name,
                                      log_path=self.work_dir / f"{self.name}.log")
        self.process.start()
        try:
            self.ready_after = self.process.wait_ready(
                lambda: http_ok(f"{self.url}/-/ready", timeout=1.0),
                timeout=self.startup_timeout, what="ready on /-/ready", interval=0.05)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(grace=5.0)

    def alive(self) -> bool:
        return self.process is not None and self.process.alive()

    def log_tail(self) -> str:
        return self.process.log_tail() if self.process else ""

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class PrometheusConfig:
    """What the generated prometheus.yml holds."""

    targets: Mapping[str, Sequence[str]] = field(default_factory=dict)  # job -> host:port
    rule_files: Sequence[Path] = ()
    alertmanager: str | None = None  # host:port
    scrape_interval: str = "1s"
    evaluation_interval: str = "1s"
    metrics_path: str = "/metrics"

    def render(self) -> str:
        config: dict[str, Any] = {
            "global": {"scrape_interval": self.scrape_interval,
                       "scrape_timeout": self.scrape_interval,
                       "evaluation_interval": self.evaluation_interval},
            "rule_files": [str(Path(p).resolve()) for p in self.rule_files],
            "scrape_configs": [{"job_name": job, "metrics_path": self.metrics_path,
                                "static_configs": [{"targets": list(hosts)}]}
                               for job, hosts in self.targets.items()],
        }
        if self.alertmanager:
            config["alerting"] = {"alertmanagers": [
                {"static_configs": [{"targets": [self.alertmanager]}]}]}
        return yaml.safe_dump(config, sort_keys=False)


class PrometheusServer(_Service):
    """Debian's Prometheus on a free loopback port, scraping `targets`, evaluating
    `rule_files`, sending alerts to `alertmanager` (host:port) when given."""

    name = "prometheus"

    def __init__(self, *, work_dir: Path, targets: Mapping[str, Sequence[str]] | None = None,
                 rule_files: Sequence[Path] = (), alertmanager: str | None = None,
                 scrape_interval: str = "1s", evaluation_interval: str = "1s",
                 startup_timeout: float = 30.0) -> None:
        super().__init__(work_dir, startup_timeout)
        self.config = PrometheusConfig(targets=dict(targets or {}), rule_files=rule_files,
                                       alertmanager=alertmanager,
                                       scrape_interval=scrape_interval,
                                       evaluation_interval=evaluation_interval)

    def _argv(self) -> list[str]:
        binary = tool_path("prometheus")
        config_path = self.work_dir / "prometheus.yml"
        config_path.write_text(self.config.render())
        return [binary, f"--config.file={config_path}",
                f"--storage.tsdb.path={self.work_dir / 'data'}",
                f"--web.listen-address={self.address}",
                # alerts reach Alertmanager at each evaluation, not once a minute
                "--rules.alert.resend-delay=1s",
                "--storage.tsdb.retention.time=1d", "--log.level=warn"]

    # -- HTTP API --------------------------------------------------------------------
    def query(self, expr: str, at: float | None = None) -> list[dict]:
        """An instant query's result list (vector: [{"metric", "value"}]); a scalar or
        string comes back as one element with empty metric. PrometheusAPIError if the
        server rejects the query (its own message)."""
        params: dict[str, Any] = {"query": expr}
        if at is not None:
            params["time"] = at
        data = _get_json(f"{self.url}/api/v1/query", params)
        if data.get("resultType") in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        return list(data.get("result") or [])

    def query_range(self, expr: str, start: float, end: float, step: float = 1.0) -> list[dict]:
        data = _get_json(f"{self.url}/api/v1/query_range",
                         {"query": expr, "start": start, "end": end, "step": step})
        return list(data.get("result") or [])

    def rules(self) -> list[dict]:
        """Every loaded rule (flattened over groups), as /api/v1/rules reports it."""
        data = _get_json(f"{self.url}/api/v1/rules")
        return [rule for group in data.get("groups", []) for rule in group.get("rules", [])]

    def alerts(self) -> list[dict]:
        """Active alerts (pending and firing) with labels, state and activeAt."""
        return list(_get_json(f"{self.url}/api/v1/alerts").get("alerts", []))

    def alert_states(self, alertname: str) -> list[str]:
        return [a["state"] for a in self.alerts() if a["labels"].get("alertname") == alertname]

    def targets(self) -> list[dict]:
        return list(_get_json(f"{self.url}/api/v1/targets").get("activeTargets", []))

    def wait_for_scrape(self, job: str, timeout: float = 30.0) -> None:
        """Until every target of `job` has been scraped and is up (ServiceError if not)."""
        deadline = time.monotonic() + timeout
        seen: list[dict] = []
        while time.monotonic() < deadline:
            seen = [t for t in self.targets() if t["labels"].get("job") == job]
            if seen and all(t.get("health") == "up" for t in seen):
                return
            time.sleep(0.2)
        detail = "; ".join(f"{t.get('scrapeUrl')}: {t.get('health')} {t.get('lastError', '')}"
                           for t in seen) or "no target"
        raise ServiceError(f"Prometheus did not scrape job {job!r} within {timeout:.0f} s: "
                           f"{detail}", self.log_tail())


@dataclass(frozen=True)
class AlertTimeline:
    """When an alert was seen in each state (seconds since `started`, monotonic)."""

    pending_at: float | None
    firing_at: float | None
    observations: tuple[tuple[float, str], ...]  # (t, state or "inactive")

    def as_measurement(self) -> dict:
        return {"pending_at_s": _round(self.pending_at), "firing_at_s": _round(self.firing_at),
                "states": [[round(t, 2), s] for t, s in self._changes()]}

    def _changes(self) -> list[tuple[float, str]]:
        changes: list[tuple[float, str]] = []
        for t, state in self.observations:
            if not changes or changes[-1][1] != state:
                changes.append((t, state))
        return changes


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def watch_alert(prometheus: PrometheusServer, alertname: str, *, until: Callable[[str], bool],
                timeout: float, started: float | None = None,
                interval: float = 0.25) -> AlertTimeline:
    """Poll the alert's state ("inactive", "pending" or "firing") until `until(state)` or
    `timeout` seconds; record when it was first pending and first firing."""
    started = time.monotonic() if started is None else started
    deadline = time.monotonic() + timeout
    observations: list[tuple[float, str]] = []
    pending_at = firing_at = None
    while True:
        states = prometheus.alert_states(alertname)
        state = "firing" if "firing" in states else "pending" if "pending" in states \
            else "inactive"
        now = time.monotonic() - started
        observations.append((now, state))
        if state == "pending" and pending_at is None:
            pending_at = now
        if state == "firing" and firing_at is None:
            firing_at = now
        if until(state) or time.monotonic() > deadline:
            return AlertTimeline(pending_at, firing_at, tuple(observations))
        time.sleep(interval)


class Alertmanager(_Service):
    """Debian's Alertmanager on a free loopback port with the given configuration text
    (clustering off: no gossip port is opened)."""

    name = "alertmanager"

    def __init__(self, config_text: str, *, work_dir: Path, startup_timeout: float = 30.0) -> None:
        super().__init__(work_dir, startup_timeout)
        self.config_text = config_text

    def _argv(self) -> list[str]:
        binary = tool_path("prometheus-alertmanager")
        config_path = self.work_dir / "alertmanager.yml"
        config_path.write_text(self.config_text)
        return [binary, f"--config.file={config_path}",
                f"--storage.path={self.work_dir / 'data'}",
                f"--web.listen-address={self.address}", "--cluster.listen-address=",
                "--log.level=warn"]

    def alerts(self) -> list[dict]:
        """Alerts Alertmanager holds (API v2), with their status (active/suppressed)."""
        return list(_get_json(f"{self.url}/api/v2/alerts"))

    def post_alerts(self, alerts: Sequence[Mapping[str, Any]]) -> None:
        """Send alerts as Prometheus would (labels, annotations, startsAt...)."""
        response = httpx.post(f"{self.url}/api/v2/alerts", json=list(alerts), timeout=10,
                              trust_env=False)
        if response.status_code >= 300:
            raise PrometheusAPIError(f"Alertmanager rejected alerts: HTTP "
                                     f"{response.status_code} {response.text[:300]}")


@dataclass(frozen=True)
class Notification:
    """One webhook delivery: the path it was posted to and Alertmanager's JSON body."""

    path: str
    body: dict
    received_at: float  # time.monotonic()

    @property
    def receiver(self) -> str:
        return str(self.body.get("receiver", ""))

    @property
    def alertnames(self) -> list[str]:
        return [a.get("labels", {}).get("alertname", "") for a in self.body.get("alerts", [])]


class WebhookSink:
    """An HTTP server on a free loopback port recording every POST (Alertmanager's
    webhook notifications). `url` + any path: the path is kept (one per receiver)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._notifications: list[Notification] = []
        self._lock = threading.Condition()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def notifications(self) -> list[Notification]:
        with self._lock:
            return list(self._notifications)

    def _record(self, path: str, raw: bytes) -> None:
        try:
            body = json.loads(raw.decode("utf-8", "replace"))
        except ValueError:
            body = {"unparsed": raw[:2000].decode("utf-8", "replace")}
        with self._lock:
            self._notifications.append(Notification(path, body if isinstance(body, dict)
                                                    else {"body": body}, time.monotonic()))
            self._lock.notify_all()

    def start(self) -> "WebhookSink":
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                sink._record(self.path, self.rfile.read(length))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="webhook-sink")
        self._thread.start()
        return self

    def wait_for(self, predicate: Callable[[Notification], bool],
                 timeout: float) -> Notification | None:
        """The first notification (already received or arriving within `timeout`) for
        which `predicate` holds, else None."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                for note in self._notifications:
                    if predicate(note):
                        return note
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._lock.wait(left)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "WebhookSink":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
