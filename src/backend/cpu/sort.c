/* backend/cpu/sort.c — stable sort and top-k along one dim.
 *
 * Every element becomes a 64-bit unsigned key whose integer order is the element order PyTorch
 * uses: NaN above +inf (all NaNs equal), -0.0 equal to +0.0, integers exact (no trip through
 * double for i64). Descending order is the bitwise complement of the key, so one ascending
 * comparison serves both directions and equal elements keep their original order either way.
 * Lines are sorted as (key, position) pairs, which makes the order total: a stable sort and a
 * heap selection of the k first pairs agree exactly, so topk's choice among ties is the stable
 * sort's (the first occurrences), whichever path ran. Values are copied bit for bit from the
 * input through the sorted positions. */
#include "backend/cpu/cpu_kernels.h"
#include "backend/cpu/index_lines.h"

#include <math.h>
#include <string.h>

typedef struct sort_pair {
    uint64_t key;
    int64_t pos; /* position along the line */
} sort_pair;

static inline bool pair_less(sort_pair a, sort_pair b)
{
    return a.key < b.key || (a.key == b.key && a.pos < b.pos);
}

/* ---- keys ------------------------------------------------------------------------------------ */
static inline uint64_t f64_key(double v)
{
    if (isnan(v)) return UINT64_MAX; /* above +inf */
    if (v == 0.0) v = 0.0;           /* -0.0 sorts with +0.0 */
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    /* negative: flip every bit; positive: set the sign bit (branch-free: signs are random) */
    return u ^ ((uint64_t)((int64_t)u >> 63) | (UINT64_C(1) << 63));
}

/* f32 keys keep the order in the top 32 bits (keys are only compared within one dtype). */
static inline uint64_t f32_key(float v)
{
    if (isnan(v)) return UINT64_MAX;
    if (v == 0.0f) v = 0.0f;
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    u ^= (uint32_t)((int32_t)u >> 31) | (UINT32_C(1) << 31);
    return (uint64_t)u << 32;
}

static inline uint64_t signed_key(int64_t v) { return (uint64_t)v ^ (UINT64_C(1) << 63); }

static inline uint64_t f16_key(uint16_t v) { return f32_key(bn_f16_to_f32(v)); }
static inline uint64_t bf16_key(uint16_t v) { return f32_key(bn_bf16_to_f32(v)); }
static inline uint64_t i8_key(int8_t v) { return signed_key(v); }
static inline uint64_t i32_key(int32_t v) { return signed_key(v); }
static inline uint64_t i64_key(int64_t v) { return signed_key(v); }
static inline uint64_t u8_key(uint8_t v) { return v; }
static inline uint64_t bool_key(bool v) { return v; }

static inline uint64_t element_key(const char *p, bn_dtype dt)
{
    switch (dt) {
    case BN_F32: return f32_key(*(const float *)p);
    case BN_F64: return f64_key(*(const double *)p);
    case BN_F16: return f16_key(*(const uint16_t *)p);
    case BN_BF16: return bf16_key(*(const uint16_t *)p);
    case BN_I8: return i8_key(*(const int8_t *)p);
    case BN_I32: return i32_key(*(const int32_t *)p);
    case BN_I64: return i64_key(*(const int64_t *)p);
    case BN_U8: return u8_key(*(const uint8_t *)p);
    case BN_BOOL: return bool_key(*(const bool *)p);
    default: BN_ASSERT(0);
    }
}

/* Fills pairs[0..n) from a strided line; flip = ~0 for descending, 0 for ascending. */
static void load_keys(sort_pair *pairs, const char *x, int64_t n, int64_t stride, bn_dtype dt,
                      uint64_t flip)
{
    int64_t es = (int64_t)bn_dtype_size(dt);
    for (int64_t i = 0; i < n; i++) {
        pairs[i].key = element_key(x + i * stride * es, dt) ^ flip;
        pairs[i].pos = i;
    }
}

/* ---- merge sort of pairs (tmp has room for n) ------------------------------------------------ */
#define SORT_RUN 16

static void insertion_sort(sort_pair *a, int64_t n)
{
    for (int64_t i = 1; i < n; i++) {
        sort_pair v = a[i];
        int64_t j = i;
        while (j > 0 && pair_less(v, a[j - 1])) {
            a[j] = a[j - 1];
            j--;
        }
        a[j] = v;
    }
}

static void merge_runs(const sort_pair *src, sort_pair *dst, int64_t n, int64_t width)
{
    for (int64_t lo = 0; lo < n; lo += 2 * width) {
        int64_t mid = lo + width < n ? lo + width : n;
        int64_t hi = lo + 2 * width < n ? lo + 2 * width : n;
        int64_t i = lo, j = mid, k = lo;
        while (i < mid && j < hi) dst[k++] = pair_less(src[j], src[i]) ? src[j++] : src[i++];
        while (i < mid) dst[k++] = src[i++];
        while (j < hi) dst[k++] = src[j++];
    }
}

/* Sorts a[0..n) by (key, pos); the result ends in a. */
static void sort_pairs(sort_pair *a, sort_pair *tmp, int64_t n)
{
    for (int64_t lo = 0; lo < n; lo += SORT_RUN)
        insertion_sort(a + lo, n - lo < SORT_RUN ? n - lo : SORT_RUN);
    sort_pair *src = a, *dst = tmp;
    for (int64_t width = SORT_RUN; width < n; width *= 2) {
        merge_runs(src, dst, n, width);
        sort_pair *t = src;
        src = dst;
        dst = t;
    }
    if (src != a) memcpy(a, src, (size_t)n * sizeof *a);
}

/* ---- heap selection: the k smallest pairs of a line, streamed into h[0..k), then sorted ----- */
static void sift_down(sort_pair *h, int64_t k, int64_t i)
{
    for (;;) {
        int64_t l = 2 * i + 1, r = l + 1, big = i;
        if (l < k && pair_less(h[big], h[l])) big = l;
        if (r < k && pair_less(h[big], h[r])) big = r;
        if (big == i) return;
        sort_pair t = h[i];
        h[i] = h[big];
        h[big] = t;
        i = big;
    }
}

/* A max-heap of the first k pairs; a later element enters only when its key is smaller than
 * the largest (on equal keys its larger position loses), so no pair is built for most of the
 * line. One loop per dtype keeps the key computation inline. */
#define SELECT_LINE(NAME, T, KEY)                                                                  \
    static void NAME(sort_pair *h, const char *xp, int64_t n, int64_t stride, int64_t k,           \
                     uint64_t flip)                                                                \
    {                                                                                              \
        const T *x = (const T *)xp;                                                                \
        for (int64_t i = 0; i < k; i++) h[i] = (sort_pair){KEY(x[i * stride]) ^ flip, i};          \
        for (int64_t i = k / 2 - 1; i >= 0; i--) sift_down(h, k, i);                               \
        for (int64_t i = k; i < n; i++) {                                                          \
            uint64_t key = KEY(x[i * stride]) ^ flip;                                              \
            if (key < h[0].key) {                                                                  \
                h[0] = (sort_pair){key, i};                                                        \
                sift_down(h, k, 0);                                                                \
            }                                                                                      \
        }                                                                                          \
    }
SELECT_LINE(select_f32, float, f32_key)
SELECT_LINE(select_f64, double, f64_key)
SELECT_LINE(select_f16, uint16_t, f16_key)
SELECT_LINE(select_bf16, uint16_t, bf16_key)
SELECT_LINE(select_i8, int8_t, i8_key)
SELECT_LINE(select_i32, int32_t, i32_key)
SELECT_LINE(select_i64, int64_t, i64_key)
SELECT_LINE(select_u8, uint8_t, u8_key)
SELECT_LINE(select_bool, bool, bool_key)
#undef SELECT_LINE

typedef void (*select_fn)(sort_pair *h, const char *x, int64_t n, int64_t stride, int64_t k,
                          uint64_t flip);

static select_fn select_for(bn_dtype dt)
{
    switch (dt) {
    case BN_F32: return select_f32;
    case BN_F64: return select_f64;
    case BN_F16: return select_f16;
    case BN_BF16: return select_bf16;
    case BN_I8: return select_i8;
    case BN_I32: return select_i32;
    case BN_I64: return select_i64;
    case BN_U8: return select_u8;
    case BN_BOOL: return select_bool;
    default: BN_ASSERT(0);
    }
}

/* ---- writing results ------------------------------------------------------------------------- */
typedef struct sort_ctx {
    bn_dtype dtype;
    int dim;
    int64_t n;     /* line length in x */
    int64_t k;     /* entries written per line (n for sort) */
    uint64_t flip; /* ~0 sorts descending */
    bool select;   /* topk: choose the k first, then sort them */
    int64_t xstride, vstride, istride;
    int oom; /* set by a thread whose scratch allocation failed */
} sort_ctx;

/* operand 0 is x, 1 values (or NULL), 2 indices (or NULL) */
static void sort_lines(void *vctx, const bn_lines *l, int64_t begin, int64_t end)
{
    sort_ctx *c = vctx;
    bool heap = c->select && c->k * 4 < c->n; /* else a full sort */
    int64_t room = heap ? c->k : c->n;        /* pairs held at once */
    sort_pair *pairs = malloc((size_t)(2 * room) * sizeof *pairs + 1);
    if (!pairs) {
        __atomic_store_n(&c->oom, 1, __ATOMIC_RELAXED);
        return;
    }
    sort_pair *tmp = pairs + room;
    size_t es = bn_dtype_size(c->dtype);
    bn_lines_cursor cur;
    bn_lines_seek(l, begin, &cur);
    for (int64_t line = begin; line < end; line++, bn_lines_next(l, &cur)) {
        if (heap) {
            select_for(c->dtype)(pairs, cur.p[0], c->n, c->xstride, c->k, c->flip);
            sort_pairs(pairs, tmp, c->k);
        } else {
            load_keys(pairs, cur.p[0], c->n, c->xstride, c->dtype, c->flip);
            sort_pairs(pairs, tmp, c->n);
        }
        for (int64_t j = 0; j < c->k; j++) {
            if (cur.p[1])
                memcpy(cur.p[1] + j * c->vstride * (int64_t)es,
                       cur.p[0] + pairs[j].pos * c->xstride * (int64_t)es, es);
            if (cur.p[2]) *(int64_t *)(cur.p[2] + j * c->istride * 8) = pairs[j].pos;
        }
    }
    free(pairs);
}

static bn_status run_sort(const bn_tview *x, int dim, sort_ctx *c, const bn_tview *values,
                          const bn_tview *indices)
{
    if (!values && !indices) return BN_OK;
    c->xstride = x->strides[dim];
    c->vstride = values ? values->strides[dim] : 0;
    c->istride = indices ? indices->strides[dim] : 0;
    const bn_tview *ops[3] = {x, values, indices};
    bn_lines l;
    bn_lines_init(&l, 3, ops, dim);
    if (c->n == 0 || c->k == 0) return BN_OK;
    /* n log n work per line */
    int64_t work = c->n * (c->n > 1 ? 64 - __builtin_clzll((unsigned long long)c->n) : 1);
    bn_lines_run(&l, sort_lines, c, work);
    if (c->oom)
        return bn__error(BN_ERR_OOM, "out of memory for sort scratch space (%lld elements)",
                         (long long)c->n);
    return BN_OK;
}

/* x, values and indices (i64) have the same shape. */
bn_status bn_cpu_sort(const bn_tview *x, int dim, bool descending, const bn_tview *values,
                      const bn_tview *indices)
{
    int64_t n = x->shape[dim];
    sort_ctx c = {.dtype = x->dtype,
                  .dim = dim,
                  .n = n,
                  .k = n,
                  .flip = descending ? UINT64_MAX : 0,
                  .select = false};
    return run_sort(x, dim, &c, values, indices);
}

/* x is (..., N, ...); values and indices (i64) are (..., k, ...). */
bn_status bn_cpu_topk(const bn_tview *x, int64_t k, int dim, bool largest, const bn_tview *values,
                      const bn_tview *indices)
{
    sort_ctx c = {.dtype = x->dtype,
                  .dim = dim,
                  .n = x->shape[dim],
                  .k = k,
                  .flip = largest ? UINT64_MAX : 0,
                  .select = true};
    return run_sort(x, dim, &c, values, indices);
}
