/* backend_cuda/cuda_math.cu — unary and binary element-wise kernels. Floats compute in f32 (f16,
 * bf16, f32) or f64 and round once; integers compute exactly in int64. Op numbers are
 * backend.h's bn_unary_op / bn_binary_op. */
#include "backend_cuda/cuda_common.cuh"

enum {
    U_NEG,
    U_ABS,
    U_EXP,
    U_LOG,
    U_LOG1P,
    U_SQRT,
    U_RSQRT,
    U_SIN,
    U_COS,
    U_TANH,
    U_SIGMOID,
    U_RELU,
    U_LEAKY_RELU,
    U_ELU,
    U_GELU,
    U_GELU_TANH,
    U_SILU,
    U_SOFTPLUS,
    U_ERF,
    U_FLOOR,
    U_CEIL,
    U_ROUND,
    U_SIGN,
    U_CLAMP,
    U_LOGICAL_NOT
};
enum {
    B_ADD,
    B_SUB,
    B_MUL,
    B_DIV,
    B_POW,
    B_MAX,
    B_MIN,
    B_REM,
    B_RELU_GRAD, /* b <= 0 ? 0 : a (float dtypes) */
    B_GELU_GRAD, /* a * f'(b) for gelu, gelu (tanh form), silu (float dtypes) */
    B_GELU_TANH_GRAD,
    B_SILU_GRAD,
    B_EQ,
    B_NE,
    B_LT,
    B_LE,
    B_GT,
    B_GE,
    B_AND,
    B_OR,
    B_XOR
};

struct UP {
    double alpha, beta, lo, hi;
    bool has_lo, has_hi;
};

template <class C> __device__ C unary_float(int op, C x, const UP &p)
{
    const C one = 1, zero = 0;
    switch (op) {
    case U_NEG: return -x;
    case U_ABS: return fabs(x);
    case U_EXP: return exp(x);
    case U_LOG: return log(x);
    case U_LOG1P: return log1p(x);
    case U_SQRT: return sqrt(x);
    case U_RSQRT: return one / sqrt(x);
    case U_SIN: return sin(x);
    case U_COS: return cos(x);
    case U_TANH: return tanh(x);
    case U_SIGMOID: return one / (one + exp(-x));
    case U_RELU: return x < zero ? zero : x;
    case U_LEAKY_RELU: return x < zero ? x * (C)p.alpha : x;
    case U_ELU: return x > zero ? x : (C)p.alpha * (exp(x) - one);
    case U_GELU: return x * (C)0.5 * (one + erf(x * (C)0.70710678118654752440));
    case U_GELU_TANH: {
        C inner = (C)0.79788456080286535588 * (x + (C)0.044715 * x * x * x);
        return (C)0.5 * x * (one + tanh(inner));
    }
    case U_SILU: return x / (one + exp(-x));
    case U_SOFTPLUS: {
        C bx = x * (C)p.alpha;
        return bx > (C)p.beta ? x : log1p(exp(bx)) / (C)p.alpha;
    }
    case U_ERF: return erf(x);
    case U_FLOOR: return floor(x);
    case U_CEIL: return ceil(x);
    case U_ROUND: return rint(x);
    case U_SIGN: return x > zero ? one : x < zero ? -one : x;
    case U_CLAMP: {
        if (p.has_lo && x < (C)p.lo) x = (C)p.lo;
        if (p.has_hi && x > (C)p.hi) x = (C)p.hi;
        return x;
    }
    }
    return x;
}

template <int ND, class T> __global__ void unary_kernel(Geo g, int op, const T *x, T *out, UP p)
{
    typedef typename Tr<T>::C C;
    GRID_LOOP(i, g.n)
    {
        int64_t o[BCU_OPS];
        geo_at<ND>(g, i, o);
        out[o[0]] = Tr<T>::store(unary_float<C>(op, Tr<T>::load(x[o[1]]), p));
    }
}

/* Contiguous operands on 16-byte boundaries: V elements per access; the last n % V one by
 * one. */
template <class T, int V = 16 / sizeof(T)>
__global__ void unary_vec_kernel(int64_t n, int op, const T *x, T *out, UP p)
{
    typedef typename Tr<T>::C C;
    typedef Pack<V, T> P;
    GRID_LOOP(j, n / V)
    {
        P a = ((const P *)x)[j], r;
#pragma unroll
        for (int u = 0; u < V; u++)
            r.v[u] = Tr<T>::store(unary_float<C>(op, Tr<T>::load(a.v[u]), p));
        ((P *)out)[j] = r;
    }
    int64_t t = n / V * V + (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (t < n) out[t] = Tr<T>::store(unary_float<C>(op, Tr<T>::load(x[t]), p));
}

template <int ND, class T> __global__ void not_kernel(Geo g, const T *x, uint8_t *out)
{
    GRID_LOOP(i, g.n)
    {
        int64_t o[BCU_OPS];
        geo_at<ND>(g, i, o);
        out[o[0]] = Tr<T>::to_d(x[o[1]]) == 0.0;
    }
}

/* Whether the contiguous operands of g allow the packed kernels (16-byte boundaries). */
static bool packable(const Geo &g, const void *a, const void *b, const void *c)
{
    return g.contig && aligned_to(a, 16) && aligned_to(b, 16) && aligned_to(c, 16);
}

extern "C" int bcu_unary(bcu_stream s, int op, const bcu_view *x, const bcu_view *out,
                         const bcu_unary_params *bp)
{
    const bcu_view *ops[2] = {out, x};
    Geo g = make_geo(ops, 2);
    if (g.n == 0) return 0;
    if (op == U_LOGICAL_NOT) {
        DISPATCH_ALL(x->dtype, T, {
            geo_launch(g, [&](auto nd) {
                not_kernel<decltype(nd)::value, T><<<grid_for(g.n), BCU_THREADS, 0, s>>>(
                    g, (const T *)x->data, (uint8_t *)out->data);
            });
            return launch_status("logical_not");
        });
        return unsupported("logical_not: dtype %s", bcu_dtype_name(x->dtype));
    }
    UP p = {bp ? bp->alpha : 0, bp ? bp->beta : 0,       bp ? bp->lo : 0,
            bp ? bp->hi : 0,    bp ? bp->has_lo : false, bp ? bp->has_hi : false};
    DISPATCH_FLOAT(x->dtype, T, {
        if (packable(g, x->data, out->data, out->data)) {
            unary_vec_kernel<T><<<grid_for(g.n / (16 / sizeof(T)) + 1), BCU_THREADS, 0, s>>>(
                g.n, op, (const T *)x->data, (T *)out->data, p);
        } else {
            geo_launch(g, [&](auto nd) {
                unary_kernel<decltype(nd)::value, T><<<grid_for(g.n), BCU_THREADS, 0, s>>>(
                    g, op, (const T *)x->data, (T *)out->data, p);
            });
        }
        return launch_status("unary");
    });
    return unsupported("the CUDA backend has no unary op %d for integer or bool dtype %s yet", op,
                       bcu_dtype_name(x->dtype));
}

/* ---- binary ---- */
template <class C> __device__ C binary_arith(int op, C a, C b)
{
    switch (op) {
    case B_ADD: return a + b;
    case B_SUB: return a - b;
    case B_MUL: return a * b;
    case B_DIV: return a / b;
    case B_POW: return pow(a, b);
    case B_MAX: return a != a ? a : b != b ? b : a > b ? a : b;
    case B_MIN: return a != a ? a : b != b ? b : a < b ? a : b;
    case B_REM: {
        C r = fmod(a, b);
        if (r != (C)0 && ((r < (C)0) != (b < (C)0))) r += b;
        return r;
    }
    case B_RELU_GRAD: return b <= (C)0 ? (C)0 : a;
    case B_GELU_GRAD: { /* the CPU kernel's formulas (backend/cpu/binary.c) */
        C cdf = (C)0.5 * ((C)1 + erf(b * (C)0.70710678118654752440));
        return a * (cdf + b * exp((C)-0.5 * b * b) * (C)0.39894228040143267794);
    }
    case B_GELU_TANH_GRAD: {
        C x2 = b * b;
        C t = tanh((C)0.79788456080286535588 * b * ((C)1 + (C)0.044715 * x2));
        C dinner = (C)0.79788456080286535588 * ((C)1 + (C)(3 * 0.044715) * x2);
        return a * ((C)0.5 * ((C)1 + t) + (C)0.5 * b * ((C)1 - t * t) * dinner);
    }
    case B_SILU_GRAD: {
        C s = (C)1 / ((C)1 + exp(-b));
        return a * (s * ((C)1 + b * ((C)1 - s)));
    }
    }
    return a;
}

__device__ inline int64_t int_arith(int op, int64_t a, int64_t b)
{
    switch (op) {
    case B_ADD: return (int64_t)((uint64_t)a + (uint64_t)b);
    case B_SUB: return (int64_t)((uint64_t)a - (uint64_t)b);
    case B_MUL: return (int64_t)((uint64_t)a * (uint64_t)b);
    case B_MAX: return a > b ? a : b;
    case B_MIN: return a < b ? a : b;
    }
    return a;
}

template <class C> __device__ bool binary_bool(int op, C a, C b)
{
    switch (op) {
    case B_EQ: return a == b;
    case B_NE: return a != b;
    case B_LT: return a < b;
    case B_LE: return a <= b;
    case B_GT: return a > b;
    case B_GE: return a >= b;
    case B_AND: return a != (C)0 && b != (C)0;
    case B_OR: return a != (C)0 || b != (C)0;
    case B_XOR: return (a != (C)0) != (b != (C)0);
    }
    return false;
}

template <int ND, class T>
__global__ void binary_kernel(Geo g, int op, const T *a, const T *b, T *out)
{
    typedef typename Tr<T>::C C;
    GRID_LOOP(i, g.n)
    {
        int64_t o[BCU_OPS];
        geo_at<ND>(g, i, o);
        C x = Tr<T>::load(a[o[1]]), y = Tr<T>::load(b[o[2]]);
        if constexpr (Tr<T>::integral)
            out[o[0]] = Tr<T>::store((C)int_arith(op, (int64_t)x, (int64_t)y));
        else
            out[o[0]] = Tr<T>::store(binary_arith<C>(op, x, y));
    }
}

/* Contiguous float operands on 16-byte boundaries (see unary_vec_kernel). */
template <class T, int V = 16 / sizeof(T)>
__global__ void binary_vec_kernel(int64_t n, int op, const T *a, const T *b, T *out)
{
    typedef typename Tr<T>::C C;
    typedef Pack<V, T> P;
    GRID_LOOP(j, n / V)
    {
        P x = ((const P *)a)[j], y = ((const P *)b)[j], r;
#pragma unroll
        for (int u = 0; u < V; u++)
            r.v[u] = Tr<T>::store(binary_arith<C>(op, Tr<T>::load(x.v[u]), Tr<T>::load(y.v[u])));
        ((P *)out)[j] = r;
    }
    int64_t t = n / V * V + (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (t < n) out[t] = Tr<T>::store(binary_arith<C>(op, Tr<T>::load(a[t]), Tr<T>::load(b[t])));
}

/* Operands whose rows stay contiguous (geo_pack: a permutation, a bias along rows): g counts
 * packs of V elements. */
template <int ND, class T, int V = 16 / sizeof(T)>
__global__ void binary_pack_kernel(Geo g, int op, const T *a, const T *b, T *out)
{
    typedef typename Tr<T>::C C;
    typedef Pack<V, T> P;
    GRID_LOOP(i, g.n)
    {
        int64_t o[BCU_OPS];
        geo_at<ND>(g, i, o);
        P x = ((const P *)a)[o[1]], y = ((const P *)b)[o[2]], r;
#pragma unroll
        for (int u = 0; u < V; u++)
            r.v[u] = Tr<T>::store(binary_arith<C>(op, Tr<T>::load(x.v[u]), Tr<T>::load(y.v[u])));
        ((P *)out)[o[0]] = r;
    }
}

template <int ND, class T>
__global__ void compare_kernel(Geo g, int op, const T *a, const T *b, uint8_t *out)
{
    typedef typename Tr<T>::C C;
    GRID_LOOP(i, g.n)
    {
        int64_t o[BCU_OPS];
        geo_at<ND>(g, i, o);
        out[o[0]] = binary_bool<C>(op, Tr<T>::load(a[o[1]]), Tr<T>::load(b[o[2]]));
    }
}

template <class T>
static int binary_launch(bcu_stream s, const Geo &g, int op, const bcu_view *a, const bcu_view *b,
                         const bcu_view *out)
{
    if constexpr (!Tr<T>::integral) {
        if (packable(g, a->data, b->data, out->data)) {
            binary_vec_kernel<T><<<grid_for(g.n / (16 / sizeof(T)) + 1), BCU_THREADS, 0, s>>>(
                g.n, op, (const T *)a->data, (const T *)b->data, (T *)out->data);
            return launch_status("binary");
        }
        Geo gp;
        const void *ptrs[3] = {out->data, a->data, b->data};
        if (geo_pack(g, ptrs, sizeof(T), (int)(16 / sizeof(T)), &gp)) {
            geo_launch(gp, [&](auto nd) {
                binary_pack_kernel<decltype(nd)::value, T><<<grid_for(gp.n), BCU_THREADS, 0, s>>>(
                    gp, op, (const T *)a->data, (const T *)b->data, (T *)out->data);
            });
            return launch_status("binary");
        }
    }
    {
        geo_launch(g, [&](auto nd) {
            binary_kernel<decltype(nd)::value, T><<<grid_for(g.n), BCU_THREADS, 0, s>>>(
                g, op, (const T *)a->data, (const T *)b->data, (T *)out->data);
        });
    }
    return launch_status("binary");
}

extern "C" int bcu_binary(bcu_stream s, int op, const bcu_view *a, const bcu_view *b,
                          const bcu_view *out)
{
    const bcu_view *ops[3] = {out, a, b};
    Geo g = make_geo(ops, 3);
    if (g.n == 0) return 0;
    if (op >= B_EQ) {
        DISPATCH_ALL(a->dtype, T, {
            geo_launch(g, [&](auto nd) {
                compare_kernel<decltype(nd)::value, T><<<grid_for(g.n), BCU_THREADS, 0, s>>>(
                    g, op, (const T *)a->data, (const T *)b->data, (uint8_t *)out->data);
            });
            return launch_status("compare");
        });
        return unsupported("binary op %d: dtype %s", op, bcu_dtype_name(a->dtype));
    }
    bool is_int = a->dtype >= BCU_I8 && a->dtype <= BCU_I64;
    if (is_int && (op == B_ADD || op == B_SUB || op == B_MUL || op == B_MAX || op == B_MIN)) {
        switch (a->dtype) {
        case BCU_I8: return binary_launch<int8_t>(s, g, op, a, b, out);
        case BCU_U8: return binary_launch<uint8_t>(s, g, op, a, b, out);
        case BCU_I32: return binary_launch<int32_t>(s, g, op, a, b, out);
        case BCU_I64: return binary_launch<int64_t>(s, g, op, a, b, out);
        }
    }
    DISPATCH_FLOAT(a->dtype, T, { return binary_launch<T>(s, g, op, a, b, out); });
    return unsupported("the CUDA backend has no binary op %d for dtype %s yet", op,
                       bcu_dtype_name(a->dtype));
}
