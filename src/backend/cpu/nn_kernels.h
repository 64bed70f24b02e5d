/* backend/cpu/nn_kernels.h — the CPU entry points of the nn kernel family (backend_nn.h has each
 * slot's contract); nn.c gathers them into bn_cpu_nn. */
#ifndef BORN_CPU_NN_KERNELS_H
#define BORN_CPU_NN_KERNELS_H

#include "backend/backend_nn.h"

/* norm.c */
bn_status bn_cpu_row_norm(const bn_tview *x, const bn_tview *weight, const bn_tview *bias,
                          const bn_tview *y, const bn_tview *mean, const bn_tview *rstd,
                          const bn_row_norm_geom *g, double eps);
bn_status bn_cpu_row_norm_backward(const bn_tview *grad_y, const bn_tview *x, const bn_tview *mean,
                                   const bn_tview *rstd, const bn_tview *weight,
                                   const bn_tview *grad_x, const bn_tview *grad_weight,
                                   const bn_tview *grad_bias, const bn_row_norm_geom *g);
bn_status bn_cpu_batch_norm_stats(const bn_tview *x, const bn_tview *mean, const bn_tview *var);
bn_status bn_cpu_batch_norm_apply(const bn_tview *x, const bn_tview *mean, const bn_tview *var,
                                  const bn_tview *weight, const bn_tview *bias, const bn_tview *y,
                                  double eps);
bn_status bn_cpu_batch_norm_backward(const bn_tview *grad_y, const bn_tview *x,
                                     const bn_tview *mean, const bn_tview *var,
                                     const bn_tview *weight, const bn_tview *grad_x,
                                     const bn_tview *grad_weight, const bn_tview *grad_bias,
                                     double eps, bool training);
bn_status bn_cpu_running_stats_update(const bn_tview *running_mean, const bn_tview *running_var,
                                      const bn_tview *mean, const bn_tview *var, double momentum,
                                      double unbias);

#endif
