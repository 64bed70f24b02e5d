/* backend/cpu/iter.c — see iter.h. */
#include "backend/cpu/iter.h"

#ifdef _OPENMP
#include <omp.h>
#endif

int bn_cpu_threads(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

void bn_iter_init(bn_iter *it, int nops, const bn_tview *const *ops)
{
    BN_ASSERT(nops >= 1 && nops <= BN_ITER_MAX_OPS);
    it->nops = nops;
    int nd = ops[0]->ndim;
    int64_t shape[BN_MAX_DIMS];
    int64_t strides[BN_ITER_MAX_OPS][BN_MAX_DIMS];
    int n = 0;
    it->numel = 1;
    /* drop size-1 dims (their strides never matter) */
    for (int d = 0; d < nd; d++) {
        it->numel *= ops[0]->shape[d];
        if (ops[0]->shape[d] == 1) continue;
        shape[n] = ops[0]->shape[d];
        for (int k = 0; k < nops; k++) strides[k][n] = ops[k]->strides[d];
        n++;
    }
    if (n == 0) {
        shape[0] = 1;
        for (int k = 0; k < nops; k++) strides[k][0] = 1;
        n = 1;
    }
    /* coalesce d-1 into d where every operand steps through them as one dim */
    int m = 0;
    it->shape[0] = shape[0];
    for (int k = 0; k < nops; k++) it->strides[k][0] = strides[k][0];
    for (int d = 1; d < n; d++) {
        bool merge = true;
        for (int k = 0; k < nops; k++)
            if (it->strides[k][m] != strides[k][d] * shape[d]) merge = false;
        if (merge) {
            it->shape[m] *= shape[d];
            for (int k = 0; k < nops; k++) it->strides[k][m] = strides[k][d];
        } else {
            m++;
            it->shape[m] = shape[d];
            for (int k = 0; k < nops; k++) it->strides[k][m] = strides[k][d];
        }
    }
    it->ndim = m + 1;
    for (int k = 0; k < nops; k++) {
        it->data[k] = ops[k]->data;
        it->esize[k] = bn_dtype_size(ops[k]->dtype);
    }
}

/* Runs row `row` (a multi-index over all dims but the last), elements [begin, end). */
static void run_piece(const bn_iter *it, bn_iter_fn fn, void *ctx, int64_t row, int64_t begin,
                      int64_t end)
{
    char *p[BN_ITER_MAX_OPS];
    int64_t s[BN_ITER_MAX_OPS];
    int last = it->ndim - 1;
    for (int k = 0; k < it->nops; k++) {
        int64_t off = begin * it->strides[k][last];
        int64_t r = row;
        for (int d = last - 1; d >= 0; d--) {
            int64_t i = r % it->shape[d];
            r /= it->shape[d];
            off += i * it->strides[k][d];
        }
        p[k] = it->data[k] + off * (int64_t)it->esize[k];
        s[k] = it->strides[k][last];
    }
    fn(ctx, p, s, end - begin);
}

void bn_iter_run(const bn_iter *it, bn_iter_fn fn, void *ctx, int64_t min_parallel)
{
    if (it->numel == 0) return;
    int64_t inner = it->shape[it->ndim - 1];
    int64_t rows = it->numel / inner;
    if (min_parallel <= 0) min_parallel = BN_PAR_MIN_ELEMS;
    int threads = bn_cpu_threads();
    if (it->numel < min_parallel || threads <= 1) {
        for (int64_t r = 0; r < rows; r++) run_piece(it, fn, ctx, r, 0, inner);
        return;
    }
    /* Pieces: whole rows when there are enough of them, else rows cut into chunks. */
    int64_t chunks_per_row = 1;
    if (rows < (int64_t)threads * 4) {
        chunks_per_row = ((int64_t)threads * 4 + rows - 1) / rows;
        if (chunks_per_row > inner) chunks_per_row = inner;
    }
    int64_t chunk = (inner + chunks_per_row - 1) / chunks_per_row;
    int64_t pieces = rows * chunks_per_row;
#pragma omp parallel for schedule(static)
    for (int64_t q = 0; q < pieces; q++) {
        int64_t r = q / chunks_per_row, c = q % chunks_per_row;
        int64_t b = c * chunk, e = b + chunk < inner ? b + chunk : inner;
        if (b < e) run_piece(it, fn, ctx, r, b, e);
    }
}
