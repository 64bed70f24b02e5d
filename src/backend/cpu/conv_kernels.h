/* backend/cpu/conv_kernels.h — the CPU pooling kernels (pool.c) that conv.c puts in the conv
 * family's table; each one's contract is its slot's in backend_conv.h. */
#ifndef BORN_CPU_CONV_KERNELS_H
#define BORN_CPU_CONV_KERNELS_H

#include "backend/backend_conv.h"

bn_status bn_cpu_max_pool2d(const bn_tview *x, const bn_tview *out, const bn_tview *indices,
                            const bn_window_geom *g);
bn_status bn_cpu_max_pool2d_backward(const bn_tview *grad_out, const bn_tview *indices,
                                     const bn_tview *grad_in, const bn_window_geom *g);
bn_status bn_cpu_avg_pool2d(const bn_tview *x, const bn_tview *out, const bn_window_geom *g,
                            bool exclude_padding);
bn_status bn_cpu_avg_pool2d_backward(const bn_tview *grad_out, const bn_tview *grad_in,
                                     const bn_window_geom *g, bool exclude_padding);
bn_status bn_cpu_adaptive_avg_pool2d(const bn_tview *x, const bn_tview *out,
                                     const bn_window_geom *g);
bn_status bn_cpu_adaptive_avg_pool2d_backward(const bn_tview *grad_out, const bn_tview *grad_in,
                                              const bn_window_geom *g);

#endif
