"""Latency and throughput metrics as pure functions of per-request samples.

Definitions follow `vllm bench serve` (vllm/benchmarks/serve.py, calculate_metrics):
- TTFT: first streamed event carrying choices minus request start;
- ITL: gaps between successive such events (pooled over requests);
- TPOT: (E2E - TTFT) / (output tokens - 1), for requests with more than one output token;
- E2E latency: request start to the last such event (the usage event and `[DONE]` after
  it are not counted);
- throughput: over the span from the first send to the last completion (the run's
  duration), request/s and output tokens/s;
- goodput: requests/s that met every SLO given (TTFT, TPOT, E2E; TPOT counts as 0 for
  single-token outputs, as vLLM does).
Percentiles use linear interpolation (numpy's default).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RequestSample:
    """What one request measured (all times in seconds, from time.perf_counter)."""

    start: float
    ttft: float = math.nan
    latency: float = math.nan
    itl: tuple[float, ...] = ()
    output_tokens: int = 0
    prompt_tokens: int = 0
    success: bool = True
    error: str = ""
    text: str = ""

    @property
    def tpot(self) -> float | None:
        if self.output_tokens > 1:
            return (self.latency - self.ttft) / (self.output_tokens - 1)
        return None


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    low, high = math.floor(pos), math.ceil(pos)
    if low == high:
        return ordered[low]
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def summarize(values: Sequence[float], percentiles: Iterable[float] = (50, 90, 99)) -> dict:
    values = list(values)
    out = {"mean": sum(values) / len(values) if values else math.nan,
           "median": percentile(values, 50)}
    for q in percentiles:
        out[f"p{q:g}"] = percentile(values, q)
    return out


@dataclass(frozen=True)
class RunMetrics:
    completed: int
    failed: int
    duration: float
    request_throughput: float
    output_throughput: float
    total_output_tokens: int
    ttft: dict = field(default_factory=dict)
    tpot: dict = field(default_factory=dict)
    itl: dict = field(default_factory=dict)
    e2el: dict = field(default_factory=dict)
    goodput: float | None = None


def compute(samples: Sequence[RequestSample], duration: float,
            slo: dict[str, float] | None = None,
            percentiles: Iterable[float] = (50, 90, 99)) -> RunMetrics:
    """Metrics of one run. `slo` holds seconds under keys ttft, tpot, e2el."""
    ok = [s for s in samples if s.success]
    percentiles = tuple(percentiles)
    total_out = sum(s.output_tokens for s in ok)
    goodput = None
    if slo:
        good = 0
        for s in ok:
            checks = {"ttft": s.ttft, "tpot": s.tpot or 0.0, "e2el": s.latency}
            if all(checks[k] <= v for k, v in slo.items()):
                good += 1
        goodput = good / duration if duration > 0 else math.nan
    return RunMetrics(
        completed=len(ok), failed=len(samples) - len(ok), duration=duration,
        request_throughput=len(ok) / duration if duration > 0 else math.nan,
        output_throughput=total_out / duration if duration > 0 else math.nan,
        total_output_tokens=total_out,
        ttft=summarize([s.ttft for s in ok], percentiles),
        tpot=summarize([s.tpot for s in ok if s.tpot is not None], percentiles),
        itl=summarize([g for s in ok for g in s.itl], percentiles),
        e2el=summarize([s.latency for s in ok], percentiles),
        goodput=goodput,
    )
