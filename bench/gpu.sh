#!/usr/bin/env bash
# Every GPU figure of issue 16 in one folder, from a checkout of this repository on a CUDA machine:
#
#   bench/gpu.sh [OUT] [more `speechserve bench gpu` options]
#
# OUT (default bench/gpu-<date>) receives machine.json, golden.json, tts.json, capacity.json, families.json,
# summary.json and nvidia-smi.txt; every record is also printed as one JSON line. The full-size random
# checkpoints (~33 GB) go to $SPEECHSERVE_BENCH_CHECKPOINTS (default: the temp folder) and are reused by
# later runs, so a long run can be split: bench/gpu.sh OUT --sections golden,tts, then --sections capacity,families.
# Dry run on a CPU in about a minute: bench/gpu.sh /tmp/smoke --device cpu --smoke
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$repo/bench/gpu-$(date +%Y%m%d-%H%M%S)}"
shift $(( $# > 0 ? 1 : 0 ))
checkpoints="${SPEECHSERVE_BENCH_CHECKPOINTS:-${TMPDIR:-/tmp}/speechserve-bench-checkpoints}"
mkdir -p "$out"
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi > "$out/nvidia-smi.txt" 2>&1 || true
fi
export PYTHONPATH="$repo/src${PYTHONPATH:+:$PYTHONPATH}"  # works installed or not
exec python -m speechserve bench gpu --out "$out" --checkpoints "$checkpoints" "$@"
