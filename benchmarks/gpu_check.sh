#!/usr/bin/env bash
# The GPU check (issue 11): training samples/s (bf16), peak memory and DataLoader share of every stage, inference
# frames/s of every rendering system at batch 1 and 64 (benchmarks/gpu_check.py). Under 8 minutes on one H100/H200.
#
#   bash benchmarks/gpu_check.sh --prepare   # here, once: the wheels the GPU machine lacks and a small real store
#                                            # (5 bundled GRID clips) into benchmarks/gpu_carry/ (git-ignored)
#   bash benchmarks/gpu_check.sh             # there, with benchmarks/gpu_carry carried: prints the table and
#                                            # writes $OUT/gpu_check.json
# The GPU machine has its own Python 3.12 with PyTorch and Lightning but no registry: zarr (and its codecs),
# lightning-fabric and python_speech_features travel as wheels, installed into a scratch folder on PYTHONPATH.
set -euo pipefail
cd "$(dirname "$0")/.."
CARRY=benchmarks/gpu_carry

if [[ "${1:-}" == "--prepare" ]]; then
  rm -rf "$CARRY" && mkdir -p "$CARRY/wheels" "$CARRY/raw/s1" "$CARRY/raw/s2" "$CARRY/raw/alignments/s1" "$CARRY/raw/alignments/s2"
  .venv/bin/pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
    -d "$CARRY/wheels" zarr==3.1.6 numcodecs donfig google-crc32c lightning-fabric==2.6.6
  .venv/bin/pip download -q --no-deps --no-binary=:all: -d "$CARRY/wheels" python_speech_features
  for clip in bbaf2n bbaf3s bbaszn bbbm2p; do
    cp samples/grid/s1/$clip.mpg "$CARRY/raw/s1/"; cp samples/grid/alignments/s1/$clip.align "$CARRY/raw/alignments/s1/"
  done
  cp samples/grid/s2/swwp2s.mpg "$CARRY/raw/s2/"; cp samples/grid/alignments/s2/swwp2s.align "$CARRY/raw/alignments/s2/"
  store=$(.venv/bin/talkface build --raw-root "$CARRY/raw" --data-root "$CARRY/data" --shard-size 4 | tail -1)
  mv "$store" "$CARRY/store" && rm -rf "$CARRY/data" "$CARRY/raw"
  du -sh "$CARRY"
  exit 0
fi

[[ -d "$CARRY/store" ]] || { echo "no $CARRY/store: run 'bash benchmarks/gpu_check.sh --prepare' here first" >&2; exit 2; }
DEPS=$(mktemp -d)
python3 -m pip install -q --no-index --no-deps --no-build-isolation --target "$DEPS" "$CARRY"/wheels/*
export PYTHONPATH="$DEPS:$PWD" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python3 benchmarks/gpu_check.py --store "$CARRY/store" --out "${OUT:-/tmp}/gpu_check.json" "$@"
