"""Traffic the lab_2_3 graders send: concurrent streams under /health polling, known
traffic between two /metrics scrapes, and requests cut off by a disconnect.

Each function records what happened (plain dataclasses) and never raises on a student's
mistake; the items decide what the recording means.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass, field

import httpx

from labgrade.probes.openai_http import (Polls, Scrape, SSEStream, poll_while, scrape,
                                         scrape_async, stream_sse, stream_sse_async)

from . import prompts

COMPLETIONS, CHAT = "/v1/completions", "/v1/chat/completions"


# ------------------------------------------------------------------ concurrency + health
@dataclass
class LoadRound:
    """One stream alone, then N streams sent at once while /health is polled."""

    streams: list[SSEStream]
    polls: Polls
    started: float
    solo: SSEStream | None = None

    @property
    def failed(self) -> list[str]:
        out = []
        for i, s in enumerate(self.streams + ([self.solo] if self.solo else [])):
            if s.error or s.status != 200 or not s.pieces:
                why = s.error or (f"HTTP {s.status}: {s.error_body[:200]}" if s.status != 200
                                  else "no content was streamed")
                out.append(f"stream {i}: {why}")
        return out

    def median_e2e(self) -> float:
        return statistics.median(s.e2e for s in self.streams if s.e2e is not None)

    def first_finish(self) -> float:
        return min(s.ended for s in self.streams) - self.started

    def last_first_token(self) -> float:
        return max(s.first_content for s in self.streams) - self.started

    def in_flight_together(self) -> int:
        """Streams whose first token came before any stream had finished: 1 when requests
        are served one after another, all of them when the engine batches them."""
        end = min(s.ended for s in self.streams)
        return sum(1 for s in self.streams if s.first_content < end)

    def makespan(self) -> float:
        return max(s.ended for s in self.streams) - self.started

    def speedup(self) -> float:
        """N requests at once against N times one alone: about N when the engine batches
        them, about 1 when they run one after another (however the bytes are delivered)."""
        if self.solo is None or self.solo.e2e is None or self.makespan() <= 0:
            return 0.0
        return len(self.streams) * self.solo.e2e / self.makespan()

    def overlaps(self, settings: dict) -> bool:
        return self.in_flight_together() >= 2 and \
            self.speedup() >= settings["overlap_min_speedup"]

    def health_limit(self, settings: dict) -> float:
        return max(settings["health_median_max_fraction"] * self.median_e2e(),
                   settings["health_median_floor_s"])

    def health_ok(self, settings: dict) -> bool:
        return bool(self.polls.latencies) and \
            self.polls.quantile(0.5) <= self.health_limit(settings)


@dataclass
class LoadRun:
    """Up to `load_rounds` rounds: a busy machine can stall any process for a second, so
    a round that shows overlap and a responsive /health settles it; a server that blocks
    or serialises fails every round the same way."""

    rounds: list[LoadRound]

    @property
    def failed(self) -> list[str]:
        return next((r.failed for r in self.rounds if r.failed), [])

    def best_overlap(self, settings: dict) -> LoadRound:
        return max(self.rounds, key=lambda r: (r.overlaps(settings), r.speedup()))

    def best_health(self, settings: dict) -> LoadRound:
        return min(self.rounds, key=lambda r: r.polls.quantile(0.5) / r.health_limit(settings)
                   if r.polls.latencies else float("inf"))


def _round(base_url: str, settings: dict) -> LoadRound:
    n, max_tokens = settings["load_streams"], settings["load_max_tokens"]
    bodies = [{"prompt": prompts.LOAD_PROMPTS[i % len(prompts.LOAD_PROMPTS)],
               "max_tokens": max_tokens, "temperature": 0.0} for i in range(n)]

    async def run() -> LoadRound:
        limits = httpx.Limits(max_connections=n + 2)
        async with httpx.AsyncClient(timeout=120, limits=limits) as client, \
                httpx.AsyncClient(timeout=120) as health:
            solo = await stream_sse_async(client, base_url, COMPLETIONS, bodies[0], chat=False)
            started = time.perf_counter()
            work = asyncio.gather(*(stream_sse_async(client, base_url, COMPLETIONS, body,
                                                     chat=False) for body in bodies))
            streams, polls = await poll_while(health, base_url + "/health", work,
                                              interval=settings["health_interval_s"],
                                              pollers=settings.get("health_pollers", 2))
        return LoadRound(list(streams), polls, started, solo)

    return asyncio.run(run())


def concurrent_streams(base_url: str, settings: dict) -> LoadRun:
    rounds: list[LoadRound] = []
    for _ in range(settings.get("load_rounds", 3)):
        rounds.append(_round(base_url, settings))
        last = rounds[-1]
        if last.failed or (last.overlaps(settings) and last.health_ok(settings)):
            break
    return LoadRun(rounds)


# ----------------------------------------------------------------------------- metrics
@dataclass
class Sent:
    endpoint: str
    status: int
    latency: float
    stream: bool
    completion_tokens: int | None = None
    note: str = ""


@dataclass
class MetricsRun:
    before: Scrape
    after: Scrape
    sent: list[Sent] = field(default_factory=list)

    def count(self, endpoint: str, status: int | None = None) -> int:
        return sum(1 for s in self.sent if s.endpoint == endpoint
                   and (status is None or s.status == status))


def _post(client: httpx.Client, base_url: str, endpoint: str, body: dict) -> Sent:
    started = time.perf_counter()
    try:
        response = client.post(base_url + endpoint, json=body)
    except httpx.HTTPError as exc:
        return Sent(endpoint, 0, time.perf_counter() - started, False,
                    note=f"{type(exc).__name__}: {exc}")
    latency = time.perf_counter() - started
    tokens = None
    if response.status_code == 200:
        try:
            tokens = response.json()["usage"]["completion_tokens"]
        except (ValueError, KeyError, TypeError):
            tokens = None
    return Sent(endpoint, response.status_code, latency, False, tokens)


def _stream(base_url: str, endpoint: str, body: dict) -> Sent:
    rec = stream_sse(base_url, endpoint, {**body, "stream_options": {"include_usage": True}},
                     chat=endpoint == CHAT)
    tokens = None
    if rec.usage and isinstance(rec.usage.get("completion_tokens"), int):
        tokens = rec.usage["completion_tokens"]
    elif rec.finish_reasons and rec.finish_reasons[-1] == "length":
        tokens = body["max_tokens"]
    return Sent(endpoint, rec.status, rec.e2e or 0.0, True, tokens, note=rec.error)


def metrics_traffic(base_url: str, settings: dict) -> MetricsRun:
    user = [{"role": "user", "content": "Which metric counts tokens?"}]
    before = scrape(base_url)
    sent: list[Sent] = []
    with httpx.Client(timeout=120) as client:
        sent.append(_post(client, base_url, COMPLETIONS,
                          {"prompt": "The grader measures", "max_tokens": 8, "temperature": 0}))
        sent.append(_post(client, base_url, COMPLETIONS,
                          {"prompt": "Memory keeps the", "max_tokens": 12, "temperature": 0}))
        sent.append(_stream(base_url, COMPLETIONS,
                            {"prompt": "Each student sends", "max_tokens": 160,
                             "temperature": 0}))
        sent.append(_post(client, base_url, CHAT,
                          {"messages": user, "max_tokens": 8, "temperature": 0}))
        sent.append(_stream(base_url, CHAT, {"messages": user, "max_tokens": 96,
                                             "temperature": 0}))
        sent.append(_post(client, base_url, COMPLETIONS,
                          {"prompt": "The engine", "max_tokens": -1}))
        sent.append(_post(client, base_url, COMPLETIONS,
                          {"prompt": "The engine", "max_tokens": 4, "temperature": 9}))
        sent.append(_post(client, base_url, CHAT, {"messages": [], "max_tokens": 4}))
    time.sleep(0.3)  # a middleware may record just after the last byte went out
    return MetricsRun(before, scrape(base_url), sent)


# -------------------------------------------------------------------------- disconnects
GENERATED, RUNNING = "vllm:generation_tokens_total", "vllm:num_requests_running"


@dataclass
class AbortRun:
    max_tokens: int
    missing: str = ""               # what the /metrics page lacks for this check
    generated: float = 0.0          # tokens the engine produced for the cut request
    cut_after: float = 0.0          # seconds from send to disconnect
    settled_after: float = 0.0      # seconds from disconnect until the engine was idle
    settled: bool = True
    finished_first: bool = False    # the request completed before it could be cut
    error: str = ""


async def _settle(client: httpx.AsyncClient, base_url: str, timeout: float) -> tuple[float, bool]:
    """Wait until no request runs and the token counter stopped moving; (count, settled)."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        page = await scrape_async(client, base_url)
        value = page.value(GENERATED)
        if page.value(RUNNING) == 0 and page.value("vllm:num_requests_waiting") == 0 \
                and value == last:
            return value, True
        if time.monotonic() > deadline:
            return value, False
        last = value
        await asyncio.sleep(0.3)


def disconnect(base_url: str, settings: dict, *, streaming: bool) -> AbortRun:
    """Send a long generation, disconnect once the engine works on it, and count how many
    tokens the engine produced for it in the end."""
    max_tokens = settings["abort_max_tokens"]
    timeout = settings["abort_settle_timeout_s"]
    body = {"prompt": prompts.ABORT_PROMPT, "max_tokens": max_tokens, "temperature": 0.0}

    async def run() -> AbortRun:
        rec = AbortRun(max_tokens)
        async with httpx.AsyncClient(timeout=30) as probe:
            page = await scrape_async(probe, base_url)
            if page.error:
                rec.missing = page.error
                return rec
            lacking = [n for n in (GENERATED, RUNNING) if not page.has(n)]
            if lacking:
                rec.missing = ", ".join(lacking) + " not found on /metrics"
                return rec
            start_count, idle = await _settle(probe, base_url, timeout)
            if not idle:
                rec.error = "the engine never went idle before the test"
                return rec
            client = httpx.AsyncClient(timeout=httpx.Timeout(120))
            sent = time.perf_counter()
            try:
                if streaming:
                    async with client.stream("POST", base_url + COMPLETIONS,
                                             json={**body, "stream": True}) as response:
                        if response.status_code != 200:
                            rec.error = f"the streamed request answered {response.status_code}"
                            return rec
                        async for line in response.aiter_lines():
                            if line.startswith("data:") and "[DONE]" not in line:
                                break  # first chunk: leave without reading the rest
                        else:
                            rec.finished_first = True
                else:
                    task = asyncio.ensure_future(client.post(base_url + COMPLETIONS, json=body))
                    deadline = time.monotonic() + timeout
                    while not task.done() and time.monotonic() < deadline:
                        page = await scrape_async(probe, base_url)
                        if page.value(RUNNING) >= 1 or page.value(GENERATED) > start_count:
                            break
                        await asyncio.sleep(0.05)
                    if task.done():
                        rec.finished_first = True
                    task.cancel()
                    try:
                        await task
                    except (asyncio.CancelledError, httpx.HTTPError):
                        pass
            finally:
                await client.aclose()  # closes the connection: the disconnect
            rec.cut_after = time.perf_counter() - sent
            cut = time.perf_counter()
            end_count, rec.settled = await _settle(probe, base_url, timeout)
            rec.settled_after = time.perf_counter() - cut
            rec.generated = end_count - start_count
        return rec

    return asyncio.run(run())
