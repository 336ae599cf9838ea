"""The live alert run: light load that must leave the SLO alert quiet, then overload that
must take it pending -> firing, watched on the real Prometheus.

Load comes from a background thread holding N requests in flight until told to stop (a
steady queue, unlike fixed batches whose tails drain it)."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass

import aiohttp

from labgrade import Fail
from labgrade.runtime.prometheus import AlertTimeline, watch_alert
from labgrade.runtime.vllm import OpenAIServer


class SteadyLoad:
    """`in_flight` non-streaming completions kept in flight until `stop()`."""

    def __init__(self, base_url: str, model: str, in_flight: int, max_tokens: int) -> None:
        self.url = base_url.rstrip("/") + "/v1/completions"
        self.model, self.in_flight, self.max_tokens = model, in_flight, max_tokens
        self.sent = self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True,
                                        name="steady-load")

    async def _worker(self, session: aiohttp.ClientSession, index: int) -> None:
        n = 0
        while not self._stop.is_set():
            body = {"model": self.model, "prompt": f"Load {index} {n}: tell a story. " * 4,
                    "max_tokens": self.max_tokens, "temperature": 0.0, "ignore_eos": True}
            n += 1
            self.sent += 1
            try:
                async with session.post(self.url, json=body) as response:
                    await response.read()
                    self.errors += response.status != 200
            except (aiohttp.ClientError, asyncio.TimeoutError):
                self.errors += 1
                await asyncio.sleep(0.2)

    async def _main(self) -> None:
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector, trust_env=False,
                                         timeout=aiohttp.ClientTimeout(total=120)) as session:
            workers = [asyncio.create_task(self._worker(session, i))
                       for i in range(self.in_flight)]
            while not self._stop.is_set():
                await asyncio.sleep(0.1)
            for task in workers:  # cut what is in flight: vLLM aborts those requests
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)

    def __enter__(self) -> "SteadyLoad":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


@dataclass(frozen=True)
class AlertRun:
    alert: str
    healthy: AlertTimeline        # light load: never firing expected
    overload: AlertTimeline       # overload: pending, then firing
    healthy_requests: int
    overload_requests: int
    load_end: float               # unix time the overload stopped (dashboard queries)
    ttft_p95_overload: float | None  # the server's own p95 TTFT at the end, from Prometheus


def run(monitoring, server: OpenAIServer, settings: dict) -> AlertRun:
    prom = monitoring.prometheus
    alert = settings["live_alert"]
    model = settings["served_model_name"]
    loaded = {rule.get("name") for rule in prom.rules()}
    if alert not in loaded:
        raise Fail(f"Prometheus loaded your rules.yml but it has no alert {alert!r} "
                   f"(rules loaded: {sorted(map(str, loaded)) or 'none'})")
    with SteadyLoad(server.base_url, model, 1, settings["healthy_max_tokens"]) as light:
        healthy = watch_alert(prom, alert, until=lambda s: s == "firing",
                              timeout=settings["healthy_phase_s"])
    with SteadyLoad(server.base_url, model, settings["overload_concurrency"],
                    settings["overload_max_tokens"]) as heavy:
        overload = watch_alert(prom, alert, until=lambda s: s == "firing",
                               timeout=settings["firing_timeout_s"])
        p95 = prom.query("histogram_quantile(0.95, sum by (le) "
                         "(rate(vllm:time_to_first_token_seconds_bucket[30s])))")
    load_end = time.time()
    return AlertRun(alert, healthy, overload, light.sent, heavy.sent, load_end,
                    float(p95[0]["value"][1]) if p95 else None)
