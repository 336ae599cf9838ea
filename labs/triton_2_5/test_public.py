"""Public sanity checks for lab triton_2_5 — fast, no server. `pytest labs/triton_2_5` runs
them; `pytest labs/triton_2_5 --grade` runs the real (hidden) graders instead."""

import inspect
from pathlib import Path

import diagnose
import rollout

HERE = Path(__file__).resolve().parent
REPO = HERE / "model_repository"


def test_shipped_files_are_there():
    for path in ("scale/1/params.json", "detector/1/model.py", "detector/2/model.py",
                 "detector/3/model.py", "pipeline/config.pbtxt"):
        assert (REPO / path).is_file(), path
    for path in ("check_repository.py", "ci/model-repository.yml", "alerts/triton-alerts.yml"):
        assert (HERE / path).is_file(), path
    assert any((HERE / "deploy").glob("*.y*ml")), "deploy/ holds no manifests"


def test_functions_have_the_documented_signatures():
    assert list(inspect.signature(diagnose.diagnose).parameters) == ["model", "error", "log"]
    assert list(inspect.signature(rollout.rollout).parameters) == ["url", "model", "version"]
    assert list(inspect.signature(rollout.rollback).parameters) == ["url", "model"]


def test_configs_parse():
    """Every config.pbtxt is valid protobuf text (the server's first check)."""
    from labgrade.runtime.triton import parse_model_config

    for config in sorted(REPO.glob("*/config.pbtxt")):
        parse_model_config(config.read_text())
