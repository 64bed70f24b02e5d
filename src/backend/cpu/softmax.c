/* backend/cpu/softmax.c — softmax and log_softmax along one dim.
 *
 * Per line: m = max(x) (NaN propagates), s = sum(exp(x - m)) accumulated in double, then
 * out = exp(x - m) / s, or x - m - log(s). Subtracting the max keeps exp in range; a line of
 * all -inf gives NaN, like PyTorch. f64 uses exp; f32/f16/bf16 use expf (their precision), and
 * every result is rounded once when stored.
 *
 * Lines are walked in groups of cnt: one line at a time along its stride, or — when neighbouring
 * lines sit next to each other in memory (softmax over dim 0 or a middle dim), or lines are very
 * short — a tile of lines advancing one row at a time. A group that fits the thread's scratch buffer is loaded
 * once and exp runs once per element; longer ones stream through the scratch in three passes.
 * Lines are independent, so the thread count never changes a result.
 *
 * f32 lines that are contiguous in x and out (softmax over the last dim) take a fused path on
 * the vectorised math of vmath.h: one pass for the max, one writing exp(x - m) and summing it
 * (f32 lanes per block, double across blocks), one scaling by 1 / sum (or, for log_softmax,
 * writing x - m - log(sum)). */
#include "backend/cpu/cpu_kernels.h"
#include "backend/cpu/iter.h"
#include "backend/cpu/reduce_io.h"
#include "backend/cpu/vmath.h"

#include <math.h>
#include <stdlib.h>

#define SOFTMAX_SCRATCH 65536 /* doubles of scratch per thread (512 KiB) */
#define SOFTMAX_TILE_MAX 128  /* lines per tile */
#define SOFTMAX_TILE_MIN 8

typedef struct softmax_plan {
    bn_red_lines l;
    const char *x;
    char *out;
    bn_dtype dt;
    int64_t es;
    bool log, wide; /* wide: f64, computed with exp rather than expf */
    int64_t tile;   /* lines per tile (tiled walk) */
    bool fused;     /* f32, lines contiguous in x and out: softmax_line_f32 */
} softmax_plan;

/* x and out are (len) contiguous f32: three passes, max, exp-and-sum, scale */
static void softmax_line_f32(const float *x, float *out, int64_t len, bool take_log)
{
    const bn_vm_kernels *k = bn_vm();
    float m = k->max(x, len);
    if (take_log) {
        float ls = (float)log(k->exp_sum(x, NULL, len, m));
        for (int64_t i = 0; i < len; i++) out[i] = (x[i] - m) - ls;
        return;
    }
    float s = (float)k->exp_sum(x, out, len, m);
    for (int64_t i = 0; i < len; i++) out[i] /= s;
}

static double exp_of(const softmax_plan *sp, double d)
{
    return sp->wide ? exp(d) : (double)expf((float)d);
}

/* m[j] = max(m[j], values of line j) over n values laid out as rows of cnt. */
static void max_rows(const double *v, int64_t n, int64_t cnt, double *m)
{
    if (cnt == 1) {
        m[0] = bn_red_max_nan(v, n, m[0]);
        return;
    }
    for (int64_t q = 0; q < n; q += cnt)
        for (int64_t j = 0; j < cnt; j++)
            m[j] = v[q + j] > m[j] || v[q + j] != v[q + j] ? v[q + j] : m[j];
}

/* s[j] += sum of exp(v - m[j]) over line j; with keep, v is replaced by those exps. */
static void exp_rows(const softmax_plan *sp, double *v, int64_t n, int64_t cnt, const double *m,
                     double *s, bool keep)
{
    if (cnt == 1) {
        double t = s[0], m0 = m[0];
        for (int64_t q = 0; q < n; q++) {
            double e = exp_of(sp, v[q] - m0);
            if (keep) v[q] = e;
            t += e;
        }
        s[0] = t;
        return;
    }
    for (int64_t q = 0; q < n; q += cnt)
        for (int64_t j = 0; j < cnt; j++) {
            double e = exp_of(sp, v[q + j] - m[j]);
            if (keep) v[q + j] = e;
            s[j] += e;
        }
}

/* Rows k0 .. k0+nk of cnt lines starting at x (line j at x + j * l.inner_xs) into buf,
 * row-major. */
static void load_rows(const softmax_plan *sp, const char *x, int64_t k0, int64_t nk, int64_t cnt,
                      double *buf)
{
    if (cnt == 1) {
        bn_red_load_f64(x + k0 * sp->l.xs * sp->es, sp->dt, sp->l.xs, nk, buf);
        return;
    }
    for (int64_t k = 0; k < nk; k++)
        bn_red_load_f64(x + (k0 + k) * sp->l.xs * sp->es, sp->dt, sp->l.inner_xs, cnt,
                        buf + k * cnt);
}

static void store_rows(const softmax_plan *sp, char *out, int64_t k0, int64_t nk, int64_t cnt,
                       const double *buf)
{
    if (cnt == 1) {
        bn_red_store_f64(out + k0 * sp->l.os * sp->es, sp->dt, sp->l.os, nk, buf);
        return;
    }
    for (int64_t k = 0; k < nk; k++)
        bn_red_store_f64(out + (k0 + k) * sp->l.os * sp->es, sp->dt, sp->l.inner_os, cnt,
                         buf + k * cnt);
}

/* buf holds exp(x - m) (softmax) or x (log_softmax) as rows of cnt: the final values. */
static void finish_rows(const softmax_plan *sp, double *buf, int64_t n, int64_t cnt,
                        const double *m, const double *s)
{
    double shift[SOFTMAX_TILE_MAX];
    for (int64_t j = 0; j < cnt; j++) shift[j] = sp->log ? log(s[j]) : s[j];
    if (cnt == 1) {
        double m0 = m[0], sh = shift[0];
        if (sp->log)
            for (int64_t q = 0; q < n; q++) buf[q] = buf[q] - m0 - sh;
        else
            for (int64_t q = 0; q < n; q++) buf[q] /= sh;
        return;
    }
    for (int64_t q = 0; q < n; q += cnt)
        for (int64_t j = 0; j < cnt; j++)
            buf[q + j] = sp->log ? buf[q + j] - m[j] - shift[j] : buf[q + j] / shift[j];
}

/* cnt lines (cnt <= SOFTMAX_TILE_MAX) from x to out, with cap doubles of scratch in buf. */
static void softmax_group(const softmax_plan *sp, const char *x, char *out, int64_t cnt,
                          double *buf, int64_t cap)
{
    int64_t len = sp->l.len;
    double m[SOFTMAX_TILE_MAX], s[SOFTMAX_TILE_MAX], unused_sums[SOFTMAX_TILE_MAX];
    for (int64_t j = 0; j < cnt; j++) m[j] = -INFINITY, s[j] = 0, unused_sums[j] = 0;
    if (len * cnt <= cap) { /* everything in scratch: one load, one exp per element */
        load_rows(sp, x, 0, len, cnt, buf);
        max_rows(buf, len * cnt, cnt, m);
        exp_rows(sp, buf, len * cnt, cnt, m, s, !sp->log); /* log_softmax keeps x in buf */
        finish_rows(sp, buf, len * cnt, cnt, m, s);
        store_rows(sp, out, 0, len, cnt, buf);
        return;
    }
    /* streaming: max, then sum, then values, a chunk of rows at a time */
    int64_t rows = cap / cnt;
    for (int64_t k = 0; k < len; k += rows) {
        int64_t nk = len - k < rows ? len - k : rows;
        load_rows(sp, x, k, nk, cnt, buf);
        max_rows(buf, nk * cnt, cnt, m);
    }
    for (int64_t k = 0; k < len; k += rows) {
        int64_t nk = len - k < rows ? len - k : rows;
        load_rows(sp, x, k, nk, cnt, buf);
        exp_rows(sp, buf, nk * cnt, cnt, m, s, false);
    }
    for (int64_t k = 0; k < len; k += rows) {
        int64_t nk = len - k < rows ? len - k : rows;
        load_rows(sp, x, k, nk, cnt, buf);
        if (!sp->log) exp_rows(sp, buf, nk * cnt, cnt, m, unused_sums, true);
        finish_rows(sp, buf, nk * cnt, cnt, m, s);
        store_rows(sp, out, k, nk, cnt, buf);
    }
}

/* Group g: one line, or one tile of up to sp->tile neighbouring lines. */
static void softmax_run_group(const softmax_plan *sp, int64_t g, double *buf, int64_t cap)
{
    int64_t first = g, cnt = 1;
    if (sp->fused) {
        int64_t xo, oo;
        bn_red_dims_offsets(&sp->l.other, g, &xo, &oo);
        softmax_line_f32((const float *)sp->x + xo, (float *)sp->out + oo, sp->l.len, sp->log);
        return;
    }
    if (sp->l.tiled) {
        int64_t tiles = (sp->l.inner + sp->tile - 1) / sp->tile;
        int64_t t = g % tiles;
        first = g / tiles * sp->l.inner + t * sp->tile;
        cnt = sp->l.inner - t * sp->tile < sp->tile ? sp->l.inner - t * sp->tile : sp->tile;
    }
    int64_t xo, oo;
    bn_red_dims_offsets(&sp->l.other, first, &xo, &oo);
    softmax_group(sp, sp->x + xo * sp->es, sp->out + oo * sp->es, cnt, buf, cap);
}

/* x and out are (d0, …, dn-1), one float dtype; normalised along dim. */
bn_status bn_cpu_softmax(const bn_tview *x, const bn_tview *out, int dim, bool log)
{
    if (!bn_dtype_is_float(x->dtype) || out->dtype != x->dtype)
        return bn__error(BN_ERR_UNSUPPORTED, "bn_cpu_softmax: no kernel for %s to %s",
                         bn_dtype_name(x->dtype), bn_dtype_name(out->dtype));
    softmax_plan sp;
    bn_red_lines_init(&sp.l, x, out, dim);
    sp.x = x->data;
    sp.out = out->data;
    sp.dt = x->dtype;
    sp.es = (int64_t)bn_dtype_size(x->dtype);
    sp.log = log;
    sp.wide = x->dtype == BN_F64;
    sp.fused = x->dtype == BN_F32 && !sp.l.tiled && sp.l.xs == 1 && sp.l.os == 1 && bn_vm();
    if (sp.l.count == 0 || sp.l.len == 0) return BN_OK;
    /* tile width: as many lines as fit the scratch whole, within [TILE_MIN, TILE_MAX] */
    sp.tile = SOFTMAX_SCRATCH / sp.l.len;
    if (sp.tile > SOFTMAX_TILE_MAX) sp.tile = SOFTMAX_TILE_MAX;
    if (sp.tile < SOFTMAX_TILE_MIN) sp.tile = SOFTMAX_TILE_MIN;
    int64_t groups = sp.l.count;
    if (sp.l.tiled) groups = sp.l.count / sp.l.inner * ((sp.l.inner + sp.tile - 1) / sp.tile);
    bool parallel =
        sp.l.count * sp.l.len >= BN_PAR_MIN_ELEMS / 4 && groups > 1 && bn_cpu_threads() > 1;
#pragma omp parallel if (parallel)
    {
        /* per-thread scratch; without it, groups stream through a small stack buffer */
        int64_t need = sp.l.len * (sp.l.tiled ? sp.tile : 1);
        int64_t cap = need < SOFTMAX_SCRATCH ? need : SOFTMAX_SCRATCH;
        double small[SOFTMAX_TILE_MAX * 2];
        double *heap =
            !sp.fused && cap > SOFTMAX_TILE_MAX * 2 ? malloc((size_t)cap * sizeof(double)) : NULL;
        double *buf = heap ? heap : small;
        if (!heap) cap = SOFTMAX_TILE_MAX * 2;
#pragma omp for schedule(static)
        for (int64_t g = 0; g < groups; g++) softmax_run_group(&sp, g, buf, cap);
        free(heap);
    }
    return BN_OK;
}
