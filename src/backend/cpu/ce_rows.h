/* backend/cpu/ce_rows.h — the CPU entry points of the cross-entropy row kernels (backend_nn.h's
 * ce_rows_forward / ce_rows_backward, in ce_rows.c); nn.c puts them in bn_cpu_nn. */
#ifndef BORN_CPU_CE_ROWS_H
#define BORN_CPU_CE_ROWS_H

#include "backend/backend_nn.h"

bn_status bn_cpu_ce_rows_forward(const bn_tview *z, const bn_tview *target, const bn_tview *lse,
                                 const bn_tview *zt, const bn_tview *zsum);
bn_status bn_cpu_ce_rows_backward(const bn_tview *z, const bn_tview *target, const bn_tview *lse,
                                  const bn_tview *gr, double smoothing, const bn_tview *dz);

#endif
