"""Public sanity checks for lab triton_2_1 — fast, no server. `pytest labs/triton_2_1` runs
them; `pytest labs/triton_2_1 --grade` runs the real (hidden) graders instead."""

import inspect
from pathlib import Path

import client

HERE = Path(__file__).resolve().parent
MODEL = HERE / "model_repository" / "mlp"


def test_repository_layout():
    assert (MODEL / "config.pbtxt").is_file()
    assert (MODEL / "1" / "model.py").is_file(), "model.py goes in the version folder 1/"
    assert (MODEL / "1" / "mlp.pt").is_file(), "keep the shipped weights next to model.py"


def test_config_parses_and_declares_the_tensors():
    from labgrade.runtime.triton import parse_model_config

    config = parse_model_config((MODEL / "config.pbtxt").read_text())
    assert config.get("backend") == "python"
    assert int(config.get("max_batch_size", 0)) == 8, "requests carry up to 8 rows"
    assert [i.get("name") for i in config.get("input", [])] == ["X"]
    assert [o.get("name") for o in config.get("output", [])] == ["Y"]
    assert config.get("instance_group"), "declare an instance_group"


def test_client_functions_have_the_documented_signatures():
    for name in ("infer_http", "infer_grpc"):
        assert list(inspect.signature(getattr(client, name)).parameters) == [
            "url", "model", "batch"]
    assert list(inspect.signature(client.inference_count).parameters) == [
        "metrics_url", "model"]
    assert list(inspect.signature(client.inference_statistics).parameters) == ["url", "model"]
