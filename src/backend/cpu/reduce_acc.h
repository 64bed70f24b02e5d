/* backend/cpu/reduce_acc.h — the reduce kernel's accumulators: what one pass of a reduction
 * keeps per output, how values are folded in (a chunk into one accumulator for the line walk, a
 * row into many for the tile walk) and how the accumulators of consecutive blocks combine.
 * Floats accumulate in double, integers (and bool) in wrapping int64. */
#ifndef BORN_CPU_REDUCE_ACC_H
#define BORN_CPU_REDUCE_ACC_H

#include "backend/backend.h"

/* What one pass accumulates. */
typedef enum red_kind {
    K_SUM,
    K_PROD,
    K_MAX,
    K_MIN,
    K_ARGMAX,
    K_ARGMIN,
    K_SQDEV,  /* a = sum(x - c), b = sum((x - c)^2) */
    K_SUMEXP, /* a = sum(exp(x - c)) */
    K_ALL,
    K_ANY
} red_kind;

/* One output's accumulator: floats use a (and b), integers v; argmax/argmin keep the index in
 * i (-1 while nothing was seen). */
typedef struct racc {
    double a, b;
    int64_t v, i;
} racc;

racc bn_red_acc_init(red_kind k);
/* Folds x[0..n), the values at reduced indices r0 .. r0+n, into s; c is the pass-2 centre. */
void bn_red_chunk_f64(red_kind k, racc *s, const double *x, int64_t n, int64_t r0, double c);
void bn_red_chunk_i64(red_kind k, racc *s, const int64_t *x, int64_t n, int64_t r0);
/* Folds t (the next block of the same output) into s; ties keep s (first occurrence). */
void bn_red_acc_combine(red_kind k, bool is_int, racc *s, const racc *t);

/* A tile of n accumulators as arrays, so row updates vectorise: accumulator j takes x[j], the
 * value at reduced index r; c[j] is its pass-2 centre. */
typedef struct rtile {
    double *a, *b;
    int64_t *v, *i;
} rtile;

void bn_red_tile_init(red_kind k, const rtile *t, int64_t n);
void bn_red_tile_get(const rtile *t, int64_t j, racc *s);
void bn_red_row_f64(red_kind k, const rtile *t, const double *x, int64_t n, int64_t r,
                    const double *c);
void bn_red_row_i64(red_kind k, const rtile *t, const int64_t *x, int64_t n, int64_t r);

#endif
