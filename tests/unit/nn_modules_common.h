/* tests/unit/nn_modules_common.h — what the two nn-module test programs share: the formula
 * that sets parameters the way scripts/gen_nn_modules.py does, the MLP and CNN, and a
 * module written in C ("Net", the script's Net). */
#ifndef BORN_TEST_NN_MODULES_COMMON_H
#define BORN_TEST_NN_MODULES_COMMON_H

#include "bn_test.h"

#include "born/born.h"

#include <math.h>

/* The script's formula weights, in named_parameters order (see gen_nn_modules.py). */
static inline void formula_weights(bn_module *m)
{
    bn_tensor_list l = bn_module_named_parameters(m);
    cr_assert_geq(l.count, 0, "%s", bn_error_message());
    for (int k = 0; k < l.count; k++) {
        bn_tensor *p = l.tensors[k];
        float *d = bn_tensor_data_f32(p);
        cr_assert_not_null(d, "%s", l.names[k]);
        int64_t n = bn_numel(p), d0 = bn_ndim(p) > 0 ? bn_dim(p, 0) : 1;
        double bound = 1.0 / sqrt((double)(n / d0 > 1 ? n / d0 : 1));
        for (int64_t i = 0; i < n; i++)
            d[i] = (float)((double)((i * 7919 + 13 * k) % 2001 - 1000) / 1000.0 * bound);
    }
    bn_tensor_list_free(&l);
}

/* The models of the issue: MLP 784-128-10 and the CNN. */
static inline bn_module *mlp(void)
{
    return bn_nn_sequential(bn_nn_flatten(), bn_nn_linear(784, 128, true), bn_nn_relu(),
                            bn_nn_linear(128, 10, true), NULL);
}

static inline bn_module *cnn(void)
{
    return bn_nn_sequential(bn_nn_conv2d(1, 32, 3, (bn_conv_opts){0}), bn_nn_relu(),
                            bn_nn_maxpool2d(2, (bn_pool_opts){0}),
                            bn_nn_conv2d(32, 64, 3, (bn_conv_opts){0}), bn_nn_relu(),
                            bn_nn_maxpool2d(2, (bn_pool_opts){0}), bn_nn_flatten(),
                            bn_nn_linear(1600, 128, true), bn_nn_relu(),
                            bn_nn_linear(128, 10, true), NULL);
}

/* ---- a module written in C -------------------------------------------------------------------- */
/* y = head[1](head[0](features(x) * scale)), like the script's Net. */
typedef struct net {
    bn_module base;
    bn_module *features, *head;
    int forwards; /* own state: counts calls */
} net;

static inline bn_tensor *net_forward(bn_module *m, const bn_tensor *x)
{
    net *n = (net *)m;
    n->forwards++;
    bn_tensor *h = bn_mul(bn_module_forward(n->features, x), bn_module_get(m, "scale"));
    h = bn_module_forward(bn_module_child_at(n->head, 0, NULL), h);
    return bn_module_forward(bn_module_child_at(n->head, 1, NULL), h);
}

static const bn_module_vtable net_vt = {.type_name = "Net", .forward = net_forward};

static inline bn_module *net_new(void)
{
    net *n = (net *)bn_module_alloc(sizeof(net), &net_vt);
    bn_tensor *scale = bn_ones(BN_SHAPE(3), BN_F32), *steps = bn_zeros(BN_SHAPE(1), BN_F32);
    cr_assert_eq(bn_module_add_param(&n->base, "scale", scale), BN_OK);
    cr_assert_eq(bn_module_add_buffer(&n->base, "steps", steps), BN_OK);
    bn_release(scale);
    bn_release(steps);
    n->features = bn_module_add_child(
        &n->base, "features",
        bn_nn_sequential(bn_nn_linear(4, 3, true), bn_nn_tanh(),
                         bn_nn_layernorm(BN_SHAPE(3), (bn_norm_opts){0}), NULL));
    n->head = bn_module_add_child(&n->base, "head", bn_nn_module_list());
    cr_assert_eq(bn_module_append(n->head, bn_nn_linear(3, 2, true)), BN_OK);
    cr_assert_eq(bn_module_append(n->head, bn_nn_linear(2, 2, false)), BN_OK);
    return &n->base;
}

#endif
