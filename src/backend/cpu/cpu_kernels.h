/* backend/cpu/cpu_kernels.h — the CPU backend's kernel entry points, one per slot of bn_backend
 * (see backend.h for each one's contract). Each family lives in its own file. */
#ifndef BORN_CPU_KERNELS_H
#define BORN_CPU_KERNELS_H

#include "backend/backend.h"

/* copy.c */
bn_status bn_cpu_copy(const bn_tview *src, const bn_tview *dst);
bn_status bn_cpu_fill(const bn_tview *dst, double v);
bn_status bn_cpu_sequence(bn_sequence_op op, const bn_tview *dst, double start, double step,
                          double end);
bn_status bn_cpu_random(bn_random_op op, const bn_tview *dst, uint64_t seed, uint64_t counter,
                        double a, double b);
/* elementwise.c */
bn_status bn_cpu_unary(bn_unary_op op, const bn_tview *x, const bn_tview *out,
                       const bn_unary_params *p);
bn_status bn_cpu_binary(bn_binary_op op, const bn_tview *a, const bn_tview *b, const bn_tview *out);
bn_status bn_cpu_where(const bn_tview *cond, const bn_tview *a, const bn_tview *b,
                       const bn_tview *out);
/* reduce.c */
bn_status bn_cpu_reduce(bn_reduce_op op, const bn_tview *x, const bn_tview *out,
                        uint32_t reduce_mask, const bn_reduce_params *p);
bn_status bn_cpu_cumsum(const bn_tview *x, const bn_tview *out, int dim);
bn_status bn_cpu_softmax(const bn_tview *x, const bn_tview *out, int dim, bool log);
/* matmul.c */
bn_status bn_cpu_matmul(const bn_tview *a, const bn_tview *b, const bn_tview *out);
/* index.c */
bn_status bn_cpu_index_select(const bn_tview *x, int dim, const bn_tview *index,
                              const bn_tview *out);
bn_status bn_cpu_gather(const bn_tview *x, int dim, const bn_tview *index, const bn_tview *out);
bn_status bn_cpu_scatter(bn_scatter_op op, const bn_tview *out, int dim, const bn_tview *index,
                         const bn_tview *src);
bn_status bn_cpu_sort(const bn_tview *x, int dim, bool descending, const bn_tview *values,
                      const bn_tview *indices);
bn_status bn_cpu_topk(const bn_tview *x, int64_t k, int dim, bool largest, const bn_tview *values,
                      const bn_tview *indices);
bn_status bn_cpu_tri(const bn_tview *x, const bn_tview *out, int64_t diagonal, bool upper);
/* conv.c / pool.c: the conv family's table (backend_conv.h) */
extern const struct bn_backend_conv bn_cpu_conv;
/* nn.c: the norm/dropout/embedding family's table (backend_nn.h) */
extern const struct bn_backend_nn bn_cpu_nn;
extern const struct bn_backend_optim bn_cpu_optim; /* optim.c (backend_optim.h) */
extern const struct bn_backend_attn bn_cpu_attn; /* attention.c (backend_attn.h) */

#endif
