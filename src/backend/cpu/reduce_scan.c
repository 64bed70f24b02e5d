/* backend/cpu/reduce_scan.c — cumsum: running sums along one dim.
 *
 * Each line is summed sequentially from its start (floats in double, integers in wrapping
 * int64), so the result never depends on how lines are shared between threads. Lines whose
 * neighbours sit next to each other in memory (a scan over dim 0 or a middle dim), and very
 * short lines, advance as a tile, one row at a time; other lines are walked in chunks along
 * their stride. */
#include "backend/cpu/cpu_kernels.h"
#include "backend/cpu/iter.h"
#include "backend/cpu/reduce_io.h"

#define SCAN_TILE 512 /* lines per tile */

typedef struct scan_plan {
    bn_red_lines l;
    const char *x;
    char *out;
    bn_dtype xdt, odt;
    int64_t xes, oes;
    bool is_int;
} scan_plan;

/* One line, in chunks: x and out step by l.xs / l.os. */
static void scan_line(const scan_plan *sp, int64_t line)
{
    int64_t xo, oo;
    bn_red_dims_offsets(&sp->l.other, line, &xo, &oo);
    const char *x = sp->x + xo * sp->xes;
    char *out = sp->out + oo * sp->oes;
    double facc = 0, fbuf[BN_RED_CHUNK];
    int64_t iacc = 0, ibuf[BN_RED_CHUNK];
    for (int64_t k = 0; k < sp->l.len; k += BN_RED_CHUNK) {
        int64_t n = sp->l.len - k < BN_RED_CHUNK ? sp->l.len - k : BN_RED_CHUNK;
        const char *xp = x + k * sp->l.xs * sp->xes;
        char *op = out + k * sp->l.os * sp->oes;
        if (sp->is_int) {
            bn_red_load_i64(xp, sp->xdt, sp->l.xs, n, ibuf);
            for (int64_t j = 0; j < n; j++) ibuf[j] = iacc = bn_red_wrap_add(iacc, ibuf[j]);
            bn_red_store_i64(op, sp->odt, sp->l.os, n, ibuf);
        } else {
            bn_red_load_f64(xp, sp->xdt, sp->l.xs, n, fbuf);
            for (int64_t j = 0; j < n; j++) fbuf[j] = facc += fbuf[j];
            bn_red_store_f64(op, sp->odt, sp->l.os, n, fbuf);
        }
    }
}

/* Tile t: up to SCAN_TILE neighbouring lines (l.inner_xs / l.inner_os apart). */
static void scan_tile(const scan_plan *sp, int64_t t)
{
    int64_t tiles = (sp->l.inner + SCAN_TILE - 1) / SCAN_TILE;
    int64_t outer = t / tiles, first = (t % tiles) * SCAN_TILE;
    int64_t cnt = sp->l.inner - first < SCAN_TILE ? sp->l.inner - first : SCAN_TILE;
    int64_t xo, oo;
    bn_red_dims_offsets(&sp->l.other, outer * sp->l.inner + first, &xo, &oo);
    double facc[SCAN_TILE] = {0}, fbuf[SCAN_TILE];
    int64_t iacc[SCAN_TILE] = {0}, ibuf[SCAN_TILE];
    for (int64_t k = 0; k < sp->l.len; k++) {
        const char *xp = sp->x + (xo + k * sp->l.xs) * sp->xes;
        char *op = sp->out + (oo + k * sp->l.os) * sp->oes;
        if (sp->is_int) {
            bn_red_load_i64(xp, sp->xdt, sp->l.inner_xs, cnt, ibuf);
            for (int64_t j = 0; j < cnt; j++) iacc[j] = bn_red_wrap_add(iacc[j], ibuf[j]);
            bn_red_store_i64(op, sp->odt, sp->l.inner_os, cnt, iacc);
        } else {
            bn_red_load_f64(xp, sp->xdt, sp->l.inner_xs, cnt, fbuf);
            for (int64_t j = 0; j < cnt; j++) facc[j] += fbuf[j];
            bn_red_store_f64(op, sp->odt, sp->l.inner_os, cnt, facc);
        }
    }
}

/* x and out are (d0, …, dn-1); out[…, k, …] = x[…, 0, …] + … + x[…, k, …] along dim. out is
 * i64 for integer and bool x, x's dtype for floats. */
bn_status bn_cpu_cumsum(const bn_tview *x, const bn_tview *out, int dim)
{
    scan_plan sp;
    bn_red_lines_init(&sp.l, x, out, dim);
    sp.x = x->data;
    sp.out = out->data;
    sp.xdt = x->dtype;
    sp.odt = out->dtype;
    sp.xes = (int64_t)bn_dtype_size(x->dtype);
    sp.oes = (int64_t)bn_dtype_size(out->dtype);
    sp.is_int = !bn_dtype_is_float(x->dtype);
    if (sp.is_int != !bn_dtype_is_float(out->dtype))
        return bn__error(BN_ERR_UNSUPPORTED, "bn_cpu_cumsum: no kernel from %s to %s",
                         bn_dtype_name(x->dtype), bn_dtype_name(out->dtype));
    if (sp.l.count == 0 || sp.l.len == 0) return BN_OK;
    bool parallel = sp.l.count * sp.l.len >= BN_PAR_MIN_ELEMS && bn_cpu_threads() > 1;
    if (sp.l.tiled) {
        int64_t tiles = sp.l.count / sp.l.inner * ((sp.l.inner + SCAN_TILE - 1) / SCAN_TILE);
#pragma omp parallel for schedule(static) if (parallel && tiles > 1)
        for (int64_t t = 0; t < tiles; t++) scan_tile(&sp, t);
    } else {
#pragma omp parallel for schedule(static) if (parallel && sp.l.count > 1)
        for (int64_t i = 0; i < sp.l.count; i++) scan_line(&sp, i);
    }
    return BN_OK;
}
