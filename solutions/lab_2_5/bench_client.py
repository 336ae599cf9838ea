"""A streaming benchmark client for an OpenAI-compatible completions endpoint.

Definitions (the same as `vllm bench serve`):
- TTFT: from sending the request to the first streamed chunk that carries choices;
- ITL: the gaps between successive such chunks;
- E2E latency: from sending to the last such chunk;
- TPOT: (E2E - TTFT) / (output tokens - 1), requests with more than one output token;
- throughput: over the run's duration, from the first send to the last completion;
- goodput: requests per second that met every SLO given.
"""

from __future__ import annotations

import asyncio
import json
import random
import time

import aiohttp
import numpy as np


async def _one(session: aiohttp.ClientSession, url: str, model: str, prompt: str,
               max_tokens: int, t0: float) -> dict:
    body = {"model": model, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0.0,
            "ignore_eos": True, "stream": True, "stream_options": {"include_usage": True}}
    start = time.perf_counter()
    record = {"start_s": start - t0, "ttft_s": None, "e2el_s": None, "itl_s": [],
              "output_tokens": 0, "success": False, "error": ""}
    last = None
    try:
        async with session.post(url, json=body) as response:
            if response.status != 200:
                record["error"] = f"HTTP {response.status}: {(await response.text())[:200]}"
                return record
            buffer = ""
            async for chunk in response.content.iter_any():
                buffer += chunk.decode("utf-8")
                while "\n\n" in buffer:
                    event, buffer = buffer.split("\n\n", 1)
                    data = event.strip().removeprefix("data:").strip()
                    if not data or data == "[DONE]":
                        continue
                    payload = json.loads(data)
                    if payload.get("choices"):
                        now = time.perf_counter()
                        if last is None:
                            record["ttft_s"] = now - start
                        else:
                            record["itl_s"].append(now - last)
                        last = now
                    elif payload.get("usage"):
                        record["output_tokens"] = payload["usage"]["completion_tokens"]
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
        record["error"] = f"{type(exc).__name__}: {exc}"
        return record
    if last is None:
        record["error"] = "nothing was streamed"
        return record
    record["e2el_s"] = last - start
    record["success"] = True
    return record


async def _run(base_url: str, model: str, prompts: list[str], max_tokens: int,
               concurrency: int | None, request_rate: float | None, seed: int) -> tuple:
    url = base_url.rstrip("/") + "/v1/completions"
    rng = random.Random(seed)
    gate = asyncio.Semaphore(concurrency) if concurrency else None
    connector = aiohttp.TCPConnector(limit=concurrency or 0)
    async with aiohttp.ClientSession(connector=connector, trust_env=False,
                                     timeout=aiohttp.ClientTimeout(total=600)) as session:
        t0 = time.perf_counter()

        async def send(prompt: str) -> dict:
            if gate is None:
                return await _one(session, url, model, prompt, max_tokens, t0)
            async with gate:
                return await _one(session, url, model, prompt, max_tokens, t0)

        tasks = []
        for i, prompt in enumerate(prompts):
            if request_rate and i > 0:
                await asyncio.sleep(rng.expovariate(request_rate))  # Poisson arrivals
            tasks.append(asyncio.create_task(send(prompt)))
        requests = await asyncio.gather(*tasks)
    ends = [r["start_s"] + r["e2el_s"] for r in requests if r["success"]]
    return list(requests), (max(ends) if ends else 0.0)


def _summary(values: list[float], percentiles) -> dict:
    if not values:
        return {"mean": None, **{f"p{p:g}": None for p in percentiles}}
    return {"mean": float(np.mean(values)),
            **{f"p{p:g}": float(np.percentile(values, p)) for p in percentiles}}


def compute_metrics(requests: list[dict], duration_s: float, slo: dict | None = None,
                    percentiles=(50, 90, 99)) -> dict:
    """Run-level metrics from per-request records (the module doc has the definitions)."""
    ok = [r for r in requests if r["success"]]
    tpots = [(r["e2el_s"] - r["ttft_s"]) / (r["output_tokens"] - 1)
             for r in ok if r["output_tokens"] > 1]
    total_tokens = sum(r["output_tokens"] for r in ok)
    goodput = None
    if slo:
        good = 0
        for r in ok:
            tpot = ((r["e2el_s"] - r["ttft_s"]) / (r["output_tokens"] - 1)
                    if r["output_tokens"] > 1 else 0.0)
            measured = {"ttft": r["ttft_s"], "tpot": tpot, "e2el": r["e2el_s"]}
            good += all(measured[k] <= limit for k, limit in slo.items())
        goodput = good / duration_s if duration_s > 0 else 0.0
    return {
        "completed": len(ok), "failed": len(requests) - len(ok), "duration_s": duration_s,
        "request_throughput": len(ok) / duration_s if duration_s > 0 else 0.0,
        "output_throughput": total_tokens / duration_s if duration_s > 0 else 0.0,
        "total_output_tokens": total_tokens,
        "ttft": _summary([r["ttft_s"] for r in ok], percentiles),
        "tpot": _summary(tpots, percentiles),
        "itl": _summary([g for r in ok for g in r["itl_s"]], percentiles),
        "e2el": _summary([r["e2el_s"] for r in ok], percentiles),
        "goodput": goodput,
    }


def run_benchmark(base_url: str, model: str, prompts: list[str], *, max_tokens: int,
                  concurrency: int | None = None, request_rate: float | None = None,
                  seed: int = 0, slo: dict | None = None, percentiles=(50, 90, 99)) -> dict:
    """Send every prompt once (streaming); fixed `concurrency`, or Poisson arrivals at
    `request_rate` req/s (both may be combined). Returns compute_metrics(...) plus the
    per-request records under "requests"."""
    requests, duration = asyncio.run(_run(base_url, model, list(prompts), max_tokens,
                                          concurrency, request_rate, seed))
    return {**compute_metrics(requests, duration, slo, percentiles), "requests": requests}
