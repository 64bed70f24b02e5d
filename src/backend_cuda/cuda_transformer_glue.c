/* backend_cuda/cuda_transformer_glue.c — the CUDA plugin's fused element-wise transformer kernels
 * (plain C): the gated-activation and rotary-embedding entries of the bn_backend_attn table
 * (cuda_attention_glue.c's bcu_attn), which hand their views to cuda_transformer.cu's kernels
 * on the current device's stream. No scratch, no host synchronisation; the contracts are
 * backend_attn.h's. */
#include "backend_cuda/cuda_transformer.h"
#include "backend_cuda/cuda_plugin.h"
#include "born/transformer.h"

#include <stddef.h>

_Static_assert(sizeof(bcu_rope_geom) == sizeof(bn_rope_geom),
               "bcu_rope_geom must mirror bn_rope_geom");
_Static_assert(offsetof(bcu_rope_geom, rd) == offsetof(bn_rope_geom, rd), "geom layout");
_Static_assert(offsetof(bcu_rope_geom, interleaved) == offsetof(bn_rope_geom, interleaved),
               "geom layout");
_Static_assert(offsetof(bcu_rope_geom, inverse) == offsetof(bn_rope_geom, inverse),
               "geom layout");

#define STREAM (bcu_current()->stream)
#define V(t) ((const bcu_view *)(const void *)(t))

static bn_status check_kind(const char *fn, int kind)
{
    if (kind < (int)BN_GLU_SWIGLU || kind > (int)BN_GLU_SIGMOID)
        return bcu_error(BN_ERR_ARG, "cuda backend: %s: kind %d is not a bn_glu_kind", fn, kind);
    return BN_OK;
}

bn_status bcu_tf_glu_forward(int kind, const bn_tview *x, const bn_tview *out)
{
    bn_status st = check_kind("glu_forward", kind);
    if (st != BN_OK) return st;
    return bcu_kernel_status(bcu_glu_forward(STREAM, kind, V(x), V(out)), "glu_forward");
}

bn_status bcu_tf_glu_backward(int kind, const bn_tview *x, const bn_tview *dout,
                              const bn_tview *dx)
{
    bn_status st = check_kind("glu_backward", kind);
    if (st != BN_OK) return st;
    return bcu_kernel_status(bcu_glu_backward(STREAM, kind, V(x), V(dout), V(dx)),
                             "glu_backward");
}

bn_status bcu_tf_rope(const bn_tview *x, const bn_tview *cos, const bn_tview *sin,
                      const bn_tview *out, const bn_rope_geom *g)
{
    return bcu_kernel_status(bcu_rope(STREAM, V(x), V(cos), V(sin), V(out),
                                      (const bcu_rope_geom *)(const void *)g),
                             "rope");
}
