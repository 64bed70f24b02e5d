/* bench/gemm_gpu.c — square GEMM through bn_matmul on a CUDA device: median TFLOP/s of several
 * timed repetitions per size and dtype, one JSON line each. f32 runs in full precision unless
 * --tf32 (bn_cuda_set_allow_tf32: TF32 tensor cores, reported as "tf32"); bf16/f16 accumulate
 * in f32.
 * bench/gpu/torch_gemm.py measures torch.matmul the same way; bench/gpu/run.sh runs both.
 *
 *   bench_gemm_gpu [--sizes 4096,8192] [--dtypes f32,bf16,f16] [--reps 20] [--tf32] */
#include "bench_util.h"

#include "born/born.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *arg_value(int argc, char **argv, const char *name, const char *dflt)
{
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0) return argv[i + 1];
    return dflt;
}

static bool parse_dtype(const char *s, size_t n, bn_dtype *out)
{
    static const struct { const char *name; bn_dtype dt; } known[] = {
        {"f32", BN_F32}, {"bf16", BN_BF16}, {"f16", BN_F16}, {"f64", BN_F64}};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strlen(known[i].name) == n && strncmp(s, known[i].name, n) == 0) {
            *out = known[i].dt;
            return true;
        }
    return false;
}

int main(int argc, char **argv)
{
    if (bn_cuda_device_count() < 1) {
        fprintf(stderr, "bench_gemm_gpu: no CUDA device: %s\n", bn_cuda_unavailable_reason());
        return 1;
    }
    const char *sizes = arg_value(argc, argv, "--sizes", "4096,8192");
    const char *dtypes = arg_value(argc, argv, "--dtypes", "f32,bf16,f16");
    int reps = atoi(arg_value(argc, argv, "--reps", "20"));
    if (reps < 1) reps = 1;
    bool use_tf32 = false;
    for (int i = 1; i < argc; i++) use_tf32 |= strcmp(argv[i], "--tf32") == 0;
    if (bn_cuda_set_allow_tf32(use_tf32) != BN_OK) {
        fprintf(stderr, "bench_gemm_gpu: %s\n", bn_error_message());
        return 1;
    }
    char name[256] = "";
    bn_cuda_device_name(0, name, sizeof name);
    double *ms = malloc(sizeof(double) * (size_t)reps);
    for (const char *sz = sizes; *sz;) {
        int64_t n = atoll(sz);
        for (const char *dp = dtypes; *dp;) {
            size_t len = strcspn(dp, ",");
            bn_dtype dt;
            if (!parse_dtype(dp, len, &dt)) {
                fprintf(stderr, "bench_gemm_gpu: unknown dtype '%.*s'\n", (int)len, dp);
                return 2;
            }
            bn_scope_begin();
            bn_tensor *a = bn_tensor_to(bn_randn(BN_SHAPE(n, n), dt), bn_cuda(0));
            bn_tensor *b = bn_tensor_to(bn_randn(BN_SHAPE(n, n), dt), bn_cuda(0));
            for (int w = 0; w < 3; w++) bn_matmul(a, b);
            bn_cuda_synchronize(0);
            for (int r = 0; r < reps; r++) {
                bn_scope_begin();
                double t0 = now_ms();
                bn_tensor *c = bn_matmul(a, b);
                bn_cuda_synchronize(0);
                ms[r] = now_ms() - t0;
                if (!c) {
                    fprintf(stderr, "bench_gemm_gpu: %s\n", bn_error_message());
                    return 1;
                }
                bn_scope_end();
            }
            bn_scope_end();
            qsort(ms, (size_t)reps, sizeof(double), cmp_double);
            double med = ms[reps / 2];
            const char *label = dt == BN_F32 && use_tf32 ? "tf32" : bn_dtype_name(dt);
            printf("{\"bench\":\"gemm_gpu\",\"impl\":\"born\",\"gpu\":\"%s\",\"n\":%lld,"
                   "\"dtype\":\"%s\",\"median_ms\":%.4f,\"tflops\":%.1f}\n",
                   name, (long long)n, label, med, 2.0 * (double)n * (double)n * (double)n / (med * 1e9));
            fflush(stdout);
            dp += len + (dp[len] == ',');
        }
        sz += strcspn(sz, ",");
        if (*sz == ',') sz++;
    }
    free(ms);
    return 0;
}
