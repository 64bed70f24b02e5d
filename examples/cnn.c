/* examples/cnn.c — train a small CNN on Fashion-MNIST with born's training helpers: the model
 * as a Sequential of layers, bn_train_epoch for the loop (with a progress bar on a terminal),
 * bn_evaluate for loss, accuracy and the confusion matrix.
 *   usage: example_cnn [DATA] [EPOCHS] [LIMIT]   (LIMIT: use the first LIMIT images only)
 * Only the public headers: this is what a program outside the repository writes. */
#include <born/born.h>

#include <stdio.h>
#include <stdlib.h>

static void die(const char *what)
{
    fprintf(stderr, "cnn: %s: %s\n", what, bn_error_message());
    exit(1);
}

/* The first `limit` rows of d (all when limit is 0); frees d when it makes a slice. */
static bn_dataset *take(bn_dataset *d, int64_t limit)
{
    if (!d || limit <= 0 || limit >= bn_dataset_len(d)) return d;
    bn_dataset *s = bn_dataset_slice(d, 0, limit);
    bn_dataset_free(d);
    return s;
}

int main(int argc, char **argv)
{
    const char *data = argc > 1 ? argv[1] : "fashion-mnist";
    int epochs = argc > 2 ? atoi(argv[2]) : 1;
    int64_t limit = argc > 3 ? atoll(argv[3]) : 0;

    bn_dataset *train = take(bn_mnist_load(data, (bn_mnist_opts){.normalize = true}), limit);
    bn_dataset *test =
        take(bn_mnist_load(data, (bn_mnist_opts){.normalize = true, .test = true}), limit);
    if (!train || !test) die("loading the data");

    /* (B, 1, 28, 28) → (B, 32, 13, 13) → (B, 64, 5, 5) → (B, 1600) → (B, 128) → (B, 10) */
    bn_manual_seed(0);
    bn_module *model = bn_nn_sequential(
        bn_nn_conv2d(1, 32, 3, (bn_conv_opts){0}), bn_nn_relu(), bn_nn_maxpool2d(2, (bn_pool_opts){0}),
        bn_nn_conv2d(32, 64, 3, (bn_conv_opts){0}), bn_nn_relu(), bn_nn_maxpool2d(2, (bn_pool_opts){0}),
        bn_nn_flatten(), bn_nn_linear(1600, 128, true), bn_nn_relu(), bn_nn_linear(128, 10, true),
        NULL);
    bn_optim *opt = model ? bn_optim_adam(model, (bn_adam_opts){.lr = 1e-3}) : NULL;
    bn_loader *batches = bn_loader_new(train, (bn_loader_opts){.batch_size = 64, .shuffle = true,
                                                               .prefetch = true});
    bn_loader *test_batches = bn_loader_new(test, (bn_loader_opts){.batch_size = 1000});
    if (!opt || !batches || !test_batches) die("setting up");

    char *repr = bn_module_repr(model);
    if (repr) printf("%s\n%lld parameters\n", repr, (long long)bn_module_num_parameters(model));
    free(repr);

    bn_metrics test_metrics = {0};
    for (int epoch = 1; epoch <= epochs; epoch++) {
        bn_metrics m;
        bn_progress bar = bn_progress_make(stderr, epoch, epochs);
        if (bn_train_epoch(model, opt, batches, bn_progress_update, &bar, &m) != BN_OK)
            die("training");
        bn_progress_done(&bar);
        bn_metrics_free(&test_metrics);
        if (bn_evaluate(model, test_batches, 10, &test_metrics) != BN_OK) die("evaluating");
        printf("epoch %d: loss %.4f, accuracy %.4f, test accuracy %.4f, %.1f s\n", epoch, m.loss,
               m.accuracy, test_metrics.accuracy, m.seconds);
    }
    bn_print_confusion(stdout, &test_metrics, bn_fashion_mnist_classes());

    bn_metrics_free(&test_metrics);
    bn_loader_free(batches);
    bn_loader_free(test_batches);
    bn_optim_free(opt);
    bn_module_free(model);
    bn_dataset_free(train);
    bn_dataset_free(test);
    return 0;
}
