/* backend_cuda/cuda_reduce.cu — reductions over a dim mask (one block per output element, a
 * fixed-order tree inside the block, so results do not depend on scheduling), cumsum (one thread
 * per line) and softmax / log_softmax (one block per line). Floats accumulate in f64, integers in
 * int64. Op numbers are backend.h's bn_reduce_op. */
#include "backend_cuda/cuda_common.cuh"

enum { R_SUM, R_MEAN, R_PROD, R_MAX, R_MIN, R_ARGMAX, R_ARGMIN, R_VAR, R_STD, R_LSE, R_ALL, R_ANY };

/* kept dims (walked by output index) and reduced dims (walked inside the block) */
struct RGeo {
    int nk, nr;
    int64_t nout, nred;
    int64_t kshape[BCU_MAX_DIMS], kx[BCU_MAX_DIMS], ko[BCU_MAX_DIMS];
    int64_t rshape[BCU_MAX_DIMS], rx[BCU_MAX_DIMS];
};

struct Acc {
    double d;
    int64_t i, idx;
};

__device__ inline bool is_nan(double v) { return v != v; }

/* pass 0: the op itself (or sum / max for VAR/STD/LSE); pass 1: the second pass of those */
__device__ inline Acc acc_identity(int op, int pass)
{
    Acc a = {0.0, 0, INT64_MAX};
    if (pass == 1) return a;
    if (op == R_PROD || op == R_ALL) {
        a.d = 1.0;
        a.i = 1;
    }
    if (op == R_MAX || op == R_ARGMAX || op == R_LSE) {
        a.d = -INFINITY;
        a.i = INT64_MIN;
    }
    if (op == R_MIN || op == R_ARGMIN) {
        a.d = INFINITY;
        a.i = INT64_MAX;
    }
    return a;
}

__device__ inline Acc acc_combine(int op, int pass, bool integral, Acc a, Acc b)
{
    if (pass == 1 || op == R_SUM || op == R_MEAN || op == R_VAR || op == R_STD) {
        a.d += b.d;
        a.i = (int64_t)((uint64_t)a.i + (uint64_t)b.i);
    } else if (op == R_PROD) {
        a.d *= b.d;
        a.i = (int64_t)((uint64_t)a.i * (uint64_t)b.i);
    } else if (op == R_MAX || op == R_MIN || op == R_LSE) {
        bool mx = op != R_MIN;
        if (integral)
            a.i = mx ? (b.i > a.i ? b.i : a.i) : (b.i < a.i ? b.i : a.i);
        else if (!is_nan(a.d) && (is_nan(b.d) || (mx ? b.d > a.d : b.d < a.d)))
            a.d = b.d;
    } else if (op == R_ARGMAX || op == R_ARGMIN) {
        bool mx = op == R_ARGMAX;
        bool better = integral ? (mx ? b.i > a.i : b.i < a.i)
                               : (!is_nan(a.d) && (is_nan(b.d) || (mx ? b.d > a.d : b.d < a.d)));
        bool same = integral ? b.i == a.i : (b.d == a.d || (is_nan(a.d) && is_nan(b.d)));
        if (better || (same && b.idx < a.idx)) a = b;
    } else if (op == R_ALL) {
        a.i = a.i && b.i;
    } else if (op == R_ANY) {
        a.i = a.i || b.i;
    }
    return a;
}

template <class T>
__device__ inline Acc acc_element(int op, int pass, T v, int64_t r, double center)
{
    Acc a = {Tr<T>::to_d(v), Tr<T>::to_i(v), r};
    if (op == R_ALL || op == R_ANY) a.i = Tr<T>::to_d(v) != 0.0;
    if (pass == 1) {
        double dlt = a.d - center;
        a.d = (op == R_LSE) ? exp(dlt) : dlt * dlt;
    }
    return a;
}

/* The block's tree over sh[0 .. blockDim.x): the combined value (every thread gets it). */
__device__ Acc block_tree(int op, int pass, bool integral, Acc a, Acc *sh)
{
    sh[threadIdx.x] = a;
    __syncthreads();
    for (int w = blockDim.x / 2; w > 0; w /= 2) {
        if ((int)threadIdx.x < w)
            sh[threadIdx.x] = acc_combine(op, pass, integral, sh[threadIdx.x], sh[threadIdx.x + w]);
        __syncthreads();
    }
    Acc res = sh[0];
    __syncthreads();
    return res;
}

/* Reduced elements [r0, r1) of the output at base, one block. */
template <class T>
__device__ Acc block_range(const RGeo &g, int op, int pass, const T *x, int64_t base, double center,
                           int64_t r0, int64_t r1, Acc *sh)
{
    Acc a = acc_identity(op, pass);
    for (int64_t r = r0 + threadIdx.x; r < r1; r += blockDim.x) {
        int64_t off = base, rem = r;
        for (int d = g.nr - 1; d >= 0; d--) {
            off += (rem % g.rshape[d]) * g.rx[d];
            rem /= g.rshape[d];
        }
        a = acc_combine(op, pass, Tr<T>::integral, a, acc_element<T>(op, pass, x[off], r, center));
    }
    return block_tree(op, pass, Tr<T>::integral, a, sh);
}

template <class T>
__device__ Acc block_pass(const RGeo &g, int op, int pass, const T *x, int64_t base, double center,
                          Acc *sh)
{
    Acc a = acc_identity(op, pass);
    for (int64_t r = threadIdx.x; r < g.nred; r += blockDim.x) {
        int64_t off = base, rem = r;
        for (int d = g.nr - 1; d >= 0; d--) {
            off += (rem % g.rshape[d]) * g.rx[d];
            rem /= g.rshape[d];
        }
        a = acc_combine(op, pass, Tr<T>::integral, a, acc_element<T>(op, pass, x[off], r, center));
    }
    sh[threadIdx.x] = a;
    __syncthreads();
    for (int w = blockDim.x / 2; w > 0; w /= 2) {
        if ((int)threadIdx.x < w)
            sh[threadIdx.x] =
                acc_combine(op, pass, Tr<T>::integral, sh[threadIdx.x], sh[threadIdx.x + w]);
        __syncthreads();
    }
    Acc res = sh[0];
    __syncthreads();
    return res;
}

template <class T, class O>
__global__ void reduce_kernel(RGeo g, int op, const T *x, O *out, int correction)
{
    __shared__ Acc sh[BCU_THREADS];
    for (int64_t o = blockIdx.x; o < g.nout; o += gridDim.x) {
        int64_t bx = 0, bo = 0, rem = o;
        for (int d = g.nk - 1; d >= 0; d--) {
            int64_t idx = rem % g.kshape[d];
            rem /= g.kshape[d];
            bx += idx * g.kx[d];
            bo += idx * g.ko[d];
        }
        bool integral = Tr<T>::integral;
        Acc a = block_pass<T>(g, op, 0, x, bx, 0.0, sh);
        double res = a.d;
        int64_t ires = a.i;
        bool use_int = integral && op != R_MEAN;
        if (op == R_MEAN) res = (integral ? (double)a.i : a.d) / (double)g.nred;
        if (op == R_ARGMAX || op == R_ARGMIN) {
            ires = a.idx == INT64_MAX ? 0 : a.idx;
            use_int = true;
        }
        if (op == R_ALL || op == R_ANY) use_int = true;
        if (op == R_VAR || op == R_STD) {
            double mean = (integral ? (double)a.i : a.d) / (double)g.nred;
            Acc b = block_pass<T>(g, op, 1, x, bx, mean, sh);
            double den = (double)g.nred - correction;
            res = den > 0 ? b.d / den : NAN;
            if (op == R_STD) res = sqrt(res);
            use_int = false;
        }
        if (op == R_LSE) {
            double m = integral ? (double)a.i : a.d;
            if (isinf(m) || is_nan(m)) {
                res = m;
            } else {
                Acc b = block_pass<T>(g, op, 1, x, bx, m, sh);
                res = m + log(b.d);
            }
            use_int = false;
        }
        if (threadIdx.x == 0) out[bo] = use_int ? Tr<O>::from_i(ires) : Tr<O>::from_d(res);
    }
}

/* The kept dims' offsets of output o into x and out. */
__device__ inline void out_base(const RGeo &g, int64_t o, int64_t *bx, int64_t *bo)
{
    *bx = *bo = 0;
    for (int d = g.nk - 1; d >= 0; d--) {
        int64_t idx = o % g.kshape[d];
        o /= g.kshape[d];
        *bx += idx * g.kx[d];
        *bo += idx * g.ko[d];
    }
}

/* Few outputs, many elements each (a loss's sum or mean): stage 1 splits each output's reduced
 * range into `parts` fixed chunks, one block each, writing partials[o * parts + p]; stage 2
 * combines an output's partials in chunk order. The split depends only on the shapes, so the
 * result does not depend on scheduling. Single-pass ops only (sum, mean, prod, max, min, all,
 * any). */
template <class T>
__global__ void reduce_parts_kernel(RGeo g, int op, const T *x, int64_t parts, int64_t chunk,
                                    Acc *partials)
{
    __shared__ Acc sh[BCU_THREADS];
    int64_t o = blockIdx.y, p = blockIdx.x;
    int64_t bx, bo;
    out_base(g, o, &bx, &bo);
    int64_t r0 = p * chunk, r1 = r0 + chunk < g.nred ? r0 + chunk : g.nred;
    Acc a = block_range<T>(g, op, 0, x, bx, 0.0, r0, r1, sh);
    if (threadIdx.x == 0) partials[o * parts + p] = a;
}

template <class T, class O>
__global__ void reduce_combine_kernel(RGeo g, int op, const Acc *partials, int64_t parts, O *out)
{
    __shared__ Acc sh[BCU_THREADS];
    int64_t o = blockIdx.x;
    int64_t bx, bo;
    out_base(g, o, &bx, &bo);
    bool integral = Tr<T>::integral;
    Acc a = acc_identity(op, 0);
    for (int64_t p = threadIdx.x; p < parts; p += blockDim.x)
        a = acc_combine(op, 0, integral, a, partials[o * parts + p]);
    a = block_tree(op, 0, integral, a, sh);
    double res = a.d;
    int64_t ires = a.i;
    bool use_int = (integral && op != R_MEAN) || op == R_ALL || op == R_ANY;
    if (op == R_MEAN) res = (integral ? (double)a.i : a.d) / (double)g.nred;
    if (threadIdx.x == 0) out[bo] = use_int ? Tr<O>::from_i(ires) : Tr<O>::from_d(res);
}

enum { PARTS_MIN_RED = 1 << 16, PARTS_CHUNK = 1 << 14, PARTS_MAX = 1024, PARTS_MAX_OUT = 64 };

static bool use_parts(const RGeo &g, int op)
{
    bool single = op == R_SUM || op == R_MEAN || op == R_PROD || op == R_MAX || op == R_MIN ||
                  op == R_ALL || op == R_ANY;
    return single && g.nout <= PARTS_MAX_OUT && g.nred >= PARTS_MIN_RED;
}

static void parts_of(const RGeo &g, int64_t *parts, int64_t *chunk)
{
    int64_t p = (g.nred + PARTS_CHUNK - 1) / PARTS_CHUNK;
    if (p > PARTS_MAX) p = PARTS_MAX;
    *chunk = (g.nred + p - 1) / p;
    *parts = (g.nred + *chunk - 1) / *chunk;
}

template <class T>
static int reduce_to(bcu_stream s, const RGeo &g, int op, const bcu_view *x, const bcu_view *out,
                     int correction, void *scratch, size_t scratch_bytes)
{
    if (use_parts(g, op) && scratch) {
        int64_t parts, chunk;
        parts_of(g, &parts, &chunk);
        if (scratch_bytes >= sizeof(Acc) * (size_t)(parts * g.nout)) {
            Acc *partials = (Acc *)scratch;
            dim3 grid((unsigned)parts, (unsigned)g.nout);
            reduce_parts_kernel<T><<<grid, BCU_THREADS, 0, s>>>(g, op, (const T *)x->data, parts,
                                                               chunk, partials);
            int rc = launch_status("reduce (parts)");
            if (rc) return rc;
            DISPATCH_ALL(out->dtype, O, {
                reduce_combine_kernel<T, O><<<(unsigned)g.nout, BCU_THREADS, 0, s>>>(
                    g, op, partials, parts, (O *)out->data);
                return launch_status("reduce (combine)");
            });
            return unsupported("reduce: out dtype %s", bcu_dtype_name(out->dtype));
        }
    }
    unsigned blocks = g.nout > 65535 * 4 ? 65535 * 4 : (unsigned)(g.nout ? g.nout : 1);
    DISPATCH_ALL(out->dtype, O, {
        reduce_kernel<T, O>
            <<<blocks, BCU_THREADS, 0, s>>>(g, op, (const T *)x->data, (O *)out->data, correction);
        return launch_status("reduce");
    });
    return unsupported("reduce: out dtype %s", bcu_dtype_name(out->dtype));
}

static RGeo reduce_geometry(const bcu_view *x, const bcu_view *out, uint32_t mask)
{
    RGeo g;
    g.nk = g.nr = 0;
    g.nout = g.nred = 1;
    for (int d = 0; d < x->ndim; d++) {
        if (mask & (1u << d)) {
            g.rshape[g.nr] = x->shape[d];
            g.rx[g.nr++] = x->strides[d];
            g.nred *= x->shape[d];
        } else {
            g.kshape[g.nk] = x->shape[d];
            g.kx[g.nk] = x->strides[d];
            g.ko[g.nk++] = out->strides[d];
            g.nout *= x->shape[d];
        }
    }
    return g;
}

extern "C" size_t bcu_reduce_scratch(int op, const bcu_view *x, const bcu_view *out, uint32_t mask)
{
    RGeo g = reduce_geometry(x, out, mask);
    if (g.nout == 0 || !use_parts(g, op)) return 0;
    int64_t parts, chunk;
    parts_of(g, &parts, &chunk);
    return sizeof(Acc) * (size_t)(parts * g.nout);
}

extern "C" int bcu_reduce(bcu_stream s, int op, const bcu_view *x, const bcu_view *out,
                          uint32_t mask, int correction, void *scratch, size_t scratch_bytes)
{
    RGeo g = reduce_geometry(x, out, mask);
    if (g.nout == 0) return 0;
    DISPATCH_ALL(x->dtype, T, {
        return reduce_to<T>(s, g, op, x, out, correction, scratch, scratch_bytes);
    });
    return unsupported("reduce: dtype %s", bcu_dtype_name(x->dtype));
}

/* ---- lines along one dim (cumsum, softmax) ---- */
struct LGeo {
    int nk;
    int64_t nlines, len, sx, so; /* length and strides along dim */
    int64_t kshape[BCU_MAX_DIMS], kx[BCU_MAX_DIMS], ko[BCU_MAX_DIMS];
};

static LGeo make_lines(const bcu_view *x, const bcu_view *out, int dim)
{
    LGeo g;
    g.nk = 0;
    g.nlines = 1;
    g.len = x->ndim ? x->shape[dim] : 1;
    g.sx = x->ndim ? x->strides[dim] : 0;
    g.so = out->ndim ? out->strides[dim] : 0;
    for (int d = 0; d < x->ndim; d++) {
        if (d == dim) continue;
        g.kshape[g.nk] = x->shape[d];
        g.kx[g.nk] = x->strides[d];
        g.ko[g.nk++] = out->strides[d];
        g.nlines *= x->shape[d];
    }
    return g;
}

__device__ inline void line_base(const LGeo &g, int64_t l, int64_t *bx, int64_t *bo)
{
    *bx = *bo = 0;
    for (int d = g.nk - 1; d >= 0; d--) {
        int64_t idx = l % g.kshape[d];
        l /= g.kshape[d];
        *bx += idx * g.kx[d];
        *bo += idx * g.ko[d];
    }
}

template <class T, class O> __global__ void cumsum_kernel(LGeo g, const T *x, O *out)
{
    GRID_LOOP(l, g.nlines)
    {
        int64_t bx, bo;
        line_base(g, l, &bx, &bo);
        double sd = 0;
        int64_t si = 0;
        for (int64_t k = 0; k < g.len; k++) {
            T v = x[bx + k * g.sx];
            if (Tr<T>::integral && Tr<O>::integral) {
                si += Tr<T>::to_i(v);
                out[bo + k * g.so] = Tr<O>::from_i(si);
            } else {
                sd += Tr<T>::to_d(v);
                out[bo + k * g.so] = Tr<O>::from_d(sd);
            }
        }
    }
}

template <class T>
static int cumsum_to(bcu_stream s, const LGeo &g, const bcu_view *x, const bcu_view *out)
{
    DISPATCH_ALL(out->dtype, O, {
        cumsum_kernel<T, O>
            <<<grid_for(g.nlines), BCU_THREADS, 0, s>>>(g, (const T *)x->data, (O *)out->data);
        return launch_status("cumsum");
    });
    return unsupported("cumsum: out dtype %s", bcu_dtype_name(out->dtype));
}

extern "C" int bcu_cumsum(bcu_stream s, const bcu_view *x, const bcu_view *out, int dim)
{
    LGeo g = make_lines(x, out, dim);
    if (g.nlines == 0 || g.len == 0) return 0;
    DISPATCH_ALL(x->dtype, T, { return cumsum_to<T>(s, g, x, out); });
    return unsupported("cumsum: dtype %s", bcu_dtype_name(x->dtype));
}

template <class C> __device__ C block_reduce(C v, bool is_max, C *sh)
{
    sh[threadIdx.x] = v;
    __syncthreads();
    for (int w = blockDim.x / 2; w > 0; w /= 2) {
        if ((int)threadIdx.x < w) {
            C o = sh[threadIdx.x + w], m = sh[threadIdx.x];
            sh[threadIdx.x] = is_max ? (m != m || o < m ? m : o) : m + o;
        }
        __syncthreads();
    }
    C r = sh[0];
    __syncthreads();
    return r;
}

template <class T> __global__ void softmax_kernel(LGeo g, const T *x, T *out, bool log_out)
{
    typedef typename Tr<T>::C C;
    __shared__ C sh[BCU_THREADS];
    for (int64_t l = blockIdx.x; l < g.nlines; l += gridDim.x) {
        int64_t bx, bo;
        line_base(g, l, &bx, &bo);
        C m = -INFINITY;
        for (int64_t k = threadIdx.x; k < g.len; k += blockDim.x) {
            C v = Tr<T>::load(x[bx + k * g.sx]);
            m = (m != m || v < m) ? m : v;
        }
        m = block_reduce<C>(m, true, sh);
        C sum = 0;
        for (int64_t k = threadIdx.x; k < g.len; k += blockDim.x)
            sum += exp(Tr<T>::load(x[bx + k * g.sx]) - m);
        sum = block_reduce<C>(sum, false, sh);
        C lsum = log(sum);
        for (int64_t k = threadIdx.x; k < g.len; k += blockDim.x) {
            C d = Tr<T>::load(x[bx + k * g.sx]) - m;
            out[bo + k * g.so] = Tr<T>::store(log_out ? d - lsum : exp(d) / sum);
        }
    }
}

extern "C" int bcu_softmax(bcu_stream s, const bcu_view *x, const bcu_view *out, int dim, bool log)
{
    LGeo g = make_lines(x, out, dim);
    if (g.nlines == 0 || g.len == 0) return 0;
    unsigned blocks = g.nlines > 65535 * 4 ? 65535 * 4 : (unsigned)g.nlines;
    DISPATCH_FLOAT(x->dtype, T, {
        softmax_kernel<T>
            <<<blocks, BCU_THREADS, 0, s>>>(g, (const T *)x->data, (T *)out->data, log);
        return launch_status("softmax");
    });
    return unsupported("softmax: dtype %s", bcu_dtype_name(x->dtype));
}
