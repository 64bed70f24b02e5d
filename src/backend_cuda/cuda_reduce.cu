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

/* ---- sums of a contiguous x seen as (P, K, Q) over P and Q: bias gradients, losses ---------
 * x's reduced dims are a prefix (P elements) and a suffix (Q), its kept dims the middle (K) and
 * out holds the K results contiguously. Stage 1 cuts each k's P x Q elements into S parts, one
 * block per (k, part): with Q >= 32 a part is `chunk` consecutive (row, q) pairs, walked by the
 * block's threads in order (runs of Q contiguous elements: coalesced); with Q = 1 a part is
 * `chunk` rows and a block owns 32 adjacent columns k, its 8 warps taking every 8th row; with
 * P = 1 and one part, a warp takes a row. Each block folds its values in a fixed tree (f64
 * accumulators); stage 2 adds a k's S partials in part order. S depends only on the shape, so
 * the result does not depend on scheduling. Sum and mean of float dtypes; everything else takes the general
 * kernels above. */
struct PKQ {
    int64_t P, K, Q, S, chunk;
    bool cols; /* Q == 1: the column kernel */
    bool warp; /* P == 1, S == 1, many short rows: a warp per row */
};

enum {
    PKQ_BLOCKS = 1024,
    PKQ_MIN_PART = 4096,
    PKQ_MIN_ROWS = 64,
    PKQ_MAX_PARTS = 1024,
    PKQ_WARP_MAX_Q = 4096
};

static bool pkq_of(int op, const bcu_view *x, const bcu_view *out, uint32_t mask, PKQ *q)
{
    if (op != R_SUM && op != R_MEAN) return false;
    if (x->dtype > BCU_BF16 || out->dtype > BCU_BF16) return false; /* float dtypes only */
    int64_t want = 1;
    for (int d = x->ndim - 1; d >= 0; d--) { /* x contiguous */
        if (x->shape[d] == 0) return false;
        if (x->shape[d] != 1 && x->strides[d] != want) return false;
        want *= x->shape[d];
    }
    int stage = 0; /* 0: reduced prefix, 1: kept middle, 2: reduced suffix */
    q->P = q->K = q->Q = 1;
    int64_t ostride = 1;
    for (int d = 0; d < x->ndim; d++) {
        if (x->shape[d] == 1) continue;
        bool red = (mask >> d) & 1u;
        if (red && stage == 1) stage = 2;
        if (!red && stage == 2) return false;
        if (!red) stage = 1;
        if (stage == 0) q->P *= x->shape[d];
        if (stage == 1) q->K *= x->shape[d];
        if (stage == 2) q->Q *= x->shape[d];
    }
    if (stage == 0) { /* everything reduced: one output over a contiguous run */
        q->Q = q->P;
        q->P = 1;
    }
    for (int d = x->ndim - 1; d >= 0; d--) { /* out: the kept dims contiguous, in order */
        if ((mask >> d) & 1u || x->shape[d] == 1) continue;
        if (out->strides[d] != ostride) return false;
        ostride *= x->shape[d];
    }
    q->cols = q->Q == 1 && q->K > 1;
    if (!q->cols && q->Q < 32) return false;
    int64_t units = q->cols ? (q->K + 31) / 32 : q->K, total = q->cols ? q->P : q->P * q->Q;
    int64_t S = (PKQ_BLOCKS + units - 1) / units;
    int64_t most = total / (q->cols ? PKQ_MIN_ROWS : PKQ_MIN_PART);
    if (S > most) S = most;
    if (S > PKQ_MAX_PARTS) S = PKQ_MAX_PARTS;
    if (S < 1) S = 1;
    q->chunk = (total + S - 1) / S;
    q->S = (total + q->chunk - 1) / q->chunk;
    q->warp = !q->cols && q->P == 1 && q->S == 1 && q->Q <= PKQ_WARP_MAX_Q;
    return true;
}

/* The block's sum of its threads' v, in a fixed order (warp shuffles, then the warps in turn);
 * thread 0 gets it. */
__device__ inline double block_sum(double v, double *sh)
{
    for (int o = 16; o > 0; o /= 2) v += __shfl_down_sync(0xffffffffu, v, o);
    int w = threadIdx.x / 32, nw = blockDim.x / 32;
    if (threadIdx.x % 32 == 0) sh[w] = v;
    __syncthreads();
    double r = 0;
    if (threadIdx.x == 0)
        for (int k = 0; k < nw; k++) r += sh[k];
    __syncthreads();
    return r;
}

template <class O>
__device__ inline void pkq_store(const PKQ &q, int64_t k, int64_t part, double v, double nred,
                                 bool mean, double *parts, O *out)
{
    if (q.S == 1)
        out[k] = Tr<O>::from_d(mean ? v / nred : v);
    else
        parts[k * q.S + part] = v;
}

template <class T, class O>
__global__ void pkq_rows_kernel(PKQ q, bool mean, const T *x, double *parts, O *out)
{
    __shared__ double sh[32];
    const int64_t nb = q.K * q.S, KQ = q.K * q.Q, total = q.P * q.Q;
    const int64_t step_p = blockDim.x / q.Q, step_q = blockDim.x % q.Q;
    for (int64_t b = blockIdx.x; b < nb; b += gridDim.x) {
        int64_t k = b / q.S, part = b % q.S;
        int64_t e0 = part * q.chunk, e1 = e0 + q.chunk < total ? e0 + q.chunk : total;
        const T *base = x + k * q.Q;
        int64_t e = e0 + threadIdx.x, p = e / q.Q, j = e % q.Q, B = blockDim.x;
        /* (p, j) = (e / Q, e % Q), kept by steps; four loads in flight per thread */
        auto next = [&]() {
            int64_t at = p * KQ + j;
            p += step_p;
            j += step_q;
            if (j >= q.Q) {
                j -= q.Q;
                p++;
            }
            return at;
        };
        double a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        for (; e + 3 * B < e1; e += 4 * B) {
            int64_t i0 = next(), i1 = next(), i2 = next(), i3 = next();
            T v0 = base[i0], v1 = base[i1], v2 = base[i2], v3 = base[i3];
            a0 += (double)Tr<T>::load(v0);
            a1 += (double)Tr<T>::load(v1);
            a2 += (double)Tr<T>::load(v2);
            a3 += (double)Tr<T>::load(v3);
        }
        for (; e < e1; e += B) a0 += (double)Tr<T>::load(base[next()]);
        double acc = (a0 + a1) + (a2 + a3);
        double v = block_sum(acc, sh);
        if (threadIdx.x == 0)
            pkq_store<O>(q, k, part, v, (double)(q.P * q.Q), mean, parts, out);
    }
}

/* P = 1 and one part: rows of Q contiguous elements, a warp each (8 per block), four loads in
 * flight per lane, then a fixed shuffle tree. */
template <class T, class O>
__global__ void pkq_warp_rows_kernel(PKQ q, bool mean, const T *x, O *out)
{
    const int lane = threadIdx.x % 32;
    const int64_t Q = q.Q;
    const int64_t first = (int64_t)blockIdx.x * 8 + threadIdx.x / 32, step = (int64_t)gridDim.x * 8;
    for (int64_t k = first; k < q.K; k += step) {
        const T *row = x + k * Q;
        double a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        int64_t j = lane;
        for (; j + 96 < Q; j += 128) {
            T v0 = row[j], v1 = row[j + 32], v2 = row[j + 64], v3 = row[j + 96];
            a0 += (double)Tr<T>::load(v0);
            a1 += (double)Tr<T>::load(v1);
            a2 += (double)Tr<T>::load(v2);
            a3 += (double)Tr<T>::load(v3);
        }
        for (; j < Q; j += 32) a0 += (double)Tr<T>::load(row[j]);
        double v = (a0 + a1) + (a2 + a3);
        for (int o = 16; o > 0; o /= 2) v += __shfl_down_sync(0xffffffffu, v, o);
        if (lane == 0) out[k] = Tr<O>::from_d(mean ? v / (double)Q : v);
    }
}

/* Q = 1; blockDim (32, 8) */
template <class T, class O>
__global__ void pkq_cols_kernel(PKQ q, bool mean, const T *x, double *parts, O *out)
{
    __shared__ double sh[8][33];
    const int64_t tiles = (q.K + 31) / 32, nb = tiles * q.S;
    for (int64_t b = blockIdx.x; b < nb; b += gridDim.x) {
        int64_t k = b / q.S * 32 + threadIdx.x, part = b % q.S;
        int64_t p0 = part * q.chunk, p1 = p0 + q.chunk < q.P ? p0 + q.chunk : q.P;
        double acc = 0;
        if (k < q.K)
            for (int64_t p = p0 + threadIdx.y; p < p1; p += 8)
                acc += (double)Tr<T>::load(x[p * q.K + k]);
        sh[threadIdx.y][threadIdx.x] = acc;
        __syncthreads();
        if (threadIdx.y == 0 && k < q.K) {
            double v = 0;
            for (int r = 0; r < 8; r++) v += sh[r][threadIdx.x];
            pkq_store<O>(q, k, part, v, (double)q.P, mean, parts, out);
        }
        __syncthreads();
    }
}

template <class O>
__global__ void pkq_combine_kernel(PKQ q, bool mean, const double *parts, O *out)
{
    GRID_LOOP(k, q.K)
    {
        double v = 0;
        for (int64_t j = 0; j < q.S; j++) v += parts[k * q.S + j];
        out[k] = Tr<O>::from_d(mean ? v / (double)(q.P * q.Q) : v);
    }
}

static size_t pkq_scratch(const PKQ &q)
{
    return q.S > 1 ? sizeof(double) * (size_t)(q.K * q.S) : 0;
}

template <class T, class O>
static int pkq_launch(bcu_stream s, const PKQ &q, int op, const T *x, O *out, double *parts)
{
    bool mean = op == R_MEAN;
    int64_t blocks = q.cols ? (q.K + 31) / 32 * q.S : q.K * q.S;
    unsigned grid = blocks > 65535 * 8 ? 65535 * 8 : (unsigned)blocks;
    if (q.warp) {
        int64_t wb = (q.K + 7) / 8;
        unsigned wgrid = wb > 65535 * 8 ? 65535 * 8 : (unsigned)wb;
        pkq_warp_rows_kernel<T, O><<<wgrid, BCU_THREADS, 0, s>>>(q, mean, x, out);
        return launch_status("reduce (sum, rows)");
    }
    if (q.cols)
        pkq_cols_kernel<T, O><<<grid, dim3(32, 8), 0, s>>>(q, mean, x, parts, out);
    else
        pkq_rows_kernel<T, O><<<grid, BCU_THREADS, 0, s>>>(q, mean, x, parts, out);
    int rc = launch_status("reduce (sum)");
    if (rc || q.S == 1) return rc;
    pkq_combine_kernel<O><<<grid_for(q.K), BCU_THREADS, 0, s>>>(q, mean, parts, out);
    return launch_status("reduce (sum, combine)");
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
    PKQ q;
    if (pkq_of(op, x, out, mask, &q)) return pkq_scratch(q);
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
    PKQ q;
    if (pkq_of(op, x, out, mask, &q) &&
        (q.S == 1 || (scratch && scratch_bytes >= pkq_scratch(q)))) {
        DISPATCH_FLOAT(x->dtype, T, {
            DISPATCH_FLOAT(out->dtype, O, {
                return pkq_launch<T, O>(s, q, op, (const T *)x->data, (O *)out->data,
                                        (double *)scratch);
            });
        });
    }
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
