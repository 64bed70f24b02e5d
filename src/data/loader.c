/* data/loader.c — the data loader: a seeded Philox order per epoch (a pure function of seed and
 * epoch, so the same for any thread count), fixed-size batches gathered into fresh contiguous
 * tensors, drop_last, and an optional background thread that gathers batch b + 1 while the
 * caller trains on batch b. The worker only reads the data set and the epoch's order, which the
 * caller never changes while the worker holds a job; errors it meets travel back to the
 * caller's thread with their message. */
#include "data/data_internal.h"

#include <pthread.h>
#include <string.h>

#define LOADER_FN "bn_loader_next"

typedef enum job_state { JOB_IDLE, JOB_REQUESTED, JOB_WORKING, JOB_READY } job_state;

struct bn_loader {
    bn_tensor *x, *y; /* the data set's tensors (references) */
    int64_t n, batch, nbatches;
    bn_loader_opts o;
    int64_t *order;  /* this epoch's row order */
    int64_t epoch;   /* the current epoch, -1 before the first */
    int64_t next;    /* the batch bn_loader_next hands out next */
    bool epoch_done; /* the last call returned the end of the epoch */
    /* prefetch (all under mu) */
    bool threaded, quit;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    job_state state;
    int64_t job;           /* the batch requested / prepared */
    bn_tensor *jx, *jy;    /* the prepared batch */
    bn_status jerr;        /* BN_OK, or the worker's error */
    char jmsg[512];
};

/* Gathers batch b of the current order into new tensors (not registered). */
static bn_status gather_batch(const bn_loader *l, int64_t b, bn_tensor **x, bn_tensor **y)
{
    int64_t start = b * l->batch;
    int64_t count = l->n - start < l->batch ? l->n - start : l->batch;
    *x = bn__gather_rows(l->x, l->order + start, count);
    *y = *x ? bn__gather_rows(l->y, l->order + start, count) : NULL;
    if (*y) return BN_OK;
    bn_release(*x);
    *x = NULL;
    return bn_error_code();
}

static void *prefetch_main(void *arg)
{
    bn_loader *l = arg;
    pthread_mutex_lock(&l->mu);
    for (;;) {
        while (!l->quit && l->state != JOB_REQUESTED) pthread_cond_wait(&l->cv, &l->mu);
        if (l->quit) break;
        l->state = JOB_WORKING;
        int64_t b = l->job;
        pthread_mutex_unlock(&l->mu);
        bn_tensor *x, *y;
        bn_status st = gather_batch(l, b, &x, &y);
        pthread_mutex_lock(&l->mu);
        l->jx = x;
        l->jy = y;
        l->jerr = st;
        if (st != BN_OK) snprintf(l->jmsg, sizeof l->jmsg, "%s", bn_error_message());
        bn_error_clear();
        l->state = JOB_READY;
        pthread_cond_broadcast(&l->cv);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

/* Waits until the worker holds no job; drops a prepared batch nobody took. (mu held) */
static void drain_locked(bn_loader *l)
{
    while (l->state == JOB_REQUESTED || l->state == JOB_WORKING) pthread_cond_wait(&l->cv, &l->mu);
    if (l->state == JOB_READY) {
        bn_release(l->jx);
        bn_release(l->jy);
        l->jx = l->jy = NULL;
    }
    l->state = JOB_IDLE;
}

static void request_locked(bn_loader *l, int64_t b)
{
    l->job = b;
    l->state = JOB_REQUESTED;
    pthread_cond_broadcast(&l->cv);
}

bn_loader *bn_loader_new(const bn_dataset *d, bn_loader_opts o)
{
    BN_CHECK_NULL("bn_loader_new", d);
    if (o.batch_size < 0)
        return bn__error_null(BN_ERR_ARG, "bn_loader_new: batch_size must be positive, got %lld",
                              (long long)o.batch_size);
    bn_loader *l = calloc(1, sizeof *l);
    if (!l) return bn__error_null(BN_ERR_OOM, "bn_loader_new: out of memory");
    l->o = o;
    l->batch = o.batch_size ? o.batch_size : 1;
    l->n = d->n;
    l->nbatches = o.drop_last ? l->n / l->batch : (l->n + l->batch - 1) / l->batch;
    l->order = malloc(sizeof(int64_t) * (size_t)(l->n ? l->n : 1));
    l->epoch = -1;
    if (!l->order) {
        free(l);
        return bn__error_null(BN_ERR_OOM, "bn_loader_new: out of memory");
    }
    bn_retain(d->x);
    bn_retain(d->y);
    l->x = d->x;
    l->y = d->y;
    if (o.prefetch) {
        pthread_mutex_init(&l->mu, NULL);
        pthread_cond_init(&l->cv, NULL);
        if (pthread_create(&l->thread, NULL, prefetch_main, l) != 0) {
            pthread_mutex_destroy(&l->mu);
            pthread_cond_destroy(&l->cv);
        } else {
            l->threaded = true; /* without a thread the loader still works, just serially */
        }
    }
    return l;
}

void bn_loader_free(bn_loader *l)
{
    if (!l) return;
    if (l->threaded) {
        pthread_mutex_lock(&l->mu);
        drain_locked(l);
        l->quit = true;
        pthread_cond_broadcast(&l->cv);
        pthread_mutex_unlock(&l->mu);
        pthread_join(l->thread, NULL);
        pthread_mutex_destroy(&l->mu);
        pthread_cond_destroy(&l->cv);
    }
    bn_release(l->x);
    bn_release(l->y);
    free(l->order);
    free(l);
}

int64_t bn_loader_num_batches(const bn_loader *l) { return l ? l->nbatches : -1; }

const int64_t *bn_loader_order(const bn_loader *l) { return l && l->epoch >= 0 ? l->order : NULL; }

bn_status bn_loader_start_epoch(bn_loader *l, int64_t epoch)
{
    BN_CHECK_NULL_STATUS("bn_loader_start_epoch", l);
    if (epoch < 0 || epoch >= ((int64_t)1 << 23) - 1)
        return bn__error(BN_ERR_ARG, "bn_loader_start_epoch: epoch must be in [0, 2^23 - 1), got %lld",
                         (long long)epoch);
    if (l->threaded) {
        pthread_mutex_lock(&l->mu);
        drain_locked(l);
    }
    if (l->o.shuffle)
        bn__philox_permutation(l->order, l->n, l->o.seed, (uint64_t)epoch);
    else
        for (int64_t i = 0; i < l->n; i++) l->order[i] = i;
    l->epoch = epoch;
    l->next = 0;
    l->epoch_done = false;
    if (l->threaded) {
        if (l->nbatches > 0) request_locked(l, 0);
        pthread_mutex_unlock(&l->mu);
    }
    return BN_OK;
}

/* Takes batch b from the worker (requesting it first if needed) and queues b + 1. */
static bn_status take_prefetched(bn_loader *l, int64_t b, bn_tensor **x, bn_tensor **y)
{
    pthread_mutex_lock(&l->mu);
    if (l->state == JOB_IDLE || l->job != b) {
        drain_locked(l);
        request_locked(l, b);
    }
    while (l->state != JOB_READY) pthread_cond_wait(&l->cv, &l->mu);
    *x = l->jx;
    *y = l->jy;
    l->jx = l->jy = NULL;
    bn_status st = l->jerr;
    char msg[sizeof l->jmsg];
    memcpy(msg, l->jmsg, sizeof msg);
    l->state = JOB_IDLE;
    if (st == BN_OK && b + 1 < l->nbatches) request_locked(l, b + 1);
    pthread_mutex_unlock(&l->mu);
    if (st != BN_OK) return bn__error(st, "%s", msg);
    return BN_OK;
}

bool bn_loader_next(bn_loader *l, bn_tensor **x, bn_tensor **y)
{
    if (x) *x = NULL;
    if (y) *y = NULL;
    if (!l || !x || !y) {
        bn__null_arg(LOADER_FN, !l ? "l" : !x ? "x" : "y");
        return false;
    }
    if (l->epoch < 0 || l->epoch_done) {
        if (bn_loader_start_epoch(l, l->epoch + 1) != BN_OK) return false;
    }
    if (l->next >= l->nbatches) {
        l->epoch_done = true;
        return false;
    }
    int64_t b = l->next++;
    bn_status st = l->threaded ? take_prefetched(l, b, x, y) : gather_batch(l, b, x, y);
    if (st != BN_OK) return false;
    bn__out(*x);
    bn__out(*y);
    return true;
}
