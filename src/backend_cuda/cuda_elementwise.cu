/* backend_cuda/cuda_elementwise.cu — element-wise CUDA kernels: strided copy with any dtype
 * pair, fill, arange/linspace, Philox random (the same numbers as the CPU backend), unary and
 * binary ops and where. Every kernel walks out's shape with one thread per element (grid-stride)
 * and finds each operand's element through its own strides (0 for broadcast dims), with a
 * contiguous fast path. f16/bf16 compute in f32 and round once; integers compute in int64. */
#include "backend_cuda/cuda_common.cuh"

/* ---- copy / cast ----------------------------------------------------------------------------- */
template <class S, class D> __device__ inline D convert(S v)
{
    if constexpr (Tr<S>::integral && Tr<D>::integral)
        return Tr<D>::from_i(Tr<S>::to_i(v));
    else if constexpr (!Tr<S>::integral && !Tr<D>::integral && sizeof(S) < 8 && sizeof(D) < 8)
        return Tr<D>::store((float)Tr<S>::load(v)); /* among f32, f16, bf16: exact through f32 */
    else
        return Tr<D>::from_d(Tr<S>::to_d(v));
}

template <int ND, class S, class D> __global__ void copy_kernel(Geo g, const S *src, D *dst)
{
    GRID_LOOP(i, g.n)
    {
        int64_t o[BCU_OPS];
        geo_at<ND>(g, i, o);
        dst[o[0]] = convert<S, D>(src[o[1]]);
    }
}

/* Contiguous casts between float dtypes on 16-byte boundaries: V elements per access. */
template <class S, class D, int V = 16 / (sizeof(S) > sizeof(D) ? sizeof(S) : sizeof(D))>
__global__ void cast_vec_kernel(int64_t n, const S *src, D *dst)
{
    typedef Pack<V, S> PS;
    typedef Pack<V, D> PD;
    GRID_LOOP(j, n / V)
    {
        PS a = ((const PS *)src)[j];
        PD r;
#pragma unroll
        for (int u = 0; u < V; u++) r.v[u] = convert<S, D>(a.v[u]);
        ((PD *)dst)[j] = r;
    }
    int64_t t = n / V * V + (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (t < n) dst[t] = convert<S, D>(src[t]);
}

/* Same-dtype copies whose rows stay contiguous (geo_pack): 16 bytes per access. */
template <int ND> __global__ void copy_bits_kernel(Geo g, const uint4 *src, uint4 *dst)
{
    GRID_LOOP(i, g.n)
    {
        int64_t o[BCU_OPS];
        geo_at<ND>(g, i, o);
        dst[o[0]] = src[o[1]];
    }
}

template <class T> static constexpr bool is_float_type()
{
    return !Tr<T>::integral;
}

template <class S, class D>
static void copy_launch(bcu_stream s, const Geo &g, const bcu_view *src, const bcu_view *dst)
{
    const S *a = (const S *)src->data;
    D *b = (D *)dst->data;
    if constexpr (is_float_type<S>() && is_float_type<D>()) {
        if (g.contig && aligned_to(a, 16) && aligned_to(b, 16)) {
            const int64_t V = 16 / (sizeof(S) > sizeof(D) ? sizeof(S) : sizeof(D));
            cast_vec_kernel<S, D><<<grid_for(g.n / V + 1), BCU_THREADS, 0, s>>>(g.n, a, b);
        } else {
            geo_launch(g, [&](auto nd) {
                copy_kernel<decltype(nd)::value, S, D>
                    <<<grid_for(g.n), BCU_THREADS, 0, s>>>(g, a, b);
            });
        }
    } else if (g.contig) { /* the rarer pairs: contiguous or the general walk */
        copy_kernel<0, S, D><<<grid_for(g.n), BCU_THREADS, 0, s>>>(g, a, b);
    } else {
        copy_kernel<-1, S, D><<<grid_for(g.n), BCU_THREADS, 0, s>>>(g, a, b);
    }
}

template <class S>
static int copy_from(bcu_stream s, const Geo &g, const bcu_view *src, const bcu_view *dst)
{
    DISPATCH_ALL(dst->dtype, D, { copy_launch<S, D>(s, g, src, dst); });
    return launch_status("copy");
}

extern "C" int bcu_copy(bcu_stream s, const bcu_view *src, const bcu_view *dst)
{
    const bcu_view *ops[2] = {dst, src};
    Geo g = make_geo(ops, 2);
    if (g.n == 0) return 0;
    if (g.contig && src->dtype == dst->dtype) {
        /* the same bytes: the copy engine's rate, and a memcpy node in a graph */
        cudaError_t e = cudaMemcpyAsync(dst->data, src->data, (size_t)g.n * dtype_size(src->dtype),
                                        cudaMemcpyDeviceToDevice, s);
        if (e == cudaSuccess) return 0;
        unsupported("copy: cudaMemcpyAsync failed: %s", cudaGetErrorString(e));
        return BCU_ERR_INTERNAL;
    }
    Geo gp;
    const void *ptrs[2] = {dst->data, src->data};
    size_t es = dtype_size(src->dtype);
    if (src->dtype == dst->dtype && es && geo_pack(g, ptrs, es, (int)(16 / es), &gp)) {
        geo_launch(gp, [&](auto nd) {
            copy_bits_kernel<decltype(nd)::value><<<grid_for(gp.n), BCU_THREADS, 0, s>>>(
                gp, (const uint4 *)src->data, (uint4 *)dst->data);
        });
        return launch_status("copy");
    }
    DISPATCH_ALL(src->dtype, S, { return copy_from<S>(s, g, src, dst); });
    return unsupported("copy: dtype %s", bcu_dtype_name(src->dtype));
}

/* ---- fill / sequence ------------------------------------------------------------------------- */
template <int ND, class D> __global__ void fill_kernel(Geo g, D *dst, double v)
{
    D x = Tr<D>::from_d(v);
    GRID_LOOP(i, g.n)
    {
        int64_t o[BCU_OPS];
        geo_at<ND>(g, i, o);
        dst[o[0]] = x;
    }
}

extern "C" int bcu_fill(bcu_stream s, const bcu_view *dst, double v)
{
    const bcu_view *ops[1] = {dst};
    Geo g = make_geo(ops, 1);
    if (g.n == 0) return 0;
    DISPATCH_ALL(dst->dtype, D, {
        geo_launch(g, [&](auto nd) {
            fill_kernel<decltype(nd)::value, D>
                <<<grid_for(g.n), BCU_THREADS, 0, s>>>(g, (D *)dst->data, v);
        });
    });
    return launch_status("fill");
}

/* dst is 1-D (n) */
template <class D>
__global__ void sequence_kernel(int64_t n, int64_t stride, D *dst, int linspace, double start,
                                double step, double end)
{
    int64_t half = n / 2;
    GRID_LOOP(i, n)
    {
        /* _rn: no fused multiply-add, so the values are the CPU's bit for bit */
        double v = (linspace && i >= half && n > 1)
                       ? __dsub_rn(end, __dmul_rn(step, (double)(n - 1 - i)))
                       : __dadd_rn(start, __dmul_rn(step, (double)i));
        dst[i * stride] = Tr<D>::from_d(v);
    }
}

extern "C" int bcu_sequence(bcu_stream s, int op, const bcu_view *dst, double start, double step,
                            double end)
{
    int64_t n = dst->ndim ? dst->shape[0] : 1, st = dst->ndim ? dst->strides[0] : 1;
    if (n == 0) return 0;
    DISPATCH_ALL(dst->dtype, D, {
        sequence_kernel<D>
            <<<grid_for(n), BCU_THREADS, 0, s>>>(n, st, (D *)dst->data, op == 1, start, step, end);
    });
    return launch_status("sequence");
}

/* ---- random: dst contiguous; block layout as backend/cpu/copy.c ------------------------------ */
__device__ static double normal_from(double u1, double u2, int which)
{
    double r = sqrt(-2.0 * log(u1));
    double t = 2.0 * 3.14159265358979323846 * u2;
    return which ? r * sin(t) : r * cos(t);
}

template <class D>
__global__ void random_kernel(int op, int64_t n, D *out, uint64_t seed, uint64_t counter, double a,
                              double b, bool wide, bool is_float)
{
    int64_t per = wide ? 2 : 4, nblocks = (n + per - 1) / per;
    GRID_LOOP(blk, nblocks)
    {
        BcuPhilox r = bcu_philox4x32_10(seed, counter + (uint64_t)blk);
        double vals[4];
        if (wide) {
            double u0 = (double)((((uint64_t)r.v[1] << 32) | r.v[0]) >> 11) * 0x1p-53;
            double u1 = (double)((((uint64_t)r.v[3] << 32) | r.v[2]) >> 11) * 0x1p-53;
            if (op == 1) {
                vals[0] = __dadd_rn(a, __dmul_rn(b, normal_from(1.0 - u0, u1, 0)));
                vals[1] = __dadd_rn(a, __dmul_rn(b, normal_from(1.0 - u0, u1, 1)));
            } else {
                vals[0] = u0;
                vals[1] = u1;
            }
        } else {
            double u[4];
            for (int k = 0; k < 4; k++) u[k] = (double)((float)(r.v[k] >> 8) * 0x1p-24f);
            if (op == 1) {
                for (int k = 0; k < 4; k++)
                    vals[k] =
                        __dadd_rn(a, __dmul_rn(b, normal_from(1.0 - u[k & 2], u[k | 1], k & 1)));
            } else {
                for (int k = 0; k < 4; k++) vals[k] = u[k];
            }
        }
        for (int64_t k = 0; k < per; k++) {
            int64_t i = blk * per + k;
            if (i >= n) break;
            double v = vals[k];
            if (op == 0) {
                v = __dadd_rn(a, __dmul_rn(b - a, v));
                if (is_float && Tr<D>::to_d(Tr<D>::from_d(v)) >= b) v = a;
            } else if (op == 2) {
                v = a + floor(__dmul_rn(v, b - a));
                if (v >= b) v = b - 1;
            }
            out[i] = Tr<D>::from_d(v);
        }
    }
}

extern "C" int bcu_random(bcu_stream s, int op, const bcu_view *dst, uint64_t seed,
                          uint64_t counter, double a, double b)
{
    int64_t n = 1;
    for (int d = 0; d < dst->ndim; d++) n *= dst->shape[d];
    if (n == 0) return 0;
    bool wide = dst->dtype == BCU_F64 || dst->dtype == BCU_I64;
    bool is_float = dst->dtype <= BCU_BF16;
    DISPATCH_ALL(dst->dtype, D, {
        random_kernel<D><<<grid_for(n / 2 + 1), BCU_THREADS, 0, s>>>(op, n, (D *)dst->data, seed,
                                                                     counter, a, b, wide, is_float);
    });
    return launch_status("random");
}

/* ---- where ----------------------------------------------------------------------------------- */
template <int ND, class T>
__global__ void where_kernel(Geo g, const uint8_t *c, const T *a, const T *b, T *out)
{
    GRID_LOOP(i, g.n)
    {
        int64_t o[BCU_OPS];
        geo_at<ND>(g, i, o);
        out[o[0]] = c[o[1]] ? a[o[2]] : b[o[3]];
    }
}

extern "C" int bcu_where(bcu_stream s, const bcu_view *cond, const bcu_view *a, const bcu_view *b,
                         const bcu_view *out)
{
    const bcu_view *ops[4] = {out, cond, a, b};
    Geo g = make_geo(ops, 4);
    if (g.n == 0) return 0;
    switch (dtype_size(out->dtype)) {
#define WHERE_CASE(N, T)                                                                           \
    case N:                                                                                        \
        geo_launch(g, [&](auto nd) {                                                               \
            where_kernel<decltype(nd)::value, T><<<grid_for(g.n), BCU_THREADS, 0, s>>>(            \
                g, (const uint8_t *)cond->data, (const T *)a->data, (const T *)b->data,            \
                (T *)out->data);                                                                   \
        });                                                                                        \
        break;
        WHERE_CASE(1, uint8_t)
        WHERE_CASE(2, uint16_t)
        WHERE_CASE(4, uint32_t)
        WHERE_CASE(8, uint64_t)
#undef WHERE_CASE
    default: return unsupported("where: dtype %s", bcu_dtype_name(out->dtype));
    }
    return launch_status("where");
}
