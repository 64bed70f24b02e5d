/* bench/io.c — times the .born format (issue 6 targets) on a file of --size-mib MiB (default
 * 1024) made of 16 MiB f32 tensors, and prints one JSON line per measurement:
 *   {"bench":"born_save","mib":1024,"ms":...,"gb_per_s":...}     stream + SHA-256 + fsync + rename
 *   {"bench":"born_load","mib":1024,"ms":...}                    mmap, no verify (target < 50 ms)
 *   {"bench":"born_verify","mib":1024,"ms":...,"gb_per_s":...}   load + SHA-256 check (>= 1.5 GB/s)
 *   {"bench":"born_header","mib":1024,"ms":...}                  preamble + JSON header only, what
 *                                                                `born inspect` reads (< 20 ms)
 * ms is the median of --reps repetitions (default 5) after one warm-up, with the file in the page
 * cache (it was just written); GB is 1e9 bytes. The file is removed at the end.
 *
 * usage: bench_io [--size-mib N] [--reps R] [--dir DIR]   (DIR default /tmp) */
#include "born/born.h"
#include "born/io.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"

/* The header-only reader of src/io/born_read.c (private: bench/ sees only include/). Its struct
 * is opaque here: a buffer larger than it is passed, and freed by its own function. */
bool bn__born_read_header(const char *fn, const char *path, void *h);
void bn__born_header_free(void *h);

enum { MAX_REPS = 101, TENSOR_MIB = 16 };

typedef enum { LOAD, VERIFY, HEADER } what;

/* One timed operation; ms, or < 0 on error (printed). */
static double once(const char *path, what w)
{
    _Alignas(64) static unsigned char header[4096];
    double t0 = now_ms(), ms = -1;
    if (w == HEADER) {
        if (bn__born_read_header("bench_io", path, header)) {
            ms = now_ms() - t0;
            bn__born_header_free(header);
        }
    } else {
        bn_loaded l;
        if (bn_born_load(path, (bn_load_opts){.verify = w == VERIFY}, &l) == BN_OK) {
            ms = now_ms() - t0;
            bn_loaded_free(&l);
        }
    }
    if (ms < 0) fprintf(stderr, "bench_io: %s\n", bn_error_message());
    return ms;
}

static double median(const char *path, what w, int reps)
{
    double t[MAX_REPS];
    if (once(path, w) < 0) return -1; /* warm-up */
    for (int i = 0; i < reps; i++)
        if ((t[i] = once(path, w)) < 0) return -1;
    qsort(t, (size_t)reps, sizeof *t, cmp_double);
    return t[reps / 2];
}

/* Writes the file: size_mib / 16 tensors of 16 MiB (4M f32 each). Returns ms, < 0 on error. */
static double write_model(const char *path, int size_mib)
{
    int n = size_mib / TENSOR_MIB > 0 ? size_mib / TENSOR_MIB : 1;
    bn_tensor_list l = {.count = n,
                        .names = calloc((size_t)n, sizeof(char *)),
                        .tensors = calloc((size_t)n, sizeof(bn_tensor *))};
    int64_t numel = (int64_t)TENSOR_MIB << 18;
    for (int i = 0; i < n; i++) {
        l.names[i] = malloc(32);
        snprintf(l.names[i], 32, "layers.%d.weight", i);
        l.tensors[i] = bn_full(BN_SHAPE(numel / 1024, 1024), (double)i * 0.5, BN_F32);
    }
    bn_metadata md = {0};
    bn_metadata_set(&md, "bench", "io");
    double t0 = now_ms();
    bn_status s =
        bn_born_save(path, &l,
                     (bn_save_opts){.metadata = &md, .config_json = "{\"arch\":\"bench\"}"});
    double ms = now_ms() - t0;
    if (s != BN_OK) fprintf(stderr, "bench_io: %s\n", bn_error_message());
    bn_metadata_free(&md);
    bn_tensor_list_free(&l);
    return s == BN_OK ? ms : -1;
}

int main(int argc, char **argv)
{
    int size_mib = 1024, reps = 5;
    const char *dir = "/tmp";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--size-mib") == 0)
            size_mib = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--reps") == 0)
            reps = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--dir") == 0)
            dir = argv[i + 1];
    }
    if (size_mib < TENSOR_MIB || reps < 1 || reps > MAX_REPS) {
        fprintf(stderr, "usage: bench_io [--size-mib N>=16] [--reps 1..101] [--dir DIR]\n");
        return 2;
    }
    char path[512];
    snprintf(path, sizeof path, "%s/bench_io_%d.born", dir, (int)getpid());
    double bytes = (double)(size_mib / TENSOR_MIB) * TENSOR_MIB * 1048576.0;
    double save = write_model(path, size_mib);
    if (save < 0) return 1;
    printf("{\"bench\":\"born_save\",\"mib\":%d,\"ms\":%.2f,\"gb_per_s\":%.3f}\n", size_mib, save,
           bytes / save / 1e6);
    double load = median(path, LOAD, reps), verify = median(path, VERIFY, reps);
    double header = median(path, HEADER, reps);
    unlink(path);
    if (load < 0 || verify < 0 || header < 0) return 1;
    printf("{\"bench\":\"born_load\",\"mib\":%d,\"ms\":%.3f}\n", size_mib, load);
    printf("{\"bench\":\"born_verify\",\"mib\":%d,\"ms\":%.2f,\"gb_per_s\":%.3f}\n", size_mib,
           verify, bytes / verify / 1e6);
    printf("{\"bench\":\"born_header\",\"mib\":%d,\"ms\":%.3f}\n", size_mib, header);
    return 0;
}
