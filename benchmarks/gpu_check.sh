#!/usr/bin/env bash
# The GPU check (benchmarks/gpu_check.py): every stage's training samples/s, DataLoader share and peak memory, every
# rendering system's inference frames/s, on a lent H100/H200, in about 5 minutes (--deadline 300 by default).
#
#   bash benchmarks/gpu_check.sh --prepare     # here, once: the wheels the GPU machine lacks and a store of the
#                                              # bundled GRID clips into benchmarks/gpu_carry/ (git-ignored)
#   bash benchmarks/gpu_check.sh --preflight   # here, seconds: the carry and the check's import path with only the
#                                              # GPU machine's packages (also in `make test`); --dry-run: the whole
#                                              # check on the CPU in that interpreter, about a minute and a half
#   bash benchmarks/gpu_check.sh [ARGS]        # there, with benchmarks/gpu_carry carried; ARGS go to gpu_check.py
#                                              # (--systems, --deadline, ...); rows, table and log land in $OUT
# The GPU machine has its own Python 3.12 with PyTorch but no registry: the carried wheels are installed into a
# scratch folder on PYTHONPATH (benchmarks/gpu_carry.py says which and why).
set -uo pipefail
cd "$(dirname "$0")/.."
CARRY=benchmarks/gpu_carry
PY=.venv/bin/python

case "${1:-}" in
  --prepare) exec $PY benchmarks/gpu_carry.py prepare "${@:2}" ;;
  --preflight) exec $PY benchmarks/gpu_carry.py preflight "${@:2}" ;;
esac

check() {
  [[ -d "$CARRY/store" && -d "$CARRY/wheels" ]] || {
    echo "no $CARRY/store or $CARRY/wheels: run 'bash benchmarks/gpu_check.sh --prepare' here and carry $CARRY"; return 2; }
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader || true
  local site rc
  site=$(mktemp -d)
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" \
    "$CARRY"/wheels/*.whl || { echo "installing the carried wheels failed"; return 3; }
  PYTHONPATH="$site:$PWD" PYTHONUNBUFFERED=1 python3 benchmarks/gpu_check.py --store "$CARRY/store" --out-dir "$OUT" "$@"
  rc=$?
  if [[ $rc -ne 0 && ! -s "$OUT/gpu_check.md" && -s "$OUT/gpu_check.jsonl" ]]; then
    echo "gpu_check.py exited $rc: the table of the rows it wrote"
    python3 benchmarks/gpu_check.py --table "$OUT/gpu_check.jsonl" | tee "$OUT/gpu_check.md"
  fi
  return $rc
}

OUT=${OUT:-benchmarks/results}
mkdir -p "$OUT"
check "$@" 2>&1 | tee "$OUT/gpu_check.log"
exit "${PIPESTATUS[0]}"
