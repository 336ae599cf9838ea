"""A/B comparison: baseline and candidate interleaved, repeated, compared by median ratio.

Interleaving (B, C, B, C, ...) spreads slow phases of a noisy machine over both sides;
the side that goes first alternates from round to round; the median of per-round ratios
ignores a disturbed round; the spread (max - min of the ratios) is reported so a grader
can say how stable the number was.

With `repeats > 1` each round measures each side several times, still alternating
(B, C, B, C, ...), and keeps each side's best value (the least time, or the highest rate):
on a shared machine interference only ever adds time, so the best of a few back-to-back
measurements is the one closest to the side's own cost, and a round is disturbed only when
every measurement of one side is.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Comparison:
    ratios: tuple[float, ...]
    baseline: tuple[float, ...]
    candidate: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.ratios)

    @property
    def spread(self) -> float:
        return max(self.ratios) - min(self.ratios)

    @property
    def quartiles(self) -> tuple[float, float]:
        """First and third quartile of the ratios (inclusive method; both equal the ratio
        when there is one round)."""
        if len(self.ratios) < 2:
            return self.ratios[0], self.ratios[0]
        q1, _, q3 = statistics.quantiles(self.ratios, n=4, method="inclusive")
        return q1, q3

    def describe(self, what: str = "speed-up") -> str:
        return (f"{what} {self.median:.2f}x (median of {len(self.ratios)} interleaved rounds, "
                f"spread {self.spread:.2f})")

    def summary(self, prefix: str = "ratio", digits: int = 3) -> dict:
        """Plain data for a grader's `score.measure(**...)`: median, spread, quartiles, rounds."""
        q1, q3 = self.quartiles
        return {prefix: round(self.median, digits),
                f"{prefix}_spread": round(self.spread, digits),
                f"{prefix}_quartiles": [round(q1, digits), round(q3, digits)],
                f"{prefix}_rounds": [round(r, digits) for r in self.ratios]}


def compare(baseline: Callable[[], float], candidate: Callable[[], float], *, rounds: int = 5,
            warmup: int = 1, higher_is_better: bool = False, repeats: int = 1,
            max_rounds: int | None = None,
            settled: Callable[[Comparison], bool] | None = None) -> Comparison:
    """Each callable runs once and returns its measurement (seconds, or a rate if
    higher_is_better). Ratio = baseline/candidate for times, candidate/baseline for rates:
    above 1 means the candidate is better either way. `repeats`: measurements per side per
    round, keeping each side's best (see the module docstring).

    `settled` and `max_rounds`: after `rounds` rounds, keep adding rounds, up to
    `max_rounds`, while `settled(result so far)` is false — e.g. while the quartiles of the
    ratios straddle a grading threshold, so a clear case costs `rounds` rounds and a close
    one gets more evidence."""
    if rounds < 1 or repeats < 1 or warmup < 0 or (max_rounds or rounds) < rounds:
        raise ValueError("compare() needs rounds >= 1, repeats >= 1, warmup >= 0 and "
                         "max_rounds >= rounds")
    best = max if higher_is_better else min
    for _ in range(warmup):
        baseline()
        candidate()
    base, cand, ratios = [], [], []
    limit = max_rounds if settled is not None and max_rounds else rounds
    for i in range(limit):
        if i >= rounds and settled(Comparison(tuple(ratios), tuple(base), tuple(cand))):
            break
        bs, cs = [], []
        for j in range(repeats):
            # alternate which side goes first so neither always runs on a warmer machine
            if (i + j) % 2 == 0:
                bs.append(baseline())
                cs.append(candidate())
            else:
                cs.append(candidate())
                bs.append(baseline())
        b, c = best(bs), best(cs)
        base.append(b)
        cand.append(c)
        ratios.append((c / max(b, 1e-12)) if higher_is_better else (b / max(c, 1e-12)))
    return Comparison(tuple(ratios), tuple(base), tuple(cand))


def clear_of(*thresholds: float) -> Callable[[Comparison], bool]:
    """A `settled` test for `compare`: the interquartile range of the ratios lies on one
    side of every threshold (the median is then unlikely to cross one with more rounds)."""
    def settled(result: Comparison) -> bool:
        q1, q3 = result.quartiles
        return all(q1 >= t or q3 < t for t in thresholds)
    return settled
