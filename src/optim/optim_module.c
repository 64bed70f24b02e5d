/* optim/optim_module.c — optimizers over a module's parameters (bn_module_parameters, in
 * named_parameters order): thin wrappers over the bn_optim_*_params constructors. */
#include "born/nn.h"
#include "born/optim.h"
#include "core/internal.h"

/* The module's parameters as a malloc'd array (borrowed tensors); NULL with an error. */
static bn_tensor **module_params(const char *fn, bn_module *m, int *n)
{
    if (!m) return bn__null_arg(fn, "m");
    int count = bn_module_parameters(m, NULL, 0);
    if (count < 0) return NULL;
    if (count == 0) return bn__error_null(BN_ERR_ARG, "%s: the module has no parameters", fn);
    bn_tensor **ps = malloc(sizeof(*ps) * (size_t)count);
    if (!ps) return bn__error_null(BN_ERR_OOM, "%s: out of memory", fn);
    *n = bn_module_parameters(m, ps, count);
    if (*n != count) {
        free(ps);
        return *n < 0 ? NULL : bn__error_null(BN_ERR_INTERNAL, "%s: parameter count changed", fn);
    }
    return ps;
}

#define MODULE_VARIANT(name, opts_t)                                                               \
    bn_optim *bn_optim_##name(bn_module *m, opts_t o)                                              \
    {                                                                                              \
        int n = 0;                                                                                 \
        bn_tensor **ps = module_params("bn_optim_" #name, m, &n);                                  \
        if (!ps) return NULL;                                                                      \
        bn_optim *opt = bn_optim_##name##_params(ps, n, o);                                        \
        free(ps);                                                                                  \
        return opt;                                                                                \
    }

MODULE_VARIANT(sgd, bn_sgd_opts)
MODULE_VARIANT(adam, bn_adam_opts)
MODULE_VARIANT(adamw, bn_adam_opts)
MODULE_VARIANT(rmsprop, bn_rmsprop_opts)
MODULE_VARIANT(adagrad, bn_adagrad_opts)
MODULE_VARIANT(adadelta, bn_adadelta_opts)
MODULE_VARIANT(nadam, bn_nadam_opts)
MODULE_VARIANT(lbfgs, bn_lbfgs_opts)
