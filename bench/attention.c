/* bench/attention.c — fused vs reference attention, forward + backward, on the CPU: causal
 * multi-head attention of (B, H, T, D) f32, median of several runs, one JSON line per
 * (shape, path) with ms and GFLOP/s. FLOPs count the model's work (4 B H T^2 D forward, twice
 * that backward, halved for causal), the same for both paths.
 * Usage: bench_attention [reps]   (set OMP_NUM_THREADS to choose the threads) */
#include "bench_util.h"
#include "born/autograd.h"
#include "born/transformer.h"

#include <stdio.h>
#include <stdlib.h>

static double run_once(bn_tensor *q, bn_tensor *k, bn_tensor *v, int impl, double *fwd_ms)
{
    bn_scope_begin();
    double t0 = now_ms();
    bn_tensor *out = bn_attention(q, k, v, &(bn_attention_opts){.causal = true, .impl = impl});
    double t1 = now_ms();
    bn_status st = bn_backward(bn_sum(out, BN_ALL, false));
    double t2 = now_ms();
    if (!out || st != BN_OK) {
        fprintf(stderr, "bench_attention: %s\n", bn_error_message());
        exit(1);
    }
    bn_scope_end();
    *fwd_ms = t1 - t0;
    return t2 - t0;
}

int main(int argc, char **argv)
{
    int reps = argc > 1 ? atoi(argv[1]) : 5;
    if (reps < 1 || reps > 100) reps = 5;
    const int64_t shapes[][4] = {{4, 6, 256, 64}, {4, 6, 1024, 64}};
    const char *names[3] = {"", "fused", "reference"};
    for (int s = 0; s < 2; s++) {
        int64_t B = shapes[s][0], H = shapes[s][1], T = shapes[s][2], D = shapes[s][3];
        bn_manual_seed(1);
        bn_tensor *q = bn_randn(BN_SHAPE(B, H, T, D), BN_F32);
        bn_tensor *k = bn_randn(BN_SHAPE(B, H, T, D), BN_F32);
        bn_tensor *v = bn_randn(BN_SHAPE(B, H, T, D), BN_F32);
        bn_set_requires_grad(q, true);
        bn_set_requires_grad(k, true);
        bn_set_requires_grad(v, true);
        double flops_fwd = 4.0 * (double)(B * H) * (double)T * (double)T * (double)D / 2;
        for (int impl = BN_ATTN_FUSED; impl <= BN_ATTN_REFERENCE; impl++) {
            double t[100], f[100], dummy;
            run_once(q, k, v, impl, &dummy); /* warm-up */
            for (int r = 0; r < reps; r++) t[r] = run_once(q, k, v, impl, &f[r]);
            qsort(t, (size_t)reps, sizeof *t, cmp_double);
            qsort(f, (size_t)reps, sizeof *f, cmp_double);
            double ms = t[reps / 2], fms = f[reps / 2];
            printf("{\"bench\": \"attention_fwd_bwd\", \"impl\": \"%s\", \"shape\": [%lld, %lld, "
                   "%lld, %lld], \"causal\": true, \"dtype\": \"f32\", \"ms\": %.3f, \"fwd_ms\": "
                   "%.3f, \"gflops\": %.2f, \"fwd_gflops\": %.2f}\n",
                   names[impl], (long long)B, (long long)H, (long long)T, (long long)D, ms, fms,
                   3 * flops_fwd / ms * 1e-6, flops_fwd / fms * 1e-6);
            fflush(stdout);
        }
        bn_release(q);
        bn_release(k);
        bn_release(v);
    }
    return 0;
}
