/* tests/fuzz/fuzz_safetensors.c — libFuzzer target for the safetensors reader
 * (src/io/safetensors.c): every input is written to a temporary file and loaded with
 * bn_safetensors_load, mapped and (for odd-sized inputs) read into memory. The reader must
 * return tensors whose every byte lies inside the file, or a clean error — never crash, read
 * out of bounds, leak, or trust a header's sizes for an allocation. Built by `make fuzz`
 * (BORN_FUZZ, clang) and run by scripts/fuzz.sh with the seed corpus tests/data/safetensors/
 * (files written by scripts/gen_safetensors.py: valid, corrupted and unsupported ones). */
#define _DEFAULT_SOURCE /* mkstemp, ftruncate, pwrite */
#include "born/io.h"

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
        snprintf(path, sizeof path, "/tmp/born-fuzz-safetensors-XXXXXX");
        fd = mkstemp(path);
        if (fd < 0) abort();
    }
    if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size) abort();
    bn_loaded l;
    bn_status st = bn_safetensors_load(path, (bn_load_opts){.no_mmap = size % 2 == 1}, &l);
    if (st == BN_OK) {
        /* everything that came back must be fully readable */
        volatile uint8_t sink = 0;
        for (int i = 0; i < l.tensors.count; i++) {
            if (!l.tensors.names[i]) abort();
            const uint8_t *p = bn_tensor_data(l.tensors.tensors[i]);
            size_t n = bn_nbytes(l.tensors.tensors[i]);
            if (n > size) abort(); /* a tensor larger than the file */
            for (size_t k = 0; k < n; k++) sink ^= p[k];
        }
        for (int i = 0; i < l.metadata.count; i++) sink ^= (uint8_t)strlen(l.metadata.values[i]);
        (void)sink;
        bn_loaded_free(&l);
    } else if (bn_error_code() == BN_OK || l.tensors.count != 0) {
        abort(); /* a failure without an error, or with results left behind, is a bug */
    }
    bn_error_clear();
    return 0;
}
