/* examples/mlp.c — train a 784-128-10 MLP on Fashion-MNIST, the training loop written out by
 * hand: a loader that shuffles and batches, a scope per step so every temporary is freed,
 * forward, cross-entropy, backward, Adam. Then the test accuracy.
 *   usage: example_mlp [DATA] [EPOCHS]   (DATA: fashion-mnist (default), mnist or a directory)
 * Only the public headers: this is what a program outside the repository writes. */
#include <born/born.h>

#include <stdio.h>
#include <stdlib.h>

static void die(const char *what)
{
    fprintf(stderr, "mlp: %s: %s\n", what, bn_error_message());
    exit(1);
}

/* Fraction of test images whose largest logit is the label. */
static double accuracy(bn_module *model, bn_loader *test)
{
    int64_t correct = 0, total = 0;
    bn_tensor *x, *y;
    bn_module_eval(model);
    bn_no_grad_begin();
    for (;;) {
        bn_scope_begin();
        bool more = bn_loader_next(test, &x, &y);
        if (more) {
            bn_tensor *hit = bn_eq(bn_argmax(bn_module_forward(model, x), 1, false), y);
            correct += (int64_t)bn_item(bn_sum(hit, BN_ALL, false));
            total += bn_dim(y, 0);
        }
        bn_scope_end();
        if (!more) break;
    }
    bn_no_grad_end();
    bn_module_train(model, true);
    return total ? (double)correct / (double)total : 0;
}

int main(int argc, char **argv)
{
    const char *data = argc > 1 ? argv[1] : "fashion-mnist";
    int epochs = argc > 2 ? atoi(argv[2]) : 1;

    bn_dataset *train = bn_mnist_load(data, (bn_mnist_opts){.normalize = true});
    bn_dataset *test = bn_mnist_load(data, (bn_mnist_opts){.normalize = true, .test = true});
    if (!train || !test) die("loading the data");

    bn_manual_seed(0);
    bn_module *model = bn_nn_sequential(bn_nn_flatten(), bn_nn_linear(784, 128, true),
                                        bn_nn_relu(), bn_nn_linear(128, 10, true), NULL);
    bn_optim *opt = model ? bn_optim_adam(model, (bn_adam_opts){.lr = 1e-3}) : NULL;
    bn_loader *batches = bn_loader_new(train, (bn_loader_opts){.batch_size = 64, .shuffle = true,
                                                               .seed = 0, .prefetch = true});
    bn_loader *test_batches = bn_loader_new(test, (bn_loader_opts){.batch_size = 1000});
    if (!opt || !batches || !test_batches) die("setting up");
    printf("MLP 784-128-10: %lld parameters\n", (long long)bn_module_num_parameters(model));

    for (int epoch = 1; epoch <= epochs; epoch++) {
        double loss_sum = 0;
        int64_t steps = 0;
        bn_tensor *x, *y;
        while (bn_loader_next(batches, &x, &y)) { /* false at the end of the epoch */
            bn_scope_begin();
            bn_optim_zero_grad(opt);
            bn_tensor *loss = bn_cross_entropy(bn_module_forward(model, x), y, (bn_ce_opts){0});
            if (bn_backward(loss) != BN_OK || bn_optim_step(opt) != BN_OK) die("a training step");
            loss_sum += bn_item(loss);
            steps++;
            bn_scope_end();
            bn_release(x); /* the batch was made outside the step's scope: give it back */
            bn_release(y);
        }
        if (bn_error_code() != BN_OK) die("reading a batch");
        printf("epoch %d: mean loss %.4f, test accuracy %.4f\n", epoch, loss_sum / (double)steps,
               accuracy(model, test_batches));
    }

    bn_loader_free(batches);
    bn_loader_free(test_batches);
    bn_optim_free(opt);
    bn_module_free(model);
    bn_dataset_free(train);
    bn_dataset_free(test);
    return 0;
}
