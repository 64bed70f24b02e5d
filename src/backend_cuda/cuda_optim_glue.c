/* backend_cuda/cuda_optim_glue.c — the CUDA plugin's optimizer table (backend_optim.h): copies
 * the call's hyper-parameters and tensor list into their C mirrors (cuda_optim.h) and queues
 * cuda_optim.cu's multi-tensor kernels on the current device's stream. Nothing waits for the GPU. */
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

const bn_backend_optim bcu_optim = {
    .update = cuda_optim_update,
};
