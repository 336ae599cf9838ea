"""`--models hub` on the real hub-loading path, offline.

A Hugging Face hub cache (huggingface_hub's layout: blobs, refs/main, snapshots/<rev>)
holds the tiny model under a hub-style id; with HF_HUB_OFFLINE=1 the grader resolves the
id in that cache before any engine starts, and vLLM (the reference engine, the student's
engine and the student's OpenAI server) loads it by the id, as it would a downloaded model.
A small selection of lab_2_1's items keeps this under two minutes on 2 cores; a fresh
labgrade cache (tiny models shared) makes the reference engine really start.
"""

from __future__ import annotations

import pytest

from conftest import items_by_name, run_grade
from labgrade.runtime import tinymodels

pytestmark = pytest.mark.slow
REPO_ID = "labgrade-test/tiny-llama"
ITEMS = ["test_engine_builds_from_your_arguments", "test_greedy_matches_reference",
         "test_server_completions"]


def _hub_env(root) -> tuple[dict, object]:
    hub = root / "hf" / "hub"
    snapshot = tinymodels.publish_to_hub_cache("tiny-llama", REPO_ID, hub)
    cache = root / "labgrade-cache"
    cache.mkdir()
    (cache / "models").symlink_to(tinymodels.cache_root() / "models")
    return {"HF_HUB_OFFLINE": "1", "HF_HOME": str(root / "hf"), "HF_HUB_CACHE": str(hub),
            "LABGRADE_CACHE": str(cache)}, snapshot


def _grade_hub(root, model: str, items: list[str]):
    env, snapshot = _hub_env(root)
    grade, _ = run_grade("lab_2_1", "--solution", "--profile", "cpu", "--models", "hub",
                         "--hub-model", f"model={model}",
                         "--hub-model", "served_model_name=tiny-llama",
                         "-k", " or ".join(items), report_dir=root / "reports", env=env)
    return grade, root / "reports" / "lab_2_1" / "run", snapshot


@pytest.fixture(scope="module")
def hub_grading(tmp_path_factory):
    return _grade_hub(tmp_path_factory.mktemp("hub"), REPO_ID, ITEMS)


def test_a_lab_grades_with_a_hub_model_offline(hub_grading):
    grade, _, _ = hub_grading
    items = items_by_name(grade)
    assert sorted(items) == sorted(ITEMS)
    assert {n: i["status"] for n, i in items.items()} == dict.fromkeys(ITEMS, "passed"), \
        {n: i["message"][:300] for n, i in items.items()}
    assert grade["environment"]["models"] == "hub"
    assert grade["environment"]["hub_models"]["model"] == REPO_ID


def test_every_engine_loaded_the_id_from_the_hub_cache(hub_grading):
    _, run_dir, snapshot = hub_grading
    logs = {name: (run_dir / name).read_text(errors="replace")
            for name in ("reference-engine.log", "worker-0.log", "student-server.log")}
    for name, text in logs.items():  # vLLM resolves the offline id to the cached snapshot
        assert str(snapshot) in text, f"{name} shows no load from {snapshot}"
    assert f"'model': '{REPO_ID}'" in logs["student-server.log"]  # the server got the id
    assert str(tinymodels.model_path("tiny-llama")) not in "".join(logs.values())


def test_a_hub_model_absent_offline_is_ungradable_with_the_fix(tmp_path):
    grade, _, _ = _grade_hub(tmp_path, "labgrade-test/absent", ITEMS[:1])
    item = items_by_name(grade)[ITEMS[0]]
    assert item["status"] == "ungradable"
    assert "labgrade-test/absent" in item["message"] and "HF_HUB_CACHE" in item["message"]
