/* backend_cuda/cuda_attention_glue.c — the CUDA plugin's fused attention family (plain C): the
 * bn_backend_attn table that cuda_backend.c puts in its vtable's .attn, whose functions hand
 * their views and geometry to cuda_attention.cu's kernels on the current device's stream. The
 * backward's scratch (the D_i row terms, and per-query-head dk / dv partial sums for grouped
 * heads) comes from the caching allocator and goes back to it as soon as the kernels are
 * queued: the next user of the block runs after them in stream order. Nothing here waits for
 * the GPU; the contracts are backend_attn.h's. */
#include "backend_cuda/cuda_attention.h"
#include "backend_cuda/cuda_attention_tc.h"
#include "backend_cuda/cuda_plugin.h"
#include "backend_cuda/cuda_transformer.h"

#include <stddef.h>

_Static_assert(sizeof(bcu_attn_geom) == sizeof(bn_attn_geom),
               "bcu_attn_geom must mirror bn_attn_geom");
_Static_assert(offsetof(bcu_attn_geom, hq) == offsetof(bn_attn_geom, hq), "geom layout");
_Static_assert(offsetof(bcu_attn_geom, dv) == offsetof(bn_attn_geom, dv), "geom layout");
_Static_assert(offsetof(bcu_attn_geom, scale) == offsetof(bn_attn_geom, scale), "geom layout");
_Static_assert(offsetof(bcu_attn_geom, causal) == offsetof(bn_attn_geom, causal), "geom layout");
_Static_assert(offsetof(bcu_attn_geom, dropout_p) == offsetof(bn_attn_geom, dropout_p),
               "geom layout");
_Static_assert(offsetof(bcu_attn_geom, seed) == offsetof(bn_attn_geom, seed), "geom layout");
_Static_assert(offsetof(bcu_attn_geom, counter) == offsetof(bn_attn_geom, counter),
               "geom layout");

#define STREAM (bcu_current()->stream)
#define V(t) ((const bcu_view *)(const void *)(t))
#define VO(t) ((t) ? V(t) : NULL)
#define G(g) ((const bcu_attn_geom *)(const void *)(g))

static bn_status a_forward(const bn_tview *q, const bn_tview *k, const bn_tview *v,
                           const bn_tview *mask, const bn_tview *out, const bn_tview *lse,
                           const bn_attn_geom *g)
{
    if (q->dtype == BN_F16 || q->dtype == BN_BF16)
        return bcu_kernel_status(
            bcu_attn_tc_forward(STREAM, V(q), V(k), V(v), V(out), V(lse), G(g)), "attention");
    return bcu_kernel_status(
        bcu_attn_forward(STREAM, V(q), V(k), V(v), VO(mask), V(out), V(lse), G(g)), "attention");
}

static bool a_takes_low_precision(bn_dtype dt, const bn_attn_geom *g, bool has_mask)
{
    return bcu_attn_tc_supported((int)dt, G(g), has_mask) != 0;
}

static bn_status a_backward(const bn_tview *q, const bn_tview *k, const bn_tview *v,
                            const bn_tview *mask, const bn_tview *out, const bn_tview *dout,
                            const bn_tview *lse, const bn_tview *dq, const bn_tview *dk,
                            const bn_tview *dv, const bn_attn_geom *g)
{
    if (g->batch * g->hkv == 0) return BN_OK;
    bool tc = q->dtype == BN_F16 || q->dtype == BN_BF16;
    size_t nbytes = tc ? bcu_attn_tc_backward_scratch((int)q->dtype, G(g))
                       : bcu_attn_backward_scratch((int)q->dtype, G(g));
    void *scratch = NULL;
    if (nbytes > 0) {
        scratch = bcu_alloc(bcu_current(), nbytes);
        if (!scratch)
            return bcu_error(BN_ERR_OOM,
                             "cuda backend: attention backward: out of device memory for %zu "
                             "bytes of scratch",
                             nbytes);
    }
    int rc = tc ? bcu_attn_tc_backward(STREAM, V(q), V(k), V(v), V(out), V(dout), V(lse), V(dq),
                                       V(dk), V(dv), G(g), scratch, nbytes)
                : bcu_attn_backward(STREAM, V(q), V(k), V(v), VO(mask), V(out), V(dout), V(lse),
                                    V(dq), V(dk), V(dv), G(g), scratch, nbytes);
    if (scratch) bcu_free(bcu_current(), scratch);
    return bcu_kernel_status(rc, "attention backward");
}

const bn_backend_attn bcu_attn = {
    .forward = a_forward,
    .backward = a_backward,
    .takes_low_precision = a_takes_low_precision,
    .glu_forward = bcu_tf_glu_forward,
    .glu_backward = bcu_tf_glu_backward,
    .rope = bcu_tf_rope,
};
