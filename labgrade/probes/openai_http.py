"""Grader-side HTTP probes for OpenAI-compatible services (plain Python, no pytest).

- `read_sse` / `stream_sse`: one streamed request, recorded event by event (payloads, JSON
  errors, stray lines, whether `data: [DONE]` came and whether anything followed it,
  timings of the first content and the end);
- `scrape` / `scrape_async`: a /metrics page read with `labgrade.runtime.prom` (the one
  Prometheus reader), as a `Scrape` that never raises, with `delta` between two scrapes;
- `poll_while`: latencies of a light request (e.g. GET /health) polled while a coroutine runs.

Everything here runs in the grading process and only talks HTTP: the student's code runs
in its own process.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Awaitable, Iterable, Iterator
from dataclasses import dataclass, field

import httpx

from labgrade.runtime import prom

DONE = "[DONE]"


# ------------------------------------------------------------------------------ SSE
@dataclass
class SSEStream:
    """What one streamed response looked like on the wire."""

    status: int = 0
    content_type: str = ""
    payloads: list[str] = field(default_factory=list)   # every event's data, in order
    chunks: list[dict] = field(default_factory=list)    # payloads that parsed as JSON objects
    bad_payloads: list[str] = field(default_factory=list)
    stray_lines: list[str] = field(default_factory=list)  # not data:/event:/id:/retry:/comment
    done: bool = False            # a `data: [DONE]` event arrived
    events_after_done: int = 0
    pieces: list[str] = field(default_factory=list)     # non-empty content per chunk
    roles: list[str] = field(default_factory=list)      # chat: roles announced in deltas
    finish_reasons: list[str] = field(default_factory=list)
    usage: dict | None = None
    error_body: str = ""          # the body of a non-200 answer
    started: float = 0.0          # perf_counter at send
    first_content: float | None = None
    ended: float | None = None
    error: str = ""               # transport error (timeout, reset)

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    @property
    def ttft(self) -> float | None:
        return None if self.first_content is None else self.first_content - self.started

    @property
    def e2e(self) -> float | None:
        return None if self.ended is None else self.ended - self.started


def _content_of(chunk: dict, chat: bool) -> tuple[str, str | None, str | None]:
    """(content, role, finish_reason) of one chunk's first choice."""
    choices = chunk.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return "", None, None
    choice = choices[0]
    if chat:
        delta = choice.get("delta") if isinstance(choice.get("delta"), dict) else {}
        content, role = delta.get("content"), delta.get("role")
    else:
        content, role = choice.get("text"), None
    return (content if isinstance(content, str) else ""), role, choice.get("finish_reason")


class SSEParser:
    """Incremental SSE parsing: feed lines, get event payloads (the data lines of one event
    joined by newlines) and ("stray", line) for lines that are not SSE at all."""

    def __init__(self) -> None:
        self._data: list[str] = []

    def feed(self, raw: str) -> list[str | tuple[str, str]]:
        line = raw.rstrip("\r")
        if not line:
            return self.flush()
        if line.startswith(":"):
            return []
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            self._data.append(value)
            return []
        if name in ("event", "id", "retry"):
            return []
        return [("stray", line)]

    def flush(self) -> list[str | tuple[str, str]]:
        if not self._data:
            return []
        event, self._data = "\n".join(self._data), []
        return [event]


def sse_events(lines: Iterable[str]) -> Iterator[str | tuple[str, str]]:
    parser = SSEParser()
    for line in lines:
        yield from parser.feed(line)
    yield from parser.flush()


def _take(stream: "SSEStream", events: Iterable[str | tuple[str, str]], chat: bool) -> None:
    for event in events:
        if isinstance(event, tuple):
            stream.stray_lines.append(event[1][:200])
        else:
            _record(stream, event, chat)


def _record(stream: SSEStream, payload: str, chat: bool) -> None:
    if stream.done:
        stream.events_after_done += 1
    stream.payloads.append(payload)
    if payload.strip() == DONE:
        stream.done = True
        return
    try:
        chunk = json.loads(payload)
    except ValueError:
        stream.bad_payloads.append(payload[:200])
        return
    if not isinstance(chunk, dict):
        stream.bad_payloads.append(payload[:200])
        return
    stream.chunks.append(chunk)
    content, role, finish = _content_of(chunk, chat)
    if role:
        stream.roles.append(role)
    if finish:
        stream.finish_reasons.append(finish)
    if isinstance(chunk.get("usage"), dict):
        stream.usage = chunk["usage"]
    if content:
        if stream.first_content is None:
            stream.first_content = time.perf_counter()
        stream.pieces.append(content)


def read_sse(response: httpx.Response, stream: SSEStream, chat: bool) -> SSEStream:
    """Fill `stream` from a streaming httpx response (sync)."""
    stream.status = response.status_code
    stream.content_type = response.headers.get("content-type", "")
    if response.status_code != 200:
        stream.error_body = response.read().decode("utf-8", "replace")[:500]
        stream.ended = time.perf_counter()
        return stream
    _take(stream, sse_events(response.iter_lines()), chat)
    stream.ended = time.perf_counter()
    return stream


def stream_sse(base_url: str, path: str, body: dict, *, chat: bool,
               timeout: float = 120.0) -> SSEStream:
    """POST `body` (with "stream": true) and record the whole stream."""
    stream = SSEStream(started=time.perf_counter())
    try:
        with httpx.Client(timeout=timeout) as client:
            with client.stream("POST", base_url.rstrip("/") + path,
                               json={**body, "stream": True}) as response:
                read_sse(response, stream, chat)
    except httpx.HTTPError as exc:
        stream.error = f"{type(exc).__name__}: {exc}"
        stream.ended = time.perf_counter()
    return stream


async def stream_sse_async(client: httpx.AsyncClient, base_url: str, path: str, body: dict,
                           *, chat: bool) -> SSEStream:
    stream = SSEStream(started=time.perf_counter())
    try:
        async with client.stream("POST", base_url.rstrip("/") + path,
                                 json={**body, "stream": True}) as response:
            stream.status = response.status_code
            stream.content_type = response.headers.get("content-type", "")
            if response.status_code != 200:
                stream.error_body = (await response.aread()).decode("utf-8", "replace")[:500]
            else:
                parser = SSEParser()
                async for line in response.aiter_lines():
                    _take(stream, parser.feed(line), chat)
                _take(stream, parser.flush(), chat)
    except httpx.HTTPError as exc:
        stream.error = f"{type(exc).__name__}: {exc}"
    stream.ended = time.perf_counter()
    return stream


# ------------------------------------------------------------------------ Prometheus
class Scrape:
    """One read of a /metrics page, for graders that compare two reads: never raises.

    A thin view of `labgrade.runtime.prom.Snapshot` (same names, same label matching) with
    one rule of its own, written down here: a name with no matching sample reads 0, i.e.
    `prom`'s `value(..., default=0.0)` (a labelled counter has no series until its first
    increment). Ask `has()` whether a metric exists at all. A page that could not be read
    is empty and says why in `error`.
    """

    def __init__(self, snapshot: prom.Snapshot | None = None, *, error: str = "") -> None:
        self.snapshot = snapshot if snapshot is not None else prom.Snapshot([])
        self.error = error

    @property
    def types(self) -> dict[str, str]:
        """Family name -> type (counter, gauge, histogram, ...)."""
        return self.snapshot.types

    def has(self, sample_name: str) -> bool:
        return bool(self.snapshot.samples(sample_name))

    def series(self, sample_name: str, **labels: str) -> list[tuple[dict, float]]:
        """(labels, value) of the samples of that name whose labels include `labels`."""
        return [(s.labels, s.value) for s in self.snapshot.samples(sample_name, **labels)]

    def value(self, sample_name: str, **labels: str) -> float:
        """Sum over every series of that name whose labels include `labels` (0 if none)."""
        return self.snapshot.value(sample_name, default=0.0, **labels)


def parse_metrics(text: str) -> Scrape:
    try:
        return Scrape(prom.parse(text))
    except prom.MetricsError as exc:
        return Scrape(error=str(exc))


def scrape(base_url: str, path: str = "/metrics", timeout: float = 10.0) -> Scrape:
    try:
        return Scrape(prom.scrape(base_url.rstrip("/") + path, timeout=timeout))
    except prom.MetricsError as exc:
        return Scrape(error=str(exc))


async def scrape_async(client: httpx.AsyncClient, base_url: str,
                       path: str = "/metrics") -> Scrape:
    """`scrape` through an open async client (inside an event loop that sends traffic)."""
    url = base_url.rstrip("/") + path
    try:
        response = await client.get(url)
    except httpx.HTTPError as exc:
        return Scrape(error=f"GET {url} failed: {type(exc).__name__}: {exc}")
    if response.status_code != 200:
        return Scrape(error=f"GET {url} answered {response.status_code}")
    return parse_metrics(response.text)


def delta(before: Scrape, after: Scrape, sample_name: str, **labels: str) -> float:
    return after.value(sample_name, **labels) - before.value(sample_name, **labels)


# ------------------------------------------------------------------- polling under load
@dataclass
class Polls:
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def quantile(self, q: float) -> float:
        if not self.latencies:
            return math.nan
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def poll_while(client: httpx.AsyncClient, url: str, work: Awaitable, *,
                     interval: float = 0.05, pollers: int = 1) -> tuple[object, Polls]:
    """Run `work`; meanwhile GET `url` every `interval` s from each of `pollers` staggered
    pollers and time each answer. Returns (work's result, the polls). A poll still in
    flight when `work` ends counts with its latency so far, so a server that never answers
    cannot look fast."""
    polls = Polls()
    finished = asyncio.Event()

    async def poller(delay: float) -> None:
        try:
            await asyncio.wait_for(finished.wait(), delay)
            return
        except asyncio.TimeoutError:
            pass
        while not finished.is_set():
            started = time.perf_counter()
            request = asyncio.ensure_future(client.get(url))
            stop = asyncio.ensure_future(finished.wait())
            done, _ = await asyncio.wait({request, stop}, return_when=asyncio.FIRST_COMPLETED)
            stop.cancel()
            if request not in done:
                polls.latencies.append(time.perf_counter() - started)
                request.cancel()
                return
            elapsed = time.perf_counter() - started
            try:
                response = request.result()
                if response.status_code != 200:
                    polls.failures.append(f"HTTP {response.status_code}")
            except httpx.HTTPError as exc:
                polls.failures.append(type(exc).__name__)
            polls.latencies.append(elapsed)
            try:
                await asyncio.wait_for(finished.wait(), interval)
            except asyncio.TimeoutError:
                pass

    tasks = [asyncio.ensure_future(poller(i * interval / pollers)) for i in range(pollers)]
    try:
        result = await work
    finally:
        finished.set()
        await asyncio.gather(*tasks)
    return result, polls
