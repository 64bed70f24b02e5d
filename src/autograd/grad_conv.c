/* autograd/grad_conv.c — derivative rules for convolutions and pooling, recorded by ops/conv.c
 * and ops/pool.c through the hooks below.
 *
 * The rules call the ops-level products of grad_conv.h (im2col/col2im + GEMM, and the pooling
 * backward kernels) rather than differentiable public ops, so they give first derivatives only:
 * a backward with create_graph that reaches one of them fails with BN_ERR_UNSUPPORTED naming the
 * node, instead of silently returning a gradient without a graph. */
#include "autograd/grad_conv.h"

#include "born/ops.h"

static bn_status no_second_derivative(const bn_node *n)
{
    return bn__error(BN_ERR_UNSUPPORTED,
                     "%s: create_graph (a second derivative) through convolution and pooling is "
                     "not supported",
                     n->name);
}

/* r (a new unregistered reference, or NULL) reshaped to input i's shape and registered with
 * the rule's scope. */
static bn_tensor *as_input(const bn_node *n, int i, bn_tensor *r)
{
    if (!r) return NULL;
    bn_tensor *v = bn__reshape(r, n->in_shape[i].dims, n->in_shape[i].ndim);
    bn_release(r);
    return bn__out(v);
}

/* ---- convolutions ----------------------------------------------------------------------------
 * saved: 0 = x (for the weight's gradient), 1 = w (for x's); ctx = the bn_conv_plan.
 *   conv2d            dx = input_grad(g, w)   dw = weight_grad(g, x)   db = sum of g but channels
 *   conv_transpose2d  dx = forward(g, w)      dw = weight_grad(x, g)   (the image is the output) */
static bn_status conv_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    const bn_conv_plan *p = n->ctx;
    if (bn_grad_enabled()) return no_second_derivative(n);
    bool dx = bn__node_needs(n, 0), dw = bn__node_needs(n, 1);
    bn_tensor *x = dw ? bn__node_saved(n, 0) : NULL, *w = dx ? bn__node_saved(n, 1) : NULL;
    if ((dw && !x) || (dx && !w)) return bn_error_code();
    bn_tensor *g4 = bn__conv_as_4d(g, p);
    if (!g4) return bn_error_code();
    if (dx) {
        int64_t ws[4] = {w->shape[0], w->shape[1], p->g.KH, p->g.KW};
        bn_tensor *w4 = bn__reshape(w, ws, 4), *r = NULL;
        if (w4)
            r = p->transpose ? bn__conv_forward_4d(n->name, g4, w4, NULL, p)
                             : bn__conv_input_grad_4d(n->name, g4, w4, NULL, p);
        bn_release(w4);
        grads[0] = as_input(n, 0, r);
    }
    if (dw) {
        bn_tensor *x4 = bn__conv_as_4d(x, p), *r = NULL;
        if (x4)
            r = p->transpose ? bn__conv_weight_grad_4d(n->name, x4, g4, p)
                             : bn__conv_weight_grad_4d(n->name, g4, x4, p);
        bn_release(x4);
        grads[1] = as_input(n, 1, r);
    }
    bn_release(g4);
    if (bn__node_needs(n, 2)) {
        /* the spatial dims first (contiguous runs: a fast reduction that splits over threads),
         * then the batch: on 2 threads 0.22 ms instead of 0.37 for the CNN's (64, 32, 26, 26) */
        int dims[BN_MAX_DIMS], nd = 0, channel = p->batched ? 1 : 0;
        for (int d = channel + 1; d < g->ndim; d++) dims[nd++] = d;
        bn_tensor *s = bn_sum_dims(g, dims, nd, false);
        int batch[1] = {0};
        grads[2] = s && p->batched ? bn_sum_dims(s, batch, 1, false) : s;
    }
    return bn_error_code();
}

bn_tensor *bn__grad_conv(const bn_tensor *x, const bn_tensor *w, const bn_tensor *b,
                         const bn_conv_plan *p, bn_tensor *out)
{
    const bn_tensor *in[3] = {x, w, b};
    if (!out || !bn__grad_needed(in, 3)) return out;
    const char *name = p->transpose ? "ConvTranspose2dBackward"
                       : p->one_d   ? "Conv1dBackward"
                                    : "Conv2dBackward";
    bn_node *n = bn__grad_record(out, name, conv_backward, in, 3);
    bn_conv_plan *ctx = n ? bn__node_ctx_alloc(n, sizeof *ctx) : NULL;
    if (!ctx) {
        bn_release(out);
        return NULL;
    }
    *ctx = *p;
    if (bn__node_needs(n, 1)) bn__node_save(n, 0, x);
    if (bn__node_needs(n, 0)) bn__node_save(n, 1, w);
    return out;
}

/* ---- pooling -----------------------------------------------------------------------------------
 * ctx = the 4-D window geometry (plus exclude_padding for average pooling); max pooling saves the
 * argmax indices in slot 0. */
typedef struct pool_ctx {
    bn_window_geom g;
    bool exclude_padding;
    int kind; /* 0 max, 1 avg, 2 adaptive */
} pool_ctx;

static bn_status pool_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    const pool_ctx *c = n->ctx;
    if (bn_grad_enabled()) return no_second_derivative(n);
    int64_t s[4] = {c->g.N, c->g.C, c->g.OH, c->g.OW};
    bn_tensor *g4 = bn__reshape(g, s, 4), *r = NULL;
    if (!g4) return bn_error_code();
    if (c->kind == 0) {
        bn_tensor *idx = bn__node_saved(n, 0);
        if (idx) r = bn__max_pool2d_backward_4d(g4, idx, &c->g);
    } else if (c->kind == 1) {
        r = bn__avg_pool2d_backward_4d(g4, &c->g, c->exclude_padding);
    } else {
        r = bn__adaptive_avg_pool2d_backward_4d(g4, &c->g);
    }
    bn_release(g4);
    grads[0] = as_input(n, 0, r);
    return bn_error_code();
}

static bn_tensor *record_pool(const char *name, int kind, const bn_tensor *x,
                              const bn_tensor *indices, const bn_window_geom *g, bool exclude,
                              bn_tensor *out)
{
    if (!out || !bn__grad_needed1(x)) return out;
    const bn_tensor *in[1] = {x};
    bn_node *n = bn__grad_record(out, name, pool_backward, in, 1);
    pool_ctx *c = n ? bn__node_ctx_alloc(n, sizeof *c) : NULL;
    if (!c) {
        bn_release(out);
        return NULL;
    }
    c->g = *g, c->exclude_padding = exclude, c->kind = kind;
    if (indices) bn__node_save(n, 0, indices);
    return out;
}

bn_tensor *bn__grad_max_pool2d(const bn_tensor *x, const bn_tensor *indices,
                               const bn_window_geom *g, bn_tensor *out)
{
    return record_pool("MaxPool2dBackward", 0, x, indices, g, false, out);
}

bn_tensor *bn__grad_avg_pool2d(const bn_tensor *x, const bn_window_geom *g, bool exclude_padding,
                               bn_tensor *out)
{
    return record_pool("AvgPool2dBackward", 1, x, NULL, g, exclude_padding, out);
}

bn_tensor *bn__grad_adaptive_avg_pool2d(const bn_tensor *x, const bn_window_geom *g,
                                        bn_tensor *out)
{
    return record_pool("AdaptiveAvgPool2dBackward", 2, x, NULL, g, false, out);
}
