"""tritonserver's metrics page, read with the one Prometheus reader (`labgrade.runtime.prom`).

Triton exposes per-model counters labelled `model` and `version`, e.g.
`nv_inference_count{model="add",version="1"}`. With `labgrade.runtime.prom`'s rules:

    m = server.metrics()
    m.value("nv_inference_count", model="add")               # all versions of `add`
    m.value("nv_inference_count", model="add", version="1")  # one version
    m.samples("nv_inference_count", model="add")             # one Sample per version
    m.value("nv_inference_count", model="new", default=0.0)  # not loaded yet: 0

Labels compare exactly, so `model="add"` never counts a model `add_one`. A name with no
matching sample raises `prom.MetricMissing` unless `default=` is given.
"""

from __future__ import annotations

from labgrade.runtime import prom


class Metrics(prom.Snapshot):
    """One read of the metrics endpoint (`text` is what it served)."""

    def __init__(self, text: str) -> None:
        page = prom.parse(text)
        super().__init__(page, page.types)
        self.text = text
