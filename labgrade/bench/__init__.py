"""Measurement core: load generation, metric definitions, A/B comparison."""

from labgrade.bench.compare import Comparison, clear_of, compare
from labgrade.bench.loadgen import LoadResult, Workload, run_load
from labgrade.bench.metrics import RequestSample, RunMetrics, compute, percentile

__all__ = ["Comparison", "clear_of", "compare", "LoadResult", "Workload", "run_load", "RequestSample",
           "RunMetrics", "compute", "percentile"]
