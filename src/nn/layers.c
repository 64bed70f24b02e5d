/* nn/layers.c — the stateless-shape layers as modules: Linear, Conv1d/Conv2d/ConvTranspose2d,
 * pooling, Dropout, Embedding, Flatten, Identity. Each checks its input's shape (so a mistake
 * names the module and both shapes) and forwards through the functional op of ops.h.
 * Norm layers: nn/layers_norm.c; activations and containers: nn/layers_act.c; RNNs: nn/rnn.c. */
#include "nn/nn_internal.h"

#include <stdio.h>

/* ---- Linear ------------------------------------------------------------------------------------ */

typedef struct linear {
    bn_module base;
    int64_t in, out;
} linear;

/* x (..., in), weight (out, in), bias (out) → (..., out) */
static bn_tensor *linear_forward(bn_module *m, const bn_tensor *x)
{
    linear *l = (linear *)m;
    if (x->ndim < 1 || x->shape[x->ndim - 1] != l->in)
        return bn__module_shape_error(m, "input is %s, expected [..., %lld]", bn__tshape(x),
                                      (long long)l->in);
    return bn_linear(x, bn__module_tensor(m, "weight"), bn__module_tensor(m, "bias"));
}

static void linear_repr(const bn_module *m, char *buf, size_t n)
{
    const linear *l = (const linear *)m;
    snprintf(buf, n, "in_features=%lld, out_features=%lld, bias=%s", (long long)l->in,
             (long long)l->out, bn__module_tensor(m, "bias") ? "True" : "False");
}

static const bn_module_vtable linear_vt = {"Linear", linear_forward, NULL, linear_repr};

bn_module *bn_nn_linear(int64_t in_features, int64_t out_features, bool bias)
{
    if (in_features < 0 || out_features < 0)
        return bn__error_null(BN_ERR_ARG, "bn_nn_linear: in_features %lld and out_features %lld "
                              "must be >= 0", (long long)in_features, (long long)out_features);
    linear *l = (linear *)bn_module_alloc(sizeof(linear), &linear_vt);
    if (!l) return NULL;
    l->in = in_features;
    l->out = out_features;
    bn_tensor *w = bn__module_new_param(&l->base, "weight", BN_SHAPE(out_features, in_features));
    bn_tensor *b = bias ? bn__module_new_param(&l->base, "bias", BN_SHAPE(out_features)) : NULL;
    if (!w || (bias && !b) || bn__init_fan_in_uniform(w, b) != BN_OK) {
        bn_module_free(&l->base);
        return NULL;
    }
    return &l->base;
}

/* ---- convolutions ------------------------------------------------------------------------------ */

typedef enum conv_kind { CONV_1D, CONV_2D, CONV_TRANSPOSE_2D } conv_kind;

typedef struct conv {
    bn_module base;
    conv_kind kind;
    int64_t cin, cout, kernel;
    bn_conv_opts o;
} conv;

static int conv_spatial_dims(conv_kind k) { return k == CONV_1D ? 1 : 2; }

/* x (N, C, L) / (N, C, H, W), or the same without N; C = in_channels. */
static bn_tensor *conv_forward(bn_module *m, const bn_tensor *x)
{
    conv *c = (conv *)m;
    int sd = conv_spatial_dims(c->kind);
    bool unbatched = x->ndim == sd + 1;
    if ((x->ndim != sd + 2 && !unbatched) || x->shape[x->ndim - sd - 1] != c->cin)
        return bn__module_shape_error(m, "input is %s, expected (N, %lld, %s) or (%lld, %s)",
                                      bn__tshape(x), (long long)c->cin, sd == 1 ? "L" : "H, W",
                                      (long long)c->cin, sd == 1 ? "L" : "H, W");
    const bn_tensor *in = unbatched ? bn_unsqueeze(x, 0) : x;
    const bn_tensor *w = bn__module_tensor(m, "weight"), *b = bn__module_tensor(m, "bias");
    bn_tensor *y = c->kind == CONV_1D   ? bn_conv1d(in, w, b, c->o)
                   : c->kind == CONV_2D ? bn_conv2d(in, w, b, c->o)
                                        : bn_conv_transpose2d(in, w, b, c->o);
    return unbatched ? bn_squeeze(y, 0) : y;
}

static void conv_tuple(char *buf, size_t n, const char *key, int64_t v, int sd)
{
    if (sd == 1) bn__strcatf(buf, n, ", %s=(%lld,)", key, (long long)v);
    else bn__strcatf(buf, n, ", %s=(%lld, %lld)", key, (long long)v, (long long)v);
}

static void conv_repr(const bn_module *m, char *buf, size_t n)
{
    const conv *c = (const conv *)m;
    int sd = conv_spatial_dims(c->kind);
    int64_t k = c->kernel;
    snprintf(buf, n, "%lld, %lld", (long long)c->cin, (long long)c->cout);
    if (sd == 1) bn__strcatf(buf, n, ", kernel_size=(%lld,)", (long long)k);
    else bn__strcatf(buf, n, ", kernel_size=(%lld, %lld)", (long long)k, (long long)k);
    conv_tuple(buf, n, "stride", c->o.stride, sd);
    if (c->o.same) bn__strcatf(buf, n, ", padding=same");
    else if (c->o.padding) conv_tuple(buf, n, "padding", c->o.padding, sd);
    if (c->o.dilation != 1) conv_tuple(buf, n, "dilation", c->o.dilation, sd);
    if (c->o.output_padding) conv_tuple(buf, n, "output_padding", c->o.output_padding, sd);
    if (c->o.groups != 1) bn__strcatf(buf, n, ", groups=%lld", (long long)c->o.groups);
    if (!bn__module_tensor(m, "bias")) bn__strcatf(buf, n, ", bias=False");
}

static const bn_module_vtable conv1d_vt = {"Conv1d", conv_forward, NULL, conv_repr};
static const bn_module_vtable conv2d_vt = {"Conv2d", conv_forward, NULL, conv_repr};
static const bn_module_vtable convt2d_vt = {"ConvTranspose2d", conv_forward, NULL, conv_repr};

static bool conv_check(const char *fn, int64_t cin, int64_t cout, int64_t k, bn_nn_conv_opts *o,
                       conv_kind kind)
{
    if (o->stride == 0) o->stride = 1;
    if (o->dilation == 0) o->dilation = 1;
    if (o->groups == 0) o->groups = 1;
    if (cin <= 0 || cout <= 0 || k <= 0) {
        bn__error(BN_ERR_ARG, "%s: in_channels %lld, out_channels %lld and kernel %lld must be "
                  "> 0", fn, (long long)cin, (long long)cout, (long long)k);
        return false;
    }
    if (o->stride < 0 || o->padding < 0 || o->dilation < 0 || o->groups < 0 ||
        o->output_padding < 0) {
        bn__error(BN_ERR_ARG, "%s: stride %lld, padding %lld, dilation %lld, groups %lld and "
                  "output_padding %lld must be >= 0", fn, (long long)o->stride,
                  (long long)o->padding, (long long)o->dilation, (long long)o->groups,
                  (long long)o->output_padding);
        return false;
    }
    if (cin % o->groups || cout % o->groups) {
        bn__error(BN_ERR_ARG, "%s: in_channels %lld and out_channels %lld must be divisible by "
                  "groups %lld", fn, (long long)cin, (long long)cout, (long long)o->groups);
        return false;
    }
    if (o->same && (o->stride != 1 || kind == CONV_TRANSPOSE_2D)) {
        bn__error(BN_ERR_ARG, "%s: padding 'same' needs stride 1 and a forward convolution "
                  "(stride is %lld)", fn, (long long)o->stride);
        return false;
    }
    if (kind != CONV_TRANSPOSE_2D && o->output_padding) {
        bn__error(BN_ERR_ARG, "%s: output_padding is for transposed convolutions only", fn);
        return false;
    }
    return true;
}

static bn_module *conv_new(const char *fn, conv_kind kind, int64_t cin, int64_t cout, int64_t k,
                           bn_nn_conv_opts o)
{
    if (!conv_check(fn, cin, cout, k, &o, kind)) return NULL;
    const bn_module_vtable *vt = kind == CONV_1D ? &conv1d_vt
                                 : kind == CONV_2D ? &conv2d_vt
                                                   : &convt2d_vt;
    conv *c = (conv *)bn_module_alloc(sizeof(conv), vt);
    if (!c) return NULL;
    c->kind = kind;
    c->cin = cin;
    c->cout = cout;
    c->kernel = k;
    c->o = (bn_conv_opts){o.stride, o.padding, o.dilation, o.groups, o.output_padding, o.same};
    bn_shape ws = kind == CONV_1D   ? BN_SHAPE(cout, cin / o.groups, k)
                  : kind == CONV_2D ? BN_SHAPE(cout, cin / o.groups, k, k)
                                    : BN_SHAPE(cin, cout / o.groups, k, k);
    bn_tensor *w = bn__module_new_param(&c->base, "weight", ws);
    bn_tensor *b = o.no_bias ? NULL : bn__module_new_param(&c->base, "bias", BN_SHAPE(cout));
    if (!w || (!o.no_bias && !b) || bn__init_fan_in_uniform(w, b) != BN_OK) {
        bn_module_free(&c->base);
        return NULL;
    }
    return &c->base;
}

static bn_nn_conv_opts with_bias(bn_conv_opts o)
{
    return (bn_nn_conv_opts){o.stride, o.padding, o.dilation, o.groups, o.output_padding, o.same,
                             false};
}

bn_module *bn_nn_conv1d(int64_t in_channels, int64_t out_channels, int64_t kernel, bn_conv_opts o)
{
    return conv_new("bn_nn_conv1d", CONV_1D, in_channels, out_channels, kernel, with_bias(o));
}

bn_module *bn_nn_conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel, bn_conv_opts o)
{
    return conv_new("bn_nn_conv2d", CONV_2D, in_channels, out_channels, kernel, with_bias(o));
}

bn_module *bn_nn_conv_transpose2d(int64_t in_channels, int64_t out_channels, int64_t kernel,
                                  bn_conv_opts o)
{
    return conv_new("bn_nn_conv_transpose2d", CONV_TRANSPOSE_2D, in_channels, out_channels,
                    kernel, with_bias(o));
}

bn_module *bn_nn_conv1d_ex(int64_t in_channels, int64_t out_channels, int64_t kernel,
                           bn_nn_conv_opts o)
{
    return conv_new("bn_nn_conv1d_ex", CONV_1D, in_channels, out_channels, kernel, o);
}

bn_module *bn_nn_conv2d_ex(int64_t in_channels, int64_t out_channels, int64_t kernel,
                           bn_nn_conv_opts o)
{
    return conv_new("bn_nn_conv2d_ex", CONV_2D, in_channels, out_channels, kernel, o);
}

bn_module *bn_nn_conv_transpose2d_ex(int64_t in_channels, int64_t out_channels, int64_t kernel,
                                     bn_nn_conv_opts o)
{
    return conv_new("bn_nn_conv_transpose2d_ex", CONV_TRANSPOSE_2D, in_channels, out_channels,
                    kernel, o);
}

/* ---- pooling ------------------------------------------------------------------------------------ */

typedef struct pool {
    bn_module base;
    int64_t kernel, out_h, out_w;
    bn_pool_opts o;
} pool;

static bool pool_input_ok(bn_module *m, const bn_tensor *x)
{
    if (x->ndim == 3 || x->ndim == 4) return true;
    bn__module_shape_error(m, "input is %s, expected (N, C, H, W) or (C, H, W)", bn__tshape(x));
    return false;
}

/* x (N, C, H, W) or (C, H, W) */
static bn_tensor *maxpool_forward(bn_module *m, const bn_tensor *x)
{
    pool *p = (pool *)m;
    return pool_input_ok(m, x) ? bn_max_pool2d(x, p->kernel, p->o) : NULL;
}

static bn_tensor *avgpool_forward(bn_module *m, const bn_tensor *x)
{
    pool *p = (pool *)m;
    return pool_input_ok(m, x) ? bn_avg_pool2d(x, p->kernel, p->o) : NULL;
}

static bn_tensor *adaptive_forward(bn_module *m, const bn_tensor *x)
{
    pool *p = (pool *)m;
    return pool_input_ok(m, x) ? bn_adaptive_avg_pool2d(x, p->out_h, p->out_w) : NULL;
}

static int64_t pool_stride(const pool *p) { return p->o.stride ? p->o.stride : p->kernel; }

static void maxpool_repr(const bn_module *m, char *buf, size_t n)
{
    const pool *p = (const pool *)m;
    snprintf(buf, n, "kernel_size=%lld, stride=%lld, padding=%lld, dilation=%lld, ceil_mode=%s",
             (long long)p->kernel, (long long)pool_stride(p), (long long)p->o.padding,
             (long long)(p->o.dilation ? p->o.dilation : 1), p->o.ceil_mode ? "True" : "False");
}

static void avgpool_repr(const bn_module *m, char *buf, size_t n)
{
    const pool *p = (const pool *)m;
    snprintf(buf, n, "kernel_size=%lld, stride=%lld, padding=%lld", (long long)p->kernel,
             (long long)pool_stride(p), (long long)p->o.padding);
}

static void adaptive_repr(const bn_module *m, char *buf, size_t n)
{
    const pool *p = (const pool *)m;
    snprintf(buf, n, "output_size=(%lld, %lld)", (long long)p->out_h, (long long)p->out_w);
}

static const bn_module_vtable maxpool_vt = {"MaxPool2d", maxpool_forward, NULL, maxpool_repr};
static const bn_module_vtable avgpool_vt = {"AvgPool2d", avgpool_forward, NULL, avgpool_repr};
static const bn_module_vtable adaptive_vt = {"AdaptiveAvgPool2d", adaptive_forward, NULL,
                                             adaptive_repr};

static bn_module *pool_new(const char *fn, const bn_module_vtable *vt, int64_t kernel,
                           bn_pool_opts o)
{
    if (kernel <= 0 || o.stride < 0 || o.padding < 0 || o.dilation < 0)
        return bn__error_null(BN_ERR_ARG, "%s: kernel %lld must be > 0 and stride %lld, padding "
                              "%lld, dilation %lld >= 0", fn, (long long)kernel,
                              (long long)o.stride, (long long)o.padding, (long long)o.dilation);
    if (2 * o.padding > kernel)
        return bn__error_null(BN_ERR_ARG, "%s: padding %lld must be at most half of kernel %lld",
                              fn, (long long)o.padding, (long long)kernel);
    pool *p = (pool *)bn_module_alloc(sizeof(pool), vt);
    if (!p) return NULL;
    p->kernel = kernel;
    p->o = o;
    return &p->base;
}

bn_module *bn_nn_maxpool2d(int64_t kernel, bn_pool_opts o)
{
    return pool_new("bn_nn_maxpool2d", &maxpool_vt, kernel, o);
}

bn_module *bn_nn_avgpool2d(int64_t kernel, bn_pool_opts o)
{
    return pool_new("bn_nn_avgpool2d", &avgpool_vt, kernel, o);
}

bn_module *bn_nn_adaptive_avgpool2d(int64_t out_h, int64_t out_w)
{
    if (out_h <= 0 || out_w <= 0)
        return bn__error_null(BN_ERR_ARG, "bn_nn_adaptive_avgpool2d: output size (%lld, %lld) "
                              "must be > 0", (long long)out_h, (long long)out_w);
    pool *p = (pool *)bn_module_alloc(sizeof(pool), &adaptive_vt);
    if (!p) return NULL;
    p->out_h = out_h;
    p->out_w = out_w;
    return &p->base;
}

/* ---- Dropout, Embedding, Flatten, Identity ------------------------------------------------------ */

typedef struct simple {
    bn_module base;
    double p;
    int64_t num, dim;
    int start_dim, end_dim;
} simple;

static bn_tensor *dropout_forward(bn_module *m, const bn_tensor *x)
{
    return bn_dropout(x, ((simple *)m)->p, m->training);
}

static void dropout_repr(const bn_module *m, char *buf, size_t n)
{
    char f[32];
    snprintf(buf, n, "p=%s, inplace=False", bn__py_float(((const simple *)m)->p, f, sizeof f));
}

/* indices (any shape, integer) → indices.shape + [dim] */
static bn_tensor *embedding_forward(bn_module *m, const bn_tensor *x)
{
    if (!bn_dtype_is_int(x->dtype))
        return bn__error_null(BN_ERR_DTYPE, "bn_module_forward: Embedding: indices are %s, "
                              "expected an integer dtype", bn_dtype_name(x->dtype));
    return bn_embedding(bn__module_tensor(m, "weight"), x);
}

static void embedding_repr(const bn_module *m, char *buf, size_t n)
{
    const simple *s = (const simple *)m;
    snprintf(buf, n, "%lld, %lld", (long long)s->num, (long long)s->dim);
}

static bn_tensor *flatten_forward(bn_module *m, const bn_tensor *x)
{
    const simple *s = (const simple *)m;
    int nd = x->ndim ? x->ndim : 1;
    int start = s->start_dim < 0 ? s->start_dim + nd : s->start_dim;
    int end = s->end_dim < 0 ? s->end_dim + nd : s->end_dim;
    if (start < 0 || start >= nd || end < 0 || end >= nd)
        return bn__module_shape_error(m, "input is %s, which has no dims %d..%d", bn__tshape(x),
                                      s->start_dim, s->end_dim);
    return bn_flatten(x, s->start_dim, s->end_dim);
}

static void flatten_repr(const bn_module *m, char *buf, size_t n)
{
    const simple *s = (const simple *)m;
    snprintf(buf, n, "start_dim=%d, end_dim=%d", s->start_dim, s->end_dim);
}

static bn_tensor *identity_forward(bn_module *m, const bn_tensor *x)
{
    (void)m;
    return (bn_tensor *)x; /* bn_module_forward hands out a new reference to x itself */
}

static const bn_module_vtable dropout_vt = {"Dropout", dropout_forward, NULL, dropout_repr};
static const bn_module_vtable embedding_vt = {"Embedding", embedding_forward, NULL,
                                              embedding_repr};
static const bn_module_vtable flatten_vt = {"Flatten", flatten_forward, NULL, flatten_repr};
static const bn_module_vtable identity_vt = {"Identity", identity_forward, NULL, NULL};

bn_module *bn_nn_dropout(double p)
{
    if (!(p >= 0 && p <= 1))
        return bn__error_null(BN_ERR_ARG, "bn_nn_dropout: p is %g, expected a probability in "
                              "[0, 1]", p);
    simple *s = (simple *)bn_module_alloc(sizeof(simple), &dropout_vt);
    if (s) s->p = p;
    return (bn_module *)s;
}

bn_module *bn_nn_embedding(int64_t num_embeddings, int64_t embedding_dim)
{
    if (num_embeddings < 0 || embedding_dim < 0)
        return bn__error_null(BN_ERR_ARG, "bn_nn_embedding: num_embeddings %lld and "
                              "embedding_dim %lld must be >= 0", (long long)num_embeddings,
                              (long long)embedding_dim);
    simple *s = (simple *)bn_module_alloc(sizeof(simple), &embedding_vt);
    if (!s) return NULL;
    s->num = num_embeddings;
    s->dim = embedding_dim;
    bn_tensor *w = bn__module_new_param(&s->base, "weight", BN_SHAPE(num_embeddings, embedding_dim));
    if (!w || bn_init_normal(w, 0.0, 1.0) != BN_OK) {
        bn_module_free(&s->base);
        return NULL;
    }
    return &s->base;
}

bn_module *bn_nn_flatten_dims(int start_dim, int end_dim)
{
    simple *s = (simple *)bn_module_alloc(sizeof(simple), &flatten_vt);
    if (!s) return NULL;
    s->start_dim = start_dim;
    s->end_dim = end_dim;
    return &s->base;
}

bn_module *bn_nn_flatten(void) { return bn_nn_flatten_dims(1, -1); }
bn_module *bn_nn_identity(void) { return bn_module_alloc(sizeof(bn_module), &identity_vt); }
