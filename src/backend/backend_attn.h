/* backend/backend_attn.h — the fused attention kernel family (issue 7).
 *
 * One table per backend, so a CUDA flash-attention kernel fills the same entries as the CPU's
 * online-softmax kernel (cpu/attention.c). ops/attention.c validates, flattens the leading dims
 * B... into one batch dim, converts f16/bf16 to f32 and calls these; autograd/grad_attention.c
 * calls the backward entry with what the forward saved. No entry keeps a (Tq, Tk) matrix: the
 * forward writes the output and one log-sum-exp per query row, the backward recomputes the
 * weights block by block from that log-sum-exp.
 *
 * The table's optional tail holds the fused element-wise kernels of the other transformer ops
 * (gated activations, rotary embeddings); NULL entries make ops/ compose those from generic
 * kernels, so a backend that lacks them still runs every op. */
#ifndef BORN_BACKEND_ATTN_H
#define BORN_BACKEND_ATTN_H

#include "backend/backend.h"

/* The problem: batch * hq query heads of tq rows; query head h reads kv head h / (hq / hkv).
 * Score (i, j) = scale * q_i . k_j (+ mask), the weights are its softmax over j, and with
 * dropout_p > 0 weight (b, h, i, j) is dropped (else multiplied by 1 / (1 - p)) by Philox draw
 * e = ((b * hq + h) * tq + i) * tk + j: word e % 4 of block counter + e / 4 of seed, u in [0, 1)
 * from its top 24 bits, dropped when u < p — exactly bn_dropout's mask of the flattened
 * (B..., hq, tq, tk) weights (backend_nn.h dropout_mask). */
typedef struct bn_attn_geom {
    int64_t batch; /* product of the leading dims B... (1 when there are none) */
    int64_t hq, hkv, tq, tk, d, dv;
    double scale;
    bool causal; /* key j is visible to query i only when j <= i + (tk - tq) */
    double dropout_p; /* 0: no dropout */
    uint64_t seed, counter; /* the reservation of ceil(batch * hq * tq * tk / 4) Philox blocks */
} bn_attn_geom;

/* Rotary embedding: x (nb, nh, T, D) with last stride 1 (other strides free), out the same
 * shape, contiguous, one dtype (f32, f64, f16, bf16); cos and sin (rows, T, rd / 2) contiguous in
 * the compute dtype (f64 for f64, else f32), rows 1 (every nb reads row 0) or nb (one row of
 * positions per nb). Pair i of a row — (i, i + rd/2), or (2i, 2i + 1) when interleaved — at
 * position t becomes (a c - b s, a s + b c) with c = cos[t, i], s = sin[t, i] (s negated when
 * inverse: the rotation by -angle, which is the backward); dims rd..D pass through. f16/bf16 are
 * computed in f32 and rounded once. */
typedef struct bn_rope_geom {
    int64_t rd;       /* rotated dims (even, <= D) */
    bool interleaved; /* pairs (2i, 2i + 1) instead of (i, i + rd / 2) */
    bool inverse;     /* rotate by -angle */
} bn_rope_geom;

/* Tensors (dtype f32 or f64, one for all — or f16/bf16 where takes_low_precision says so, with lse
 * f32; other dtypes are BN_ERR_UNSUPPORTED):
 *   q (batch, hq, tq, d), k (batch, hkv, tk, d), v (batch, hkv, tk, dv), out, dout, dq... :
 *   4-D views whose last stride is 1 (other strides free);
 *   mask: NULL, or a view of ndim L + 3 whose leading L dims multiply to batch, shaped
 *   (B..., hq, tq, tk) with 0 strides where it broadcasts; bool (true = may attend) or the
 *   compute dtype (added to the scores; -inf = may not attend);
 *   lse (batch, hq, tq) contiguous, the compute dtype: log sum_j exp(score_ij) over the visible
 *   keys, -inf for a row that sees none (its output row and gradients are 0). */
typedef struct bn_backend_attn {
    /* out = dropout(softmax(scale q k^T + mask)) v, and lse. */
    bn_status (*forward)(const bn_tview *q, const bn_tview *k, const bn_tview *v,
                         const bn_tview *mask, const bn_tview *out, const bn_tview *lse,
                         const bn_attn_geom *g);
    /* dq (batch, hq, tq, d), dk (batch, hkv, tk, d), dv (batch, hkv, tk, dv) are overwritten
     * (contiguous); q, k, v, mask, out, lse and g are what the forward saw and wrote. */
    bn_status (*backward)(const bn_tview *q, const bn_tview *k, const bn_tview *v,
                          const bn_tview *mask, const bn_tview *out, const bn_tview *dout,
                          const bn_tview *lse, const bn_tview *dq, const bn_tview *dk,
                          const bn_tview *dv, const bn_attn_geom *g);

    /* (optional) true when forward and backward take this problem in dt itself (f16 or bf16:
     * q, k, v, out, dout, dq, dk, dv in dt, lse f32, products on tensor cores with f32
     * accumulation; results within ~1e-2 of the f32 path, dq's last bits may vary run to run);
     * NULL or false: ops/attention.c converts to f32 first. Asked with the problem's geometry and
     * whether it has a mask. */
    bool (*takes_low_precision)(bn_dtype dt, const bn_attn_geom *g, bool has_mask);

    /* ---- the fused element-wise transformer kernels (backend/cpu/transformer.c) ---------- */
    /* (optional) out = act(a) * b with a = x[:, :F], b = x[:, F:], act by kind (bn_glu_kind),
     * in one pass: x (rows, 2F) whose last stride is 1, out (rows, F) contiguous, one dtype for
     * both (f32, f64, f16 or bf16; f16/bf16 computed in f32, rounded once). NULL: ops/glu.c
     * composes the activation and the product. */
    bn_status (*glu_forward)(int kind, const bn_tview *x, const bn_tview *out);
    /* (optional) dx[:, :F] = dout * b * act'(a) and dx[:, F:] = dout * act(a), in one pass:
     * x as above, dout (rows, F) whose last stride is 1, dx (rows, 2F) contiguous, one dtype.
     * Present whenever glu_forward is. */
    bn_status (*glu_backward)(int kind, const bn_tview *x, const bn_tview *dout,
                              const bn_tview *dx);
    /* (optional) rotary embedding (bn_rope_geom above): NULL means ops/positional.c composes
     * it. */
    bn_status (*rope)(const bn_tview *x, const bn_tview *cos, const bn_tview *sin,
                      const bn_tview *out, const bn_rope_geom *g);
} bn_backend_attn;

#endif
