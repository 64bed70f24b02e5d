/* bench/elementwise.c — speed of the vectorised f32 element-wise math (issue 4): bn_exp,
 * bn_tanh, bn_sigmoid, bn_gelu and bn_softmax (over rows of 1024) on 1M and 16M elements, on 1
 * and 2 threads, beside a plain libm loop doing the same work (the scalar path born had before:
 * expf / tanhf / 1/(1+expf(-x)) / erff per element, OpenMP-split like born's; softmax as three
 * passes per row with expf). One JSON line per (op, n, threads):
 *   {"bench":"elementwise","op":"exp","dtype":"f32","n":N,"threads":T,"isa":"avx512","reps":R,
 *    "ms":median,"gbps":8 n / ms,"libm_ms":median,"libm_gbps":…,"speedup":libm_ms / ms}
 * ms is the median of R timed calls (each allocates its output, as a caller's would) after one
 * warm-up call; gbps counts the bytes read and written (4 + 4 per element). malloc is told to
 * keep freed memory (no mmap per call), so a call's output reuses warm pages and the figure is
 * the kernel's, not the page faults' of a fresh 64 MB buffer (both sides alike).
 *
 * usage: bench_elementwise [--quick] [--reps R] [--threads T]
 *   --quick: 1M only. BORN_VMATH_ISA=portable|avx2|avx512 forces a variant; "isa" says which
 *   one ran. */
#include "born/born.h"

#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>

#include "bench_util.h"
#endif

typedef enum { OP_EXP, OP_TANH, OP_SIGMOID, OP_GELU, OP_SOFTMAX, OP_COUNT } bench_op;
static const char *const OP_NAMES[OP_COUNT] = {"exp", "tanh", "sigmoid", "gelu", "softmax"};
#define SOFTMAX_ROW 1024

static bn_tensor *born_op(bench_op op, const bn_tensor *x)
{
    switch (op) {
    case OP_EXP: return bn_exp(x);
    case OP_TANH: return bn_tanh(x);
    case OP_SIGMOID: return bn_sigmoid(x);
    case OP_GELU: return bn_gelu(x);
    default: return bn_softmax(x, -1);
    }
}

/* the scalar libm path on n floats (y is fresh for each call, like born's output) */
static void libm_op(bench_op op, const float *x, float *y, int64_t n)
{
    if (op == OP_SOFTMAX) {
#pragma omp parallel for schedule(static)
        for (int64_t r = 0; r < n / SOFTMAX_ROW; r++) {
            const float *xr = x + r * SOFTMAX_ROW;
            float *yr = y + r * SOFTMAX_ROW;
            float m = -INFINITY;
            for (int j = 0; j < SOFTMAX_ROW; j++) m = xr[j] > m ? xr[j] : m;
            double s = 0;
            for (int j = 0; j < SOFTMAX_ROW; j++) s += yr[j] = expf(xr[j] - m);
            for (int j = 0; j < SOFTMAX_ROW; j++) yr[j] = (float)(yr[j] / s);
        }
        return;
    }
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        switch (op) {
        case OP_EXP: y[i] = expf(v); break;
        case OP_TANH: y[i] = tanhf(v); break;
        case OP_SIGMOID: y[i] = 1.0f / (1.0f + expf(-v)); break;
        default: y[i] = 0.5f * v * (1.0f + erff(v * 0.70710678f)); break;
        }
    }
}

static double median(double *t, int reps)
{
    qsort(t, (size_t)reps, sizeof t[0], cmp_double);
    return t[reps / 2];
}

/* median ms of born and of the libm loop on the same input */
static void time_op(bench_op op, int64_t n, int reps, double *born_ms, double *libm_ms)
{
    double times[101];
    bn_scope_begin();
    bn_tensor *x = op == OP_SOFTMAX ? bn_randn(BN_SHAPE(n / SOFTMAX_ROW, SOFTMAX_ROW), BN_F32)
                                    : bn_randn(BN_SHAPE(n), BN_F32);
    bn_release(bn_scope_keep(born_op(op, x)));
    for (int r = 0; r < reps; r++) {
        double t0 = now_ms();
        bn_tensor *y = born_op(op, x);
        times[r] = now_ms() - t0;
        bn_release(bn_scope_keep(y));
    }
    *born_ms = median(times, reps);
    const float *px = bn_tensor_data_f32(x);
    for (int r = 0; r <= reps; r++) {
        double t0 = now_ms();
        float *y = malloc((size_t)n * sizeof(float));
        if (!y) break;
        libm_op(op, px, y, n);
        double t = now_ms() - t0;
        free(y);
        if (r > 0) times[r - 1] = t; /* the first is a warm-up */
    }
    *libm_ms = median(times, reps);
    if (bn_error_code() != BN_OK) fprintf(stderr, "bench_elementwise: %s\n", bn_error_message());
    bn_scope_end();
}

static const char *isa_label(void)
{
    const char *env = getenv("BORN_VMATH_ISA");
    if (env && *env) return env;
    bn_cpu_features f = bn_cpu_features_detect();
    return f.avx512f ? "avx512" : f.avx2 && f.fma ? "avx2" : "portable";
}

static void run(bench_op op, int64_t n, int threads, int reps)
{
    if (bn_set_num_threads(threads) != BN_OK) return;
#ifdef _OPENMP
    omp_set_num_threads(threads);
#endif
    if (reps <= 0) reps = n > 4000000 ? 11 : 31;
    if (reps > 101) reps = 101;
    double ms, libm_ms;
    time_op(op, n, reps, &ms, &libm_ms);
    double bytes = 8.0 * (double)n;
    printf("{\"bench\":\"elementwise\",\"op\":\"%s\",\"dtype\":\"f32\",\"n\":%lld,\"threads\":%d,"
           "\"isa\":\"%s\",\"reps\":%d,\"ms\":%.4f,\"gbps\":%.2f,\"libm_ms\":%.4f,"
           "\"libm_gbps\":%.2f,\"speedup\":%.2f}\n",
           OP_NAMES[op], (long long)n, threads, isa_label(), reps, ms, bytes / ms * 1e-6, libm_ms,
           bytes / libm_ms * 1e-6, libm_ms / ms);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    int reps = 0, only_threads = 0;
    bool quick = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            quick = true;
        else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            only_threads = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_elementwise [--quick] [--reps R] [--threads T]\n");
            return 2;
        }
    }
    mallopt(M_MMAP_THRESHOLD, 1 << 30);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
    bn_manual_seed(0);
    const int64_t sizes[2] = {1 << 20, 1 << 24};
    for (int s = 0; s < (quick ? 1 : 2); s++)
        for (int t = 1; t <= 2; t++) {
            if (only_threads && t != only_threads) continue;
            for (int op = 0; op < OP_COUNT; op++) run((bench_op)op, sizes[s], t, reps);
        }
    return 0;
}
