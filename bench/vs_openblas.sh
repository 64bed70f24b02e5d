#!/bin/sh
# bench/vs_openblas.sh — born's f32 matmul against OpenBLAS's cblas_sgemm (with --f64: born's f64
# matmul against cblas_dgemm; Debian's libopenblas-dev), both in one process
# (bench/openblas_sgemm.c), on 1 and 2 threads; prints one JSON line per shape and thread count
# with the medians and the ratio (> 1: born faster).
#
# usage: bench/vs_openblas.sh [BUILD_DIR] [-- driver args: --f64, --reps R, M N K ...]
#   BUILD_DIR holds libborn.so (default: build). THREADS="1 2" picks the thread counts.
# Both libraries get the same thread count (OMP_NUM_THREADS and OPENBLAS_NUM_THREADS, and the
# driver sets it through each library's API). OPENBLAS_CORETYPE, when the environment sets it,
# is passed through unchanged; run with OPENBLAS_CORETYPE unset (env -u) to let OpenBLAS pick its
# kernel from CPUID, and say which in the figures.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
[ $# -gt 0 ] && shift
[ "${1:-}" = "--" ] && shift
build=$(cd "$build" && pwd)
[ -f "$build/libborn.so" ] || { echo "vs_openblas.sh: no libborn.so in $build (build first)" >&2; exit 1; }

exe="$build/vs_openblas"
${CC:-cc} -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -DBORN_WITH_OPENBLAS -I"$root/include" \
    -I/usr/include/x86_64-linux-gnu -I/usr/include/aarch64-linux-gnu \
    "$root/bench/openblas_sgemm.c" -o "$exe" -L"$build" -lborn -Wl,-rpath,"$build" -lopenblas -lm

echo "# $(uptime)" >&2
echo "# OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE-<unset>} BORN_GEMM_ISA=${BORN_GEMM_ISA-<unset>}" >&2
for t in ${THREADS:-1 2}; do
    OMP_NUM_THREADS=$t OPENBLAS_NUM_THREADS=$t "$exe" --threads "$t" "$@"
done
