"""Fixtures of the triton_2_2 graders: one embedded tritonserver per grading run
(labgrade.kit.triton: staging, crash handling, what an item requires).

The student's model_repository/ is DATA: the grader serves a copy (explicit model control,
auto-completion off: the shipped configs are complete; the student adds the version
policies). Student Python runs in the Python-backend stubs (the shipped model.py files) and
in the worker subprocess (lifecycle.py and splitter.py), never here.

Every item sets up the server state it needs itself (`triton.deploy`: a load with the
grader's own configuration, versions pinned), so items do not depend on each other's order
or on a -k selection, and a wrong version policy costs only the policy item. What the
student's functions do is observed on the server: ready versions from the repository
index, per-version `nv_inference_count` from the metrics port, the answers.
"""

from __future__ import annotations

import pytest

from labgrade.fixtures import *  # noqa: F403  (lab, submission, settings, run_dir)
from labgrade.kit.triton import TritonDeployment, rerun_after_crash

pytest_runtest_call = rerun_after_crash  # an item the server crashed under runs once more


def shipped_config(model: str, kind: str) -> dict:
    """The configuration the lab ships for `model` (classifier and ranker alike), without
    its version policy: `TritonDeployment.deploy` pins the versions."""
    return {
        "name": model,
        "backend": "python",
        "max_batch_size": 8,
        "input": [{"name": "FEATURES", "data_type": "TYPE_FP32", "dims": [4]}],
        "output": [{"name": "SCORE", "data_type": "TYPE_FP32", "dims": [1]}],
        "instance_group": [{"kind": kind, "count": 1}],
    }


@pytest.fixture(scope="package")
def triton(lab, submission, settings) -> TritonDeployment:
    """The server; no model loaded (each item loads what it starts from)."""
    deployment = TritonDeployment.for_lab(
        lab, submission, settings, max_starts=3,
        setup_config=lambda model: shipped_config(model, settings["instance_kind"]))
    return deployment.start()
