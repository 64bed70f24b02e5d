#!/usr/bin/env bash
# scripts/build_cuda_plugin.sh — builds the CUDA plugin libborn-cuda.so by hand (nvcc + cc), the
# same way cmake/cuda.cmake does, for machines without a configured CMake build.
#   usage: scripts/build_cuda_plugin.sh [OUT_DIR] (default build-cuda)
# Environment: CUDA_HOME (default /usr/local/cuda), CUDA_ARCHS (default "80 90"), CC (default cc).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-build-cuda}
mkdir -p "$out/obj"
cuda=${CUDA_HOME:-/usr/local/cuda}
nvcc=${NVCC:-$cuda/bin/nvcc}
cc=${CC:-cc}
gencode=()
for a in ${CUDA_ARCHS:-80 90}; do gencode+=(-gencode "arch=compute_$a,code=sm_$a"); done
last=$(echo ${CUDA_ARCHS:-80 90} | awk '{print $NF}')
gencode+=(-gencode "arch=compute_$last,code=compute_$last") # PTX for newer GPUs
inc=(-I"$root/src" -I"$root/include" -I"$cuda/include")
objs=()
for f in "$root"/src/backend_cuda/*.cu; do
    o="$out/obj/$(basename "$f" .cu).cu.o"
    "$nvcc" -std=c++17 -O3 -Xcompiler -fPIC,-fvisibility=hidden "${gencode[@]}" "${inc[@]}" \
        -c "$f" -o "$o" &
    objs+=("$o")
done
for f in "$root"/src/backend_cuda/*.c; do
    o="$out/obj/$(basename "$f" .c).c.o"
    "$cc" -std=c11 -O2 -fPIC -fvisibility=hidden -Wall -Wextra -Wpedantic \
        -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE "${inc[@]}" -c "$f" -o "$o" &
    objs+=("$o")
done
for p in $(jobs -p); do wait "$p"; done
"$nvcc" -shared "${objs[@]}" -o "$out/libborn-cuda.so" -L"$cuda/lib64" -lcublas -lpthread \
    -Xlinker -rpath,"$cuda/lib64"
echo "$out/libborn-cuda.so"
