/* backend/cpu/reduce_io.h — what the reduction, scan and softmax kernels share: strided runs of
 * any dtype loaded into double (floats) or int64 (integers, bool) scratch and stored back with
 * one rounding, and the dim lists those kernels walk (sorted by stride and coalesced).
 *
 * Working in double for every float dtype keeps one code path per op: f32 sums accumulate in
 * double, f16/bf16 are widened exactly and rounded once when stored. Integers stay in int64 so
 * i64 sums and products are exact (wrapping like PyTorch), never a trip through double. */
#ifndef BORN_CPU_REDUCE_IO_H
#define BORN_CPU_REDUCE_IO_H

#include "backend/backend.h"

#include <math.h>

/* Elements per scratch chunk: small enough for the stack and L1. */
#define BN_RED_CHUNK 256
/* Lines (or reductions) at most this long are walked as tiles of neighbours. */
#define BN_RED_SHORT 16

/* n elements from p (dtype dt, stride in elements) into buf. */
void bn_red_load_f64(const char *p, bn_dtype dt, int64_t stride, int64_t n, double *buf);
void bn_red_load_i64(const char *p, bn_dtype dt, int64_t stride, int64_t n, int64_t *buf);
/* n values from buf to p (dtype dt, stride in elements), each rounded once (integers wrap). */
void bn_red_store_f64(char *p, bn_dtype dt, int64_t stride, int64_t n, const double *buf);
void bn_red_store_i64(char *p, bn_dtype dt, int64_t stride, int64_t n, const int64_t *buf);

/* int64 arithmetic that wraps like PyTorch's (two's complement) without C's signed overflow. */
static inline int64_t bn_red_wrap_add(int64_t a, int64_t b)
{
    return (int64_t)((uint64_t)a + (uint64_t)b);
}
static inline int64_t bn_red_wrap_mul(int64_t a, int64_t b)
{
    return (int64_t)((uint64_t)a * (uint64_t)b);
}

/* max (or min) of m and x[0..n), NaN if any is NaN; four lanes so the loop does not wait on
 * itself. */
static inline double bn_red_max_nan(const double *x, int64_t n, double m)
{
    double l[4] = {m, m, m, m};
    bool nan = m != m;
    int64_t k = 0;
    for (; k + 4 <= n; k += 4)
        for (int q = 0; q < 4; q++) {
            l[q] = x[k + q] > l[q] ? x[k + q] : l[q];
            nan |= x[k + q] != x[k + q];
        }
    for (; k < n; k++) {
        l[0] = x[k] > l[0] ? x[k] : l[0];
        nan |= x[k] != x[k];
    }
    double r = l[0];
    for (int q = 1; q < 4; q++) r = l[q] > r ? l[q] : r;
    return nan ? NAN : r;
}
static inline double bn_red_min_nan(const double *x, int64_t n, double m)
{
    double l[4] = {m, m, m, m};
    bool nan = m != m;
    int64_t k = 0;
    for (; k + 4 <= n; k += 4)
        for (int q = 0; q < 4; q++) {
            l[q] = x[k + q] < l[q] ? x[k + q] : l[q];
            nan |= x[k + q] != x[k + q];
        }
    for (; k < n; k++) {
        l[0] = x[k] < l[0] ? x[k] : l[0];
        nan |= x[k] != x[k];
    }
    double r = l[0];
    for (int q = 1; q < 4; q++) r = l[q] < r ? l[q] : r;
    return nan ? NAN : r;
}

/* A list of dims with their size and strides (in elements) in x and in out. */
typedef struct bn_red_dims {
    int n;
    int64_t size[BN_MAX_DIMS];
    int64_t xs[BN_MAX_DIMS];
    int64_t os[BN_MAX_DIMS];
} bn_red_dims;

/* Appends a dim unless its size is 1 (its strides never matter). */
void bn_red_dims_add(bn_red_dims *d, int64_t size, int64_t xs, int64_t os);
/* Orders the dims by decreasing x stride (so the last is the fastest in x) and merges
 * neighbours that step through memory as one dim in both x and out. */
void bn_red_dims_simplify(bn_red_dims *d);
int64_t bn_red_dims_numel(const bn_red_dims *d);
/* x and out offsets (in elements) of the row-major linear index i over d. */
void bn_red_dims_offsets(const bn_red_dims *d, int64_t i, int64_t *xoff, int64_t *ooff);

/* The lines along one dim of x and out (same shape): cumsum and softmax walk these. Lines are
 * indexed row-major over `other`; line i starts at x offset / out offset given by
 * bn_red_dims_offsets(&other, i, ...) and steps by xs / os for len elements. */
typedef struct bn_red_lines {
    bn_red_dims other;
    int64_t len, xs, os;
    int64_t count; /* number of lines */
    /* Walk a tile of neighbouring lines (along the innermost other dim) together, one row of
     * the tile per index along the line: when those lines sit next to each other in memory (x
     * and out stride 1 there), or when lines are so short (<= BN_RED_SHORT) that walking them
     * one by one would cost more than the values. */
    bool tiled;
    int64_t inner;          /* size of the innermost other dim when tiled */
    int64_t inner_xs, inner_os; /* its strides: the step between neighbouring lines */
} bn_red_lines;

void bn_red_lines_init(bn_red_lines *l, const bn_tview *x, const bn_tview *out, int dim);

#endif
