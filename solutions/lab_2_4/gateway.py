"""The API gateway in front of a vLLM OpenAI server: keys, per-key rate limit, readiness,
SSE pass-through, request ids in an access log. Uvicorn's graceful shutdown drains it."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import os
import time
import uuid

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

log = logging.getLogger("gateway.access")
PROXIED = ("/v1/completions", "/v1/chat/completions", "/v1/models")


class TokenBucket:
    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self.tokens = float(burst)
        self.stamp = time.monotonic()

    def take(self) -> float:
        """0 when a token was taken, else the seconds until one is available."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


def error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "code": status}}, status_code=status,
                        headers=headers)


def create_app(upstream: str, settings: dict) -> FastAPI:
    keys = {k.strip() for k in os.environ.get("GATEWAY_API_KEYS", "").split(",") if k.strip()}
    rate, burst = float(settings["rate_per_s"]), int(settings["burst"])
    buckets: dict[str, TokenBucket] = {}
    state: dict = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
        state["client"] = httpx.AsyncClient(base_url=upstream, timeout=httpx.Timeout(
            None, connect=5.0))
        yield
        await state["client"].aclose()

    app = FastAPI(lifespan=lifespan)

    @app.middleware("http")
    async def access_log(request: Request, call_next):
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        request.state.request_id = request_id
        started = time.monotonic()
        response = await call_next(request)
        response.headers["X-Request-ID"] = request_id
        log.info("request_id=%s method=%s path=%s status=%s ms=%.1f", request_id,
                 request.method, request.url.path, response.status_code,
                 1000 * (time.monotonic() - started))
        return response

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok"}

    @app.get("/ready")
    async def ready() -> Response:
        try:
            answer = await state["client"].get("/health", timeout=2.0)
        except httpx.HTTPError as exc:
            return error(503, f"engine not reachable: {type(exc).__name__}")
        if answer.status_code != 200:
            return error(503, f"engine not ready ({answer.status_code})")
        return JSONResponse({"status": "ready"})

    async def admit(request: Request) -> Response | None:
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("bearer ") or not header[7:].strip():
            return error(401, "missing API key: send Authorization: Bearer <key>",
                         {"WWW-Authenticate": "Bearer"})
        key = header[7:].strip()
        if key not in keys:
            return error(403, "API key not accepted")
        bucket_id = hashlib.sha256(key.encode()).hexdigest()
        wait = buckets.setdefault(bucket_id, TokenBucket(rate, burst)).take()
        if wait > 0:
            return error(429, "rate limit exceeded",
                         {"Retry-After": str(max(1, math.ceil(wait)))})
        return None

    async def proxy(request: Request) -> Response:
        refused = await admit(request)
        if refused is not None:
            return refused
        client: httpx.AsyncClient = state["client"]
        upstream_request = client.build_request(
            request.method, request.url.path, content=await request.body(),
            headers={"content-type": request.headers.get("content-type", "application/json"),
                     "x-request-id": request.state.request_id})
        try:
            answer = await client.send(upstream_request, stream=True)
        except httpx.HTTPError as exc:
            return error(502, f"engine unreachable: {type(exc).__name__}")
        media = answer.headers.get("content-type", "application/json")
        if not media.startswith("text/event-stream"):
            body = await answer.aread()
            await answer.aclose()
            return Response(body, status_code=answer.status_code, media_type=media)

        async def events():
            try:
                async for chunk in answer.aiter_raw():
                    yield chunk
            finally:
                await answer.aclose()

        return StreamingResponse(events(), status_code=answer.status_code, media_type=media,
                                 headers={"cache-control": "no-cache"})

    for path in PROXIED:
        app.add_api_route(path, proxy, methods=["GET"] if path.endswith("models") else ["POST"])

    return app


def from_environment() -> FastAPI:
    """The container's entry point: `uvicorn --factory gateway:from_environment`."""
    return create_app(os.environ["UPSTREAM_URL"],
                      {"rate_per_s": float(os.environ.get("RATE_PER_S", "2")),
                       "burst": int(os.environ.get("BURST", "5"))})
