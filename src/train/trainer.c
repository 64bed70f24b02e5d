/* train/trainer.c — the training loop and evaluation for classifiers: cross-entropy on logits
 * (B, C) against i64 labels (B), accuracy from the argmax, and for evaluation a confusion
 * matrix. Each batch runs inside its own scope, so every temporary of a step is gone when the
 * step ends; only the module's parameters and the optimizer's state persist. With
 * bn_train_opts.graph the forward + loss + backward of a step are captured once as a CUDA graph
 * and replayed (graph_* below). */
#include "born/amp.h"
#include "born/cuda.h"
#include "born/nn.h"
#include "born/optim.h"
#include "born/train.h"
#include "core/internal.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void bn_metrics_free(bn_metrics *m)
{
    if (!m) return;
    free(m->confusion);
    m->confusion = NULL;
}

/* Adds nb batches' mean loss (over their rows) and correct count to m. */
static void accumulate_n(bn_metrics *m, int64_t nb, double batch_loss, int64_t rows,
                         int64_t correct)
{
    double sum = m->loss * (double)m->samples + batch_loss * (double)rows;
    m->samples += rows;
    m->correct += correct;
    m->batches += nb;
    m->loss = m->samples ? sum / (double)m->samples : 0;
    m->accuracy = m->samples ? (double)m->correct / (double)m->samples : 0;
}

/* logits (B, C), y (B) i64 → predictions (B) i64 in pred (caller's buffer of B) and the number
 * equal to y. */
static void accumulate(bn_metrics *m, double batch_loss, int64_t rows, int64_t correct)
{
    accumulate_n(m, 1, batch_loss, rows, correct);
}

static int64_t count_correct(const bn_tensor *logits, const bn_tensor *y, int64_t *pred)
{
    bn_tensor *am = bn_argmax(logits, 1, false);
    bn_tensor *amc = am ? bn_contiguous(bn_tensor_to(am, bn_cpu())) : NULL;
    bn_tensor *yc = y ? bn_contiguous(bn_tensor_to(y, bn_cpu())) : NULL;
    const int64_t *a = amc ? bn_tensor_data_i64(amc) : NULL;
    const int64_t *t = yc ? bn_tensor_data_i64(yc) : NULL;
    if (!a || !t) return -1;
    int64_t n = bn_numel(amc), correct = 0;
    for (int64_t i = 0; i < n; i++) {
        correct += a[i] == t[i];
        if (pred) pred[i] = a[i];
    }
    return correct;
}

static bn_status check_batch(const char *fn, const bn_tensor *y)
{
    if (bn_dtype_of(y) != BN_I64 || bn_ndim(y) != 1)
        return bn__error(BN_ERR_DTYPE, "%s: labels must be i64 class indices (B), got %s %s", fn,
                         bn_dtype_name(bn_dtype_of(y)), bn__tshape(y));
    return BN_OK;
}

/* The device a module computes on: that of its first parameter (the CPU for none). */
static bn_device module_device(bn_module *m)
{
    bn_tensor *first = NULL;
    return bn_module_parameters(m, &first, 1) > 0 && first ? bn_device_of(first) : bn_cpu();
}

/* x and y moved to d (the tensors themselves when already there); registered in the scope. */
static bn_status batch_to(bn_device d, bn_tensor **x, bn_tensor **y)
{
    if (bn_device_of(*x).type == d.type && bn_device_of(*x).index == d.index &&
        bn_device_of(*y).type == d.type && bn_device_of(*y).index == d.index)
        return BN_OK;
    *x = bn_tensor_to(*x, d);
    *y = *x ? bn_tensor_to(*y, d) : NULL;
    return *y ? BN_OK : bn_error_code();
}

/* Per-batch results not yet read back. On the CPU they are read after every batch; on a GPU
 * they stay on the device (the loss and the correct count of each batch as retained scalars)
 * and are read in groups, so the host never waits for the GPU inside the loop. */
#define PENDING_MAX 32
typedef struct pending {
    int count, flush_every;
    bn_tensor *loss[PENDING_MAX], *correct[PENDING_MAX];
    int64_t rows[PENDING_MAX];
} pending;

static void pending_drop(pending *p)
{
    for (int i = 0; i < p->count; i++) {
        bn_release(p->loss[i]);
        bn_release(p->correct[i]);
    }
    p->count = 0;
}

/* Reads every pending batch into out (in batch order). */
static bn_status pending_flush(pending *p, bn_metrics *out)
{
    bn_status st = BN_OK;
    for (int i = 0; i < p->count && st == BN_OK; i++) {
        double l = bn_item(p->loss[i]);
        double c = bn_item(p->correct[i]);
        st = bn_error_code();
        if (st == BN_OK) accumulate(out, l, p->rows[i], (int64_t)c);
    }
    pending_drop(p);
    return st;
}

/* One optimisation step on (x, y); queues its loss and correct count in p. Runs in the
 * caller's scope. */
static bn_status train_step(bn_module *m, bn_optim *o, const bn_train_opts *to, bn_device dev,
                            bn_tensor *x, bn_tensor *y, pending *p)
{
    bn_status st = check_batch("bn_train_epoch", y);
    if (st != BN_OK || (st = batch_to(dev, &x, &y)) != BN_OK) return st;
    bn_optim_zero_grad(o);
    bool autocast = to->precision == BN_BF16 || to->precision == BN_F16;
    if (autocast && (st = bn_autocast_begin(to->precision)) != BN_OK) return st;
    bn_tensor *logits = bn_module_forward(m, x);
    bn_tensor *loss = logits ? bn_cross_entropy(logits, y, (bn_ce_opts){0}) : NULL;
    if (autocast) bn_autocast_end();
    if (!loss) return bn_error_code();
    if (to->scaler) {
        bn_tensor *scaled = bn_grad_scaler_scale(to->scaler, loss);
        if (!scaled || (st = bn_backward(scaled)) != BN_OK) return bn_error_code();
        if ((st = bn_grad_scaler_step(to->scaler, o)) != BN_OK ||
            (st = bn_grad_scaler_update(to->scaler)) != BN_OK)
            return st;
    } else {
        if ((st = bn_backward(loss)) != BN_OK) return st;
        if ((st = bn_optim_step(o)) != BN_OK) return st;
    }
    bn_no_grad_begin();
    bn_tensor *pred = bn_argmax(logits, 1, false);
    bn_tensor *correct = pred ? bn_sum(bn_eq(pred, y), BN_ALL, false) : NULL;
    bn_tensor *l = bn_detach(loss);
    bn_no_grad_end();
    if (!correct || !l) return bn_error_code();
    bn_retain(l);
    bn_retain(correct);
    p->loss[p->count] = l;
    p->correct[p->count] = correct;
    p->rows[p->count] = bn_dim(y, 0);
    p->count++;
    return BN_OK;
}


/* ---- CUDA graph steps ------------------------------------------------------------------------- */
#define GRAPH_WARMUP 2 /* eager steps first: the optimizer's state and cuBLAS's plans exist */

typedef struct graph_state {
    bn_cuda_graph *g;
    bn_tensor *x, *y;            /* the captured inputs: every batch is copied into them */
    bn_tensor *loss, *correct;   /* device sums (f64, i64) over the replays not yet read */
    int64_t count;               /* replays since the last read */
} graph_state;

static void graph_drop(graph_state *gs)
{
    bn_cuda_graph_free(gs->g);
    bn_release(gs->x);
    bn_release(gs->y);
    bn_release(gs->loss);
    bn_release(gs->correct);
    *gs = (graph_state){0};
}

static bool same_shape(const bn_tensor *a, const bn_tensor *b)
{
    if (bn_ndim(a) != bn_ndim(b) || bn_dtype_of(a) != bn_dtype_of(b)) return false;
    for (int d = 0; d < bn_ndim(a); d++)
        if (bn_dim(a, d) != bn_dim(b, d)) return false;
    return true;
}

/* Records forward, loss, backward and the metric sums of one step on the static inputs. */
static bn_status graph_capture(bn_module *m, bn_optim *o, const bn_train_opts *to, bn_device dev,
                               graph_state *gs)
{
    bn_optim_zero_grad(o); /* the backward makes the gradients, so each replay overwrites them */
    bn_status st = bn_cuda_graph_begin(dev.index);
    if (st != BN_OK) return st;
    bn_scope_begin();
    bool autocast = to->precision == BN_BF16 || to->precision == BN_F16;
    if (autocast) st = bn_autocast_begin(to->precision);
    bn_tensor *logits = st == BN_OK ? bn_module_forward(m, gs->x) : NULL;
    bn_tensor *loss = logits ? bn_cross_entropy(logits, gs->y, (bn_ce_opts){0}) : NULL;
    if (autocast && st == BN_OK) bn_autocast_end();
    if (loss) st = bn_backward(loss);
    if (loss && st == BN_OK) {
        bn_no_grad_begin();
        bn_tensor *correct = bn_sum(bn_eq(bn_argmax(logits, 1, false), gs->y), BN_ALL, false);
        bn_tensor *l = bn_add(gs->loss, bn_detach(loss));
        if (!correct || !l || bn_copy_(gs->loss, l) != BN_OK ||
            bn_copy_(gs->correct, bn_add(gs->correct, correct)) != BN_OK)
            st = bn_error_code();
        bn_no_grad_end();
    } else if (st == BN_OK) {
        st = bn_error_code();
    }
    bn_scope_end();
    /* end the capture even after an error: the stream must leave capture mode */
    if (st != BN_OK) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", bn_error_message());
        bn_cuda_graph_free(bn_cuda_graph_end(dev.index));
        return bn__error(st, "%s", msg);
    }
    gs->g = bn_cuda_graph_end(dev.index);
    return gs->g ? BN_OK : bn_error_code();
}

/* Reads and clears the device sums into out. */
static bn_status graph_flush(graph_state *gs, bn_metrics *out)
{
    if (gs->count == 0) return BN_OK;
    double l = bn_item(gs->loss), c = bn_item(gs->correct);
    bn_status st = bn_error_code();
    if (st == BN_OK) {
        int64_t rows = bn_dim(gs->y, 0);
        accumulate_n(out, gs->count, l / (double)gs->count, rows * gs->count, (int64_t)c);
        st = bn_fill_(gs->loss, 0);
        if (st == BN_OK) st = bn_fill_(gs->correct, 0);
    }
    gs->count = 0;
    return st;
}

/* One step of the graph on (x, y): capture it first when there is none yet. Runs in the
 * caller's scope. */
static bn_status graph_step(bn_module *m, bn_optim *o, const bn_train_opts *to, bn_device dev,
                            bn_tensor *x, bn_tensor *y, graph_state *gs)
{
    bn_status st = check_batch("bn_train_epoch", y);
    if (st != BN_OK || (st = batch_to(dev, &x, &y)) != BN_OK) return st;
    if (!gs->g) {
        /* tensors of their own (the batch may be a view of the data set), outside any scope */
        gs->x = bn__empty(x->shape, x->ndim, x->dtype, dev);
        gs->y = bn__empty(y->shape, y->ndim, y->dtype, dev);
        gs->loss = bn__full(NULL, 0, 0.0, BN_F64, dev);
        gs->correct = bn__full(NULL, 0, 0.0, BN_I64, dev);
        if (!gs->x || !gs->y || !gs->loss || !gs->correct) return bn_error_code();
    }
    if ((st = bn_copy_(gs->x, x)) != BN_OK || (st = bn_copy_(gs->y, y)) != BN_OK) return st;
    if (!gs->g && (st = graph_capture(m, o, to, dev, gs)) != BN_OK) return st;
    if ((st = bn_cuda_graph_replay(gs->g)) != BN_OK) return st;
    gs->count++;
    return bn_optim_step(o);
}

bn_status bn_train_epoch(bn_module *m, bn_optim *o, bn_loader *l, bn_progress_fn progress,
                         void *ctx, bn_metrics *out)
{
    return bn_train_epoch_ex(m, o, l, NULL, progress, ctx, out);
}

bn_status bn_train_epoch_ex(bn_module *m, bn_optim *o, bn_loader *l, const bn_train_opts *opts,
                            bn_progress_fn progress, void *ctx, bn_metrics *out)
{
    BN_CHECK_NULL_STATUS("bn_train_epoch", out);
    *out = (bn_metrics){0};
    BN_CHECK_NULL_STATUS("bn_train_epoch", m);
    BN_CHECK_NULL_STATUS("bn_train_epoch", o);
    BN_CHECK_NULL_STATUS("bn_train_epoch", l);
    bn_train_opts to = opts ? *opts : (bn_train_opts){0};
    if (to.precision != 0 && to.precision != BN_F32 && to.precision != BN_BF16 &&
        to.precision != BN_F16)
        return bn__error(BN_ERR_DTYPE,
                         "bn_train_epoch: opts->precision is %s (expected f32, bf16 or f16)",
                         bn_dtype_name(to.precision));
    bn_error_clear(); /* the end of the epoch is told from a failure by the error slot */
    bn_module_train(m, true);
    bn_device dev = module_device(m);
    if (to.graph && dev.type != BN_DEVICE_CUDA)
        return bn__error(BN_ERR_DEVICE,
                         "bn_train_epoch: opts->graph needs the model on a CUDA device (its "
                         "parameters are on the %s)",
                         dev.type == BN_DEVICE_CPU ? "CPU" : "another device");
    if (to.graph && to.scaler)
        return bn__error(BN_ERR_ARG,
                         "bn_train_epoch: opts->graph cannot be combined with a loss scaler (its "
                         "scale changes between steps; use bf16 rather than f16)");
    graph_state gs = {0};
    int64_t step = 0;
    pending p = {.flush_every = dev.type == BN_DEVICE_CPU ? 1 : PENDING_MAX};
    double t0 = now_seconds();
    int64_t nb = bn_loader_num_batches(l);
    bn_status st = BN_OK;
    for (;;) {
        bn_scope_begin();
        bn_tensor *x, *y;
        bool more = bn_loader_next(l, &x, &y);
        bool graphed = more && to.graph && step >= GRAPH_WARMUP &&
                       (!gs.g || (same_shape(x, gs.x) && same_shape(y, gs.y)));
        if (graphed && !gs.g && p.count > 0) st = pending_flush(&p, out);
        if (more && st == BN_OK)
            st = graphed ? graph_step(m, o, &to, dev, x, y, &gs) : train_step(m, o, &to, dev, x, y, &p);
        step++;
        bn_scope_end();
        if (!more) {
            st = bn_error_code();
            break;
        }
        if (st == BN_OK && p.count >= p.flush_every) st = pending_flush(&p, out);
        bool flushed = p.count == 0 && !gs.g;
        if (st == BN_OK && gs.count >= PENDING_MAX) st = graph_flush(&gs, out), flushed = true;
        out->seconds = now_seconds() - t0;
        if (st != BN_OK) break;
        if (progress && flushed) progress(ctx, out->batches, nb, out);
    }
    if (st == BN_OK) st = graph_flush(&gs, out);
    graph_drop(&gs);
    if (st == BN_OK) {
        st = pending_flush(&p, out);
        if (st == BN_OK && progress && out->batches) progress(ctx, out->batches, nb, out);
    }
    pending_drop(&p);
    out->seconds = now_seconds() - t0;
    return st;
}

static bn_status eval_step(bn_module *m, bn_device dev, bn_tensor *x, bn_tensor *y, int64_t *pred,
                           bn_metrics *out)
{
    bn_status st = check_batch("bn_evaluate", y);
    if (st != BN_OK || (st = batch_to(dev, &x, &y)) != BN_OK) return st;
    bn_tensor *logits = bn_module_forward(m, x);
    if (logits && (bn_ndim(logits) != 2 || bn_dim(logits, 1) != out->num_classes))
        return bn__error(BN_ERR_SHAPE, "bn_evaluate: the model's logits are %s; expected (B, %d)",
                         bn__tshape(logits), out->num_classes);
    bn_tensor *loss = bn_cross_entropy(logits, y, (bn_ce_opts){0});
    if (!loss) return bn_error_code();
    int64_t correct = count_correct(logits, y, pred);
    if (correct < 0) return bn_error_code();
    const int64_t *t = bn_tensor_data_i64(bn_contiguous(bn_tensor_to(y, bn_cpu())));
    if (!t) return bn_error_code();
    int64_t n = bn_dim(y, 0), c = out->num_classes;
    for (int64_t i = 0; i < n; i++)
        if (t[i] >= 0 && t[i] < c) out->confusion[t[i] * c + pred[i]]++;
    accumulate(out, bn_item(loss), n, correct);
    return BN_OK;
}

bn_status bn_evaluate(bn_module *m, bn_loader *l, int num_classes, bn_metrics *out)
{
    BN_CHECK_NULL_STATUS("bn_evaluate", out);
    *out = (bn_metrics){0};
    BN_CHECK_NULL_STATUS("bn_evaluate", m);
    BN_CHECK_NULL_STATUS("bn_evaluate", l);
    if (num_classes < 1 || num_classes > 100000)
        return bn__error(BN_ERR_ARG, "bn_evaluate: num_classes must be in [1, 100000], got %d",
                         num_classes);
    out->num_classes = num_classes;
    out->confusion = calloc((size_t)num_classes * (size_t)num_classes, sizeof(int64_t));
    if (!out->confusion) return bn__error(BN_ERR_OOM, "bn_evaluate: out of memory");
    bn_error_clear(); /* as in bn_train_epoch */
    bn_module_eval(m);
    bn_device dev = module_device(m);
    double t0 = now_seconds();
    bn_status st = BN_OK;
    bn_no_grad_begin();
    for (;;) {
        bn_scope_begin();
        bn_tensor *x, *y;
        bool more = bn_loader_next(l, &x, &y);
        int64_t *pred = more ? malloc(sizeof(int64_t) * (size_t)(bn_dim(y, 0) + 1)) : NULL;
        if (more) st = pred ? eval_step(m, dev, x, y, pred, out)
                            : bn__error(BN_ERR_OOM, "bn_evaluate: out of memory");
        free(pred);
        bn_scope_end();
        if (!more) {
            st = bn_error_code();
            break;
        }
        if (st != BN_OK) break;
    }
    bn_no_grad_end();
    out->seconds = now_seconds() - t0;
    return st;
}
