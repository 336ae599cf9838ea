"""Grader-owned code that runs in the grader's worker (imported there as graders.lab_9_8)."""

from labgrade.scoring import StudentFault


def square(x):
    return x * x


def broken():
    return {}["missing"]  # a grader bug


def check_block_size(settings):
    size = settings.get("block_size")
    if size not in (16, 32, 64):
        raise StudentFault(f"block_size must be 16, 32 or 64, got {size!r}")
    return size
