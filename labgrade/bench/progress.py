"""A live progress line on a terminal; silent under CI or when output is not a TTY."""

from __future__ import annotations

import os
import sys
import time


class Progress:
    def __init__(self, label: str, stream=None) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() and not os.environ.get("CI")
        self.started = time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        elapsed = time.monotonic() - self.started
        self.stream.write(f"\r{self.label}: {done}/{total} ({elapsed:.0f} s)")
        if done == total:
            self.stream.write("\n")
        self.stream.flush()
