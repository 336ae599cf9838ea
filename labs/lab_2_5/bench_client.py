"""A streaming benchmark client for an OpenAI-compatible completions endpoint
(README, "bench_client.py" has the definitions and the shapes to return)."""

from __future__ import annotations


def compute_metrics(requests: list[dict], duration_s: float, slo: dict | None = None,
                    percentiles=(50, 90, 99)) -> dict:
    """Run-level metrics from per-request records."""
    raise NotImplementedError("TODO: compute_metrics")


def run_benchmark(base_url: str, model: str, prompts: list[str], *, max_tokens: int,
                  concurrency: int | None = None, request_rate: float | None = None,
                  seed: int = 0, slo: dict | None = None, percentiles=(50, 90, 99)) -> dict:
    """Send every prompt once, streaming; return compute_metrics(...) plus "requests"."""
    raise NotImplementedError("TODO: run_benchmark")
