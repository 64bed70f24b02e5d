/* backend/cpu/reduce.c — the reduce kernel: sum, mean, prod, max, min, argmax/argmin, var/std,
 * logsumexp, all/any over any set of dims of a strided tensor. The accumulators live in
 * reduce_acc.c; this file plans the walk over memory, shares it between threads and stores.
 *
 * Layout: x's dims split into kept dims (one per output element) and reduced dims, each list
 * sorted by stride and coalesced. Two ways to walk them:
 *   - line: one output at a time, along runs of the fastest reduced dim (contiguous when the
 *     reduced dims are the inner ones, e.g. a sum over the last dim);
 *   - tile: when the fastest dim of x is a kept one (reducing dim 0, or a middle dim), a tile of
 *     up to RED_TILE_MAX neighbouring outputs advances together, reading one contiguous row of x
 *     per reduced index, so memory is read in order. Outputs that reduce only a few values
 *     (<= BN_RED_SHORT, e.g. a sum over a last dim of 3) use it too, with strided rows, so the
 *     per-output cost of the line walk does not dominate.
 *
 * Determinism: the reduced range is cut into fixed blocks (RED_BLOCK elements for the line walk,
 * RED_TILE_BLOCK rows for the tile walk); each (outputs, block) item is computed alone and the
 * blocks are combined in order. Threads only decide who computes which item, and the tile width
 * never changes any output's arithmetic, so results are bit-identical for any thread count.
 *
 * var/std and logsumexp take two passes: the mean, then the compensated sum of squared
 * deviations; the max, then the sum of exp(x - max). */
#include "backend/cpu/cpu_kernels.h"
#include "backend/cpu/iter.h"
#include "backend/cpu/reduce_acc.h"
#include "backend/cpu/reduce_io.h"

#include <math.h>
#include <string.h>

#define RED_BLOCK 8192     /* reduced elements per line-walk item */
#define RED_TILE_BLOCK 512 /* reduced rows per tile-walk item */
#define RED_TILE_MAX 2048  /* outputs per tile */

typedef struct rplan {
    bn_reduce_op op;
    bool is_int;
    const char *x;
    bn_dtype xdt;
    int64_t xes;
    char *out;
    bn_dtype odt;
    int64_t oes;
    bn_red_dims kept, red; /* red.os is unused */
    int64_t outputs, rsize;
    int64_t block, nblk; /* reduced indices per item, items per output */
    bool tiled;
    int64_t inner, width, tiles; /* innermost kept dim, tile width, tiles across it */
    int64_t tile_xs;             /* x stride between neighbouring outputs of a tile */
    int64_t groups;              /* output groups: outputs (line walk) or outer * tiles */
    int correction;
} rplan;

/* Per-thread scratch for one group of up to `width` outputs. */
typedef struct rwork {
    rtile t;
    double *centers, *fbuf;
    int64_t *ibuf;
    racc *acc;
    void *mem;
} rwork;

static bool rwork_alloc(rwork *w, int64_t width)
{
    size_t n = (size_t)width;
    w->mem = malloc(n * (4 * sizeof(double) + 3 * sizeof(int64_t) + sizeof(racc)));
    if (!w->mem) return false;
    double *d = w->mem;
    w->t.a = d, w->t.b = d + n, w->centers = d + 2 * n, w->fbuf = d + 3 * n;
    int64_t *i = (int64_t *)(d + 4 * n);
    w->t.v = i, w->t.i = i + n, w->ibuf = i + 2 * n;
    w->acc = (racc *)(i + 3 * n);
    return true;
}

/* ---- passes ------------------------------------------------------------------------------ */
static bool two_pass(bn_reduce_op op)
{
    return op == BN_REDUCE_VAR || op == BN_REDUCE_STD || op == BN_REDUCE_LOGSUMEXP;
}

static red_kind pass_kind(bn_reduce_op op, int pass)
{
    switch (op) {
    case BN_REDUCE_SUM:
    case BN_REDUCE_MEAN: return K_SUM;
    case BN_REDUCE_PROD: return K_PROD;
    case BN_REDUCE_MAX: return K_MAX;
    case BN_REDUCE_MIN: return K_MIN;
    case BN_REDUCE_ARGMAX: return K_ARGMAX;
    case BN_REDUCE_ARGMIN: return K_ARGMIN;
    case BN_REDUCE_VAR:
    case BN_REDUCE_STD: return pass == 0 ? K_SUM : K_SQDEV;
    case BN_REDUCE_LOGSUMEXP: return pass == 0 ? K_MAX : K_SUMEXP;
    case BN_REDUCE_ALL: return K_ALL;
    case BN_REDUCE_ANY: return K_ANY;
    default: BN_ASSERT(0 && "bad reduce op");
    }
}

/* The centre that pass 2 subtracts, from pass 1's combined accumulator. */
static double pass_center(const rplan *pl, const racc *s)
{
    if (pl->op == BN_REDUCE_LOGSUMEXP) return isinf(s->a) ? 0.0 : s->a; /* like torch */
    return pl->rsize ? s->a / (double)pl->rsize : 0.0;
}

/* x offset of reduced index r (row-major over pl->red). */
static int64_t red_offset(const rplan *pl, int64_t r)
{
    if (pl->red.n == 1) return r * pl->red.xs[0];
    int64_t xo, unused;
    bn_red_dims_offsets(&pl->red, r, &xo, &unused);
    return xo;
}

/* ---- walks ------------------------------------------------------------------------------- */
/* Line walk: folds reduced indices [r0, r1) of the output whose x data starts at xbase into s. */
static void line_block(const rplan *pl, red_kind k, racc *s, const char *xbase, int64_t r0,
                       int64_t r1, double c)
{
    int last = pl->red.n - 1;
    int64_t inner = last >= 0 ? pl->red.size[last] : 1;
    int64_t stride = last >= 0 ? pl->red.xs[last] : 1;
    double fbuf[BN_RED_CHUNK];
    int64_t ibuf[BN_RED_CHUNK];
    for (int64_t r = r0; r < r1;) {
        /* a run along the fastest reduced dim, up to the block's end */
        int64_t len = inner - r % inner;
        if (len > r1 - r) len = r1 - r;
        const char *p = xbase + red_offset(pl, r) * pl->xes;
        for (int64_t q = 0; q < len; q += BN_RED_CHUNK) {
            int64_t n = len - q < BN_RED_CHUNK ? len - q : BN_RED_CHUNK;
            const char *pq = p + q * stride * pl->xes;
            if (pl->is_int) {
                bn_red_load_i64(pq, pl->xdt, stride, n, ibuf);
                bn_red_chunk_i64(k, s, ibuf, n, r + q);
            } else {
                bn_red_load_f64(pq, pl->xdt, stride, n, fbuf);
                bn_red_chunk_f64(k, s, fbuf, n, r + q, c);
            }
        }
        r += len;
    }
}

/* Tile walk: cnt neighbouring outputs (tile_xs apart in x) from xbase, over [r0, r1). */
static void tile_block(const rplan *pl, red_kind k, rwork *w, int64_t cnt, const char *xbase,
                       int64_t r0, int64_t r1, const double *c)
{
    bn_red_tile_init(k, &w->t, cnt);
    for (int64_t r = r0; r < r1; r++) {
        const char *p = xbase + red_offset(pl, r) * pl->xes;
        if (pl->is_int) {
            bn_red_load_i64(p, pl->xdt, pl->tile_xs, cnt, w->ibuf);
            bn_red_row_i64(k, &w->t, w->ibuf, cnt, r);
        } else {
            bn_red_load_f64(p, pl->xdt, pl->tile_xs, cnt, w->fbuf);
            bn_red_row_f64(k, &w->t, w->fbuf, cnt, r, c);
        }
    }
    for (int64_t q = 0; q < cnt; q++) bn_red_tile_get(&w->t, q, &w->acc[q]);
}

/* Output group g: returns how many outputs it has; first is the first one's linear index. */
static int64_t group_outputs(const rplan *pl, int64_t g, int64_t *first)
{
    if (!pl->tiled) {
        *first = g;
        return 1;
    }
    int64_t outer = g / pl->tiles, t = g % pl->tiles;
    *first = outer * pl->inner + t * pl->width;
    return pl->inner - t * pl->width < pl->width ? pl->inner - t * pl->width : pl->width;
}

/* Folds block j of group g for pass kind k into w->acc[0..cnt); c holds the group's centres
 * (pass 2 of a two-pass op) or NULL. Returns cnt. */
static int64_t group_block(const rplan *pl, int64_t g, int64_t j, red_kind k, rwork *w,
                           const double *c, int64_t *first)
{
    int64_t cnt = group_outputs(pl, g, first);
    int64_t xoff, ooff;
    bn_red_dims_offsets(&pl->kept, *first, &xoff, &ooff);
    int64_t r0 = j * pl->block, r1 = r0 + pl->block < pl->rsize ? r0 + pl->block : pl->rsize;
    const char *xbase = pl->x + xoff * pl->xes;
    if (pl->tiled) {
        tile_block(pl, k, w, cnt, xbase, r0, r1, c);
    } else {
        w->acc[0] = bn_red_acc_init(k);
        line_block(pl, k, &w->acc[0], xbase, r0, r1, c ? c[0] : 0.0);
    }
    return cnt;
}

/* ---- results ----------------------------------------------------------------------------- */
/* Writes output o from its final accumulator (c: the pass-1 centre of a two-pass op). */
static void store_result(const rplan *pl, int64_t o, const racc *s, double c)
{
    int64_t xoff, ooff;
    bn_red_dims_offsets(&pl->kept, o, &xoff, &ooff);
    char *p = pl->out + ooff * pl->oes;
    double n = (double)pl->rsize;
    switch (pl->op) {
    case BN_REDUCE_ARGMAX:
    case BN_REDUCE_ARGMIN: *(int64_t *)p = s->i; return;
    case BN_REDUCE_ALL:
    case BN_REDUCE_ANY: *(bool *)p = s->v != 0; return;
    default: break;
    }
    if (pl->is_int) {
        bn_red_store_i64(p, pl->odt, 1, 1, &s->v);
        return;
    }
    double v = s->a;
    if (pl->op == BN_REDUCE_MEAN) {
        v = s->a / n;
    } else if (pl->op == BN_REDUCE_VAR || pl->op == BN_REDUCE_STD) {
        /* compensated two-pass: the second term removes the error of the mean */
        double m2 = s->b - s->a * s->a / n;
        if (m2 < 0) m2 = 0;
        double div = n - pl->correction > 0 ? n - pl->correction : 0.0;
        v = m2 / div;
        if (pl->op == BN_REDUCE_STD) v = sqrt(v);
    } else if (pl->op == BN_REDUCE_LOGSUMEXP) {
        v = log(s->a) + c;
    }
    bn_red_store_f64(p, pl->odt, 1, 1, &v);
}

/* The reduced range fits one block: each group does both passes and stores. */
static bool run_direct(const rplan *pl, bool parallel)
{
    bool tp = two_pass(pl->op);
    int ok = 1;
    red_kind k0 = pass_kind(pl->op, 0), k1 = pass_kind(pl->op, 1);
#pragma omp parallel if (parallel) reduction(&& : ok)
    {
        rwork w;
        if (!rwork_alloc(&w, pl->width)) ok = 0;
#pragma omp for schedule(static)
        for (int64_t g = 0; g < pl->groups; g++) {
            if (!w.mem) continue;
            int64_t first;
            int64_t cnt = group_block(pl, g, 0, k0, &w, NULL, &first);
            for (int64_t q = 0; q < cnt; q++) w.centers[q] = 0;
            if (tp) {
                for (int64_t q = 0; q < cnt; q++) w.centers[q] = pass_center(pl, &w.acc[q]);
                group_block(pl, g, 0, k1, &w, w.centers, &first);
            }
            for (int64_t q = 0; q < cnt; q++) store_result(pl, first + q, &w.acc[q], w.centers[q]);
        }
        free(w.mem);
    }
    return ok;
}

/* One pass over every (group, block) item into part[o * nblk + j], then folds the blocks of
 * each output, in order, into part[o * nblk]. */
static bool run_blocks(const rplan *pl, red_kind k, racc *part, const double *centers,
                       bool parallel)
{
    int64_t items = pl->groups * pl->nblk;
    int ok = 1;
#pragma omp parallel if (parallel) reduction(&& : ok)
    {
        rwork w;
        if (!rwork_alloc(&w, pl->width)) ok = 0;
#pragma omp for schedule(static)
        for (int64_t it = 0; it < items; it++) {
            if (!w.mem) continue;
            int64_t g = it / pl->nblk, j = it % pl->nblk, first;
            group_outputs(pl, g, &first);
            int64_t cnt = group_block(pl, g, j, k, &w, centers ? centers + first : NULL, &first);
            for (int64_t q = 0; q < cnt; q++) part[(first + q) * pl->nblk + j] = w.acc[q];
        }
        free(w.mem);
    }
#pragma omp parallel for schedule(static) if (parallel && pl->outputs > 1)
    for (int64_t o = 0; o < pl->outputs; o++)
        for (int64_t j = 1; j < pl->nblk; j++)
            bn_red_acc_combine(k, pl->is_int, &part[o * pl->nblk], &part[o * pl->nblk + j]);
    return ok;
}

static bool run_split(const rplan *pl, bool parallel)
{
    racc *part = malloc((size_t)(pl->outputs * pl->nblk) * sizeof(racc));
    double *centers = two_pass(pl->op) ? malloc((size_t)pl->outputs * sizeof(double)) : NULL;
    bool ok = part && (centers || !two_pass(pl->op));
    if (ok) ok = run_blocks(pl, pass_kind(pl->op, 0), part, NULL, parallel);
    if (ok && centers) {
        for (int64_t o = 0; o < pl->outputs; o++) centers[o] = pass_center(pl, &part[o * pl->nblk]);
        ok = run_blocks(pl, pass_kind(pl->op, 1), part, centers, parallel);
    }
    if (ok)
        for (int64_t o = 0; o < pl->outputs; o++)
            store_result(pl, o, &part[o * pl->nblk], centers ? centers[o] : 0.0);
    free(centers);
    free(part);
    return ok;
}

/* ---- plan -------------------------------------------------------------------------------- */
static bool op_supports(bn_reduce_op op, bool is_int)
{
    if (op < 0 || op >= BN_REDUCE_COUNT) return false;
    if (!is_int) return true;
    return op != BN_REDUCE_MEAN && op != BN_REDUCE_VAR && op != BN_REDUCE_STD &&
           op != BN_REDUCE_LOGSUMEXP;
}

/* Splits x's dims, simplifies both lists and picks the walk. */
static void plan_walk(rplan *pl, const bn_tview *x, const bn_tview *out, uint32_t reduce_mask)
{
    for (int d = 0; d < x->ndim; d++) {
        if (reduce_mask & (1u << d))
            bn_red_dims_add(&pl->red, x->shape[d], x->strides[d], 0);
        else
            bn_red_dims_add(&pl->kept, x->shape[d], x->strides[d], out->strides[d]);
    }
    pl->outputs = bn_red_dims_numel(&pl->kept);
    pl->rsize = bn_red_dims_numel(&pl->red);
    bn_red_dims_simplify(&pl->kept);
    bn_red_dims_simplify(&pl->red);
    int last = pl->kept.n - 1;
    /* tile walk: x's fastest dim is a kept one, or each output reduces only a few values */
    bool kept_fastest = last >= 0 && pl->kept.xs[last] == 1 &&
                        (pl->red.n == 0 || pl->red.xs[pl->red.n - 1] != 1);
    pl->tiled = last >= 0 && pl->outputs > 0 && pl->rsize > 1 &&
                (kept_fastest || pl->rsize <= BN_RED_SHORT);
    pl->width = 1;
    pl->groups = pl->outputs;
    pl->block = RED_BLOCK;
    if (pl->tiled) {
        pl->inner = pl->kept.size[last];
        pl->tile_xs = pl->kept.xs[last];
        pl->width = pl->inner < RED_TILE_MAX ? pl->inner : RED_TILE_MAX;
        pl->tiles = (pl->inner + pl->width - 1) / pl->width;
        pl->groups = pl->outputs / pl->inner * pl->tiles;
        pl->block = RED_TILE_BLOCK;
    }
    pl->nblk = pl->rsize > pl->block ? (pl->rsize + pl->block - 1) / pl->block : 1;
}

/* x is (d0, …, dn-1), out is x's shape with the dims in reduce_mask set to 1. */
bn_status bn_cpu_reduce(bn_reduce_op op, const bn_tview *x, const bn_tview *out,
                        uint32_t reduce_mask, const bn_reduce_params *p)
{
    rplan pl;
    memset(&pl, 0, sizeof pl);
    pl.op = op;
    pl.is_int = !bn_dtype_is_float(x->dtype);
    if (!op_supports(op, pl.is_int))
        return bn__error(BN_ERR_UNSUPPORTED, "bn_cpu_reduce: op %d has no %s kernel", (int)op,
                         bn_dtype_name(x->dtype));
    pl.x = x->data;
    pl.xdt = x->dtype;
    pl.xes = (int64_t)bn_dtype_size(x->dtype);
    pl.out = out->data;
    pl.odt = out->dtype;
    pl.oes = (int64_t)bn_dtype_size(out->dtype);
    pl.correction = p ? p->correction : 0;
    plan_walk(&pl, x, out, reduce_mask);
    if (pl.outputs == 0) return BN_OK;
    bool parallel = pl.outputs * pl.rsize >= BN_PAR_MIN_ELEMS && bn_cpu_threads() > 1;
    bool ok = pl.nblk == 1 ? run_direct(&pl, parallel && pl.groups > 1) : run_split(&pl, parallel);
    if (!ok) return bn__error(BN_ERR_OOM, "bn_cpu_reduce: out of memory for the work buffers");
    return BN_OK;
}
