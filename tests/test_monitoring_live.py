"""labgrade.runtime.prometheus with the real servers: Prometheus scrapes a metrics page,
evaluates a rule that goes pending -> firing, sends it to a real Alertmanager, which
delivers it to the webhook sink; everything is torn down afterwards. No engine runs here
(seconds; no lock needed)."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psutil
import pytest

from labgrade.monitoring import alertmanager as am_config
from labgrade.runtime.process import ServiceError, free_port
from labgrade.runtime.prometheus import (Alertmanager, PrometheusAPIError, PrometheusServer,
                                         WebhookSink, watch_alert)

RULES = """\
groups:
- name: demo
  rules:
  - record: job:queue:max
    expr: max by (job) (queue_depth)
  - alert: QueueBacklog
    expr: job:queue:max > 5
    for: 3s
    labels: {severity: page}
"""

AM = """\
route:
  receiver: default
  group_by: [alertname]
  group_wait: 30s
  routes:
  - matchers: ['severity="page"']
    receiver: pager
receivers:
- name: default
  webhook_configs: [{url: 'http://example.invalid/'}]
- name: pager
  webhook_configs: [{url: 'http://example.invalid/'}]
"""


class _Metrics:
    """A /metrics page whose gauge the test sets."""

    def __init__(self) -> None:
        self.depth = 0
        metrics = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = (f"# TYPE queue_depth gauge\nqueue_depth {metrics.depth}\n").encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _children() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True)}


def test_alert_goes_pending_then_firing_and_reaches_the_webhook(tmp_path):
    before = _children()
    page = _Metrics()
    (tmp_path / "rules.yml").write_text(RULES)
    try:
        with WebhookSink() as sink, \
                Alertmanager(am_config.for_grading(AM, sink.url), work_dir=tmp_path / "am") as am, \
                PrometheusServer(work_dir=tmp_path / "prom",
                                 targets={"demo": [f"127.0.0.1:{page.port}"]},
                                 rule_files=[tmp_path / "rules.yml"],
                                 alertmanager=am.address) as prom:
            assert prom.ready_after is not None and prom.ready_after < 10
            prom.wait_for_scrape("demo", timeout=15)
            assert prom.query("queue_depth")[0]["value"][1] == "0"
            assert {r["name"] for r in prom.rules()} == {"job:queue:max", "QueueBacklog"}
            with pytest.raises(PrometheusAPIError, match="parse error"):
                prom.query("sum(")
            # idle: never pending
            idle = watch_alert(prom, "QueueBacklog", until=lambda s: False, timeout=2)
            assert idle.pending_at is None and idle.firing_at is None
            page.depth = 9
            started = time.monotonic()
            timeline = watch_alert(prom, "QueueBacklog", until=lambda s: s == "firing",
                                   timeout=30, started=started)
            assert timeline.pending_at is not None and timeline.firing_at is not None
            assert timeline.firing_at - timeline.pending_at >= 2.5  # for: 3s
            states = [s for _, s in timeline.as_measurement()["states"]]
            assert states[-2:] == ["pending", "firing"]
            note = sink.wait_for(lambda n: "QueueBacklog" in n.alertnames, timeout=30)
            assert note is not None, sink.notifications
            assert note.path == "/pager" and note.receiver == "pager"
            alert = note.body["alerts"][0]
            assert alert["labels"]["severity"] == "page" and alert["labels"]["job"] == "demo"
            assert alert["status"] == "firing"
            assert am.alerts()
    finally:
        page.close()
    time.sleep(0.2)
    assert _children() - before == set()


def test_a_bad_config_fails_start_with_the_log_and_stops(tmp_path):
    before = _children()
    with pytest.raises(ServiceError) as info:
        Alertmanager("route: [", work_dir=tmp_path / "am").start()
    assert "alertmanager exited" in str(info.value) and "yaml" in str(info.value).lower()
    assert _children() - before == set()
