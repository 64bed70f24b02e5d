/* bench/bench_util.h — the clock and sort helpers every benchmark shares: a monotonic clock in
 * milliseconds and a comparison for qsort'ing times into medians. Header-only (static inline),
 * so the OpenBLAS driver that bench/vs_openblas.sh compiles on its own can use it too. */
#ifndef BORN_BENCH_UTIL_H
#define BORN_BENCH_UTIL_H

#include <time.h>

static inline double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static inline int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

#endif
