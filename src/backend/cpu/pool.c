/* backend/cpu/pool.c — 2-D max, average and adaptive average pooling on the CPU, forward and
 * backward, with PyTorch's window rules (see backend_conv.h). One (n, c) plane per thread step,
 * so every element is written by one thread in a fixed order: results do not depend on the
 * thread count. f32 and f64; ops/ converts f16 and bf16. */
#include "backend/cpu/conv_kernels.h"
#include "backend/cpu/iter.h"

#include <math.h>

static bn_status unsupported(const char *kernel, bn_dtype dt)
{
    return bn__error(BN_ERR_UNSUPPORTED, "%s: dtype %s is not supported on the CPU", kernel,
                     bn_dtype_name(dt));
}

/* The x element (n, c, h, w) of a strided (N, C, H, W) view, as an offset in elements. */
static inline int64_t at4(const int64_t *s, int64_t n, int64_t c, int64_t h, int64_t w)
{
    return n * s[0] + c * s[1] + h * s[2] + w * s[3];
}

/* One window's clipped extent along a dim: [*b, *e) inside [0, size) with step d, and the
 * first valid position. */
static inline void window_rows(int64_t o, int64_t s, int64_t p, int64_t k, int64_t d,
                               int64_t size, int64_t *first, int64_t *end)
{
    int64_t start = o * s - p;
    int64_t stop = start + (k - 1) * d + 1;
    while (start < 0) start += d;
    if (stop > size) stop = size;
    *first = start, *end = stop;
}

/* ---- max pooling ---------------------------------------------------------------------------- */
/* x (N, C, H, W) any strides → out, indices (N, C, OH, OW) contiguous */
#define DEFINE_MAX_POOL(T, NAME)                                                                   \
    static void NAME(const bn_tview *x, const bn_tview *out, const bn_tview *indices,              \
                     const bn_window_geom *g)                                                      \
    {                                                                                              \
        const T *xd = x->data;                                                                     \
        T *od = out->data;                                                                         \
        int64_t *id = indices->data;                                                               \
        int64_t planes = g->N * g->C, OHW = g->OH * g->OW;                                         \
        const bool par = planes * OHW * g->KH * g->KW >= BN_PAR_MIN_ELEMS;                         \
        _Pragma("omp parallel for schedule(static) if (par)")                                      \
        for (int64_t p = 0; p < planes; p++) {                                                     \
            const T *xp = xd + at4(x->strides, p / g->C, p % g->C, 0, 0);                          \
            for (int64_t oh = 0; oh < g->OH; oh++) {                                               \
                int64_t h0, h1;                                                                    \
                window_rows(oh, g->stride_h, g->pad_h, g->KH, g->dil_h, g->H, &h0, &h1);           \
                for (int64_t ow = 0; ow < g->OW; ow++) {                                           \
                    int64_t w0, w1;                                                                \
                    window_rows(ow, g->stride_w, g->pad_w, g->KW, g->dil_w, g->W, &w0, &w1);       \
                    T best = -(T)INFINITY;                                                         \
                    int64_t best_i = h0 * g->W + w0;                                               \
                    for (int64_t h = h0; h < h1; h += g->dil_h)                                    \
                        for (int64_t w = w0; w < w1; w += g->dil_w) {                              \
                            T v = xp[h * x->strides[2] + w * x->strides[3]];                       \
                            if (v > best || isnan(v)) best = v, best_i = h * g->W + w;             \
                        }                                                                          \
                    od[p * OHW + oh * g->OW + ow] = best;                                          \
                    id[p * OHW + oh * g->OW + ow] = best_i;                                        \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    }

DEFINE_MAX_POOL(float, max_pool_f32)
DEFINE_MAX_POOL(double, max_pool_f64)

bn_status bn_cpu_max_pool2d(const bn_tview *x, const bn_tview *out, const bn_tview *indices,
                            const bn_window_geom *g)
{
    switch (x->dtype) {
    case BN_F32: max_pool_f32(x, out, indices, g); return BN_OK;
    case BN_F64: max_pool_f64(x, out, indices, g); return BN_OK;
    default: return unsupported("max_pool2d", x->dtype);
    }
}

/* grad_out, indices (N, C, OH, OW) → grad_in (N, C, H, W), all contiguous */
#define DEFINE_MAX_POOL_BACKWARD(T, NAME)                                                          \
    static void NAME(const bn_tview *go, const bn_tview *indices, const bn_tview *gi,              \
                     const bn_window_geom *g)                                                      \
    {                                                                                              \
        const T *god = go->data;                                                                   \
        const int64_t *id = indices->data;                                                         \
        T *gid = gi->data;                                                                         \
        int64_t planes = g->N * g->C, OHW = g->OH * g->OW, HW = g->H * g->W;                       \
        const bool par = planes * (OHW + HW) >= BN_PAR_MIN_ELEMS;                                  \
        _Pragma("omp parallel for schedule(static) if (par)")                                      \
        for (int64_t p = 0; p < planes; p++) {                                                     \
            T *gp = gid + p * HW;                                                                  \
            for (int64_t i = 0; i < HW; i++) gp[i] = 0;                                            \
            for (int64_t o = 0; o < OHW; o++) {                                                    \
                int64_t i = id[p * OHW + o];                                                       \
                if (i >= 0 && i < HW) gp[i] += god[p * OHW + o];                                   \
            }                                                                                      \
        }                                                                                          \
    }

DEFINE_MAX_POOL_BACKWARD(float, max_pool_backward_f32)
DEFINE_MAX_POOL_BACKWARD(double, max_pool_backward_f64)

bn_status bn_cpu_max_pool2d_backward(const bn_tview *grad_out, const bn_tview *indices,
                                     const bn_tview *grad_in, const bn_window_geom *g)
{
    switch (grad_in->dtype) {
    case BN_F32: max_pool_backward_f32(grad_out, indices, grad_in, g); return BN_OK;
    case BN_F64: max_pool_backward_f64(grad_out, indices, grad_in, g); return BN_OK;
    default: return unsupported("max_pool2d_backward", grad_in->dtype);
    }
}

/* ---- average pooling ------------------------------------------------------------------------ */
/* The window of output (oh, ow) clipped to the image, [h0, h1) x [w0, w1), and its divisor. */
static inline int64_t avg_window(const bn_window_geom *g, int64_t oh, int64_t ow, bool exclude,
                                 int64_t *h0, int64_t *h1, int64_t *w0, int64_t *w1)
{
    int64_t hs = oh * g->stride_h - g->pad_h, ws = ow * g->stride_w - g->pad_w;
    int64_t he = hs + g->KH, we = ws + g->KW;
    if (he > g->H + g->pad_h) he = g->H + g->pad_h;
    if (we > g->W + g->pad_w) we = g->W + g->pad_w;
    int64_t padded = (he - hs) * (we - ws);
    *h0 = hs < 0 ? 0 : hs, *w0 = ws < 0 ? 0 : ws;
    *h1 = he > g->H ? g->H : he, *w1 = we > g->W ? g->W : we;
    return exclude ? (*h1 - *h0) * (*w1 - *w0) : padded;
}

/* x (N, C, H, W) any strides → out (N, C, OH, OW) contiguous */
#define DEFINE_AVG_POOL(T, NAME)                                                                   \
    static void NAME(const bn_tview *x, const bn_tview *out, const bn_window_geom *g, bool ex)     \
    {                                                                                              \
        const T *xd = x->data;                                                                     \
        T *od = out->data;                                                                         \
        int64_t planes = g->N * g->C, OHW = g->OH * g->OW;                                         \
        const bool par = planes * OHW * g->KH * g->KW >= BN_PAR_MIN_ELEMS;                         \
        _Pragma("omp parallel for schedule(static) if (par)")                                      \
        for (int64_t p = 0; p < planes; p++) {                                                     \
            const T *xp = xd + at4(x->strides, p / g->C, p % g->C, 0, 0);                          \
            for (int64_t oh = 0; oh < g->OH; oh++)                                                 \
                for (int64_t ow = 0; ow < g->OW; ow++) {                                           \
                    int64_t h0, h1, w0, w1;                                                        \
                    int64_t div = avg_window(g, oh, ow, ex, &h0, &h1, &w0, &w1);                   \
                    T sum = 0;                                                                     \
                    for (int64_t h = h0; h < h1; h++)                                              \
                        for (int64_t w = w0; w < w1; w++)                                          \
                            sum += xp[h * x->strides[2] + w * x->strides[3]];                      \
                    od[p * OHW + oh * g->OW + ow] = h0 < h1 && w0 < w1 ? sum / (T)div : 0;         \
                }                                                                                  \
        }                                                                                          \
    }

DEFINE_AVG_POOL(float, avg_pool_f32)
DEFINE_AVG_POOL(double, avg_pool_f64)

bn_status bn_cpu_avg_pool2d(const bn_tview *x, const bn_tview *out, const bn_window_geom *g,
                            bool exclude_padding)
{
    switch (x->dtype) {
    case BN_F32: avg_pool_f32(x, out, g, exclude_padding); return BN_OK;
    case BN_F64: avg_pool_f64(x, out, g, exclude_padding); return BN_OK;
    default: return unsupported("avg_pool2d", x->dtype);
    }
}

/* grad_out (N, C, OH, OW) → grad_in (N, C, H, W), both contiguous */
#define DEFINE_AVG_POOL_BACKWARD(T, NAME)                                                          \
    static void NAME(const bn_tview *go, const bn_tview *gi, const bn_window_geom *g, bool ex)     \
    {                                                                                              \
        const T *god = go->data;                                                                   \
        T *gid = gi->data;                                                                         \
        int64_t planes = g->N * g->C, OHW = g->OH * g->OW, HW = g->H * g->W;                       \
        const bool par = planes * OHW * g->KH * g->KW >= BN_PAR_MIN_ELEMS;                         \
        _Pragma("omp parallel for schedule(static) if (par)")                                      \
        for (int64_t p = 0; p < planes; p++) {                                                     \
            T *gp = gid + p * HW;                                                                  \
            for (int64_t i = 0; i < HW; i++) gp[i] = 0;                                            \
            for (int64_t oh = 0; oh < g->OH; oh++)                                                 \
                for (int64_t ow = 0; ow < g->OW; ow++) {                                           \
                    int64_t h0, h1, w0, w1;                                                        \
                    int64_t div = avg_window(g, oh, ow, ex, &h0, &h1, &w0, &w1);                   \
                    if (h0 >= h1 || w0 >= w1) continue;                                            \
                    T share = god[p * OHW + oh * g->OW + ow] / (T)div;                             \
                    for (int64_t h = h0; h < h1; h++)                                              \
                        for (int64_t w = w0; w < w1; w++) gp[h * g->W + w] += share;               \
                }                                                                                  \
        }                                                                                          \
    }

DEFINE_AVG_POOL_BACKWARD(float, avg_pool_backward_f32)
DEFINE_AVG_POOL_BACKWARD(double, avg_pool_backward_f64)

bn_status bn_cpu_avg_pool2d_backward(const bn_tview *grad_out, const bn_tview *grad_in,
                                     const bn_window_geom *g, bool exclude_padding)
{
    switch (grad_in->dtype) {
    case BN_F32: avg_pool_backward_f32(grad_out, grad_in, g, exclude_padding); return BN_OK;
    case BN_F64: avg_pool_backward_f64(grad_out, grad_in, g, exclude_padding); return BN_OK;
    default: return unsupported("avg_pool2d_backward", grad_in->dtype);
    }
}

/* ---- adaptive average pooling --------------------------------------------------------------- */
/* Output i of `out` cells over `in` inputs covers [floor(i*in/out), ceil((i+1)*in/out)). */
static inline void adaptive_range(int64_t i, int64_t in, int64_t out, int64_t *b, int64_t *e)
{
    *b = (i * in) / out;
    *e = ((i + 1) * in + out - 1) / out;
}

/* x (N, C, H, W) any strides → out (N, C, OH, OW) contiguous */
#define DEFINE_ADAPTIVE(T, NAME)                                                                   \
    static void NAME(const bn_tview *x, const bn_tview *out, const bn_window_geom *g)              \
    {                                                                                              \
        const T *xd = x->data;                                                                     \
        T *od = out->data;                                                                         \
        int64_t planes = g->N * g->C, OHW = g->OH * g->OW;                                         \
        const bool par = planes * g->H * g->W >= BN_PAR_MIN_ELEMS;                                 \
        _Pragma("omp parallel for schedule(static) if (par)")                                      \
        for (int64_t p = 0; p < planes; p++) {                                                     \
            const T *xp = xd + at4(x->strides, p / g->C, p % g->C, 0, 0);                          \
            for (int64_t oh = 0; oh < g->OH; oh++) {                                               \
                int64_t h0, h1;                                                                    \
                adaptive_range(oh, g->H, g->OH, &h0, &h1);                                         \
                for (int64_t ow = 0; ow < g->OW; ow++) {                                           \
                    int64_t w0, w1;                                                                \
                    adaptive_range(ow, g->W, g->OW, &w0, &w1);                                     \
                    T sum = 0;                                                                     \
                    for (int64_t h = h0; h < h1; h++)                                              \
                        for (int64_t w = w0; w < w1; w++)                                          \
                            sum += xp[h * x->strides[2] + w * x->strides[3]];                      \
                    od[p * OHW + oh * g->OW + ow] = sum / (T)((h1 - h0) * (w1 - w0));              \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    }

DEFINE_ADAPTIVE(float, adaptive_f32)
DEFINE_ADAPTIVE(double, adaptive_f64)

bn_status bn_cpu_adaptive_avg_pool2d(const bn_tview *x, const bn_tview *out,
                                     const bn_window_geom *g)
{
    switch (x->dtype) {
    case BN_F32: adaptive_f32(x, out, g); return BN_OK;
    case BN_F64: adaptive_f64(x, out, g); return BN_OK;
    default: return unsupported("adaptive_avg_pool2d", x->dtype);
    }
}

/* grad_out (N, C, OH, OW) → grad_in (N, C, H, W), both contiguous */
#define DEFINE_ADAPTIVE_BACKWARD(T, NAME)                                                          \
    static void NAME(const bn_tview *go, const bn_tview *gi, const bn_window_geom *g)              \
    {                                                                                              \
        const T *god = go->data;                                                                   \
        T *gid = gi->data;                                                                         \
        int64_t planes = g->N * g->C, OHW = g->OH * g->OW, HW = g->H * g->W;                       \
        const bool par = planes * HW >= BN_PAR_MIN_ELEMS;                                          \
        _Pragma("omp parallel for schedule(static) if (par)")                                      \
        for (int64_t p = 0; p < planes; p++) {                                                     \
            T *gp = gid + p * HW;                                                                  \
            for (int64_t i = 0; i < HW; i++) gp[i] = 0;                                            \
            for (int64_t oh = 0; oh < g->OH; oh++) {                                               \
                int64_t h0, h1;                                                                    \
                adaptive_range(oh, g->H, g->OH, &h0, &h1);                                         \
                for (int64_t ow = 0; ow < g->OW; ow++) {                                           \
                    int64_t w0, w1;                                                                \
                    adaptive_range(ow, g->W, g->OW, &w0, &w1);                                     \
                    T share = god[p * OHW + oh * g->OW + ow] / (T)((h1 - h0) * (w1 - w0));         \
                    for (int64_t h = h0; h < h1; h++)                                              \
                        for (int64_t w = w0; w < w1; w++) gp[h * g->W + w] += share;               \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    }

DEFINE_ADAPTIVE_BACKWARD(float, adaptive_backward_f32)
DEFINE_ADAPTIVE_BACKWARD(double, adaptive_backward_f64)

bn_status bn_cpu_adaptive_avg_pool2d_backward(const bn_tview *grad_out, const bn_tview *grad_in,
                                              const bn_window_geom *g)
{
    switch (grad_in->dtype) {
    case BN_F32: adaptive_backward_f32(grad_out, grad_in, g); return BN_OK;
    case BN_F64: adaptive_backward_f64(grad_out, grad_in, g); return BN_OK;
    default: return unsupported("adaptive_avg_pool2d_backward", grad_in->dtype);
    }
}
