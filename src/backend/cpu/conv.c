/* backend/cpu/conv.c — the CPU conv family's table and its convolution half: im2col and col2im,
 * the data movement that turns a convolution into one GEMM (ops/conv.c does the GEMM through
 * the matmul slot). The pooling kernels live in pool.c.
 *
 * Both kernels give each thread whole rows (im2col: one (n, c, kh, kw) row of cols; col2im: one
 * (n, c) image plane), so every output element is written by one thread in a fixed order and
 * the results do not depend on the thread count. f32 and f64 only. */
#include "backend/backend_conv.h"
#include "backend/cpu/conv_kernels.h"
#include "backend/cpu/cpu_kernels.h"
#include "backend/cpu/iter.h"

#include <string.h>

/* The first and one-past-last output column ow whose input column ow*s - p + k*d lies in
 * [0, W). */
static void valid_cols(int64_t OW, int64_t W, int64_t s, int64_t off, int64_t *lo, int64_t *hi)
{
    /* iw = ow*s + off >= 0  <=>  ow >= ceil(-off / s) */
    int64_t a = off >= 0 ? 0 : (-off + s - 1) / s;
    /* iw = ow*s + off <= W-1  <=>  ow <= floor((W-1-off) / s) */
    int64_t b = W - 1 - off < 0 ? -1 : (W - 1 - off) / s;
    if (a > OW) a = OW;
    if (b + 1 < a) b = a - 1;
    if (b + 1 > OW) b = OW - 1;
    *lo = a;
    *hi = b + 1;
}

/* ---- im2col: x (N, C, H, W) → cols (N, C*KH*KW, OH*OW) ------------------------------------ */
#define DEFINE_IM2COL(T, NAME)                                                                     \
    static void NAME(const bn_tview *x, const bn_tview *cols, const bn_window_geom *g)             \
    {                                                                                              \
        const T *xd = x->data;                                                                     \
        T *cd = cols->data;                                                                        \
        int64_t KK = g->KH * g->KW, rows = g->N * g->C * KK;                                       \
        const int64_t *xs = x->strides, *cs = cols->strides;                                       \
        const bool par = rows * g->OH * g->OW >= BN_PAR_MIN_ELEMS;                                 \
        _Pragma("omp parallel for schedule(static) if (par)")                                      \
        for (int64_t r = 0; r < rows; r++) {                                                       \
            int64_t n = r / (g->C * KK), ck = r % (g->C * KK);                                     \
            int64_t c = ck / KK, kh = (ck % KK) / g->KW, kw = ck % g->KW;                          \
            const T *xp = xd + n * xs[0] + c * xs[1];                                              \
            T *cp = cd + n * cs[0] + ck * cs[1];                                                   \
            int64_t woff = kw * g->dil_w - g->pad_w, lo, hi;                                       \
            valid_cols(g->OW, g->W, g->stride_w, woff, &lo, &hi);                                  \
            for (int64_t oh = 0; oh < g->OH; oh++) {                                               \
                int64_t ih = oh * g->stride_h - g->pad_h + kh * g->dil_h;                          \
                T *crow = cp + oh * g->OW * cs[2];                                                 \
                if (ih < 0 || ih >= g->H) {                                                        \
                    for (int64_t ow = 0; ow < g->OW; ow++) crow[ow * cs[2]] = 0;                   \
                    continue;                                                                      \
                }                                                                                  \
                const T *xrow = xp + ih * xs[2];                                                   \
                for (int64_t ow = 0; ow < lo; ow++) crow[ow * cs[2]] = 0;                          \
                if (cs[2] == 1 && xs[3] == 1 && g->stride_w == 1) {                                \
                    const T *src = xrow + woff;                                                    \
                    for (int64_t ow = lo; ow < hi; ow++) crow[ow] = src[ow];                       \
                } else {                                                                           \
                    for (int64_t ow = lo; ow < hi; ow++)                                           \
                        crow[ow * cs[2]] = xrow[(ow * g->stride_w + woff) * xs[3]];                \
                }                                                                                  \
                for (int64_t ow = hi; ow < g->OW; ow++) crow[ow * cs[2]] = 0;                      \
            }                                                                                      \
        }                                                                                          \
    }

DEFINE_IM2COL(float, im2col_f32)
DEFINE_IM2COL(double, im2col_f64)

/* The common case: x rows contiguous along W, cols rows contiguous, stride 1 and no dilation
 * along W. Each (row of cols, oh) is then one contiguous copy of hi - lo elements between two
 * zero-filled edges (the padding), done with memcpy / memset. */
#define DEFINE_IM2COL_ROWS(T, NAME)                                                                \
    static void NAME(const bn_tview *x, const bn_tview *cols, const bn_window_geom *g)             \
    {                                                                                              \
        const T *xd = x->data;                                                                     \
        T *cd = cols->data;                                                                        \
        int64_t KK = g->KH * g->KW, CKK = g->C * KK, rows = g->N * CKK, OW = g->OW;                \
        const int64_t *xs = x->strides, *cs = cols->strides;                                       \
        const bool par = rows * g->OH * OW >= BN_PAR_MIN_ELEMS;                                    \
        _Pragma("omp parallel for schedule(static) if (par)")                                      \
        for (int64_t r = 0; r < rows; r++) {                                                       \
            int64_t n = r / CKK, ck = r % CKK;                                                     \
            int64_t c = ck / KK, kh = (ck % KK) / g->KW, kw = ck % g->KW;                          \
            const T *xp = xd + n * xs[0] + c * xs[1];                                              \
            T *cp = cd + n * cs[0] + ck * cs[1];                                                   \
            int64_t woff = kw - g->pad_w, lo, hi;                                                  \
            valid_cols(OW, g->W, 1, woff, &lo, &hi);                                               \
            size_t head = (size_t)lo * sizeof(T), body = (size_t)(hi - lo) * sizeof(T),            \
                   tail = (size_t)(OW - hi) * sizeof(T);                                           \
            for (int64_t oh = 0; oh < g->OH; oh++) {                                               \
                int64_t ih = oh * g->stride_h - g->pad_h + kh * g->dil_h;                          \
                T *crow = cp + oh * OW;                                                            \
                if (ih < 0 || ih >= g->H) {                                                        \
                    memset(crow, 0, (size_t)OW * sizeof(T));                                       \
                    continue;                                                                      \
                }                                                                                  \
                if (head) memset(crow, 0, head);                                                   \
                memcpy(crow + lo, xp + ih * xs[2] + woff + lo, body);                              \
                if (tail) memset(crow + hi, 0, tail);                                              \
            }                                                                                      \
        }                                                                                          \
    }

DEFINE_IM2COL_ROWS(float, im2col_rows_f32)
DEFINE_IM2COL_ROWS(double, im2col_rows_f64)

static bool rows_contiguous(const bn_tview *x, const bn_tview *cols, const bn_window_geom *g)
{
    return x->strides[3] == 1 && cols->strides[2] == 1 && g->stride_w == 1 && g->dil_w == 1;
}

static bn_status cpu_im2col(const bn_tview *x, const bn_tview *cols, const bn_window_geom *g)
{
    switch (x->dtype) {
    case BN_F32:
        (rows_contiguous(x, cols, g) ? im2col_rows_f32 : im2col_f32)(x, cols, g);
        return BN_OK;
    case BN_F64:
        (rows_contiguous(x, cols, g) ? im2col_rows_f64 : im2col_f64)(x, cols, g);
        return BN_OK;
    default:
        return bn__error(BN_ERR_UNSUPPORTED, "im2col: dtype %s is not supported on the CPU",
                         bn_dtype_name(x->dtype));
    }
}

/* ---- col2im: cols (N, C*KH*KW, OH*OW) → x (N, C, H, W), contiguous, summed ------------------ */
#define DEFINE_COL2IM(T, NAME)                                                                     \
    static void NAME(const bn_tview *cols, const bn_tview *x, const bn_window_geom *g)             \
    {                                                                                              \
        const T *cd = cols->data;                                                                  \
        T *xd = x->data;                                                                           \
        int64_t KK = g->KH * g->KW, planes = g->N * g->C, HW = g->H * g->W;                        \
        const int64_t *cs = cols->strides;                                                         \
        const bool par = planes * KK * g->OH * g->OW >= BN_PAR_MIN_ELEMS;                          \
        _Pragma("omp parallel for schedule(static) if (par)")                                      \
        for (int64_t p = 0; p < planes; p++) {                                                     \
            int64_t n = p / g->C, c = p % g->C;                                                    \
            T *xp = xd + p * HW;                                                                   \
            for (int64_t i = 0; i < HW; i++) xp[i] = 0;                                            \
            for (int64_t k = 0; k < KK; k++) {                                                     \
                int64_t kh = k / g->KW, kw = k % g->KW;                                            \
                const T *cp = cd + n * cs[0] + (c * KK + k) * cs[1];                               \
                int64_t woff = kw * g->dil_w - g->pad_w, lo, hi;                                   \
                valid_cols(g->OW, g->W, g->stride_w, woff, &lo, &hi);                              \
                for (int64_t oh = 0; oh < g->OH; oh++) {                                           \
                    int64_t ih = oh * g->stride_h - g->pad_h + kh * g->dil_h;                      \
                    if (ih < 0 || ih >= g->H) continue;                                            \
                    const T *crow = cp + oh * g->OW * cs[2];                                       \
                    T *xrow = xp + ih * g->W;                                                      \
                    for (int64_t ow = lo; ow < hi; ow++)                                           \
                        xrow[ow * g->stride_w + woff] += crow[ow * cs[2]];                         \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    }

DEFINE_COL2IM(float, col2im_f32)
DEFINE_COL2IM(double, col2im_f64)

/* The common case: cols rows contiguous (cs[2] == 1) and stride 1 along W. Each (row of cols,
 * oh) then adds one contiguous run into one image row, a loop the compiler vectorises; the sums
 * reach each pixel in the same order (k, then oh) as in the general kernel, so the bits are the
 * same. */
#define DEFINE_COL2IM_ROWS(T, NAME)                                                                \
    static void NAME(const bn_tview *cols, const bn_tview *x, const bn_window_geom *g)             \
    {                                                                                              \
        const T *cd = cols->data;                                                                  \
        T *xd = x->data;                                                                           \
        int64_t KK = g->KH * g->KW, planes = g->N * g->C, HW = g->H * g->W, OW = g->OW;            \
        const int64_t *cs = cols->strides;                                                         \
        const bool par = planes * KK * g->OH * OW >= BN_PAR_MIN_ELEMS;                             \
        _Pragma("omp parallel for schedule(static) if (par)")                                      \
        for (int64_t p = 0; p < planes; p++) {                                                     \
            int64_t n = p / g->C, c = p % g->C;                                                    \
            T *xp = xd + p * HW;                                                                   \
            memset(xp, 0, (size_t)HW * sizeof(T));                                                 \
            for (int64_t k = 0; k < KK; k++) {                                                     \
                int64_t kh = k / g->KW, kw = k % g->KW;                                            \
                const T *cp = cd + n * cs[0] + (c * KK + k) * cs[1];                               \
                int64_t woff = kw * g->dil_w - g->pad_w, lo, hi;                                   \
                valid_cols(OW, g->W, 1, woff, &lo, &hi);                                           \
                for (int64_t oh = 0; oh < g->OH; oh++) {                                           \
                    int64_t ih = oh * g->stride_h - g->pad_h + kh * g->dil_h;                      \
                    if (ih < 0 || ih >= g->H) continue;                                            \
                    const T *restrict src = cp + oh * OW;                                          \
                    T *restrict dst = xp + ih * g->W + woff;                                       \
                    for (int64_t ow = lo; ow < hi; ow++) dst[ow] += src[ow];                       \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    }

DEFINE_COL2IM_ROWS(float, col2im_rows_f32)
DEFINE_COL2IM_ROWS(double, col2im_rows_f64)

static bn_status cpu_col2im(const bn_tview *cols, const bn_tview *x, const bn_window_geom *g)
{
    bool rows = cols->strides[2] == 1 && g->stride_w == 1;
    switch (x->dtype) {
    case BN_F32: (rows ? col2im_rows_f32 : col2im_f32)(cols, x, g); return BN_OK;
    case BN_F64: (rows ? col2im_rows_f64 : col2im_f64)(cols, x, g); return BN_OK;
    default:
        return bn__error(BN_ERR_UNSUPPORTED, "col2im: dtype %s is not supported on the CPU",
                         bn_dtype_name(x->dtype));
    }
}

const bn_backend_conv bn_cpu_conv = {
    .im2col = cpu_im2col,
    .col2im = cpu_col2im,
    .max_pool2d = bn_cpu_max_pool2d,
    .max_pool2d_backward = bn_cpu_max_pool2d_backward,
    .avg_pool2d = bn_cpu_avg_pool2d,
    .avg_pool2d_backward = bn_cpu_avg_pool2d_backward,
    .adaptive_avg_pool2d = bn_cpu_adaptive_avg_pool2d,
    .adaptive_avg_pool2d_backward = bn_cpu_adaptive_avg_pool2d_backward,
};
