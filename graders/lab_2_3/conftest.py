"""Shared state for the lab_2_3 graders: the student's app under uvicorn, the reference.

None of these fixtures raises on a student mistake: the app is a `Deferred` that items
`.require()`. Traffic that several items read (the concurrent load, the metrics check) is
sent once, from inside the first item that needs it (`Once`), under that item's budget.
The app and the reference answers start before the first item, so their start-ups overlap.
"""

from __future__ import annotations

import pytest

from labgrade.fixtures import *  # noqa: F403  (lab, submission, settings, run_dir)
from labgrade.kit import Deferred, Once, needed, profile_view
from labgrade.runtime.app import AppServer
from labgrade.runtime.vllm import ReferenceEngine, resolve_model

from . import app_host, traffic
from .expected import Expected


@pytest.fixture(scope="package")
def model(settings) -> str:
    return resolve_model(settings["model"])


@pytest.fixture(scope="package")
def student_profile(settings, lab) -> dict:
    """The dict handed to create_app(model, profile) (README, 'The profile dict')."""
    return profile_view(settings, lab.profile, "device", "served_model_name", "max_model_len",
                        engine_kwargs=dict(settings["engine_kwargs"]))


@pytest.fixture(scope="package", autouse=True)
def _start_early(request: pytest.FixtureRequest) -> None:
    for fixture in ("student_app", "expected"):
        if needed(request, fixture):
            request.getfixturevalue(fixture)


@pytest.fixture(scope="package")
def student_app(lab, model, settings, student_profile) -> Deferred[AppServer]:
    app: Deferred[AppServer] = Deferred("your app", ready=app_host.serving)
    with app.recording("your app could not be launched: "):
        app.set(app_host.launch(lab, model, settings, student_profile))
    return app


@pytest.fixture(scope="package")
def reference(lab, model, settings) -> ReferenceEngine:
    reference = ReferenceEngine(model, settings, lab.profile, lab.run_dir)
    lab.on_close(reference.close)
    return reference


@pytest.fixture(scope="package")
def expected(reference, model) -> Expected:
    return Expected(reference, model)


@pytest.fixture(scope="package")
def load_run(student_app, settings) -> Once:
    """Concurrent streams with /health polled meanwhile (traffic.LoadRun), for two items."""
    return Once(lambda: traffic.concurrent_streams(student_app.require().base_url, settings))


@pytest.fixture(scope="package")
def metrics_run(student_app, settings) -> Once:
    """Known traffic between two scrapes of /metrics (traffic.MetricsRun), for three items."""
    return Once(lambda: traffic.metrics_traffic(student_app.require().base_url, settings))


@pytest.fixture
def app_url(student_app) -> str:
    return student_app.require().base_url
