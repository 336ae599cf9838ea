"""Fixtures of the triton_2_1 graders: one embedded tritonserver per grading run
(labgrade.kit.triton: staging, crash handling, what an item requires).

The server serves the grader's copy of the student's model_repository/, with the lab's own
weights and the grader's models added (grader_models.py). Auto-completion is off (lab.toml
`auto_complete_config`): the lab asks for a complete config.pbtxt and
`test_config_declares_the_interface` checks it, so what the student wrote is exactly what
is served, and each Python model loads with one stub instead of two.
"""

from __future__ import annotations

import numpy as np
import pytest

from labgrade.fixtures import *  # noqa: F403  (lab, submission, settings, run_dir)
from labgrade.kit import needed
from labgrade.kit.triton import TritonDeployment, rerun_after_crash

from .grader_models import WEIGHTS_NPZ, add_grader_files
from .reference_net import ReferenceNet

pytest_runtest_call = rerun_after_crash  # an item the server crashed under runs once more


@pytest.fixture(scope="package")
def deployment(request, lab, submission, settings) -> TritonDeployment:
    """The server, with the models the selected items need loaded (a -k run loads only
    those)."""
    triton = TritonDeployment.for_lab(lab, submission, settings)
    problem = add_grader_files(triton.repository, settings)
    if problem:
        triton.submitted.fail(problem)
    student = [settings["model"]] if needed(request, "student_model") else []
    ours = [settings["reference_model"]] if needed(request, "reference_model") else []
    return triton.start(student=student, ours=ours)


@pytest.fixture(scope="package")
def student_model(deployment) -> TritonDeployment:
    """Items about the student's model call `student_model.require_model(name)`."""
    return deployment


@pytest.fixture(scope="package")
def reference_model(deployment) -> TritonDeployment:
    """Items run against the grader's model call `require_model(name, ours=True)`."""
    return deployment


@pytest.fixture(scope="package")
def reference_net() -> ReferenceNet:
    return ReferenceNet(WEIGHTS_NPZ)


@pytest.fixture(scope="package")
def rng() -> np.random.Generator:
    """Hidden inputs: fresh each run (nothing to memorise), standard normal float32."""
    return np.random.default_rng()
