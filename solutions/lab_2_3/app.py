"""Lab 2.3 — an OpenAI-compatible FastAPI service over vLLM's async engine (reference solution)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import Literal

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest
from pydantic import BaseModel, Field

TRACKED = ("/v1/completions", "/v1/chat/completions")

# Module level, in prometheus_client's default registry, where vLLM registers its own
# vllm:* metrics too: /metrics serves both.
REQUESTS = Counter("app_requests", "HTTP requests by endpoint and status code",
                   ["endpoint", "status"])
LATENCY = Histogram("app_request_latency_seconds",
                    "Request latency from arrival to the last byte sent (streams included)",
                    ["endpoint"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                                           5.0, 10.0, 30.0, 60.0))
TOKENS = Counter("app_generated_tokens", "Completion tokens generated for clients",
                 ["endpoint"])


# ------------------------------------------------------------------------ request models
class StreamOptions(BaseModel):
    include_usage: bool = False


class Sampling(BaseModel):
    """Fields both endpoints share; the limits make FastAPI answer 422 on bad values."""

    model: str | None = None
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    stop: str | list[str] | None = None
    seed: int | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    ignore_eos: bool = False  # vLLM's extension; benchmarks use it


class CompletionRequest(Sampling):
    prompt: str = Field(min_length=1)
    max_tokens: int = Field(16, ge=1)


class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: str


class ChatRequest(Sampling):
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)


# ----------------------------------------------------------------------------- middleware
class MetricsMiddleware:
    """Pure ASGI middleware: it sees every response, 422s from validation included, and
    times each request until its last byte, so a stream counts until its final chunk."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"] not in TRACKED:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_watch(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_watch)
        finally:
            REQUESTS.labels(endpoint=scope["path"], status=str(status)).inc()
            LATENCY.labels(endpoint=scope["path"]).observe(time.perf_counter() - started)


# -------------------------------------------------------------------------------- helpers
def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": "invalid_request_error",
                                   "code": status}}, status_code=status)


def _sse(payload: dict | str) -> str:
    return f"data: {payload if isinstance(payload, str) else json.dumps(payload)}\n\n"


async def _until_disconnected(request: Request, work: Awaitable[Response]) -> Response:
    """Await `work`, but cancel it if the client goes away first. Cancelling reaches the
    engine's generate() iterator, and vLLM aborts the request. (A StreamingResponse does
    this by itself; a plain handler does not.)"""

    async def disconnected() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    task, watcher = asyncio.ensure_future(work), asyncio.ensure_future(disconnected())
    await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        watcher.cancel()
        return task.result()
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    return Response(status_code=499)  # nobody is listening any more


class Generation:
    """One request to the engine: yields text deltas, keeps the final output."""

    def __init__(self, engine, prompt: str, params, endpoint: str) -> None:
        self.engine, self.prompt, self.params, self.endpoint = engine, prompt, params, endpoint
        self.final = None
        self.finish_reason = None

    async def deltas(self) -> AsyncIterator[str]:
        text, tokens = "", 0
        async for output in self.engine.generate(self.prompt, self.params, uuid.uuid4().hex):
            completion = output.outputs[0]
            TOKENS.labels(endpoint=self.endpoint).inc(len(completion.token_ids) - tokens)
            delta, text, tokens = completion.text[len(text):], completion.text, \
                len(completion.token_ids)
            if output.finished:
                self.final, self.finish_reason = output, completion.finish_reason
            yield delta

    def usage(self) -> dict:
        prompt = len(self.final.prompt_token_ids or [])
        completion = len(self.final.outputs[0].token_ids)
        return {"prompt_tokens": prompt, "completion_tokens": completion,
                "total_tokens": prompt + completion}


# ---------------------------------------------------------------------------------- app
def create_app(model: str, profile: dict) -> FastAPI:
    served_name = profile.get("served_model_name", model)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        from vllm import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM

        engine = AsyncLLM.from_engine_args(
            AsyncEngineArgs(model=model, **profile.get("engine_kwargs", {})))
        app.state.engine = engine
        app.state.tokenizer = engine.get_tokenizer()
        try:
            yield
        finally:
            engine.shutdown()

    app = FastAPI(title="Lab 2.3 LLM service", lifespan=lifespan)
    app.add_middleware(MetricsMiddleware)

    async def serve(request: Request, body: Sampling, prompt: str, max_tokens: int,
                    chat: bool) -> Response:
        from vllm import SamplingParams
        try:  # vLLM >= 0.3x names its request-validation error; older versions raise ValueError
            from vllm.exceptions import VLLMClientError
            rejected = (ValueError, VLLMClientError)
        except ImportError:
            rejected = (ValueError,)
        try:
            params = SamplingParams(
                max_tokens=max_tokens, temperature=body.temperature, top_p=body.top_p,
                stop=[body.stop] if isinstance(body.stop, str) else body.stop,
                seed=body.seed, ignore_eos=body.ignore_eos)
        except rejected as exc:
            return _error(400, str(exc))
        generation = Generation(app.state.engine, prompt, params, request.url.path)
        head = {"id": ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex,
                "created": int(time.time()), "model": served_name}

        def choice(text: str, finish_reason: str | None, streaming: bool) -> dict:
            if not chat:
                return {"index": 0, "text": text, "logprobs": None,
                        "finish_reason": finish_reason}
            key = "delta" if streaming else "message"
            content = ({"content": text} if text else {}) if streaming else \
                {"role": "assistant", "content": text}
            return {"index": 0, key: content, "finish_reason": finish_reason}

        if not body.stream:
            async def complete() -> Response:
                try:
                    text = "".join([d async for d in generation.deltas()])
                except rejected as exc:
                    return _error(400, str(exc))
                return JSONResponse({**head, "object": "chat.completion" if chat
                                     else "text_completion",
                                     "choices": [choice(text, generation.finish_reason, False)],
                                     "usage": generation.usage()})
            return await _until_disconnected(request, complete())

        deltas = generation.deltas()
        try:  # the first token before the headers: a refused request gets a real 400
            first = await anext(deltas)
        except rejected as exc:
            return _error(400, str(exc))
        except StopAsyncIteration:
            return _error(500, "the engine returned nothing")
        kind = "chat.completion.chunk" if chat else "text_completion"
        include_usage = bool(body.stream_options and body.stream_options.include_usage)

        async def events() -> AsyncIterator[str]:
            if chat:
                yield _sse({**head, "object": kind, "choices": [
                    {"index": 0, "delta": {"role": "assistant", "content": ""},
                     "finish_reason": None}]})
            pending = first
            while pending is not None:
                try:
                    following = await anext(deltas)
                except StopAsyncIteration:
                    following = None
                finish = generation.finish_reason if following is None else None
                if pending or finish:
                    yield _sse({**head, "object": kind,
                                "choices": [choice(pending, finish, True)]})
                pending = following
            if include_usage:
                yield _sse({**head, "object": kind, "choices": [],
                            "usage": generation.usage()})
            yield _sse("[DONE]")

        return StreamingResponse(events(), media_type="text/event-stream")

    @app.get("/health")
    async def health() -> Response:
        try:
            await app.state.engine.check_health()
        except Exception as exc:  # noqa: BLE001 - any failure means "not healthy"
            return _error(503, f"engine unhealthy: {exc}")
        return Response(status_code=200)

    @app.get("/v1/models")
    async def models() -> dict:
        return {"object": "list",
                "data": [{"id": served_name, "object": "model", "owned_by": "lab_2_3"}]}

    @app.post("/v1/completions")
    async def completions(body: CompletionRequest, request: Request) -> Response:
        return await serve(request, body, body.prompt, body.max_tokens, chat=False)

    @app.post("/v1/chat/completions")
    async def chat_completions(body: ChatRequest, request: Request) -> Response:
        prompt = app.state.tokenizer.apply_chat_template(
            [m.model_dump() for m in body.messages], add_generation_prompt=True, tokenize=False)
        max_tokens = body.max_completion_tokens or body.max_tokens or 16
        return await serve(request, body, prompt, max_tokens, chat=True)

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    return app
