/* examples/regression.c — linear regression by gradient descent: a data set (a CSV file whose
 * last column is the target, or a synthetic one, y = 2 x0 - 3 x1 + 0.5 x2 + 1 + noise), a
 * Linear layer, mean-squared error and SGD with momentum; prints the loss as it falls and the
 * weights it found.
 *   usage: example_regression [FILE.csv]
 * Only the public headers: this is what a program outside the repository writes. */
#include <born/born.h>

#include <stdio.h>
#include <stdlib.h>

static void die(const char *what)
{
    fprintf(stderr, "regression: %s: %s\n", what, bn_error_message());
    exit(1);
}

/* 1000 rows: x (1000, 3) standard normal, y (1000, 1) = x @ [2, -3, 0.5] + 1 + 0.1 noise. */
static bn_dataset *synthetic(void)
{
    bn_scope_begin();
    bn_tensor *x = bn_randn(BN_SHAPE(1000, 3), BN_F32);
    bn_tensor *w = bn_from_data((float[]){2, -3, 0.5f}, BN_SHAPE(3, 1), BN_F32);
    bn_tensor *noise = bn_mul_scalar(bn_randn(BN_SHAPE(1000, 1), BN_F32), 0.1);
    bn_tensor *y = bn_add(bn_add_scalar(bn_matmul(x, w), 1.0), noise);
    bn_dataset *d = bn_dataset_new(x, y);
    bn_scope_end();
    return d;
}

int main(int argc, char **argv)
{
    bn_manual_seed(42);
    bn_dataset *data =
        argc > 1 ? bn_csv_load(argv[1], (bn_csv_opts){.regression = true}) : synthetic();
    if (!data) die("loading the data");
    bn_scope_begin();
    int64_t features = bn_dim(bn_dataset_x(data), 1);
    bn_scope_end();

    bn_module *model = bn_nn_linear(features, 1, true);
    bn_optim *opt = model ? bn_optim_sgd(model, (bn_sgd_opts){.lr = 0.05, .momentum = 0.9}) : NULL;
    bn_loader *batches = bn_loader_new(data, (bn_loader_opts){.batch_size = 50, .shuffle = true});
    if (!opt || !batches) die("setting up");

    for (int epoch = 1; epoch <= 20; epoch++) {
        double loss_sum = 0;
        int steps = 0;
        for (;;) {
            bn_scope_begin(); /* owns the batch and every temporary of the step */
            bn_tensor *x, *y;
            bool more = bn_loader_next(batches, &x, &y);
            if (more) {
                bn_optim_zero_grad(opt);
                bn_tensor *loss = bn_mse_loss(bn_module_forward(model, x), y, (bn_loss_opts){0});
                if (bn_backward(loss) != BN_OK || bn_optim_step(opt) != BN_OK) die("a step");
                loss_sum += bn_item(loss);
                steps++;
            }
            bn_scope_end();
            if (!more) break;
        }
        if (epoch % 5 == 0 || epoch == 1)
            printf("epoch %2d: mean squared error %.5f\n", epoch, loss_sum / steps);
    }

    bn_scope_begin();
    printf("weight:\n");
    bn_print(bn_module_get(model, "weight"));
    printf("bias:\n");
    bn_print(bn_module_get(model, "bias"));
    bn_scope_end();

    bn_loader_free(batches);
    bn_optim_free(opt);
    bn_module_free(model);
    bn_dataset_free(data);
    return 0;
}
