/* backend_cuda/cuda_optim_glue.c — the CUDA plugin's optimizer table (backend_optim.h): copies
 * the call's hyper-parameters and tensor list into their C mirrors (cuda_optim.h) and queues
 * cuda_optim.cu's multi-tensor kernels on the current device's stream; the gradient-clipping
 * entries (grad_norm, scale_grads) pass their arrays straight through. Nothing waits for the
 * GPU. */
#include "backend/backend_optim.h"
#include "backend_cuda/cuda_optim.h"
#include "backend_cuda/cuda_plugin.h"

_Static_assert(BN_OPTIM_MAX_STATE == 3 && BN_OPTIM_MAX_COEF == 3,
               "bcu_optim_tensor mirrors bn_optim_tensor's state and coef arrays");

/* tensors converted per call of bcu_optim_update (it batches them further into launches) */
#define GLUE_BATCH 64

static bn_status cuda_optim_update(bn_optim_rule rule, bn_dtype dt, const bn_optim_hparams *h,
                                   const bn_optim_tensor *ts, int n)
{
    cuda_device *d = bcu_current();
    if (!d) return bcu_error(BN_ERR_INTERNAL, "cuda backend: optimizer update: no current device");
    if (n <= 0) return BN_OK;
    bcu_optim_hparams hp = {.lr = h->lr,
                            .weight_decay = h->weight_decay,
                            .momentum = h->momentum,
                            .dampening = h->dampening,
                            .beta1 = h->beta1,
                            .beta2 = h->beta2,
                            .alpha = h->alpha,
                            .rho = h->rho,
                            .eps = h->eps,
                            .decay = h->decay,
                            .nesterov = h->nesterov,
                            .maximize = h->maximize};
    bcu_optim_tensor buf[GLUE_BATCH];
    for (int start = 0; start < n; start += GLUE_BATCH) {
        int m = n - start < GLUE_BATCH ? n - start : GLUE_BATCH;
        for (int i = 0; i < m; i++) {
            const bn_optim_tensor *t = &ts[start + i];
            buf[i].param = t->param;
            buf[i].grad = t->grad;
            buf[i].numel = t->numel;
            for (int k = 0; k < 3; k++) {
                buf[i].state[k] = t->state[k];
                buf[i].coef[k] = t->coef[k];
            }
        }
        int rc = bcu_optim_update(d->stream, (int)rule, (int)dt, &hp, buf, m);
        if (rc) return bcu_kernel_status(rc, "optimizer update");
    }
    return BN_OK;
}

/* The partial sums live in a scratch block from the caching allocator, freed once the kernels
 * are queued (stream-ordered: its next user queues after them). */
static bn_status cuda_grad_norm(bn_dtype dt, const void *const *grads, const int64_t *numel, int n,
                                double p, void *out_f64)
{
    cuda_device *d = bcu_current();
    if (!d) return bcu_error(BN_ERR_INTERNAL, "cuda backend: gradient norm: no current device");
    if (n < 0) n = 0;
    int64_t parts = bcu_clip_partials(numel, n);
    double *scratch = NULL;
    if (parts > 0) {
        scratch = bcu_alloc(d, (size_t)parts * sizeof(double));
        if (!scratch)
            return bcu_error(BN_ERR_OOM, "cuda backend: gradient norm: out of memory (%lld partial "
                                         "sums)",
                             (long long)parts);
    }
    int rc = bcu_clip_grad_norm(d->stream, (int)dt, grads, numel, n, p, scratch, out_f64);
    if (scratch) bcu_free(d, scratch);
    return bcu_kernel_status(rc, "gradient norm");
}

static bn_status cuda_scale_grads(bn_dtype dt, void *const *grads, const int64_t *numel, int n,
                                  const void *total_f64, double max_norm, double p)
{
    cuda_device *d = bcu_current();
    if (!d) return bcu_error(BN_ERR_INTERNAL, "cuda backend: gradient scaling: no current device");
    if (n <= 0) return BN_OK;
    return bcu_kernel_status(bcu_clip_scale(d->stream, (int)dt, grads, numel, n, total_f64,
                                            max_norm, p),
                             "gradient scaling");
}

const bn_backend_optim bcu_optim = {
    .update = cuda_optim_update,
    .grad_norm = cuda_grad_norm,
    .scale_grads = cuda_scale_grads,
};
