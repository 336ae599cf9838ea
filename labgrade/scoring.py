"""The one result model every exporter reads, and the helpers graders use to score.

Plain Python (no pytest): `ItemResult` and `LabResult` are frozen; totals are derived.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum


class Status(str, Enum):
    PASSED = "passed"
    PARTIAL = "partial"
    FAILED = "failed"
    ERROR = "error"            # the grader or the environment broke; not the student's doing
    UNGRADABLE = "ungradable"  # a runtime the item needs is absent; scores 0, keeps max
    OUT_OF_SCOPE = "out_of_scope"  # the profile declares the item out of scope; leaves max
    NOT_RUN = "not_run"        # the run was interrupted before this item ran


VISIBILITIES = ("visible", "hidden", "after_due_date", "after_published")


class Fail(AssertionError):
    """Raise in a grader to fail the item with a student-facing message."""


class Ungradable(Exception):
    """Raise in a grader when a runtime the item needs is missing (e.g. no GPU)."""


class GraderError(Exception):
    """The grader itself broke (a bug or a broken environment), not the submission."""


class StudentFault(Exception):
    """Raise in grader-owned code that runs in a worker (probes, `graders.<id>` modules) when
    the student's input caused the failure, e.g. vLLM rejecting the student's engine
    arguments. The item then fails with this message instead of reporting a grader error.
    Chain the original (`raise StudentFault(msg) from exc`) to keep it for the log."""


@dataclass(frozen=True)
class ItemResult:
    nodeid: str
    name: str
    status: Status
    score: float
    max_score: float
    message: str = ""
    visibility: str = "visible"
    duration: float = 0.0
    filename: str = ""
    line_no: int = 0
    measured: dict = field(default_factory=dict)
    hidden_detail: str = ""    # staff-only (tracebacks of grader errors)

    @property
    def in_scope(self) -> bool:
        return self.status is not Status.OUT_OF_SCOPE


@dataclass(frozen=True)
class LabResult:
    lab_id: str
    profile: str
    mode: str
    submission: str
    items: tuple[ItemResult, ...]
    started_at: float
    finished_at: float
    interrupted: bool = False
    digests: dict = field(default_factory=dict)
    environment: dict = field(default_factory=dict)
    title: str = ""

    @property
    def score(self) -> float:
        return round(sum(i.score for i in self.items if i.in_scope), 4)

    @property
    def max_score(self) -> float:
        return round(sum(i.max_score for i in self.items if i.in_scope), 4)

    @property
    def execution_time(self) -> float:
        return max(0.0, self.finished_at - self.started_at)

    @property
    def has_errors(self) -> bool:
        return any(i.status in (Status.ERROR, Status.NOT_RUN) for i in self.items)


def curve(measured: float, *, zero_at: float, full_at: float) -> float:
    """Linear threshold curve: 0 at or beyond `zero_at`, 1 at or beyond `full_at`.

    Works in either direction: for a speed-up (higher is better) pass zero_at=1.0,
    full_at=1.5; for a latency (lower is better) pass zero_at=2.0, full_at=1.0.
    """
    if math.isnan(measured) or zero_at == full_at:
        return 0.0
    fraction = (measured - zero_at) / (full_at - zero_at)
    return min(1.0, max(0.0, fraction))


def status_for_fraction(fraction: float) -> Status:
    if fraction >= 1.0 - 1e-9:
        return Status.PASSED
    if fraction <= 1e-9:
        return Status.FAILED
    return Status.PARTIAL


def round_score(points: float, fraction: float) -> float:
    return round(points * min(1.0, max(0.0, fraction)), 2)
