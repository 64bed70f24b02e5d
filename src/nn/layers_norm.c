/* nn/layers_norm.c — normalisation layers as modules: BatchNorm1d/2d (with running statistics
 * and num_batches_tracked buffers, switched by train/eval), LayerNorm, RMSNorm, GroupNorm. */
#include "nn/nn_internal.h"

#include <float.h>
#include <stdio.h>

typedef enum norm_kind { NORM_BATCH1D, NORM_BATCH2D, NORM_LAYER, NORM_RMS, NORM_GROUP } norm_kind;

typedef struct norm {
    bn_module base;
    norm_kind kind;
    int64_t features, groups; /* BatchNorm/GroupNorm channels; GroupNorm groups */
    bn_shape normalized;      /* LayerNorm / RMSNorm */
    double eps, momentum;
    bool eps_default; /* RMSNorm: the input dtype's machine epsilon */
    bool affine, track;
    bool cumulative; /* BatchNorm with momentum=None */
} norm;

/* ---- BatchNorm ----------------------------------------------------------------------------- */

/* x (N, C) or (N, C, L) for BatchNorm1d, (N, C, H, W) for BatchNorm2d */
static bn_tensor *batchnorm_forward(bn_module *m, const bn_tensor *x)
{
    norm *b = (norm *)m;
    bool is1d = b->kind == NORM_BATCH1D;
    bool ndim_ok = is1d ? (x->ndim == 2 || x->ndim == 3) : x->ndim == 4;
    if (!ndim_ok || x->shape[1] != b->features)
        return bn__module_shape_error(m, "input is %s, expected %s", bn__tshape(x),
                                      is1d ? "(N, C) or (N, C, L) with C = num_features"
                                           : "(N, C, H, W) with C = num_features");
    bn_tensor *mean = bn__module_tensor(m, "running_mean");
    bn_tensor *var = bn__module_tensor(m, "running_var");
    bn_tensor *count = bn__module_tensor(m, "num_batches_tracked");
    double momentum = b->momentum;
    if (m->training && count) {
        double batches = bn_item(count) + 1;
        if (bn_fill_(count, batches) != BN_OK) return NULL;
        if (b->cumulative) momentum = 1.0 / batches;
    }
    bool batch_stats = m->training || !mean;
    return bn_batch_norm(x, mean, var, bn__module_tensor(m, "weight"),
                         bn__module_tensor(m, "bias"), batch_stats, momentum, b->eps);
}

static void batchnorm_repr(const bn_module *m, char *buf, size_t n)
{
    const norm *b = (const norm *)m;
    char e[32], mo[32];
    snprintf(buf, n, "%lld, eps=%s, momentum=%s, affine=%s, track_running_stats=%s",
             (long long)b->features, bn__py_float(b->eps, e, sizeof e),
             b->cumulative ? "None" : bn__py_float(b->momentum, mo, sizeof mo),
             b->affine ? "True" : "False",
             b->track ? "True" : "False");
}

static const bn_module_vtable batchnorm1d_vt = {"BatchNorm1d", batchnorm_forward, NULL,
                                                batchnorm_repr};
static const bn_module_vtable batchnorm2d_vt = {"BatchNorm2d", batchnorm_forward, NULL,
                                                batchnorm_repr};

static norm *norm_new(const char *fn, const bn_module_vtable *vt, norm_kind kind,
                      bn_norm_opts o)
{
    if (!(o.eps >= 0) || !(o.momentum >= 0 && o.momentum <= 1))
        return bn__error_null(BN_ERR_ARG, "%s: eps %g must be >= 0 and momentum %g in [0, 1]",
                              fn, o.eps, o.momentum);
    norm *nm = (norm *)bn_module_alloc(sizeof(norm), vt);
    if (!nm) return NULL;
    nm->kind = kind;
    nm->eps = o.eps > 0 ? o.eps : 1e-5;
    nm->eps_default = o.eps == 0;
    nm->momentum = o.momentum > 0 ? o.momentum : 0.1;
    nm->affine = !o.no_affine;
    nm->track = !o.no_track_running_stats;
    nm->cumulative = o.cumulative_average;
    return nm;
}

/* weight ones and bias zeros of shape s (when affine) */
static bool add_affine(norm *nm, bn_shape s, bool bias)
{
    if (!nm->affine) return true;
    bn_tensor *w = bn__module_new_param(&nm->base, "weight", s);
    if (!w || bn_init_ones(w) != BN_OK) return false;
    return !bias || bn__module_new_param(&nm->base, "bias", s);
}

static bn_module *batchnorm_new(const char *fn, norm_kind kind, int64_t num_features,
                                bn_norm_opts o)
{
    if (num_features <= 0)
        return bn__error_null(BN_ERR_ARG, "%s: num_features %lld must be > 0", fn,
                              (long long)num_features);
    norm *nm = norm_new(fn, kind == NORM_BATCH1D ? &batchnorm1d_vt : &batchnorm2d_vt, kind, o);
    if (!nm) return NULL;
    nm->features = num_features;
    bn_module *m = &nm->base;
    bool ok = add_affine(nm, BN_SHAPE(num_features), true);
    if (ok && nm->track)
        ok = bn__module_new_buffer(m, "running_mean", BN_SHAPE(num_features), BN_F32, 0.0) &&
             bn__module_new_buffer(m, "running_var", BN_SHAPE(num_features), BN_F32, 1.0) &&
             bn__module_new_buffer(m, "num_batches_tracked", BN_SCALAR, BN_I64, 0.0);
    if (!ok) {
        bn_module_free(m);
        return NULL;
    }
    return m;
}

bn_module *bn_nn_batchnorm1d(int64_t num_features, bn_norm_opts o)
{
    return batchnorm_new("bn_nn_batchnorm1d", NORM_BATCH1D, num_features, o);
}

bn_module *bn_nn_batchnorm2d(int64_t num_features, bn_norm_opts o)
{
    return batchnorm_new("bn_nn_batchnorm2d", NORM_BATCH2D, num_features, o);
}

/* ---- LayerNorm and RMSNorm ------------------------------------------------------------------ */

static bool trailing_dims_match(const bn_tensor *x, bn_shape s)
{
    if (x->ndim < s.ndim) return false;
    for (int i = 0; i < s.ndim; i++)
        if (x->shape[x->ndim - s.ndim + i] != s.dims[i]) return false;
    return true;
}

static double machine_eps(bn_dtype dt)
{
    switch (dt) {
    case BN_F64: return DBL_EPSILON;
    case BN_F16: return 0.0009765625;
    case BN_BF16: return 0.0078125;
    default: return FLT_EPSILON;
    }
}

/* x (..., *normalized_shape) */
static bn_tensor *layernorm_forward(bn_module *m, const bn_tensor *x)
{
    norm *nm = (norm *)m;
    if (!trailing_dims_match(x, nm->normalized))
        return bn__module_shape_error(m, "input is %s, expected [..., %s", bn__tshape(x),
                                      bn__sshape(nm->normalized) + 1);
    const bn_tensor *w = bn__module_tensor(m, "weight");
    if (nm->kind == NORM_RMS)
        return bn_rms_norm(x, nm->normalized.ndim, w,
                           nm->eps_default ? machine_eps(x->dtype) : nm->eps);
    return bn_layer_norm(x, nm->normalized.ndim, w, bn__module_tensor(m, "bias"), nm->eps);
}

static void shape_tuple(char *buf, size_t n, bn_shape s)
{
    bn__strcatf(buf, n, "(");
    for (int i = 0; i < s.ndim; i++)
        bn__strcatf(buf, n, i ? ", %lld" : "%lld", (long long)s.dims[i]);
    bn__strcatf(buf, n, s.ndim == 1 ? ",)" : ")");
}

static void layernorm_repr(const bn_module *m, char *buf, size_t n)
{
    const norm *nm = (const norm *)m;
    char e[32];
    buf[0] = '\0';
    shape_tuple(buf, n, nm->normalized);
    if (nm->kind == NORM_RMS && nm->eps_default) bn__strcatf(buf, n, ", eps=None");
    else bn__strcatf(buf, n, ", eps=%s", bn__py_float(nm->eps, e, sizeof e));
    bn__strcatf(buf, n, ", elementwise_affine=%s", nm->affine ? "True" : "False");
}

static const bn_module_vtable layernorm_vt = {"LayerNorm", layernorm_forward, NULL,
                                              layernorm_repr};
static const bn_module_vtable rmsnorm_vt = {"RMSNorm", layernorm_forward, NULL, layernorm_repr};

static bn_module *layernorm_new(const char *fn, norm_kind kind, bn_shape s, bn_norm_opts o)
{
    bool ok = s.ndim >= 1 && s.ndim <= BN_MAX_DIMS;
    for (int i = 0; ok && i < s.ndim; i++) ok = s.dims[i] > 0;
    if (!ok)
        return bn__error_null(BN_ERR_ARG, "%s: normalized_shape must have 1..%d positive dims",
                              fn, BN_MAX_DIMS);
    norm *nm = norm_new(fn, kind == NORM_RMS ? &rmsnorm_vt : &layernorm_vt, kind, o);
    if (!nm) return NULL;
    nm->normalized = s;
    if (!add_affine(nm, s, kind == NORM_LAYER)) {
        bn_module_free(&nm->base);
        return NULL;
    }
    return &nm->base;
}

bn_module *bn_nn_layernorm(bn_shape normalized_shape, bn_norm_opts o)
{
    return layernorm_new("bn_nn_layernorm", NORM_LAYER, normalized_shape, o);
}

bn_module *bn_nn_rmsnorm(bn_shape normalized_shape, bn_norm_opts o)
{
    return layernorm_new("bn_nn_rmsnorm", NORM_RMS, normalized_shape, o);
}

/* ---- GroupNorm ------------------------------------------------------------------------------- */

/* x (N, C, ...) */
static bn_tensor *groupnorm_forward(bn_module *m, const bn_tensor *x)
{
    norm *nm = (norm *)m;
    if (x->ndim < 2 || x->shape[1] != nm->features)
        return bn__module_shape_error(m, "input is %s, expected (N, %lld, ...)", bn__tshape(x),
                                      (long long)nm->features);
    return bn_group_norm(x, nm->groups, bn__module_tensor(m, "weight"),
                         bn__module_tensor(m, "bias"), nm->eps);
}

static void groupnorm_repr(const bn_module *m, char *buf, size_t n)
{
    const norm *nm = (const norm *)m;
    char e[32];
    snprintf(buf, n, "%lld, %lld, eps=%s, affine=%s", (long long)nm->groups,
             (long long)nm->features, bn__py_float(nm->eps, e, sizeof e),
             nm->affine ? "True" : "False");
}

static const bn_module_vtable groupnorm_vt = {"GroupNorm", groupnorm_forward, NULL,
                                              groupnorm_repr};

bn_module *bn_nn_groupnorm(int64_t num_groups, int64_t num_channels, bn_norm_opts o)
{
    if (num_groups <= 0 || num_channels <= 0 || num_channels % num_groups)
        return bn__error_null(BN_ERR_ARG, "bn_nn_groupnorm: num_channels %lld must be a positive "
                              "multiple of num_groups %lld", (long long)num_channels,
                              (long long)num_groups);
    norm *nm = norm_new("bn_nn_groupnorm", &groupnorm_vt, NORM_GROUP, o);
    if (!nm) return NULL;
    nm->groups = num_groups;
    nm->features = num_channels;
    if (!add_affine(nm, BN_SHAPE(num_channels), true)) {
        bn_module_free(&nm->base);
        return NULL;
    }
    return &nm->base;
}
