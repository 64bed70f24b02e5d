/* backend_cuda/cuda_ce.cu — the cross-entropy row kernels of bn_linear_cross_entropy's chunks
 * (backend_nn.h: ce_rows_forward, ce_rows_backward; cuda_ce.h has the contract and
 * backend/cpu/ce_rows.c the CPU reference).
 *
 * A team of TPR threads owns a row: a warp (8 rows per 256-thread block) when V <= 1024, a
 * block of 256 (V <= 16384) or 512 threads otherwise. The row is read with 16-byte loads (8
 * bf16/f16, 4 f32, 2 f64 values) when its start is 16-byte aligned, the rest one value at a
 * time. f16/bf16/f32 are computed in f32 (expf, full precision), f64 in double.
 *
 * Forward, one pass: each thread keeps a running max m and the sum s of exp(z - m) over its
 * values, rescaling s when m grows (once per 16-byte group at most), plus the sum of z in
 * double and a NaN flag. The team merges these through a warp butterfly (every merge is
 * commutative, so every lane holds the same bits) and, for a block, the warps' results in warp
 * order. The row's lse = m + log(s) is formed in double; an infinite max gives lse = max
 * (torch's logsumexp: -inf for a row of -inf, +inf when a value is +inf), any NaN gives NaN.
 *
 * Backward, one pass: dz = ((exp(z - lse) - smoothing / V) - (1 - smoothing) [c == t]) * gr in
 * the compute dtype, the same operations in the same order as the CPU kernel, rounded once. */
#include "backend_cuda/cuda_ce.h"
#include "backend_cuda/cuda_common.cuh"

#include <math.h>

namespace {

/* 16 bytes seen as each dtype's values (bf16/f16 as their bits) */
union Bits16 {
    uint4 q;
    float f[4];
    double d[2];
    unsigned short h[8];
};

/* VIO<T>: N values of T per 16 bytes, read as / written from the compute type */
template <class T> struct VIO;
template <> struct VIO<float> {
    enum { N = 4 };
    __device__ static float get(const Bits16 &b, int i) { return b.f[i]; }
    __device__ static void put(Bits16 &b, int i, float v) { b.f[i] = v; }
};
template <> struct VIO<double> {
    enum { N = 2 };
    __device__ static double get(const Bits16 &b, int i) { return b.d[i]; }
    __device__ static void put(Bits16 &b, int i, double v) { b.d[i] = v; }
};
template <> struct VIO<__half> {
    enum { N = 8 };
    __device__ static float get(const Bits16 &b, int i)
    {
        return __half2float(__ushort_as_half(b.h[i]));
    }
    __device__ static void put(Bits16 &b, int i, float v)
    {
        b.h[i] = __half_as_ushort(__float2half_rn(v));
    }
};
template <> struct VIO<__nv_bfloat16> {
    enum { N = 8 };
    __device__ static float get(const Bits16 &b, int i)
    {
        return __uint_as_float((unsigned)b.h[i] << 16);
    }
    __device__ static void put(Bits16 &b, int i, float v)
    {
        b.h[i] = __bfloat16_as_ushort(__float2bfloat16_rn(v));
    }
};

__device__ inline float cexp(float x) { return expf(x); }
__device__ inline double cexp(double x) { return exp(x); }

/* one thread's (and, merged, one row's) log-sum-exp state */
template <class C> struct Lse {
    C m, s;    /* running max (never NaN), sum of exp(z - m) over finite m */
    double zs; /* sum of z */
    int nan;   /* a NaN was seen */
};

/* Adds N values. */
template <int N, class C> __device__ inline void lse_add(Lse<C> &a, const C *x)
{
    C cm = (C)-INFINITY;
#pragma unroll
    for (int i = 0; i < N; i++) {
        a.zs += (double)x[i];
        if (x[i] != x[i])
            a.nan = 1;
        else
            cm = x[i] > cm ? x[i] : cm;
    }
    if (cm > a.m) {
        a.s = a.s * cexp(a.m - cm); /* 0 while m was -inf (s is 0 then) */
        a.m = cm;
    }
    if (isfinite(a.m)) {
#pragma unroll
        for (int i = 0; i < N; i++) a.s += cexp(x[i] - a.m); /* -inf adds 0; NaN is flagged */
    }
}

/* a = merge(a, b): commutative, bit for bit */
template <class C> __device__ inline void lse_merge(Lse<C> &a, C m2, C s2, double zs2, int nan2)
{
    C m = a.m > m2 ? a.m : m2;
    C s;
    if (isfinite(m))
        s = a.s * cexp(a.m - m) + s2 * cexp(m2 - m);
    else
        s = m > 0 ? (C)1 : (C)0; /* +inf: lse is +inf whatever s is; -inf: nothing summed */
    a.m = m;
    a.s = s;
    a.zs += zs2;
    a.nan |= nan2;
}

/* The row's log-sum-exp from its merged state (one rounding of the add: both kernels that
 * store it give the same bits). */
template <class C> __device__ inline C row_lse(const Lse<C> &a)
{
    return a.nan ? (C)NAN : isinf(a.m) ? a.m : (C)__dadd_rn((double)a.m, log((double)a.s));
}

/* Merges the states of a team of TPR threads (a warp, or the whole block when TPR > 32) in a
 * fixed order; every thread of the team gets the result. */
template <int TPR, class C>
__device__ inline void team_merge(Lse<C> &a, C *sm, C *ss, double *sz, int *sn)
{
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        C m2 = __shfl_xor_sync(0xffffffffu, a.m, o);
        C s2 = __shfl_xor_sync(0xffffffffu, a.s, o);
        double z2 = __shfl_xor_sync(0xffffffffu, a.zs, o);
        int n2 = __shfl_xor_sync(0xffffffffu, a.nan, o);
        lse_merge(a, m2, s2, z2, n2);
    }
    if (TPR > 32) {
        const int w = threadIdx.x >> 5, nw = TPR >> 5;
        if ((threadIdx.x & 31) == 0) {
            sm[w] = a.m;
            ss[w] = a.s;
            sz[w] = a.zs;
            sn[w] = a.nan;
        }
        __syncthreads();
        a.m = sm[0];
        a.s = ss[0];
        a.zs = sz[0];
        a.nan = sn[0];
        for (int k = 1; k < nw; k++) lse_merge(a, sm[k], ss[k], sz[k], sn[k]);
        __syncthreads(); /* the next row reuses the shared arrays */
    }
}

/* z (R, V) at row stride ld; tg (R) at stride ts; lse, zt, zsum (R) or zsum NULL. VEC: z and
 * every row start 16-byte aligned. */
template <class T, int TPR, bool VEC>
__global__ void __launch_bounds__(TPR > 256 ? TPR : 256)
    ce_fwd_kernel(const T *__restrict__ z, int64_t ld, const int64_t *__restrict__ tg, int64_t ts,
                  typename Tr<T>::C *__restrict__ lse, typename Tr<T>::C *__restrict__ zt,
                  typename Tr<T>::C *__restrict__ zsum, int64_t R, int64_t V)
{
    typedef typename Tr<T>::C C;
    const int NT = VIO<T>::N;
    __shared__ C sm[32], ss[32];
    __shared__ double sz[32];
    __shared__ int sn[32];
    const int teams = blockDim.x / TPR, lane = threadIdx.x % TPR;
    for (int64_t r = (int64_t)blockIdx.x * teams + threadIdx.x / TPR; r < R;
         r += (int64_t)gridDim.x * teams) {
        const T *zr = z + r * ld;
        Lse<C> a = {(C)-INFINITY, (C)0, 0.0, 0};
        int64_t k0 = 0;
        if (VEC) {
            const int64_t nq = V / NT;
            const uint4 *zq = reinterpret_cast<const uint4 *>(zr);
            for (int64_t q = lane; q < nq; q += TPR) {
                Bits16 b;
                b.q = zq[q];
                C x[NT];
#pragma unroll
                for (int i = 0; i < NT; i++) x[i] = (C)VIO<T>::get(b, i);
                lse_add<NT>(a, x);
            }
            k0 = nq * NT;
        }
        for (int64_t k = k0 + lane; k < V; k += TPR) {
            C x[1] = {Tr<T>::load(zr[k])};
            lse_add<1>(a, x);
        }
        team_merge<TPR>(a, sm, ss, sz, sn);
        if (lane == 0) {
            lse[r] = row_lse(a);
            const int64_t t = tg[r * ts];
            zt[r] = t >= 0 && t < V ? Tr<T>::load(zr[t]) : (C)NAN;
            if (zsum) zsum[r] = (C)a.zs;
        }
    }
}

/* dz (R, V) contiguous of dtype D (T or C). VEC: z, dz and every row start of both 16-byte
 * aligned, V a multiple of NT. */
template <class T, class D, int TPR, bool VEC>
__global__ void __launch_bounds__(TPR > 256 ? TPR : 256)
    ce_bwd_kernel(const T *__restrict__ z, int64_t ld, const int64_t *__restrict__ tg, int64_t ts,
                  const typename Tr<T>::C *__restrict__ lse,
                  const typename Tr<T>::C *__restrict__ gr, typename Tr<T>::C eps_v,
                  typename Tr<T>::C hit, D *__restrict__ dz, int64_t R, int64_t V)
{
    typedef typename Tr<T>::C C;
    const int NT = VIO<T>::N, ND = VIO<D>::N;
    static_assert(NT % ND == 0, "dz holds z's dtype or a wider one");
    const int teams = blockDim.x / TPR, lane = threadIdx.x % TPR;
    for (int64_t r = (int64_t)blockIdx.x * teams + threadIdx.x / TPR; r < R;
         r += (int64_t)gridDim.x * teams) {
        const T *zr = z + r * ld;
        D *dr = dz + r * V;
        const C l = lse[r], g = gr[r];
        const int64_t t = tg[r * ts];
        if (VEC) {
            const int64_t nq = V / NT;
            const uint4 *zq = reinterpret_cast<const uint4 *>(zr);
            uint4 *dq = reinterpret_cast<uint4 *>(dr);
            for (int64_t q = lane; q < nq; q += TPR) {
                Bits16 b, o[NT / ND];
                b.q = zq[q];
#pragma unroll
                for (int i = 0; i < NT; i++) {
                    C v = cexp((C)VIO<T>::get(b, i) - l) - eps_v;
                    if (q * NT + i == t) v = v - hit;
                    VIO<D>::put(o[i / ND], i % ND, v * g);
                }
#pragma unroll
                for (int j = 0; j < NT / ND; j++) dq[q * (NT / ND) + j] = o[j].q;
            }
        } else {
            for (int64_t k = lane; k < V; k += TPR) {
                C v = cexp(Tr<T>::load(zr[k]) - l) - eps_v;
                if (k == t) v = v - hit;
                dr[k] = Tr<D>::store(v * g);
            }
        }
    }
}

/* Both passes for one row at a time: the row's statistics as ce_fwd_kernel writes them, then dz
 * from the same row as ce_bwd_kernel writes it, from the lse value it stored. VEC: as both.
 * CACHE (VEC, one row per block): the first pass also copies the row to dynamic shared memory
 * (V * sizeof(T) bytes) and the second reads it from there, so z comes from DRAM once; without
 * it the second read mostly hits L2. */
template <class T, class D, int TPR, bool VEC, bool CACHE>
__global__ void __launch_bounds__(TPR > 256 ? TPR : 256)
    ce_fused_kernel(const T *__restrict__ z, int64_t ld, const int64_t *__restrict__ tg, int64_t ts,
                    typename Tr<T>::C *__restrict__ lse, typename Tr<T>::C *__restrict__ zt,
                    typename Tr<T>::C *__restrict__ zsum, const typename Tr<T>::C *__restrict__ gr,
                    typename Tr<T>::C eps_v, typename Tr<T>::C hit, D *__restrict__ dz, int64_t R,
                    int64_t V)
{
    typedef typename Tr<T>::C C;
    const int NT = VIO<T>::N, ND = VIO<D>::N;
    static_assert(NT % ND == 0, "dz holds z's dtype or a wider one");
    static_assert(!CACHE || (VEC && TPR >= 256), "the cache holds one row per block");
    __shared__ C sm[32], ss[32];
    __shared__ double sz[32];
    __shared__ int sn[32];
    extern __shared__ uint4 row_cache[];
    const int teams = blockDim.x / TPR, lane = threadIdx.x % TPR;
    for (int64_t r = (int64_t)blockIdx.x * teams + threadIdx.x / TPR; r < R;
         r += (int64_t)gridDim.x * teams) {
        const T *zr = z + r * ld;
        Lse<C> a = {(C)-INFINITY, (C)0, 0.0, 0};
        int64_t k0 = 0;
        if (VEC) {
            const int64_t nq = V / NT;
            const uint4 *zq = reinterpret_cast<const uint4 *>(zr);
            for (int64_t q = lane; q < nq; q += TPR) {
                Bits16 b;
                b.q = zq[q];
                if (CACHE) row_cache[q] = b.q;
                C x[NT];
#pragma unroll
                for (int i = 0; i < NT; i++) x[i] = (C)VIO<T>::get(b, i);
                lse_add<NT>(a, x);
            }
            k0 = nq * NT;
        }
        for (int64_t k = k0 + lane; k < V; k += TPR) {
            C x[1] = {Tr<T>::load(zr[k])};
            lse_add<1>(a, x);
        }
        team_merge<TPR>(a, sm, ss, sz, sn); /* its barrier also publishes row_cache */
        const C l = row_lse(a);
        const int64_t t = tg[r * ts];
        if (lane == 0) {
            lse[r] = l;
            zt[r] = t >= 0 && t < V ? Tr<T>::load(zr[t]) : (C)NAN;
            if (zsum) zsum[r] = (C)a.zs;
        }
        const C g = gr[r];
        D *dr = dz + r * V;
        if (VEC) {
            const int64_t nq = V / NT;
            const uint4 *zq = reinterpret_cast<const uint4 *>(zr);
            uint4 *dq = reinterpret_cast<uint4 *>(dr);
            for (int64_t q = lane; q < nq; q += TPR) {
                Bits16 b, o[NT / ND];
                b.q = CACHE ? row_cache[q] : zq[q];
#pragma unroll
                for (int i = 0; i < NT; i++) {
                    C v = cexp((C)VIO<T>::get(b, i) - l) - eps_v;
                    if (q * NT + i == t) v = v - hit;
                    VIO<D>::put(o[i / ND], i % ND, v * g);
                }
#pragma unroll
                for (int j = 0; j < NT / ND; j++) dq[q * (NT / ND) + j] = o[j].q;
            }
            if (CACHE) __syncthreads(); /* the next row overwrites row_cache */
        } else {
            for (int64_t k = lane; k < V; k += TPR) {
                C v = cexp(Tr<T>::load(zr[k]) - l) - eps_v;
                if (k == t) v = v - hit;
                dr[k] = Tr<D>::store(v * g);
            }
        }
    }
}

unsigned rows_grid(int64_t R, int teams)
{
    int64_t b = (R + teams - 1) / teams;
    if (b < 1) b = 1;
    if (b > (1 << 20)) b = 1 << 20; /* the kernels stride over the rest */
    return (unsigned)b;
}

template <class T, int TPR, bool VEC>
void fwd_go(bcu_stream s, const bcu_view *z, const bcu_view *tg, const bcu_view *lse,
            const bcu_view *zt, const bcu_view *zsum)
{
    typedef typename Tr<T>::C C;
    const int threads = TPR > 256 ? TPR : 256;
    const int64_t R = z->shape[0], V = z->shape[1];
    ce_fwd_kernel<T, TPR, VEC><<<rows_grid(R, threads / TPR), threads, 0, s>>>(
        (const T *)z->data, z->strides[0], (const int64_t *)tg->data, tg->strides[0],
        (C *)lse->data, (C *)zt->data, zsum ? (C *)zsum->data : (C *)NULL, R, V);
}

template <class T, bool VEC>
void fwd_pick(bcu_stream s, const bcu_view *z, const bcu_view *tg, const bcu_view *lse,
              const bcu_view *zt, const bcu_view *zsum)
{
    const int64_t V = z->shape[1];
    if (V <= 1024)
        fwd_go<T, 32, VEC>(s, z, tg, lse, zt, zsum);
    else if (V <= 16384)
        fwd_go<T, 256, VEC>(s, z, tg, lse, zt, zsum);
    else
        fwd_go<T, 512, VEC>(s, z, tg, lse, zt, zsum);
}

template <class T, class D, int TPR, bool VEC>
void bwd_go(bcu_stream s, const bcu_view *z, const bcu_view *tg, const bcu_view *lse,
            const bcu_view *gr, double smoothing, const bcu_view *dz)
{
    typedef typename Tr<T>::C C;
    const int threads = TPR > 256 ? TPR : 256;
    const int64_t R = z->shape[0], V = z->shape[1];
    ce_bwd_kernel<T, D, TPR, VEC><<<rows_grid(R, threads / TPR), threads, 0, s>>>(
        (const T *)z->data, z->strides[0], (const int64_t *)tg->data, tg->strides[0],
        (const C *)lse->data, (const C *)gr->data, (C)(smoothing / (double)V),
        (C)(1.0 - smoothing), (D *)dz->data, R, V);
}

template <class T, class D>
void bwd_pick(bcu_stream s, const bcu_view *z, const bcu_view *tg, const bcu_view *lse,
              const bcu_view *gr, double smoothing, const bcu_view *dz)
{
    const int64_t R = z->shape[0], V = z->shape[1];
    const bool vec = V % VIO<T>::N == 0 && aligned_to(z->data, 16) && aligned_to(dz->data, 16) &&
                     (R <= 1 || (z->strides[0] * (int64_t)sizeof(T)) % 16 == 0) &&
                     (R <= 1 || (V * (int64_t)sizeof(D)) % 16 == 0);
#define CE_BWD(TPR)                                                                                \
    do {                                                                                           \
        if (vec)                                                                                   \
            bwd_go<T, D, TPR, true>(s, z, tg, lse, gr, smoothing, dz);                             \
        else                                                                                       \
            bwd_go<T, D, TPR, false>(s, z, tg, lse, gr, smoothing, dz);                            \
    } while (0)
    if (V <= 1024)
        CE_BWD(32);
    else if (V <= 16384)
        CE_BWD(256);
    else
        CE_BWD(512);
#undef CE_BWD
}

/* Rows of up to this many bytes go through the shared-memory cache (two blocks fit an SM's
 * 228 KB: GPT-2's 50304 bf16 logits are 100.6 KB). */
#define CE_CACHE_BYTES ((int64_t)110 << 10)

template <class T, class D, int TPR, bool VEC, bool CACHE>
void fused_go(bcu_stream s, const bcu_view *z, const bcu_view *tg, const bcu_view *lse,
              const bcu_view *zt, const bcu_view *zsum, const bcu_view *gr, double smoothing,
              const bcu_view *dz)
{
    typedef typename Tr<T>::C C;
    const int threads = TPR > 256 ? TPR : 256;
    const int64_t R = z->shape[0], V = z->shape[1];
    size_t smem = CACHE ? (size_t)(V / VIO<T>::N) * sizeof(uint4) : 0;
    if (CACHE) /* idempotent; the opt-in above 48 KB */
        cudaFuncSetAttribute(ce_fused_kernel<T, D, TPR, VEC, CACHE>,
                             cudaFuncAttributeMaxDynamicSharedMemorySize, (int)CE_CACHE_BYTES);
    ce_fused_kernel<T, D, TPR, VEC, CACHE><<<rows_grid(R, threads / TPR), threads, smem, s>>>(
        (const T *)z->data, z->strides[0], (const int64_t *)tg->data, tg->strides[0],
        (C *)lse->data, (C *)zt->data, zsum ? (C *)zsum->data : (C *)NULL, (const C *)gr->data,
        (C)(smoothing / (double)V), (C)(1.0 - smoothing), (D *)dz->data, R, V);
}

/* dz in z's dtype (the products' dtype, where the fused entry is used) */
template <class T>
void fused_pick(bcu_stream s, const bcu_view *z, const bcu_view *tg, const bcu_view *lse,
                const bcu_view *zt, const bcu_view *zsum, const bcu_view *gr, double smoothing,
                const bcu_view *dz)
{
    const int64_t R = z->shape[0], V = z->shape[1];
    const bool vec = V % VIO<T>::N == 0 && aligned_to(z->data, 16) && aligned_to(dz->data, 16) &&
                     (R <= 1 || (z->strides[0] * (int64_t)sizeof(T)) % 16 == 0) &&
                     (R <= 1 || (V * (int64_t)sizeof(T)) % 16 == 0);
    const bool cache = vec && V > 1024 && V * (int64_t)sizeof(T) <= CE_CACHE_BYTES;
#define CE_FUSED(TPR)                                                                              \
    do {                                                                                           \
        if (cache)                                                                                 \
            fused_go<T, T, TPR, true, true>(s, z, tg, lse, zt, zsum, gr, smoothing, dz);           \
        else if (vec)                                                                              \
            fused_go<T, T, TPR, true, false>(s, z, tg, lse, zt, zsum, gr, smoothing, dz);          \
        else                                                                                       \
            fused_go<T, T, TPR, false, false>(s, z, tg, lse, zt, zsum, gr, smoothing, dz);         \
    } while (0)
    if (V <= 1024) {
        if (vec)
            fused_go<T, T, 32, true, false>(s, z, tg, lse, zt, zsum, gr, smoothing, dz);
        else
            fused_go<T, T, 32, false, false>(s, z, tg, lse, zt, zsum, gr, smoothing, dz);
    } else if (V <= 16384)
        CE_FUSED(256);
    else
        CE_FUSED(512);
#undef CE_FUSED
}

bool is_float(int dt) { return dt == BCU_F32 || dt == BCU_F64 || dt == BCU_F16 || dt == BCU_BF16; }

/* what both entries need of z and target; 0 or an error code with the message set */
int check_rows(const char *fn, const bcu_view *z, const bcu_view *tg)
{
    if (!is_float(z->dtype))
        return unsupported("%s: z must be f32, f64, f16 or bf16, not %s", fn,
                           bcu_dtype_name(z->dtype));
    if (z->ndim != 2 || (z->shape[1] > 1 && z->strides[1] != 1))
        return unsupported("%s: z must be (R, V) with last stride 1 (ndim %d)", fn, z->ndim);
    if (tg->dtype != BCU_I64 || tg->ndim != 1 || tg->shape[0] != z->shape[0])
        return unsupported("%s: target must be (R) = [%lld] i64, not %s (ndim %d)", fn,
                           (long long)z->shape[0], bcu_dtype_name(tg->dtype), tg->ndim);
    if (z->shape[0] > 0 && z->shape[1] == 0)
        return unsupported("%s: z has no classes (V = 0) for %lld rows", fn,
                           (long long)z->shape[0]);
    return 0;
}

/* an (R) vector of the compute dtype cdt, contiguous */
int check_vec(const char *fn, const char *name, const bcu_view *v, int cdt, int64_t R)
{
    if (v->dtype != cdt || v->ndim != 1 || v->shape[0] != R || (R > 1 && v->strides[0] != 1))
        return unsupported("%s: %s must be (R) = [%lld] contiguous %s, not %s (ndim %d)", fn,
                           name, (long long)R, bcu_dtype_name(cdt), bcu_dtype_name(v->dtype),
                           v->ndim);
    return 0;
}

} // namespace

extern "C" int bcu_ce_rows_forward(bcu_stream s, const bcu_view *z, const bcu_view *target,
                                   const bcu_view *lse, const bcu_view *zt, const bcu_view *zsum)
{
    const char *fn = "ce_rows_forward";
    int rc = check_rows(fn, z, target);
    if (rc) return rc;
    const int64_t R = z->shape[0];
    const int cdt = z->dtype == BCU_F64 ? BCU_F64 : BCU_F32;
    if ((rc = check_vec(fn, "lse", lse, cdt, R)) || (rc = check_vec(fn, "zt", zt, cdt, R)) ||
        (zsum && (rc = check_vec(fn, "zsum", zsum, cdt, R))))
        return rc;
    if (R == 0) return 0;
    const bool vec = aligned_to(z->data, 16) &&
                     (R <= 1 || (z->strides[0] * (int64_t)dtype_size(z->dtype)) % 16 == 0);
    DISPATCH_FLOAT(z->dtype, T, {
        if (vec)
            fwd_pick<T, true>(s, z, target, lse, zt, zsum);
        else
            fwd_pick<T, false>(s, z, target, lse, zt, zsum);
    })
    return launch_status(fn);
}

extern "C" int bcu_ce_rows_backward(bcu_stream s, const bcu_view *z, const bcu_view *target,
                                    const bcu_view *lse, const bcu_view *gr, double smoothing,
                                    const bcu_view *dz)
{
    const char *fn = "ce_rows_backward";
    int rc = check_rows(fn, z, target);
    if (rc) return rc;
    const int64_t R = z->shape[0], V = z->shape[1];
    const int cdt = z->dtype == BCU_F64 ? BCU_F64 : BCU_F32;
    if ((rc = check_vec(fn, "lse", lse, cdt, R)) || (rc = check_vec(fn, "gr", gr, cdt, R)))
        return rc;
    if ((dz->dtype != z->dtype && dz->dtype != cdt) || dz->ndim != 2 || dz->shape[0] != R ||
        dz->shape[1] != V || (V > 1 && dz->strides[1] != 1) || (R > 1 && dz->strides[0] != V))
        return unsupported("%s: dz must be a contiguous (R, V) = [%lld, %lld] of %s or %s, not %s "
                           "(ndim %d)",
                           fn, (long long)R, (long long)V, bcu_dtype_name(z->dtype),
                           bcu_dtype_name(cdt), bcu_dtype_name(dz->dtype), dz->ndim);
    if (R == 0 || V == 0) return 0;
    switch (z->dtype) {
    case BCU_F32: bwd_pick<float, float>(s, z, target, lse, gr, smoothing, dz); break;
    case BCU_F64: bwd_pick<double, double>(s, z, target, lse, gr, smoothing, dz); break;
    case BCU_F16:
        if (dz->dtype == BCU_F16)
            bwd_pick<__half, __half>(s, z, target, lse, gr, smoothing, dz);
        else
            bwd_pick<__half, float>(s, z, target, lse, gr, smoothing, dz);
        break;
    default: /* bf16 (check_rows let only float dtypes through) */
        if (dz->dtype == BCU_BF16)
            bwd_pick<__nv_bfloat16, __nv_bfloat16>(s, z, target, lse, gr, smoothing, dz);
        else
            bwd_pick<__nv_bfloat16, float>(s, z, target, lse, gr, smoothing, dz);
        break;
    }
    return launch_status(fn);
}

extern "C" int bcu_ce_rows_fused(bcu_stream s, const bcu_view *z, const bcu_view *target,
                                 const bcu_view *lse, const bcu_view *zt, const bcu_view *zsum,
                                 const bcu_view *gr, double smoothing, const bcu_view *dz)
{
    const char *fn = "ce_rows_fused";
    int rc = check_rows(fn, z, target);
    if (rc) return rc;
    const int64_t R = z->shape[0], V = z->shape[1];
    const int cdt = z->dtype == BCU_F64 ? BCU_F64 : BCU_F32;
    if ((rc = check_vec(fn, "lse", lse, cdt, R)) || (rc = check_vec(fn, "zt", zt, cdt, R)) ||
        (zsum && (rc = check_vec(fn, "zsum", zsum, cdt, R))) ||
        (rc = check_vec(fn, "gr", gr, cdt, R)))
        return rc;
    if (dz->dtype != z->dtype || dz->ndim != 2 || dz->shape[0] != R || dz->shape[1] != V ||
        (V > 1 && dz->strides[1] != 1) || (R > 1 && dz->strides[0] != V))
        return unsupported("%s: dz must be a contiguous (R, V) = [%lld, %lld] of %s, not %s "
                           "(ndim %d)",
                           fn, (long long)R, (long long)V, bcu_dtype_name(z->dtype),
                           bcu_dtype_name(dz->dtype), dz->ndim);
    if (R == 0) return 0;
    DISPATCH_FLOAT(z->dtype, T, fused_pick<T>(s, z, target, lse, zt, zsum, gr, smoothing, dz);)
    return launch_status(fn);
}
