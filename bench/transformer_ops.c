/* bench/transformer_ops.c — the fused transformer ops against their composed versions on the
 * CPU, f32, median of several runs, one JSON line per (op, path):
 *   rope:  x (B, H, T, D) forward and backward (the backward is one more rotation), GB/s
 *          counting one read of x and one write of the result;
 *   glu:   SwiGLU and GeGLU on x (rows, 2F), forward (reads 2F, writes F per row) and backward
 *          (reads x and dout, writes dx), GB/s;
 *   linear_ce: bn_linear_cross_entropy vs bn_cross_entropy(bn_linear(..)), forward + backward,
 *          ms and the peak resident memory the step added (freed heap trimmed and VmHWM reset
 *          through /proc/self/clear_refs before each run; 0 where the kernel does not allow
 *          it).
 * The composed paths are written here with public ops, as ops/ composes them on a backend
 * without the fused kernels.
 * Usage: bench_transformer_ops [reps] [N D V]   (OMP_NUM_THREADS chooses the threads) */
#include "bench_util.h"
#include "born/autograd.h"
#include "born/transformer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

static void die(const char *what)
{
    fprintf(stderr, "bench_transformer_ops: %s: %s\n", what, bn_error_message());
    exit(1);
}

static double median(double *t, int n)
{
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    return t[n / 2];
}

/* ---- resident memory ------------------------------------------------------------------------ */
static long proc_status_kb(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return 0;
    char line[256];
    long v = 0;
    size_t n = strlen(key);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, n) == 0) v = strtol(line + n, NULL, 10);
    fclose(f);
    return v;
}

/* gives freed heap memory back to the system (so a later peak counts it again), then resets
 * VmHWM to the current RSS; false when the kernel refuses */
static bool reset_peak(void)
{
#ifdef __GLIBC__
    malloc_trim(0);
#endif
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f) return false;
    bool ok = fputs("5", f) >= 0;
    return fclose(f) == 0 && ok;
}

/* ---- rope ----------------------------------------------------------------------------------- */
static bn_tensor *rope_composed(const bn_tensor *x, const bn_tensor *cs, const bn_tensor *sn)
{
    int last = bn_ndim(x) - 1;
    int64_t half = bn_dim(x, last) / 2;
    bn_tensor *x1 = bn_narrow(x, last, 0, half), *x2 = bn_narrow(x, last, half, half);
    bn_tensor *pair[2] = {bn_sub(bn_mul(x1, cs), bn_mul(x2, sn)),
                          bn_add(bn_mul(x1, sn), bn_mul(x2, cs))};
    return bn_cat(pair, 2, last);
}

static void bench_rope(int reps)
{
    const int64_t B = 4, H = 16, T = 1024, D = 64;
    bn_manual_seed(1);
    bn_tensor *x = bn_randn(BN_SHAPE(B, H, T, D), BN_F32);
    bn_set_requires_grad(x, true);
    /* the composed path's tables, as bn_rope computes them */
    bn_tensor *freqs = bn_rope_frequencies(D, NULL);
    bn_tensor *pos = bn_arange(0, (double)T, 1, BN_F64);
    bn_tensor *ang = bn_mul(bn_unsqueeze(pos, 1), bn_unsqueeze(bn_to_dtype(freqs, BN_F64), 0));
    bn_tensor *cs = bn_to_dtype(bn_cos(ang), BN_F32), *sn = bn_to_dtype(bn_sin(ang), BN_F32);
    double bytes = 2.0 * (double)(B * H * T * D) * 4;
    for (int path = 0; path < 2; path++) {
        double tf[64], tb[64];
        for (int r = -1; r < reps; r++) {
            bn_scope_begin();
            double t0 = now_ms();
            bn_tensor *y = path == 0 ? bn_rope(x, NULL) : rope_composed(x, cs, sn);
            double t1 = now_ms();
            bn_tensor *g = bn_ones(bn_shape_of(y), BN_F32);
            double t2 = now_ms();
            if (!y || bn_backward_ex(y, (bn_backward_opts){.grad = g}) != BN_OK) die("rope");
            double t3 = now_ms();
            bn_scope_end();
            bn_tensor *gx = bn_grad(x);
            bn_release(gx);
            bn_set_grad(x, NULL);
            if (r >= 0) tf[r] = t1 - t0, tb[r] = t3 - t2;
        }
        double f = median(tf, reps), b = median(tb, reps);
        printf("{\"bench\": \"rope\", \"impl\": \"%s\", \"shape\": [%lld, %lld, %lld, %lld], "
               "\"dtype\": \"f32\", \"fwd_ms\": %.3f, \"fwd_gbs\": %.2f, \"bwd_ms\": %.3f, "
               "\"bwd_gbs\": %.2f}\n",
               path == 0 ? "fused" : "composed", (long long)B, (long long)H, (long long)T,
               (long long)D, f, bytes / f * 1e-6, b, bytes / b * 1e-6);
        fflush(stdout);
    }
    bn_tensor *all[] = {x, freqs, pos, ang, cs, sn};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) bn_release(all[i]);
}

/* ---- gated activations ---------------------------------------------------------------------- */
static bn_tensor *glu_composed(const bn_tensor *x, bn_glu_kind kind)
{
    int64_t F = bn_dim(x, 1) / 2;
    bn_tensor *a = bn_narrow(x, 1, 0, F), *b = bn_narrow(x, 1, F, F);
    return bn_mul(kind == BN_GLU_SWIGLU ? bn_silu(a) : bn_gelu(a), b);
}

static void bench_glu(int reps)
{
    const int64_t rows = 4096, F = 1024;
    bn_manual_seed(2);
    bn_tensor *x = bn_randn(BN_SHAPE(rows, 2 * F), BN_F32);
    bn_set_requires_grad(x, true);
    double fbytes = 3.0 * (double)(rows * F) * 4, bbytes = 5.0 * (double)(rows * F) * 4;
    const bn_glu_kind kinds[2] = {BN_GLU_SWIGLU, BN_GLU_GEGLU};
    for (int k = 0; k < 2; k++)
        for (int path = 0; path < 2; path++) {
            double tf[64], tb[64];
            for (int r = -1; r < reps; r++) {
                bn_scope_begin();
                double t0 = now_ms();
                bn_tensor *y = path == 0 ? bn_gated_activation(x, kinds[k])
                                         : glu_composed(x, kinds[k]);
                double t1 = now_ms();
                bn_tensor *g = bn_ones(bn_shape_of(y), BN_F32);
                double t2 = now_ms();
                if (!y || bn_backward_ex(y, (bn_backward_opts){.grad = g}) != BN_OK) die("glu");
                double t3 = now_ms();
                bn_scope_end();
                bn_set_grad(x, NULL);
                if (r >= 0) tf[r] = t1 - t0, tb[r] = t3 - t2;
            }
            double f = median(tf, reps), b = median(tb, reps);
            printf("{\"bench\": \"glu\", \"kind\": \"%s\", \"impl\": \"%s\", \"shape\": [%lld, "
                   "%lld], \"dtype\": \"f32\", \"fwd_ms\": %.3f, \"fwd_gbs\": %.2f, \"bwd_ms\": "
                   "%.3f, \"bwd_gbs\": %.2f}\n",
                   k == 0 ? "swiglu" : "geglu", path == 0 ? "fused" : "composed",
                   (long long)rows, (long long)(2 * F), f, fbytes / f * 1e-6, b,
                   bbytes / b * 1e-6);
            fflush(stdout);
        }
    bn_release(x);
}

/* ---- linear cross-entropy ------------------------------------------------------------------- */
static void bench_linear_ce(int reps, int64_t N, int64_t D, int64_t V)
{
    bn_manual_seed(3);
    bn_tensor *x = bn_randn(BN_SHAPE(N, D), BN_F32);
    bn_tensor *w = bn_mul_scalar(bn_randn(BN_SHAPE(V, D), BN_F32), 0.05);
    bn_tensor *t = bn_randint(0, V, BN_SHAPE(N), BN_I64);
    bn_set_requires_grad(x, true);
    bn_set_requires_grad(w, true);
    double flops = 6.0 * (double)N * (double)D * (double)V; /* forward GEMM + two backward */
    double loss[2] = {0};
    for (int path = 0; path < 2; path++) {
        double tt[64], tf[64];
        long peak_kb = 0;
        for (int r = -1; r < reps; r++) {
            bool peak_ok = reset_peak();
            long base = proc_status_kb("VmRSS:");
            bn_scope_begin();
            double t0 = now_ms();
            bn_tensor *l = path == 0 ? bn_linear_cross_entropy(x, w, NULL, t, (bn_ce_opts){0})
                                     : bn_cross_entropy(bn_linear(x, w, NULL), t, (bn_ce_opts){0});
            double t1 = now_ms();
            if (!l || bn_backward(l) != BN_OK) die("linear_ce");
            double t2 = now_ms();
            loss[path] = bn_item(l);
            bn_scope_end();
            long hwm = proc_status_kb("VmHWM:");
            if (peak_ok && hwm - base > peak_kb) peak_kb = hwm - base;
            bn_set_grad(x, NULL);
            bn_set_grad(w, NULL);
            if (r >= 0) tt[r] = t2 - t0, tf[r] = t1 - t0;
        }
        double ms = median(tt, reps), fms = median(tf, reps);
        printf("{\"bench\": \"linear_ce\", \"impl\": \"%s\", \"N\": %lld, \"D\": %lld, \"V\": "
               "%lld, \"dtype\": \"f32\", \"ms\": %.2f, \"fwd_ms\": %.2f, \"gflops\": %.2f, "
               "\"peak_rss_added_mb\": %.1f, \"loss\": %.6f}\n",
               path == 0 ? "chunked" : "unfused", (long long)N, (long long)D, (long long)V, ms,
               fms, flops / ms * 1e-6, (double)peak_kb / 1024.0, loss[path]);
        fflush(stdout);
    }
    bn_release(x);
    bn_release(w);
    bn_release(t);
}

int main(int argc, char **argv)
{
    int reps = argc > 1 ? atoi(argv[1]) : 5;
    if (reps < 1 || reps > 64) reps = 5;
    int64_t N = 2048, D = 256, V = 8192;
    if (argc > 4) N = atoll(argv[2]), D = atoll(argv[3]), V = atoll(argv[4]);
    if (N < 1 || D < 1 || V < 1) {
        fprintf(stderr, "bench_transformer_ops: N, D and V must be >= 1\n");
        return 2;
    }
    bench_rope(reps);
    bench_glu(reps);
    bench_linear_ce(reps, N, D, V);
    return 0;
}
