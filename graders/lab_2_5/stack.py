"""The graded deployment: the grader's vLLM server, and the monitoring stack built from the
student's files around it (Prometheus + rules, Alertmanager + config, webhook sink)."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from labgrade import Fail, Ungradable
from labgrade.kit import Deferred
from labgrade.monitoring import alertmanager as am_config
from labgrade.monitoring import tools
from labgrade.runtime.process import ServiceError, free_port
from labgrade.runtime.prometheus import (Alertmanager, MonitoringToolMissing,
                                         PrometheusServer, WebhookSink)
from labgrade.runtime.vllm import OpenAIServer, resolve_model

RULES = "rules.yml"
AM_CONFIG = "alertmanager.yml"
RECEIVERS = ("oncall", "team")  # README: the receivers the routes must name


@contextmanager
def ungradable_without_tools():
    """A missing Prometheus tool makes the item ungradable (with the install command)."""
    try:
        yield
    except MonitoringToolMissing as exc:
        raise Ungradable(str(exc)) from None


def launch_vllm(lab, settings: dict) -> OpenAIServer:
    port = free_port()
    argv = [sys.executable, "-m", "vllm.entrypoints.openai.api_server",
            "--model", resolve_model(settings["model"]),
            "--served-model-name", settings["served_model_name"],
            "--host", "127.0.0.1", "--port", str(port), "--dtype", settings["dtype"],
            "--max-model-len", str(settings["max_model_len"]), "--enforce-eager",
            "--kv-cache-memory-bytes", str(settings["kv_cache_bytes"]),
            "--max-num-seqs", str(settings["max_num_seqs"])]
    server = OpenAIServer(argv, port=port, log_path=lab.run_dir / "vllm-server.log",
                          startup_timeout=settings["server_start_timeout"],
                          env=dict(settings.get("server_env", {})), student=False)
    lab.on_close(server.stop)
    server.start_in_background()
    return server


def checked_rules(submission) -> Deferred[Path]:
    rules: Deferred[Path] = Deferred("your rules.yml")
    with rules.recording(), ungradable_without_tools():
        path = submission.require(RULES)
        result = tools.check_rules(path)
        if not result.ok:
            raise Fail(f"`promtool check rules {RULES}` rejected it:\n{result.output}")
        rules.set(path)
    return rules


def checked_alertmanager(submission) -> Deferred[str]:
    """The config text, once amtool accepts it and it names the README's receivers."""
    config: Deferred[str] = Deferred("your alertmanager.yml")
    with config.recording(), ungradable_without_tools():
        path = submission.require(AM_CONFIG)
        result = tools.check_alertmanager_config(path)
        if not result.ok:
            raise Fail(f"`amtool check-config {AM_CONFIG}` rejected it:\n{result.output}")
        text = path.read_text()
        receivers = {r.get("name"): r for r in yaml.safe_load(text).get("receivers") or []}
        for name in RECEIVERS:
            if not (receivers.get(name) or {}).get("webhook_configs"):
                raise Fail(f"{AM_CONFIG} needs a receiver named {name!r} with a "
                           f"webhook_configs entry (README, 'alertmanager.yml'); found "
                           f"receivers {sorted(map(str, receivers))}")
        config.set(text)
    return config


@dataclass
class Monitoring:
    prometheus: PrometheusServer
    alertmanager: Alertmanager | None
    sink: WebhookSink
    alertmanager_problem: str | None  # why the student's Alertmanager is not running


def start_monitoring(lab, settings: dict, server: OpenAIServer, rules: Path,
                     am_file: Deferred[str]) -> Monitoring:
    """Everything started here is stopped when the lab closes, also on a failed start."""
    work = lab.run_dir / "monitoring"
    sink = WebhookSink().start()
    lab.on_close(sink.stop)
    manager, problem = None, None
    if am_file.ok:
        try:
            manager = Alertmanager(am_config.for_grading(am_file.value, sink.url),
                                   work_dir=work / "alertmanager")
            lab.on_close(manager.stop)
            manager.start()
        except ServiceError as exc:
            problem, manager = f"Alertmanager did not start with your config: {exc}", None
    else:
        problem = am_file.failure or "alertmanager.yml was not usable"
    prometheus = PrometheusServer(
        work_dir=work / "prometheus", targets={"vllm": [server.base_url.split("//", 1)[1]]},
        rule_files=[rules], alertmanager=manager.address if manager else None,
        scrape_interval=settings["scrape_interval"],
        evaluation_interval=settings["evaluation_interval"])
    lab.on_close(prometheus.stop)
    with ungradable_without_tools():
        try:
            prometheus.start()
        except ServiceError as exc:
            raise Fail(f"Prometheus did not start with your {RULES}: {exc}") from None
    prometheus.wait_for_scrape("vllm", timeout=30)
    return Monitoring(prometheus, manager, sink, problem)
