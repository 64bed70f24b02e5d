/* bench/conv.c — times the conv layers of the Fashion-MNIST CNN (issue 3) forward and backward
 * and prints one JSON line per (layer, pass, threads):
 *   {"bench":"conv2d","x":[N,C,H,W],"w":[O,C,KH,KW],"pass":"forward","threads":T,"ms":median}
 * forward: bn_conv2d with a bias; backward: the gradients of x, w and b from an upstream
 * gradient of ones (bn_autograd_grad), not counting the forward. ms is the median of the
 * repetitions after one warm-up.
 *
 * With --infer B it times instead the whole Fashion-MNIST CNN's inference (bn_model_build("cnn"),
 * eval mode, no grad) on a random batch of B images, one JSON line per thread count:
 *   {"bench":"cnn_infer","batch":B,"threads":T,"ms":median,"images_per_second":...}
 * (bench/vs_torch_infer.sh runs it beside PyTorch).
 *
 * usage: bench_conv [--reps R] [--threads N] [--infer B]
 *        (default: 1 thread and bn_num_threads()) */
#include "born/born.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"

/* One timed pass: forward (backward = false) or the three gradients. Returns ms, < 0 on error. */
static double one_pass(bn_tensor *x, bn_tensor *w, bn_tensor *b, bool backward)
{
    bn_scope_begin();
    double ms = -1;
    double t0 = now_ms();
    bn_tensor *y = bn_conv2d(x, w, b, (bn_conv_opts){0});
    if (y && !backward) ms = now_ms() - t0;
    if (y && backward) {
        bn_tensor *ones = bn_ones(bn_shape_of(y), BN_F32);
        bn_tensor *in[3] = {x, w, b}, *grads[3] = {0};
        t0 = now_ms();
        if (bn_autograd_grad(&y, &ones, 1, in, 3, grads, (bn_backward_opts){0}) == BN_OK)
            ms = now_ms() - t0; /* the gradients belong to the scope */
    }
    if (ms < 0) fprintf(stderr, "bench_conv: %s\n", bn_error_message());
    bn_scope_end();
    return ms;
}

static void run(const int64_t *xs, const int64_t *ws, int threads, int reps)
{
    if (bn_set_num_threads(threads) != BN_OK) return;
    bn_scope_begin();
    bn_manual_seed(1);
    bn_tensor *x = bn_randn(BN_SHAPE(xs[0], xs[1], xs[2], xs[3]), BN_F32);
    bn_tensor *w = bn_randn(BN_SHAPE(ws[0], ws[1], ws[2], ws[3]), BN_F32);
    bn_tensor *b = bn_randn(BN_SHAPE(ws[0]), BN_F32);
    bn_set_requires_grad(x, true);
    bn_set_requires_grad(w, true);
    bn_set_requires_grad(b, true);
    static const char *const passes[2] = {"forward", "backward"};
    for (int p = 0; p < 2; p++) {
        double times[64];
        if (one_pass(x, w, b, p == 1) < 0) break; /* warm-up */
        for (int r = 0; r < reps; r++) times[r] = one_pass(x, w, b, p == 1);
        qsort(times, (size_t)reps, sizeof times[0], cmp_double);
        printf("{\"bench\":\"conv2d\",\"x\":[%lld,%lld,%lld,%lld],\"w\":[%lld,%lld,%lld,%lld],"
               "\"pass\":\"%s\",\"threads\":%d,\"ms\":%.3f}\n",
               (long long)xs[0], (long long)xs[1], (long long)xs[2], (long long)xs[3],
               (long long)ws[0], (long long)ws[1], (long long)ws[2], (long long)ws[3], passes[p],
               threads, times[reps / 2]);
        fflush(stdout);
    }
    bn_scope_end();
}

/* The CNN's forward on a (batch, 1, 28, 28) random batch, timed. */
static void run_infer(int64_t batch, int threads, int reps)
{
    if (bn_set_num_threads(threads) != BN_OK) return;
    bn_manual_seed(1);
    bn_module *m = bn_model_build("cnn");
    if (!m) {
        fprintf(stderr, "bench_conv: %s\n", bn_error_message());
        return;
    }
    bn_module_eval(m);
    bn_scope_begin();
    bn_tensor *x = bn_randn(BN_SHAPE(batch, 1, 28, 28), BN_F32);
    double times[65];
    bool ok = true;
    bn_no_grad_begin();
    for (int r = 0; r <= reps && ok; r++) { /* r == 0: warm-up */
        bn_scope_begin();
        double t0 = now_ms();
        ok = bn_module_forward(m, x) != NULL;
        times[r] = now_ms() - t0;
        bn_scope_end();
    }
    bn_no_grad_end();
    bn_scope_end();
    bn_module_free(m);
    if (!ok) {
        fprintf(stderr, "bench_conv: %s\n", bn_error_message());
        return;
    }
    qsort(times + 1, (size_t)reps, sizeof times[0], cmp_double);
    double ms = times[1 + reps / 2];
    printf("{\"bench\":\"cnn_infer\",\"batch\":%lld,\"threads\":%d,\"ms\":%.3f,"
           "\"images_per_second\":%.0f}\n",
           (long long)batch, threads, ms, ms > 0 ? (double)batch * 1e3 / ms : 0.0);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    int reps = 11, fixed_threads = 0;
    int64_t infer = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
            reps = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
            fixed_threads = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--infer") == 0 && i + 1 < argc) {
            infer = atoll(argv[++i]);
        } else {
            fprintf(stderr, "usage: %s [--reps R] [--threads N] [--infer B]\n", argv[0]);
            return 2;
        }
    }
    if (reps < 1) reps = 1;
    if (reps > 64) reps = 64;
    /* the CNN's two conv layers at batch 64 */
    static const int64_t layers[2][2][4] = {{{64, 1, 28, 28}, {32, 1, 3, 3}},
                                            {{64, 32, 13, 13}, {64, 32, 3, 3}}};
    int max_threads = bn_num_threads();
    if (infer > 0) {
        if (fixed_threads > 0 || max_threads == 1) {
            run_infer(infer, fixed_threads > 0 ? fixed_threads : 1, reps);
        } else {
            run_infer(infer, 1, reps);
            run_infer(infer, max_threads, reps);
        }
        return 0;
    }
    for (int l = 0; l < 2; l++) {
        if (fixed_threads > 0) {
            run(layers[l][0], layers[l][1], fixed_threads, reps);
            continue;
        }
        run(layers[l][0], layers[l][1], 1, reps);
        if (max_threads > 1) run(layers[l][0], layers[l][1], max_threads, reps);
    }
    return 0;
}
