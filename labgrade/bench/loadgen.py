"""Async load generator for OpenAI-compatible completion endpoints (httpx, streaming).

Two arrival modes: fixed concurrency (N requests in flight) and a Poisson process at a
given rate (exponential gaps from a seeded generator, optionally capped in concurrency).
A warm-up sends requests whose results are discarded. Results are per-request samples;
`labgrade.bench.metrics.compute` turns them into TTFT/ITL/TPOT/E2E and throughput.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import httpx

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


async def _one(client: httpx.AsyncClient, url: str, model: str, prompt: str,
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
        async with client.stream("POST", url, json=body) as response:
            if response.status_code != 200:
                detail = (await response.aread()).decode("utf-8", "replace")[:300]
                return RequestSample(start=start, success=False,
                                     error=f"HTTP {response.status_code}: {detail}")
            async for line in response.aiter_lines():
                if not line.startswith("data:"):
                    continue
                payload = line[5:].strip()
                if payload == "[DONE]":
                    break
                data = json.loads(payload)
                choices = data.get("choices") or []
                if choices and choices[0].get("text"):
                    now = time.perf_counter()
                    if ttft is None:
                        ttft = now - start
                    else:
                        itl.append(now - last)
                    last = now
                    text.append(choices[0]["text"])
                elif usage := data.get("usage"):
                    output_tokens = usage.get("completion_tokens") or 0
                    prompt_tokens = usage.get("prompt_tokens") or 0
    except httpx.HTTPError as exc:
        return RequestSample(start=start, success=False, error=f"{type(exc).__name__}: {exc}")
    end = time.perf_counter()
    if ttft is None:
        return RequestSample(start=start, success=False, error="no content was streamed")
    return RequestSample(start=start, ttft=ttft, latency=end - start, itl=tuple(itl),
                         output_tokens=output_tokens or len(text), prompt_tokens=prompt_tokens,
                         text="".join(text))


async def _run(base_url: str, model: str, workload: Workload, *, concurrency: int | None,
               rate: float | None, seed: int, warmup: int,
               progress: Callable[[int, int], None] | None) -> LoadResult:
    url = base_url.rstrip("/") + "/v1/completions"
    # as vllm bench serve (aiohttp limit=max_concurrency or 0): a connection per request in
    # flight, unlimited without a cap, so no request waits for a connection in the client
    # after its start time was taken
    limits = httpx.Limits(max_connections=concurrency or None,
                          max_keepalive_connections=concurrency or None)
    async with httpx.AsyncClient(timeout=httpx.Timeout(300.0), limits=limits) as client:
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
