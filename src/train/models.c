/* train/models.c — the models `born train` builds by name: the MLP and the CNN of the
 * Fashion-MNIST benchmark, as Sequential modules whose state-dict names and initial values
 * (PyTorch's default init, from born's generator) match the PyTorch script in
 * bench/vs_torch_train.sh. */
#include "born/nn.h"
#include "born/train.h"
#include "core/internal.h"

#include <string.h>

/* Flatten, Linear(784, 128), ReLU, Linear(128, 10) */
static bn_module *build_mlp(void)
{
    return bn_nn_sequential(bn_nn_flatten(), bn_nn_linear(784, 128, true), bn_nn_relu(),
                            bn_nn_linear(128, 10, true), NULL);
}

/* (B, 1, 28, 28) → conv 3x3 (B, 32, 26, 26) → pool (B, 32, 13, 13) → conv 3x3 (B, 64, 11, 11)
 * → pool (B, 64, 5, 5) → flatten (B, 1600) → (B, 128) → (B, 10) */
static bn_module *build_cnn(void)
{
    return bn_nn_sequential(bn_nn_conv2d(1, 32, 3, (bn_conv_opts){0}), bn_nn_relu(),
                            bn_nn_maxpool2d(2, (bn_pool_opts){0}),
                            bn_nn_conv2d(32, 64, 3, (bn_conv_opts){0}), bn_nn_relu(),
                            bn_nn_maxpool2d(2, (bn_pool_opts){0}), bn_nn_flatten(),
                            bn_nn_linear(1600, 128, true), bn_nn_relu(),
                            bn_nn_linear(128, 10, true), NULL);
}

bn_module *bn_model_build(const char *name)
{
    BN_CHECK_NULL("bn_model_build", name);
    if (strcmp(name, "mlp") == 0) return build_mlp();
    if (strcmp(name, "cnn") == 0) return build_cnn();
    return bn__error_null(BN_ERR_ARG, "bn_model_build: unknown model '%s' (known: mlp, cnn)",
                          name);
}

const char *const *bn_fashion_mnist_classes(void)
{
    static const char *const names[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                          "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
    return names;
}
