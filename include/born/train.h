/* born/train.h — training and evaluating classifiers: the models `born train` knows by name,
 * one training epoch (forward, cross-entropy, backward, optimizer step) with running metrics
 * handed to a progress callback, evaluation with loss, accuracy and a confusion matrix, and a
 * progress bar / plain-line reporter for terminals and logs. */
#ifndef BORN_TRAIN_H
#define BORN_TRAIN_H

#include "born/data.h"
#include "born/tensor.h"

#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bn_module bn_module; /* nn.h */
typedef struct bn_optim bn_optim;   /* optim.h */

/* The models of the Fashion-MNIST benchmark, initialised like PyTorch's defaults from born's
 * generator (seed it with bn_manual_seed first):
 *   "mlp": Flatten, Linear(784, 128), ReLU, Linear(128, 10)
 *   "cnn": Conv2d(1, 32, 3), ReLU, MaxPool2d(2), Conv2d(32, 64, 3), ReLU, MaxPool2d(2),
 *          Flatten, Linear(1600, 128), ReLU, Linear(128, 10)
 * Input x (B, 1, 28, 28) → logits (B, 10). An unknown name is BN_ERR_ARG listing the names. */
BN_API bn_module *bn_model_build(const char *name);

/* What an epoch (or an evaluation) measured. */
typedef struct bn_metrics {
    double loss;      /* mean cross-entropy over the samples */
    double accuracy;  /* correct / samples */
    int64_t samples, correct, batches;
    double seconds;   /* wall time */
    int num_classes;  /* evaluation: the confusion matrix's size */
    int64_t *confusion; /* evaluation: num_classes x num_classes, [true][predicted]; malloc'ed,
                           free with bn_metrics_free; NULL for training */
} bn_metrics;
BN_API void bn_metrics_free(bn_metrics *m); /* frees the confusion matrix; NULL is ignored */

/* Called after every batch with the metrics so far (batch = batches done). */
typedef void (*bn_progress_fn)(void *ctx, int64_t batch, int64_t nbatches, const bn_metrics *so_far);

/* One epoch over l: for each batch (x, y), zero the gradients, logits = m(x), loss =
 * cross_entropy(logits, y), backward, step. The module is put in training mode. progress may be
 * NULL. On an error the epoch stops and the error is returned (out holds what was done). An
 * error pending from before the call is cleared first. */
BN_API bn_status bn_train_epoch(bn_module *m, bn_optim *o, bn_loader *l, bn_progress_fn progress,
                                void *ctx, bn_metrics *out);

typedef struct bn_grad_scaler bn_grad_scaler; /* amp.h */
/* How bn_train_epoch_ex runs each step; a zeroed struct is bn_train_epoch's behaviour. */
typedef struct bn_train_opts {
    /* BN_BF16 or BN_F16: the forward and the loss run inside an autocast region of that dtype
     * (amp.h; the parameters stay f32); 0 or BN_F32: no autocast. Other dtypes: BN_ERR_DTYPE. */
    bn_dtype precision;
    /* Dynamic loss scaling (needed for f16): the loss is scaled before the backward and the
     * step goes through bn_grad_scaler_step / _update (skipped on inf/NaN). NULL: none. */
    bn_grad_scaler *scaler;
    /* CUDA graphs (born/cuda.h): after two eager warm-up steps, the forward, the loss and the
     * backward of one step are captured once and replayed for every later batch of the same
     * shape (each batch copied into the captured input tensors first); the optimizer step runs
     * after each replay. Needs the model on a CUDA device, no scaler and no random ops in the
     * forward (dropout): BN_ERR_DEVICE / BN_ERR_ARG / BN_ERR_UNSUPPORTED otherwise. A batch of
     * another shape (a short last batch) runs eagerly. */
    bool graph;
} bn_train_opts;
/* bn_train_epoch with options (opts may be NULL). The batches are moved to the device of the
 * model's first parameter; on a GPU the per-batch loss and accuracy stay on the device and are
 * read in groups, so the progress callback sees them every few batches. */
BN_API bn_status bn_train_epoch_ex(bn_module *m, bn_optim *o, bn_loader *l,
                                   const bn_train_opts *opts, bn_progress_fn progress, void *ctx,
                                   bn_metrics *out);
/* Loss, accuracy and the num_classes x num_classes confusion matrix of m over one epoch of l, in
 * eval mode without gradients (the module is left in eval mode). */
BN_API bn_status bn_evaluate(bn_module *m, bn_loader *l, int num_classes, bn_metrics *out);

/* ---- reporting --------------------------------------------------------------------------------- */
/* A progress reporter for bn_train_epoch: on a terminal a bar redrawn in place ("epoch 2/5
 * [=====>    ] 412/938 loss 0.4321 acc 0.8456 5210 samples/s ETA 7s"), throttled to a few
 * updates a second; otherwise nothing per batch (the caller prints one line per epoch). */
typedef struct bn_progress {
    FILE *f;
    bool tty;
    int epoch, epochs;
    double last_draw; /* seconds since the epoch began, at the last redraw */
} bn_progress;
BN_API bn_progress bn_progress_make(FILE *f, int epoch, int epochs); /* tty from isatty(f) */
BN_API void bn_progress_update(void *progress, int64_t batch, int64_t nbatches,
                               const bn_metrics *so_far); /* a bn_progress_fn */
/* Clears the bar (on a terminal) so the epoch's summary line can follow. */
BN_API void bn_progress_done(bn_progress *p);
/* The confusion matrix as a table with row/column headers (true rows, predicted columns). */
BN_API void bn_print_confusion(FILE *f, const bn_metrics *m, const char *const *class_names);

/* Fashion-MNIST's class names, in label order (10 entries). */
BN_API const char *const *bn_fashion_mnist_classes(void);

#ifdef __cplusplus
}
#endif
#endif
