/* autograd/grad_transformer.h — the fused transformer ops' derivative rules
 * (grad_transformer.c) and what the rules share with their forwards in ops/: the gated
 * activation (ops/glu.c), rotary embeddings (ops/positional.c) and the chunked classifier +
 * cross-entropy (ops/linear_ce.c). Like grad.h's hooks, each bn__grad_* records a node on out
 * when an input requires grad (and grad mode is on) and returns out, or NULL after releasing
 * out. */
#ifndef BORN_AUTOGRAD_GRAD_TRANSFORMER_H
#define BORN_AUTOGRAD_GRAD_TRANSFORMER_H

#include "autograd/autograd.h"
#include "backend/backend_attn.h"

/* ---- gated activation ---------------------------------------------------------------------- */
/* x is the op's input, xc the contiguous copy of it the backend's glu_forward read (saved);
 * kind a bn_glu_kind. The rule runs the backend's glu_backward, or (create_graph, or a backend
 * without it) the derivative composed of public ops, which records its own graph. */
bn_tensor *bn__grad_glu(const bn_tensor *x, const bn_tensor *xc, int kind, bn_tensor *out);

/* ---- rotary embeddings --------------------------------------------------------------------- */
/* ops/positional.c: x (..., T, D) of a float dtype through the backend's rope kernel with the
 * cos/sin tables (rows, T, rd / 2) in the compute dtype on x's device (rows 1, or x's dim 0 for
 * (B, T) positions); records the rule (rotation by the opposite angle, through this same
 * function, so create_graph differentiates it again). A new reference, not registered with a
 * scope; NULL with the error set on failure. */
bn_tensor *bn__rope_apply(const bn_tensor *x, const bn_tensor *cos, const bn_tensor *sin,
                          bn_rope_geom g);
bn_tensor *bn__grad_rope(const bn_tensor *x, const bn_tensor *cos, const bn_tensor *sin,
                         bn_rope_geom g, bn_tensor *out);

/* ---- classifier + cross-entropy ------------------------------------------------------------- */
/* The problem both passes solve: x (N, D), w (V, D), b (V) or NULL in the compute dtype cdt
 * (f64 for f64 inputs, else f32); target (N) i64 with ignored rows replaced by class 0; valid
 * (N) bool (NULL: no ignore_index); the mean's divisor (the number of counted rows). */
typedef struct bn_lce_problem {
    int64_t n, d, v;
    double smoothing;
    int reduction;  /* bn_reduction */
    double counted; /* rows not ignored (without ignore_index: n; with it the divisor is summed
                     * from valid on the device, and this is only n) */
} bn_lce_problem;

/* Rows per chunk: about BN_LCE_CHUNK_BYTES of logits on the CPU (a few MB, so the chunk stays
 * in the last-level cache between the GEMM and the softmax), BN_LCE_GPU_CHUNK_BYTES on a GPU,
 * where bigger GEMMs pay and every chunk's weight gradient (V, D) is widened and added to the
 * sum in f32 (GPT-2's classifier at 8 x 1024 tokens: 2 chunks, not 25, whose 23 extra passes
 * over the (50304, 768) sum cost more than the products); never fewer than 16 rows (a GEMM of
 * fewer rows wastes the packed panels). */
#define BN_LCE_CHUNK_BYTES ((int64_t)4 << 20)
#define BN_LCE_GPU_CHUNK_BYTES ((int64_t)1 << 30)
static inline int64_t bn__lce_chunk_rows(const bn_lce_problem *p, size_t es, bn_device dev)
{
    int64_t budget = dev.type == BN_DEVICE_CPU ? BN_LCE_CHUNK_BYTES : BN_LCE_GPU_CHUNK_BYTES;
    int64_t per_row = p->v * (int64_t)es;
    int64_t r = per_row > 0 ? budget / per_row : p->n;
    if (r < 16) r = 16;
    return r < p->n ? r : (p->n > 0 ? p->n : 1);
}

/* A reduced loss's forward may keep d loss / d logits for a unit upstream gradient, all N rows
 * of it, when they fit in this many bytes (GPT-2's classifier at 8 x 1024 tokens: 824 MB in
 * bf16 on a GPU); the backward then scales its products by the upstream gradient instead of
 * recomputing the logits. */
#define BN_LCE_STASH_BYTES ((int64_t)256 << 20)
#define BN_LCE_GPU_STASH_BYTES ((int64_t)2 << 30)

/* x, w, b: the op's inputs; xc, wc, bc, target, valid: the problem's tensors (saved), lse (N)
 * each row's log-sum-exp of its logits (saved); dz: NULL, or the (N, V) d loss / d logits for an
 * upstream gradient of 1 in the products' dtype (kept by the node). */
bn_tensor *bn__grad_linear_ce(const bn_tensor *x, const bn_tensor *w, const bn_tensor *b,
                              const bn_tensor *xc, const bn_tensor *wc, const bn_tensor *bc,
                              const bn_tensor *target, const bn_tensor *valid,
                              const bn_tensor *lse, const bn_tensor *dz, const bn_lce_problem *p,
                              bn_tensor *out);

#endif
