"""Two gradings at once on two cores, one alone when it measures time.

`make test` runs under pytest-xdist with two workers. Most gradings are dominated by
single-threaded work (interpreter and vLLM imports, engine builds, server start-ups), so two
side by side nearly halve the suite's wall time. A grading whose items are scored on timing
curves (a solution's full marks) must not share the machine: it takes the slots exclusively.

A readers-writer lock on two files, shared by every xdist worker through a folder the
controller names in the environment: a turnstile held while queueing keeps an exclusive
request from starving behind a stream of shared ones. The kernel drops a lock with its
file descriptor, so a crashed worker never leaves the slots held."""

from __future__ import annotations

import fcntl
import os
import tempfile
from pathlib import Path

SLOTS_DIR = "LABGRADE_TEST_SLOTS_DIR"


def slots_dir() -> Path:
    """The folder of this test session's lock files (made by the first process to ask; xdist
    workers inherit it from the controller's environment)."""
    if SLOTS_DIR not in os.environ:
        os.environ[SLOTS_DIR] = tempfile.mkdtemp(prefix="labgrade-test-slots-")
    return Path(os.environ[SLOTS_DIR])


class Slot:
    """A held share of the machine; release() once, idempotent."""

    def __init__(self, exclusive: bool) -> None:
        folder = slots_dir()
        self.exclusive = exclusive
        self._slots = open(folder / "slots.lock", "a+")  # held until release()
        with open(folder / "turnstile.lock", "a+") as turnstile:
            fcntl.flock(turnstile, fcntl.LOCK_EX)
            fcntl.flock(self._slots, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            # closing the turnstile releases it

    def release(self) -> None:
        if not self._slots.closed:
            self._slots.close()


def wants_machine_alone(args: tuple[str, ...] | list[str]) -> bool:
    """A whole solution grading (no -k selection) scores its timing curves."""
    return "--solution" in args and "-k" not in args
