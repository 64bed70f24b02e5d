/* bench/attention_gpu.c — bn_attention's fused kernel on a CUDA device: median forward and
 * forward+backward times of causal attention (B, H, T, D) in f32 and/or bf16 / f16 (the
 * tensor-core kernels) over timed repetitions (each
 * synchronised), one JSON line per shape. The backward is that of sum(out), through autograd,
 * as bench/gpu/torch_attention.py does it. FLOP/s count the model's work: 4 B H T^2 D for the
 * forward, 2.5 times that for the backward, halved when causal (FlashAttention's convention).
 *
 *   bench_attention_gpu [--reps 20] [--shapes 8x12x1024x64,1x12x4096x64] [--no-causal]
 *                       [--dtypes f32,bf16] */
#include "bench_util.h"

#include "born/born.h"
#include "born/transformer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *arg_value(int argc, char **argv, const char *name, const char *dflt)
{
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0) return argv[i + 1];
    return dflt;
}

/* One timed call: the forward alone, or forward + backward; milliseconds. */
static double run_once(bn_tensor *q, bn_tensor *k, bn_tensor *v, bool causal, bool backward)
{
    bn_scope_begin();
    bn_cuda_synchronize(0);
    double t0 = now_ms();
    bn_tensor *out = bn_attention(q, k, v, &(bn_attention_opts){.causal = causal});
    bn_status st = out ? BN_OK : bn_error_code();
    if (out && backward) st = bn_backward(bn_sum(out, BN_ALL, false));
    if (st == BN_OK) st = bn_cuda_synchronize(0);
    double ms = now_ms() - t0;
    if (st != BN_OK) {
        fprintf(stderr, "bench_attention_gpu: %s\n", bn_error_message());
        exit(1);
    }
    bn_scope_end();
    return ms;
}

static double median_ms(bn_tensor *q, bn_tensor *k, bn_tensor *v, bool causal, bool backward,
                        double *ms, int reps)
{
    for (int w = 0; w < 3; w++) run_once(q, k, v, causal, backward);
    for (int r = 0; r < reps; r++) ms[r] = run_once(q, k, v, causal, backward);
    qsort(ms, (size_t)reps, sizeof *ms, cmp_double);
    return ms[reps / 2];
}

int main(int argc, char **argv)
{
    if (bn_cuda_device_count() < 1) {
        fprintf(stderr, "bench_attention_gpu: no CUDA device: %s\n", bn_cuda_unavailable_reason());
        return 1;
    }
    int reps = atoi(arg_value(argc, argv, "--reps", "20"));
    if (reps < 1) reps = 1;
    const char *shapes = arg_value(argc, argv, "--shapes", "8x12x1024x64,1x12x4096x64");
    bool causal = true;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--no-causal") == 0) causal = false;
    const char *dtypes = arg_value(argc, argv, "--dtypes", "f32,bf16");
    char name[256] = "";
    bn_cuda_device_name(0, name, sizeof name);
    double *ms = malloc(sizeof(double) * (size_t)reps);
    if (!ms) return 1;
    for (const char *dp = dtypes; *dp;) {
        size_t dn = strcspn(dp, ",");
        bn_dtype dt = strncmp(dp, "bf16", dn) == 0 && dn == 4  ? BN_BF16
                      : strncmp(dp, "f16", dn) == 0 && dn == 3 ? BN_F16
                      : strncmp(dp, "f32", dn) == 0 && dn == 3 ? BN_F32
                                                               : BN_I64;
        if (dt == BN_I64) {
            fprintf(stderr, "bench_attention_gpu: bad dtype '%.*s' (f32, bf16 or f16)\n", (int)dn,
                    dp);
            return 2;
        }
        dp += dn;
        if (*dp == ',') dp++;
        for (const char *sp = shapes; *sp;) {
            long long B, H, T, D;
            if (sscanf(sp, "%lldx%lldx%lldx%lld", &B, &H, &T, &D) != 4 || B < 1 || H < 1 || T < 1 ||
                D < 1) {
                fprintf(stderr, "bench_attention_gpu: bad shape '%.*s' (want BxHxTxD)\n",
                        (int)strcspn(sp, ","), sp);
                return 2;
            }
            bn_manual_seed(1);
            bn_scope_begin();
            bn_tensor *q =
                bn_to_dtype(bn_tensor_to(bn_randn(BN_SHAPE(B, H, T, D), BN_F32), bn_cuda(0)), dt);
            bn_tensor *k =
                bn_to_dtype(bn_tensor_to(bn_randn(BN_SHAPE(B, H, T, D), BN_F32), bn_cuda(0)), dt);
            bn_tensor *v =
                bn_to_dtype(bn_tensor_to(bn_randn(BN_SHAPE(B, H, T, D), BN_F32), bn_cuda(0)), dt);
            if (!q || !k || !v) {
                fprintf(stderr, "bench_attention_gpu: %s\n", bn_error_message());
                return 1;
            }
            double fwd = median_ms(q, k, v, causal, false, ms, reps);
            bn_set_requires_grad(q, true);
            bn_set_requires_grad(k, true);
            bn_set_requires_grad(v, true);
            double both = median_ms(q, k, v, causal, true, ms, reps);
            double flops = 4.0 * (double)(B * H) * (double)T * (double)T * (double)D;
            if (causal) flops /= 2;
            printf("{\"bench\": \"attention_gpu\", \"impl\": \"born\", \"gpu\": \"%s\", \"shape\": "
                   "[%lld, %lld, %lld, %lld], \"causal\": %s, \"dtype\": \"%s\", \"fwd_ms\": %.4f, "
                   "\"fwd_bwd_ms\": %.4f, \"fwd_tflops\": %.2f, \"fwd_bwd_tflops\": %.2f}\n",
                   name, B, H, T, D, causal ? "true" : "false",
                   dt == BN_F32    ? "f32"
                   : dt == BN_BF16 ? "bf16"
                                   : "f16",
                   fwd, both, flops / fwd * 1e-9, 3.5 * flops / both * 1e-9);
            fflush(stdout);
            bn_scope_end();
            sp += strcspn(sp, ",");
            if (*sp == ',') sp++;
        }
    }
    free(ms);
    return 0;
}
