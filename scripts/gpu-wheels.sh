#!/usr/bin/env bash
# Download the wheels a GPU host needs beside the vLLM bundle (../shared/tools/gpu-bundle.sh)
# to run scripts/gpu-grade.sh: the test runner, psutil, prometheus_client, and what vLLM's
# FP8 path imports (compressed-tensors, loguru). For CPython 3.12 on x86_64 Linux, the
# interpreter of the CUDA images vLLM 0.26 targets.
#
#   scripts/gpu-wheels.sh OUT_DIR        then on the host:
#   pip install --no-deps --no-index --target SITE OUT_DIR/*.whl
set -euo pipefail
OUT=${1:?usage: scripts/gpu-wheels.sh OUT_DIR}
PY=${PYTHON:-$(dirname "$0")/../.venv/bin/python}
[ -x "$PY" ] || PY=python3
mkdir -p "$OUT"
"$PY" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
  --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 --platform any \
  -d "$OUT" pytest pluggy iniconfig psutil prometheus_client "compressed-tensors==0.17.0" loguru
ls "$OUT"
