"""Moved to `labgrade.runtime.triton.crash`; this name stays importable until graders/triton_*
import the new one."""

from labgrade.runtime.triton.crash import (CRASH, CrashWatch, crash_excerpt, crash_text,
                                           log_mark, rerun_once_on_crash)

__all__ = ["CRASH", "CrashWatch", "crash_excerpt", "crash_text", "log_mark",
           "rerun_once_on_crash"]
