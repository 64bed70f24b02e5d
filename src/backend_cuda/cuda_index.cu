/* backend_cuda/cuda_index.cu — indexing kernels: index_select, gather, scatter (set / add),
 * stable sort and top-k along one dim, tril / triu. Same results as the CPU backend
 * (src/backend/cpu/index.c, sort.c, tri.c), bit for bit:
 *
 *  - Values only move (except scatter-add), so copies go by element size, never through a float.
 *  - Index values are range-checked on the device. A bad one is skipped (nothing is written
 *    through it) and its flat position goes into the caller's flag with atomicMin, so the
 *    reported index is the first bad one in a fixed order, whatever the thread timing; a
 *    one-thread kernel then reads that index's value into the flag for the glue to report.
 *  - Scatter resolves duplicates in index order like the CPU (set: the last wins; add: summed in
 *    order, rounding to the dtype after each add). One thread walks a whole line along dim when
 *    there are many lines or short ones; otherwise (few, long lines) the pairs (line, target)
 *    are radix-sorted (CUB, stable, so equal targets keep index order) and one thread walks each
 *    run of equal targets.
 *  - Sort keys are the CPU's: a u64 per element whose integer order is PyTorch's element order
 *    (NaN above +inf, -0.0 equal to +0.0), complemented for descending order, compared together
 *    with the position so the order is total and a bitonic network gives the stable result.
 *    Lines up to SORT_SMEM_MAX elements sort in shared memory, one block per line; longer ones
 *    go through CUB's segmented radix sort (stable) in batches of lines. Top-k is the sorted
 *    line's first k entries, so its choice among ties is the stable sort's, as on the CPU.
 *
 * What it does not do: no fast path for contiguous rows (index_select copies element-wise). */
#include "backend_cuda/cuda_common.cuh"
#include "backend_cuda/cuda_index.h"

#include <cub/cub.cuh>
#include <limits.h>

enum { SCATTER_SET = 0, SCATTER_ADD = 1 };

#define SORT_SMEM_MAX 2048                   /* longest line sorted in shared memory */
#define SORT_BATCH_ITEMS ((int64_t)1 << 24)  /* elements per CUB segmented sort call */
#define SORT_SEGMENTED_MAX ((int64_t)1 << 30) /* longer lines: one DeviceRadixSort each */
#define SCRATCH_ALIGN 256

static const uint64_t NO_BAD = ~(uint64_t)0;

/* Gives BCU_ERR_INTERNAL with a message naming what failed. */
static int cuda_failed(const char *what, cudaError_t e)
{
    cudaGetLastError();
    unsupported("%s failed: %s", what, cudaGetErrorString(e)); /* formats the message */
    return BCU_ERR_INTERNAL;
}

static size_t align_up(size_t n) { return (n + SCRATCH_ALIGN - 1) / SCRATCH_ALIGN * SCRATCH_ALIGN; }

static bool index_dtype_ok(int dt) { return dt == BCU_I64 || dt == BCU_I32; }

/* ---- the bad-index flag ------------------------------------------------------------------- */
__device__ inline void note_bad(uint64_t *flag, int64_t pos)
{
    if (flag) atomicMin((unsigned long long *)flag, (unsigned long long)pos);
}

/* An index tensor as seen by the flat positions its kernel records: row-major over shape. */
struct IdxGeo {
    int ndim;
    int64_t shape[BCU_MAX_DIMS], st[BCU_MAX_DIMS];
};

/* One thread: flag[1] = the index at flat position flag[0], when there is one. */
template <class IT> __global__ void bad_value_kernel(IdxGeo g, const IT *index, uint64_t *flag)
{
    uint64_t p = flag[0];
    if (p == NO_BAD) return;
    int64_t rem = (int64_t)p, off = 0;
    for (int d = g.ndim - 1; d >= 0; d--) {
        off += (rem % g.shape[d]) * g.st[d];
        rem /= g.shape[d];
    }
    flag[1] = (uint64_t)(int64_t)index[off];
}

static int flag_init(bcu_stream s, uint64_t *flag)
{
    if (!flag) return 0;
    cudaError_t e = cudaMemsetAsync(flag, 0xff, 2 * sizeof(uint64_t), s);
    return e == cudaSuccess ? 0 : cuda_failed("cudaMemsetAsync (index check flag)", e);
}

static int flag_finish(bcu_stream s, const IdxGeo &g, const void *index, int index_dtype,
                       uint64_t *flag)
{
    if (!flag) return 0;
    if (index_dtype == BCU_I64)
        bad_value_kernel<int64_t><<<1, 1, 0, s>>>(g, (const int64_t *)index, flag);
    else
        bad_value_kernel<int32_t><<<1, 1, 0, s>>>(g, (const int32_t *)index, flag);
    return launch_status("index check");
}

/* ---- element types by size (values only move) ---------------------------------------------- */
template <int ES> struct Bits;
template <> struct Bits<1> {
    typedef uint8_t T;
};
template <> struct Bits<2> {
    typedef uint16_t T;
};
template <> struct Bits<4> {
    typedef uint32_t T;
};
template <> struct Bits<8> {
    typedef uint64_t T;
};

#define DISPATCH_SIZE(es, NAME, ...)                                                               \
    switch (es) {                                                                                  \
    case 1: {                                                                                      \
        typedef Bits<1>::T NAME;                                                                   \
        __VA_ARGS__                                                                                \
    } break;                                                                                       \
    case 2: {                                                                                      \
        typedef Bits<2>::T NAME;                                                                   \
        __VA_ARGS__                                                                                \
    } break;                                                                                       \
    case 4: {                                                                                      \
        typedef Bits<4>::T NAME;                                                                   \
        __VA_ARGS__                                                                                \
    } break;                                                                                       \
    case 8: {                                                                                      \
        typedef Bits<8>::T NAME;                                                                   \
        __VA_ARGS__                                                                                \
    } break;                                                                                       \
    default: break;                                                                                \
    }

/* ---- gather / index_select ------------------------------------------------------------------
 * Over out's elements with three operands: out, x with its stride along dim zeroed (so it points
 * at x[..0..]) and index. A bad index's position is its flat position in out (= index's shape). */
template <class T, class IT>
__global__ void gather_kernel(Geo g, T *out, const T *x, const IT *index, int64_t size,
                              int64_t xstride, uint64_t *flag)
{
    GRID_LOOP(i, g.n)
    {
        int64_t off[BCU_OPS];
        geo_offsets(g, i, off);
        int64_t v = (int64_t)index[off[2]];
        if (v < 0 || v >= size) {
            note_bad(flag, i);
            continue;
        }
        out[off[0]] = x[off[1] + v * xstride];
    }
}

template <class IT>
static int launch_gather(bcu_stream s, const Geo &g, const bcu_view *x, int dim, const void *index,
                         const bcu_view *out, uint64_t *flag)
{
    int64_t size = x->shape[dim], xstride = x->strides[dim];
    DISPATCH_SIZE(dtype_size(x->dtype), U, {
        gather_kernel<U, IT><<<grid_for(g.n), BCU_THREADS, 0, s>>>(
            g, (U *)out->data, (const U *)x->data, (const IT *)index, size, xstride, flag);
        return launch_status("gather");
    });
    return unsupported("gather: dtype %s", bcu_dtype_name(x->dtype));
}

static int gather_geo(const bcu_view *x, int dim, const bcu_view *index, const bcu_view *out,
                      Geo *g)
{
    bcu_view xz = *x;
    xz.strides[dim] = 0;
    const bcu_view *ops[3] = {out, &xz, index};
    *g = make_geo(ops, 3);
    return 0;
}

extern "C" int bcu_index_gather(bcu_stream s, const bcu_view *x, int dim, const bcu_view *index,
                                const bcu_view *out, uint64_t *flag)
{
    if (!dtype_size(x->dtype)) return unsupported("gather: dtype %s", bcu_dtype_name(x->dtype));
    if (!index_dtype_ok(index->dtype))
        return unsupported("gather: index dtype %s", bcu_dtype_name(index->dtype));
    int rc = flag_init(s, flag);
    if (rc) return rc;
    Geo g;
    gather_geo(x, dim, index, out, &g);
    if (g.n == 0) return 0;
    rc = index->dtype == BCU_I64 ? launch_gather<int64_t>(s, g, x, dim, index->data, out, flag)
                                 : launch_gather<int32_t>(s, g, x, dim, index->data, out, flag);
    if (rc) return rc;
    IdxGeo ig;
    ig.ndim = index->ndim;
    for (int d = 0; d < index->ndim; d++) {
        ig.shape[d] = out->shape[d];
        ig.st[d] = index->strides[d];
    }
    return flag_finish(s, ig, index->data, index->dtype, flag);
}

/* index (M) checked once, position j = its element number */
template <class IT>
__global__ void check_index_kernel(const IT *index, int64_t m, int64_t stride, int64_t size,
                                   uint64_t *flag)
{
    GRID_LOOP(j, m)
    {
        int64_t v = (int64_t)index[j * stride];
        if (v < 0 || v >= size) note_bad(flag, j);
    }
}

/* x is (A, N, B), index is (M) or 0-d, out is (A, M, B): out[a][m][b] = x[a][index[m]][b]. */
extern "C" int bcu_index_select(bcu_stream s, const bcu_view *x, int dim, const bcu_view *index,
                                const bcu_view *out, uint64_t *flag)
{
    if (!dtype_size(x->dtype))
        return unsupported("index_select: dtype %s", bcu_dtype_name(x->dtype));
    if (!index_dtype_ok(index->dtype))
        return unsupported("index_select: index dtype %s", bcu_dtype_name(index->dtype));
    int64_t m = index->ndim ? index->shape[0] : 1, istride = index->ndim ? index->strides[0] : 0;
    int64_t size = x->shape[dim];
    int rc = flag_init(s, flag);
    if (rc) return rc;
    if (flag && m > 0) {
        if (index->dtype == BCU_I64)
            check_index_kernel<int64_t><<<grid_for(m), BCU_THREADS, 0, s>>>(
                (const int64_t *)index->data, m, istride, size, flag);
        else
            check_index_kernel<int32_t><<<grid_for(m), BCU_THREADS, 0, s>>>(
                (const int32_t *)index->data, m, istride, size, flag);
        rc = launch_status("index_select check");
        if (rc) return rc;
        IdxGeo ig;
        ig.ndim = 1;
        ig.shape[0] = m;
        ig.st[0] = istride;
        rc = flag_finish(s, ig, index->data, index->dtype, flag);
        if (rc) return rc;
    }
    /* index broadcast over out's shape: a stride only along dim */
    bcu_view iv = *index;
    iv.ndim = out->ndim;
    for (int d = 0; d < out->ndim; d++) {
        iv.shape[d] = out->shape[d];
        iv.strides[d] = d == dim ? istride : 0;
    }
    Geo g;
    gather_geo(x, dim, &iv, out, &g);
    if (g.n == 0) return 0;
    /* bad indices were recorded above; the copy only skips them */
    return index->dtype == BCU_I64 ? launch_gather<int64_t>(s, g, x, dim, index->data, out, NULL)
                                   : launch_gather<int32_t>(s, g, x, dim, index->data, out, NULL);
}

/* ---- lines along one dim (scatter, sort) ---------------------------------------------------
 * Operand 0 defines the lines: every dim but dim, walked row-major; the others give strides
 * (an absent operand has zero strides). */
struct LineGeo {
    int nk;
    int64_t nlines, len; /* number of lines; operand 0's size along dim */
    int64_t kshape[BCU_MAX_DIMS];
    int64_t kst[3][BCU_MAX_DIMS]; /* strides at the kept dims */
    int64_t dst[3];               /* strides along dim */
};

static LineGeo make_line_geo(const bcu_view *const *ops, int dim)
{
    LineGeo g;
    const bcu_view *o0 = ops[0];
    g.nk = 0;
    g.nlines = 1;
    g.len = o0->shape[dim];
    for (int k = 0; k < 3; k++) g.dst[k] = ops[k] ? ops[k]->strides[dim] : 0;
    for (int d = 0; d < o0->ndim; d++) {
        if (d == dim) continue;
        g.kshape[g.nk] = o0->shape[d];
        for (int k = 0; k < 3; k++) g.kst[k][g.nk] = ops[k] ? ops[k]->strides[d] : 0;
        g.nk++;
        g.nlines *= o0->shape[d];
    }
    return g;
}

__device__ inline void line_offsets(const LineGeo &g, int64_t l, int64_t *off)
{
    off[0] = off[1] = off[2] = 0;
    for (int d = g.nk - 1; d >= 0; d--) {
        int64_t idx = l % g.kshape[d];
        l /= g.kshape[d];
        for (int k = 0; k < 3; k++) off[k] += idx * g.kst[k][d];
    }
}

/* index's geometry in line order: the kept dims, then dim (position = line * len + i) */
static IdxGeo line_idx_geo(const bcu_view *index, int dim)
{
    IdxGeo ig;
    ig.ndim = 0;
    for (int d = 0; d < index->ndim; d++) {
        if (d == dim) continue;
        ig.shape[ig.ndim] = index->shape[d];
        ig.st[ig.ndim++] = index->strides[d];
    }
    ig.shape[ig.ndim] = index->shape[dim];
    ig.st[ig.ndim++] = index->strides[dim];
    return ig;
}

/* ---- scatter ----------------------------------------------------------------------------------
 * index is (..., M, ...), src at least index's size, out at least index's size but along dim:
 * out[..index[..i..]..] (= or +=) src[..i..]. Lines are index's; operand 1 is out, 2 is src. */

/* a + b in the dtype, as the CPU's add_elem: halves through f32 rounded back each time,
 * integers wrapping, bool as or */
template <class T> __device__ inline T add_elem(T a, T b) { return a + b; }
template <> __device__ inline __half add_elem<__half>(__half a, __half b)
{
    return __float2half_rn(__half2float(a) + __half2float(b));
}
template <> __device__ inline __nv_bfloat16 add_elem<__nv_bfloat16>(__nv_bfloat16 a,
                                                                   __nv_bfloat16 b)
{
    return __float2bfloat16_rn(__bfloat162float(a) + __bfloat162float(b));
}
template <> __device__ inline int8_t add_elem<int8_t>(int8_t a, int8_t b)
{
    return (int8_t)(uint8_t)((uint8_t)a + (uint8_t)b);
}
template <> __device__ inline uint8_t add_elem<uint8_t>(uint8_t a, uint8_t b)
{
    return (uint8_t)(a + b);
}
template <> __device__ inline int32_t add_elem<int32_t>(int32_t a, int32_t b)
{
    return (int32_t)((uint32_t)a + (uint32_t)b);
}
template <> __device__ inline int64_t add_elem<int64_t>(int64_t a, int64_t b)
{
    return (int64_t)((uint64_t)a + (uint64_t)b);
}
template <> __device__ inline bcu_bool add_elem<bcu_bool>(bcu_bool a, bcu_bool b)
{
    bcu_bool r = {(uint8_t)(a.v || b.v)};
    return r;
}

/* many lines or short ones: one thread per line, in index order (lines never share a target) */
template <class T, class IT, bool ADD>
__global__ void scatter_lines_kernel(LineGeo g, const IT *index, T *out, const T *src,
                                     int64_t size, uint64_t *flag)
{
    GRID_LOOP(l, g.nlines)
    {
        int64_t off[3];
        line_offsets(g, l, off);
        for (int64_t i = 0; i < g.len; i++) {
            int64_t v = (int64_t)index[off[0] + i * g.dst[0]];
            if (v < 0 || v >= size) {
                note_bad(flag, l * g.len + i);
                continue;
            }
            T *o = out + off[1] + v * g.dst[1];
            T sv = src[off[2] + i * g.dst[2]];
            if constexpr (ADD)
                *o = add_elem<T>(*o, sv);
            else
                *o = sv;
        }
    }
}

/* few long lines: key = line * size + target, value = position (line * len + i); a bad index
 * gets position -1, which the run walker skips */
template <class IT>
__global__ void scatter_keys_kernel(LineGeo g, const IT *index, int64_t size, uint64_t *keys,
                                    int64_t *pos, uint64_t *flag)
{
    GRID_LOOP(p, g.nlines * g.len)
    {
        int64_t l = p / g.len, i = p % g.len;
        int64_t off[3];
        line_offsets(g, l, off);
        int64_t v = (int64_t)index[off[0] + i * g.dst[0]];
        if (v < 0 || v >= size) {
            note_bad(flag, p);
            keys[p] = 0;
            pos[p] = -1;
            continue;
        }
        keys[p] = (uint64_t)l * (uint64_t)size + (uint64_t)v;
        pos[p] = p;
    }
}

/* One thread per run of equal keys (sorted, stable: positions ascend within a run). */
template <class T, bool ADD>
__global__ void scatter_runs_kernel(LineGeo g, int64_t n, const uint64_t *keys, const int64_t *pos,
                                    T *out, const T *src, int64_t size)
{
    GRID_LOOP(j, n)
    {
        uint64_t key = keys[j];
        if (j > 0 && keys[j - 1] == key) continue;
        T *o = NULL;
        T acc = T();
        int64_t off[3] = {0, 0, 0};
        for (int64_t q = j; q < n && keys[q] == key; q++) {
            int64_t p = pos[q];
            if (p < 0) continue;
            int64_t l = p / g.len, i = p % g.len;
            if (!o) {
                line_offsets(g, l, off);
                int64_t v = (int64_t)(key - (uint64_t)l * (uint64_t)size);
                o = out + off[1] + v * g.dst[1];
                acc = *o;
            }
            T sv = src[off[2] + i * g.dst[2]];
            if constexpr (ADD)
                acc = add_elem<T>(acc, sv);
            else
                acc = sv;
        }
        if (o) *o = acc;
    }
}

static bool scatter_by_lines(const LineGeo &g) { return g.len <= 64 || g.nlines >= 16384; }

static int key_bits(uint64_t max_key) { return max_key ? 64 - __builtin_clzll(max_key) : 1; }

/* Scratch layout of the sorted path: keys in/out, positions in/out, then CUB's temp storage. */
struct ScatterPlan {
    bool by_lines;
    int64_t n;
    int end_bit;
    size_t part, temp, total;
};

static int scatter_plan(const bcu_view *out, int dim, const bcu_view *index, ScatterPlan *p)
{
    const bcu_view *ops[3] = {index, out, NULL};
    LineGeo g = make_line_geo(ops, dim);
    p->by_lines = scatter_by_lines(g);
    p->n = g.nlines * g.len;
    p->part = p->temp = p->total = 0;
    p->end_bit = 1;
    if (p->by_lines || p->n == 0) return 0;
    uint64_t size = (uint64_t)out->shape[dim];
    p->end_bit = key_bits(size ? (uint64_t)g.nlines * size - 1 : 0);
    cudaError_t e = cub::DeviceRadixSort::SortPairs(
        NULL, p->temp, (const uint64_t *)NULL, (uint64_t *)NULL, (const int64_t *)NULL,
        (int64_t *)NULL, p->n, 0, p->end_bit);
    if (e != cudaSuccess) return cuda_failed("cub::DeviceRadixSort (scatter scratch query)", e);
    p->part = align_up((size_t)p->n * 8);
    p->total = 4 * p->part + align_up(p->temp);
    return 0;
}

extern "C" size_t bcu_index_scatter_scratch(int op, const bcu_view *out, int dim,
                                            const bcu_view *index)
{
    (void)op;
    ScatterPlan p;
    if (scatter_plan(out, dim, index, &p)) return 0;
    return p.total;
}

template <class T, class IT, bool ADD>
static int scatter_typed(bcu_stream s, const LineGeo &g, const ScatterPlan &p, const bcu_view *out,
                         int dim, const bcu_view *index, const bcu_view *src, char *scratch,
                         uint64_t *flag)
{
    int64_t size = out->shape[dim];
    if (p.by_lines) {
        scatter_lines_kernel<T, IT, ADD><<<grid_for(g.nlines), BCU_THREADS, 0, s>>>(
            g, (const IT *)index->data, (T *)out->data, (const T *)src->data, size, flag);
        return launch_status("scatter");
    }
    uint64_t *keys_in = (uint64_t *)scratch, *keys_out = (uint64_t *)(scratch + p.part);
    int64_t *pos_in = (int64_t *)(scratch + 2 * p.part);
    int64_t *pos_out = (int64_t *)(scratch + 3 * p.part);
    void *temp = scratch + 4 * p.part;
    scatter_keys_kernel<IT><<<grid_for(p.n), BCU_THREADS, 0, s>>>(g, (const IT *)index->data, size,
                                                                  keys_in, pos_in, flag);
    int rc = launch_status("scatter keys");
    if (rc) return rc;
    size_t temp_bytes = p.temp;
    cudaError_t e = cub::DeviceRadixSort::SortPairs(temp, temp_bytes, keys_in, keys_out, pos_in,
                                                    pos_out, p.n, 0, p.end_bit, s);
    if (e != cudaSuccess) return cuda_failed("cub::DeviceRadixSort (scatter)", e);
    scatter_runs_kernel<T, ADD><<<grid_for(p.n), BCU_THREADS, 0, s>>>(
        g, p.n, keys_out, pos_out, (T *)out->data, (const T *)src->data, size);
    return launch_status("scatter runs");
}

template <class IT>
static int scatter_dispatch(bcu_stream s, int op, const LineGeo &g, const ScatterPlan &p,
                            const bcu_view *out, int dim, const bcu_view *index,
                            const bcu_view *src, char *scratch, uint64_t *flag)
{
    if (op == SCATTER_SET) {
        DISPATCH_SIZE(dtype_size(out->dtype), U, {
            return scatter_typed<U, IT, false>(s, g, p, out, dim, index, src, scratch, flag);
        });
    } else {
        DISPATCH_ALL(out->dtype, T, {
            return scatter_typed<T, IT, true>(s, g, p, out, dim, index, src, scratch, flag);
        });
    }
    return unsupported("scatter: dtype %s", bcu_dtype_name(out->dtype));
}

extern "C" int bcu_index_scatter(bcu_stream s, int op, const bcu_view *out, int dim,
                                 const bcu_view *index, const bcu_view *src, void *scratch,
                                 size_t scratch_bytes, uint64_t *flag)
{
    if (!dtype_size(out->dtype)) return unsupported("scatter: dtype %s", bcu_dtype_name(out->dtype));
    if (!index_dtype_ok(index->dtype))
        return unsupported("scatter: index dtype %s", bcu_dtype_name(index->dtype));
    if (op != SCATTER_SET && op != SCATTER_ADD) return unsupported("scatter: op %d", op);
    int rc = flag_init(s, flag);
    if (rc) return rc;
    const bcu_view *ops[3] = {index, out, src};
    LineGeo g = make_line_geo(ops, dim);
    if (g.nlines == 0 || g.len == 0) return 0;
    ScatterPlan p;
    rc = scatter_plan(out, dim, index, &p);
    if (rc) return rc;
    if (!p.by_lines && (!scratch || scratch_bytes < p.total)) {
        unsupported("scatter: %zu bytes of scratch given, %zu needed", scratch_bytes, p.total);
        return BCU_ERR_INTERNAL;
    }
    rc = index->dtype == BCU_I64
             ? scatter_dispatch<int64_t>(s, op, g, p, out, dim, index, src, (char *)scratch, flag)
             : scatter_dispatch<int32_t>(s, op, g, p, out, dim, index, src, (char *)scratch, flag);
    if (rc) return rc;
    return flag_finish(s, line_idx_geo(index, dim), index->data, index->dtype, flag);
}

/* ---- sort keys (the CPU's sort.c order) ------------------------------------------------------ */
__device__ inline uint64_t f32_key(float v)
{
    if (v != v) return NO_BAD; /* NaN above +inf */
    if (v == 0.0f) v = 0.0f;   /* -0.0 sorts with +0.0 */
    uint32_t u = __float_as_uint(v);
    u ^= (uint32_t)((int32_t)u >> 31) | 0x80000000u;
    return (uint64_t)u << 32;
}

__device__ inline uint64_t f64_key(double v)
{
    if (v != v) return NO_BAD;
    if (v == 0.0) v = 0.0;
    uint64_t u = (uint64_t)__double_as_longlong(v);
    return u ^ ((uint64_t)((int64_t)u >> 63) | ((uint64_t)1 << 63));
}

__device__ inline uint64_t signed_key(int64_t v) { return (uint64_t)v ^ ((uint64_t)1 << 63); }

template <class T> __device__ inline uint64_t key_of(T v);
template <> __device__ inline uint64_t key_of<float>(float v) { return f32_key(v); }
template <> __device__ inline uint64_t key_of<double>(double v) { return f64_key(v); }
template <> __device__ inline uint64_t key_of<__half>(__half v) { return f32_key(__half2float(v)); }
template <> __device__ inline uint64_t key_of<__nv_bfloat16>(__nv_bfloat16 v)
{
    return f32_key(__bfloat162float(v));
}
template <> __device__ inline uint64_t key_of<int8_t>(int8_t v) { return signed_key(v); }
template <> __device__ inline uint64_t key_of<int32_t>(int32_t v) { return signed_key(v); }
template <> __device__ inline uint64_t key_of<int64_t>(int64_t v) { return signed_key(v); }
template <> __device__ inline uint64_t key_of<uint8_t>(uint8_t v) { return v; }
template <> __device__ inline uint64_t key_of<bcu_bool>(bcu_bool v) { return v.v; }

/* ---- sort: short lines, one block each, bitonic network in shared memory -----------------------
 * x's lines (operand 0) have len <= P (a power of two); the pads sort last (key ~0, position
 * INT_MAX). Writes the first k entries: values (operand 1) and indices (operand 2). */
template <class T>
__global__ void sort_small_kernel(LineGeo g, const T *x, T *values, int64_t *indices, int64_t k,
                                  uint64_t flip, int P)
{
    extern __shared__ unsigned long long sort_smem[];
    uint64_t *keys = (uint64_t *)sort_smem;
    int *pos = (int *)(sort_smem + P);
    for (int64_t l = blockIdx.x; l < g.nlines; l += gridDim.x) {
        int64_t off[3];
        line_offsets(g, l, off);
        for (int i = threadIdx.x; i < P; i += blockDim.x) {
            if (i < g.len) {
                keys[i] = key_of<T>(x[off[0] + i * g.dst[0]]) ^ flip;
                pos[i] = i;
            } else {
                keys[i] = NO_BAD;
                pos[i] = INT_MAX;
            }
        }
        __syncthreads();
        for (int size = 2; size <= P; size <<= 1) {
            for (int stride = size >> 1; stride > 0; stride >>= 1) {
                for (int t = threadIdx.x; t < P / 2; t += blockDim.x) {
                    int i = 2 * stride * (t / stride) + (t & (stride - 1)), j = i + stride;
                    uint64_t ki = keys[i], kj = keys[j];
                    int pi = pos[i], pj = pos[j];
                    bool j_less = kj < ki || (kj == ki && pj < pi);
                    bool ascending = (i & size) == 0;
                    if (j_less == ascending) {
                        keys[i] = kj;
                        keys[j] = ki;
                        pos[i] = pj;
                        pos[j] = pi;
                    }
                }
                __syncthreads();
            }
        }
        for (int64_t j = threadIdx.x; j < k; j += blockDim.x) {
            int64_t p = pos[j];
            if (values) values[off[1] + j * g.dst[1]] = x[off[0] + p * g.dst[0]];
            if (indices) indices[off[2] + j * g.dst[2]] = p;
        }
        __syncthreads();
    }
}

/* ---- sort: long lines through CUB, a batch of lines [l0, l0 + count / len) at a time -------- */
template <class T>
__global__ void sort_keys_kernel(LineGeo g, int64_t l0, int64_t count, const T *x, uint64_t flip,
                                 uint64_t *keys, int64_t *pos)
{
    GRID_LOOP(e, count)
    {
        int64_t l = l0 + e / g.len, i = e % g.len;
        int64_t off[3];
        line_offsets(g, l, off);
        keys[e] = key_of<T>(x[off[0] + i * g.dst[0]]) ^ flip;
        pos[e] = i;
    }
}

__global__ void segment_offsets_kernel(int *offsets, int64_t nseg, int64_t len)
{
    GRID_LOOP(b, nseg + 1) offsets[b] = (int)(b * len);
}

/* the first k sorted positions of each line of the batch */
template <class T>
__global__ void sort_write_kernel(LineGeo g, int64_t l0, int64_t count, int64_t k,
                                  const int64_t *pos, const T *x, T *values, int64_t *indices)
{
    GRID_LOOP(e, count)
    {
        int64_t b = e / k, j = e % k;
        int64_t off[3];
        line_offsets(g, l0 + b, off);
        int64_t p = pos[b * g.len + j];
        if (values) values[off[1] + j * g.dst[1]] = x[off[0] + p * g.dst[0]];
        if (indices) indices[off[2] + j * g.dst[2]] = p;
    }
}

struct SortPlan {
    bool small;
    int P;                /* small: padded line length */
    bool segmented;       /* CUB segmented sort of batches, else one DeviceRadixSort per line */
    int64_t batch, items; /* lines per batch, elements per batch */
    size_t part, offsets, temp, total;
};

static int sort_plan(const LineGeo &g, SortPlan *p)
{
    p->small = g.len <= SORT_SMEM_MAX;
    p->P = 1;
    while (p->P < g.len && p->P < SORT_SMEM_MAX) p->P <<= 1;
    p->segmented = g.len < SORT_SEGMENTED_MAX;
    p->batch = p->items = 0;
    p->part = p->offsets = p->temp = p->total = 0;
    if (p->small || g.nlines == 0 || g.len == 0) return 0;
    cudaError_t e;
    if (p->segmented) {
        int64_t b = SORT_BATCH_ITEMS / g.len;
        p->batch = b < 1 ? 1 : b > g.nlines ? g.nlines : b;
        p->items = p->batch * g.len;
        e = cub::DeviceSegmentedRadixSort::SortPairs(
            NULL, p->temp, (const uint64_t *)NULL, (uint64_t *)NULL, (const int64_t *)NULL,
            (int64_t *)NULL, (int)p->items, (int)p->batch, (const int *)NULL, (const int *)NULL, 0,
            64);
        p->offsets = align_up((size_t)(p->batch + 1) * sizeof(int));
    } else {
        p->batch = 1;
        p->items = g.len;
        e = cub::DeviceRadixSort::SortPairs(NULL, p->temp, (const uint64_t *)NULL,
                                            (uint64_t *)NULL, (const int64_t *)NULL,
                                            (int64_t *)NULL, p->items, 0, 64);
    }
    if (e != cudaSuccess) return cuda_failed("cub radix sort (scratch query)", e);
    p->part = align_up((size_t)p->items * 8);
    p->total = 4 * p->part + p->offsets + align_up(p->temp);
    return 0;
}

extern "C" size_t bcu_index_sort_scratch(const bcu_view *x, int dim, int64_t k)
{
    if (k <= 0) return 0;
    const bcu_view *ops[3] = {x, NULL, NULL};
    LineGeo g = make_line_geo(ops, dim);
    SortPlan p;
    if (sort_plan(g, &p)) return 0;
    return p.total;
}

template <class T>
static int sort_typed(bcu_stream s, const LineGeo &g, const SortPlan &p, const bcu_view *x,
                      int64_t k, uint64_t flip, const bcu_view *values, const bcu_view *indices,
                      char *scratch)
{
    const T *xd = (const T *)x->data;
    T *vd = values ? (T *)values->data : NULL;
    int64_t *id = indices ? (int64_t *)indices->data : NULL;
    if (p.small) {
        int threads = p.P / 2 < 32 ? 32 : p.P / 2 > 512 ? 512 : p.P / 2;
        unsigned blocks = g.nlines > 65535 * 8 ? 65535 * 8 : (unsigned)g.nlines;
        size_t smem = (size_t)p.P * (sizeof(uint64_t) + sizeof(int));
        sort_small_kernel<T><<<blocks, threads, smem, s>>>(g, xd, vd, id, k, flip, p.P);
        return launch_status("sort");
    }
    uint64_t *keys_in = (uint64_t *)scratch, *keys_out = (uint64_t *)(scratch + p.part);
    int64_t *pos_in = (int64_t *)(scratch + 2 * p.part);
    int64_t *pos_out = (int64_t *)(scratch + 3 * p.part);
    int *offsets = (int *)(scratch + 4 * p.part);
    void *temp = scratch + 4 * p.part + p.offsets;
    for (int64_t l0 = 0; l0 < g.nlines; l0 += p.batch) {
        int64_t nb = g.nlines - l0 < p.batch ? g.nlines - l0 : p.batch, items = nb * g.len;
        sort_keys_kernel<T><<<grid_for(items), BCU_THREADS, 0, s>>>(g, l0, items, xd, flip,
                                                                     keys_in, pos_in);
        int rc = launch_status("sort keys");
        if (rc) return rc;
        size_t temp_bytes = p.temp;
        cudaError_t e;
        if (p.segmented) {
            segment_offsets_kernel<<<grid_for(nb + 1), BCU_THREADS, 0, s>>>(offsets, nb, g.len);
            rc = launch_status("sort offsets");
            if (rc) return rc;
            e = cub::DeviceSegmentedRadixSort::SortPairs(temp, temp_bytes, keys_in, keys_out,
                                                         pos_in, pos_out, (int)items, (int)nb,
                                                         offsets, offsets + 1, 0, 64, s);
        } else {
            e = cub::DeviceRadixSort::SortPairs(temp, temp_bytes, keys_in, keys_out, pos_in,
                                                pos_out, items, 0, 64, s);
        }
        if (e != cudaSuccess) return cuda_failed("cub radix sort", e);
        sort_write_kernel<T><<<grid_for(nb * k), BCU_THREADS, 0, s>>>(g, l0, nb * k, k, pos_out,
                                                                      xd, vd, id);
        rc = launch_status("sort write");
        if (rc) return rc;
    }
    return 0;
}

extern "C" int bcu_index_sort(bcu_stream s, const bcu_view *x, int dim, int64_t k,
                              bool descending, const bcu_view *values, const bcu_view *indices,
                              void *scratch, size_t scratch_bytes)
{
    if (!dtype_size(x->dtype)) return unsupported("sort: dtype %s", bcu_dtype_name(x->dtype));
    if (indices && indices->dtype != BCU_I64)
        return unsupported("sort: indices dtype %s (i64 expected)", bcu_dtype_name(indices->dtype));
    if (values && values->dtype != x->dtype)
        return unsupported("sort: values dtype %s differs from x's %s",
                           bcu_dtype_name(values->dtype), bcu_dtype_name(x->dtype));
    if (!values && !indices) return 0;
    const bcu_view *ops[3] = {x, values, indices};
    LineGeo g = make_line_geo(ops, dim);
    if (g.nlines == 0 || g.len == 0 || k <= 0) return 0;
    SortPlan p;
    int rc = sort_plan(g, &p);
    if (rc) return rc;
    if (!p.small && (!scratch || scratch_bytes < p.total)) {
        unsupported("sort: %zu bytes of scratch given, %zu needed", scratch_bytes, p.total);
        return BCU_ERR_INTERNAL;
    }
    uint64_t flip = descending ? ~(uint64_t)0 : 0;
    DISPATCH_ALL(x->dtype, T, {
        return sort_typed<T>(s, g, p, x, k, flip, values, indices, (char *)scratch);
    });
    return unsupported("sort: dtype %s", bcu_dtype_name(x->dtype));
}

/* ---- tril / triu -------------------------------------------------------------------------------
 * x and out are (..., R, C); element (r, c) is kept when c - r is on the kept side of diagonal
 * (c - r cannot overflow, unlike r + diagonal). */
struct TriGeo {
    int nd;
    int64_t n;
    int64_t shape[BCU_MAX_DIMS], sx[BCU_MAX_DIMS], so[BCU_MAX_DIMS];
};

template <class U>
__global__ void tri_kernel(TriGeo g, const U *x, U *out, int64_t diagonal, bool upper)
{
    GRID_LOOP(i, g.n)
    {
        int64_t rem = i, ox = 0, oo = 0, r = 0, c = 0;
        for (int d = g.nd - 1; d >= 0; d--) {
            int64_t idx = rem % g.shape[d];
            rem /= g.shape[d];
            ox += idx * g.sx[d];
            oo += idx * g.so[d];
            if (d == g.nd - 1) c = idx;
            if (d == g.nd - 2) r = idx;
        }
        int64_t diff = c - r;
        bool keep = upper ? diff >= diagonal : diff <= diagonal;
        out[oo] = keep ? x[ox] : (U)0;
    }
}

extern "C" int bcu_index_tri(bcu_stream s, const bcu_view *x, const bcu_view *out,
                             int64_t diagonal, bool upper)
{
    if (x->ndim < 2) return unsupported("tril/triu: x has %d dims (2 or more expected)", x->ndim);
    TriGeo g;
    g.nd = out->ndim;
    g.n = 1;
    for (int d = 0; d < g.nd; d++) {
        g.shape[d] = out->shape[d];
        g.sx[d] = x->strides[d];
        g.so[d] = out->strides[d];
        g.n *= out->shape[d];
    }
    if (g.n == 0) return 0;
    DISPATCH_SIZE(dtype_size(x->dtype), U, {
        tri_kernel<U><<<grid_for(g.n), BCU_THREADS, 0, s>>>(g, (const U *)x->data, (U *)out->data,
                                                             diagonal, upper);
        return launch_status("tril/triu");
    });
    return unsupported("tril/triu: dtype %s", bcu_dtype_name(x->dtype));
}
