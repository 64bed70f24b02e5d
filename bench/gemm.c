/* bench/gemm.c — GEMM speed of bn_matmul (issue 4): square 256–4096 and the ML shapes
 * (M=64,N=4096,K=4096; M=1,N=4096,K=4096 (GEMV); M=512,N=3072,K=768), on 1 and 2 threads, in
 * f32 (default), f64, f16 or bf16 (--dtype). One JSON line per (shape, threads):
 *   {"bench":"gemm","dtype":"f32","shape":[M,N,K],"b":"row-major","isa":"avx512","threads":T,
 *    "reps":R,"ms":median,"gflops":2*M*N*K/median,"gbps":bytes of A, B and C / median}
 * ms is the median of R timed calls after one warm-up call (R from the size unless --reps).
 * gbps matters for the GEMV: its bound is the memory bandwidth (B is read once).
 *
 * usage: bench_gemm [--quick] [--bt] [--dtype f32|f64|f16|bf16] [--reps R] [--threads T]
 *                   [M N K]...
 *   --bt: b is the transpose of a row-major (N, K) tensor, as a linear layer's weight
 *   (x @ W^T); the line then says "b":"transposed".
 *   --quick: 256, 1024 and the ML shapes only. BORN_GEMM_ISA=portable|avx2|avx512 picks the
 *   kernel (default: the best this CPU has); "isa" echoes it ("auto" when unset). */
#include "born/born.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_matmul.h"

/* Repetitions for a product of `flops`: about a second of work, 5 to 51 runs. */
static int default_reps(double flops)
{
    return flops < 1e8 ? 51 : flops < 1e9 ? 21 : flops < 2e10 ? 9 : 5;
}

static bn_dtype dtype = BN_F32;

/* Median ms of reps timed a (M, K) @ b (K, N) products in dtype; < 0 on error. */
static double time_gemm(int64_t M, int64_t N, int64_t K, bool bt, int reps)
{
    bn_scope_begin();
    bn_tensor *a = bn_to_dtype(bn_randn(BN_SHAPE(M, K), BN_F32), dtype);
    bn_tensor *b = bt ? bn_transpose(bn_to_dtype(bn_randn(BN_SHAPE(N, K), BN_F32), dtype), 0, 1)
                      : bn_to_dtype(bn_randn(BN_SHAPE(K, N), BN_F32), dtype);
    double median = bench_matmul_median_ms("bench_gemm", a, b, reps);
    bn_scope_end();
    return median;
}

static const char *isa_label(void)
{
    const char *isa = getenv("BORN_GEMM_ISA");
    return isa && *isa ? isa : "auto";
}

static bool b_transposed;

static void run(int64_t M, int64_t N, int64_t K, int threads, int reps)
{
    if (bn_set_num_threads(threads) != BN_OK) return;
    double flops = 2.0 * (double)M * (double)N * (double)K;
    double bytes = (double)bn_dtype_size(dtype) *
                   ((double)M * (double)K + (double)K * (double)N + (double)M * (double)N);
    if (reps <= 0) reps = default_reps(flops);
    double ms = time_gemm(M, N, K, b_transposed, reps);
    if (ms < 0) return;
    printf("{\"bench\":\"gemm\",\"dtype\":\"%s\",\"shape\":[%lld,%lld,%lld],\"b\":\"%s\","
           "\"isa\":\"%s\",\"threads\":%d,\"reps\":%d,\"ms\":%.4f,\"gflops\":%.2f,"
           "\"gbps\":%.2f}\n",
           bn_dtype_name(dtype), (long long)M, (long long)N, (long long)K,
           b_transposed ? "transposed" : "row-major", isa_label(), threads, reps, ms,
           flops / (ms * 1e6), bytes / (ms * 1e6));
    fflush(stdout);
}

int main(int argc, char **argv)
{
    static const int64_t all[][3] = {
        {256, 256, 256},    {512, 512, 512},  {1024, 1024, 1024}, {2048, 2048, 2048},
        {4096, 4096, 4096}, {64, 4096, 4096}, {1, 4096, 4096},    {512, 3072, 768},
    };
    static const int64_t quick_set[][3] = {
        {256, 256, 256}, {1024, 1024, 1024}, {64, 4096, 4096}, {1, 4096, 4096}, {512, 3072, 768},
    };
    int fixed_threads = 0, quick = 0, reps = 0, nshapes = 0;
    int64_t shapes[32][3];
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            quick = 1;
        } else if (strcmp(argv[i], "--bt") == 0) {
            b_transposed = true;
        } else if (strcmp(argv[i], "--dtype") == 0 && i + 1 < argc) {
            const char *name = argv[++i];
            const bn_dtype choices[] = {BN_F32, BN_F64, BN_F16, BN_BF16};
            int found = 0;
            for (int d = 0; d < 4; d++)
                if (strcmp(name, bn_dtype_name(choices[d])) == 0) dtype = choices[d], found = 1;
            if (!found) {
                fprintf(stderr, "%s: --dtype %s: expected f32, f64, f16 or bf16\n", argv[0], name);
                return 2;
            }
        } else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
            fixed_threads = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
            reps = atoi(argv[++i]);
        } else if (i + 2 < argc && nshapes < 32) {
            for (int j = 0; j < 3; j++) shapes[nshapes][j] = atoll(argv[i + j]);
            nshapes++;
            i += 2;
        } else {
            fprintf(stderr,
                    "usage: %s [--quick] [--bt] [--dtype f32|f64|f16|bf16] [--reps R] "
                    "[--threads T] [M N K]...\n",
                    argv[0]);
            return 2;
        }
    }
    if (nshapes == 0) {
        const int64_t(*set)[3] = quick ? quick_set : all;
        int n = quick ? (int)(sizeof quick_set / sizeof quick_set[0])
                      : (int)(sizeof all / sizeof all[0]);
        for (; nshapes < n; nshapes++) memcpy(shapes[nshapes], set[nshapes], sizeof shapes[0]);
    }
    int max_threads = bn_num_threads() < 2 ? bn_num_threads() : 2;
    for (int i = 0; i < nshapes; i++) {
        if (fixed_threads > 0) {
            run(shapes[i][0], shapes[i][1], shapes[i][2], fixed_threads, reps);
            continue;
        }
        run(shapes[i][0], shapes[i][1], shapes[i][2], 1, reps);
        if (max_threads > 1) run(shapes[i][0], shapes[i][1], shapes[i][2], max_threads, reps);
    }
    return 0;
}
