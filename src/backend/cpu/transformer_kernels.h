/* backend/cpu/transformer_kernels.h — the CPU's fused element-wise transformer kernels
 * (transformer.c): gated activations forward and backward, rotary embeddings. They fill the
 * optional entries of bn_cpu_attn (attention.c); contracts in backend_attn.h. */
#ifndef BORN_CPU_TRANSFORMER_KERNELS_H
#define BORN_CPU_TRANSFORMER_KERNELS_H

#include "backend/backend_attn.h"

bn_status bn_cpu_glu_forward(int kind, const bn_tview *x, const bn_tview *out);
bn_status bn_cpu_glu_backward(int kind, const bn_tview *x, const bn_tview *dout,
                              const bn_tview *dx);
bn_status bn_cpu_rope(const bn_tview *x, const bn_tview *cos, const bn_tview *sin,
                      const bn_tview *out, const bn_rope_geom *g);

#endif
