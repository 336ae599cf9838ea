"""Lab triton_2_3: compare the backends' latency and throughput with your own client
(starter)."""


def compare(url: str, models: list, concurrency: int, requests: int) -> dict:
    """{model: {"throughput_rps": float, "latency_avg_ms": float}} for each model: `requests`
    single-row requests over HTTP with `concurrency` in flight."""
    # TODO
    raise NotImplementedError("TODO: compare()")
