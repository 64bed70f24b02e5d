/* backend/cpu/index_lines.h — iteration over the "lines" of tensors along one dim, for the
 * kernels that work a whole line at a time (scatter, sort, topk, strided index_select).
 *
 * Operand 0 defines the line shape: every dim but `dim`. The other operands give only strides
 * (their size along `dim` may differ, and gather-like operands may be larger elsewhere: they are
 * read only inside operand 0's range). Outer dims are coalesced like iter.h does, lines are
 * split into contiguous ranges handed to OpenMP threads statically; each line is visited once
 * by one thread, so a kernel that is serial within a line gives the same result for any thread
 * count. */
#ifndef BORN_CPU_INDEX_LINES_H
#define BORN_CPU_INDEX_LINES_H

#include "backend/cpu/iter.h"

#define BN_LINES_MAX_OPS 4

typedef struct bn_lines {
    int nops;
    int ndim; /* outer dims after coalescing (>= 1) */
    int64_t shape[BN_MAX_DIMS];
    int64_t strides[BN_LINES_MAX_OPS][BN_MAX_DIMS];
    char *data[BN_LINES_MAX_OPS];
    int64_t esize[BN_LINES_MAX_OPS];
    int64_t count; /* number of lines */
} bn_lines;

/* Where one line starts in every operand, kept as an odometer so stepping is cheap. */
typedef struct bn_lines_cursor {
    int64_t idx[BN_MAX_DIMS];
    char *p[BN_LINES_MAX_OPS];
} bn_lines_cursor;

/* ops[k] may be NULL (an absent optional operand): its pointer stays NULL. */
static inline void bn_lines_init(bn_lines *l, int nops, const bn_tview *const *ops, int dim)
{
    BN_ASSERT(nops >= 1 && nops <= BN_LINES_MAX_OPS);
    const bn_tview *o0 = ops[0];
    int n = 0;
    l->nops = nops;
    l->count = 1;
    for (int d = 0; d < o0->ndim; d++) {
        if (d == dim) continue;
        l->count *= o0->shape[d];
        if (o0->shape[d] == 1) continue;
        bool merge = n > 0;
        for (int k = 0; k < nops && merge; k++)
            if (ops[k] && l->strides[k][n - 1] != ops[k]->strides[d] * o0->shape[d]) merge = false;
        if (merge) {
            l->shape[n - 1] *= o0->shape[d];
            for (int k = 0; k < nops; k++) l->strides[k][n - 1] = ops[k] ? ops[k]->strides[d] : 0;
        } else {
            l->shape[n] = o0->shape[d];
            for (int k = 0; k < nops; k++) l->strides[k][n] = ops[k] ? ops[k]->strides[d] : 0;
            n++;
        }
    }
    if (n == 0) {
        l->shape[0] = 1;
        for (int k = 0; k < nops; k++) l->strides[k][0] = 0;
        n = 1;
    }
    l->ndim = n;
    for (int k = 0; k < nops; k++) {
        l->data[k] = ops[k] ? (char *)ops[k]->data : NULL;
        l->esize[k] = ops[k] ? (int64_t)bn_dtype_size(ops[k]->dtype) : 0;
    }
}

static inline void bn_lines_seek(const bn_lines *l, int64_t line, bn_lines_cursor *c)
{
    int64_t off[BN_LINES_MAX_OPS] = {0};
    for (int d = l->ndim - 1; d >= 0; d--) {
        c->idx[d] = line % l->shape[d];
        line /= l->shape[d];
        for (int k = 0; k < l->nops; k++) off[k] += c->idx[d] * l->strides[k][d];
    }
    for (int k = 0; k < l->nops; k++)
        c->p[k] = l->data[k] ? l->data[k] + off[k] * l->esize[k] : NULL;
}

static inline void bn_lines_next(const bn_lines *l, bn_lines_cursor *c)
{
    for (int d = l->ndim - 1; d >= 0; d--) {
        for (int k = 0; k < l->nops; k++)
            if (c->p[k]) c->p[k] += l->strides[k][d] * l->esize[k];
        if (++c->idx[d] < l->shape[d]) return;
        for (int k = 0; k < l->nops; k++)
            if (c->p[k]) c->p[k] -= l->shape[d] * l->strides[k][d] * l->esize[k];
        c->idx[d] = 0;
    }
}

/* Handles lines [begin, end): seek to begin, then bn_lines_next after each line. */
typedef void (*bn_lines_fn)(void *ctx, const bn_lines *l, int64_t begin, int64_t end);

/* Runs fn over all lines, in parallel when count * line_work >= BN_PAR_MIN_ELEMS. */
static inline void bn_lines_run(const bn_lines *l, bn_lines_fn fn, void *ctx, int64_t line_work)
{
    if (l->count == 0) return;
    int threads = bn_cpu_threads();
    if (threads <= 1 || l->count == 1 ||
        l->count * (line_work > 0 ? line_work : 1) < BN_PAR_MIN_ELEMS) {
        fn(ctx, l, 0, l->count);
        return;
    }
    int64_t pieces = (int64_t)threads * 4 < l->count ? (int64_t)threads * 4 : l->count;
#pragma omp parallel for schedule(static)
    for (int64_t q = 0; q < pieces; q++) {
        int64_t b = l->count * q / pieces, e = l->count * (q + 1) / pieces;
        if (b < e) fn(ctx, l, b, e);
    }
}

#endif
