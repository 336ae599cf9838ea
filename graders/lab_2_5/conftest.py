"""Shared state for the lab_2_5 graders: one vLLM server (the grader's), the monitoring
stack around it (Prometheus with the student's rules, Alertmanager with the student's
config, a webhook sink), and the live alert run several items read.

None of these fixtures raises on a student mistake: each records it in a `Deferred`, and
the items that need the thing call `.require()`. The server starts before the first item
so its start-up overlaps the offline items (promtool, amtool, parsing).
"""

from __future__ import annotations

import pytest

from labgrade.fixtures import *  # noqa: F403  (lab, submission, settings, run_dir)
from labgrade.kit import Deferred, Once, needed
from labgrade.runtime.vllm import OpenAIServer

from . import live, stack


@pytest.fixture(scope="package", autouse=True)
def _start_early(request: pytest.FixtureRequest) -> None:
    if needed(request, "vllm_server"):
        request.getfixturevalue("vllm_server")


@pytest.fixture(scope="package")
def vllm_server(lab, settings) -> Deferred[OpenAIServer]:
    """The grader's vLLM OpenAI server (the thing being monitored), started in the
    background; `.require()` waits for /health."""
    server: Deferred[OpenAIServer] = Deferred("the vLLM server", ready=OpenAIServer.wait)
    server.set(stack.launch_vllm(lab, settings))
    return server


@pytest.fixture(scope="package")
def rules_file(submission) -> Deferred:
    """The student's rules.yml once `promtool check rules` accepts it."""
    return stack.checked_rules(submission)


@pytest.fixture(scope="package")
def alertmanager_file(submission) -> Deferred:
    """The student's alertmanager.yml once amtool accepts it (receivers included)."""
    return stack.checked_alertmanager(submission)


@pytest.fixture(scope="package")
def monitoring(lab, settings, vllm_server, rules_file, alertmanager_file) -> Once:
    """Prometheus scraping the server with the student's rules, Alertmanager with the
    student's config delivering to a webhook sink (stack.Monitoring)."""
    return Once(lambda: stack.start_monitoring(lab, settings, vllm_server.require(),
                                               rules_file.require(), alertmanager_file))


@pytest.fixture(scope="package")
def alert_run(monitoring, vllm_server, settings) -> Once:
    """Light load, then overload until the live alert fires (live.AlertRun)."""
    return Once(lambda: live.run(monitoring.get(), vllm_server.require(), settings))
