"""A model's counters from the statistics extension and the metrics port."""

from __future__ import annotations


def model_stats(server, model: str) -> dict:
    stats = server.statistics(model)["model_stats"]
    inference = [s.get("inference_stats", {}) for s in stats]

    def total(key: str) -> int:
        return sum(int(i.get(key, {}).get("count", 0)) for i in inference)

    return {"success": total("success"), "fail": total("fail"), "cache_hit": total("cache_hit"),
            "cache_miss": total("cache_miss"),
            "inferences": sum(int(s.get("inference_count", 0)) for s in stats),
            "executions": sum(int(s.get("execution_count", 0)) for s in stats)}


def delta(after: dict, before: dict) -> dict:
    return {k: after[k] - before.get(k, 0) for k in after}


def batch_counters(server, model: str) -> dict:
    metrics = server.metrics()
    return {"count": metrics.value("nv_inference_count", model=model, default=0.0),
            "exec_count": metrics.value("nv_inference_exec_count", model=model, default=0.0)}


def cache_hits_metric(server, model: str) -> float:
    return server.metrics().value("nv_cache_num_hits_per_model", model=model, default=0.0)
