#!/usr/bin/env bash
# Create the Python environment that labgrade's embedded Triton runtime uses.
#
# The wheel nvidia-pytriton==0.7.0 bundles a real tritonserver (2.51) with its Python
# backend. The backend's stub process imports numpy from the first `python3` on PATH, and
# it silently returns empty outputs with numpy 2; vLLM needs numpy 2. So Triton's Python
# side lives in its own venv (default: <repo>/.venv-triton, override with
# LABGRADE_TRITON_VENV), with numpy<2 and a CPU build of torch for the students' models.
#
# Idempotent: a stamp in the venv records a hash of this script (and the interpreter);
# an unchanged script with a complete venv returns at once. Anything else rebuilds the
# venv from scratch, and the stamp is written only after the checks passed.
#
# Environment:
#   LABGRADE_TRITON_VENV      where the venv goes (default <repo>/.venv-triton)
#   LABGRADE_TRITON_PYTHON    interpreter to build it from (default python3.11)
#   LABGRADE_TRITON_PIP_ARGS  extra pip arguments, e.g.
#                             "--extra-index-url https://download.pytorch.org/whl/cpu"
#   LABGRADE_TRITON_FORCE=1   rebuild even if the stamp matches
set -euo pipefail

PYTRITON_PIN="nvidia-pytriton==0.7.0"
NUMPY_PIN="numpy==1.26.4"        # last numpy 1.x; the Python backend stub needs numpy<2
TORCH_PIN="torch==2.13.0"        # must resolve to the +cpu build (checked below)
# triton_2_3: ONNX Runtime inside Python-backend models and the students' torch.onnx export
# (both keep numpy 1.26); perf_analyzer, whose binary ships in the tritonclient 2.51 wheel
# (bin/perf_analyzer) and links libcudart.so.12 even on a CPU machine (no GPU is used;
# Debian's libb64-0d is its other library, scripts/setup-system.sh).
ONNX_PINS=("onnxruntime==1.31.1" "onnx==1.23.2")
# tritonclient 2.51's grpc extra wants protobuf<5 and onnx 1.23 protobuf>=6.31: pytriton's
# own client comes from the first install, the 2.51 wheel (for its binary) with --no-deps.
CUDART_PIN="nvidia-cuda-runtime-cu12==12.9.79"
PERF_PIN="tritonclient==2.51.0"
CPU_INDEX_HINT="--extra-index-url https://download.pytorch.org/whl/cpu"

script_path=$(readlink -f "${BASH_SOURCE[0]}")
repo_root=$(cd "$(dirname "$script_path")/.." && pwd)
venv=${LABGRADE_TRITON_VENV:-$repo_root/.venv-triton}
python_cmd=${LABGRADE_TRITON_PYTHON:-python3.11}
stamp="$venv/.labgrade-setup-stamp"

say() { printf 'setup-triton-env: %s\n' "$*"; }
die() {
    printf '\nsetup-triton-env: FAILED: %s\n' "$1" >&2
    shift
    for line in "$@"; do printf '  %s\n' "$line" >&2; done
    exit 1
}

command -v "$python_cmd" >/dev/null 2>&1 \
    || die "interpreter '$python_cmd' not found" \
           "install Python 3.11 or set LABGRADE_TRITON_PYTHON to a python3.X (3.8-3.13)"
py_version=$("$python_cmd" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
case "$py_version" in
    3.8|3.9|3.10|3.11|3.12|3.13) ;;
    *) die "'$python_cmd' is Python $py_version; pytriton 0.7.0 ships stubs for 3.8-3.13 only" ;;
esac
py_real=$("$python_cmd" -c 'import sys; print(sys.executable)')

key=$( { cat "$script_path"; printf '%s\n%s\n' "$py_real" "$py_version"; } | sha256sum | cut -d' ' -f1)

# one builder at a time for a given venv (the lock lives outside the repository)
mkdir -p "$(dirname "$venv")"
if command -v flock >/dev/null 2>&1; then
    venv_abs=$(cd "$(dirname "$venv")" && pwd)/$(basename "$venv")
    lock="${TMPDIR:-/tmp}/labgrade-triton-env-$(printf '%s' "$venv_abs" | sha256sum | cut -c1-16).lock"
    exec 9>"$lock"
    flock 9
fi

if [[ "${LABGRADE_TRITON_FORCE:-0}" != 1 && -f "$stamp" && "$(cat "$stamp")" == "$key" \
      && -x "$venv/bin/python" ]] \
   && "$venv/bin/python" -c 'import importlib.util as u, sys
sys.exit(any(u.find_spec(m) is None for m in ("pytriton", "numpy", "torch", "onnxruntime", "onnx")))' 2>/dev/null \
   && [[ -x "$venv/bin/perf_analyzer" ]]; then
    say "up to date: $venv"
    exit 0
fi

if [[ -e "$venv" ]]; then
    [[ -f "$venv/pyvenv.cfg" ]] \
        || die "$venv exists and is not a virtual environment; refusing to delete it" \
               "move it away or set LABGRADE_TRITON_VENV to another path"
    say "rebuilding $venv"
    rm -rf "$venv"
fi

start=$(date +%s)
say "creating $venv with $py_real (Python $py_version)"
"$python_cmd" -m venv "$venv" || die "python -m venv failed" \
    "on Debian/Ubuntu: apt-get install python${py_version}-venv"

pip_args=(--disable-pip-version-check --no-input --progress-bar off)
if [[ -n "${LABGRADE_TRITON_PIP_ARGS:-}" ]]; then
    # shellcheck disable=SC2206  # intentional word splitting of user-supplied flags
    pip_args+=(${LABGRADE_TRITON_PIP_ARGS})
fi

say "installing $PYTRITON_PIN $NUMPY_PIN $TORCH_PIN ${ONNX_PINS[*]} $CUDART_PIN, then $PERF_PIN"
say "(torch must be the CPU build; if pip cannot find it here, rerun with"
say " LABGRADE_TRITON_PIP_ARGS=\"$CPU_INDEX_HINT\")"
if ! "$venv/bin/python" -m pip install "${pip_args[@]}" \
        "$PYTRITON_PIN" "$NUMPY_PIN" "$TORCH_PIN" "${ONNX_PINS[@]}" "$CUDART_PIN" \
   || ! "$venv/bin/python" -m pip install "${pip_args[@]}" --no-deps "$PERF_PIN"; then
    die "pip install failed (see pip's output above)" \
        "the CPU torch wheel comes from PyTorch's index on ordinary machines:" \
        "  LABGRADE_TRITON_PIP_ARGS=\"$CPU_INDEX_HINT\" $0"
fi

say "checking the environment"
if ! check_output=$("$venv/bin/python" - <<'PY' 2>&1
import importlib.metadata as md
import pathlib
import sys

problems = []

import numpy
if int(numpy.__version__.split(".")[0]) >= 2:
    problems.append(f"numpy {numpy.__version__} installed; the Python backend needs numpy<2")

import torch
if not torch.__version__.endswith("+cpu"):
    problems.append(
        f"torch {torch.__version__} is not the CPU build (expected a version ending in +cpu);"
        " pip picked a CUDA wheel"
    )
cuda_dists = sorted(
    d.metadata["Name"] for d in md.distributions()
    if (d.metadata["Name"] or "").lower().startswith(("nvidia-cu", "nvidia-nccl", "nvidia-nv"))
    and (d.metadata["Name"] or "").lower() != "nvidia-cuda-runtime-cu12"  # perf_analyzer's
)
if cuda_dists:
    problems.append("CUDA packages were installed: " + ", ".join(cuda_dists))

import pytriton
root = pathlib.Path(pytriton.__file__).parent / "tritonserver"
minor = "%d.%d" % sys.version_info[:2]
for rel in ("bin/tritonserver",
            "backends/python/libtriton_python.so",
            "backends/python/triton_python_backend_utils.py",
            f"python_backend_stubs/{minor}/triton_python_backend_stub"):
    if not (root / rel).is_file():
        problems.append(f"pytriton wheel lacks {rel} (looked in {root})")

import onnx
import onnxruntime
venv = pathlib.Path(sys.prefix)
if not (venv / "bin" / "perf_analyzer").is_file():
    problems.append("bin/perf_analyzer is missing (it ships in the tritonclient 2.51 wheel)")
if not list(venv.glob("lib/python*/site-packages/nvidia/cuda_runtime/lib/libcudart.so.12*")):
    problems.append("libcudart.so.12 (nvidia-cuda-runtime-cu12) is missing: perf_analyzer needs it")

if problems:
    print("\n".join(problems))
    sys.exit(1)
print(f"numpy {numpy.__version__}, torch {torch.__version__}, onnxruntime "
      f"{onnxruntime.__version__}, onnx {onnx.__version__}, tritonserver at {root / 'bin'}")
PY
); then
    die "the environment is not usable:" "$check_output" \
        "on ordinary machines pass the CPU index: LABGRADE_TRITON_PIP_ARGS=\"$CPU_INDEX_HINT\"" \
        "the stamp was not written; the next run rebuilds $venv"
fi
say "$check_output"

"$venv/bin/python" -m pip freeze --disable-pip-version-check > "$venv/labgrade-freeze.txt"
printf '%s\n' "$key" > "$stamp"
say "ready: $venv ($(du -sh "$venv" | cut -f1), $(( $(date +%s) - start )) s)"
