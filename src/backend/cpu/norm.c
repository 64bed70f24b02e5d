/* backend/cpu/norm.c — layer, RMS, group and batch norm kernels (forward and backward) for f32
 * and f64; the bodies live in norm_impl.h, instantiated here once per element type. */
#include "backend/cpu/nn_kernels.h"
#include "backend/cpu/iter.h"

#include <math.h>

#define NORM_T float
#define NORM_SFX f32
#include "backend/cpu/norm_impl.h"
#undef NORM_T
#undef NORM_SFX

#define NORM_T double
#define NORM_SFX f64
#include "backend/cpu/norm_impl.h"
#undef NORM_T
#undef NORM_SFX

static bn_status unsupported(const char *kernel, bn_dtype dt)
{
    return bn__error(BN_ERR_UNSUPPORTED, "%s: the CPU kernel supports f32 and f64, not %s", kernel,
                     bn_dtype_name(dt));
}

#define OPT(v) ((v) ? (v)->data : NULL)

bn_status bn_cpu_row_norm(const bn_tview *x, const bn_tview *weight, const bn_tview *bias,
                          const bn_tview *y, const bn_tview *mean, const bn_tview *rstd,
                          const bn_row_norm_geom *g, double eps)
{
    if (x->dtype == BN_F32)
        row_norm_f32(x->data, OPT(weight), OPT(bias), y->data, mean->data, rstd->data, g, eps);
    else if (x->dtype == BN_F64)
        row_norm_f64(x->data, OPT(weight), OPT(bias), y->data, mean->data, rstd->data, g, eps);
    else
        return unsupported("row_norm", x->dtype);
    return BN_OK;
}

bn_status bn_cpu_row_norm_backward(const bn_tview *grad_y, const bn_tview *x, const bn_tview *mean,
                                   const bn_tview *rstd, const bn_tview *weight,
                                   const bn_tview *grad_x, const bn_tview *grad_weight,
                                   const bn_tview *grad_bias, const bn_row_norm_geom *g)
{
    if (x->dtype == BN_F32) {
        if (grad_x)
            row_norm_grad_x_f32(grad_y->data, x->data, mean->data, rstd->data, OPT(weight),
                                grad_x->data, g);
        if (grad_weight || grad_bias)
            row_norm_grad_affine_f32(grad_y->data, x->data, mean->data, rstd->data,
                                     OPT(grad_weight), OPT(grad_bias), g);
    } else if (x->dtype == BN_F64) {
        if (grad_x)
            row_norm_grad_x_f64(grad_y->data, x->data, mean->data, rstd->data, OPT(weight),
                                grad_x->data, g);
        if (grad_weight || grad_bias)
            row_norm_grad_affine_f64(grad_y->data, x->data, mean->data, rstd->data,
                                     OPT(grad_weight), OPT(grad_bias), g);
    } else {
        return unsupported("row_norm_backward", x->dtype);
    }
    return BN_OK;
}

bn_status bn_cpu_batch_norm_stats(const bn_tview *x, const bn_tview *mean, const bn_tview *var)
{
    int64_t N = x->shape[0], C = x->shape[1], S = x->shape[2];
    if (x->dtype == BN_F32)
        batch_stats_f32(x->data, mean->data, var->data, N, C, S);
    else if (x->dtype == BN_F64)
        batch_stats_f64(x->data, mean->data, var->data, N, C, S);
    else
        return unsupported("batch_norm_stats", x->dtype);
    return BN_OK;
}

bn_status bn_cpu_batch_norm_apply(const bn_tview *x, const bn_tview *mean, const bn_tview *var,
                                  const bn_tview *weight, const bn_tview *bias, const bn_tview *y,
                                  double eps)
{
    int64_t N = x->shape[0], C = x->shape[1], S = x->shape[2];
    if (x->dtype == BN_F32)
        batch_apply_f32(x->data, mean->data, var->data, OPT(weight), OPT(bias), y->data, N, C, S,
                        eps);
    else if (x->dtype == BN_F64)
        batch_apply_f64(x->data, mean->data, var->data, OPT(weight), OPT(bias), y->data, N, C, S,
                        eps);
    else
        return unsupported("batch_norm_apply", x->dtype);
    return BN_OK;
}

bn_status bn_cpu_batch_norm_backward(const bn_tview *grad_y, const bn_tview *x,
                                     const bn_tview *mean, const bn_tview *var,
                                     const bn_tview *weight, const bn_tview *grad_x,
                                     const bn_tview *grad_weight, const bn_tview *grad_bias,
                                     double eps, bool training)
{
    int64_t N = x->shape[0], C = x->shape[1], S = x->shape[2];
    if (x->dtype == BN_F32)
        batch_backward_f32(grad_y->data, x->data, mean->data, var->data, OPT(weight), OPT(grad_x),
                           OPT(grad_weight), OPT(grad_bias), N, C, S, eps, training);
    else if (x->dtype == BN_F64)
        batch_backward_f64(grad_y->data, x->data, mean->data, var->data, OPT(weight), OPT(grad_x),
                           OPT(grad_weight), OPT(grad_bias), N, C, S, eps, training);
    else
        return unsupported("batch_norm_backward", x->dtype);
    return BN_OK;
}

/* C is small (channels): a plain strided loop through the f64 load/store helpers. */
bn_status bn_cpu_running_stats_update(const bn_tview *running_mean, const bn_tview *running_var,
                                      const bn_tview *mean, const bn_tview *var, double momentum,
                                      double unbias)
{
    int64_t C = mean->shape[0];
    size_t rm_es = bn_dtype_size(running_mean->dtype), rv_es = bn_dtype_size(running_var->dtype);
    size_t es = bn_dtype_size(mean->dtype);
    for (int64_t c = 0; c < C; c++) {
        char *rm = (char *)running_mean->data + c * running_mean->strides[0] * (int64_t)rm_es;
        char *rv = (char *)running_var->data + c * running_var->strides[0] * (int64_t)rv_es;
        double m = bn__load_f64((const char *)mean->data + (size_t)c * es, mean->dtype);
        double v = bn__load_f64((const char *)var->data + (size_t)c * es, var->dtype);
        bn__store_f64(rm, running_mean->dtype,
                      (1.0 - momentum) * bn__load_f64(rm, running_mean->dtype) + momentum * m);
        bn__store_f64(rv, running_var->dtype,
                      (1.0 - momentum) * bn__load_f64(rv, running_var->dtype) +
                          momentum * v * unbias);
    }
    return BN_OK;
}
