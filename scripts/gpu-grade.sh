#!/usr/bin/env bash
# Grade labs with the gpu profile on a host with an NVIDIA GPU and a CUDA vLLM, from a plain
# checkout (no `make setup`: such hosts often have no network). Reports land in OUT_DIR.
#
#   scripts/gpu-grade.sh SITE_DIR OUT_DIR LAB [LAB ...]
#
# SITE_DIR holds vLLM and the few packages the host lacks (e.g. unpacked from
# ../shared/tools/gpu-bundle.sh, plus the wheels scripts/gpu-wheels.sh fetches); it and this
# checkout are put on the interpreter's path with a .pth file, because graders run student
# code in isolated interpreters (python -I) that ignore PYTHONPATH. MODES (default
# "solution starter") picks what is graded.
set -euo pipefail
SITE=$(realpath "$1"); OUT=$(realpath -m "$2"); shift 2
PY=${PYTHON:-python3}
cd "$(dirname "$0")/.."
purelib=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
printf '%s\n%s\n' "$SITE" "$(pwd)" > "$purelib/labgrade-gpu.pth"
export VLLM_USE_FLASHINFER_SAMPLER=0 LABGRADE_CACHE=${LABGRADE_CACHE:-/tmp/labgrade-cache}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv | tee "$OUT/gpu.txt"
"$PY" -m labgrade.runtime.tinymodels
for lab in "$@"; do
  for mode in ${MODES:-solution starter}; do
    start=$(date +%s.%N)
    "$PY" -m pytest -p labgrade.plugin "labs/$lab" --grade "--$mode" --profile gpu \
      --report-dir "$OUT/$mode" -p no:cacheprovider -q || true
    end=$(date +%s.%N)
    echo "$lab $mode wall_s=$(python3 -c "print(round($end - $start, 1))")" | tee -a "$OUT/walltime.txt"
    # every grade.json also records GPU memory before/after each engine process (gpu_memory)
    echo "after $lab $mode: $(nvidia-smi --query-gpu=memory.used --format=csv,noheader)" >> "$OUT/gpu.txt"
  done
done
