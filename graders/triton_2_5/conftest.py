"""Fixtures of the triton_2_5 graders.

One embedded tritonserver per grading run serves a copy of the student's model_repository/
(labgrade.kit.triton: staging, crash handling, what an item requires); it starts only when
a selected item needs it (the CI, manifest and promtool items do not). The hidden broken
repositories of the diagnose items are written into that copy under fresh names
(broken.py). The live alert item runs its own tritonserver and Prometheus (alerts_live.py).

Student code: the Python-backend stubs run the student's model.py files; diagnose.py and
rollout.py run in the worker; check_repository.py runs as its own process; manifests,
the workflow and the alert rules are read as data and checked by real tools.
"""

from __future__ import annotations

import random

import pytest

from labgrade.fixtures import *  # noqa: F403  (lab, submission, settings, run_dir)
from labgrade.kit.triton import TritonDeployment, rerun_after_crash

from .public_set import detector_config

pytest_runtest_call = rerun_after_crash  # an item the server crashed under runs once more


@pytest.fixture(scope="package")
def triton(lab, submission, settings) -> TritonDeployment:
    """The server; no model loaded (each item loads what it needs)."""
    deployment = TritonDeployment.for_lab(
        lab, submission, settings, max_starts=3,
        setup_config=lambda model: detector_config(settings["instance_kind"]))
    return deployment.start()


@pytest.fixture(scope="package")
def rng() -> random.Random:
    """Hidden names and inputs: a fresh draw each run (nothing to memorise)."""
    return random.Random()
