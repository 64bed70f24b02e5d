/* born/transformer.h — the functional building blocks of transformers: scaled dot-product
 * attention (multi-head, grouped-query, multi-query; causal or masked; dropout; a fused,
 * memory-efficient kernel with online softmax and O(T) extra memory, forward and backward),
 * rotary / ALiBi / sinusoidal position encodings, gated feed-forward activations and a fused
 * classifier + cross-entropy. Every function here is differentiable (autograd.h) and works on
 * any device whose backend has the kernels; the results equal PyTorch's (see each comment).
 * Modules and the GPT model built from these live in gpt.h. */
#ifndef BORN_TRANSFORMER_H
#define BORN_TRANSFORMER_H

#include "born/ops.h"
#include "born/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- attention ------------------------------------------------------------------------------- */
/* Options of bn_attention; a zeroed struct means: no mask, not causal, no dropout, scale
 * 1/sqrt(D), the fused kernel where the backend has one. */
typedef struct bn_attention_opts {
    /* NULL, or a bool mask (true = may attend) or a float mask (added to the scores, -inf =
     * may not attend), broadcastable to (B..., Hq, Tq, Tk). */
    const bn_tensor *mask;
    /* Query i may attend key j only when j <= i + (Tk - Tq): the causal mask aligned to the
     * bottom-right corner, so a query block at the end of a KV cache (Tq < Tk) sees the whole
     * past. Equal to PyTorch's is_causal=True when Tq == Tk. May be combined with mask. */
    bool causal;
    double dropout_p; /* probability of dropping an attention weight (training only; [0, 1)) */
    bool training;    /* dropout applies only when true */
    double scale;     /* 0: 1/sqrt(D) */
    /* BN_ATTN_AUTO picks the fused kernel when the backend has one for the inputs; the two
     * others force a path (tests compare them). */
    enum { BN_ATTN_AUTO = 0, BN_ATTN_FUSED, BN_ATTN_REFERENCE } impl;
} bn_attention_opts;

/* softmax(q k^T * scale + mask) v with dropout on the weights.
 * q (B..., Hq, Tq, D), k (B..., Hkv, Tk, D), v (B..., Hkv, Tk, Dv), any float dtype (one for
 * all three), same leading dims B... (0 or more); Hq must be a multiple of Hkv (Hkv == Hq:
 * multi-head; 1 < Hkv < Hq: grouped-query, query head h reads kv head h / (Hq / Hkv); Hkv == 1:
 * multi-query). Result (B..., Hq, Tq, Dv). A query row that may attend no key gives zeros (its
 * gradient is zero), where PyTorch gives NaN. f16/bf16 inputs accumulate in f32. */
BN_API bn_tensor *bn_attention(const bn_tensor *q, const bn_tensor *k, const bn_tensor *v,
                               const bn_attention_opts *opts);

/* ---- position encodings ----------------------------------------------------------------------- */
typedef enum bn_rope_scaling {
    BN_ROPE_SCALING_NONE = 0,
    BN_ROPE_SCALING_LINEAR, /* positions divided by factor (position interpolation) */
    BN_ROPE_SCALING_NTK,    /* base multiplied by factor^(rotary_dim / (rotary_dim - 2)) */
    BN_ROPE_SCALING_LLAMA3  /* LLaMA 3.1's per-frequency rule (factor, low/high_freq_factor,
                               original_max_positions) */
} bn_rope_scaling;

/* A zeroed struct means LLaMA's defaults: base 10000, every dim rotated, half-split pairs
 * (i, i + d/2) like Hugging Face / GPT-NeoX, positions 0, 1, ... */
typedef struct bn_rope_opts {
    double base;            /* 0: 10000 */
    int64_t rotary_dim;     /* dims rotated (even, <= D); 0: D; the rest pass through */
    bool interleaved;       /* pairs (2i, 2i+1) like Meta's LLaMA / GPT-J instead of half-split */
    int64_t offset;         /* position of row 0 (the KV cache length when decoding) */
    const bn_tensor *positions; /* NULL, or i64/i32 positions (T) or (B, T) replacing offset + t */
    bn_rope_scaling scaling;
    double factor;          /* scaling factor (> 0 when scaling is set) */
    double low_freq_factor, high_freq_factor; /* LLAMA3 (0: 1 and 4) */
    int64_t original_max_positions;           /* LLAMA3 (0: 8192) */
} bn_rope_opts;

/* Rotary position embedding of x (..., T, D) — rows along dim -2 are positions, dim -1 the
 * features: pair (a, b) at position p and frequency f_i = base^(-2i / rotary_dim) becomes
 * (a cos(p f_i) - b sin(p f_i), a sin(p f_i) + b cos(p f_i)). Angles are computed in f64. */
BN_API bn_tensor *bn_rope(const bn_tensor *x, const bn_rope_opts *opts);
/* The inverse frequencies f_i (rotary_dim / 2) after scaling, f32 on the CPU. */
BN_API bn_tensor *bn_rope_frequencies(int64_t head_dim, const bn_rope_opts *opts);

/* ALiBi's per-head slopes (heads) as f32 on the CPU: for a power of two n, 2^(-8 i / n),
 * i = 1..n; otherwise the closest power of two's slopes then every other one of twice that
 * (the paper's and BLOOM's rule). */
BN_API bn_tensor *bn_alibi_slopes(int64_t heads);
/* The additive ALiBi bias (heads, Tq, Tk) of dtype dt on device d: slope_h * (j - i - (Tk - Tq))
 * for key j and query i (0 on the aligned diagonal, negative into the past; causal masking is
 * bn_attention's job). Pass it as bn_attention_opts.mask. */
BN_API bn_tensor *bn_alibi_bias(int64_t heads, int64_t tq, int64_t tk, bn_dtype dt, bn_device d);
/* The sinusoidal table (T, D) of "Attention Is All You Need": row p is
 * [sin(p w_0), cos(p w_0), sin(p w_1), cos(p w_1), ...] with w_i = base^(-2i / D), interleaved;
 * base 0 means 10000. D must be even. */
BN_API bn_tensor *bn_sinusoidal_positions(int64_t positions, int64_t dim, double base, bn_dtype dt,
                                          bn_device d);

/* ---- gated feed-forward activations -------------------------------------------------------- */
typedef enum bn_glu_kind {
    BN_GLU_SWIGLU = 0, /* silu(a) * b */
    BN_GLU_GEGLU,      /* gelu(a) * b (erf form) */
    BN_GLU_GEGLU_TANH, /* gelu(a, tanh approximation) * b */
    BN_GLU_REGLU,      /* relu(a) * b */
    BN_GLU_SIGMOID     /* sigmoid(a) * b (the original GLU) */
} bn_glu_kind;
/* x (..., 2F) split into a = x[..., :F] and b = x[..., F:] → act(a) * b (..., F), one fused
 * pass forward and backward. */
BN_API bn_tensor *bn_gated_activation(const bn_tensor *x, bn_glu_kind kind);

/* ---- fused classifier + cross-entropy ------------------------------------------------------- */
/* cross_entropy(x @ w^T + b, target) computed in row chunks so that the full (N, V) logits are
 * never held for the backward pass (only one chunk at a time; the backward recomputes them):
 * x (N, D), w (V, D), b (V) or NULL, target (N) i64 or i32 class indices. Honours
 * o.reduction (mean / sum / none), o.ignore_index and o.label_smoothing like bn_cross_entropy
 * (o.weight must be NULL). Gradients flow to x, w and b. On the CPU f16/bf16 inputs are
 * computed in f32 (the loss in their dtype). On a GPU f16/bf16 inputs — and under autocast any
 * float inputs, cast to the region's dtype like bn_linear — keep their dtype for the three
 * products (tensor cores, f32 accumulation), the softmax statistics are f32 and the loss is f32.
 * The backward recomputes each chunk's logits; second derivatives (create_graph) fail with
 * BN_ERR_UNSUPPORTED. */
BN_API bn_tensor *bn_linear_cross_entropy(const bn_tensor *x, const bn_tensor *w,
                                          const bn_tensor *b, const bn_tensor *target,
                                          bn_ce_opts o);

#ifdef __cplusplus
}
#endif
#endif
