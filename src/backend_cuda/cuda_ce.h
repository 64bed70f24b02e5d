/* backend_cuda/cuda_ce.h — the cross-entropy row kernels on the GPU (backend_nn.h's
 * ce_rows_forward / ce_rows_backward; the CPU reference is backend/cpu/ce_rows.c), in
 * cuda_ce.cu. cuda_nn_glue.c puts them in the plugin's bn_backend_nn table.
 *
 * z (R, V) has last stride 1 and any row stride, dtype f32, f64, f16 or bf16; its compute dtype
 * C is f64 for f64 and f32 otherwise. target (R) i64, any stride, indices in [0, V) (a row whose
 * index is not gets NaN for zt and no one-hot term: never a read out of bounds). The (R) vectors
 * are contiguous of dtype C. A team of threads (a warp when V <= 1024, a block otherwise) walks
 * one row with 16-byte loads when the rows allow them; its sums meet in a fixed tree, so results
 * are the same on every run (no atomics). Nothing here allocates. */
#ifndef BORN_CUDA_CE_H
#define BORN_CUDA_CE_H

#include "backend_cuda/cuda_kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

/* lse_r = log sum_c exp(z_rc) (one pass: a running max and rescaled sum per thread), zt_r =
 * z_{r, t_r}, zsum_r = sum_c z_rc (accumulated in double; zsum may be NULL). */
int bcu_ce_rows_forward(bcu_stream s, const bcu_view *z, const bcu_view *target,
                        const bcu_view *lse, const bcu_view *zt, const bcu_view *zsum);
/* dz (R, V) contiguous, z's dtype or C: dz_rc = (exp(z_rc - lse_r) - smoothing / V
 * - (1 - smoothing) [c == t_r]) * gr_r in C, rounded once; lse, gr (R) of dtype C. */
int bcu_ce_rows_backward(bcu_stream s, const bcu_view *z, const bcu_view *target,
                         const bcu_view *lse, const bcu_view *gr, double smoothing,
                         const bcu_view *dz);
/* Both at once (backend_nn.h's ce_rows_fused): the statistics as bcu_ce_rows_forward writes
 * them and dz (in z's dtype) as bcu_ce_rows_backward would from that lse, reading each row of z
 * from memory once (rows of up to 110 KB are kept in shared memory between the passes). */
int bcu_ce_rows_fused(bcu_stream s, const bcu_view *z, const bcu_view *target,
                      const bcu_view *lse, const bcu_view *zt, const bcu_view *zsum,
                      const bcu_view *gr, double smoothing, const bcu_view *dz);

#ifdef __cplusplus
}
#endif

#endif
