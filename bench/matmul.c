/* bench/matmul.c — times bn_matmul on square and LLM-like shapes and prints one JSON line per
 * (shape, dtype, threads):
 *   {"bench":"matmul","shape":[M,N,K],"dtype":"f32","threads":T,"ms":median,"gflops":...}
 * ms is the median of the repetitions (after one warm-up call); gflops = 2*M*N*K / median.
 *
 * usage: bench_matmul [--quick] [--dtype f32|f64|f16|bf16|i32|...] [--threads N] [M N K]...
 *   with no shapes: 128^3, 256^3, 512^3, 1024^3 (--quick: 128^3 and 512^3), on 1 thread and on
 *   bn_num_threads() threads. */
#include "born/born.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_matmul.h"

static bn_dtype parse_dtype(const char *s)
{
    for (int d = 0; d < BN_DTYPE_COUNT; d++)
        if (strcmp(s, bn_dtype_name((bn_dtype)d)) == 0) return (bn_dtype)d;
    fprintf(stderr, "bench_matmul: unknown dtype %s\n", s);
    exit(2);
}

/* Runs reps timed products of a (M, K) @ b (K, N); returns the median in ms, or < 0 on error. */
static double time_matmul(int64_t M, int64_t N, int64_t K, bn_dtype dt, int reps)
{
    bn_scope_begin();
    bn_tensor *a = bn_to_dtype(bn_randn(BN_SHAPE(M, K), BN_F32), dt);
    bn_tensor *b = bn_to_dtype(bn_randn(BN_SHAPE(K, N), BN_F32), dt);
    double median = bench_matmul_median_ms("bench_matmul", a, b, reps);
    bn_scope_end();
    return median;
}

static void run(int64_t M, int64_t N, int64_t K, bn_dtype dt, int threads)
{
    if (bn_set_num_threads(threads) != BN_OK) return;
    double flops = 2.0 * (double)M * (double)N * (double)K;
    int reps = flops < 1e8 ? 31 : flops < 1e9 ? 11 : 5;
    double ms = time_matmul(M, N, K, dt, reps);
    if (ms < 0) return;
    printf("{\"bench\":\"matmul\",\"shape\":[%lld,%lld,%lld],\"dtype\":\"%s\",\"threads\":%d,"
           "\"ms\":%.4f,\"gflops\":%.2f}\n",
           (long long)M, (long long)N, (long long)K, bn_dtype_name(dt), threads, ms,
           flops / (ms * 1e6));
    fflush(stdout);
}

int main(int argc, char **argv)
{
    bn_dtype dt = BN_F32;
    int fixed_threads = 0, quick = 0, nshapes = 0;
    int64_t shapes[32][3];
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            quick = 1;
        } else if (strcmp(argv[i], "--dtype") == 0 && i + 1 < argc) {
            dt = parse_dtype(argv[++i]);
        } else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
            fixed_threads = atoi(argv[++i]);
        } else if (i + 2 < argc && nshapes < 32) {
            for (int j = 0; j < 3; j++) shapes[nshapes][j] = atoll(argv[i + j]);
            nshapes++;
            i += 2;
        } else {
            fprintf(stderr, "usage: %s [--quick] [--dtype DT] [--threads N] [M N K]...\n", argv[0]);
            return 2;
        }
    }
    if (nshapes == 0) {
        const int64_t sq[4] = {128, 256, 512, 1024}, sq_quick[2] = {128, 512};
        const int64_t *s = quick ? sq_quick : sq;
        for (int i = 0; i < (quick ? 2 : 4); i++, nshapes++)
            shapes[nshapes][0] = shapes[nshapes][1] = shapes[nshapes][2] = s[i];
    }
    int max_threads = bn_num_threads();
    for (int i = 0; i < nshapes; i++) {
        if (fixed_threads > 0) {
            run(shapes[i][0], shapes[i][1], shapes[i][2], dt, fixed_threads);
            continue;
        }
        run(shapes[i][0], shapes[i][1], shapes[i][2], dt, 1);
        if (max_threads > 1) run(shapes[i][0], shapes[i][1], shapes[i][2], dt, max_threads);
    }
    return 0;
}
