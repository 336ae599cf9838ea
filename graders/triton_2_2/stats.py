"""The exact binomial test behind the A/B split item (pure Python, no scipy).

Model. The grader draws N distinct user ids and sends ONE request per user through the
student's `route`. For a correct splitter the version a user lands on is, over the grader's
random draw of ids, a Bernoulli(w) trial for the weight w of version A, independent between
users (a hash of a fresh random id is as good as a coin). So the count K of users that
version A served — measured from the server's per-version `nv_inference_count` — is
Binomial(N, w). One request per user matters: with r requests per sticky user the count
would be r times a binomial, with r times the spread.

Test. Two-sided, equal-tailed, exact: accept iff  lo <= K <= hi, where lo is the smallest k
with P(K <= k) > alpha/2 and hi the largest k with P(K >= k) > alpha/2. Then
P(K < lo) <= alpha/2 and P(K > hi) <= alpha/2, so a correct splitter fails with probability
at most alpha (exactly `false_fail_probability`).

Numbers for the published setting (N = 400, w = 0.8, alpha = 0.001):
acceptance region 293 <= K <= 345 (73.25 % .. 86.25 %); false-fail probability 0.089 %.
Chance that a wrong splitter PASSES (1 - power):
  50/50 (weights ignored)   2.1e-21
  70/30                     8.5 %      (power 91.5 %)
  90/10                     1.0 %      (power 99.0 %)
  20/80 (weights swapped)   2.6e-116
`acceptance_probability(n, p, lo, hi)` computes these; tests/test_triton_2_2.py checks them.
"""

from __future__ import annotations

import math


def _log_pmf(k: int, n: int, p: float) -> float:
    if p <= 0.0:
        return 0.0 if k == 0 else -math.inf
    if p >= 1.0:
        return 0.0 if k == n else -math.inf
    return (math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
            + k * math.log(p) + (n - k) * math.log1p(-p))


def pmf(n: int, p: float) -> list[float]:
    return [math.exp(_log_pmf(k, n, p)) for k in range(n + 1)]


def acceptance_region(n: int, p: float, alpha: float) -> tuple[int, int]:
    """(lo, hi): the equal-tailed exact acceptance region of Binomial(n, p) at `alpha`."""
    probs = pmf(n, p)
    lo, cumulative = 0, 0.0
    for k in range(n + 1):
        cumulative += probs[k]
        if cumulative > alpha / 2:
            lo = k
            break
    hi, cumulative = n, 0.0
    for k in range(n, -1, -1):
        cumulative += probs[k]
        if cumulative > alpha / 2:
            hi = k
            break
    return lo, hi


def acceptance_probability(n: int, p: float, lo: int, hi: int) -> float:
    """P(lo <= K <= hi) for K ~ Binomial(n, p): the chance of passing when the true share
    is p (1 - power against p; for the asked weight, 1 - false-fail probability)."""
    return math.fsum(pmf(n, p)[lo:hi + 1])


def false_fail_probability(n: int, p: float, alpha: float) -> float:
    lo, hi = acceptance_region(n, p, alpha)
    return 1.0 - acceptance_probability(n, p, lo, hi)


def two_sided_p_value(k: int, n: int, p: float) -> float:
    """min(1, 2 * min(P(K <= k), P(K >= k))) — reported to the student with the verdict."""
    probs = pmf(n, p)
    lower = math.fsum(probs[:k + 1])
    upper = math.fsum(probs[k:])
    return min(1.0, 2.0 * min(lower, upper))
