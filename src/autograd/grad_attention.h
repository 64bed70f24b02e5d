/* autograd/grad_attention.h — the hook of the fused attention (ops/attention.c) that records
 * its derivative rule; the other transformer ops' hooks are in grad_transformer.h. Like grad.h's hooks, each
 * records a node on out when an input requires grad (and grad mode is on) and returns out, or
 * NULL after releasing out. */
#ifndef BORN_AUTOGRAD_GRAD_ATTENTION_H
#define BORN_AUTOGRAD_GRAD_ATTENTION_H

#include "autograd/autograd.h"
#include "backend/backend_attn.h"

/* Fused attention: q, k, v are the op's inputs; qc, kc, vc the contiguous compute-dtype copies
 * the kernel read (saved), mc the expanded mask view it read (or NULL), out the compute-dtype
 * output and lse (batch, hq, tq) what it wrote; g its geometry (with the dropout reservation,
 * which the backward replays). */
bn_tensor *bn__grad_attention(const bn_tensor *q, const bn_tensor *k, const bn_tensor *v,
                              const bn_tensor *qc, const bn_tensor *kc, const bn_tensor *vc,
                              const bn_tensor *mc, const bn_tensor *out_c, const bn_tensor *lse,
                              const bn_attn_geom *g, bn_tensor *out);

#endif
