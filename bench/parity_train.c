/* bench/parity_train.c — the born half of the loss-parity check (bench/parity_train.sh): loads
 * the initial weights and the batch order that bench/parity_train.py wrote for PyTorch, trains
 * the same model with Adam(1e-3) on the same batches, and compares every step's loss with
 * PyTorch's. Prints one JSON line (steps, max relative difference, pass at 1e-4) and exits 1 on
 * a mismatch.
 *   usage: bench_parity_train MODEL DIR STEPS BATCH [DATA]   (DATA: default fashion-mnist) */
#include <born/born.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void die(const char *what)
{
    fprintf(stderr, "parity_train: %s: %s\n", what, bn_error_message());
    exit(1);
}

/* Reads n elements of size `size` from dir/file into a malloc'ed buffer. */
static void *read_raw(const char *dir, const char *file, size_t size, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    FILE *f = fopen(path, "rb");
    void *buf = malloc(size * n + 1);
    if (!f || !buf || fread(buf, size, n, f) != n) {
        fprintf(stderr, "parity_train: cannot read %zu values from %s\n", n, path);
        exit(1);
    }
    fclose(f);
    return buf;
}

/* Overwrites m's state with DIR/<name>.f32 for every entry of its state dict. */
static void load_weights(bn_module *m, const char *dir)
{
    bn_tensor_list sd = bn_module_state_dict(m);
    if (sd.count < 0) die("state dict");
    bn_tensor **vals = calloc((size_t)sd.count + 1, sizeof *vals);
    for (int i = 0; i < sd.count; i++) {
        char file[512];
        snprintf(file, sizeof file, "%s.f32", sd.names[i]);
        float *w = read_raw(dir, file, sizeof(float), (size_t)bn_numel(sd.tensors[i]));
        vals[i] = bn_from_data(w, bn_shape_of(sd.tensors[i]), BN_F32);
        free(w);
    }
    bn_tensor_list src = {.count = sd.count, .names = sd.names, .tensors = vals};
    if (bn_module_load_state_dict(m, &src, true) != BN_OK) die("loading the weights");
    for (int i = 0; i < sd.count; i++) bn_release(vals[i]);
    free(vals);
    bn_tensor_list_free(&sd);
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        /* `make bench` runs every bench_* without arguments: the inputs come from PyTorch */
        printf("{\"bench\":\"parity_train\",\"skipped\":\"needs PyTorch's weights and losses: "
               "run bench/parity_train.sh BUILD mlp|cnn STEPS BATCH\"}\n");
        return 0;
    }
    const char *model_name = argv[1], *dir = argv[2];
    int steps = atoi(argv[3]);
    int64_t batch = atoll(argv[4]);
    bn_dataset *train = bn_mnist_load(argc > 5 ? argv[5] : "fashion-mnist",
                                      (bn_mnist_opts){.normalize = true});
    bn_module *m = train ? bn_model_build(model_name) : NULL;
    if (!m) die("setting up");
    load_weights(m, dir);
    bn_optim *opt = bn_optim_adam(m, (bn_adam_opts){.lr = 1e-3});
    int64_t *order = read_raw(dir, "order.i64", sizeof(int64_t), (size_t)(steps * batch));
    double *want = read_raw(dir, "losses.f64", sizeof(double), (size_t)steps);
    bn_tensor *x_all = bn_dataset_x(train), *y_all = bn_dataset_y(train);
    double max_rel = 0;
    int worst = 0;
    for (int s = 0; s < steps; s++) {
        bn_scope_begin();
        bn_tensor *idx = bn_from_data(order + (size_t)s * (size_t)batch, BN_SHAPE(batch), BN_I64);
        bn_tensor *x = bn_index_select(x_all, 0, idx), *y = bn_index_select(y_all, 0, idx);
        bn_optim_zero_grad(opt);
        bn_tensor *loss = bn_cross_entropy(bn_module_forward(m, x), y, (bn_ce_opts){0});
        if (bn_backward(loss) != BN_OK || bn_optim_step(opt) != BN_OK) die("a step");
        double got = bn_item(loss), rel = fabs(got - want[s]) / fabs(want[s]);
        if (rel > max_rel) {
            max_rel = rel;
            worst = s;
        }
        if (getenv("PARITY_VERBOSE")) printf("step %3d born %.9f torch %.9f rel %.2e\n", s, got, want[s], rel);
        bn_scope_end();
    }
    bool pass = max_rel <= 1e-4;
    printf("{\"model\":\"%s\",\"steps\":%d,\"batch\":%lld,\"max_rel_diff\":%.3e,\"worst_step\":%d,"
           "\"tolerance\":1e-4,\"pass\":%s}\n",
           model_name, steps, (long long)batch, max_rel, worst, pass ? "true" : "false");
    bn_release(x_all);
    bn_release(y_all);
    free(order);
    free(want);
    bn_optim_free(opt);
    bn_module_free(m);
    bn_dataset_free(train);
    return pass ? 0 : 1;
}
