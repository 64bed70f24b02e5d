/* bench/bench_matmul.h — the timed loop bench_matmul and bench_gemm share: median ms of reps
 * products a @ b after one warm-up (page faults, thread start); < 0 on error, with the error
 * printed under the benchmark's name. Call it inside a scope. */
#ifndef BORN_BENCH_MATMUL_H
#define BORN_BENCH_MATMUL_H

#include "born/born.h"

#include <stdio.h>
#include <stdlib.h>

#include "bench_util.h"

#define BENCH_MATMUL_MAX_REPS 101

static inline double bench_matmul_median_ms(const char *name, const bn_tensor *a,
                                            const bn_tensor *b, int reps)
{
    double times[BENCH_MATMUL_MAX_REPS], median = -1;
    if (reps > BENCH_MATMUL_MAX_REPS) reps = BENCH_MATMUL_MAX_REPS;
    if (reps < 1) reps = 1;
    bn_tensor *warm = bn_matmul(a, b);
    if (warm) {
        for (int r = 0; r < reps; r++) {
            double t0 = now_ms();
            bn_tensor *c = bn_matmul(a, b);
            times[r] = now_ms() - t0;
            bn_release(bn_scope_keep(c));
        }
        qsort(times, (size_t)reps, sizeof times[0], cmp_double);
        median = times[reps / 2];
    }
    if (bn_error_code() != BN_OK) fprintf(stderr, "%s: %s\n", name, bn_error_message());
    return median;
}

#endif
