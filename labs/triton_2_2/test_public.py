"""Public sanity checks for lab triton_2_2 — fast, no server. `pytest labs/triton_2_2` runs
them; `pytest labs/triton_2_2 --grade` runs the real (hidden) graders instead."""

import inspect
from pathlib import Path

import lifecycle
import splitter

REPO = Path(__file__).resolve().parent / "model_repository"


def _config(model: str) -> dict:
    from labgrade.runtime.triton import parse_model_config

    return parse_model_config((REPO / model / "config.pbtxt").read_text())


def test_shipped_versions_are_there():
    assert sorted(p.name for p in (REPO / "classifier").iterdir() if p.is_dir()) >= ["1", "2", "3"]
    assert all((REPO / "ranker" / v / "model.py").is_file() for v in ("1", "2"))


def test_each_model_declares_a_version_policy():
    for model in ("classifier", "ranker"):
        assert _config(model).get("version_policy"), f"{model}: set version_policy"


def test_functions_have_the_documented_signatures():
    assert list(inspect.signature(lifecycle.serve_versions).parameters) == [
        "url", "model", "versions"]
    for name in ("load", "unload", "rollback"):
        assert list(inspect.signature(getattr(lifecycle, name)).parameters) == ["url", "model"]
    assert list(inspect.signature(splitter.route).parameters) == [
        "url", "model", "user_id", "features", "weights"]
