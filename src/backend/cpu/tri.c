/* backend/cpu/tri.c — tril / triu: keep one side of a diagonal of the last two dims, zero the
 * other. Values only move, so rows are copied and cleared by bytes (all-zero bytes are zero in
 * every dtype). */
#include "backend/cpu/cpu_kernels.h"
#include "backend/cpu/index_lines.h"

#include <string.h>

typedef struct tri_ctx {
    int64_t rows, cols;
    int64_t diagonal;
    bool upper;
    int64_t es;
    int64_t xcol, ocol; /* strides of the last dim, elements */
} tri_ctx;

/* Columns [0, keep_begin) and [keep_end, cols) of row r are zeroed. */
static void kept_columns(const tri_ctx *c, int64_t r, int64_t *keep_begin, int64_t *keep_end)
{
    int64_t edge = r + c->diagonal; /* the diagonal's column in row r */
    if (c->upper) {
        *keep_begin = edge < 0 ? 0 : edge > c->cols ? c->cols : edge;
        *keep_end = c->cols;
    } else {
        *keep_begin = 0;
        *keep_end = edge + 1 < 0 ? 0 : edge + 1 > c->cols ? c->cols : edge + 1;
    }
}

static void tri_row(const tri_ctx *c, char *o, const char *x, int64_t r)
{
    int64_t b, e;
    kept_columns(c, r, &b, &e);
    if (c->ocol == 1 && c->xcol == 1) {
        memset(o, 0, (size_t)(b * c->es));
        if (e > b) memcpy(o + b * c->es, x + b * c->es, (size_t)((e - b) * c->es));
        memset(o + e * c->es, 0, (size_t)((c->cols - e) * c->es));
        return;
    }
    for (int64_t j = 0; j < c->cols; j++) {
        char *d = o + j * c->ocol * c->es;
        if (j >= b && j < e)
            memcpy(d, x + j * c->xcol * c->es, (size_t)c->es);
        else
            memset(d, 0, (size_t)c->es);
    }
}

/* One "line" is a row: operand 0 is out, 1 is x; lines run over (batch..., R) in row-major
 * order, so a line's row number is its index modulo R whatever dims were coalesced. */
static void tri_rows(void *vctx, const bn_lines *l, int64_t begin, int64_t end)
{
    const tri_ctx *c = vctx;
    bn_lines_cursor cur;
    bn_lines_seek(l, begin, &cur);
    for (int64_t line = begin; line < end; line++, bn_lines_next(l, &cur))
        tri_row(c, cur.p[0], cur.p[1], line % c->rows);
}

/* x and out are (..., R, C), same dtype. */
bn_status bn_cpu_tri(const bn_tview *x, const bn_tview *out, int64_t diagonal, bool upper)
{
    BN_ASSERT(x->ndim >= 2);
    int nd = x->ndim;
    tri_ctx c = {.rows = x->shape[nd - 2],
                 .cols = x->shape[nd - 1],
                 .diagonal = diagonal,
                 .upper = upper,
                 .es = (int64_t)bn_dtype_size(x->dtype),
                 .xcol = x->strides[nd - 1],
                 .ocol = out->strides[nd - 1]};
    if (c.rows == 0 || c.cols == 0) return BN_OK;
    const bn_tview *ops[2] = {out, x};
    bn_lines l;
    bn_lines_init(&l, 2, ops, nd - 1);
    bn_lines_run(&l, tri_rows, &c, c.cols);
    return BN_OK;
}
