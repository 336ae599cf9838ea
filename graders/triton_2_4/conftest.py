"""Fixtures of the triton_2_4 graders: one embedded tritonserver per grading run, started
with the student's own launch flags (server_flags.txt: response cache, restricted APIs),
serving a copy of the student's repository with the lab's given models restored
(repository.py).

Flags the server rejects at start-up cost the items that need them (their feedback is the
server's own text); the server is then started without them so the rest still grades.
"""

from __future__ import annotations

import pytest

from labgrade.fixtures import *  # noqa: F403  (lab, submission, settings, run_dir)
from labgrade.kit import Deferred, needed
from labgrade.kit.triton import TritonDeployment, rerun_after_crash

from .flags import ServerFlags, read_flags
from .repository import add_grader_files

pytest_runtest_call = rerun_after_crash  # an item the server crashed under runs once more

ENSEMBLE = ["preprocess", "mlp", "postprocess", "classify"]
STUDENT_MODELS = {"ensemble": ENSEMBLE, "batching": ["scorer"], "cache": ["mlp", "sampler"],
                  "sequences": ["counter"]}


def _deployment(lab, submission, settings, flags: ServerFlags) -> TritonDeployment:
    triton = TritonDeployment.for_lab(lab, submission, settings, server_args=flags.args,
                                      api_headers=flags.api_headers)
    add_grader_files(triton.repository, lab.lab.root)
    return triton


@pytest.fixture(scope="package")
def server_flags(submission) -> Deferred[ServerFlags]:
    """The student's flags; failed when they do not parse or the server rejects them."""
    flags = read_flags(submission.path)
    outcome: Deferred[ServerFlags] = Deferred("your server flags")
    if flags.problems:
        outcome.fail("; ".join(flags.problems))
    outcome.set(flags)
    return outcome


@pytest.fixture(scope="package")
def triton(request, lab, submission, settings, server_flags) -> TritonDeployment:
    flags = server_flags.value if server_flags.failure is None else ServerFlags()
    models = [m for fixture, names in STUDENT_MODELS.items()
              if needed(request, f"{fixture}_models") for m in names]
    deployment = _deployment(lab, submission, settings, flags).start(student=models)
    if deployment.server is None and not deployment.environment_missing and flags.args:
        server_flags.fail(f"tritonserver did not start with your flags "
                          f"({' '.join(flags.args)}):\n{deployment.problem}")
        deployment.stop()
        deployment = _deployment(lab, submission, settings, ServerFlags()).start(student=models)
    return deployment


# One name per group of items, so a -k run loads only what it grades.
@pytest.fixture(scope="package")
def ensemble_models(triton): return triton  # noqa: E704


@pytest.fixture(scope="package")
def batching_models(triton): return triton  # noqa: E704


@pytest.fixture(scope="package")
def cache_models(triton): return triton  # noqa: E704


@pytest.fixture(scope="package")
def sequences_models(triton): return triton  # noqa: E704
