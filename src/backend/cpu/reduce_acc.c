/* backend/cpu/reduce_acc.c — the reduce kernel's accumulators (see reduce_acc.h). */
#include "backend/cpu/reduce_acc.h"
#include "backend/cpu/reduce_io.h"

#include <math.h>

racc bn_red_acc_init(red_kind k)
{
    racc s = {0, 0, 0, -1};
    switch (k) {
    case K_PROD: s.a = 1, s.v = 1; break;
    case K_MAX: s.a = -INFINITY, s.v = INT64_MIN; break;
    case K_MIN: s.a = INFINITY, s.v = INT64_MAX; break;
    case K_ALL: s.v = 1; break;
    default: break;
    }
    return s;
}

/* ---- one accumulator over a chunk of values (line walk) ---------------------------------- */
static double sum_lanes(const double *x, int64_t n)
{
    double l[8] = {0};
    int64_t k = 0;
    for (; k + 8 <= n; k += 8)
        for (int j = 0; j < 8; j++) l[j] += x[k + j];
    double t = 0;
    for (; k < n; k++) t += x[k];
    return ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7])) + t;
}

/* x[0..n) are the values at reduced indices r0 .. r0+n (r0 is used by argmax/argmin). The loops
 * work on locals: the compiler must assume s could alias x and would reload it every step. */
void bn_red_chunk_f64(red_kind k, racc *s, const double *x, int64_t n, int64_t r0, double c)
{
    switch (k) {
    case K_SUM: s->a += sum_lanes(x, n); break;
    case K_PROD: {
        double p = s->a;
        for (int64_t j = 0; j < n; j++) p *= x[j];
        s->a = p;
        break;
    }
    case K_MAX: s->a = bn_red_max_nan(x, n, s->a); break;
    case K_MIN: s->a = bn_red_min_nan(x, n, s->a); break;
    case K_ARGMAX:
    case K_ARGMIN: {
        double best = s->a;
        int64_t at = s->i;
        bool want_max = k == K_ARGMAX;
        for (int64_t j = 0; j < n; j++) {
            double v = x[j];
            if (at < 0 || (want_max ? v > best : v < best) || (v != v && best == best)) {
                best = v;
                at = r0 + j;
            }
        }
        s->a = best;
        s->i = at;
        break;
    }
    case K_SQDEV: {
        double la[4] = {0}, lb[4] = {0};
        int64_t j = 0;
        for (; j + 4 <= n; j += 4)
            for (int q = 0; q < 4; q++) {
                double d = x[j + q] - c;
                la[q] += d;
                lb[q] += d * d;
            }
        for (; j < n; j++) {
            double d = x[j] - c;
            la[0] += d;
            lb[0] += d * d;
        }
        s->a += (la[0] + la[1]) + (la[2] + la[3]);
        s->b += (lb[0] + lb[1]) + (lb[2] + lb[3]);
        break;
    }
    case K_SUMEXP: {
        double t = 0;
        for (int64_t j = 0; j < n; j++) t += exp(x[j] - c);
        s->a += t;
        break;
    }
    case K_ALL:
    case K_ANY: {
        bool any_zero = false, any_nonzero = false;
        for (int64_t j = 0; j < n; j++) {
            any_zero |= x[j] == 0;
            any_nonzero |= x[j] != 0;
        }
        if (k == K_ALL && any_zero) s->v = 0;
        if (k == K_ANY && any_nonzero) s->v = 1;
        break;
    }
    }
}

void bn_red_chunk_i64(red_kind k, racc *s, const int64_t *x, int64_t n, int64_t r0)
{
    switch (k) {
    case K_SUM: {
        uint64_t t = 0;
        for (int64_t j = 0; j < n; j++) t += (uint64_t)x[j];
        s->v = bn_red_wrap_add(s->v, (int64_t)t);
        break;
    }
    case K_PROD: {
        uint64_t p = (uint64_t)s->v;
        for (int64_t j = 0; j < n; j++) p *= (uint64_t)x[j];
        s->v = (int64_t)p;
        break;
    }
    case K_MAX:
    case K_MIN: {
        int64_t m = s->v;
        if (k == K_MAX)
            for (int64_t j = 0; j < n; j++) m = x[j] > m ? x[j] : m;
        else
            for (int64_t j = 0; j < n; j++) m = x[j] < m ? x[j] : m;
        s->v = m;
        break;
    }
    case K_ARGMAX:
    case K_ARGMIN: {
        int64_t best = s->v, at = s->i;
        bool want_max = k == K_ARGMAX;
        for (int64_t j = 0; j < n; j++)
            if (at < 0 || (want_max ? x[j] > best : x[j] < best)) best = x[j], at = r0 + j;
        s->v = best;
        s->i = at;
        break;
    }
    case K_ALL:
    case K_ANY: {
        bool any_zero = false, any_nonzero = false;
        for (int64_t j = 0; j < n; j++) {
            any_zero |= x[j] == 0;
            any_nonzero |= x[j] != 0;
        }
        if (k == K_ALL && any_zero) s->v = 0;
        if (k == K_ANY && any_nonzero) s->v = 1;
        break;
    }
    default: BN_ASSERT(0 && "float-only reduction on integers");
    }
}

/* ---- many accumulators, one value each (tile walk) --------------------------------------- */
void bn_red_tile_init(red_kind k, const rtile *t, int64_t n)
{
    racc s = bn_red_acc_init(k);
    for (int64_t j = 0; j < n; j++) t->a[j] = s.a, t->b[j] = s.b, t->v[j] = s.v, t->i[j] = s.i;
}

void bn_red_tile_get(const rtile *t, int64_t j, racc *s)
{
    s->a = t->a[j], s->b = t->b[j], s->v = t->v[j], s->i = t->i[j];
}

/* The row loops take the tile's arrays as restrict parameters so they vectorise. */
static void row_f64_arrays(red_kind k, double *restrict a, double *restrict b, int64_t *restrict v,
                           int64_t *restrict at, const double *restrict x, int64_t n, int64_t r,
                           const double *restrict c)
{
    switch (k) {
    case K_SUM:
        for (int64_t j = 0; j < n; j++) a[j] += x[j];
        break;
    case K_PROD:
        for (int64_t j = 0; j < n; j++) a[j] *= x[j];
        break;
    case K_MAX: /* NaN sticks: once a[j] is NaN, neither test replaces it */
        for (int64_t j = 0; j < n; j++) a[j] = x[j] > a[j] || x[j] != x[j] ? x[j] : a[j];
        break;
    case K_MIN:
        for (int64_t j = 0; j < n; j++) a[j] = x[j] < a[j] || x[j] != x[j] ? x[j] : a[j];
        break;
    case K_ARGMAX:
        for (int64_t j = 0; j < n; j++)
            if (at[j] < 0 || x[j] > a[j] || (x[j] != x[j] && a[j] == a[j])) a[j] = x[j], at[j] = r;
        break;
    case K_ARGMIN:
        for (int64_t j = 0; j < n; j++)
            if (at[j] < 0 || x[j] < a[j] || (x[j] != x[j] && a[j] == a[j])) a[j] = x[j], at[j] = r;
        break;
    case K_SQDEV:
        for (int64_t j = 0; j < n; j++) {
            double d = x[j] - c[j];
            a[j] += d;
            b[j] += d * d;
        }
        break;
    case K_SUMEXP:
        for (int64_t j = 0; j < n; j++) a[j] += exp(x[j] - c[j]);
        break;
    case K_ALL:
        for (int64_t j = 0; j < n; j++) v[j] &= x[j] != 0;
        break;
    case K_ANY:
        for (int64_t j = 0; j < n; j++) v[j] |= x[j] != 0;
        break;
    }
}

void bn_red_row_f64(red_kind k, const rtile *t, const double *x, int64_t n, int64_t r,
                    const double *c)
{
    row_f64_arrays(k, t->a, t->b, t->v, t->i, x, n, r, c);
}

static void row_i64_arrays(red_kind k, int64_t *restrict v, int64_t *restrict at,
                           const int64_t *restrict x, int64_t n, int64_t r)
{
    switch (k) {
    case K_SUM:
        for (int64_t j = 0; j < n; j++) v[j] = bn_red_wrap_add(v[j], x[j]);
        break;
    case K_PROD:
        for (int64_t j = 0; j < n; j++) v[j] = bn_red_wrap_mul(v[j], x[j]);
        break;
    case K_MAX:
        for (int64_t j = 0; j < n; j++) v[j] = x[j] > v[j] ? x[j] : v[j];
        break;
    case K_MIN:
        for (int64_t j = 0; j < n; j++) v[j] = x[j] < v[j] ? x[j] : v[j];
        break;
    case K_ARGMAX:
        for (int64_t j = 0; j < n; j++)
            if (at[j] < 0 || x[j] > v[j]) v[j] = x[j], at[j] = r;
        break;
    case K_ARGMIN:
        for (int64_t j = 0; j < n; j++)
            if (at[j] < 0 || x[j] < v[j]) v[j] = x[j], at[j] = r;
        break;
    case K_ALL:
        for (int64_t j = 0; j < n; j++) v[j] &= x[j] != 0;
        break;
    case K_ANY:
        for (int64_t j = 0; j < n; j++) v[j] |= x[j] != 0;
        break;
    default: BN_ASSERT(0 && "float-only reduction on integers");
    }
}

void bn_red_row_i64(red_kind k, const rtile *t, const int64_t *x, int64_t n, int64_t r)
{
    row_i64_arrays(k, t->v, t->i, x, n, r);
}

/* Folds t (a later block) into s; ties keep s, so argmax/argmin keep the first occurrence. */
void bn_red_acc_combine(red_kind k, bool is_int, racc *s, const racc *t)
{
    switch (k) {
    case K_SUM:
        s->a += t->a;
        s->v = bn_red_wrap_add(s->v, t->v);
        break;
    case K_PROD:
        s->a *= t->a;
        s->v = bn_red_wrap_mul(s->v, t->v);
        break;
    case K_MAX:
        if (t->a > s->a || t->a != t->a) s->a = t->a;
        if (t->v > s->v) s->v = t->v;
        break;
    case K_MIN:
        if (t->a < s->a || t->a != t->a) s->a = t->a;
        if (t->v < s->v) s->v = t->v;
        break;
    case K_ARGMAX:
    case K_ARGMIN: {
        if (t->i < 0) break;
        bool better;
        if (is_int)
            better = k == K_ARGMAX ? t->v > s->v : t->v < s->v;
        else
            better = (k == K_ARGMAX ? t->a > s->a : t->a < s->a) || (t->a != t->a && s->a == s->a);
        if (s->i < 0 || better) *s = *t;
        break;
    }
    case K_SQDEV:
        s->a += t->a;
        s->b += t->b;
        break;
    case K_SUMEXP: s->a += t->a; break;
    case K_ALL: s->v = s->v && t->v; break;
    case K_ANY: s->v = s->v || t->v; break;
    }
}
