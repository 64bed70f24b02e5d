/* tests/fuzz/fuzz_born.c — libFuzzer target for the .born reader (src/io/born_read.c): every
 * input is written to a temporary .born file and loaded four ways (mapped or read, with and
 * without checksum verification). The reader must return tensors or a clean error — never
 * crash, read out of bounds, leak, or trust a header's sizes. Built by `make fuzz` (clang); the
 * seed corpus is tests/data/born/ (valid files of several dtypes and corrupted ones). By hand:
 *   CC=clang cmake -S . -B /tmp/fuzz -DCMAKE_BUILD_TYPE=Debug -DBORN_SANITIZE=ON -DBORN_FUZZ=ON
 *   cmake --build /tmp/fuzz -j2 --target fuzz_born
 *   /tmp/fuzz/fuzz_born -max_total_time=60 tests/data/born */
#include "born/io.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char path[64];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void touch_all(const bn_loaded *l)
{
    volatile uint8_t sink = 0;
    for (int i = 0; i < l->tensors.count; i++) {
        const uint8_t *p = bn_tensor_data(l->tensors.tensors[i]);
        size_t n = bn_nbytes(l->tensors.tensors[i]);
        for (size_t k = 0; k < n; k++) sink ^= p[k];
        sink ^= (uint8_t)strlen(l->tensors.names[i]);
    }
    for (int i = 0; i < l->metadata.count; i++)
        sink ^= (uint8_t)(strlen(l->metadata.keys[i]) + strlen(l->metadata.values[i]));
    if (l->config_json) sink ^= (uint8_t)strlen(l->config_json);
    (void)sink;
}

static void remove_file(void) { unlink(path); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!path[0]) {
        snprintf(path, sizeof path, "/tmp/born-fuzz-%d.born", (int)getpid());
        atexit(remove_file);
    }
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size) abort();
    fclose(f);
    for (int mode = 0; mode < 4; mode++) {
        bn_loaded l;
        bn_load_opts o = {.verify = mode & 1, .no_mmap = mode & 2};
        if (bn_born_load(path, o, &l) == BN_OK) {
            touch_all(&l);
            bn_loaded_free(&l);
        } else if (bn_error_code() == BN_OK) {
            abort(); /* a failure without an error is a bug */
        }
        bn_error_clear();
    }
    return 0;
}
