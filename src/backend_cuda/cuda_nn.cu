/* backend_cuda/cuda_nn.cu — the nn kernel family on the GPU (backend_nn.h; the CPU reference is
 * backend/cpu/norm_impl.h and nn.c): layer / RMS / group norm forward and backward, batch norm
 * statistics / apply / backward, the running-statistics update, the dropout mask and embedding
 * (gather and deterministic scatter-add).
 *
 * Row norms: one warp per row (cols <= 1024) or one block per row, with float4 / double2 loads
 * when the rows allow it; each row is read three times (sum, squared deviations, output), the
 * second and third reads mostly from L1/L2. The backward of a layer / RMS norm whose rows have
 * 128 k <= 1024 f32 columns runs in one pass that also gives the affine gradients. Per-channel sums (batch norm, the affine gradients of
 * the row norms) see the data as (N, C, S) and add fixed chunks of N into partial sums that a
 * second kernel adds in chunk order. Every sum is in double and in an order fixed by the shapes,
 * so results are the same on every run and within rounding of the CPU's. Nothing here allocates:
 * scratch memory comes from the caller (cuda_nn_glue.c). */
#include "backend_cuda/cuda_common.cuh"
#include "backend_cuda/cuda_nn.h"

#include <cub/cub.cuh>

/* ---- helpers ----------------------------------------------------------------------------------- */
template <class T> struct Vec;
template <> struct Vec<float> {
    typedef float4 V;
    enum { N = 4 };
};
template <> struct Vec<double> {
    typedef double2 V;
    enum { N = 2 };
};
template <class T> union VecU {
    typename Vec<T>::V v;
    T a[Vec<T>::N];
};

static int internal_error(const char *what, cudaError_t e)
{
    unsupported("%s failed: %s", what, cudaGetErrorString(e)); /* sets the message */
    return BCU_ERR_INTERNAL;
}

/* Sums a and b over a team of TPR threads (a warp, or the whole block when TPR > 32) in a fixed
 * order; every thread of the team gets the totals. sh holds 64 doubles. */
template <int TPR> __device__ inline void team_sum2(double &a, double &b, double *sh)
{
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        a += __shfl_xor_sync(0xffffffffu, a, o);
        b += __shfl_xor_sync(0xffffffffu, b, o);
    }
    if (TPR > 32) {
        const int w = threadIdx.x >> 5, nw = TPR >> 5;
        if ((threadIdx.x & 31) == 0) {
            sh[w] = a;
            sh[32 + w] = b;
        }
        __syncthreads();
        a = 0;
        b = 0;
        for (int k = 0; k < nw; k++) {
            a += sh[k];
            b += sh[32 + k];
        }
        __syncthreads();
    }
}

/* ---- row norms (layer, RMS, group) ------------------------------------------------------------ */
/* x, y (rows, cols); w, b (channels) or NULL; mean, rstd (rows). VEC: groups 1, inner 1, cols a
 * multiple of the vector width and x, y 16-byte aligned. */
template <class T, int TPR, bool VEC>
__global__ void __launch_bounds__(TPR > 256 ? TPR : 256)
    row_norm_kernel(const T *__restrict__ x, const T *__restrict__ w, const T *__restrict__ b,
                    T *__restrict__ y, T *__restrict__ mean_out, T *__restrict__ rstd_out,
                    bcu_row_geom g, double eps)
{
    typedef typename Vec<T>::V VT;
    const int NV = Vec<T>::N;
    __shared__ double sh[64];
    const int teams = blockDim.x / TPR, lane = threadIdx.x % TPR;
    const int64_t K = g.cols, cg = g.cols / g.inner, nq = K / NV;
    for (int64_t r = (int64_t)blockIdx.x * teams + threadIdx.x / TPR; r < g.rows;
         r += (int64_t)gridDim.x * teams) {
        const T *xr = x + r * K;
        T *yr = y + r * K;
        double mean = 0.0, ss = 0.0, unused = 0.0;
        if (!g.rms) {
            double s = 0.0;
            if (VEC) {
                for (int64_t q = lane; q < nq; q += TPR) {
                    VecU<T> u;
                    u.v = reinterpret_cast<const VT *>(xr)[q];
#pragma unroll
                    for (int i = 0; i < NV; i++) s += (double)u.a[i];
                }
            } else {
                for (int64_t k = lane; k < K; k += TPR) s += (double)xr[k];
            }
            team_sum2<TPR>(s, unused, sh);
            mean = s / (double)K;
        }
        if (VEC) {
            for (int64_t q = lane; q < nq; q += TPR) {
                VecU<T> u;
                u.v = reinterpret_cast<const VT *>(xr)[q];
#pragma unroll
                for (int i = 0; i < NV; i++) {
                    double d = (double)u.a[i] - mean;
                    ss += d * d;
                }
            }
        } else {
            for (int64_t k = lane; k < K; k += TPR) {
                double d = (double)xr[k] - mean;
                ss += d * d;
            }
        }
        team_sum2<TPR>(ss, unused, sh);
        double rstd = 1.0 / sqrt(ss / (double)K + eps);
        if (lane == 0) {
            mean_out[r] = (T)mean;
            rstd_out[r] = (T)rstd;
        }
        const int64_t c0 = (r % g.groups) * cg;
        if (VEC) {
            for (int64_t q = lane; q < nq; q += TPR) {
                VecU<T> u, o;
                u.v = reinterpret_cast<const VT *>(xr)[q];
#pragma unroll
                for (int i = 0; i < NV; i++) {
                    int64_t k = q * NV + i;
                    double wc = w ? (double)w[k] : 1.0, bc = b ? (double)b[k] : 0.0;
                    o.a[i] = (T)(((double)u.a[i] - mean) * rstd * wc + bc);
                }
                reinterpret_cast<VT *>(yr)[q] = o.v;
            }
        } else {
            for (int64_t k = lane; k < K; k += TPR) {
                int64_t ch = c0 + (g.inner == 1 ? k : k / g.inner);
                double wc = w ? (double)w[ch] : 1.0, bc = b ? (double)b[ch] : 0.0;
                yr[k] = (T)(((double)xr[k] - mean) * rstd * wc + bc);
            }
        }
    }
}

/* gy, x, gx (rows, cols); mean, rstd (rows); w (channels) or NULL.
 * gx = rstd * (gh - mean(gh) - xhat * mean(gh * xhat)), gh = gy * w (RMS: no mean(gh)). */
template <class T, int TPR, bool VEC>
__global__ void __launch_bounds__(TPR > 256 ? TPR : 256)
    row_norm_grad_x_kernel(const T *__restrict__ gy, const T *__restrict__ x,
                           const T *__restrict__ mean_in, const T *__restrict__ rstd_in,
                           const T *__restrict__ w, T *__restrict__ gx, bcu_row_geom g)
{
    typedef typename Vec<T>::V VT;
    const int NV = Vec<T>::N;
    __shared__ double sh[64];
    const int teams = blockDim.x / TPR, lane = threadIdx.x % TPR;
    const int64_t K = g.cols, cg = g.cols / g.inner, nq = K / NV;
    for (int64_t r = (int64_t)blockIdx.x * teams + threadIdx.x / TPR; r < g.rows;
         r += (int64_t)gridDim.x * teams) {
        const T *xr = x + r * K, *gr = gy + r * K;
        T *gxr = gx + r * K;
        const double mean = (double)mean_in[r], rstd = (double)rstd_in[r];
        const int64_t c0 = (r % g.groups) * cg;
        double sum_gh = 0.0, sum_ghx = 0.0;
        if (VEC) {
            for (int64_t q = lane; q < nq; q += TPR) {
                VecU<T> ux, ug;
                ux.v = reinterpret_cast<const VT *>(xr)[q];
                ug.v = reinterpret_cast<const VT *>(gr)[q];
#pragma unroll
                for (int i = 0; i < NV; i++) {
                    double wc = w ? (double)w[q * NV + i] : 1.0;
                    double gh = (double)ug.a[i] * wc;
                    sum_gh += gh;
                    sum_ghx += gh * ((double)ux.a[i] - mean) * rstd;
                }
            }
        } else {
            for (int64_t k = lane; k < K; k += TPR) {
                int64_t ch = c0 + (g.inner == 1 ? k : k / g.inner);
                double wc = w ? (double)w[ch] : 1.0;
                double gh = (double)gr[k] * wc;
                sum_gh += gh;
                sum_ghx += gh * ((double)xr[k] - mean) * rstd;
            }
        }
        team_sum2<TPR>(sum_gh, sum_ghx, sh);
        const double a = g.rms ? 0.0 : sum_gh / (double)K, bcoef = sum_ghx / (double)K;
        if (VEC) {
            for (int64_t q = lane; q < nq; q += TPR) {
                VecU<T> ux, ug, o;
                ux.v = reinterpret_cast<const VT *>(xr)[q];
                ug.v = reinterpret_cast<const VT *>(gr)[q];
#pragma unroll
                for (int i = 0; i < NV; i++) {
                    double wc = w ? (double)w[q * NV + i] : 1.0;
                    double xhat = ((double)ux.a[i] - mean) * rstd;
                    o.a[i] = (T)(rstd * ((double)ug.a[i] * wc - a - xhat * bcoef));
                }
                reinterpret_cast<VT *>(gxr)[q] = o.v;
            }
        } else {
            for (int64_t k = lane; k < K; k += TPR) {
                int64_t ch = c0 + (g.inner == 1 ? k : k / g.inner);
                double wc = w ? (double)w[ch] : 1.0;
                double xhat = ((double)xr[k] - mean) * rstd;
                gxr[k] = (T)(rstd * ((double)gr[k] * wc - a - xhat * bcoef));
            }
        }
    }
}

static unsigned cap_grid(int64_t blocks)
{
    if (blocks < 1) return 1;
    return blocks > (1 << 20) ? (1u << 20) : (unsigned)blocks;
}

/* One launch of a row kernel: a warp per row up to 1024 columns, else a block of 256 or 1024. */
#define ROW_LAUNCH(KERNEL, T, VEC, ...)                                                            \
    do {                                                                                           \
        if (g->cols <= 1024)                                                                       \
            KERNEL<T, 32, VEC><<<cap_grid((g->rows + 7) / 8), 256, 0, s>>>(__VA_ARGS__);           \
        else if (g->cols <= 8192)                                                                  \
            KERNEL<T, 256, VEC><<<cap_grid(g->rows), 256, 0, s>>>(__VA_ARGS__);                    \
        else                                                                                       \
            KERNEL<T, 1024, VEC><<<cap_grid(g->rows), 1024, 0, s>>>(__VA_ARGS__);                  \
    } while (0)

static bool row_vec_ok(const bcu_row_geom *g, int dtype, const void *a, const void *b,
                       const void *c)
{
    int nv = dtype == BCU_F32 ? 4 : 2;
    return g->groups == 1 && g->inner == 1 && g->cols % nv == 0 && aligned_to(a, 16) &&
           aligned_to(b, 16) && aligned_to(c, 16);
}

static const void *opt_data(const bcu_view *v) { return v ? v->data : NULL; }

template <class T>
static void row_norm_run(bcu_stream s, const bcu_view *x, const bcu_view *w, const bcu_view *b,
                         const bcu_view *y, const bcu_view *mean, const bcu_view *rstd,
                         const bcu_row_geom *g, double eps, bool vec)
{
    const T *xp = (const T *)x->data, *wp = (const T *)opt_data(w), *bp = (const T *)opt_data(b);
    T *yp = (T *)y->data, *mp = (T *)mean->data, *rp = (T *)rstd->data;
    if (vec)
        ROW_LAUNCH(row_norm_kernel, T, true, xp, wp, bp, yp, mp, rp, *g, eps);
    else
        ROW_LAUNCH(row_norm_kernel, T, false, xp, wp, bp, yp, mp, rp, *g, eps);
}

extern "C" int bcu_nn_row_norm(bcu_stream s, const bcu_view *x, const bcu_view *w,
                               const bcu_view *b, const bcu_view *y, const bcu_view *mean,
                               const bcu_view *rstd, const bcu_row_geom *g, double eps)
{
    if (g->rows <= 0 || g->cols <= 0) return 0;
    bool vec = row_vec_ok(g, x->dtype, x->data, y->data, y->data);
    if (x->dtype == BCU_F32)
        row_norm_run<float>(s, x, w, b, y, mean, rstd, g, eps, vec);
    else if (x->dtype == BCU_F64)
        row_norm_run<double>(s, x, w, b, y, mean, rstd, g, eps, vec);
    else
        return unsupported("row_norm: the CUDA kernel supports f32 and f64, not %s",
                           bcu_dtype_name(x->dtype));
    return launch_status("row_norm");
}

template <class T>
static void row_grad_x_run(bcu_stream s, const bcu_view *gy, const bcu_view *x,
                           const bcu_view *mean, const bcu_view *rstd, const bcu_view *w,
                           const bcu_view *gx, const bcu_row_geom *g, bool vec)
{
    const T *gp = (const T *)gy->data, *xp = (const T *)x->data, *wp = (const T *)opt_data(w);
    const T *mp = (const T *)mean->data, *rp = (const T *)rstd->data;
    T *op = (T *)gx->data;
    if (vec)
        ROW_LAUNCH(row_norm_grad_x_kernel, T, true, gp, xp, mp, rp, wp, op, *g);
    else
        ROW_LAUNCH(row_norm_grad_x_kernel, T, false, gp, xp, mp, rp, wp, op, *g);
}

extern "C" int bcu_nn_row_norm_grad_x(bcu_stream s, const bcu_view *gy, const bcu_view *x,
                                      const bcu_view *mean, const bcu_view *rstd,
                                      const bcu_view *w, const bcu_view *gx, const bcu_row_geom *g)
{
    if (g->rows <= 0 || g->cols <= 0) return 0;
    bool vec = row_vec_ok(g, x->dtype, gy->data, x->data, gx->data);
    if (x->dtype == BCU_F32)
        row_grad_x_run<float>(s, gy, x, mean, rstd, w, gx, g, vec);
    else if (x->dtype == BCU_F64)
        row_grad_x_run<double>(s, gy, x, mean, rstd, w, gx, g, vec);
    else
        return unsupported("row_norm_backward: the CUDA kernel supports f32 and f64, not %s",
                           bcu_dtype_name(x->dtype));
    return launch_status("row_norm_backward");
}

/* ---- per-channel sums over (N, C, S) ------------------------------------------------------------
 * Element (n, c, s) sits at (n * C + c) * S + s. N is cut into P chunks of rpc rows; chunk p of
 * channel c gives partial sums (a, b), and chan_finish adds a channel's partials in chunk order.
 * S >= 32 ("planes"): a block per (channel, chunk), its threads along S. S < 32 ("columns"): the
 * data is a (N, J = C * S) matrix; a block per (32 columns, chunk), 8 threads per column, and
 * the finish also adds the S columns of a channel in order. */
struct ChanPlan {
    int64_t N, C, S, J, Sp, P, rpc;
    bool cols;
};

static ChanPlan chan_plan(int64_t N, int64_t C, int64_t S)
{
    ChanPlan p;
    p.N = N, p.C = C, p.S = S;
    p.cols = S < 32;
    const int64_t want = 1024; /* blocks: several per SM */
    int64_t maxP, P;
    if (p.cols) {
        p.J = C * S, p.Sp = S;
        int64_t tiles = (p.J + 31) / 32;
        if (tiles < 1) tiles = 1;
        maxP = (N + 63) / 64; /* chunks of at least 64 rows: 8 per thread */
        P = (want + tiles - 1) / tiles;
    } else {
        p.J = C, p.Sp = 1;
        maxP = N * S / 4096; /* chunks of at least 4096 elements */
        P = (want + (C > 0 ? C : 1) - 1) / (C > 0 ? C : 1);
    }
    if (maxP > 65535) maxP = 65535;
    if (maxP < 1) maxP = 1;
    if (P > maxP) P = maxP;
    if (P < 1) P = 1;
    if (N > 0) {
        p.rpc = (N + P - 1) / P;
        p.P = (N + p.rpc - 1) / p.rpc;
    } else {
        p.rpc = 1;
        p.P = 1;
    }
    return p;
}

static size_t align256(size_t n) { return (n + 255) / 256 * 256; }

static size_t chan_partial_bytes(const ChanPlan &p)
{
    return align256((size_t)(p.P * p.J * 2) * sizeof(double));
}

template <class Op>
__global__ void __launch_bounds__(256) chan_partial_planes(Op op, ChanPlan pl, double *part)
{
    __shared__ double sh[64];
    const int64_t p = blockIdx.y, n0 = p * pl.rpc;
    const int64_t n1 = n0 + pl.rpc < pl.N ? n0 + pl.rpc : pl.N;
    for (int64_t c = blockIdx.x; c < pl.C; c += gridDim.x) {
        typename Op::Ctx ctx = op.chan(c);
        double a = 0.0, b = 0.0;
        for (int64_t n = n0; n < n1; n++) {
            const int64_t base = (n * pl.C + c) * pl.S;
            for (int64_t s = threadIdx.x; s < pl.S; s += blockDim.x)
                op.elem(ctx, n, base + s, a, b);
        }
        team_sum2<256>(a, b, sh);
        if (threadIdx.x == 0) {
            part[(p * pl.C + c) * 2] = a;
            part[(p * pl.C + c) * 2 + 1] = b;
        }
    }
}

template <class Op>
__global__ void __launch_bounds__(256) chan_partial_columns(Op op, ChanPlan pl, double *part)
{
    __shared__ double sa[8][33], sb[8][33];
    const int tx = threadIdx.x & 31, ty = threadIdx.x >> 5;
    const int64_t p = blockIdx.y, n0 = p * pl.rpc;
    const int64_t n1 = n0 + pl.rpc < pl.N ? n0 + pl.rpc : pl.N;
    for (int64_t tile = blockIdx.x; tile * 32 < pl.J; tile += gridDim.x) {
        const int64_t j = tile * 32 + tx;
        double a = 0.0, b = 0.0;
        if (j < pl.J) {
            const int64_t c = j / pl.S;
            typename Op::Ctx ctx = op.chan(c);
            for (int64_t n = n0 + ty; n < n1; n += 8) op.elem(ctx, n, n * pl.J + j, a, b);
        }
        sa[ty][tx] = a;
        sb[ty][tx] = b;
        __syncthreads();
        if (ty == 0 && j < pl.J) {
            double A = 0.0, B = 0.0;
            for (int k = 0; k < 8; k++) {
                A += sa[k][tx];
                B += sb[k][tx];
            }
            part[(p * pl.J + j) * 2] = A;
            part[(p * pl.J + j) * 2 + 1] = B;
        }
        __syncthreads();
    }
}

template <class Fin> __global__ void chan_finish(Fin fin, ChanPlan pl, const double *part)
{
    GRID_LOOP(c, pl.C)
    {
        double a = 0.0, b = 0.0;
        for (int64_t p = 0; p < pl.P; p++)
            for (int64_t s = 0; s < pl.Sp; s++) {
                const int64_t i = (p * pl.J + c * pl.Sp + s) * 2;
                a += part[i];
                b += part[i + 1];
            }
        fin(c, a, b);
    }
}

/* Queues the partial sums of op and the finish; returns launch_status. */
template <class Op, class Fin>
static int chan_reduce(bcu_stream s, const ChanPlan &pl, const Op &op, const Fin &fin,
                       double *part, const char *what)
{
    if (pl.C <= 0) return 0;
    if (pl.cols) {
        dim3 grid(cap_grid((pl.J + 31) / 32), (unsigned)pl.P);
        chan_partial_columns<Op><<<grid, 256, 0, s>>>(op, pl, part);
    } else {
        dim3 grid(cap_grid(pl.C), (unsigned)pl.P);
        chan_partial_planes<Op><<<grid, 256, 0, s>>>(op, pl, part);
    }
    chan_finish<Fin><<<grid_for(pl.C), BCU_THREADS, 0, s>>>(fin, pl, part);
    return launch_status(what);
}

/* ---- the row norms' affine gradients: per channel, sums of gy * xhat and gy ---------------------
 * As (N, C, S): N = rows / groups, C = groups * (cols / inner), S = inner; the row of (n, c) is
 * n * groups + c / (cols / inner). */
template <class T> struct RowAffineOp {
    const T *gy, *x, *mean, *rstd;
    int64_t G, cg;
    typedef int64_t Ctx; /* the channel's group */
    __device__ Ctx chan(int64_t c) const { return c / cg; }
    __device__ void elem(Ctx grp, int64_t n, int64_t off, double &a, double &b) const
    {
        const int64_t r = n * G + grp;
        const double g = (double)gy[off];
        a += g * ((double)x[off] - (double)mean[r]) * (double)rstd[r];
        b += g;
    }
};

template <class T> struct AffineFin {
    T *gw, *gb;
    __device__ void operator()(int64_t c, double a, double b) const
    {
        if (gw) gw[c] = (T)a;
        if (gb) gb[c] = (T)b;
    }
};

static ChanPlan row_affine_plan(const bcu_row_geom *g)
{
    int64_t cg = g->inner > 0 ? g->cols / g->inner : 0;
    return chan_plan(g->groups > 0 ? g->rows / g->groups : 0, g->groups * cg, g->inner);
}

extern "C" size_t bcu_nn_row_norm_affine_scratch(const bcu_row_geom *g)
{
    return chan_partial_bytes(row_affine_plan(g));
}

template <class T>
static int row_affine_run(bcu_stream s, const bcu_view *gy, const bcu_view *x,
                          const bcu_view *mean, const bcu_view *rstd, const bcu_view *gw,
                          const bcu_view *gb, const bcu_row_geom *g, void *scratch)
{
    ChanPlan pl = row_affine_plan(g);
    RowAffineOp<T> op = {(const T *)gy->data, (const T *)x->data, (const T *)mean->data,
                         (const T *)rstd->data, g->groups, g->cols / g->inner};
    AffineFin<T> fin = {gw ? (T *)gw->data : NULL, gb ? (T *)gb->data : NULL};
    return chan_reduce(s, pl, op, fin, (double *)scratch, "row_norm_backward (affine)");
}

extern "C" int bcu_nn_row_norm_grad_affine(bcu_stream s, const bcu_view *gy, const bcu_view *x,
                                           const bcu_view *mean, const bcu_view *rstd,
                                           const bcu_view *gw, const bcu_view *gb,
                                           const bcu_row_geom *g, void *scratch)
{
    if (g->inner <= 0 || g->groups <= 0) return 0;
    if (x->dtype == BCU_F32) return row_affine_run<float>(s, gy, x, mean, rstd, gw, gb, g, scratch);
    if (x->dtype == BCU_F64)
        return row_affine_run<double>(s, gy, x, mean, rstd, gw, gb, g, scratch);
    return unsupported("row_norm_backward: the CUDA kernel supports f32 and f64, not %s",
                       bcu_dtype_name(x->dtype));
}

/* ---- layer / RMS norm backward in one pass (f32, cols = 128 NQ <= 1024) -------------------------
 * A warp per row, FUSED_ROWS rows per warp, 8 warps per block, each lane taking 4 NQ columns
 * (the second read of a row, for gx, comes from L1): gx exactly as row_norm_grad_x_kernel
 * computes it, and per column the
 * sums of gy * xhat and gy over the warp's rows (double, rows in order). The block's 8 warps add
 * theirs in a fixed tree through shared memory into part[block][2][cols]; fused_affine_finish
 * adds the blocks' partials in a fixed order. x and gy come from memory once instead of twice and the
 * affine sums need no kernel of their own; results are repeatable (the split depends on the
 * shape only). */
#define FUSED_ROWS 4

template <int NQ>
__global__ void __launch_bounds__(256)
    row_norm_bwd_fused_kernel(const float *__restrict__ gy, const float *__restrict__ x,
                              const float *__restrict__ mean_in, const float *__restrict__ rstd_in,
                              const float *__restrict__ w, float *__restrict__ gx,
                              double *__restrict__ part, int64_t rows, bool rms)
{
    constexpr int K = NQ * 128, NV = 4 * NQ;
    __shared__ double buf[4][K];
    const int lane = threadIdx.x & 31, wp = threadIdx.x >> 5;
    double A[NV], B[NV];
#pragma unroll
    for (int i = 0; i < NV; i++) A[i] = B[i] = 0.0;
    const float4 *w4 = reinterpret_cast<const float4 *>(w);
    const int64_t r0 = ((int64_t)blockIdx.x * 8 + wp) * FUSED_ROWS;
    for (int rr = 0; rr < FUSED_ROWS; rr++) {
        const int64_t r = r0 + rr;
        if (r >= rows) break;
        const float4 *x4 = reinterpret_cast<const float4 *>(x + r * K);
        const float4 *g4 = reinterpret_cast<const float4 *>(gy + r * K);
        const double mean = (double)mean_in[r], rstd = (double)rstd_in[r];
        double sum_gh = 0.0, sum_ghx = 0.0;
#pragma unroll
        for (int q = 0; q < NQ; q++) {
            const float4 a = x4[lane + 32 * q], b = g4[lane + 32 * q];
            const float4 c = w ? __ldg(w4 + lane + 32 * q) : make_float4(1.f, 1.f, 1.f, 1.f);
            const float xa[4] = {a.x, a.y, a.z, a.w}, ga[4] = {b.x, b.y, b.z, b.w};
            const float wa[4] = {c.x, c.y, c.z, c.w};
#pragma unroll
            for (int u = 0; u < 4; u++) {
                const double xhat = ((double)xa[u] - mean) * rstd, g = (double)ga[u];
                const double gh = g * (double)wa[u];
                sum_gh += gh;
                sum_ghx += gh * xhat;
                A[4 * q + u] += g * xhat;
                B[4 * q + u] += g;
            }
        }
        team_sum2<32>(sum_gh, sum_ghx, NULL);
        const double am = rms ? 0.0 : sum_gh / (double)K, bc = sum_ghx / (double)K;
        if (!gx) continue;
        /* the row again, now from L1: the output */
#pragma unroll
        for (int q = 0; q < NQ; q++) {
            const float4 a = x4[lane + 32 * q], b = g4[lane + 32 * q];
            const float4 c = w ? __ldg(w4 + lane + 32 * q) : make_float4(1.f, 1.f, 1.f, 1.f);
            const float xa[4] = {a.x, a.y, a.z, a.w}, ga[4] = {b.x, b.y, b.z, b.w};
            const float wa[4] = {c.x, c.y, c.z, c.w};
            float o[4];
#pragma unroll
            for (int u = 0; u < 4; u++) {
                const double xhat = ((double)xa[u] - mean) * rstd;
                o[u] = (float)(rstd * ((double)ga[u] * (double)wa[u] - am - xhat * bc));
            }
            reinterpret_cast<float4 *>(gx + r * K)[lane + 32 * q] = make_float4(o[0], o[1], o[2], o[3]);
        }
    }
    /* the 8 warps' sums: warps 4-7 into 0-3, 2-3 into 0-1, 1 into 0, for A then B */
#pragma unroll
    for (int which = 0; which < 2; which++) {
        double *acc = which == 0 ? A : B;
#pragma unroll
        for (int half = 4; half >= 1; half >>= 1) {
            if (wp >= half && wp < 2 * half)
#pragma unroll
                for (int q = 0; q < NQ; q++)
#pragma unroll
                    for (int u = 0; u < 4; u++)
                        buf[wp - half][(lane + 32 * q) * 4 + u] = acc[4 * q + u];
            __syncthreads();
            if (wp < half)
#pragma unroll
                for (int q = 0; q < NQ; q++)
#pragma unroll
                    for (int u = 0; u < 4; u++) acc[4 * q + u] += buf[wp][(lane + 32 * q) * 4 + u];
            __syncthreads();
        }
        if (wp == 0) {
            double *dst = part + ((int64_t)blockIdx.x * 2 + which) * K;
#pragma unroll
            for (int q = 0; q < NQ; q++)
#pragma unroll
                for (int u = 0; u < 4; u++) dst[(lane + 32 * q) * 4 + u] = acc[4 * q + u];
        }
    }
}

/* gw[c], gb[c] = the blocks' partials added in block order: a block per 32 columns, its 8 rows
 * of threads each adding every 8th block's partial (loads in flight together), then the 8 sums
 * in order. */
__global__ void __launch_bounds__(256)
    fused_affine_finish(const double *__restrict__ part, int64_t blocks, int64_t K,
                        float *__restrict__ gw, float *__restrict__ gb)
{
    __shared__ double sa[8][33], sb[8][33];
    const int tx = threadIdx.x & 31, ty = threadIdx.x >> 5;
    const int64_t c = (int64_t)blockIdx.x * 32 + tx;
    double a = 0.0, b = 0.0;
    if (c < K) {
#pragma unroll 8
        for (int64_t p = ty; p < blocks; p += 8) {
            a += part[(p * 2) * K + c];
            b += part[(p * 2 + 1) * K + c];
        }
    }
    sa[ty][tx] = a;
    sb[ty][tx] = b;
    __syncthreads();
    if (ty == 0 && c < K) {
        double A = 0.0, B = 0.0;
        for (int k = 0; k < 8; k++) {
            A += sa[k][tx];
            B += sb[k][tx];
        }
        if (gw) gw[c] = (float)A;
        if (gb) gb[c] = (float)B;
    }
}

static int64_t fused_blocks(const bcu_row_geom *g)
{
    return (g->rows + 8 * FUSED_ROWS - 1) / (8 * FUSED_ROWS);
}

extern "C" int bcu_nn_row_norm_backward_fused_ok(const bcu_view *gy, const bcu_view *x,
                                                 const bcu_view *w, const bcu_view *gx,
                                                 const bcu_row_geom *g)
{
    return x->dtype == BCU_F32 && gy->dtype == BCU_F32 && g->groups == 1 && g->inner == 1 &&
           g->cols % 128 == 0 && g->cols >= 128 && g->cols <= 1024 && g->rows > 0 &&
           fused_blocks(g) <= (1 << 20) && aligned_to(x->data, 16) && aligned_to(gy->data, 16) &&
           (!gx || aligned_to(gx->data, 16)) && (!w || aligned_to(w->data, 16));
}

extern "C" size_t bcu_nn_row_norm_backward_fused_scratch(const bcu_row_geom *g)
{
    return align256((size_t)(fused_blocks(g) * 2 * g->cols) * sizeof(double));
}

extern "C" int bcu_nn_row_norm_backward_fused(bcu_stream s, const bcu_view *gy, const bcu_view *x,
                                              const bcu_view *mean, const bcu_view *rstd,
                                              const bcu_view *w, const bcu_view *gx,
                                              const bcu_view *gw, const bcu_view *gb,
                                              const bcu_row_geom *g, void *scratch)
{
    const int64_t blocks = fused_blocks(g);
    const float *gp = (const float *)gy->data, *xp = (const float *)x->data;
    const float *mp = (const float *)mean->data, *rp = (const float *)rstd->data;
    const float *wp = (const float *)opt_data(w);
    float *op = gx ? (float *)gx->data : NULL;
    double *part = (double *)scratch;
    switch (g->cols / 128) {
#define FUSED_CASE(NQ)                                                                             \
    case NQ:                                                                                       \
        row_norm_bwd_fused_kernel<NQ>                                                              \
            <<<(unsigned)blocks, 256, 0, s>>>(gp, xp, mp, rp, wp, op, part, g->rows, g->rms);      \
        break;
        FUSED_CASE(1)
        FUSED_CASE(2)
        FUSED_CASE(3)
        FUSED_CASE(4)
        FUSED_CASE(5)
        FUSED_CASE(6)
        FUSED_CASE(7)
        FUSED_CASE(8)
#undef FUSED_CASE
    default:
        return unsupported("row_norm_backward: no fused kernel for %lld columns",
                           (long long)g->cols);
    }
    fused_affine_finish<<<(unsigned)((g->cols + 31) / 32), 256, 0, s>>>(
        part, blocks, g->cols, gw ? (float *)gw->data : NULL, gb ? (float *)gb->data : NULL);
    return launch_status("row_norm_backward");
}

/* ---- batch norm ----------------------------------------------------------------------------------
 * scratch: 5 doubles per channel (per-channel constants), then the partial sums. */
extern "C" size_t bcu_nn_batch_norm_scratch(int64_t N, int64_t C, int64_t S)
{
    return align256((size_t)(C > 0 ? C : 1) * 5 * sizeof(double)) +
           chan_partial_bytes(chan_plan(N, C, S));
}

static double *bn_partials(void *scratch, int64_t C)
{
    return (double *)((char *)scratch + align256((size_t)(C > 0 ? C : 1) * 5 * sizeof(double)));
}

template <class T> struct SumOp {
    const T *x;
    typedef int Ctx;
    __device__ Ctx chan(int64_t) const { return 0; }
    __device__ void elem(Ctx, int64_t, int64_t off, double &a, double &) const
    {
        a += (double)x[off];
    }
};

struct MeanFin {
    double *mean_d, M;
    __device__ void operator()(int64_t c, double a, double) const { mean_d[c] = a / M; }
};

template <class T> struct SqDevOp {
    const T *x;
    const double *mean_d;
    typedef double Ctx;
    __device__ Ctx chan(int64_t c) const { return mean_d[c]; }
    __device__ void elem(Ctx m, int64_t, int64_t off, double &a, double &) const
    {
        const double d = (double)x[off] - m;
        a += d * d;
    }
};

template <class T> struct VarFin {
    const double *mean_d;
    T *mean, *var;
    double M;
    __device__ void operator()(int64_t c, double a, double) const
    {
        mean[c] = (T)mean_d[c];
        var[c] = (T)(a / M);
    }
};

template <class T>
static int bn_stats_run(bcu_stream s, const bcu_view *x, const bcu_view *mean,
                        const bcu_view *var, void *scratch)
{
    int64_t N = x->shape[0], C = x->shape[1], S = x->shape[2];
    ChanPlan pl = chan_plan(N, C, S);
    double *mean_d = (double *)scratch, *part = bn_partials(scratch, C);
    double M = (double)(N * S);
    SumOp<T> sum = {(const T *)x->data};
    MeanFin mf = {mean_d, M};
    int rc = chan_reduce(s, pl, sum, mf, part, "batch_norm_stats");
    if (rc) return rc;
    SqDevOp<T> sq = {(const T *)x->data, mean_d};
    VarFin<T> vf = {mean_d, (T *)mean->data, (T *)var->data, M};
    return chan_reduce(s, pl, sq, vf, part, "batch_norm_stats");
}

extern "C" int bcu_nn_batch_norm_stats(bcu_stream s, const bcu_view *x, const bcu_view *mean,
                                       const bcu_view *var, void *scratch)
{
    if (x->dtype == BCU_F32) return bn_stats_run<float>(s, x, mean, var, scratch);
    if (x->dtype == BCU_F64) return bn_stats_run<double>(s, x, mean, var, scratch);
    return unsupported("batch_norm_stats: the CUDA kernel supports f32 and f64, not %s",
                       bcu_dtype_name(x->dtype));
}

/* k: (mean, rstd * w, b) per channel */
template <class T>
__global__ void bn_apply_prep(const T *mean, const T *var, const T *w, const T *b, double eps,
                              int64_t C, double *k)
{
    GRID_LOOP(c, C)
    {
        double rstd = 1.0 / sqrt((double)var[c] + eps);
        k[c * 3] = (double)mean[c];
        k[c * 3 + 1] = rstd * (w ? (double)w[c] : 1.0);
        k[c * 3 + 2] = b ? (double)b[c] : 0.0;
    }
}

/* x, y (N, C, S) as n elements; I is uint32_t when n < 2^31 (cheaper division) */
template <class T, class I>
__global__ void bn_apply_kernel(const T *__restrict__ x, T *__restrict__ y,
                                const double *__restrict__ k, I n, I S, I C)
{
    for (I i = (I)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (I)blockDim.x * gridDim.x) {
        const double *kc = k + 3 * ((i / S) % C);
        y[i] = (T)(((double)x[i] - kc[0]) * kc[1] + kc[2]);
    }
}

template <class T>
static int bn_apply_run(bcu_stream s, const bcu_view *x, const bcu_view *mean, const bcu_view *var,
                        const bcu_view *w, const bcu_view *b, const bcu_view *y, double eps,
                        void *scratch)
{
    int64_t N = x->shape[0], C = x->shape[1], S = x->shape[2], n = N * C * S;
    if (C <= 0) return 0;
    double *k = (double *)scratch;
    bn_apply_prep<T><<<grid_for(C), BCU_THREADS, 0, s>>>(
        (const T *)mean->data, (const T *)var->data, (const T *)opt_data(w),
        (const T *)opt_data(b), eps, C, k);
    if (n > 0) {
        if (n < ((int64_t)1 << 31))
            bn_apply_kernel<T, uint32_t><<<grid_for(n), BCU_THREADS, 0, s>>>(
                (const T *)x->data, (T *)y->data, k, (uint32_t)n, (uint32_t)S, (uint32_t)C);
        else
            bn_apply_kernel<T, int64_t><<<grid_for(n), BCU_THREADS, 0, s>>>(
                (const T *)x->data, (T *)y->data, k, n, S, C);
    }
    return launch_status("batch_norm_apply");
}

extern "C" int bcu_nn_batch_norm_apply(bcu_stream s, const bcu_view *x, const bcu_view *mean,
                                       const bcu_view *var, const bcu_view *w, const bcu_view *b,
                                       const bcu_view *y, double eps, void *scratch)
{
    if (x->dtype == BCU_F32) return bn_apply_run<float>(s, x, mean, var, w, b, y, eps, scratch);
    if (x->dtype == BCU_F64) return bn_apply_run<double>(s, x, mean, var, w, b, y, eps, scratch);
    return unsupported("batch_norm_apply: the CUDA kernel supports f32 and f64, not %s",
                       bcu_dtype_name(x->dtype));
}

/* sums of gy (a) and gy * xhat (b) per channel */
template <class T> struct BnBackOp {
    const T *gy, *x, *mean, *var;
    double eps;
    struct Ctx {
        double m, rs;
    };
    __device__ Ctx chan(int64_t c) const
    {
        Ctx k;
        k.m = (double)mean[c];
        k.rs = 1.0 / sqrt((double)var[c] + eps);
        return k;
    }
    __device__ void elem(const Ctx &k, int64_t, int64_t off, double &a, double &b) const
    {
        const double g = (double)gy[off];
        a += g;
        b += g * ((double)x[off] - k.m) * k.rs;
    }
};

/* writes grad_weight / grad_bias and k: (mean, rstd, rstd * w, a, bcoef) per channel */
template <class T> struct BnBackFin {
    T *gw, *gb;
    const T *mean, *var, *w;
    double eps, M;
    bool training;
    double *k;
    __device__ void operator()(int64_t c, double sum_g, double sum_gx) const
    {
        if (gw) gw[c] = (T)sum_gx;
        if (gb) gb[c] = (T)sum_g;
        double rstd = 1.0 / sqrt((double)var[c] + eps);
        k[c * 5] = (double)mean[c];
        k[c * 5 + 1] = rstd;
        k[c * 5 + 2] = rstd * (w ? (double)w[c] : 1.0);
        k[c * 5 + 3] = training ? sum_g / M : 0.0;
        k[c * 5 + 4] = training ? sum_gx / M : 0.0;
    }
};

template <class T, class I>
__global__ void bn_grad_x_kernel(const T *__restrict__ gy, const T *__restrict__ x,
                                 T *__restrict__ gx, const double *__restrict__ k, I n, I S, I C)
{
    for (I i = (I)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (I)blockDim.x * gridDim.x) {
        const double *kc = k + 5 * ((i / S) % C);
        const double xhat = ((double)x[i] - kc[0]) * kc[1];
        gx[i] = (T)(kc[2] * ((double)gy[i] - kc[3] - xhat * kc[4]));
    }
}

template <class T>
static int bn_backward_run(bcu_stream s, const bcu_view *gy, const bcu_view *x,
                           const bcu_view *mean, const bcu_view *var, const bcu_view *w,
                           const bcu_view *gx, const bcu_view *gw, const bcu_view *gb, double eps,
                           bool training, void *scratch)
{
    int64_t N = x->shape[0], C = x->shape[1], S = x->shape[2], n = N * C * S;
    if (C <= 0) return 0;
    ChanPlan pl = chan_plan(N, C, S);
    double *k = (double *)scratch, *part = bn_partials(scratch, C);
    BnBackOp<T> op = {(const T *)gy->data, (const T *)x->data, (const T *)mean->data,
                      (const T *)var->data, eps};
    BnBackFin<T> fin = {gw ? (T *)gw->data : NULL,
                        gb ? (T *)gb->data : NULL,
                        (const T *)mean->data,
                        (const T *)var->data,
                        (const T *)opt_data(w),
                        eps,
                        (double)(N * S),
                        training,
                        k};
    int rc = chan_reduce(s, pl, op, fin, part, "batch_norm_backward");
    if (rc || !gx || n == 0) return rc;
    if (n < ((int64_t)1 << 31))
        bn_grad_x_kernel<T, uint32_t><<<grid_for(n), BCU_THREADS, 0, s>>>(
            (const T *)gy->data, (const T *)x->data, (T *)gx->data, k, (uint32_t)n, (uint32_t)S,
            (uint32_t)C);
    else
        bn_grad_x_kernel<T, int64_t><<<grid_for(n), BCU_THREADS, 0, s>>>(
            (const T *)gy->data, (const T *)x->data, (T *)gx->data, k, n, S, C);
    return launch_status("batch_norm_backward");
}

extern "C" int bcu_nn_batch_norm_backward(bcu_stream s, const bcu_view *gy, const bcu_view *x,
                                          const bcu_view *mean, const bcu_view *var,
                                          const bcu_view *w, const bcu_view *gx,
                                          const bcu_view *gw, const bcu_view *gb, double eps,
                                          bool training, void *scratch)
{
    if (x->dtype == BCU_F32)
        return bn_backward_run<float>(s, gy, x, mean, var, w, gx, gw, gb, eps, training, scratch);
    if (x->dtype == BCU_F64)
        return bn_backward_run<double>(s, gy, x, mean, var, w, gx, gw, gb, eps, training,
                                       scratch);
    return unsupported("batch_norm_backward: the CUDA kernel supports f32 and f64, not %s",
                       bcu_dtype_name(x->dtype));
}

/* ---- running statistics ------------------------------------------------------------------------ */
__device__ inline double load_float(const void *p, int dt, int64_t i)
{
    switch (dt) {
    case BCU_F32: return (double)((const float *)p)[i];
    case BCU_F64: return ((const double *)p)[i];
    case BCU_F16: return Tr<__half>::to_d(((const __half *)p)[i]);
    default: return Tr<__nv_bfloat16>::to_d(((const __nv_bfloat16 *)p)[i]);
    }
}

__device__ inline void store_float(void *p, int dt, int64_t i, double v)
{
    switch (dt) {
    case BCU_F32: ((float *)p)[i] = (float)v; break;
    case BCU_F64: ((double *)p)[i] = v; break;
    case BCU_F16: ((__half *)p)[i] = Tr<__half>::from_d(v); break;
    default: ((__nv_bfloat16 *)p)[i] = Tr<__nv_bfloat16>::from_d(v); break;
    }
}

struct RunningArgs {
    void *rm, *rv;
    const void *m, *v;
    int rm_dt, rv_dt, m_dt, v_dt;
    int64_t rm_st, rv_st, m_st, v_st, C;
    double momentum, unbias;
};

__global__ void running_stats_kernel(RunningArgs a)
{
    GRID_LOOP(c, a.C)
    {
        double m = load_float(a.m, a.m_dt, c * a.m_st), v = load_float(a.v, a.v_dt, c * a.v_st);
        int64_t im = c * a.rm_st, iv = c * a.rv_st;
        store_float(a.rm, a.rm_dt, im,
                    (1.0 - a.momentum) * load_float(a.rm, a.rm_dt, im) + a.momentum * m);
        store_float(a.rv, a.rv_dt, iv,
                    (1.0 - a.momentum) * load_float(a.rv, a.rv_dt, iv) + a.momentum * v * a.unbias);
    }
}

static bool is_float_dtype(int dt) { return dt == BCU_F32 || dt == BCU_F64 || dt == BCU_F16 || dt == BCU_BF16; }

extern "C" int bcu_nn_running_stats_update(bcu_stream s, const bcu_view *running_mean,
                                           const bcu_view *running_var, const bcu_view *mean,
                                           const bcu_view *var, double momentum, double unbias)
{
    const bcu_view *all[4] = {running_mean, running_var, mean, var};
    for (int i = 0; i < 4; i++)
        if (!is_float_dtype(all[i]->dtype) || (i >= 2 && all[i]->dtype != BCU_F32 &&
                                               all[i]->dtype != BCU_F64))
            return unsupported("running_stats_update: dtype %s", bcu_dtype_name(all[i]->dtype));
    RunningArgs a;
    a.rm = running_mean->data, a.rv = running_var->data;
    a.m = mean->data, a.v = var->data;
    a.rm_dt = running_mean->dtype, a.rv_dt = running_var->dtype;
    a.m_dt = mean->dtype, a.v_dt = var->dtype;
    a.rm_st = running_mean->ndim ? running_mean->strides[0] : 0;
    a.rv_st = running_var->ndim ? running_var->strides[0] : 0;
    a.m_st = mean->ndim ? mean->strides[0] : 0;
    a.v_st = var->ndim ? var->strides[0] : 0;
    a.C = mean->ndim ? mean->shape[0] : 1;
    a.momentum = momentum, a.unbias = unbias;
    if (a.C <= 0) return 0;
    running_stats_kernel<<<grid_for(a.C), BCU_THREADS, 0, s>>>(a);
    return launch_status("running_stats_update");
}

/* ---- dropout -------------------------------------------------------------------------------------
 * Philox 4x32-10 (bcu_philox4x32_10, cuda_common.cuh): element i uses word i % 4 of
 * block counter + i / 4, u = (word >> 8) * 2^-24. */
template <class T>
__global__ void dropout_kernel(T *mask, int64_t n, double p, double keep, uint64_t seed,
                               uint64_t counter)
{
    const int64_t nblocks = (n + 3) / 4;
    const T on = Tr<T>::from_d(keep), off = Tr<T>::from_d(0.0);
    GRID_LOOP(blk, nblocks)
    {
        BcuPhilox r = bcu_philox4x32_10(seed, counter + (uint64_t)blk);
#pragma unroll
        for (int k = 0; k < 4; k++) {
            const int64_t i = blk * 4 + k;
            if (i >= n) break;
            const double u = (double)((float)(r.v[k] >> 8) * 0x1p-24f);
            mask[i] = u >= p ? on : off;
        }
    }
}

extern "C" int bcu_nn_dropout_mask(bcu_stream s, const bcu_view *mask, double p, double keep,
                                   uint64_t seed, uint64_t counter)
{
    int64_t n = 1;
    for (int d = 0; d < mask->ndim; d++) n *= mask->shape[d];
    if (!is_float_dtype(mask->dtype))
        return unsupported("dropout_mask: mask must have a float dtype, not %s",
                           bcu_dtype_name(mask->dtype));
    if (n == 0) return 0;
    DISPATCH_FLOAT(mask->dtype, T, {
        dropout_kernel<T><<<grid_for((n + 3) / 4), BCU_THREADS, 0, s>>>((T *)mask->data, n, p, keep,
                                                                         seed, counter);
    });
    return launch_status("dropout_mask");
}

/* ---- embedding ------------------------------------------------------------------------------------
 * Gather in units U (16, 8 or 4 bytes when a row allows, else one element): out unit (m, u) =
 * weight unit (idx[m] * rs + u * cs). An index outside [0, num) fills its row with all bits set
 * (NaN in every float dtype) and lowers *bad to its position. */
__device__ inline int64_t index_at(const void *idx, bool i64, int64_t i)
{
    return i64 ? ((const int64_t *)idx)[i] : (int64_t)((const int32_t *)idx)[i];
}

template <class U> __device__ inline U all_ones() { return (U)~(U)0; }
template <> __device__ inline uint4 all_ones<uint4>() { return make_uint4(~0u, ~0u, ~0u, ~0u); }

template <class U, class I>
__global__ void embedding_kernel(const U *__restrict__ w, int64_t rs, int64_t cs,
                                 const void *__restrict__ idx, bool i64, int64_t ist,
                                 U *__restrict__ out, I total, I units, bool write, int64_t num,
                                 unsigned long long *bad)
{
    for (I i = (I)blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += (I)blockDim.x * gridDim.x) {
        const I m = i / units, u = i - m * units;
        const int64_t r = index_at(idx, i64, (int64_t)m * ist);
        if (r < 0 || r >= num) {
            if (u == 0) atomicMin(bad, (unsigned long long)m);
            /* all bits set: NaN in every float dtype, so a row no check reads back (inside a
             * CUDA graph capture) cannot pass for data */
            if (write) out[i] = all_ones<U>();
            continue;
        }
        if (write) out[i] = w[r * rs + (int64_t)u * cs];
    }
}

template <class U>
static void embedding_launch(bcu_stream s, const void *w, int64_t rs, int64_t cs,
                             const bcu_view *indices, void *out, int64_t M, int64_t units,
                             int64_t num, unsigned long long *bad)
{
    bool write = units > 0;
    if (!write) units = 1;
    int64_t total = M * units;
    bool i64 = indices->dtype == BCU_I64;
    int64_t ist = indices->ndim ? indices->strides[0] : 0;
    if (total < ((int64_t)1 << 31))
        embedding_kernel<U, uint32_t><<<grid_for(total), BCU_THREADS, 0, s>>>(
            (const U *)w, rs, cs, indices->data, i64, ist, (U *)out, (uint32_t)total,
            (uint32_t)units, write, num, bad);
    else
        embedding_kernel<U, int64_t><<<grid_for(total), BCU_THREADS, 0, s>>>(
            (const U *)w, rs, cs, indices->data, i64, ist, (U *)out, total, units, write, num,
            bad);
}

extern "C" int bcu_nn_embedding(bcu_stream s, const bcu_view *weight, const bcu_view *indices,
                                const bcu_view *out, unsigned long long *bad)
{
    if (indices->dtype != BCU_I64 && indices->dtype != BCU_I32)
        return unsupported("embedding: indices must be i32 or i64, not %s",
                           bcu_dtype_name(indices->dtype));
    size_t es = dtype_size(weight->dtype);
    if (es == 0) return unsupported("embedding: dtype %s", bcu_dtype_name(weight->dtype));
    int64_t M = indices->ndim ? indices->shape[0] : 1;
    int64_t num = weight->shape[0], dim = weight->shape[1];
    int64_t ws0 = weight->strides[0], ws1 = weight->strides[1];
    if (M == 0) return 0;
    bool rows_contiguous = ws1 == 1 || dim <= 1;
    int64_t row_bytes = dim * (int64_t)es, stride_bytes = ws0 * (int64_t)es;
    static const int64_t widths[3] = {16, 8, 4};
    for (int k = 0; k < 3; k++) {
        int64_t vb = widths[k];
        if (!rows_contiguous || dim == 0 || row_bytes % vb || stride_bytes % vb ||
            (uintptr_t)weight->data % (uintptr_t)vb || (uintptr_t)out->data % (uintptr_t)vb)
            continue;
        int64_t units = row_bytes / vb, rs = stride_bytes / vb;
        if (vb == 16)
            embedding_launch<uint4>(s, weight->data, rs, 1, indices, out->data, M, units, num, bad);
        else if (vb == 8)
            embedding_launch<unsigned long long>(s, weight->data, rs, 1, indices, out->data, M,
                                                 units, num, bad);
        else
            embedding_launch<uint32_t>(s, weight->data, rs, 1, indices, out->data, M, units, num,
                                       bad);
        return launch_status("embedding");
    }
    int64_t cs = dim <= 1 ? 0 : ws1;
    switch (es) {
    case 1: embedding_launch<uint8_t>(s, weight->data, ws0, cs, indices, out->data, M, dim, num, bad); break;
    case 2: embedding_launch<uint16_t>(s, weight->data, ws0, cs, indices, out->data, M, dim, num, bad); break;
    case 4: embedding_launch<uint32_t>(s, weight->data, ws0, cs, indices, out->data, M, dim, num, bad); break;
    default: embedding_launch<unsigned long long>(s, weight->data, ws0, cs, indices, out->data, M, dim, num, bad); break;
    }
    return launch_status("embedding");
}

/* ---- embedding backward --------------------------------------------------------------------------
 * The (index, position) pairs are sorted by index with a stable radix sort, so each index's
 * positions stay in increasing order; the first position of each run of equal indices then adds
 * that run's gradient rows in order (the CPU's order, element type and all). Rows no index hits
 * stay zero. scratch: keys in/out, positions in/out (M 8-byte words each), CUB's temporary. */
static int key_bits(int64_t num)
{
    int b = 1;
    while (b < 63 && ((int64_t)1 << b) < num) b++;
    return b;
}

static size_t cub_sort_bytes(int64_t M, int64_t num)
{
    size_t bytes = 0;
    cub::DeviceRadixSort::SortPairs(nullptr, bytes, (const unsigned long long *)nullptr,
                                    (unsigned long long *)nullptr, (const long long *)nullptr,
                                    (long long *)nullptr, M, 0, key_bits(num));
    return bytes;
}

extern "C" size_t bcu_nn_embedding_backward_scratch(int64_t M, int64_t num)
{
    if (M <= 0) return 0;
    return 4 * align256((size_t)M * 8) + align256(cub_sort_bytes(M, num));
}

__global__ void emb_keys_kernel(const void *idx, bool i64, int64_t ist, int64_t M,
                                unsigned long long *keys, long long *pos)
{
    GRID_LOOP(m, M)
    {
        keys[m] = (unsigned long long)index_at(idx, i64, m * ist);
        pos[m] = (long long)m;
    }
}

/* keys, pos (M) sorted; g (M, dim); gw (num, dim). Block (x: runs, y: 128-column tiles). */
template <class T>
__global__ void emb_rows_kernel(const unsigned long long *__restrict__ keys,
                                const long long *__restrict__ pos, const T *__restrict__ g,
                                T *__restrict__ gw, int64_t M, int64_t dim)
{
    for (int64_t j = blockIdx.x; j < M; j += gridDim.x) {
        if (j > 0 && keys[j] == keys[j - 1]) continue;
        const unsigned long long row = keys[j];
        int64_t e = j + 1;
        while (e < M && keys[e] == row) e++;
        for (int64_t col = (int64_t)blockIdx.y * blockDim.x + threadIdx.x; col < dim;
             col += (int64_t)gridDim.y * blockDim.x) {
            T acc = 0;
            for (int64_t k = j; k < e; k++) acc += g[pos[k] * dim + col];
            gw[(int64_t)row * dim + col] = acc;
        }
    }
}

extern "C" int bcu_nn_embedding_backward(bcu_stream s, const bcu_view *grad_out,
                                         const bcu_view *indices, const bcu_view *grad_weight,
                                         void *scratch, size_t scratch_bytes)
{
    int dt = grad_out->dtype;
    if ((dt != BCU_F32 && dt != BCU_F64) || grad_weight->dtype != dt)
        return unsupported("embedding_backward: the CUDA kernel supports f32 and f64, not %s",
                           bcu_dtype_name(dt));
    if (indices->dtype != BCU_I64 && indices->dtype != BCU_I32)
        return unsupported("embedding_backward: indices must be i32 or i64, not %s",
                           bcu_dtype_name(indices->dtype));
    int64_t M = indices->ndim ? indices->shape[0] : 1;
    int64_t num = grad_weight->shape[0], dim = grad_weight->shape[1];
    size_t nbytes = (size_t)(num * dim) * dtype_size(dt);
    if (nbytes) {
        cudaError_t e = cudaMemsetAsync(grad_weight->data, 0, nbytes, s);
        if (e != cudaSuccess) return internal_error("embedding_backward: cudaMemsetAsync", e);
    }
    if (M == 0 || dim == 0) return launch_status("embedding_backward");
    size_t a = align256((size_t)M * 8);
    if (!scratch || scratch_bytes < 4 * a) {
        unsupported("embedding_backward: scratch of %zu bytes is too small", scratch_bytes);
        return BCU_ERR_INTERNAL;
    }
    char *base = (char *)scratch;
    unsigned long long *keys_in = (unsigned long long *)base,
                       *keys_out = (unsigned long long *)(base + a);
    long long *pos_in = (long long *)(base + 2 * a), *pos_out = (long long *)(base + 3 * a);
    void *temp = base + 4 * a;
    size_t temp_bytes = scratch_bytes - 4 * a;
    emb_keys_kernel<<<grid_for(M), BCU_THREADS, 0, s>>>(
        indices->data, indices->dtype == BCU_I64, indices->ndim ? indices->strides[0] : 0, M,
        keys_in, pos_in);
    int rc = launch_status("embedding_backward");
    if (rc) return rc;
    cudaError_t e = cub::DeviceRadixSort::SortPairs(temp, temp_bytes, keys_in, keys_out, pos_in,
                                                    pos_out, M, 0, key_bits(num), s);
    if (e != cudaSuccess) return internal_error("embedding_backward: cub radix sort", e);
    int threads = dim >= 128 ? 128 : (int)((dim + 31) / 32 * 32);
    int64_t ytiles = (dim + threads - 1) / threads;
    dim3 grid(cap_grid(M), (unsigned)(ytiles > 65535 ? 65535 : ytiles));
    if (dt == BCU_F32)
        emb_rows_kernel<float><<<grid, threads, 0, s>>>(keys_out, pos_out,
                                                        (const float *)grad_out->data,
                                                        (float *)grad_weight->data, M, dim);
    else
        emb_rows_kernel<double><<<grid, threads, 0, s>>>(keys_out, pos_out,
                                                         (const double *)grad_out->data,
                                                         (double *)grad_weight->data, M, dim);
    return launch_status("embedding_backward");
}
