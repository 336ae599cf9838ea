"""What the grader adds to its copy of the student's model_repository/ before the server
starts: the lab's weights, the student's ONNX export, the grader's model onnx_check, and the
upstream address of llm_stream."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from triton_2_1.grader_models import WEIGHTS
from labgrade.kit.student import run_student_command
from labgrade.kit.triton import IGNORED
from labgrade.runtime.triton import default_triton_venv

HERE = Path(__file__).resolve().parent
ONNX_CHECK = HERE / "reference" / "onnx_check"


def add_weights(repository: Path) -> None:
    """The lab's mlp.pt in pytorch_model/1/, whatever the submission holds there."""
    target = repository / "pytorch_model" / "1"
    if target.is_dir():
        shutil.copy2(WEIGHTS, target / "mlp.pt")


def run_export(submission: Path, out: Path, timeout: float) -> str | None:
    """`python export.py WEIGHTS OUT` in the Triton environment, the submission's folder as
    working directory. Returns what went wrong (for the student) or None."""
    script = submission / "export.py"
    if not script.is_file():
        return "export.py is missing from your submission"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    weights = out.parent / WEIGHTS.name  # graders/ is out of the sandbox's sight
    shutil.copy2(WEIGHTS, weights)
    python = default_triton_venv() / "bin" / "python"
    env = {"PATH": f"{python.parent}:/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp"),
           "PYTHONNOUSERSITE": "1", "OMP_NUM_THREADS": "1"}
    try:
        proc = run_student_command([python, "-I", script, weights, out], cwd=submission,
                                   env=env, timeout=timeout, writable=[out.parent])
    except subprocess.TimeoutExpired:
        return f"`python export.py WEIGHTS OUT` took more than {timeout:.0f} s"
    tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-12:])
    if proc.returncode != 0:
        return f"`python export.py WEIGHTS OUT` exited with {proc.returncode}:\n{tail}"
    if not out.is_file():
        return ("`python export.py WEIGHTS OUT` succeeded but wrote nothing at OUT (the "
                f"second argument): {tail}")
    return None


def add_export(repository: Path, exported: Path) -> None:
    """The export as onnx_model/1/model.onnx and in the grader's onnx_check."""
    shutil.rmtree(repository / "onnx_check", ignore_errors=True)
    shutil.copytree(ONNX_CHECK, repository / "onnx_check", ignore=IGNORED)
    for model in ("onnx_model", "onnx_check"):
        if (repository / model / "1").is_dir() and exported.is_file():
            shutil.copy2(exported, repository / model / "1" / "model.onnx")


def point_llm_upstream(repository: Path, url: str, model: str) -> None:
    """Append the upstream parameters to the copy of llm_stream's config (a repeated field
    may be appended in protobuf text format)."""
    config = repository / "llm_stream" / "config.pbtxt"
    if config.is_file():
        with open(config, "a") as f:
            for key, value in (("upstream_url", url), ("upstream_model", model)):
                f.write(f'\nparameters {{ key: "{key}" value {{ string_value: "{value}" }} }}\n')
