"""Public sanity checks for lab 2.3 — fast, no engine. `pytest labs/lab_2_3` runs them;
`pytest labs/lab_2_3 --grade` runs the real (hidden) graders instead.

They drive your app in-process with Starlette's TestClient WITHOUT running its lifespan,
so no engine is built: only what FastAPI answers before your handlers need the engine
(routes, validation, /metrics) is checked here.
"""

import inspect

from fastapi.testclient import TestClient

import app as student

CPU = {"name": "cpu", "device": "cpu", "served_model_name": "tiny-llama", "max_model_len": 512,
       "engine_kwargs": {"dtype": "float32", "max_model_len": 512, "enforce_eager": True,
                         "kv_cache_memory_bytes": 64 * 1024 * 1024}}


def _client() -> TestClient:
    return TestClient(student.create_app("/models/not-loaded-here", CPU),
                      raise_server_exceptions=False)


def test_create_app_signature_and_no_engine_at_build_time():
    assert list(inspect.signature(student.create_app).parameters)[:2] == ["model", "profile"]
    app = student.create_app("/models/not-loaded-here", CPU)  # must not touch the model
    paths = {(route.path, method) for route in app.routes for method in
             getattr(route, "methods", None) or ()}
    for path, method in [("/health", "GET"), ("/v1/completions", "POST"),
                         ("/v1/chat/completions", "POST"), ("/metrics", "GET")]:
        assert (path, method) in paths, f"missing route {method} {path}"


def test_bad_input_is_422_before_the_engine():
    client = _client()
    assert client.post("/v1/completions", json={"prompt": "hi", "max_tokens": -3}).status_code == 422
    assert client.post("/v1/completions", json={"prompt": "", "max_tokens": 3}).status_code == 422
    assert client.post("/v1/chat/completions", json={"messages": []}).status_code == 422


def test_metrics_count_refused_requests():
    client = _client()
    client.post("/v1/completions", json={"prompt": "hi", "temperature": 7})
    page = client.get("/metrics")
    assert page.status_code == 200
    assert 'app_requests_total{endpoint="/v1/completions",status="422"}' in page.text
    assert "app_request_latency_seconds_bucket" in page.text
