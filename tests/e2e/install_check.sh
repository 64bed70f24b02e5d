#!/usr/bin/env bash
# tests/e2e/install_check.sh — installs a built born into a scratch prefix and builds the three
# ways a program outside the repository uses it: pkg-config (shared), pkg-config --static, and
# CMake's find_package(born). Each consumer includes <born/born.h> with strict warnings, makes a
# tensor, prints its sum, and must run. Run by tests/e2e/test_install.c; by hand:
#   bash tests/e2e/install_check.sh <build-dir> <scratch-dir> [sanitize 0|1]
# Exit 0: all passed; 77: a tool is missing (the test skips); anything else: a failure.
set -euo pipefail

bindir=$1
work=$2
sanitize=${3:-0}

for tool in cmake pkg-config; do
  command -v "$tool" >/dev/null || { echo "skip: $tool is not installed"; exit 77; }
done

# Consumers are built with the compiler and sanitizers the library was built with.
cc=$(sed -n 's/^CMAKE_C_COMPILER:[A-Z]*=//p' "$bindir/CMakeCache.txt")
cc=${cc:-cc}
flags=(-std=c11 -Wall -Wextra -Wpedantic -Werror)
if [ "$sanitize" = 1 ]; then
  flags+=("-fsanitize=address,undefined" -fno-omit-frame-pointer)
fi

prefix=$work/prefix
mkdir -p "$work/src"
cmake --install "$bindir" --prefix "$prefix"

# what must be installed, and what must not
for h in born.h tensor.h ops.h info.h; do
  test -f "$prefix/include/born/$h" || { echo "FAIL: include/born/$h was not installed"; exit 1; }
done
if [ -e "$prefix/include/born/internal.h" ] || [ -e "$prefix/include/core" ]; then
  echo "FAIL: private headers were installed"; exit 1
fi
pc=$(find "$prefix" -name born.pc | head -n 1)
[ -n "$pc" ] || { echo "FAIL: no born.pc under $prefix"; exit 1; }
"$prefix/bin/born" --version | grep -q '^born ' || { echo "FAIL: installed born binary"; exit 1; }

cat >"$work/src/main.c" <<'C'
/* An outside program: only the installed headers and library. */
#include <born/born.h>

#include <stdio.h>

int main(void)
{
    bn_tensor *t = bn_ones(BN_SHAPE(2, 3), BN_F32);
    float *p = bn_tensor_data_f32(t);
    if (!p) {
        fprintf(stderr, "consumer: %s\n", bn_error_message());
        return 1;
    }
    double sum = 0;
    for (int64_t i = 0; i < bn_numel(t); i++) sum += p[i];
    printf("born %s: sum %g\n", bn_version(), sum);
    bn_release(t);
    return 0;
}
C

PKG_CONFIG_PATH=$(dirname "$pc")
export PKG_CONFIG_PATH
libdir=$(pkg-config --variable=libdir born)
# `cmake --install --prefix` may differ from the prefix configured into the build: born.pc must
# be relocatable (paths from ${pcfiledir}), as the CMake package is.
if [ ! -f "$libdir/libborn.so" ]; then
  echo "FAIL: born.pc points at libdir $libdir, not at the install prefix $prefix"
  echo "      (cmake/born.pc.in must derive its prefix from \${pcfiledir})"
  exit 1
fi

# 1. pkg-config, shared library (rpath so it runs without LD_LIBRARY_PATH)
# shellcheck disable=SC2046
"$cc" "${flags[@]}" "$work/src/main.c" -o "$work/consumer_pkgconfig" \
  $(pkg-config --cflags --libs born) -Wl,-rpath,"$libdir"
out=$("$work/consumer_pkgconfig")
echo "pkg-config consumer: $out"

# 2. pkg-config --static: libborn.a plus Libs.private (libm, pthreads, OpenMP)
static_libs=$(pkg-config --static --libs born | sed 's/-lborn\b/-Wl,-Bstatic -lborn -Wl,-Bdynamic/')
# shellcheck disable=SC2046,SC2086
"$cc" "${flags[@]}" "$work/src/main.c" -o "$work/consumer_static" \
  $(pkg-config --cflags born) $static_libs
if ldd "$work/consumer_static" | grep -q libborn; then
  echo "FAIL: the --static consumer links libborn.so"; exit 1
fi
out=$("$work/consumer_static")
echo "static consumer: $out"

# 3. CMake: find_package(born) and the born::born target
cat >"$work/src/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.16)
project(born_consumer C)
find_package(born 0.1 REQUIRED)
add_executable(consumer main.c)
target_link_libraries(consumer PRIVATE born::born)
CM
cmake -S "$work/src" -B "$work/cmake-build" -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_C_COMPILER="$cc" -DCMAKE_C_FLAGS="${flags[*]}" -DCMAKE_BUILD_TYPE=Release
cmake --build "$work/cmake-build"
out=$("$work/cmake-build/consumer")
echo "cmake consumer: $out"
