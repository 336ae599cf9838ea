"""Text comparison for feedback."""

from __future__ import annotations

WHOLE = 120  # texts up to this long are shown whole


def first_difference(got: str, want: str, *, window: int = 30) -> str:
    """Where two texts part, said to a student: short texts whole, long ones as a window
    around the first differing character."""
    at = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
    if len(got) <= WHOLE and len(want) <= WHOLE:
        return f"expected {want!r}, got {got!r} (first difference at character {at})"
    start = max(0, at - window)
    cut = "..." if start else ""
    return (f"from character {at} on, expected {cut}{want[start:at + window]!r}, got "
            f"{cut}{got[start:at + window]!r}")
