"""The Gradescope autograder settings a lab needs, from its lab.toml `[resources]`.

Gradescope's defaults — 0.5 CPU, 768 MB, 10 minutes per submission — are below what the
vLLM labs need (lab_2_1's student worker alone peaks at about 2 GB), and Gradescope kills
a run that outgrows them: the student then sees "timed out" or nothing at all. So
`labgrade gradescope` prints the settings to choose, writes them into the zip's README,
and builds run_autograder around the chosen timeout: grading stops a minute before
Gradescope would kill the container (leaving time to write results.json), and items not
started a minute before that are reported as not run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from labgrade import labs


@dataclass(frozen=True)
class ContainerSize:
    cpus: float
    memory_gib: float
    label: str


# the sizes Gradescope's autograder settings offered when this was written (the first is
# the default); a lab needing more than the last one needs a word with Gradescope support
SIZES = (ContainerSize(0.5, 0.75, "0.5 CPU, 768 MB RAM"),
         ContainerSize(1.0, 1.5, "1.0 CPU, 1.5 GB RAM"),
         ContainerSize(2.0, 3.0, "2.0 CPU, 3.0 GB RAM"),
         ContainerSize(4.0, 6.0, "4.0 CPU, 6.0 GB RAM"))
DEFAULT_TIMEOUT_MINUTES = 10
STOP_BEFORE_TIMEOUT_S = 60   # grading is stopped this long before Gradescope's timeout
SHUTDOWN_S = 60              # ... and no item starts in the minute before that


@dataclass(frozen=True)
class GradescopeSettings:
    lab_id: str
    needs: labs.Resources
    size: ContainerSize | None       # None: more than Gradescope's largest standard size
    timeout_minutes: int

    @property
    def limit_seconds(self) -> int:
        """run_autograder's hard stop (LABGRADE_TIME_LIMIT's default)."""
        return max(60, self.timeout_minutes * 60 - STOP_BEFORE_TIMEOUT_S)

    @property
    def budget_seconds(self) -> int:
        """The run budget: no item starts after this (LABGRADE_RUN_BUDGET's default)."""
        limit = self.limit_seconds
        return limit - SHUTDOWN_S if limit > 5 * SHUTDOWN_S else limit * 4 // 5

    def lines(self) -> list[str]:
        need = self.needs
        memory = (f"{need.memory_gib:g} GiB peak (lab.toml [resources] memory_gib)"
                  if need.memory_gib else "not declared (lab.toml [resources] memory_gib)")
        cpus = f"{need.cpus:g}" if need.cpus else "not declared ([resources] cpus)"
        minutes = (f"about {need.minutes:g} min per grading" if need.minutes
                   else "not declared ([resources] minutes)")
        size = (self.size.label if self.size else
                f"more than {SIZES[-1].label}: ask Gradescope support for a larger container")
        default = SIZES[0]
        below = []
        if need.memory_gib and need.memory_gib > default.memory_gib:
            below.append(f"memory ({default.label.split(', ')[1]})")
        if need.cpus and need.cpus > default.cpus:
            below.append(f"CPU ({default.cpus:g})")
        if need.minutes and self.timeout_minutes > DEFAULT_TIMEOUT_MINUTES:
            below.append(f"time ({DEFAULT_TIMEOUT_MINUTES} min)")
        out = [
            f"Gradescope settings for {self.lab_id} (Configure Autograder > Autograder settings):",
            f"  container (CPU / memory): {size}",
            f"      the lab needs: memory {memory}; CPU cores {cpus}",
            f"  autograder timeout: {self.timeout_minutes} minutes ({minutes})",
            f"      run_autograder stops grading at {self.limit_seconds} s and starts no item "
            f"after {self.budget_seconds} s, so results.json is written before the timeout",
        ]
        if below:
            out.append(f"  Gradescope's defaults are too small for this lab: {', '.join(below)}. "
                       "A run killed for memory or time gives the student no results.")
        return out


def container_for(needs: labs.Resources) -> ContainerSize | None:
    memory = needs.memory_gib or 0.0
    cpus = needs.cpus or 0.0
    for size in SIZES:
        if size.memory_gib >= memory and size.cpus >= cpus:
            return size
    return None


def default_timeout_minutes(needs: labs.Resources) -> int:
    """Half as long again as the lab's declared grading time plus the stop margins,
    never below Gradescope's default."""
    if not needs.minutes:
        return DEFAULT_TIMEOUT_MINUTES
    margin = (STOP_BEFORE_TIMEOUT_S + SHUTDOWN_S) / 60
    return max(DEFAULT_TIMEOUT_MINUTES, math.ceil(needs.minutes * 1.5 + margin))


def settings_for(lab: labs.Lab, timeout_minutes: int | None = None) -> GradescopeSettings:
    needs = lab.resources
    return GradescopeSettings(lab.id, needs, container_for(needs),
                              timeout_minutes or default_timeout_minutes(needs))
