"""A grader item's markers, read and checked once at collection into one `ItemSpec`.

    @pytest.mark.points(10)                 # required: what the item is worth (> 0)
    @pytest.mark.visibility("hidden")       # optional: Gradescope's levels; default visible
    @pytest.mark.budget(120)                # optional: seconds; default the lab's item_timeout
    @pytest.mark.profiles("gpu")            # optional: graded only under these profiles
    def test_something(submission): ...

The plugin stores the spec in `item.stash` (as pytest's skipping.py does with its marks); a
bad marker is a collection error naming the test and the fix. `timeout` (the old name of
`budget`, and pytest-timeout's marker) is one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest

from labgrade.profiles import PROFILES
from labgrade.scoring import VISIBILITIES

# registered with pytest (`pytest --markers` lists them)
HELP = {
    "points": "points(n): what a grader item is worth, a positive number, e.g. "
              "@pytest.mark.points(10)",
    "visibility": "visibility(level): who sees the item's feedback: "
                  f"{' | '.join(VISIBILITIES)} (Gradescope's levels), e.g. "
                  "@pytest.mark.visibility('hidden')",
    "budget": "budget(seconds): the item's time budget (default: the lab's item_timeout), "
              "e.g. @pytest.mark.budget(120)",
    "profiles": f"profiles(*names): the item is in scope only under these profiles "
                f"({', '.join(PROFILES)}), e.g. @pytest.mark.profiles('gpu')",
}


class MarkerError(ValueError):
    """An item's markers are missing or wrong; the message names the test and the fix."""


@dataclass(frozen=True)
class ItemSpec:
    points: float
    visibility: str = "visible"
    budget: float | None = None               # seconds; None: the lab's item_timeout
    profiles: tuple[str, ...] | None = None   # None: in scope under every profile

    def in_scope_for(self, profile: str) -> bool:
        return self.profiles is None or profile in self.profiles


def _number(value: object) -> float | None:
    """A finite real number (bools are not numbers here), or None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _single_arg(marker: pytest.Mark, problems: list[str], example: str) -> object | None:
    if len(marker.args) != 1 or marker.kwargs:
        problems.append(f"@pytest.mark.{marker.name} takes exactly one value: write {example}")
        return None
    return marker.args[0]


def _points(item: pytest.Item, problems: list[str]) -> float:
    marker = item.get_closest_marker("points")
    if marker is None:
        problems.append("@pytest.mark.points is missing: every grader item says what it is "
                        "worth, e.g. @pytest.mark.points(10)")
        return 0.0
    value = _single_arg(marker, problems, "@pytest.mark.points(10)")
    points = _number(value)
    if value is not None and (points is None or points <= 0):
        problems.append(f"@pytest.mark.points({value!r}) must be a positive number, e.g. "
                        "@pytest.mark.points(10)")
    return points or 0.0


def _visibility(item: pytest.Item, problems: list[str]) -> str:
    marker = item.get_closest_marker("visibility")
    if marker is None:
        return "visible"
    value = _single_arg(marker, problems, "@pytest.mark.visibility('hidden')")
    if value is not None and value not in VISIBILITIES:
        problems.append(f"@pytest.mark.visibility({value!r}) is not a visibility level: use "
                        f"one of {', '.join(VISIBILITIES)}")
        return "visible"
    return value or "visible"


def _budget(item: pytest.Item, problems: list[str]) -> float | None:
    if item.get_closest_marker("timeout") is not None:
        problems.append("@pytest.mark.timeout is pytest-timeout's marker, not labgrade's: "
                        "write @pytest.mark.budget(seconds)")
    marker = item.get_closest_marker("budget")
    if marker is None:
        return None
    value = _single_arg(marker, problems, "@pytest.mark.budget(120)")
    seconds = _number(value)
    if value is not None and (seconds is None or seconds <= 0):
        problems.append(f"@pytest.mark.{marker.name}({value!r}) must be a positive number of "
                        "seconds, e.g. @pytest.mark.budget(120)")
        return None
    return seconds


def _profiles(item: pytest.Item, problems: list[str]) -> tuple[str, ...] | None:
    marker = item.get_closest_marker("profiles")
    if marker is None:
        return None
    unknown = [name for name in marker.args if name not in PROFILES]
    if not marker.args or unknown or marker.kwargs:
        problems.append(f"@pytest.mark.profiles{marker.args!r} must name profiles among "
                        f"{', '.join(PROFILES)}, e.g. @pytest.mark.profiles('gpu')")
        return None
    return tuple(marker.args)


def read_spec(item: pytest.Item) -> ItemSpec:
    """The item's checked markers; MarkerError listing every problem otherwise."""
    problems: list[str] = []
    spec = ItemSpec(points=_points(item, problems), visibility=_visibility(item, problems),
                    budget=_budget(item, problems), profiles=_profiles(item, problems))
    if problems:
        raise MarkerError(f"{item.nodeid}: " + "; ".join(problems))
    return spec
