/* backend_cuda/cuda_conv_glue.c — the CUDA plugin's convolution and pooling family (plain C):
 * the bn_backend_conv table that cuda_backend.c puts in its vtable's .conv, whose functions hand
 * their views and geometry to cuda_conv.cu's kernels on the current device's stream. Nothing
 * here allocates or waits for the GPU; the contracts are backend_conv.h's. */
#include "backend_cuda/cuda_conv.h"
#include "backend_cuda/cuda_plugin.h"

#include <stddef.h>

_Static_assert(sizeof(bcu_window_geom) == sizeof(bn_window_geom),
               "bcu_window_geom must mirror bn_window_geom");
_Static_assert(offsetof(bcu_window_geom, KH) == offsetof(bn_window_geom, KH), "geom layout");
_Static_assert(offsetof(bcu_window_geom, OH) == offsetof(bn_window_geom, OH), "geom layout");
_Static_assert(offsetof(bcu_window_geom, stride_h) == offsetof(bn_window_geom, stride_h),
               "geom layout");
_Static_assert(offsetof(bcu_window_geom, pad_h) == offsetof(bn_window_geom, pad_h),
               "geom layout");
_Static_assert(offsetof(bcu_window_geom, dil_w) == offsetof(bn_window_geom, dil_w),
               "geom layout");

#define STREAM (bcu_current()->stream)
#define V(t) ((const bcu_view *)(const void *)(t))
#define G(g) ((const bcu_window_geom *)(const void *)(g))

static bn_status c_im2col(const bn_tview *x, const bn_tview *cols, const bn_window_geom *g)
{
    return bcu_kernel_status(bcu_im2col(STREAM, V(x), V(cols), G(g)), "im2col");
}

static bn_status c_col2im(const bn_tview *cols, const bn_tview *x, const bn_window_geom *g)
{
    return bcu_kernel_status(bcu_col2im(STREAM, V(cols), V(x), G(g)), "col2im");
}

static bn_status c_max_pool2d(const bn_tview *x, const bn_tview *out, const bn_tview *indices,
                              const bn_window_geom *g)
{
    return bcu_kernel_status(bcu_max_pool2d(STREAM, V(x), V(out), V(indices), G(g)),
                             "max_pool2d");
}

static bn_status c_max_pool2d_backward(const bn_tview *grad_out, const bn_tview *indices,
                                       const bn_tview *grad_in, const bn_window_geom *g)
{
    return bcu_kernel_status(
        bcu_max_pool2d_backward(STREAM, V(grad_out), V(indices), V(grad_in), G(g)),
        "max_pool2d_backward");
}

static bn_status c_avg_pool2d(const bn_tview *x, const bn_tview *out, const bn_window_geom *g,
                              bool exclude_padding)
{
    return bcu_kernel_status(bcu_avg_pool2d(STREAM, V(x), V(out), G(g), exclude_padding),
                             "avg_pool2d");
}

static bn_status c_avg_pool2d_backward(const bn_tview *grad_out, const bn_tview *grad_in,
                                       const bn_window_geom *g, bool exclude_padding)
{
    return bcu_kernel_status(
        bcu_avg_pool2d_backward(STREAM, V(grad_out), V(grad_in), G(g), exclude_padding),
        "avg_pool2d_backward");
}

static bn_status c_adaptive_avg_pool2d(const bn_tview *x, const bn_tview *out,
                                       const bn_window_geom *g)
{
    return bcu_kernel_status(bcu_adaptive_avg_pool2d(STREAM, V(x), V(out), G(g)),
                             "adaptive_avg_pool2d");
}

static bn_status c_adaptive_avg_pool2d_backward(const bn_tview *grad_out, const bn_tview *grad_in,
                                                const bn_window_geom *g)
{
    return bcu_kernel_status(
        bcu_adaptive_avg_pool2d_backward(STREAM, V(grad_out), V(grad_in), G(g)),
        "adaptive_avg_pool2d_backward");
}

const bn_backend_conv bcu_conv = {
    .im2col = c_im2col,
    .col2im = c_col2im,
    .max_pool2d = c_max_pool2d,
    .max_pool2d_backward = c_max_pool2d_backward,
    .avg_pool2d = c_avg_pool2d,
    .avg_pool2d_backward = c_avg_pool2d_backward,
    .adaptive_avg_pool2d = c_adaptive_avg_pool2d,
    .adaptive_avg_pool2d_backward = c_adaptive_avg_pool2d_backward,
};
