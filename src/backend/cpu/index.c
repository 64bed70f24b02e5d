/* backend/cpu/index.c — indexing kernels: index_select, gather and scatter (set / add).
 *
 * Values only move here (no arithmetic except scatter-add), so copies go by element size, not
 * dtype. Index tensors are i64 or i32; every index is range-checked before it is used, and a bad
 * one is reported (value and dim size) after the parallel region, on the calling thread, since
 * the error slot is per thread. Sorting lives in sort.c, tril/triu in tri.c. */
#include "backend/cpu/cpu_kernels.h"
#include "backend/cpu/index_lines.h"
#include "backend/cpu/iter.h"

#include <string.h>

/* ---- shared: reading an index, remembering a bad one -------------------------------------- */
static inline int64_t load_index(const char *p, bn_dtype dt)
{
    return dt == BN_I64 ? *(const int64_t *)p : (int64_t)(*(const int32_t *)p);
}

typedef struct bad_index {
    int has; /* set by any thread that met an index out of range */
    int64_t value;
} bad_index;

static inline void note_bad(bad_index *b, int64_t v)
{
    __atomic_store_n(&b->value, v, __ATOMIC_RELAXED);
    __atomic_store_n(&b->has, 1, __ATOMIC_RELAXED);
}

static bn_status report_bad(const bad_index *b, int dim, int64_t size)
{
    return bn__error(BN_ERR_ARG, "index %lld is out of range for dim %d of size %lld",
                     (long long)b->value, dim, (long long)size);
}

static inline void copy_elem(char *dst, const char *src, size_t es)
{
    switch (es) {
    case 1: *(uint8_t *)dst = *(const uint8_t *)src; break;
    case 2: *(uint16_t *)dst = *(const uint16_t *)src; break;
    case 4: *(uint32_t *)dst = *(const uint32_t *)src; break;
    default: *(uint64_t *)dst = *(const uint64_t *)src; break;
    }
}

/* ---- gather ---------------------------------------------------------------------------------
 * index and out are (..., M, ...), x is (..., N, ...) with every other dim at least as large as
 * index's: out[..i..] = x[..index[..i..]..]. The iteration runs over out with three operands:
 * out, x with its stride along dim zeroed (so it points at x[..0..]) and index. */
typedef struct gather_ctx {
    int64_t size;   /* x's size along dim */
    int64_t stride; /* x's stride along dim, elements */
    size_t es;
    bn_dtype index_dtype;
    int64_t slab; /* elements copied per index (index_select's contiguous fast path) */
    bad_index bad;
} gather_ctx;

/* operand 0 is out, 1 is x (at index 0 along dim), 2 is index */
#define GATHER_RUN(NAME, T, IT)                                                                    \
    static void NAME(void *vctx, char *const *p, const int64_t *s, int64_t n)                      \
    {                                                                                              \
        gather_ctx *c = vctx;                                                                      \
        T *o = (T *)p[0];                                                                          \
        const T *x = (const T *)p[1];                                                              \
        const IT *ix = (const IT *)p[2];                                                           \
        for (int64_t i = 0; i < n; i++) {                                                          \
            int64_t v = (int64_t)ix[i * s[2]];                                                     \
            if (v < 0 || v >= c->size) {                                                           \
                note_bad(&c->bad, v);                                                              \
                continue;                                                                          \
            }                                                                                      \
            o[i * s[0]] = x[i * s[1] + v * c->stride];                                             \
        }                                                                                          \
    }
GATHER_RUN(gather_u8_i64, uint8_t, int64_t)
GATHER_RUN(gather_u16_i64, uint16_t, int64_t)
GATHER_RUN(gather_u32_i64, uint32_t, int64_t)
GATHER_RUN(gather_u64_i64, uint64_t, int64_t)
GATHER_RUN(gather_u8_i32, uint8_t, int32_t)
GATHER_RUN(gather_u16_i32, uint16_t, int32_t)
GATHER_RUN(gather_u32_i32, uint32_t, int32_t)
GATHER_RUN(gather_u64_i32, uint64_t, int32_t)
#undef GATHER_RUN

static bn_iter_fn gather_fn(size_t es, bn_dtype index_dtype)
{
    bool i64 = index_dtype == BN_I64;
    switch (es) {
    case 1: return i64 ? gather_u8_i64 : gather_u8_i32;
    case 2: return i64 ? gather_u16_i64 : gather_u16_i32;
    case 4: return i64 ? gather_u32_i64 : gather_u32_i32;
    default: return i64 ? gather_u64_i64 : gather_u64_i32;
    }
}

/* Copies a contiguous slab of c->slab elements per index (indices already checked). */
static void gather_slabs(void *vctx, char *const *p, const int64_t *s, int64_t n)
{
    const gather_ctx *c = vctx;
    int64_t es = (int64_t)c->es;
    size_t bytes = (size_t)(c->slab * es);
    for (int64_t i = 0; i < n; i++) {
        int64_t v =
            load_index(p[2] + i * s[2] * (int64_t)bn_dtype_size(c->index_dtype), c->index_dtype);
        memcpy(p[0] + i * s[0] * es, p[1] + (i * s[1] + v * c->stride) * es, bytes);
    }
}

/* Runs the gather iteration over the first nd dims of out (x and index viewed alike). */
static void gather_iterate(const bn_tview *x, int dim, const bn_tview *index, const bn_tview *out,
                           int nd, gather_ctx *c, bn_iter_fn fn, int64_t min_parallel)
{
    bn_tview o = *out, xv = *x, iv = *index;
    o.ndim = xv.ndim = iv.ndim = nd;
    for (int d = 0; d < nd; d++) xv.shape[d] = iv.shape[d] = o.shape[d];
    xv.strides[dim] = 0;
    const bn_tview *ops[3] = {&o, &xv, &iv};
    bn_iter it;
    bn_iter_init(&it, 3, ops);
    bn_iter_run(&it, fn, c, min_parallel);
}

bn_status bn_cpu_gather(const bn_tview *x, int dim, const bn_tview *index, const bn_tview *out)
{
    gather_ctx c = {.size = x->shape[dim],
                    .stride = x->strides[dim],
                    .es = bn_dtype_size(x->dtype),
                    .index_dtype = index->dtype,
                    .slab = 1};
    gather_iterate(x, dim, index, out, out->ndim, &c, gather_fn(c.es, index->dtype), 0);
    if (c.bad.has) return report_bad(&c.bad, dim, c.size);
    return BN_OK;
}

/* ---- index_select ---------------------------------------------------------------------------
 * x is (A, N, B), index is (M), out is (A, M, B) where A and B stand for the dims before and
 * after dim: out[a][m][b] = x[a][index[m]][b]. */

/* The elements of the dims after dim when they form one contiguous run in t, else 0. */
static int64_t contiguous_tail(const bn_tview *t, int dim)
{
    int64_t expect = 1;
    for (int d = t->ndim - 1; d > dim; d--) {
        if (t->shape[d] != 1 && t->strides[d] != expect) return 0;
        expect *= t->shape[d];
    }
    return expect;
}

bn_status bn_cpu_index_select(const bn_tview *x, int dim, const bn_tview *index,
                              const bn_tview *out)
{
    int64_t m = index->ndim ? index->shape[0] : 1, n = x->shape[dim];
    int64_t istride = index->ndim ? index->strides[0] : 0;
    size_t ies = bn_dtype_size(index->dtype);
    for (int64_t j = 0; j < m; j++) {
        int64_t v =
            load_index((const char *)index->data + j * istride * (int64_t)ies, index->dtype);
        if (v < 0 || v >= n) return report_bad(&(bad_index){1, v}, dim, n);
    }
    /* index broadcast over out's shape: stride only along dim */
    bn_tview iv = *index;
    iv.ndim = out->ndim;
    for (int d = 0; d < out->ndim; d++) {
        iv.shape[d] = out->shape[d];
        iv.strides[d] = d == dim ? istride : 0;
    }
    gather_ctx c = {.size = n,
                    .stride = x->strides[dim],
                    .es = bn_dtype_size(x->dtype),
                    .index_dtype = index->dtype,
                    .slab = 1};
    int64_t tx = contiguous_tail(x, dim), to = contiguous_tail(out, dim);
    if (tx > 1 && tx == to) {
        /* whole rows: one memcpy per (outer position, index) */
        c.slab = tx;
        int64_t min_par = BN_PAR_MIN_ELEMS / tx;
        gather_iterate(x, dim, &iv, out, dim + 1, &c, gather_slabs, min_par > 0 ? min_par : 1);
        return BN_OK;
    }
    gather_iterate(x, dim, &iv, out, out->ndim, &c, gather_fn(c.es, index->dtype), 0);
    return BN_OK;
}

/* ---- scatter --------------------------------------------------------------------------------
 * index is (..., M, ...), src at least index's size in every dim, out at least index's size in
 * every dim but dim: out[..index[..i..]..] (= or +=) src[..i..]. Each line along dim runs
 * serially on one thread, in index order, and lines never write the same element of out, so
 * duplicates resolve the same way for any thread count (set: last wins; add: summed in order). */
typedef struct scatter_ctx {
    bn_scatter_op op;
    bn_dtype dtype, index_dtype;
    int64_t m;    /* index's size along dim */
    int64_t size; /* out's size along dim */
    int64_t ostride, sstride, istride;
    bad_index bad;
} scatter_ctx;

static inline void add_elem(char *dst, const char *src, bn_dtype dt)
{
    switch (dt) {
    case BN_F32: *(float *)dst += *(const float *)src; break;
    case BN_F64: *(double *)dst += *(const double *)src; break;
    case BN_F16:
        *(uint16_t *)dst = bn_f32_to_f16(bn_f16_to_f32(*(const uint16_t *)dst) +
                                         bn_f16_to_f32(*(const uint16_t *)src));
        break;
    case BN_BF16:
        *(uint16_t *)dst = bn_f32_to_bf16(bn_bf16_to_f32(*(const uint16_t *)dst) +
                                          bn_bf16_to_f32(*(const uint16_t *)src));
        break;
    /* integers wrap like PyTorch's: add as unsigned to keep it defined */
    case BN_I8:
    case BN_U8: *(uint8_t *)dst = (uint8_t)(*(uint8_t *)dst + *(const uint8_t *)src); break;
    case BN_I32: *(uint32_t *)dst += *(const uint32_t *)src; break;
    case BN_I64: *(uint64_t *)dst += *(const uint64_t *)src; break;
    case BN_BOOL: *(bool *)dst = *(bool *)dst || *(const bool *)src; break;
    default: BN_ASSERT(0);
    }
}

/* operand 0 is index, 1 is out (at 0 along dim), 2 is src */
static void scatter_lines(void *vctx, const bn_lines *l, int64_t begin, int64_t end)
{
    scatter_ctx *c = vctx;
    int64_t es = (int64_t)bn_dtype_size(c->dtype), ies = (int64_t)bn_dtype_size(c->index_dtype);
    bn_lines_cursor cur;
    bn_lines_seek(l, begin, &cur);
    for (int64_t line = begin; line < end; line++, bn_lines_next(l, &cur)) {
        for (int64_t i = 0; i < c->m; i++) {
            int64_t v = load_index(cur.p[0] + i * c->istride * ies, c->index_dtype);
            if (v < 0 || v >= c->size) {
                note_bad(&c->bad, v);
                continue;
            }
            char *dst = cur.p[1] + v * c->ostride * es;
            const char *src = cur.p[2] + i * c->sstride * es;
            if (c->op == BN_SCATTER_SET)
                copy_elem(dst, src, (size_t)es);
            else
                add_elem(dst, src, c->dtype);
        }
    }
}

bn_status bn_cpu_scatter(bn_scatter_op op, const bn_tview *out, int dim, const bn_tview *index,
                         const bn_tview *src)
{
    scatter_ctx c = {.op = op,
                     .dtype = out->dtype,
                     .index_dtype = index->dtype,
                     .m = index->shape[dim],
                     .size = out->shape[dim],
                     .ostride = out->strides[dim],
                     .sstride = src->strides[dim],
                     .istride = index->strides[dim]};
    const bn_tview *ops[3] = {index, out, src};
    bn_lines l;
    bn_lines_init(&l, 3, ops, dim);
    bn_lines_run(&l, scatter_lines, &c, c.m);
    if (c.bad.has) return report_bad(&c.bad, dim, c.size);
    return BN_OK;
}
