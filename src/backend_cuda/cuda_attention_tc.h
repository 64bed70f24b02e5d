/* backend_cuda/cuda_attention_tc.h — the C interface of the tensor-core flash attention kernels
 * (cuda_attention_tc.cu): bf16 / f16 inputs, f32 accumulation, mma.sync m16n8k16. This is the
 * low-precision fast path beside cuda_attention.cu's f32 / f64 kernels, with the same semantics
 * (src/backend/backend_attn.h): query head h reads kv head h / (hq / hkv), the causal rule is
 * aligned bottom-right (key j is visible to query i iff j <= i + (tk - tq)), lse is the natural
 * log-sum-exp of the scaled scores (-inf for a row that sees no key, whose output row and
 * gradients are 0), and dropout keeps weight (b, h, i, j) exactly when the f32 kernel does
 * (Philox draw e = ((b hq + h) tq + i) tk + j). Nothing here synchronises the host.
 *
 * What differs from the f32 path:
 *  - the products run on bf16 / f16 operands (the softmax weights P and the score gradients dS are
 *    rounded to the input dtype before their products), so results match an f32 reference on the
 *    same inputs to about 1e-2 relative, not 1e-5;
 *  - dq is summed in an f32 scratch by atomicAdd from the blocks of every key tile, so its
 *    summation order — hence its last bits — can change from run to run (like PyTorch's flash
 *    backward). out, lse, dk and dv are deterministic; the f32 path stays deterministic. */
#ifndef BORN_CUDA_ATTENTION_TC_H
#define BORN_CUDA_ATTENTION_TC_H

#include "backend_cuda/cuda_attention.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 1 when the tensor-core kernels handle this problem: dtype bf16 or f16 (bn_dtype codes), no
 * mask (causal is fine), d == dv with d 64 or 128, hkv >= 1 dividing hq, 0 <= dropout_p < 1, and a
 * current device of compute capability 8.0 or newer; 0 otherwise (use bcu_attn_forward /
 * bcu_attn_backward on f32 then). Any batch, head counts, tq and tk (ragged tails, tq != tk) and
 * any view strides with the last stride 1 are handled (16-byte aligned rows take the fast copy
 * path, others a slower element-wise one). */
int bcu_attn_tc_supported(int dtype, const bcu_attn_geom *g, int has_mask);

/* q (batch, hq, tq, d), k and v (batch, hkv, tk, d), out (batch, hq, tq, d): 4-D views of one
 * dtype (bf16 or f16) whose last stride is 1; lse (batch, hq, tq) f32 contiguous. Writes out and
 * lse. BN_ERR_UNSUPPORTED (8) with a message when bcu_attn_tc_supported would say 0. */
int bcu_attn_tc_forward(bcu_stream s, const bcu_view *q, const bcu_view *k, const bcu_view *v,
                        const bcu_view *out, const bcu_view *lse, const bcu_attn_geom *g);

/* Device scratch bytes bcu_attn_tc_backward needs: the f32 row terms D_i = dO_i . O_i
 * (batch hq tq) and the f32 dq accumulator (batch hq tq d), each 256-byte aligned. */
size_t bcu_attn_tc_backward_scratch(int dtype, const bcu_attn_geom *g);

/* dq (batch, hq, tq, d), dk and dv (batch, hkv, tk, d) overwritten, in the input dtype (views
 * whose last stride is 1; contiguous is what the glue passes); q, k, v, out, lse and g are what
 * the forward saw and wrote, dout (batch, hq, tq, d) last stride 1; scratch holds
 * bcu_attn_tc_backward_scratch bytes of device memory (256-byte aligned). */
int bcu_attn_tc_backward(bcu_stream s, const bcu_view *q, const bcu_view *k, const bcu_view *v,
                         const bcu_view *out, const bcu_view *dout, const bcu_view *lse,
                         const bcu_view *dq, const bcu_view *dk, const bcu_view *dv,
                         const bcu_attn_geom *g, void *scratch, size_t scratch_bytes);

/* Benchmarking only (bench/gpu/attn_tc_check.cu): forces the tile variant of later calls in this
 * process at d 64 (d 128 has one) — fwd_tiles 1 or 2 (16-row tiles per warp: 64- or 128-row
 * forward blocks), bwd_warps 4 or 8 (64- or 128-key backward blocks); 0 restores the default
 * (2 when tq > 64; 8 when batch hkv ceil(tk / 128) fills the SMs). Dropout always runs 1 / 4.
 * Not thread-safe. */
void bcu_attn_tc_set_variant(int fwd_tiles, int bwd_warps);

#ifdef __cplusplus
}
#endif

#endif
