"""Prometheus exposition text: scrape an endpoint, parse it, read values and deltas.

Parsing uses prometheus_client's own text parser. Two naming details matter when reading
what a server exposes:

- prometheus_client appends `_total` to counter samples: vLLM's counter
  `vllm:prefix_cache_queries` is exposed (and parsed) as the family
  `vllm:prefix_cache_queries` with samples named `vllm:prefix_cache_queries_total`.
  `Snapshot.value()` accepts either spelling.
- counters and histograms also expose `*_created` samples (a timestamp); they are never
  summed into a value.

    snap = scrape("http://127.0.0.1:8000/metrics")
    snap.value("vllm:prefix_cache_hits")                     # summed over label sets
    snap.value("vllm:num_requests_running", model_name="m")  # only matching labels
    delta(before, after, "vllm:prefix_cache_queries")
    snap.histogram("vllm:time_to_first_token_seconds")       # Histogram(count, sum, buckets)

Offline engines have no endpoint: a probe in the engine's process renders its registry with
`prometheus_client.generate_latest(...)`, and the grading process parses that text here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

_SUFFIXES = ("_total", "_count", "_sum", "_bucket", "_created", "_gcount", "_gsum", "_info")


class MetricsError(Exception):
    """The endpoint could not be scraped, or its text is not Prometheus exposition format."""


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


def _base_name(name: str) -> str:
    for suffix in _SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _matches(labels: dict, wanted: dict) -> bool:
    return all(labels.get(k) == str(v) for k, v in wanted.items())


class Snapshot:
    """One parse of an exposition text."""

    def __init__(self, samples: list[Sample]) -> None:
        self.samples = samples
        self._families = {s.family for s in samples}

    def __contains__(self, name: str) -> bool:
        return self._family_of(name) in self._families

    @property
    def families(self) -> set[str]:
        return set(self._families)

    def _family_of(self, name: str) -> str:
        for candidate in (name, _base_name(name), name + "_total"):
            if candidate in self._families:
                return candidate
        return name

    def find(self, name: str, **labels: object) -> list[Sample]:
        """Samples of a family (or one exact sample name), filtered by labels."""
        family = self._family_of(name)
        exact = name != family
        out = []
        for s in self.samples:
            if s.family != family or not _matches(s.labels, labels):
                continue
            if exact and s.name != name:
                continue
            out.append(s)
        return out

    def value(self, name: str, default: float | None = None, **labels: object) -> float:
        """The value of a counter or gauge, summed over the label sets that match `labels`.
        `name` may be the family (`vllm:prompt_tokens`) or the `_total` sample name.
        Missing: `default` if given, else MetricsError."""
        family = self._family_of(name)
        wanted = {name} if name not in (family, _base_name(family)) else {
            family, family + "_total", family + "_info"}
        picked = [s for s in self.find(family, **labels) if s.name in wanted]
        if not picked:
            if default is not None:
                return default
            raise MetricsError(f"no metric {name!r}"
                               + (f" with labels {labels}" if labels else "") + " was exposed")
        return float(sum(s.value for s in picked))

    def labels(self, name: str) -> list[dict]:
        """The label sets of a family (e.g. `vllm:cache_config_info` carries settings)."""
        return [dict(s.labels) for s in self.find(name)
                if not s.name.endswith("_created")]

    def histogram(self, name: str, **labels: object) -> Histogram:
        """Count, sum and cumulative buckets of a histogram, summed over matching label sets."""
        family = self._family_of(name)
        count = total = 0.0
        buckets: dict[float, float] = {}
        seen = False
        for s in self.find(family, **labels):
            if s.name == family + "_count":
                count += s.value
                seen = True
            elif s.name == family + "_sum":
                total += s.value
            elif s.name == family + "_bucket":
                bound = float(s.labels.get("le", "inf"))
                buckets[bound] = buckets.get(bound, 0.0) + s.value
        if not seen:
            raise MetricsError(f"no histogram {name!r} was exposed")
        return Histogram(count=count, sum=total, buckets=dict(sorted(buckets.items())))


def parse(text: str) -> Snapshot:
    """Parse Prometheus text exposition format (what /metrics serves)."""
    from prometheus_client.parser import text_string_to_metric_families

    samples = []
    try:
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                samples.append(Sample(name=s.name, family=family.name, type=family.type,
                                      labels=dict(s.labels), value=float(s.value)))
    except (ValueError, TypeError, IndexError) as exc:
        raise MetricsError(f"not Prometheus exposition text: {exc}") from None
    return Snapshot(samples)


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
    """How much a counter grew between two snapshots (0 where it was absent before)."""
    return after.value(name, **labels) - before.value(name, default=0.0, **labels)
