"""Lab triton_2_3: compare the backends' latency and throughput with your own client
(reference solution)."""

import threading
import time

import numpy as np
import tritonclient.http as httpclient


def measure(url: str, model: str, concurrency: int, requests: int, batch: int = 1) -> dict:
    """`requests` requests of `batch` rows from `concurrency` threads (one client each)."""
    x = np.random.default_rng(0).standard_normal((batch, 16)).astype(np.float32)
    latencies: list[float] = []
    lock = threading.Lock()
    per_thread = [requests // concurrency + (i < requests % concurrency)
                  for i in range(concurrency)]

    def worker(n: int) -> None:
        client = httpclient.InferenceServerClient(url)
        inp = httpclient.InferInput("X", [batch, 16], "FP32")
        inp.set_data_from_numpy(x)
        mine = []
        for _ in range(n):
            start = time.perf_counter()
            client.infer(model, [inp])
            mine.append(time.perf_counter() - start)
        client.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker, args=(n,)) for n in per_thread]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    span = time.perf_counter() - start
    return {"throughput_rps": len(latencies) / span,
            "latency_avg_ms": 1000 * float(np.mean(latencies)),
            "latency_p50_ms": 1000 * float(np.percentile(latencies, 50))}


def compare(url: str, models: list, concurrency: int, requests: int) -> dict:
    """{model: {"throughput_rps", "latency_avg_ms", "latency_p50_ms"}} for each model."""
    for model in models:  # warm-up
        measure(url, model, 1, 5)
    return {model: measure(url, model, concurrency, requests) for model in models}
