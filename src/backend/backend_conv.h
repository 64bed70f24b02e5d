/* backend/backend_conv.h — the convolution and pooling kernel family.
 *
 * Convolutions are lowered by ops/conv.c to im2col / col2im plus the backend's matmul slot, so
 * this table holds only the data movement around the GEMM and the pooling kernels. Every slot
 * works on f32 and f64 (ops/ converts f16 and bf16 to f32 and rounds the result once) and returns
 * BN_ERR_UNSUPPORTED for any other dtype. */
#ifndef BORN_BACKEND_CONV_H
#define BORN_BACKEND_CONV_H

#include "backend/backend.h"

/* The geometry of one 2-D sliding window, shared by convolutions and pools:
 * an image (N, C, H, W) is read by a KH x KW window with the given stride, zero (or -inf)
 * padding and dilation, which gives OH x OW window positions. */
typedef struct bn_window_geom {
    int64_t N, C, H, W;
    int64_t KH, KW;
    int64_t OH, OW;
    int64_t stride_h, stride_w;
    int64_t pad_h, pad_w;
    int64_t dil_h, dil_w;
} bn_window_geom;

typedef struct bn_backend_conv {
    /* ---- convolution data movement ---- */
    /* x is (N, C, H, W), cols is (N, C*KH*KW, OH*OW); both may have any strides. Row
     * (c*KH + kh)*KW + kw of cols holds x[n, c, oh*sh - ph + kh*dh, ow*sw - pw + kw*dw] for every
     * window position (oh, ow), and 0 where that falls in the padding. */
    bn_status (*im2col)(const bn_tview *x, const bn_tview *cols, const bn_window_geom *g);
    /* The adjoint of im2col: cols is (N, C*KH*KW, OH*OW), any strides; x is (N, C, H, W)
     * contiguous and is overwritten with, for each pixel, the sum of the cols entries im2col
     * would have copied from it (entries from the padding are dropped). */
    bn_status (*col2im)(const bn_tview *cols, const bn_tview *x, const bn_window_geom *g);

    /* ---- pooling ---- */
    /* x is (N, C, H, W), any strides; out (N, C, OH, OW) and indices (N, C, OH, OW, i64) are
     * contiguous. out = the window's maximum (NaN wins, padding never does), indices = its flat
     * position h*W + w in the plane, like torch. indices->data NULL: no indices are wanted (no
     * backward will need them) and only out is written. */
    bn_status (*max_pool2d)(const bn_tview *x, const bn_tview *out, const bn_tview *indices,
                            const bn_window_geom *g);
    /* grad_out and indices (N, C, OH, OW) contiguous; grad_in (N, C, H, W) contiguous is
     * overwritten: grad_in[plane][indices[o]] += grad_out[o]. */
    bn_status (*max_pool2d_backward)(const bn_tview *grad_out, const bn_tview *indices,
                                     const bn_tview *grad_in, const bn_window_geom *g);
    /* x (N, C, H, W) any strides; out (N, C, OH, OW) contiguous = the window's mean. The divisor
     * counts the padding (clipped to the padded image, like torch's count_include_pad=True)
     * unless exclude_padding, where it counts only the pixels inside the image. */
    bn_status (*avg_pool2d)(const bn_tview *x, const bn_tview *out, const bn_window_geom *g,
                            bool exclude_padding);
    /* grad_out (N, C, OH, OW) contiguous; grad_in (N, C, H, W) contiguous is overwritten with the
     * adjoint of avg_pool2d. */
    bn_status (*avg_pool2d_backward)(const bn_tview *grad_out, const bn_tview *grad_in,
                                     const bn_window_geom *g, bool exclude_padding);
    /* x (N, C, H, W) any strides; out (N, C, OH, OW) contiguous. Window i along H covers
     * [floor(i*H/OH), ceil((i+1)*H/OH)), likewise along W. g's window fields are unused. */
    bn_status (*adaptive_avg_pool2d)(const bn_tview *x, const bn_tview *out,
                                     const bn_window_geom *g);
    /* grad_out (N, C, OH, OW) contiguous; grad_in (N, C, H, W) contiguous is overwritten. */
    bn_status (*adaptive_avg_pool2d_backward)(const bn_tview *grad_out, const bn_tview *grad_in,
                                              const bn_window_geom *g);
} bn_backend_conv;

#endif
