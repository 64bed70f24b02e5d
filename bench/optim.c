/* bench/optim.c — speed of the fused optimizer updates (issue 4): one Adam step (bn_optim_step:
 * per-step scalars on the host, then the CPU backend's multi-tensor update) over one f32
 * parameter of 1M and 10M elements, on 1 and 2 threads, beside a plain streaming loop that moves
 * the same bytes (reads 4 arrays, writes 3: the memory traffic Adam cannot avoid), so the figure
 * reads as a fraction of what the memory system gives. One JSON line per (n, threads):
 *   {"bench":"optim","op":"adam","dtype":"f32","n":N,"threads":T,"reps":R,"ms":median,
 *    "gbps":28 n / ms,"stream_ms":median,"stream_gbps":…,"ratio":gbps / stream_gbps}
 * ms is the median of R timed steps after one warm-up step; gbps counts the bytes Adam reads and
 * writes (param, grad, exp_avg, exp_avg_sq read; param, exp_avg, exp_avg_sq written: 7 x 4 bytes
 * per element). --device cuda runs the steps on cuda:0 instead (synchronising after each one).
 *
 * usage: bench_optim [--quick] [--reps R] [--threads T] [--n N] [--device cpu|cuda] */
#include "born/born.h"

#include "bench_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define ADAM_BYTES_PER_ELEM 28.0

/* p += s * g, m = m * 0.9 + g, v = v * 0.999 + g * g: 4 arrays read, 3 written */
static void stream_loop(float *p, const float *g, float *m, float *v, int64_t n)
{
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
        float gi = g[i];
        m[i] = m[i] * 0.9f + gi;
        v[i] = v[i] * 0.999f + gi * gi;
        p[i] = p[i] + 1e-3f * gi;
    }
}

static double median_of(double *t, int n)
{
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    return t[n / 2];
}

/* median ms of reps Adam steps over one n-element f32 parameter on device d */
static double time_adam(int64_t n, int reps, bn_device d, bool sync)
{
    bn_scope_begin();
    bn_tensor *p = bn_tensor_to(bn_randn(BN_SHAPE(n), BN_F32), d);
    bn_tensor *g = bn_tensor_to(bn_randn(BN_SHAPE(n), BN_F32), d);
    double ms = -1;
    if (p && g && bn_set_requires_grad(p, true) == BN_OK && bn_set_grad(p, g) == BN_OK) {
        bn_optim *o = bn_optim_adam_params(&p, 1, (bn_adam_opts){.lr = 1e-3});
        double *t = malloc(sizeof(double) * (size_t)reps);
        if (o && t && bn_optim_step(o) == BN_OK) {
            if (sync) bn_cuda_synchronize(d.index);
            for (int r = 0; r < reps; r++) {
                double t0 = now_ms();
                bn_optim_step(o);
                if (sync) bn_cuda_synchronize(d.index);
                t[r] = now_ms() - t0;
            }
            ms = median_of(t, reps);
        }
        if (!o) fprintf(stderr, "bench_optim: %s\n", bn_error_message());
        free(t);
        bn_optim_free(o);
    } else {
        fprintf(stderr, "bench_optim: %s\n", bn_error_message());
    }
    bn_scope_end();
    return ms;
}

static double time_stream(int64_t n, int reps)
{
    float *a[4];
    for (int k = 0; k < 4; k++) {
        a[k] = malloc(sizeof(float) * (size_t)n);
        if (!a[k]) return -1;
        for (int64_t i = 0; i < n; i++) a[k][i] = (float)((i * (k + 3)) % 17) * 0.01f;
    }
    double *t = malloc(sizeof(double) * (size_t)reps);
    stream_loop(a[0], a[1], a[2], a[3], n);
    for (int r = 0; r < reps; r++) {
        double t0 = now_ms();
        stream_loop(a[0], a[1], a[2], a[3], n);
        t[r] = now_ms() - t0;
    }
    double ms = median_of(t, reps);
    free(t);
    for (int k = 0; k < 4; k++) free(a[k]);
    return ms;
}

int main(int argc, char **argv)
{
    int reps = 0, only_threads = 0;
    int64_t only_n = 0;
    bool quick = false, cuda = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            quick = true;
        else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            only_threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--n") == 0 && i + 1 < argc)
            only_n = atoll(argv[++i]);
        else if (strcmp(argv[i], "--device") == 0 && i + 1 < argc)
            cuda = strcmp(argv[++i], "cuda") == 0;
        else {
            fprintf(stderr, "usage: bench_optim [--quick] [--reps R] [--threads T] [--n N] "
                            "[--device cpu|cuda]\n");
            return 2;
        }
    }
    const int64_t sizes[] = {1000000, 10000000};
    bn_device dev = cuda ? bn_cuda(0) : bn_cpu();
    if (cuda && !bn_device_available(dev)) {
        fprintf(stderr, "bench_optim: cuda:0 is not available\n");
        return 1;
    }
    for (int s = 0; s < 2; s++) {
        int64_t n = only_n ? only_n : sizes[s];
        if (s == 1 && (quick || only_n)) break;
        int r = reps > 0 ? reps : (n >= 10000000 ? 15 : 51);
        for (int threads = 1; threads <= (cuda ? 1 : 2); threads++) {
            if (!cuda && only_threads && threads != only_threads) continue;
            if (!cuda && bn_set_num_threads(threads) != BN_OK) continue;
#ifdef _OPENMP
            omp_set_num_threads(threads);
#endif
            double ms = time_adam(n, r, dev, cuda);
            if (ms < 0) return 1;
            double gbps = ADAM_BYTES_PER_ELEM * (double)n / ms * 1e-6;
            if (cuda) {
                printf("{\"bench\":\"optim\",\"op\":\"adam\",\"dtype\":\"f32\",\"device\":\"cuda\","
                       "\"n\":%lld,\"reps\":%d,\"ms\":%.4f,\"gbps\":%.1f}\n",
                       (long long)n, r, ms, gbps);
                continue;
            }
            double sms = time_stream(n, r);
            double sgbps = ADAM_BYTES_PER_ELEM * (double)n / sms * 1e-6;
            printf("{\"bench\":\"optim\",\"op\":\"adam\",\"dtype\":\"f32\",\"n\":%lld,"
                   "\"threads\":%d,\"reps\":%d,\"ms\":%.4f,\"gbps\":%.2f,\"stream_ms\":%.4f,"
                   "\"stream_gbps\":%.2f,\"ratio\":%.2f}\n",
                   (long long)n, threads, r, ms, gbps, sms, sgbps, gbps / sgbps);
            fflush(stdout);
        }
    }
    return 0;
}
