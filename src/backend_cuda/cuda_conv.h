/* backend_cuda/cuda_conv.h — the C interface of the CUDA convolution and pooling kernels
 * (cuda_conv.cu) and the conv family's table built from them (cuda_conv_glue.c). Each entry point
 * implements its slot of src/backend/backend_conv.h on `stream`, f32 and f64 only, and returns 0
 * or a bn_status value (BN_ERR_UNSUPPORTED = 8 for another dtype) with a message in
 * bcu_last_message(). No entry point needs scratch memory or synchronises the host. */
#ifndef BORN_CUDA_CONV_H
#define BORN_CUDA_CONV_H

#include "backend_cuda/cuda_kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Mirrors bn_window_geom field for field (the glue checks this at compile time). */
typedef struct bcu_window_geom {
    int64_t N, C, H, W;
    int64_t KH, KW;
    int64_t OH, OW;
    int64_t stride_h, stride_w;
    int64_t pad_h, pad_w;
    int64_t dil_h, dil_w;
} bcu_window_geom;

/* x (N, C, H, W) any strides → cols (N, C*KH*KW, OH*OW) any strides */
int bcu_im2col(bcu_stream s, const bcu_view *x, const bcu_view *cols, const bcu_window_geom *g);
/* cols (N, C*KH*KW, OH*OW) any strides → x (N, C, H, W) contiguous, overwritten with the sums */
int bcu_col2im(bcu_stream s, const bcu_view *cols, const bcu_view *x, const bcu_window_geom *g);
/* x (N, C, H, W) any strides → out, indices (N, C, OH, OW) contiguous; indices->data may be NULL */
int bcu_max_pool2d(bcu_stream s, const bcu_view *x, const bcu_view *out, const bcu_view *indices,
                   const bcu_window_geom *g);
/* grad_out, indices (N, C, OH, OW) → grad_in (N, C, H, W), all contiguous; the indices are the
 * ones bcu_max_pool2d (or the CPU kernel) wrote for the same geometry */
int bcu_max_pool2d_backward(bcu_stream s, const bcu_view *grad_out, const bcu_view *indices,
                            const bcu_view *grad_in, const bcu_window_geom *g);
/* x (N, C, H, W) any strides → out (N, C, OH, OW) contiguous */
int bcu_avg_pool2d(bcu_stream s, const bcu_view *x, const bcu_view *out, const bcu_window_geom *g,
                   bool exclude_padding);
/* grad_out (N, C, OH, OW) → grad_in (N, C, H, W), both contiguous */
int bcu_avg_pool2d_backward(bcu_stream s, const bcu_view *grad_out, const bcu_view *grad_in,
                            const bcu_window_geom *g, bool exclude_padding);
/* x (N, C, H, W) any strides → out (N, C, OH, OW) contiguous */
int bcu_adaptive_avg_pool2d(bcu_stream s, const bcu_view *x, const bcu_view *out,
                            const bcu_window_geom *g);
/* grad_out (N, C, OH, OW) → grad_in (N, C, H, W), both contiguous */
int bcu_adaptive_avg_pool2d_backward(bcu_stream s, const bcu_view *grad_out,
                                     const bcu_view *grad_in, const bcu_window_geom *g);

#ifdef __cplusplus
}
#endif

/* The conv family's table for cuda_backend.c (plain C only: it needs libborn's headers). */
#ifndef __CUDACC__
#include "backend/backend_conv.h"
extern const bn_backend_conv bcu_conv;
#endif

#endif
