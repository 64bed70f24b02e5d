/* autograd/grad_attention.h — the hook of the fused attention (ops/attention.c) that records
 * its derivative rule; the other transformer ops' hooks are in grad_transformer.h. Like grad.h's hooks, each
 * records a node on out when an input requires grad (and grad mode is on) and returns out, or
 * NULL after releasing out. */
#ifndef BORN_AUTOGRAD_GRAD_ATTENTION_H
#define BORN_AUTOGRAD_GRAD_ATTENTION_H

#include "autograd/autograd.h"
#include "backend/backend_attn.h"

/* Fused attention: q, k, v are the op's inputs; qc, kc, vc the compute-dtype kernel views
 * the kernel read (saved), mc the expanded mask view it read (or NULL), out the compute-dtype
 * output and lse (batch, hq, tq) what it wrote; g its geometry (with the dropout reservation,
 * which the backward replays). */
bn_tensor *bn__grad_attention(const bn_tensor *q, const bn_tensor *k, const bn_tensor *v,
                              const bn_tensor *qc, const bn_tensor *kc, const bn_tensor *vc,
                              const bn_tensor *mc, const bn_tensor *out_c, const bn_tensor *lse,
                              const bn_attn_geom *g, bn_tensor *out);

/* Packed attention (bn__attention_packed): qkv the op's input, qkv_c the compute-dtype tensor
 * the kernel read (last stride 1), out_c the compute-dtype (B, T, hq hd) output. The gradient
 * is one tensor of qkv's shape. */
bn_tensor *bn__grad_attention_packed(const bn_tensor *qkv, const bn_tensor *qkv_c,
                                     const bn_tensor *mc, const bn_tensor *out_c,
                                     const bn_tensor *lse, const bn_attn_geom *g, bn_tensor *out);

/* The 4-D (batch, h, t, e) kernel view of t (B..., h, t, e): true when its last stride is 1 (or
 * e is 1) and its leading dims merge into one batch dim; false (v untouched) otherwise. */
bool bn__attn_view4(const bn_tensor *t, bn_tview *v);

#endif
