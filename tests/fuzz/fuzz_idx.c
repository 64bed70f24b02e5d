/* tests/fuzz/fuzz_idx.c — libFuzzer target for the IDX reader (src/data/idx.c): every input is
 * written to a temporary file and read back with bn_idx_read, plain or gzip'd (zlib detects
 * the gzip magic by itself). The reader must return a tensor or a clean error — never crash,
 * read out of bounds, leak, or trust a header's dims for an allocation. Not built by CMake
 * (libFuzzer needs clang); build and run it with:
 *   CC=clang cmake -S . -B /tmp/fuzz -DCMAKE_BUILD_TYPE=Debug -DBORN_SANITIZE=ON \
 *       -DBORN_BUILD_TESTS=OFF -DCMAKE_C_FLAGS=-fsanitize=fuzzer-no-link
 *   cmake --build /tmp/fuzz -j2 --target born_static
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude tests/fuzz/fuzz_idx.c \
 *       /tmp/fuzz/libborn.a -fopenmp -lz -lm -lpthread -o /tmp/fuzz/fuzz_idx
 *   /tmp/fuzz/fuzz_idx -max_total_time=60 tests/data/idx   # the fixtures are the seed corpus */
#include "born/data.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char path[64];
static int fd = -1;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (fd < 0) {
        snprintf(path, sizeof path, "/tmp/born-fuzz-idx-XXXXXX");
        fd = mkstemp(path);
        if (fd < 0) abort();
    }
    if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size) abort();
    bn_tensor *t = bn_idx_read(path);
    if (t) {
        /* a tensor that came back must be fully readable */
        volatile uint8_t sink = 0;
        const uint8_t *p = bn_tensor_data(t);
        for (size_t i = 0; i < bn_nbytes(t); i++) sink ^= p[i];
        (void)sink;
        bn_release(t);
    } else if (bn_error_code() == BN_OK) {
        abort(); /* NULL without an error is a bug */
    }
    bn_error_clear();
    return 0;
}
