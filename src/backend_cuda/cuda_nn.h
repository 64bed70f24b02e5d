/* backend_cuda/cuda_nn.h — the CUDA nn kernel family (backend_nn.h's contracts): layer / RMS /
 * group norm, batch norm, running statistics, the dropout mask and embedding, forward and
 * backward. The bcu_nn_* entry points live in cuda_nn.cu and take bcu_view (no libborn headers);
 * cuda_nn_glue.c turns them into the bn_backend_nn table `bcu_nn`, allocating the scratch
 * memory each entry point asks for through bcu_alloc (the .cu code never allocates).
 *
 * Every reduction here runs in a fixed order that depends only on the shapes (warp/block trees,
 * chunked partial sums added in chunk order; embedding_backward sorts the indices stably and adds
 * each row's gradients in index order), so results are the same on every run. Statistics are
 * accumulated in double, as on the CPU. */
#ifndef BORN_CUDA_NN_H
#define BORN_CUDA_NN_H

#include "backend_cuda/cuda_kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

/* backend_nn.h's bn_row_norm_geom, field for field */
typedef struct bcu_row_geom {
    int64_t rows, cols, groups, inner;
    bool rms;
} bcu_row_geom;

/* x, y (rows, cols) contiguous f32/f64; w, b (channels) or NULL; mean, rstd (rows) written */
int bcu_nn_row_norm(bcu_stream s, const bcu_view *x, const bcu_view *w, const bcu_view *b,
                    const bcu_view *y, const bcu_view *mean, const bcu_view *rstd,
                    const bcu_row_geom *g, double eps);
/* grad_x (rows, cols) = d loss / d x of row_norm; w (channels) or NULL */
int bcu_nn_row_norm_grad_x(bcu_stream s, const bcu_view *gy, const bcu_view *x,
                           const bcu_view *mean, const bcu_view *rstd, const bcu_view *w,
                           const bcu_view *gx, const bcu_row_geom *g);
/* grad_weight, grad_bias (channels), either NULL; scratch of bcu_nn_row_norm_affine_scratch */
size_t bcu_nn_row_norm_affine_scratch(const bcu_row_geom *g);
int bcu_nn_row_norm_grad_affine(bcu_stream s, const bcu_view *gy, const bcu_view *x,
                                const bcu_view *mean, const bcu_view *rstd, const bcu_view *gw,
                                const bcu_view *gb, const bcu_row_geom *g, void *scratch);
/* The whole backward of a layer / RMS norm (groups 1, inner 1) in one pass over x and gy: gx
 * (or NULL), gw and gb (either NULL). Taken when bcu_nn_row_norm_backward_fused_ok says 1: f32,
 * cols a multiple of 128 up to 1024, 16-byte aligned rows. scratch of
 * bcu_nn_row_norm_backward_fused_scratch bytes. */
int bcu_nn_row_norm_backward_fused_ok(const bcu_view *gy, const bcu_view *x, const bcu_view *w,
                                      const bcu_view *gx, const bcu_row_geom *g);
size_t bcu_nn_row_norm_backward_fused_scratch(const bcu_row_geom *g);
int bcu_nn_row_norm_backward_fused(bcu_stream s, const bcu_view *gy, const bcu_view *x,
                                   const bcu_view *mean, const bcu_view *rstd, const bcu_view *w,
                                   const bcu_view *gx, const bcu_view *gw, const bcu_view *gb,
                                   const bcu_row_geom *g, void *scratch);

/* batch norm on x (N, C, S) contiguous f32/f64; scratch of bcu_nn_batch_norm_scratch */
size_t bcu_nn_batch_norm_scratch(int64_t N, int64_t C, int64_t S);
int bcu_nn_batch_norm_stats(bcu_stream s, const bcu_view *x, const bcu_view *mean,
                            const bcu_view *var, void *scratch);
int bcu_nn_batch_norm_apply(bcu_stream s, const bcu_view *x, const bcu_view *mean,
                            const bcu_view *var, const bcu_view *w, const bcu_view *b,
                            const bcu_view *y, double eps, void *scratch);
int bcu_nn_batch_norm_backward(bcu_stream s, const bcu_view *gy, const bcu_view *x,
                               const bcu_view *mean, const bcu_view *var, const bcu_view *w,
                               const bcu_view *gx, const bcu_view *gw, const bcu_view *gb,
                               double eps, bool training, void *scratch);
/* running_* (C) any float dtype and stride, updated in place; mean, var (C) f32/f64 */
int bcu_nn_running_stats_update(bcu_stream s, const bcu_view *running_mean,
                                const bcu_view *running_var, const bcu_view *mean,
                                const bcu_view *var, double momentum, double unbias);

/* mask (n elements, contiguous, any float dtype) = keep where the Philox draw u >= p, else 0 */
int bcu_nn_dropout_mask(bcu_stream s, const bcu_view *mask, double p, double keep, uint64_t seed,
                        uint64_t counter);

/* out (M, dim) contiguous = weight[indices]; weight any dtype and strides; indices (M) i32/i64.
 * The smallest m whose index is outside [0, num) is written to *bad (device memory, which the
 * caller set to all ones bits); such rows are left unwritten. */
int bcu_nn_embedding(bcu_stream s, const bcu_view *weight, const bcu_view *indices,
                     const bcu_view *out, unsigned long long *bad);
/* grad_weight (num, dim) contiguous = the scatter-add of grad_out's (M, dim) rows, each row
 * summed in index order; indices already range-checked. */
size_t bcu_nn_embedding_backward_scratch(int64_t M, int64_t num);
int bcu_nn_embedding_backward(bcu_stream s, const bcu_view *grad_out, const bcu_view *indices,
                              const bcu_view *grad_weight, void *scratch, size_t scratch_bytes);

#ifdef __cplusplus
}
#endif

#ifndef __CUDACC__
#include "backend/backend_nn.h"
/* the bn_backend_nn table of the plugin (cuda_nn_glue.c); cuda_backend.c sets .nn = &bcu_nn */
extern const bn_backend_nn bcu_nn;
#endif

#endif
