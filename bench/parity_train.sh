#!/usr/bin/env bash
# bench/parity_train.sh — the loss-parity target: given the same initial weights and batch
# order as PyTorch, the loss of the first STEPS steps of born's training matches PyTorch's to
# 1e-4 relative. PyTorch (bench/parity_train.py, Debian's /usr/bin/python3) writes the weights,
# the order and its losses to a temporary directory; bench_parity_train replays them in born.
#   usage: bench/parity_train.sh [build-dir] [mlp|cnn] [steps] [batch]
set -euo pipefail
build=${1:-build}
model=${2:-mlp}
steps=${3:-100}
batch=${4:-64}
data=${BENCH_DATA:-/usr/share/datasets/fashion-mnist}
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d /tmp/born-parity-XXXXXX)
trap 'rm -rf "$dir"' EXIT
[ -x "$build/bench_parity_train" ] || { echo "parity_train.sh: build $build first" >&2; exit 1; }
/usr/bin/python3 "$here/parity_train.py" "$model" "$dir" "$steps" "$batch" "$data"
OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} "$build/bench_parity_train" "$model" "$dir" "$steps" "$batch" "$data"
