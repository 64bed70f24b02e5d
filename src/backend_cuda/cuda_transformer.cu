/* backend_cuda/cuda_transformer.cu — the fused element-wise transformer kernels on the GPU
 * (backend_attn.h's optional tail; the CPU's are src/backend/cpu/transformer.c):
 *   - gated activations: out = act(a) * b and its backward dA = g b act'(a), dB = g act(a), one
 *     thread per (row, column) of the F-wide halves, reading x once and writing once;
 *   - rotary embeddings: one thread per output element; pair (i, i + rd/2) or (2i, 2i + 1) at
 *     position t becomes (a c - b s, a s + b c), dims rd..D copied.
 * Exactness: the activation is cuda_math.cu's unary formula, and the derivative follows the
 * composed autograd rule step by step, every step an explicitly rounded operation (__fmul_rn and
 * friends, so nvcc contracts nothing into an FMA the separate kernels would not have), so f32
 * and f64 results equal the unfused GPU path's; f16/bf16 compute in f32 and round once. All
 * indexing is int64 with grid-stride loops, so sizes beyond 2^31 elements work. */
#include "backend_cuda/cuda_common.cuh"
#include "backend_cuda/cuda_transformer.h"

namespace {

enum { K_SWIGLU, K_GEGLU, K_GEGLU_TANH, K_REGLU, K_SIGMOID };

/* the constants of cpu/transformer.c (grad_elementwise_unary.c's rules) */
#define TF_SQRT_2 1.41421356237309504880
#define TF_INV_SQRT_2PI 0.39894228040143267794
#define TF_BETA 0.7978845608028654 /* sqrt(2 / pi) */
#define TF_KAPPA 0.044715

/* operations rounded one at a time (never contracted into an FMA) */
template <class C> struct Rn;
template <> struct Rn<float> {
    __device__ static float mul(float a, float b) { return __fmul_rn(a, b); }
    __device__ static float add(float a, float b) { return __fadd_rn(a, b); }
    __device__ static float sub(float a, float b) { return __fsub_rn(a, b); }
    __device__ static float div(float a, float b) { return __fdiv_rn(a, b); }
};
template <> struct Rn<double> {
    __device__ static double mul(double a, double b) { return __dmul_rn(a, b); }
    __device__ static double add(double a, double b) { return __dadd_rn(a, b); }
    __device__ static double sub(double a, double b) { return __dsub_rn(a, b); }
    __device__ static double div(double a, double b) { return __ddiv_rn(a, b); }
};

/* act(x): cuda_math.cu's unary formulas (silu, gelu, gelu_tanh, relu, sigmoid) */
template <class C> __device__ inline C glu_act(int kind, C x)
{
    const C one = 1, zero = 0;
    switch (kind) {
    case K_SWIGLU: return x / (one + exp(-x));
    case K_GEGLU: return x * (C)0.5 * (one + erf(x * (C)0.70710678118654752440));
    case K_GEGLU_TANH: {
        C inner = (C)0.79788456080286535588 * (x + (C)0.044715 * x * x * x);
        return (C)0.5 * x * (one + tanh(inner));
    }
    case K_REGLU: return x < zero ? zero : x; /* NaN stays NaN */
    default: return one / (one + exp(-x));
    }
}

/* da = (g b) act'(a) as the composed rule computes it (each step rounded), given act = act(a) */
template <class C> __device__ inline C glu_da(int kind, C a, C b, C g, C act)
{
    typedef Rn<C> R;
    const C one = 1, zero = 0;
    C gb = R::mul(g, b);
    switch (kind) {
    case K_SWIGLU: { /* s (1 + a (1 - s)) */
        C s = one / (one + exp(-a));
        C u = R::mul(a, R::sub(one, s));
        u = R::add(u, one);
        u = R::mul(s, u);
        return R::mul(gb, u);
    }
    case K_GEGLU: { /* Phi(a) + a phi(a) */
        C t1 = erf(R::div(a, (C)TF_SQRT_2));
        C sq = R::mul(a, a);
        C t2 = exp(R::mul(sq, (C)-0.5));
        C cdf = R::add(t1, one);
        cdf = R::mul(cdf, (C)0.5);
        C pdf = R::mul(t2, (C)TF_INV_SQRT_2PI);
        C xp = R::mul(a, pdf);
        return R::mul(gb, R::add(cdf, xp));
    }
    case K_GEGLU_TANH: { /* (1 + t)/2 + a/2 (1 - t^2) beta (1 + 3 kappa a^2) */
        C x2 = R::mul(a, a);
        C inner = R::mul(x2, (C)TF_KAPPA);
        inner = R::add(inner, one);
        inner = R::mul(a, inner);
        C t = tanh(R::mul(inner, (C)TF_BETA));
        C left = R::add(t, one);
        left = R::mul(left, (C)0.5);
        C dinner = R::mul(x2, (C)(3 * TF_KAPPA));
        dinner = R::add(dinner, one);
        dinner = R::mul(dinner, (C)TF_BETA);
        C tt = R::mul(t, t);
        C om = R::sub(one, tt);
        C right = R::mul(om, dinner);
        C half_a = R::mul(a, (C)0.5);
        right = R::mul(half_a, right);
        return R::mul(gb, R::add(left, right));
    }
    case K_REGLU: return a <= zero ? zero : gb; /* NaN passes */
    default: {                                  /* sigmoid: y (1 - y) */
        C om = R::sub(one, act);
        return R::mul(gb, R::mul(act, om));
    }
    }
}

/* x (rows, 2F): row r at x + r * sx; out (rows, F) contiguous */
template <class T>
__global__ void glu_fwd_kernel(int kind, const T *x, int64_t sx, T *out, int64_t F, int64_t n)
{
    typedef typename Tr<T>::C C;
    GRID_LOOP(i, n)
    {
        int64_t r = i / F, c = i - r * F;
        const T *xr = x + r * sx;
        C a = Tr<T>::load(xr[c]), b = Tr<T>::load(xr[F + c]);
        out[i] = Tr<T>::store(Rn<C>::mul(glu_act<C>(kind, a), b));
    }
}

/* dout (rows, F): row r at g + r * sg; dx (rows, 2F) contiguous */
template <class T>
__global__ void glu_bwd_kernel(int kind, const T *x, int64_t sx, const T *g, int64_t sg, T *dx,
                               int64_t F, int64_t n)
{
    typedef typename Tr<T>::C C;
    GRID_LOOP(i, n)
    {
        int64_t r = i / F, c = i - r * F;
        const T *xr = x + r * sx;
        C a = Tr<T>::load(xr[c]), b = Tr<T>::load(xr[F + c]), gv = Tr<T>::load(g[r * sg + c]);
        C act = glu_act<C>(kind, a);
        T *dr = dx + r * 2 * F;
        dr[F + c] = Tr<T>::store(Rn<C>::mul(gv, act));
        dr[c] = Tr<T>::store(glu_da<C>(kind, a, b, gv, act));
    }
}

/* rows = nb * nh * T rows of D; x row (b, h, t) at b sb + h sh + t st; tables (trows, T, half) */
struct RopeArgs {
    int64_t nh, T, D, rd, half, trows, n;
    int64_t sb, sh, st;
    bool interleaved, inverse;
};

template <class T>
__global__ void rope_kernel(RopeArgs p, const T *x, const typename Tr<T>::C *cs,
                            const typename Tr<T>::C *sn, T *out)
{
    typedef typename Tr<T>::C C;
    typedef Rn<C> R;
    GRID_LOOP(e, p.n)
    {
        int64_t r = e / p.D, k = e - r * p.D;
        int64_t t = r % p.T, h = (r / p.T) % p.nh, b = r / (p.T * p.nh);
        const T *xr = x + b * p.sb + h * p.sh + t * p.st;
        if (k >= p.rd) {
            out[e] = xr[k];
            continue;
        }
        int64_t i, pa, pb;
        bool first;
        if (p.interleaved) {
            i = k / 2;
            pa = 2 * i;
            pb = pa + 1;
            first = (k & 1) == 0;
        } else {
            first = k < p.half;
            i = first ? k : k - p.half;
            pa = i;
            pb = i + p.half;
        }
        int64_t toff = ((p.trows == 1 ? 0 : b) * p.T + t) * p.half + i;
        C a = Tr<T>::load(xr[pa]), bb = Tr<T>::load(xr[pb]), c = cs[toff], s = sn[toff];
        if (p.inverse) s = -s;
        C v = first ? R::sub(R::mul(a, c), R::mul(bb, s)) : R::add(R::mul(a, s), R::mul(bb, c));
        out[e] = Tr<T>::store(v);
    }
}

bool is_float(int dt) { return dt == BCU_F32 || dt == BCU_F64 || dt == BCU_F16 || dt == BCU_BF16; }

} // namespace

extern "C" int bcu_glu_forward(bcu_stream s, int kind, const bcu_view *x, const bcu_view *out)
{
    if (!is_float(x->dtype) || out->dtype != x->dtype)
        return unsupported("glu_forward: no CUDA kernel for %s (out %s)", bcu_dtype_name(x->dtype),
                           bcu_dtype_name(out->dtype));
    int64_t rows = x->shape[0], F = x->shape[1] / 2, n = rows * F;
    if (n == 0) return 0;
    int64_t sx = x->strides[0];
    DISPATCH_FLOAT(x->dtype, T, {
        glu_fwd_kernel<T><<<grid_for(n), BCU_THREADS, 0, s>>>(kind, (const T *)x->data, sx,
                                                              (T *)out->data, F, n);
        return launch_status("glu_forward");
    });
    return unsupported("glu_forward: no CUDA kernel for %s", bcu_dtype_name(x->dtype));
}

extern "C" int bcu_glu_backward(bcu_stream s, int kind, const bcu_view *x, const bcu_view *dout,
                                const bcu_view *dx)
{
    if (!is_float(x->dtype) || dout->dtype != x->dtype || dx->dtype != x->dtype)
        return unsupported("glu_backward: no CUDA kernel for %s (dout %s, dx %s)",
                           bcu_dtype_name(x->dtype), bcu_dtype_name(dout->dtype),
                           bcu_dtype_name(dx->dtype));
    int64_t rows = x->shape[0], F = x->shape[1] / 2, n = rows * F;
    if (n == 0) return 0;
    int64_t sx = x->strides[0], sg = dout->strides[0];
    DISPATCH_FLOAT(x->dtype, T, {
        glu_bwd_kernel<T><<<grid_for(n), BCU_THREADS, 0, s>>>(
            kind, (const T *)x->data, sx, (const T *)dout->data, sg, (T *)dx->data, F, n);
        return launch_status("glu_backward");
    });
    return unsupported("glu_backward: no CUDA kernel for %s", bcu_dtype_name(x->dtype));
}

extern "C" int bcu_rope(bcu_stream s, const bcu_view *x, const bcu_view *cos, const bcu_view *sin,
                        const bcu_view *out, const bcu_rope_geom *g)
{
    int dt = x->dtype, cdt = dt == BCU_F64 ? BCU_F64 : BCU_F32;
    if (!is_float(dt) || out->dtype != dt)
        return unsupported("rope: no CUDA kernel for %s (out %s)", bcu_dtype_name(dt),
                           bcu_dtype_name(out->dtype));
    if (cos->dtype != cdt || sin->dtype != cdt)
        return unsupported("rope: the tables must be %s for %s x, not %s and %s",
                           bcu_dtype_name(cdt), bcu_dtype_name(dt), bcu_dtype_name(cos->dtype),
                           bcu_dtype_name(sin->dtype));
    RopeArgs p;
    p.nh = x->shape[1];
    p.T = x->shape[2];
    p.D = x->shape[3];
    p.rd = g->rd;
    p.half = g->rd / 2;
    p.trows = cos->shape[0];
    p.n = x->shape[0] * p.nh * p.T * p.D;
    p.sb = x->strides[0];
    p.sh = x->strides[1];
    p.st = x->strides[2];
    p.interleaved = g->interleaved;
    p.inverse = g->inverse;
    if (p.n == 0) return 0;
    DISPATCH_FLOAT(dt, T, {
        typedef typename Tr<T>::C C;
        rope_kernel<T><<<grid_for(p.n), BCU_THREADS, 0, s>>>(
            p, (const T *)x->data, (const C *)cos->data, (const C *)sin->data, (T *)out->data);
        return launch_status("rope");
    });
    return unsupported("rope: no CUDA kernel for %s", bcu_dtype_name(dt));
}
