/* backend_cuda/cuda_attention.h — the C interface of the CUDA fused attention kernels
 * (cuda_attention.cu) and the attention family's table built from them (cuda_attention_glue.c).
 * The entry points implement src/backend/backend_attn.h on `stream` for f32 and f64 (any other
 * dtype, or a head dim above BCU_ATTN_MAX_HEAD_DIM, is BN_ERR_UNSUPPORTED = 8 with a message in
 * bcu_last_message()). Shapes, mask views, the log-sum-exp and the dropout numbering are
 * backend_attn.h's; nothing here synchronises the host. */
#ifndef BORN_CUDA_ATTENTION_H
#define BORN_CUDA_ATTENTION_H

#include "backend_cuda/cuda_kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

#define BCU_ATTN_MAX_HEAD_DIM 256 /* D and Dv up to this */

/* Mirrors bn_attn_geom field for field (the glue checks this at compile time). */
typedef struct bcu_attn_geom {
    int64_t batch;
    int64_t hq, hkv, tq, tk, d, dv;
    double scale;
    bool causal;
    double dropout_p;
    uint64_t seed, counter;
} bcu_attn_geom;

/* q (batch, hq, tq, d), k (batch, hkv, tk, d), v (batch, hkv, tk, dv) → out (batch, hq, tq, dv)
 * and lse (batch, hq, tq, contiguous); mask NULL or (B..., hq, tq, tk) bool / compute dtype. */
int bcu_attn_forward(bcu_stream s, const bcu_view *q, const bcu_view *k, const bcu_view *v,
                     const bcu_view *mask, const bcu_view *out, const bcu_view *lse,
                     const bcu_attn_geom *g);

/* Scratch bytes bcu_attn_backward needs for this geometry and dtype (the per-row D_i terms and,
 * for grouped heads with few key blocks, per-query-head dk/dv partial sums). */
size_t bcu_attn_backward_scratch(int dtype, const bcu_attn_geom *g);

/* dq (batch, hq, tq, d), dk (batch, hkv, tk, d), dv (batch, hkv, tk, dv) overwritten; the other
 * arguments are what the forward saw and wrote; scratch holds bcu_attn_backward_scratch bytes. */
int bcu_attn_backward(bcu_stream s, const bcu_view *q, const bcu_view *k, const bcu_view *v,
                      const bcu_view *mask, const bcu_view *out, const bcu_view *dout,
                      const bcu_view *lse, const bcu_view *dq, const bcu_view *dk,
                      const bcu_view *dv, const bcu_attn_geom *g, void *scratch,
                      size_t scratch_bytes);

#ifdef __cplusplus
}
#endif

/* The attention family's table for cuda_backend.c (plain C only: it needs libborn's headers). */
#ifndef __CUDACC__
#include "backend/backend_attn.h"
extern const bn_backend_attn bcu_attn;
#endif

#endif
