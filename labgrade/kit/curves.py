"""Scoring a measurement on a threshold curve, the one way every lab does it."""

from __future__ import annotations

from labgrade.bench.compare import Comparison
from labgrade.scoring import Fail, curve


def score_curve(score, key: str, measured: float | Comparison, *, zero_at: float,
                full_at: float, message: str, fail_hint: str = "", unit: str = "",
                digits: int = 3) -> float:
    """Score `measured` linearly between `zero_at` (0 points) and `full_at` (full points).

    Records the measurement under `key` with its curve (`curve:<key>`: the report plots it
    against the thresholds), sets the item's fraction with `message`, and fails the item
    when the fraction is 0 (`message: fail_hint`). A `Comparison` (labgrade.bench.compare)
    is scored by its median and recorded with its spread, quartiles and rounds.
    `message` should say what was measured and against what; the thresholds are appended
    (with `unit`, e.g. "x" for a ratio).
    """
    if isinstance(measured, Comparison):
        score.measure(**measured.summary(key, digits))
        value = measured.median
    else:
        value = float(measured)
        score.measure(**{key: round(value, digits)})
    score.measure(**{f"curve:{key}": {"zero_at": zero_at, "full_at": full_at}})
    fraction = curve(value, zero_at=zero_at, full_at=full_at)
    text = f"{message} (full marks at {full_at:g}{unit}, none at {zero_at:g}{unit})"
    if fraction == 0:
        raise Fail(f"{text}: {fail_hint}" if fail_hint else text)
    score.set(fraction, text)
    return fraction
