"""lab_2_2's fixtures: the grader's engines (engines.py), the prefix-caching run
(prefix_run.py) and the hidden weights. None raises for a student's mistake: each records
it in a `Deferred`, and the items that need the thing fail with the student's own error."""

from __future__ import annotations

import pytest

from labgrade.fixtures import *  # noqa: F403  (lab, submission, settings, run_dir)
from labgrade.kit import Deferred, needed, profile_view
from labgrade.runtime.vllm import resolve_model

from . import prefix_run as prefix_workload
from . import workloads
from .engines import NEEDED_BY, Engine, EngineHost


@pytest.fixture(scope="package")
def model(settings) -> str:
    return resolve_model(settings["model"])


@pytest.fixture(scope="package")
def host(request, lab, settings, model) -> EngineHost:
    slots = {name for name, fixtures in NEEDED_BY.items() if needed(request, *fixtures)}
    view = profile_view(settings, lab.profile, "device", "dtype", "max_model_len")
    engines = EngineHost(lab, settings, model, resolve_model(settings["draft_model"]), view,
                         slots)
    lab.on_close(engines.close)
    return engines


@pytest.fixture(scope="package")
def prefix_engine(host) -> Deferred[Engine]:
    return host.get("prefix")


@pytest.fixture(scope="package")
def draft_engine(host) -> Deferred[Engine]:
    return host.get("draft")


@pytest.fixture(scope="package")
def quant_engine(host) -> Deferred[Engine]:
    return host.get("quant")


@pytest.fixture(scope="package")
def ngram_engine(host) -> Deferred[Engine]:
    return host.get("ngram")


@pytest.fixture(scope="package")
def prefix_run(host, settings) -> Deferred[prefix_workload.PrefixRun]:
    """The student's prompts on the student's prefix-caching engine (prefix_run.py)."""
    run = Deferred("the prefix-caching run")
    with run.recording():
        run.set(prefix_workload.measure(host, settings))
    return run


@pytest.fixture(scope="package")
def hidden_weights(run_dir) -> dict:
    """The hidden matrices, written as .npy for the student's functions to load."""
    from labgrade.kit.arrays import save_arrays

    int8, int4 = workloads.weight_matrices()
    arrays = {"int8": int8, **{f"int4_g{group}": w for group, w in int4.items()}}
    paths = save_arrays(run_dir / "weights", **arrays)
    return {"paths": paths, "arrays": arrays}
