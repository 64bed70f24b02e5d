/* bench/train_epoch.c — one Fashion-MNIST-shaped training epoch (Adam, cross-entropy) of the MLP
 * or the CNN on random data of the real shape (60,000 images 1x28x28, 10 classes), on the CPU or
 * a GPU, the way bench/gpu/torch_train_epoch.py runs PyTorch: the data set lives on the device,
 * batches are views of it, nothing is read back to the host inside an epoch (the device is
 * synchronised once at its end). Prints one JSON line per timed epoch and a summary line with
 * the median.
 *
 *   bench_train_epoch [--device cpu|cuda] [--model mlp|cnn] [--batch B] [--epochs N]
 *                     [--samples S] [--seed S] [--precision fp32|bf16|fp16] [--graph]
 *
 * --graph captures the forward, loss and backward of one step as a CUDA graph (born/cuda.h) at
 * the end of the warm-up epoch and replays it for every step of the timed epochs: each batch is
 * copied into the captured input tensors, the graph replayed, then the optimizer steps. With
 * --breakdown it also times one epoch's worth of each part alone (the copies, the replays, the
 * optimizer steps) and prints a "graph_breakdown" line.
 *
 * bf16/fp16 run the forward and the loss under autocast (born/amp.h) with f32 master weights,
 * fp16 with dynamic loss scaling — like torch.autocast + GradScaler on PyTorch's side.
 *
 * The first epoch is a warm-up (allocator caches, cuBLAS heuristics) and is not counted. */
#include "bench_util.h"

#include "born/born.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *arg_value(int argc, char **argv, const char *name, const char *dflt)
{
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0) return argv[i + 1];
    return dflt;
}

static int fail(const char *what)
{
    fprintf(stderr, "bench_train_epoch: %s: %s\n", what, bn_error_message());
    return 1;
}

static bool has_flag(int argc, char **argv, const char *name)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], name) == 0) return true;
    return false;
}

/* The CUDA graph of one step on the static batch (xs, ys); *loss is the captured loss tensor
 * (rewritten by every replay), kept in the caller's scope. */
static bn_cuda_graph *capture_step(bn_module *m, bn_optim *o, bn_dtype low, bn_device dev,
                                   bn_tensor *xs, bn_tensor *ys, bn_tensor **loss)
{
    bn_optim_zero_grad(o);
    if (bn_cuda_graph_begin(dev.index) != BN_OK) return NULL;
    bn_scope_begin();
    if (low != BN_F32) bn_autocast_begin(low);
    bn_tensor *l = bn_cross_entropy(bn_module_forward(m, xs), ys, (bn_ce_opts){0});
    if (low != BN_F32) bn_autocast_end();
    if (l && bn_backward(l) == BN_OK) *loss = bn_scope_keep(bn_detach(l));
    bn_scope_end();
    if (bn_error_code() != BN_OK) {
        bn_cuda_graph_free(bn_cuda_graph_end(dev.index));
        return NULL;
    }
    return bn_cuda_graph_end(dev.index);
}

static void sync_device(bn_device d)
{
    if (d.type == BN_DEVICE_CUDA) bn_cuda_synchronize(d.index);
}

int main(int argc, char **argv)
{
    const char *dev_name = arg_value(argc, argv, "--device", "cpu");
    const char *model = arg_value(argc, argv, "--model", "mlp");
    int64_t batch = atoll(arg_value(argc, argv, "--batch", "64"));
    int epochs = atoi(arg_value(argc, argv, "--epochs", "3"));
    int64_t samples = atoll(arg_value(argc, argv, "--samples", "60000"));
    uint64_t seed = (uint64_t)atoll(arg_value(argc, argv, "--seed", "0"));
    const char *prec = arg_value(argc, argv, "--precision", "fp32");
    bn_dtype low = strcmp(prec, "bf16") == 0   ? BN_BF16
                   : strcmp(prec, "fp16") == 0 ? BN_F16
                                               : BN_F32;
    bool graph = has_flag(argc, argv, "--graph");
    if (batch < 1 || epochs < 1 || samples < batch) {
        fprintf(stderr, "bench_train_epoch: bad --batch/--epochs/--samples\n");
        return 2;
    }
    if (graph && (strncmp(dev_name, "cuda", 4) != 0 || low == BN_F16)) {
        fprintf(stderr, "bench_train_epoch: --graph needs --device cuda and fp32 or bf16\n");
        return 2;
    }
    bn_device dev = strncmp(dev_name, "cuda", 4) == 0
                        ? bn_cuda(dev_name[4] == ':' ? atoi(dev_name + 5) : 0)
                        : bn_cpu();

    bn_manual_seed(seed);
    bn_module *m = bn_model_build(model);
    if (!m) return fail("bn_model_build");
    if (bn_module_to_device(m, dev) != BN_OK) return fail("bn_module_to_device");
    bn_optim *o = bn_optim_adam(m, (bn_adam_opts){.lr = 1e-3});
    if (!o) return fail("bn_optim_adam");
    bn_grad_scaler *scaler = bn_grad_scaler_new((bn_grad_scaler_opts){.disabled = low != BN_F16});
    if (!scaler) return fail("bn_grad_scaler_new");

    bn_scope_begin();
    bn_tensor *x = bn_tensor_to(bn_randn(BN_SHAPE(samples, 1, 28, 28), BN_F32), dev);
    bn_tensor *y = bn_tensor_to(bn_randint(0, 10, BN_SHAPE(samples), BN_I64), dev);
    if (!x || !y) return fail("data");
    int64_t steps = samples / batch;
    double *times = malloc(sizeof(double) * (size_t)epochs);
    double last_loss = 0;
    bn_cuda_graph *g = NULL;
    bn_tensor *xs = NULL, *ys = NULL, *gloss = NULL;
    if (graph) {
        xs = bn_contiguous(bn_clone(bn_narrow(x, 0, 0, batch)));
        ys = bn_contiguous(bn_clone(bn_narrow(y, 0, 0, batch)));
        if (!xs || !ys) return fail("graph inputs");
    }
    for (int e = 0; e <= epochs; e++) {
        if (graph && e == 1 && !(g = capture_step(m, o, low, dev, xs, ys, &gloss)))
            return fail("CUDA graph capture");
        sync_device(dev);
        double t0 = now_ms();
        bn_tensor *loss = NULL;
        for (int64_t s = 0; g && s < steps; s++) {
            bn_scope_begin();
            if (bn_copy_(xs, bn_narrow(x, 0, s * batch, batch)) != BN_OK ||
                bn_copy_(ys, bn_narrow(y, 0, s * batch, batch)) != BN_OK ||
                bn_cuda_graph_replay(g) != BN_OK || bn_optim_step(o) != BN_OK)
                return fail("graph step");
            bn_scope_end();
            loss = gloss;
        }
        for (int64_t s = 0; !g && s < steps; s++) {
            bn_scope_begin();
            bn_optim_zero_grad(o);
            bn_tensor *xb = bn_narrow(x, 0, s * batch, batch);
            bn_tensor *yb = bn_narrow(y, 0, s * batch, batch);
            if (low != BN_F32) bn_autocast_begin(low);
            bn_tensor *logits = bn_module_forward(m, xb);
            bn_tensor *l = bn_cross_entropy(logits, yb, (bn_ce_opts){0});
            if (low != BN_F32) bn_autocast_end();
            if (!l || bn_backward(bn_grad_scaler_scale(scaler, l)) != BN_OK ||
                bn_grad_scaler_step(scaler, o) != BN_OK || bn_grad_scaler_update(scaler) != BN_OK)
                return fail("step");
            if (s == steps - 1) loss = bn_scope_keep(bn_detach(l));
            bn_scope_end();
        }
        sync_device(dev);
        double ms = now_ms() - t0;
        last_loss = bn_item(loss); /* kept in the outer scope */
        if (e == 0) continue;      /* warm-up */
        times[e - 1] = ms;
        printf("{\"bench\":\"train_epoch\",\"impl\":\"born\",\"device\":\"%s\",\"model\":\"%s\","
               "\"batch\":%lld,\"precision\":\"%s\",\"epoch\":%d,\"seconds\":%.4f,"
               "\"last_loss\":%.5f}\n",
               dev_name, model, (long long)batch, prec, e, ms / 1e3, last_loss);
        fflush(stdout);
    }
    qsort(times, (size_t)epochs, sizeof(double), cmp_double);
    printf("{\"bench\":\"train_epoch_median\",\"impl\":\"born\",\"device\":\"%s\",\"model\":\"%s\","
           "\"batch\":%lld,\"precision\":\"%s\",\"graph\":%s,\"epochs\":%d,\"steps\":%lld,"
           "\"median_seconds\":%.4f,\"ms_per_step\":%.4f}\n",
           dev_name, model, (long long)batch, prec, graph ? "true" : "false", epochs,
           (long long)steps, times[epochs / 2] / 1e3, times[epochs / 2] / (double)steps);
    if (g && has_flag(argc, argv, "--breakdown")) {
        double part[3];
        for (int k = 0; k < 3; k++) {
            sync_device(dev);
            double t0 = now_ms();
            for (int64_t s = 0; s < steps; s++) {
                bn_scope_begin();
                bn_status st = k == 0   ? bn_copy_(xs, bn_narrow(x, 0, s * batch, batch))
                               : k == 1 ? bn_cuda_graph_replay(g)
                                        : bn_optim_step(o);
                if (st == BN_OK && k == 0) st = bn_copy_(ys, bn_narrow(y, 0, s * batch, batch));
                bn_scope_end();
                if (st != BN_OK) return fail("breakdown");
            }
            sync_device(dev);
            part[k] = now_ms() - t0;
        }
        printf("{\"bench\":\"graph_breakdown\",\"model\":\"%s\",\"batch\":%lld,\"precision\":"
               "\"%s\",\"steps\":%lld,\"copies_ms\":%.3f,\"replays_ms\":%.3f,\"optim_ms\":%.3f}\n",
               model, (long long)batch, prec, (long long)steps, part[0], part[1], part[2]);
    }
    free(times);
    bn_cuda_graph_free(g);
    bn_scope_end();
    bn_grad_scaler_free(scaler);
    bn_optim_free(o);
    bn_module_free(m);
    return 0;
}
