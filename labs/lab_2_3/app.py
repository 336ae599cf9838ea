"""Lab 2.3 — an OpenAI-compatible FastAPI service over vLLM's async engine (see README.md).

The grader imports this file, calls `create_app(model, profile)` and serves the returned app
with uvicorn. `profile` is a dict such as
{"name": "cpu", "device": "cpu", "served_model_name": "tiny-llama", "max_model_len": 512,
 "engine_kwargs": {"dtype": "float32", "max_model_len": 512, "enforce_eager": True,
                   "kv_cache_memory_bytes": 67108864}}.
"""

from __future__ import annotations

from fastapi import FastAPI

# TODO: metrics at module level, in prometheus_client's default registry (README, 'Metrics'):
#   app_requests_total{endpoint, status}, app_request_latency_seconds{endpoint} (histogram),
#   app_generated_tokens_total.

# TODO: pydantic request models for completions and chat with the limits of README,
#   'Endpoints' (Field(ge=..., le=..., min_length=...)), so bad input is answered 422.


def create_app(model: str, profile: dict) -> FastAPI:
    """Build (but do not start) the FastAPI app serving `model`.

    TODO:
    - a lifespan that builds `AsyncLLM.from_engine_args(AsyncEngineArgs(model=model,
      **profile["engine_kwargs"]))` at start-up and shuts it down at the end;
    - GET /health, POST /v1/completions, POST /v1/chat/completions (plain and streamed as
      Server-Sent Events ending with `data: [DONE]`), GET /metrics;
    - async all the way: await the engine's async generator, never block the event loop;
    - a disconnected client aborts its generation;
    - a middleware that counts every request (422s too) and times it to its last byte.
    """
    raise NotImplementedError("create_app: TODO")
