#!/usr/bin/env bash
# scripts/demo.sh <build-dir> — the main job `make demo` runs: installs Fashion-MNIST if it can
# (bash scripts/deps.sh data: Debian's dataset-fashion-mnist), trains the benchmark CNN on it for
# one epoch with `born train` and prints the result. Without the data set (not root, no network)
# it says how to get it and falls back to the tensor tour (examples/tensor_tour.c) and
# `born info`.
set -euo pipefail

build=${1:-build}
tour=$build/example_tensor_tour
born=$build/born

for bin in "$tour" "$born"; do
  if [ ! -x "$bin" ]; then
    echo "demo.sh: $bin is missing: build first (make, or cmake --build $build)" >&2
    exit 1
  fi
done

have_data() {
  for d in "${BORN_DATA:-}/fashion-mnist" "${BORN_DATA:-}" /usr/share/datasets/fashion-mnist; do
    [ -n "$d" ] && { [ -f "$d/train-images-idx3-ubyte.gz" ] || [ -f "$d/train-images-idx3-ubyte" ]; } && return 0
  done
  return 1
}

have_data || bash scripts/deps.sh data || true

if have_data; then
  echo "### born train: the CNN on Fashion-MNIST, one epoch (Adam 1e-3, batch 64)"
  echo
  "$born" train --model cnn --data fashion-mnist --epochs 1 --batch 64 --lr 1e-3 --optim adam \
    --seed 0 --confusion
  exit 0
fi

echo "demo.sh: Fashion-MNIST is not installed, so no training today; get it with" >&2
echo "demo.sh:   sudo apt-get install dataset-fashion-mnist   (or: sudo bash scripts/deps.sh data)" >&2
echo "demo.sh: and run 'make demo' again. Meanwhile, a tour of the tensor API:" >&2
echo
echo "### examples/tensor_tour: the tensor API"
echo
"$tour"
echo
echo "### born info: this build and this machine"
echo
"$born" info
