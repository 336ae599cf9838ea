"""Async load generator for OpenAI-compatible completion endpoints (aiohttp, streaming).

Two arrival modes: fixed concurrency (N requests in flight) and a Poisson process at a
given rate (exponential gaps from a seeded generator, optionally capped in concurrency).
A warm-up sends requests whose results are discarded. Results are per-request samples;
`labgrade.bench.metrics.compute` turns them into TTFT/ITL/TPOT/E2E and throughput.

The client side follows `vllm bench serve` (vllm/benchmarks/lib/endpoint_request_func.py)
so that both measure the same thing: aiohttp with a connection per request in flight, SSE
events split on blank lines, TTFT at the first event that carries choices (even with empty
text), an inter-token gap per such event, and the request's latency ending at its last
such event (not at `[DONE]`). httpx, used elsewhere, adds ~10 ms of client time per
streamed request at concurrency 8 on 2 cores, which vLLM's numbers do not contain.
"""

from __future__ import annotations

import asyncio
import codecs
import json
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import aiohttp

from labgrade.bench.metrics import RequestSample


@dataclass(frozen=True)
class Workload:
    prompts: Sequence[str]
    max_tokens: int = 32
    temperature: float = 0.0
    ignore_eos: bool = True
    extra: dict | None = None


@dataclass(frozen=True)
class LoadResult:
    samples: list[RequestSample]
    duration: float


class _Events:
    """Server-sent events from raw chunks: complete `data:` payloads, in order."""

    def __init__(self) -> None:
        self.buffer = ""
        self._decode = codecs.getincrementaldecoder("utf-8")().decode

    def feed(self, chunk: bytes) -> list[str]:
        self.buffer += self._decode(chunk)
        events = []
        while "\n\n" in self.buffer:
            event, self.buffer = self.buffer.split("\n\n", 1)
            event = event.strip()
            if event and not event.startswith(":"):  # ":..." is an SSE comment (a ping)
                events.append(event.removeprefix("data:").strip())
        return events


async def _one(session: aiohttp.ClientSession, url: str, model: str, prompt: str,
               workload: Workload) -> RequestSample:
    body = {"model": model, "prompt": prompt, "max_tokens": workload.max_tokens,
            "temperature": workload.temperature, "stream": True,
            "stream_options": {"include_usage": True}}
    if workload.ignore_eos:
        body["ignore_eos"] = True
    body.update(workload.extra or {})
    start = time.perf_counter()
    ttft, last, itl, text = None, start, [], []
    output_tokens = prompt_tokens = 0
    try:
        async with session.post(url, json=body) as response:
            if response.status != 200:
                detail = (await response.read()).decode("utf-8", "replace")[:300]
                return RequestSample(start=start, success=False,
                                     error=f"HTTP {response.status}: {detail}")
            events = _Events()
            async for chunk in response.content.iter_any():
                for payload in events.feed(chunk):
                    if payload == "[DONE]":
                        continue
                    data = json.loads(payload)
                    if choices := data.get("choices"):
                        now = time.perf_counter()
                        if ttft is None:
                            ttft = now - start
                        else:
                            itl.append(now - last)
                        last = now
                        text.append(choices[0].get("text") or "")
                    elif usage := data.get("usage"):
                        output_tokens = usage.get("completion_tokens") or 0
                        prompt_tokens = usage.get("prompt_tokens") or 0
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
        return RequestSample(start=start, success=False, error=f"{type(exc).__name__}: {exc}")
    if ttft is None:
        return RequestSample(start=start, success=False, error="no content was streamed")
    return RequestSample(start=start, ttft=ttft, latency=last - start, itl=tuple(itl),
                         output_tokens=output_tokens or len(text), prompt_tokens=prompt_tokens,
                         text="".join(text))


async def _run(base_url: str, model: str, workload: Workload, *, concurrency: int | None,
               rate: float | None, seed: int, warmup: int,
               progress: Callable[[int, int], None] | None) -> LoadResult:
    url = base_url.rstrip("/") + "/v1/completions"
    # as vllm bench serve (limit=max_concurrency or 0): a connection per request in flight,
    # unlimited without a cap, so no request waits for a connection in the client after its
    # start time was taken
    connector = aiohttp.TCPConnector(limit=concurrency or 0, limit_per_host=concurrency or 0)
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout,
                                     trust_env=False) as client:
        for prompt in list(workload.prompts)[:warmup]:
            await _one(client, url, model, prompt, workload)
        gate = asyncio.Semaphore(concurrency) if concurrency else None
        total, done = len(workload.prompts), 0
        rng = random.Random(seed)

        async def guarded(prompt: str) -> RequestSample:
            nonlocal done
            if gate is None:
                sample = await _one(client, url, model, prompt, workload)
            else:
                async with gate:
                    sample = await _one(client, url, model, prompt, workload)
            done += 1
            if progress:
                progress(done, total)
            return sample

        started = time.perf_counter()
        tasks = []
        for i, prompt in enumerate(workload.prompts):
            if rate is not None and i > 0:
                await asyncio.sleep(rng.expovariate(rate))
            tasks.append(asyncio.create_task(guarded(prompt)))
        samples = await asyncio.gather(*tasks)
        ends = [s.start + s.latency for s in samples if s.success]
        duration = (max(ends) if ends else time.perf_counter()) - started
    return LoadResult(list(samples), duration)


def run_load(base_url: str, model: str, workload: Workload, *, concurrency: int | None = None,
             rate: float | None = None, seed: int = 0, warmup: int = 0,
             progress: Callable[[int, int], None] | None = None) -> LoadResult:
    """Send every prompt once. `concurrency`: fixed in-flight cap; `rate`: Poisson req/s
    (both may be combined; neither means all at once)."""
    return asyncio.run(_run(base_url, model, workload, concurrency=concurrency, rate=rate,
                            seed=seed, warmup=warmup, progress=progress))
