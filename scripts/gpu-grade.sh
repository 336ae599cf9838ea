#!/usr/bin/env bash
# Grade labs with the gpu profile on a host with an NVIDIA GPU and a CUDA vLLM, from a plain
# checkout (no `make setup`: such hosts often have no network). Results land in OUT_DIR.
#
#   scripts/gpu-grade.sh SITE_DIR OUT_DIR LAB [LAB ...]
#
# SITE_DIR holds vLLM and the few packages the host lacks (e.g. unpacked from
# ../shared/tools/gpu-bundle.sh, plus the wheels scripts/gpu-wheels.sh fetches); it and this
# checkout are put on the interpreter's path with a .pth file, because graders run student
# code in isolated interpreters (python -I) that ignore PYTHONPATH.
#
# Environment:
#   MODES="solution starter"  what is graded, per lab
#   REPEAT=1                  gradings of each solution; a lab's first grading with this
#                             LABGRADE_CACHE is "cold" (no compile caches, no cached
#                             reference answers), later ones "warm"
#   CAP=1                     the last solution grading runs beside a process holding all
#                             but the lab's [resources] gpu_memory_gib of the card (a card
#                             of that size)
#   MODELS=hub LABGRADE_HUB_MODELS=model=ORG/NAME,...   grade with --models hub
#   LABGRADE_CACHE            tiny models, reference answers, vLLM/Inductor/Triton caches
#   GPU_WORK                  scratch folder for reports (default: a new temporary one)
#
# OUT_DIR gets walltime.txt (`<lab> <mode> cold|warm wall_s=<s>`), runs.txt (the same plus
# score, peak GPU memory above the run's baseline, cap), gpu.txt (nvidia-smi) and
# reports.tar.gz (every run's grade.json and logs).
set -euo pipefail
SITE=$(realpath "$1"); OUT=$(realpath -m "$2"); shift 2
PY=${PYTHON:-python3}
cd "$(dirname "$0")/.."
purelib=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
printf '%s\n%s\n' "$SITE" "$(pwd)" > "$purelib/labgrade-gpu.pth"
export VLLM_USE_FLASHINFER_SAMPLER=0 LABGRADE_CACHE=${LABGRADE_CACHE:-/tmp/labgrade-cache}
MODELS=${MODELS:-tiny}
mkdir -p "$OUT" "$LABGRADE_CACHE/graded"
WORK=${GPU_WORK:-$(mktemp -d)}  # GPU_WORK: one folder across calls, one reports.tar.gz
mkdir -p "$WORK"
holder=""; sampler=""
cleanup() { for p in $holder $sampler; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv | tee -a "$OUT/gpu.txt"
"$PY" -m labgrade.runtime.tinymodels > /dev/null
# a plain checkout has no pytest11 entry point: load the plugin by name (not twice)
plugin=$("$PY" -c "import importlib.metadata as m
print('' if any(e.value == 'labgrade.plugin' for e in m.entry_points(group='pytest11'))
      else '-p labgrade.plugin')")

used_mib() { nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -1; }

gpu_need_gib() {  # the lab's declared GPU memory need (lab.toml [resources] gpu_memory_gib)
  "$PY" -c "from pathlib import Path; from labgrade.labs import load_lab
print(load_lab(Path('.'), '$1').resources.gpu_memory_gib or '')"
}

hold_all_but() {  # start the holder; wait until it holds
  "$PY" -m labgrade.runtime.gpu hold --leave "$1GiB" > "$WORK/holder.log" 2>&1 &
  holder=$!
  for _ in $(seq 120); do
    grep -q holding "$WORK/holder.log" && return 0
    kill -0 "$holder" 2>/dev/null || break
    sleep 0.5
  done
  cat "$WORK/holder.log" >&2; return 1
}

grade() {  # LAB MODE CAPPED_GIB
  local lab=$1 mode=$2 cap=$3 stamp="$LABGRADE_CACHE/graded/$1-$MODELS" label=warm
  [ -e "$stamp" ] || label=cold
  [ -z "$cap" ] || hold_all_but "$cap"
  local name="$lab-$mode-$label${cap:+-capped}" base peak_file="$WORK/peak.txt"
  [ ! -e "$WORK/reports/$name" ] || name="$name-$(date +%s)"  # a repeated warm run keeps its own report
  base=$(used_mib)
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 250 > "$peak_file" &
  sampler=$!
  local start end
  start=$(date +%s.%N)
  # shellcheck disable=SC2086
  "$PY" -m pytest $plugin "labs/$lab" --grade "--$mode" --profile gpu \
    --models "$MODELS" --report-dir "$WORK/reports/$name" -p no:cacheprovider -q || true
  end=$(date +%s.%N)
  kill "$sampler"; wait "$sampler" 2>/dev/null || true; sampler=""
  if [ -n "$cap" ]; then kill "$holder"; wait "$holder" 2>/dev/null || true; holder=""; fi
  [ ! -e "$WORK/reports/$name/$lab/grade.json" ] || touch "$stamp"
  local wall peak score
  wall=$("$PY" -c "print(round($end - $start, 1))")
  peak=$("$PY" -c "import sys; v=[int(x) for x in open('$peak_file').read().split() if x.isdigit()]
print(round((max(v, default=$base) - $base) / 1024, 2))")
  score=$("$PY" -c "import json; g=json.load(open('$WORK/reports/$name/$lab/grade.json'))
print(f\"{g['score']:g}/{g['max_score']:g}\")" 2>/dev/null || echo "no-grade.json")
  echo "$lab $mode $label wall_s=$wall" | tee -a "$OUT/walltime.txt"
  echo "$lab $mode $label wall_s=$wall score=$score peak_gpu_gib=$peak models=$MODELS" \
       "${cap:+capped_free_gib=$cap}" | tee -a "$OUT/runs.txt"
  echo "after $name: $(used_mib) MiB used" >> "$OUT/gpu.txt"
  # after every run, so a cut-off call keeps what ran
  tar czf "$OUT/reports.tar.gz" -C "$WORK" reports || true
}

for lab in "$@"; do
  for mode in ${MODES:-solution starter}; do
    runs=1; [ "$mode" != solution ] || runs=${REPEAT:-1}
    for i in $(seq "$runs"); do
      cap=""
      if [ "${CAP:-0}" = 1 ] && [ "$mode" = solution ] && [ "$i" = "$runs" ]; then
        cap=$(gpu_need_gib "$lab")
      fi
      grade "$lab" "$mode" "$cap"
    done
  done
done
