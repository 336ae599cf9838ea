"""An API gateway in front of a vLLM OpenAI server (README: "gateway.py").

The grader serves `create_app(upstream, settings)` with uvicorn; the upstream is vLLM's
OpenAI server, e.g. "http://127.0.0.1:8000".
"""

from __future__ import annotations


def create_app(upstream: str, settings: dict):
    """Return an ASGI app (a FastAPI object) that

    - reads the API keys from the environment variable GATEWAY_API_KEYS (comma-separated)
      and answers 401 without a key, 403 with a key it does not know;
    - limits each key with a token bucket: settings["rate_per_s"] tokens per second, at
      most settings["burst"] at once; 429 with a Retry-After header (whole seconds) when
      the bucket is empty;
    - answers GET /health with 200 whenever the gateway itself works, and GET /ready with
      503 until the upstream engine answers its /health, then 200;
    - proxies POST /v1/completions, POST /v1/chat/completions and GET /v1/models, passing
      SSE streams through event by event;
    - echoes the caller's X-Request-ID (or mints one) and logs one access line per request
      with that id;
    - lets in-flight requests finish when uvicorn shuts it down (SIGTERM).
    """
    raise NotImplementedError("TODO: create_app() in gateway.py")
