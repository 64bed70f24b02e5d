/* autograd/grad_util.c — helpers shared by derivative rules. */
#include "autograd/autograd.h"

#include "born/ops.h"

bn_tensor *bn__grad_zeros(bn_shape s, bn_dtype dt, const bn_tensor *like)
{
    return bn__out(bn__full(s.dims, s.ndim, 0.0, dt, like->storage->device));
}

bn_tensor *bn__sum_to_shape(const bn_tensor *grad, bn_shape s)
{
    BN_CHECK_NULL("bn__sum_to_shape", grad);
    BN_ASSERT(s.ndim <= grad->ndim);
    int lead = grad->ndim - s.ndim;
    int dims[BN_MAX_DIMS], k = 0;
    bn_tensor *r = (bn_tensor *)grad;
    bn_retain(r);
    bn__scope_suspend(); /* the sums below are this function's own temporaries */
    for (int i = 0; i < lead; i++) dims[k++] = i;
    if (k) {
        bn_tensor *t = bn_sum_dims(r, dims, k, false);
        bn_release(r);
        r = t;
    }
    k = 0;
    for (int i = 0; r && i < s.ndim; i++)
        if (s.dims[i] == 1 && r->shape[i] != 1) dims[k++] = i;
    if (r && k) {
        bn_tensor *t = bn_sum_dims(r, dims, k, true);
        bn_release(r);
        r = t;
    }
    bn__scope_resume();
    return bn__out(r);
}
