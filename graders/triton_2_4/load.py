"""Closed-loop load through one tritonclient gRPC client: `concurrency` requests in flight
(async_infer; its callback takes the keyword arguments result= and error=), latencies
timed here, in the grading process."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Burst:
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    outputs: list[np.ndarray] = field(default_factory=list)  # with closed_loop(output=...)
    span: float = 0.0

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.span if self.span > 0 else 0.0

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies, q)) if self.latencies else float("inf")


def closed_loop(client, model: str, make_inputs: Callable[[int], list], requests: int,
                concurrency: int, *, timeout: float = 60.0,
                headers: Mapping[str, str] | None = None, output: str | None = None) -> Burst:
    burst = Burst()
    slots = threading.Semaphore(concurrency)
    done = threading.Event()
    lock = threading.Lock()
    remaining = [requests]

    def finished(started: float, result=None, error=None) -> None:
        elapsed = time.monotonic() - started
        with lock:
            if error is not None:
                burst.errors.append(str(error))
            else:
                burst.latencies.append(elapsed)
                if output is not None:
                    burst.outputs.append(result.as_numpy(output))
            remaining[0] -= 1
            if remaining[0] == 0:
                done.set()
        slots.release()

    begin = time.monotonic()
    for i in range(requests):
        if not slots.acquire(timeout=timeout):
            raise TimeoutError(f"{model}: no answer within {timeout:.0f} s")
        started = time.monotonic()
        client.async_infer(model, make_inputs(i), headers=dict(headers or {}),
                           callback=lambda result=None, error=None, s=started:
                           finished(s, result=result, error=error))
    if not done.wait(timeout):
        raise TimeoutError(f"{model}: {remaining[0]} of {requests} requests unanswered "
                           f"after {timeout:.0f} s")
    burst.span = time.monotonic() - begin
    return burst


def fp32_input(name: str, x: np.ndarray):
    import tritonclient.grpc as grpcclient

    tensor = grpcclient.InferInput(name, list(x.shape), "FP32")
    tensor.set_data_from_numpy(x.astype(np.float32))
    return tensor
