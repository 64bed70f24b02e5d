/* train/progress.c — what a training run shows while it runs: on a terminal, a progress bar
 * redrawn in place at most ~8 times a second (loss, accuracy, samples/s, ETA); in a log or a
 * pipe nothing per batch, so logs stay one line per epoch. Also the confusion-matrix table. */
#include "born/train.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

bn_progress bn_progress_make(FILE *f, int epoch, int epochs)
{
    bool tty = f && isatty(fileno(f)) && !getenv("BORN_NO_PROGRESS");
    return (bn_progress){.f = f, .tty = tty, .epoch = epoch, .epochs = epochs, .last_draw = -1};
}

static void format_eta(char *buf, size_t n, double seconds)
{
    if (seconds < 0 || seconds > 1e7) {
        snprintf(buf, n, "?");
        return;
    }
    long s = (long)(seconds + 0.5);
    if (s >= 3600)
        snprintf(buf, n, "%ldh%02ldm", s / 3600, s / 60 % 60);
    else if (s >= 60)
        snprintf(buf, n, "%ldm%02lds", s / 60, s % 60);
    else
        snprintf(buf, n, "%lds", s);
}

void bn_progress_update(void *progress, int64_t batch, int64_t nbatches, const bn_metrics *so_far)
{
    bn_progress *p = progress;
    if (!p || !p->tty || !so_far) return;
    bool last = batch >= nbatches;
    if (!last && p->last_draw >= 0 && so_far->seconds - p->last_draw < 0.125) return;
    p->last_draw = so_far->seconds;
    enum { WIDTH = 24 };
    char bar[WIDTH + 1];
    int filled = nbatches > 0 ? (int)(WIDTH * batch / nbatches) : WIDTH;
    for (int i = 0; i < WIDTH; i++) bar[i] = i < filled ? '=' : i == filled ? '>' : ' ';
    bar[WIDTH] = '\0';
    double rate = so_far->seconds > 0 ? (double)so_far->samples / so_far->seconds : 0;
    double per_batch = batch > 0 ? so_far->seconds / (double)batch : 0;
    char eta[32];
    format_eta(eta, sizeof eta, per_batch * (double)(nbatches - batch));
    fprintf(p->f, "\r\033[Kepoch %d/%d [%s] %lld/%lld loss %.4f acc %.4f %.0f samples/s ETA %s",
            p->epoch, p->epochs, bar, (long long)batch, (long long)nbatches, so_far->loss,
            so_far->accuracy, rate, eta);
    fflush(p->f);
}

void bn_progress_done(bn_progress *p)
{
    if (!p || !p->tty) return;
    fputs("\r\033[K", p->f);
    fflush(p->f);
}

void bn_print_confusion(FILE *f, const bn_metrics *m, const char *const *class_names)
{
    if (!f || !m || !m->confusion) return;
    int c = m->num_classes;
    fprintf(f, "confusion matrix (rows: true class, columns: predicted)\n%14s", "");
    for (int j = 0; j < c; j++) fprintf(f, " %6d", j);
    fputc('\n', f);
    for (int i = 0; i < c; i++) {
        char label[32];
        if (class_names)
            snprintf(label, sizeof label, "%d %s", i, class_names[i]);
        else
            snprintf(label, sizeof label, "%d", i);
        fprintf(f, "%-14.14s", label);
        for (int j = 0; j < c; j++) fprintf(f, " %6lld", (long long)m->confusion[i * c + j]);
        fputc('\n', f);
    }
}
