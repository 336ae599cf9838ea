"""Prometheus exposition text: the one reader graders use (scrape, parse, values, deltas).

Parsing uses prometheus_client's own text parser. Everything that reads a /metrics page
(vLLM's, tritonserver's, a student's app) goes through `Snapshot`; `labgrade.runtime.triton`
`Metrics` and `labgrade.probes.openai_http` `Scrape` are thin users of it.

Names. Ask for a sample by the name it has on the wire (`x_total`, `x_bucket`, `x_count`,
a gauge's `x`), or for a counter by its family name `x`: prometheus_client's parser names a
counter family `x` and its samples `x_total` whether the text said `x` (tritonserver,
`nv_inference_count`) or `x_total` (vLLM, `vllm:prompt_tokens_total`), so both spellings
find the same samples. `*_created` samples (a timestamp) are only read when asked for by
that name, never summed into a counter.

Labels. `value(name, **labels)` sums every sample of that name whose labels include the
given ones, compared exactly as strings: `value("nv_inference_count", model="add")` adds
all versions of model `add` and nothing of `add_sub`; add `version="1"` for one version.

A missing metric (no sample of that name with those labels) raises `MetricMissing`, unless
the caller says what absence means with `default=`: a labelled counter has no series until
its first increment, so "before" scrapes usually read `default=0.0`. `delta(before, after)`
does exactly that for the earlier snapshot.

    snap = scrape("http://127.0.0.1:8000/metrics")
    snap.value("vllm:prefix_cache_hits")                     # summed over label sets
    snap.value("vllm:num_requests_running", model_name="m")  # only matching labels
    snap.value("vllm:nope", default=0.0)                     # absence means 0 here
    delta(before, after, "vllm:prefix_cache_queries")
    snap.histogram("vllm:time_to_first_token_seconds")       # Histogram(count, sum, buckets)

Offline engines have no endpoint: a probe in the engine's process renders its registry with
`prometheus_client.generate_latest(...)`, and the grading process parses that text here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

_REQUIRED: Any = object()  # value() was given no default


class MetricsError(Exception):
    """The endpoint could not be scraped, or its text is not Prometheus exposition format."""


class MetricMissing(MetricsError):
    """No sample of the asked-for name (with the asked-for labels) was exposed."""


@dataclass(frozen=True)
class Sample:
    name: str          # the sample's own name (e.g. vllm:prefix_cache_hits_total)
    family: str        # the metric family (e.g. vllm:prefix_cache_hits)
    type: str          # counter | gauge | histogram | summary | info | unknown ...
    labels: dict
    value: float


@dataclass(frozen=True)
class Histogram:
    count: float
    sum: float
    buckets: dict = field(default_factory=dict)  # upper bound (inf for +Inf) -> cumulative count

    @property
    def mean(self) -> float:
        return self.sum / self.count if self.count else math.nan


def _matches(labels: dict, wanted: dict) -> bool:
    return all(labels.get(k) == str(v) for k, v in wanted.items())


class Snapshot:
    """One parse of an exposition text."""

    def __init__(self, samples: Iterable[Sample], types: dict[str, str] | None = None) -> None:
        self._samples = list(samples)
        self._by_name: dict[str, list[Sample]] = {}
        self.types: dict[str, str] = dict(types or {})  # family name -> type
        for s in self._samples:
            self._by_name.setdefault(s.name, []).append(s)
            self.types.setdefault(s.family, s.type)

    def __contains__(self, name: str) -> bool:
        """Whether `name` is a family or a sample name of this page."""
        return name in self.types or name in self._by_name

    def __iter__(self) -> Iterator[Sample]:
        """Every sample, in the page's order."""
        return iter(self._samples)

    @property
    def families(self) -> set[str]:
        return set(self.types)

    def names(self) -> list[str]:
        """Every sample name, sorted."""
        return sorted(self._by_name)

    def _named(self, name: str) -> list[Sample]:
        if name in self._by_name:
            return self._by_name[name]
        if self.types.get(name, "counter") == "counter":  # a counter's family name
            return self._by_name.get(name + "_total", [])
        return []

    def samples(self, name: str, **labels: object) -> list[Sample]:
        """The samples `name` refers to (see the module doc) whose labels include `labels`."""
        return [s for s in self._named(name) if _matches(s.labels, labels)]

    def value(self, name: str, default: float = _REQUIRED, **labels: object) -> float:
        """The sum of the samples `name` refers to whose labels include `labels`.
        None: `default` if given, else MetricMissing (naming the label sets present)."""
        picked = self.samples(name, **labels)
        if picked:
            return float(sum(s.value for s in picked))
        if default is not _REQUIRED:
            return default
        raise MetricMissing(self._missing_message(name, labels))

    def _missing_message(self, name: str, labels: dict) -> str:
        present = self._named(name)
        if present:
            sets = sorted({", ".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
                           for s in present})
            return (f"no sample of {name!r} with labels {labels} was exposed; present: "
                    + "; ".join("{" + s + "}" for s in sets[:10]))
        if self.types.get(name) in ("histogram", "summary", "gaugehistogram"):
            return (f"{name!r} is a {self.types[name]}: ask for {name}_count, {name}_sum "
                    "or histogram()")
        return f"no metric {name!r} was exposed"

    def labels(self, name: str) -> list[dict]:
        """The label sets of a name (e.g. `vllm:cache_config_info` carries settings)."""
        return [dict(s.labels) for s in self._named(name)]

    def histogram(self, name: str, **labels: object) -> Histogram:
        """Count, sum and cumulative buckets of a histogram family, summed over matching
        label sets (the `le` label is the bucket's bound)."""
        counts = self.samples(name + "_count", **labels)
        if not counts:
            raise MetricMissing(f"no histogram {name!r}"
                                + (f" with labels {labels}" if labels else "") + " was exposed")
        buckets: dict[float, float] = {}
        for s in self.samples(name + "_bucket", **labels):
            bound = float(s.labels.get("le", "inf"))
            buckets[bound] = buckets.get(bound, 0.0) + s.value
        return Histogram(count=float(sum(s.value for s in counts)),
                         sum=float(sum(s.value for s in self.samples(name + "_sum", **labels))),
                         buckets=dict(sorted(buckets.items())))


def parse(text: str) -> Snapshot:
    """Parse Prometheus text exposition format (what /metrics serves); MetricsError if the
    text is not that format."""
    from prometheus_client.parser import text_string_to_metric_families

    samples, types = [], {}
    try:
        for family in text_string_to_metric_families(text):
            types[family.name] = family.type
            for s in family.samples:
                samples.append(Sample(name=s.name, family=family.name, type=family.type,
                                      labels=dict(s.labels), value=float(s.value)))
    except Exception as exc:  # noqa: BLE001 - any parser failure: the text may come from a student
        raise MetricsError(f"not Prometheus exposition text: {exc}") from None
    return Snapshot(samples, types)


def scrape(url: str, *, timeout: float = 10.0) -> Snapshot:
    """GET a /metrics endpoint and parse it."""
    import httpx

    try:
        response = httpx.get(url, timeout=timeout)
    except httpx.HTTPError as exc:
        raise MetricsError(f"GET {url} failed: {type(exc).__name__}: {exc}") from None
    if response.status_code != 200:
        raise MetricsError(f"GET {url} answered {response.status_code}")
    return parse(response.text)


def delta(before: Snapshot, after: Snapshot, name: str, **labels: object) -> float:
    """How much a counter grew between two snapshots: 0 where it was absent before;
    MetricMissing if it is absent after."""
    return after.value(name, **labels) - before.value(name, default=0.0, **labels)
