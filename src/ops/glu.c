/* ops/glu.c — gated feed-forward activations (transformer.h): x (..., 2F) split into
 * a = x[..., :F] and b = x[..., F:], result act(a) * b (..., F).
 *   fused:    the backend's glu_forward (backend_attn.h) in one pass, and its glu_backward
 *             writing dA and dB in one pass (autograd/grad_transformer.c);
 *   composed: narrow, the activation and mul, differentiated by autograd, for backends without
 *             the kernels. For f32 and f64 the two give the same bits (backend/cpu/transformer.c
 *             says how); f16/bf16 are rounded once by the fused kernel, after every op by the
 *             composed one. */
#include "autograd/grad_transformer.h"
#include "born/transformer.h"

static bn_tensor *glu_act(const bn_tensor *a, bn_glu_kind kind)
{
    switch (kind) {
    case BN_GLU_SWIGLU: return bn_silu(a);
    case BN_GLU_GEGLU: return bn_gelu(a);
    case BN_GLU_GEGLU_TANH: return bn_gelu_tanh(a);
    case BN_GLU_REGLU: return bn_relu(a);
    case BN_GLU_SIGMOID: return bn_sigmoid(a);
    }
    return NULL;
}

static bn_tensor *glu_composed(const bn_tensor *x, bn_glu_kind kind)
{
    int last = x->ndim - 1;
    int64_t F = x->shape[last] / 2;
    bn__scope_suspend();
    bn_scope_begin();
    bn_tensor *out = bn_mul(glu_act(bn_narrow(x, last, 0, F), kind), bn_narrow(x, last, F, F));
    if (out) bn_retain(out);
    bn_scope_end();
    bn__scope_resume();
    return out;
}

/* x's rows (..., 2F) through the backend's kernel: x is read as a contiguous (rows, 2F). */
static bn_tensor *glu_fused(const bn_backend *be, const bn_tensor *x, bn_glu_kind kind)
{
    int last = x->ndim - 1;
    int64_t F2 = x->shape[last], rows = F2 ? bn__numel(x) / F2 : 0;
    int64_t shape[BN_MAX_DIMS];
    for (int d = 0; d < x->ndim; d++) shape[d] = x->shape[d];
    shape[last] = F2 / 2;
    bn_tensor *xc = bn__contiguous(x);
    bn_tensor *out = xc ? bn__empty(shape, x->ndim, x->dtype, x->storage->device) : NULL;
    if (!out) {
        bn_release(xc);
        return NULL;
    }
    if (rows > 0 && F2 > 0) {
        bn_tview xv = bn__tview(xc), ov = bn__tview(out);
        xv.ndim = ov.ndim = 2;
        xv.shape[0] = ov.shape[0] = rows;
        xv.shape[1] = F2, ov.shape[1] = F2 / 2;
        xv.strides[0] = F2, ov.strides[0] = F2 / 2;
        xv.strides[1] = ov.strides[1] = 1;
        if (be->attn->glu_forward((int)kind, &xv, &ov) != BN_OK) {
            bn_release(xc);
            bn_release(out);
            return NULL;
        }
    }
    out = bn__grad_glu(x, xc, (int)kind, out);
    bn_release(xc);
    return out;
}

bn_tensor *bn_gated_activation(const bn_tensor *x, bn_glu_kind kind)
{
    const char *fn = "bn_gated_activation";
    BN_CHECK_NULL(fn, x);
    if (!bn_dtype_is_float(x->dtype))
        return bn__error_null(BN_ERR_DTYPE, "%s: x must have a float dtype, not %s", fn,
                              bn_dtype_name(x->dtype));
    if ((unsigned)kind > BN_GLU_SIGMOID)
        return bn__error_null(BN_ERR_ARG, "%s: kind %d is not a bn_glu_kind", fn, (int)kind);
    if (x->ndim < 1 || x->shape[x->ndim - 1] % 2 != 0)
        return bn__error_null(BN_ERR_SHAPE,
                              "%s: the last dim of x %s must be even (a and b halves of 2F)", fn,
                              bn__tshape(x));
    const bn_backend *be = bn__backend(fn, x->storage->device);
    if (!be) return NULL;
    bool fused = be->attn && be->attn->glu_forward && be->attn->glu_backward;
    return bn__out(fused ? glu_fused(be, x, kind) : glu_composed(x, kind));
}
