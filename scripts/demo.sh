#!/usr/bin/env bash
# scripts/demo.sh <build-dir> — the main job `make demo` runs. Until training lands (later
# issues) that is a tour of the tensor API (examples/tensor_tour.c) and then `born info`: what
# this build is and what the machine offers.
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

echo "### examples/tensor_tour: the tensor API"
echo
"$tour"
echo
echo "### born info: this build and this machine"
echo
"$born" info
