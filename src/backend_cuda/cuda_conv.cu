/* backend_cuda/cuda_conv.cu — the convolution and pooling kernels of backend_conv.h on the GPU:
 * im2col / col2im (the data movement around ops/conv.c's GEMMs) and 2-D max, average and
 * adaptive average pooling, forward and backward, f32 and f64 (ops/ converts f16 and bf16).
 *
 * Every kernel gives one thread one output element, walked by a flat index whose fastest part is
 * the innermost (output position / pixel) dimension, so neighbouring threads write neighbouring
 * addresses and, at stride 1, read neighbouring ones. Nothing uses atomics: each adjoint
 * (col2im and the pools' backward) gathers, for one input pixel, the contributions of the
 * windows that cover it, in the order the CPU kernels (src/backend/cpu/conv.c, pool.c) add them,
 * so the GPU's sums are the CPU's, bit for bit, and do not depend on scheduling (max pooling's
 * backward over a degenerate geometry with an empty window replays the CPU's scatter, one thread
 * per plane). The flat index and its divisions are 32-bit when the element count allows (the
 * common case; 64-bit integer division is a long subroutine on the GPU) and 64-bit otherwise;
 * memory offsets are always 64-bit. Not done here: direct or implicit-GEMM convolution, fused
 * im2col + GEMM. */
#include "backend_cuda/cuda_common.cuh"
#include "backend_cuda/cuda_conv.h"

#include <math.h>

typedef bcu_window_geom WG;

/* The strides of a 4-D (or 3-D, s3 unused) view, by value for a kernel argument. */
struct S4 {
    int64_t s0, s1, s2, s3;
};

static S4 strides_of(const bcu_view *v)
{
    S4 s = {v->strides[0], v->strides[1], v->strides[2], v->ndim > 3 ? v->strides[3] : 0};
    return s;
}

/* Up to five divisors of one launch, by value for a kernel argument. */
#define MAX_DIVS 5
template <class I> struct Divs {
    FastDiv<I> d[MAX_DIVS];
};

template <class I> static Divs<I> make_divs(const int64_t *div, int n)
{
    Divs<I> v;
    for (int k = 0; k < MAX_DIVS; k++) v.d[k] = FastDiv<I>::make(k < n ? div[k] : 1);
    return v;
}

/* Grid-stride loop over [0, n) with an index of type I. For I = uint32_t, n <= INT32_MAX and the
 * stride is below 2^28 (grid_for caps the grid), so i never wraps. */
#define FLAT_LOOP(I, i, n)                                                                         \
    for (I i = (I)blockIdx.x * (I)blockDim.x + (I)threadIdx.x; i < (n);                            \
         i += (I)blockDim.x * (I)gridDim.x)

/* Launches KERNEL<T, I>(divisors, args..., n) over n > 0 elements with a 32-bit index and fast
 * division when n allows, else 64-bit. DIV is an int64_t array of the kernel's divisors (all
 * positive and <= n, being factors of n). */
#define LAUNCH_FLAT(KERNEL, T, n, s, DIV, ...)                                                     \
    do {                                                                                           \
        int nd_ = (int)(sizeof(DIV) / sizeof(DIV[0]));                                             \
        if ((n) > (int64_t)INT32_MAX)                                                              \
            KERNEL<T, int64_t><<<grid_for(n), BCU_THREADS, 0, s>>>(                                \
                make_divs<int64_t>(DIV, nd_), __VA_ARGS__, (int64_t)(n));                          \
        else                                                                                       \
            KERNEL<T, uint32_t><<<grid_for(n), BCU_THREADS, 0, s>>>(                               \
                make_divs<uint32_t>(DIV, nd_), __VA_ARGS__, (uint32_t)(n));                        \
    } while (0)

/* Runs the block with T = float or double for dt, or returns BCU_ERR_UNSUPPORTED naming dt. */
#define FOR_F32_F64(dt, T, ...)                                                                    \
    switch (dt) {                                                                                  \
    case BCU_F32: {                                                                                \
        typedef float T;                                                                           \
        __VA_ARGS__                                                                                \
    } break;                                                                                       \
    case BCU_F64: {                                                                                \
        typedef double T;                                                                          \
        __VA_ARGS__                                                                                \
    } break;                                                                                       \
    default:                                                                                       \
        return unsupported("dtype %s is not supported on the GPU (f32 and f64 only)",              \
                           bcu_dtype_name(dt));                                                    \
    }

/* ---- host-side checks of what ops/ promises (a broken promise is a bug in born) ------------- */
static bool is_contiguous(const bcu_view *v)
{
    int64_t want = 1;
    for (int d = v->ndim - 1; d >= 0; d--) {
        if (v->shape[d] != 1 && v->strides[d] != want) return false;
        want *= v->shape[d];
    }
    return true;
}

/* BCU_ERR_INTERNAL with "<arg> <why>" as the message. */
static int internal(const char *arg, const char *why)
{
    unsupported("%s %s", arg, why); /* only formats the message */
    return BCU_ERR_INTERNAL;
}

/* v is an ndim-D view of dtype dt, contiguous when asked. */
static int check_view(const char *arg, const bcu_view *v, int ndim, int dt, bool contiguous)
{
    if (v->ndim != ndim) return internal(arg, "has the wrong rank");
    if (v->dtype != dt) return internal(arg, "has a different dtype from the other operands");
    if (contiguous && !is_contiguous(v)) return internal(arg, "must be contiguous");
    return 0;
}

/* ---- device helpers ------------------------------------------------------------------------- */
/* The outputs o in [*lo, *hi) whose window [o*s - p, o*s - p + extent) covers position pos
 * (pos >= 0, p >= 0), clipped to [0, O). */
__device__ inline void covering(int64_t pos, int64_t s, int64_t p, int64_t extent, int64_t O,
                                int64_t *lo, int64_t *hi)
{
    int64_t first = pos + p - extent + 1; /* o*s >= first */
    int64_t b = (pos + p) / s + 1;        /* o*s <= pos + p */
    *lo = first <= 0 ? 0 : (first + s - 1) / s;
    *hi = b < O ? b : O;
}

/* A max-pool window's extent along one dim, clipped to [0, size) with step d: its first valid
 * position *first and one past its last, *end (the CPU kernel's window_rows). */
__device__ inline void window_rows(int64_t o, int64_t s, int64_t p, int64_t k, int64_t d,
                                   int64_t size, int64_t *first, int64_t *end)
{
    int64_t start = o * s - p;
    int64_t stop = start + (k - 1) * d + 1;
    if (start < 0) start += (-start + d - 1) / d * d;
    if (stop > size) stop = size;
    *first = start;
    *end = stop;
}

/* An average-pool window of output (oh, ow) clipped to the image, [h0, h1) x [w0, w1), and its
 * divisor (the CPU kernel's avg_window). */
__device__ inline int64_t avg_window(const WG &g, int64_t oh, int64_t ow, bool exclude,
                                     int64_t *h0, int64_t *h1, int64_t *w0, int64_t *w1)
{
    int64_t hs = oh * g.stride_h - g.pad_h, ws = ow * g.stride_w - g.pad_w;
    int64_t he = hs + g.KH, we = ws + g.KW;
    if (he > g.H + g.pad_h) he = g.H + g.pad_h;
    if (we > g.W + g.pad_w) we = g.W + g.pad_w;
    int64_t padded = (he - hs) * (we - ws);
    *h0 = hs < 0 ? 0 : hs;
    *w0 = ws < 0 ? 0 : ws;
    *h1 = he > g.H ? g.H : he;
    *w1 = we > g.W ? g.W : we;
    return exclude ? (*h1 - *h0) * (*w1 - *w0) : padded;
}

/* Adaptive cell i of `out` cells over `in`: [floor(i*in/out), ceil((i+1)*in/out)). */
__device__ inline void adaptive_range(int64_t i, int64_t in, int64_t out, int64_t *b, int64_t *e)
{
    *b = (i * in) / out;
    *e = ((i + 1) * in + out - 1) / out;
}

/* ---- im2col: x (N, C, H, W) → cols (N, C*KH*KW, OH*OW) ------------------------------------ */
/* i = (n*CKK + ck)*L + pos: consecutive threads fill consecutive window positions of one row of
 * cols (and read consecutive pixels at stride 1). Divisors: L, CKK, OW, KH*KW, KW. */
template <class T, class I>
__global__ void im2col_kernel(Divs<I> dv, WG g, const T *__restrict__ x, S4 xs,
                              T *__restrict__ cols, S4 cs, I n)
{
    FLAT_LOOP(I, i, n)
    {
        I r, img, ohq, c, khq;
        I pos = split(dv.d[0], i, &r);
        I ck = split(dv.d[1], r, &img);
        I ow = split(dv.d[2], pos, &ohq);
        I k = split(dv.d[3], ck, &c);
        I kw = split(dv.d[4], k, &khq);
        int64_t ih = (int64_t)ohq * g.stride_h - g.pad_h + (int64_t)khq * g.dil_h;
        int64_t iw = (int64_t)ow * g.stride_w - g.pad_w + (int64_t)kw * g.dil_w;
        T v = 0;
        if (ih >= 0 && ih < g.H && iw >= 0 && iw < g.W)
            v = x[(int64_t)img * xs.s0 + (int64_t)c * xs.s1 + ih * xs.s2 + iw * xs.s3];
        cols[(int64_t)img * cs.s0 + (int64_t)ck * cs.s1 + (int64_t)pos * cs.s2] = v;
    }
}

/* The same when cols' window positions are contiguous (stride 1, both layouts ops/conv.c uses)
 * and there are fewer than 2^31 rows: a block per row (img, ck) of cols, whose image, channel
 * and kernel offset are found once (three 32-bit fast divisions), its threads walking the row's
 * L positions (one division by OW each). Divisors: OW, C*KK, KK, KW. */
template <class T>
__global__ void im2col_rows_kernel(Divs<uint32_t> dv, WG g, const T *__restrict__ x, S4 xs,
                                   T *__restrict__ cols, S4 cs, uint32_t rows)
{
    const uint32_t L = (uint32_t)(g.OH * g.OW);
    for (uint32_t r = blockIdx.x; r < rows; r += gridDim.x) {
        uint32_t img, c, kh;
        uint32_t ck = split(dv.d[1], r, &img);
        uint32_t k = split(dv.d[2], ck, &c);
        uint32_t kw = split(dv.d[3], k, &kh);
        int64_t h0 = (int64_t)kh * g.dil_h - g.pad_h, w0 = (int64_t)kw * g.dil_w - g.pad_w;
        const T *xp = x + (int64_t)img * xs.s0 + (int64_t)c * xs.s1;
        T *cp = cols + (int64_t)img * cs.s0 + (int64_t)ck * cs.s1;
        for (uint32_t pos = threadIdx.x; pos < L; pos += blockDim.x) {
            uint32_t oh;
            uint32_t ow = split(dv.d[0], pos, &oh);
            int64_t ih = h0 + (int64_t)oh * g.stride_h, iw = w0 + (int64_t)ow * g.stride_w;
            T v = 0;
            if (ih >= 0 && ih < g.H && iw >= 0 && iw < g.W) v = xp[ih * xs.s2 + iw * xs.s3];
            cp[pos] = v;
        }
    }
}

extern "C" int bcu_im2col(bcu_stream s, const bcu_view *x, const bcu_view *cols,
                          const bcu_window_geom *g)
{
    int rc = check_view("x", x, 4, x->dtype, false);
    if (!rc) rc = check_view("cols", cols, 3, x->dtype, false);
    if (rc) return rc;
    int64_t L = g->OH * g->OW, KK = g->KH * g->KW, n = g->N * g->C * KK * L;
    const int64_t div[5] = {L, g->C * KK, g->OW, KK, g->KW};
    FOR_F32_F64(x->dtype, T, {
        if (n == 0) return 0;
        int64_t rows = g->N * g->C * KK;
        if (cols->strides[2] == 1 && L <= INT32_MAX && rows <= INT32_MAX) {
            unsigned threads = L <= 64 ? 64 : L <= 128 ? 128 : 256;
            unsigned grid = rows > (1 << 22) ? (1u << 22) : (unsigned)rows;
            const int64_t rdiv[4] = {g->OW, g->C * KK, KK, g->KW};
            im2col_rows_kernel<T><<<grid, threads, 0, s>>>(
                make_divs<uint32_t>(rdiv, 4), *g, (const T *)x->data, strides_of(x),
                (T *)cols->data, strides_of(cols), (uint32_t)rows);
            return launch_status("im2col");
        }
        LAUNCH_FLAT(im2col_kernel, T, n, s, div, *g, (const T *)x->data, strides_of(x),
                    (T *)cols->data, strides_of(cols));
    });
    return launch_status("im2col");
}

/* ---- col2im: cols (N, C*KH*KW, OH*OW) → x (N, C, H, W) contiguous, summed ------------------ */
/* One thread per pixel adds, for kh then kw ascending, the one window position (if any) that
 * read it: the CPU kernel's order, so the sums are identical. Divisors: W, H, C. */
template <class T, class I>
__global__ void col2im_kernel(Divs<I> dv, WG g, const T *__restrict__ cols, S4 cs,
                              T *__restrict__ x, I n)
{
    FLAT_LOOP(I, i, n)
    {
        I t, p, img, c;
        int64_t w = (int64_t)split(dv.d[0], i, &t);
        int64_t h = (int64_t)split(dv.d[1], t, &p);
        c = split(dv.d[2], p, &img);
        const T *cp = cols + (int64_t)img * cs.s0 + (int64_t)c * g.KH * g.KW * cs.s1;
        T sum = 0;
        for (int64_t kh = 0; kh < g.KH; kh++) {
            int64_t th = h + g.pad_h - kh * g.dil_h, oh = th;
            if (th < 0) continue;
            if (g.stride_h != 1) {
                if (th % g.stride_h) continue;
                oh = th / g.stride_h;
            }
            if (oh >= g.OH) continue;
            for (int64_t kw = 0; kw < g.KW; kw++) {
                int64_t tw = w + g.pad_w - kw * g.dil_w, ow = tw;
                if (tw < 0) continue;
                if (g.stride_w != 1) {
                    if (tw % g.stride_w) continue;
                    ow = tw / g.stride_w;
                }
                if (ow >= g.OW) continue;
                sum += cp[(kh * g.KW + kw) * cs.s1 + (oh * g.OW + ow) * cs.s2];
            }
        }
        x[i] = sum;
    }
}

extern "C" int bcu_col2im(bcu_stream s, const bcu_view *cols, const bcu_view *x,
                          const bcu_window_geom *g)
{
    int rc = check_view("x", x, 4, x->dtype, true);
    if (!rc) rc = check_view("cols", cols, 3, x->dtype, false);
    if (rc) return rc;
    int64_t n = g->N * g->C * g->H * g->W;
    const int64_t div[3] = {g->W, g->H, g->C};
    FOR_F32_F64(x->dtype, T, {
        if (n == 0) return 0;
        LAUNCH_FLAT(col2im_kernel, T, n, s, div, *g, (const T *)cols->data, strides_of(cols),
                    (T *)x->data);
    });
    return launch_status("col2im");
}

/* ---- max pooling ---------------------------------------------------------------------------- */
/* x (N, C, H, W) any strides → out, idx (N, C, OH, OW) contiguous; idx may be NULL. The window
 * is scanned row by row; a value wins when it is larger or NaN (so a later NaN wins) and idx is
 * its flat position h*W + w in the plane: the CPU kernel's rule. Divisors: OW, OH, C. */
template <class T, class I>
__global__ void max_pool_kernel(Divs<I> dv, WG g, const T *__restrict__ x, S4 xs,
                                T *__restrict__ out, int64_t *__restrict__ idx, I n)
{
    FLAT_LOOP(I, i, n)
    {
        I t, p, img;
        int64_t ow = (int64_t)split(dv.d[0], i, &t);
        int64_t oh = (int64_t)split(dv.d[1], t, &p);
        I c = split(dv.d[2], p, &img);
        const T *xp = x + (int64_t)img * xs.s0 + (int64_t)c * xs.s1;
        int64_t h0, h1, w0, w1;
        window_rows(oh, g.stride_h, g.pad_h, g.KH, g.dil_h, g.H, &h0, &h1);
        window_rows(ow, g.stride_w, g.pad_w, g.KW, g.dil_w, g.W, &w0, &w1);
        T best = (T)-INFINITY;
        int64_t best_i = h0 * g.W + w0;
        for (int64_t h = h0; h < h1; h += g.dil_h)
            for (int64_t w = w0; w < w1; w += g.dil_w) {
                T v = xp[h * xs.s2 + w * xs.s3];
                if (v > best || v != v) {
                    best = v;
                    best_i = h * g.W + w;
                }
            }
        out[i] = best;
        if (idx) idx[i] = best_i;
    }
}

extern "C" int bcu_max_pool2d(bcu_stream s, const bcu_view *x, const bcu_view *out,
                              const bcu_view *indices, const bcu_window_geom *g)
{
    int64_t *idx = indices ? (int64_t *)indices->data : NULL;
    int rc = check_view("x", x, 4, x->dtype, false);
    if (!rc) rc = check_view("out", out, 4, x->dtype, true);
    if (!rc && idx) rc = check_view("indices", indices, 4, BCU_I64, true);
    if (rc) return rc;
    int64_t n = g->N * g->C * g->OH * g->OW;
    const int64_t div[3] = {g->OW, g->OH, g->C};
    FOR_F32_F64(x->dtype, T, {
        if (n == 0) return 0;
        LAUNCH_FLAT(max_pool_kernel, T, n, s, div, *g, (const T *)x->data, strides_of(x),
                    (T *)out->data, idx);
    });
    return launch_status("max_pool2d");
}

/* grad_out, idx (N, C, OH, OW) → grad_in (N, C, H, W), all contiguous. One thread per pixel sums
 * grad_out over the outputs whose window spans it and whose index names it, in ascending output
 * order (the CPU kernel's order). So an index is honoured only inside its own window's span,
 * which is where max_pool2d puts the index of every non-empty window; geometries with an empty
 * window use max_pool_backward_planes instead. Divisors: W, H. */
template <class T, class I>
__global__ void max_pool_backward_kernel(Divs<I> dv, WG g, const T *__restrict__ go,
                                         const int64_t *__restrict__ idx, T *__restrict__ gi, I n)
{
    const int64_t OHW = g.OH * g.OW;
    FLAT_LOOP(I, i, n)
    {
        I t, plane;
        int64_t w = (int64_t)split(dv.d[0], i, &t);
        int64_t h = (int64_t)split(dv.d[1], t, &plane);
        int64_t oh0, oh1, ow0, ow1, target = h * g.W + w;
        covering(h, g.stride_h, g.pad_h, (g.KH - 1) * g.dil_h + 1, g.OH, &oh0, &oh1);
        covering(w, g.stride_w, g.pad_w, (g.KW - 1) * g.dil_w + 1, g.OW, &ow0, &ow1);
        const T *gp = go + (int64_t)plane * OHW;
        const int64_t *ip = idx + (int64_t)plane * OHW;
        T sum = 0;
        for (int64_t oh = oh0; oh < oh1; oh++)
            for (int64_t ow = ow0; ow < ow1; ow++) {
                int64_t o = oh * g.OW + ow;
                if (ip[o] == target) sum += gp[o];
            }
        gi[i] = sum;
    }
}

/* The degenerate case: some window lies wholly in the padding or between dilated taps (e.g.
 * W = 1, kernel 2, padding 1, dilation 2: torch allows it), so its output is -inf and its index
 * h0*W + w0 may name a pixel outside its span, which the CPU (like torch) still credits. One
 * thread per plane replays the CPU kernel's scatter in order: slow, exact, and only here. */
template <class T>
__global__ void max_pool_backward_planes(WG g, const T *__restrict__ go,
                                         const int64_t *__restrict__ idx, T *__restrict__ gi,
                                         int64_t planes)
{
    const int64_t OHW = g.OH * g.OW, HW = g.H * g.W;
    GRID_LOOP(p, planes)
    {
        T *gp = gi + p * HW;
        for (int64_t i = 0; i < HW; i++) gp[i] = 0;
        for (int64_t o = 0; o < OHW; o++) {
            int64_t i = idx[p * OHW + o];
            if (i >= 0 && i < HW) gp[i] += go[p * OHW + o];
        }
    }
}

/* Whether window o along a dim (as window_rows) holds no position inside [0, size). */
static bool window_empty(int64_t o, int64_t s, int64_t p, int64_t k, int64_t d, int64_t size)
{
    int64_t start = o * s - p, stop = start + (k - 1) * d + 1;
    if (start < 0) start += (-start + d - 1) / d * d;
    if (stop > size) stop = size;
    return start >= stop;
}

/* Whether any of the O windows along a dim is empty. A window that starts at or after 0 and
 * stops by size holds its start, so only the few first (start < 0) and last (stop > size)
 * windows are tried. */
static bool any_window_empty(int64_t O, int64_t s, int64_t p, int64_t k, int64_t d, int64_t size)
{
    int64_t head = p / s + 1; /* o >= head starts at or after 0 */
    for (int64_t o = 0; o < O && o < head; o++)
        if (window_empty(o, s, p, k, d, size)) return true;
    int64_t num = size + p - (k - 1) * d - 1; /* o > num / s stops after size */
    int64_t tail = num < 0 ? 0 : num / s + 1;
    for (int64_t o = tail > head ? tail : head; o < O; o++)
        if (window_empty(o, s, p, k, d, size)) return true;
    return false;
}

/* The same for windows that tile the image (stride = kernel, no padding or dilation: each pixel
 * lies in at most one window, so its sum has one term and needs no loop). Divisors: W, H, KW,
 * KH. */
template <class T, class I>
__global__ void max_pool_backward_tiled_kernel(Divs<I> dv, WG g, const T *__restrict__ go,
                                               const int64_t *__restrict__ idx,
                                               T *__restrict__ gi, I n)
{
    const I OH = (I)g.OH, OW = (I)g.OW, OHW = OH * OW;
    FLAT_LOOP(I, i, n)
    {
        I t, plane, oh, ow;
        I w = split(dv.d[0], i, &t);
        I h = split(dv.d[1], t, &plane);
        split(dv.d[2], w, &ow);
        split(dv.d[3], h, &oh);
        T v = 0;
        if (oh < OH && ow < OW) {
            int64_t o = (int64_t)plane * OHW + oh * OW + ow;
            if (idx[o] == (int64_t)h * g.W + w) v = go[o];
        }
        gi[i] = v;
    }
}

extern "C" int bcu_max_pool2d_backward(bcu_stream s, const bcu_view *grad_out,
                                       const bcu_view *indices, const bcu_view *grad_in,
                                       const bcu_window_geom *g)
{
    int rc = check_view("grad_in", grad_in, 4, grad_in->dtype, true);
    if (!rc) rc = check_view("grad_out", grad_out, 4, grad_in->dtype, true);
    if (!rc) rc = check_view("indices", indices, 4, BCU_I64, true);
    if (rc) return rc;
    int64_t n = g->N * g->C * g->H * g->W;
    const int64_t div[2] = {g->W, g->H};
    bool degenerate =
        any_window_empty(g->OH, g->stride_h, g->pad_h, g->KH, g->dil_h, g->H) ||
        any_window_empty(g->OW, g->stride_w, g->pad_w, g->KW, g->dil_w, g->W);
    bool tiled = g->stride_h == g->KH && g->stride_w == g->KW && g->pad_h == 0 && g->pad_w == 0 &&
                 g->dil_h == 1 && g->dil_w == 1;
    FOR_F32_F64(grad_in->dtype, T, {
        if (n == 0) return 0;
        if (degenerate) {
            max_pool_backward_planes<T><<<grid_for(g->N * g->C), BCU_THREADS, 0, s>>>(
                *g, (const T *)grad_out->data, (const int64_t *)indices->data,
                (T *)grad_in->data, g->N * g->C);
        } else if (tiled) {
            const int64_t tdiv[4] = {g->W, g->H, g->KW, g->KH};
            LAUNCH_FLAT(max_pool_backward_tiled_kernel, T, n, s, tdiv, *g,
                        (const T *)grad_out->data, (const int64_t *)indices->data,
                        (T *)grad_in->data);
        } else
            LAUNCH_FLAT(max_pool_backward_kernel, T, n, s, div, *g, (const T *)grad_out->data,
                        (const int64_t *)indices->data, (T *)grad_in->data);
    });
    return launch_status("max_pool2d_backward");
}

/* ---- average pooling ------------------------------------------------------------------------ */
/* x (N, C, H, W) any strides → out (N, C, OH, OW) contiguous: the window's sum (rows, then
 * columns, as the CPU) over its divisor; 0 for a window wholly in the padding. Divisors: OW, OH,
 * C. */
template <class T, class I>
__global__ void avg_pool_kernel(Divs<I> dv, WG g, const T *__restrict__ x, S4 xs,
                                T *__restrict__ out, bool exclude, I n)
{
    FLAT_LOOP(I, i, n)
    {
        I t, p, img;
        int64_t ow = (int64_t)split(dv.d[0], i, &t);
        int64_t oh = (int64_t)split(dv.d[1], t, &p);
        I c = split(dv.d[2], p, &img);
        const T *xp = x + (int64_t)img * xs.s0 + (int64_t)c * xs.s1;
        int64_t h0, h1, w0, w1;
        int64_t div = avg_window(g, oh, ow, exclude, &h0, &h1, &w0, &w1);
        T sum = 0;
        for (int64_t h = h0; h < h1; h++)
            for (int64_t w = w0; w < w1; w++) sum += xp[h * xs.s2 + w * xs.s3];
        out[i] = h0 < h1 && w0 < w1 ? sum / (T)div : (T)0;
    }
}

extern "C" int bcu_avg_pool2d(bcu_stream s, const bcu_view *x, const bcu_view *out,
                              const bcu_window_geom *g, bool exclude_padding)
{
    int rc = check_view("x", x, 4, x->dtype, false);
    if (!rc) rc = check_view("out", out, 4, x->dtype, true);
    if (rc) return rc;
    int64_t n = g->N * g->C * g->OH * g->OW;
    const int64_t div[3] = {g->OW, g->OH, g->C};
    FOR_F32_F64(x->dtype, T, {
        if (n == 0) return 0;
        LAUNCH_FLAT(avg_pool_kernel, T, n, s, div, *g, (const T *)x->data, strides_of(x),
                    (T *)out->data, exclude_padding);
    });
    return launch_status("avg_pool2d");
}

/* grad_out (N, C, OH, OW) → grad_in (N, C, H, W), contiguous. One thread per pixel adds each
 * covering window's share grad_out / divisor in ascending output order (the CPU's order).
 * Divisors: W, H. */
template <class T, class I>
__global__ void avg_pool_backward_kernel(Divs<I> dv, WG g, const T *__restrict__ go,
                                         T *__restrict__ gi, bool exclude, I n)
{
    const int64_t OHW = g.OH * g.OW;
    FLAT_LOOP(I, i, n)
    {
        I t, plane;
        int64_t w = (int64_t)split(dv.d[0], i, &t);
        int64_t h = (int64_t)split(dv.d[1], t, &plane);
        int64_t oh0, oh1, ow0, ow1;
        covering(h, g.stride_h, g.pad_h, g.KH, g.OH, &oh0, &oh1);
        covering(w, g.stride_w, g.pad_w, g.KW, g.OW, &ow0, &ow1);
        const T *gp = go + (int64_t)plane * OHW;
        T sum = 0;
        for (int64_t oh = oh0; oh < oh1; oh++)
            for (int64_t ow = ow0; ow < ow1; ow++) {
                int64_t h0, h1, w0, w1;
                int64_t div = avg_window(g, oh, ow, exclude, &h0, &h1, &w0, &w1);
                if (h < h0 || h >= h1 || w < w0 || w >= w1) continue;
                sum += gp[oh * g.OW + ow] / (T)div;
            }
        gi[i] = sum;
    }
}

extern "C" int bcu_avg_pool2d_backward(bcu_stream s, const bcu_view *grad_out,
                                       const bcu_view *grad_in, const bcu_window_geom *g,
                                       bool exclude_padding)
{
    int rc = check_view("grad_in", grad_in, 4, grad_in->dtype, true);
    if (!rc) rc = check_view("grad_out", grad_out, 4, grad_in->dtype, true);
    if (rc) return rc;
    int64_t n = g->N * g->C * g->H * g->W;
    const int64_t div[2] = {g->W, g->H};
    FOR_F32_F64(grad_in->dtype, T, {
        if (n == 0) return 0;
        LAUNCH_FLAT(avg_pool_backward_kernel, T, n, s, div, *g, (const T *)grad_out->data,
                    (T *)grad_in->data, exclude_padding);
    });
    return launch_status("avg_pool2d_backward");
}

/* ---- adaptive average pooling --------------------------------------------------------------- */
/* x (N, C, H, W) any strides → out (N, C, OH, OW) contiguous. Divisors: OW, OH, C. */
template <class T, class I>
__global__ void adaptive_kernel(Divs<I> dv, WG g, const T *__restrict__ x, S4 xs,
                                T *__restrict__ out, I n)
{
    FLAT_LOOP(I, i, n)
    {
        I t, p, img;
        int64_t ow = (int64_t)split(dv.d[0], i, &t);
        int64_t oh = (int64_t)split(dv.d[1], t, &p);
        I c = split(dv.d[2], p, &img);
        const T *xp = x + (int64_t)img * xs.s0 + (int64_t)c * xs.s1;
        int64_t h0, h1, w0, w1;
        adaptive_range(oh, g.H, g.OH, &h0, &h1);
        adaptive_range(ow, g.W, g.OW, &w0, &w1);
        T sum = 0;
        for (int64_t h = h0; h < h1; h++)
            for (int64_t w = w0; w < w1; w++) sum += xp[h * xs.s2 + w * xs.s3];
        out[i] = sum / (T)((h1 - h0) * (w1 - w0));
    }
}

extern "C" int bcu_adaptive_avg_pool2d(bcu_stream s, const bcu_view *x, const bcu_view *out,
                                       const bcu_window_geom *g)
{
    int rc = check_view("x", x, 4, x->dtype, false);
    if (!rc) rc = check_view("out", out, 4, x->dtype, true);
    if (rc) return rc;
    int64_t n = g->N * g->C * g->OH * g->OW;
    const int64_t div[3] = {g->OW, g->OH, g->C};
    FOR_F32_F64(x->dtype, T, {
        if (n == 0) return 0;
        if (g->H <= 0 || g->W <= 0) return internal("x", "has an empty plane");
        LAUNCH_FLAT(adaptive_kernel, T, n, s, div, *g, (const T *)x->data, strides_of(x),
                    (T *)out->data);
    });
    return launch_status("adaptive_avg_pool2d");
}

/* grad_out (N, C, OH, OW) → grad_in (N, C, H, W), contiguous. The cells covering row h run from
 * floor(h*OH/H) to ceil((h+1)*OH/H) - 1; one more on each side is tried and every one is checked
 * against its own range, so the set is exact. Ascending order, as the CPU. Divisors: W, H. */
template <class T, class I>
__global__ void adaptive_backward_kernel(Divs<I> dv, WG g, const T *__restrict__ go,
                                         T *__restrict__ gi, I n)
{
    const int64_t OHW = g.OH * g.OW;
    FLAT_LOOP(I, i, n)
    {
        I t, plane;
        int64_t w = (int64_t)split(dv.d[0], i, &t);
        int64_t h = (int64_t)split(dv.d[1], t, &plane);
        int64_t oh0 = h * g.OH / g.H - 1, oh1 = ((h + 1) * g.OH + g.H - 1) / g.H + 1;
        int64_t ow0 = w * g.OW / g.W - 1, ow1 = ((w + 1) * g.OW + g.W - 1) / g.W + 1;
        if (oh0 < 0) oh0 = 0;
        if (ow0 < 0) ow0 = 0;
        if (oh1 > g.OH) oh1 = g.OH;
        if (ow1 > g.OW) ow1 = g.OW;
        const T *gp = go + (int64_t)plane * OHW;
        T sum = 0;
        for (int64_t oh = oh0; oh < oh1; oh++) {
            int64_t h0, h1;
            adaptive_range(oh, g.H, g.OH, &h0, &h1);
            if (h < h0 || h >= h1) continue;
            for (int64_t ow = ow0; ow < ow1; ow++) {
                int64_t w0, w1;
                adaptive_range(ow, g.W, g.OW, &w0, &w1);
                if (w < w0 || w >= w1) continue;
                sum += gp[oh * g.OW + ow] / (T)((h1 - h0) * (w1 - w0));
            }
        }
        gi[i] = sum;
    }
}

extern "C" int bcu_adaptive_avg_pool2d_backward(bcu_stream s, const bcu_view *grad_out,
                                                const bcu_view *grad_in, const bcu_window_geom *g)
{
    int rc = check_view("grad_in", grad_in, 4, grad_in->dtype, true);
    if (!rc) rc = check_view("grad_out", grad_out, 4, grad_in->dtype, true);
    if (rc) return rc;
    int64_t n = g->N * g->C * g->H * g->W;
    const int64_t div[2] = {g->W, g->H};
    FOR_F32_F64(grad_in->dtype, T, {
        if (n == 0) return 0;
        LAUNCH_FLAT(adaptive_backward_kernel, T, n, s, div, *g, (const T *)grad_out->data,
                    (T *)grad_in->data);
    });
    return launch_status("adaptive_avg_pool2d_backward");
}
