"""Shared state for the lab_2_4 graders.

The deployment files are read once each through labgrade.deploy (a file the tools reject
fails only the items that read it). The gateway items share one vLLM OpenAI server on the
tiny model and one gateway in front of it, started in that order only when a gateway item
is selected: the gateway first, so the items can watch /ready while the engine loads.
"""

from __future__ import annotations

import pytest

from labgrade.deploy import tool_versions
from labgrade.fixtures import *  # noqa: F403  (lab, submission, settings, run_dir)
from labgrade.kit import Deferred, needed
from labgrade.runtime.app import AppServer

from . import artefacts, services


@pytest.fixture(scope="package", autouse=True)
def _environment_and_early_start(request: pytest.FixtureRequest, lab) -> None:
    lab.environment["deploy_tools"] = tool_versions()
    if needed(request, "stack"):
        request.getfixturevalue("stack")


@pytest.fixture(scope="package")
def dockerfile(submission) -> Deferred:
    return artefacts.dockerfile(submission)


@pytest.fixture(scope="package")
def compose(submission, run_dir) -> Deferred:
    return artefacts.compose(submission, run_dir)


@pytest.fixture(scope="package")
def compose_as_written(submission) -> Deferred:
    return artefacts.compose_as_written(submission)


@pytest.fixture(scope="package")
def manifests(submission) -> Deferred:
    return artefacts.manifests(submission)


@pytest.fixture(scope="package")
def stack(lab, settings) -> services.Stack:
    """The gateway (started first) and the vLLM server behind it (started after)."""
    return services.Stack.start(lab, settings)


@pytest.fixture
def gateway(stack) -> AppServer:
    """The shared gateway, once the engine behind it is up."""
    return stack.ready_gateway()
