"""A miniature lab for `labgrade audit` and `labgrade calibrate` (the subject is labgrade)."""

import pytest

from labgrade import Fail
from labgrade.kit import call_student, score_curve

KV_CASES = [(2, 1, 64, 2), (32, 8, 128, 2), (3, 3, 32, 4)]


@pytest.mark.points(10)
def test_kv(submission):
    for case in KV_CASES:
        layers, heads, dim, width = case
        want = 2 * layers * heads * dim * width
        got = call_student(submission, "mod", "kv_bytes", *case, returns=int)
        if got != want:
            raise Fail(f"kv_bytes{case} returned {got}, expected {want}")


@pytest.mark.points(10)
def test_oldest(submission):
    versions = [7, 2, 9]
    got = call_student(submission, "mod", "oldest", versions, returns=int)
    if got != 2:
        raise Fail(f"oldest({versions}) returned {got}, expected 2")


@pytest.mark.points(10)
def test_ratio(submission, settings, score):
    value = call_student(submission, "mod", "speedup", returns=(int, float))
    score_curve(score, "speedup", value, zero_at=settings["ratio_zero_at"],
                full_at=settings["ratio_full_at"], message=f"speed-up {value:g}x", unit="x")
