/* train/trainer.c — the training loop and evaluation for classifiers: cross-entropy on logits
 * (B, C) against i64 labels (B), accuracy from the argmax, and for evaluation a confusion
 * matrix. Each batch runs inside its own scope, so every temporary of a step is gone when the
 * step ends; only the module's parameters and the optimizer's state persist. */
#include "born/nn.h"
#include "born/optim.h"
#include "born/train.h"
#include "core/internal.h"

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

/* Adds a batch's loss (mean over its rows) and correct count to m. */
static void accumulate(bn_metrics *m, double batch_loss, int64_t rows, int64_t correct)
{
    double sum = m->loss * (double)m->samples + batch_loss * (double)rows;
    m->samples += rows;
    m->correct += correct;
    m->batches++;
    m->loss = m->samples ? sum / (double)m->samples : 0;
    m->accuracy = m->samples ? (double)m->correct / (double)m->samples : 0;
}

/* logits (B, C), y (B) i64 → predictions (B) i64 in pred (caller's buffer of B) and the number
 * equal to y. */
static int64_t count_correct(const bn_tensor *logits, const bn_tensor *y, int64_t *pred)
{
    bn_tensor *am = bn_argmax(logits, 1, false);
    bn_tensor *amc = am ? bn_contiguous(am) : NULL;
    bn_tensor *yc = y ? bn_contiguous(y) : NULL;
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

/* One optimisation step on (x, y); adds to out. Runs in the caller's scope. */
static bn_status train_step(bn_module *m, bn_optim *o, const bn_tensor *x, const bn_tensor *y,
                            bn_metrics *out)
{
    bn_status st = check_batch("bn_train_epoch", y);
    if (st != BN_OK) return st;
    bn_optim_zero_grad(o);
    bn_tensor *logits = bn_module_forward(m, x);
    bn_tensor *loss = bn_cross_entropy(logits, y, (bn_ce_opts){0});
    if (!loss) return bn_error_code();
    if ((st = bn_backward(loss)) != BN_OK) return st;
    if ((st = bn_optim_step(o)) != BN_OK) return st;
    double l = bn_item(loss);
    bn_no_grad_begin();
    int64_t correct = count_correct(logits, y, NULL);
    bn_no_grad_end();
    if (correct < 0) return bn_error_code();
    accumulate(out, l, bn_dim(y, 0), correct);
    return BN_OK;
}

bn_status bn_train_epoch(bn_module *m, bn_optim *o, bn_loader *l, bn_progress_fn progress,
                         void *ctx, bn_metrics *out)
{
    BN_CHECK_NULL_STATUS("bn_train_epoch", out);
    *out = (bn_metrics){0};
    BN_CHECK_NULL_STATUS("bn_train_epoch", m);
    BN_CHECK_NULL_STATUS("bn_train_epoch", o);
    BN_CHECK_NULL_STATUS("bn_train_epoch", l);
    bn_error_clear(); /* the end of the epoch is told from a failure by the error slot */
    bn_module_train(m, true);
    double t0 = now_seconds();
    int64_t nb = bn_loader_num_batches(l);
    bn_status st = BN_OK;
    for (;;) {
        bn_scope_begin();
        bn_tensor *x, *y;
        bool more = bn_loader_next(l, &x, &y);
        if (more) st = train_step(m, o, x, y, out);
        bn_scope_end();
        if (!more) {
            st = bn_error_code();
            break;
        }
        out->seconds = now_seconds() - t0;
        if (st != BN_OK) break;
        if (progress) progress(ctx, out->batches, nb, out);
    }
    out->seconds = now_seconds() - t0;
    return st;
}

static bn_status eval_step(bn_module *m, const bn_tensor *x, const bn_tensor *y, int64_t *pred,
                           bn_metrics *out)
{
    bn_status st = check_batch("bn_evaluate", y);
    if (st != BN_OK) return st;
    bn_tensor *logits = bn_module_forward(m, x);
    if (logits && (bn_ndim(logits) != 2 || bn_dim(logits, 1) != out->num_classes))
        return bn__error(BN_ERR_SHAPE, "bn_evaluate: the model's logits are %s; expected (B, %d)",
                         bn__tshape(logits), out->num_classes);
    bn_tensor *loss = bn_cross_entropy(logits, y, (bn_ce_opts){0});
    if (!loss) return bn_error_code();
    int64_t correct = count_correct(logits, y, pred);
    if (correct < 0) return bn_error_code();
    const int64_t *t = bn_tensor_data_i64(bn_contiguous(y));
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
    double t0 = now_seconds();
    bn_status st = BN_OK;
    bn_no_grad_begin();
    for (;;) {
        bn_scope_begin();
        bn_tensor *x, *y;
        bool more = bn_loader_next(l, &x, &y);
        int64_t *pred = more ? malloc(sizeof(int64_t) * (size_t)(bn_dim(y, 0) + 1)) : NULL;
        if (more) st = pred ? eval_step(m, x, y, pred, out)
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
