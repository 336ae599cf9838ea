"""Item: the version policies of the student's config.pbtxt files, checked against the
versions the live server reports ready."""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from labgrade import Fail
from labgrade.runtime.triton import ModelLoadError, TritonError

SHIPPED_MODEL_PY = Path(__file__).resolve().parent / "model_version.py"


def _todo(triton, model: str) -> str:
    try:
        text = (triton.repository / model / "config.pbtxt").read_text(errors="replace")
    except OSError:
        return ""
    return f"{model}/config.pbtxt still has a TODO. " if "TODO" in text else ""


def _load(triton, *models: str) -> None:
    """Load `models` from the repository (concurrently); Fail with every server reason."""
    server = triton.require()

    def one(model: str) -> str:
        try:
            server.load(model, timeout=triton.settings["load_timeout"])
        except ModelLoadError as exc:
            return f"{_todo(triton, model)}{exc}"
        return ""

    with ThreadPoolExecutor(max_workers=len(models)) as pool:
        errors = [e for e in pool.map(one, models) if e]
    if errors:
        raise Fail("\n".join(errors))


def _unload_later(triton, model: str) -> None:
    """Unload without waiting for the stubs to exit (~1 s each): the next item sets up its
    own state, and Triton orders a later load of the same model after this unload."""
    try:
        triton.require().unload(model, wait=False)
    except TritonError:
        pass


@pytest.mark.points(20)
def test_version_policies(triton, settings, score):
    """classifier: the two newest versions (2, 3; and 3, 4 once the grader adds a version 4
    and reloads — `latest`, not a fixed list); ranker: version 1 only (`specific`)."""
    server = triton.require()
    problems = []
    _load(triton, "classifier", "ranker")
    # a load returns once its versions are ready; versions it drops are no longer READY
    classifier = triton.ready_versions("classifier")
    ranker = triton.ready_versions("ranker")
    score.measure(classifier_ready=sorted(classifier), ranker_ready=sorted(ranker))
    if classifier != set(settings["classifier_served"]):
        problems.append(f"{_todo(triton, 'classifier')}classifier serves versions "
                        f"{sorted(classifier)}; the task is the two newest, "
                        f"{settings['classifier_served']} (version 1 is retired)")
    if ranker != set(settings["ranker_served"]):
        problems.append(f"{_todo(triton, 'ranker')}ranker serves versions {sorted(ranker)}; "
                        f"only {settings['ranker_served']} is released (version 2 is staged, "
                        "not served, although it is the newest)")
    if classifier == set(settings["classifier_served"]):
        # a new version arrives: "the two newest" must follow it after a reload
        new_dir = triton.repository / "classifier" / "4"
        try:
            new_dir.mkdir(exist_ok=True)
            shutil.copy2(SHIPPED_MODEL_PY, new_dir / "model.py")
            _load(triton, "classifier")
            after = triton.ready_versions("classifier")
            score.measure(classifier_ready_after_v4=sorted(after))
            if after != set(settings["classifier_after_new"]):
                problems.append(
                    f"after a version 4 was added to the repository and classifier was "
                    f"reloaded, it serves {sorted(after)}; the two newest are now "
                    f"{settings['classifier_after_new']}. A `specific` list does not follow "
                    "new versions; a `latest` policy does")
        finally:
            _unload_later(triton, "classifier")
            shutil.rmtree(new_dir, ignore_errors=True)
    _unload_later(triton, "ranker")
    if classifier != set(settings["classifier_served"]):
        _unload_later(triton, "classifier")
    if problems:
        raise Fail("; ".join(problems) + ". Set version_policy in the model's config.pbtxt.")
    assert server.live()
