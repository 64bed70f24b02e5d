/* tools/born/cmd_train.c — `born train`: trains the benchmark MLP or CNN on MNIST-shaped data
 * (Fashion-MNIST, MNIST or a directory of IDX files) and reports each epoch: a progress bar on
 * a terminal, one plain line per epoch otherwise, or with --json one JSON object per epoch and a
 * final one (test_accuracy, epoch_seconds, samples_per_second). --out saves the trained model
 * (.born with the architecture in its config, or .safetensors); --checkpoint-every N --checkpoint
 * DIR writes a checkpoint every N epochs and --resume FILE continues from one with weights
 * bit-identical to a run that never stopped (each epoch's batch order is a function of the seed
 * and the epoch number). */
#include "cli.h"
#include "json.h"
#include "train_common.h"

#include "born/born.h"
#include "born/checkpoint.h"

#include <math.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct epoch_row {
    int epoch;
    bn_metrics train, test;
} epoch_row;

/* ---- JSON ---------------------------------------------------------------------------------- */
static void json_epoch(const train_cfg *c, const epoch_row *r)
{
    json_writer w = jw_writer_make(stdout);
    jw_begin_object(&w);
    jw_key(&w, "epoch");
    jw_int(&w, r->epoch);
    jw_key(&w, "epochs");
    jw_int(&w, c->epochs);
    tc_json_number(&w, "train_loss", r->train.loss);
    tc_json_number(&w, "train_accuracy", r->train.accuracy);
    tc_json_number(&w, "test_loss", r->test.loss);
    tc_json_number(&w, "test_accuracy", r->test.accuracy);
    tc_json_number(&w, "epoch_seconds", r->train.seconds);
    tc_json_number(&w, "samples_per_second",
                   r->train.seconds > 0 ? (double)r->train.samples / r->train.seconds : 0);
    jw_key(&w, "train_samples");
    jw_int(&w, r->train.samples);
    jw_end_object(&w);
    fputc('\n', stdout);
    fflush(stdout);
}

static void json_final(const train_cfg *c, const bn_metrics *test, double epoch_seconds,
                       double samples_per_second, double total_seconds)
{
    json_writer w = jw_writer_make(stdout);
    jw_begin_object(&w);
    jw_key(&w, "final");
    jw_bool(&w, true);
    jw_key(&w, "model");
    jw_string(&w, c->model);
    jw_key(&w, "data");
    jw_string(&w, c->data);
    jw_key(&w, "optim");
    jw_string(&w, c->optim);
    tc_json_number(&w, "lr", c->lr_used);
    jw_key(&w, "batch");
    jw_int(&w, c->batch);
    jw_key(&w, "epochs");
    jw_int(&w, c->epochs);
    jw_key(&w, "seed");
    jw_int(&w, (long long)c->seed);
    jw_key(&w, "threads");
    jw_int(&w, bn_num_threads());
    jw_key(&w, "device");
    jw_string(&w, c->device_name);
    jw_key(&w, "precision");
    jw_string(&w, c->precision);
    tc_json_number(&w, "test_loss", test->loss);
    tc_json_number(&w, "test_accuracy", test->accuracy);
    jw_key(&w, "test_samples");
    jw_int(&w, test->samples);
    tc_json_number(&w, "epoch_seconds", epoch_seconds);
    tc_json_number(&w, "samples_per_second", samples_per_second);
    tc_json_number(&w, "total_seconds", total_seconds);
    jw_end_object(&w);
    fputc('\n', stdout);
}

/* ---- the run ------------------------------------------------------------------------------- */
static void print_epoch_line(const train_cfg *c, const epoch_row *r)
{
    double rate = r->train.seconds > 0 ? (double)r->train.samples / r->train.seconds : 0;
    printf("epoch %d/%d  loss %.4f  acc %.4f  test loss %.4f  test acc %.4f  %.1f s  %.0f "
           "samples/s\n",
           r->epoch, c->epochs, r->train.loss, r->train.accuracy, r->test.loss, r->test.accuracy,
           r->train.seconds, rate);
    fflush(stdout);
}

/* Where to save and from what to resume. */
typedef struct save_cfg {
    const char *out, *ckpt_dir, *resume;
    int every; /* 0: no checkpoints */
} save_cfg;

/* The metrics so far as a JSON array, grown one row per epoch (malloc'ed; NULL when out of
 * memory). */
static char *history_append(char *hist, const epoch_row *r)
{
    char row[512];
    int n = snprintf(row, sizeof row,
                     "{\"epoch\":%d,\"train_loss\":%.17g,\"train_accuracy\":%.17g,"
                     "\"test_loss\":%.17g,\"test_accuracy\":%.17g}",
                     r->epoch, r->train.loss, r->train.accuracy, r->test.loss, r->test.accuracy);
    if (n < 0 || n >= (int)sizeof row) n = (int)sizeof row - 1;
    size_t old = hist ? strlen(hist) : 0; /* "[...]" */
    char *h = realloc(hist, old + (size_t)n + 3);
    if (!h) {
        free(hist);
        return NULL;
    }
    size_t at = old <= 2 ? 0 : old - 1; /* "" or "[]": start afresh; else over the ']' */
    h[at] = at ? ',' : '[';
    memcpy(h + at + 1, row, (size_t)n);
    memcpy(h + at + 1 + (size_t)n, "]", 2);
    return h;
}

static int save_checkpoint(const train_cfg *c, const save_cfg *sv, tc_session *s, int epoch,
                           int64_t steps, const char *hist)
{
    char path[4200], config[1024];
    snprintf(path, sizeof path, "%s/epoch-%04d.born", sv->ckpt_dir, epoch);
    tc_config_json(c, config, sizeof config);
    bn_checkpoint_info info = {.epoch = epoch, .step = steps, .rng = bn_rng_get_state(),
                               .history_json = (char *)hist, .config_json = config};
    if (bn_checkpoint_save(path, s->model, s->optim, NULL, &info) != BN_OK)
        return tc_fail("train", "%s", bn_error_message());
    if (!c->json) printf("checkpoint %s\n", path);
    return CLI_EXIT_OK;
}

static int train_epochs(const train_cfg *c, const save_cfg *sv, tc_session *s, int first,
                        char *hist)
{
    double train_seconds = 0, t_start = tc_now();
    int64_t train_samples = 0;
    bn_metrics test = {0};
    int rc = CLI_EXIT_OK;
    for (int e = first; e <= c->epochs && rc == CLI_EXIT_OK; e++) {
        epoch_row r = {.epoch = e};
        bn_progress p = bn_progress_make(stderr, e, c->epochs);
        if (c->json) p.tty = false;
        /* the batch order of epoch e is a function of (seed, e): the same after a resume */
        bn_status st = bn_loader_start_epoch(s->train_loader, e - 1);
        bn_train_opts to = {.precision = tc_precision(c), .scaler = s->scaler, .graph = c->graph};
        if (st == BN_OK)
            st = bn_train_epoch_ex(s->model, s->optim, s->train_loader, &to, bn_progress_update,
                                   &p, &r.train);
        bn_progress_done(&p);
        if (st == BN_OK) st = bn_evaluate(s->model, s->test_loader, 10, &r.test);
        if (st != BN_OK) {
            bn_metrics_free(&r.test);
            bn_metrics_free(&test);
            free(hist);
            return tc_fail("train", "training failed in epoch %d: %s", e, bn_error_message());
        }
        train_seconds += r.train.seconds;
        train_samples += r.train.samples;
        if (c->json)
            json_epoch(c, &r);
        else
            print_epoch_line(c, &r);
        bn_metrics_free(&test);
        test = r.test;
        hist = history_append(hist, &r);
        if (!hist) rc = tc_fail("train", "out of memory");
        if (rc == CLI_EXIT_OK && sv->every && (e % sv->every == 0 || e == c->epochs))
            rc = save_checkpoint(c, sv, s, e, bn_optim_step_count(s->optim), hist);
    }
    free(hist);
    if (rc != CLI_EXIT_OK) {
        bn_metrics_free(&test);
        return rc;
    }
    int ran = c->epochs - first + 1;
    double mean_epoch = ran > 0 ? train_seconds / ran : 0;
    double rate = train_seconds > 0 ? (double)train_samples / train_seconds : 0;
    if (c->json) {
        json_final(c, &test, mean_epoch, rate, tc_now() - t_start);
    } else if (ran > 0) {
        printf("test accuracy %.4f (%lld/%lld), %.1f s per epoch, %.0f samples/s\n", test.accuracy,
               (long long)test.correct, (long long)test.samples, mean_epoch, rate);
        if (c->confusion) bn_print_confusion(stdout, &test, bn_fashion_mnist_classes());
    }
    bn_metrics_free(&test);
    return CLI_EXIT_OK;
}

/* ---- options for files ------------------------------------------------------------------------ */
static bool has_ext(const char *path, const char *ext)
{
    size_t n = strlen(path), e = strlen(ext);
    return n > e && strcmp(path + n - e, ext) == 0;
}

static int parse_save(const cli_cmd *cmd, const cli_args *args, save_cfg *sv)
{
    *sv = (save_cfg){.out = cli_value(cmd, args, "--out"),
                     .ckpt_dir = cli_value(cmd, args, "--checkpoint"),
                     .resume = cli_value(cmd, args, "--resume")};
    const char *every = cli_value(cmd, args, "--checkpoint-every");
    if (sv->out && !has_ext(sv->out, ".born") && !has_ext(sv->out, ".safetensors"))
        return cli_usage_error("born train", "--out: '%s' must end in .born or .safetensors",
                               sv->out);
    if (every) {
        char *end;
        errno = 0;
        long v = strtol(every, &end, 10);
        if (!*every || *end || errno || v < 1 || v > 100000)
            return cli_usage_error("born train",
                                   "--checkpoint-every must be an integer in [1, 100000], got '%s'",
                                   every);
        sv->every = (int)v;
    }
    if (sv->every && !sv->ckpt_dir)
        return cli_usage_error("born train", "--checkpoint-every needs --checkpoint DIR");
    if (sv->ckpt_dir && !sv->every) sv->every = 1;
    if (sv->ckpt_dir && mkdir(sv->ckpt_dir, 0777) != 0 && errno != EEXIST)
        return tc_fail("train", "cannot create the checkpoint directory '%s': %s", sv->ckpt_dir,
                       strerror(errno));
    return TC_PARSE_OK;
}

/* A resumed run matches an uninterrupted one only with the same options: warns about each that
 * differs from the checkpoint's config. */
static void warn_changed_options(const train_cfg *c, const char *path, const char *saved)
{
    static const char *const keys[] = {"data", "optim", "lr", "batch", "seed", "limit"};
    char now[1024];
    tc_config_json(c, now, sizeof now);
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        char a[512], b[512];
        if (!tc_config_value(saved, keys[i], a, sizeof a) ||
            !tc_config_value(now, keys[i], b, sizeof b) || strcmp(a, b) == 0)
            continue;
        fprintf(stderr,
                "born train: warning: --%s is %s but %s was saved with %s%s; the run will not "
                "match an uninterrupted one\n",
                keys[i], b, path, a,
                strcmp(keys[i], "lr") == 0 ? " (the checkpoint's rate is used)" : "");
    }
}

/* Restores the model, the optimizer and the generator from sv->resume; *first = the next epoch,
 * *hist = the metrics history so far. */
static int resume(const train_cfg *c, const save_cfg *sv, tc_session *s, int *first, char **hist)
{
    bn_checkpoint_info info;
    if (bn_checkpoint_load(sv->resume, s->model, s->optim, NULL, &info) != BN_OK)
        return tc_fail("train", "cannot resume: %s", bn_error_message());
    char model[64];
    if (info.config_json && tc_config_model(info.config_json, model, sizeof model) &&
        strcmp(model, c->model) != 0) {
        bn_checkpoint_info_free(&info);
        return tc_fail("train", "cannot resume: %s holds a '%s' model, --model is '%s'",
                       sv->resume, model, c->model);
    }
    if (info.config_json) warn_changed_options(c, sv->resume, info.config_json);
    *first = (int)info.epoch + 1;
    *hist = info.history_json;
    info.history_json = NULL;
    bn_checkpoint_info_free(&info);
    if (!c->json)
        printf("resuming from %s after epoch %d\n", sv->resume, *first - 1);
    return CLI_EXIT_OK;
}

static int save_model(const train_cfg *c, const save_cfg *sv, tc_session *s)
{
    char config[1024];
    tc_config_json(c, config, sizeof config);
    bn_metadata md = {0};
    bn_status st = bn_metadata_set(&md, "born.model", c->model);
    if (st == BN_OK) st = bn_module_save_ex(s->model, sv->out, config, &md);
    bn_metadata_free(&md);
    if (st != BN_OK) return tc_fail("train", "%s", bn_error_message());
    if (!c->json) printf("saved %s\n", sv->out);
    return CLI_EXIT_OK;
}

static int run_train(const cli_cmd *cmd, const cli_args *args)
{
    train_cfg c;
    save_cfg sv;
    int rc = tc_parse(cmd, args, "train", &c);
    if (rc != TC_PARSE_OK) return rc;
    c.graph = cli_has(cmd, args, "--graph");
    if (c.graph && c.device.type != BN_DEVICE_CUDA)
        return cli_usage_error("born train", "--graph needs --device cuda (got --device %s)",
                               c.device_name);
    if (c.graph && tc_precision(&c) == BN_F16)
        return cli_usage_error("born train",
                               "--graph cannot run fp16's dynamic loss scaling; use --precision "
                               "bf16 or fp32");
    rc = parse_save(cmd, args, &sv);
    if (rc != TC_PARSE_OK) return rc;
    tc_session s;
    rc = tc_open(&c, &s, true);
    if (rc != CLI_EXIT_OK) return rc;
    int first = 1;
    char *hist = NULL;
    if (sv.resume) rc = resume(&c, &sv, &s, &first, &hist);
    if (rc == CLI_EXIT_OK && !c.json)
        printf("born train: %s on %s (%lld train / %lld test images from %s), %s lr %g, batch "
               "%lld, %d thread%s, seed %llu, %s, %s\n",
               c.model, c.data, (long long)bn_dataset_len(s.train), (long long)bn_dataset_len(s.test),
               s.dir, c.optim, c.lr_used, (long long)c.batch, bn_num_threads(),
               bn_num_threads() == 1 ? "" : "s", (unsigned long long)c.seed, c.device_name,
               c.precision);
    if (rc == CLI_EXIT_OK)
        rc = train_epochs(&c, &sv, &s, first, hist);
    else
        free(hist);
    if (rc == CLI_EXIT_OK && sv.out) rc = save_model(&c, &sv, &s);
    tc_close(&s);
    return rc;
}

static const cli_opt train_opts[] = {
    {"--model", "-m", "NAME",
     "mlp (784-128-10), cnn (2 conv + 2 linear), or gpt (see born train --model gpt --help)"},
    {"--data", "-d", "DATA", "fashion-mnist (default), mnist, or a directory of IDX files"},
    {"--epochs", "-e", "N", "epochs to train (default 1)"},
    {"--batch", "-b", "B", "batch size (default 64)"},
    {"--lr", NULL, "LR", "learning rate (default: the optimizer's, 1e-3 for adam)"},
    {"--optim", "-o", "NAME", "adam (default), adamw, sgd, rmsprop, adagrad or nadam"},
    {"--seed", "-s", "S", "seed for the initial weights and the batch order (default 0)"},
    {"--threads", "-t", "T", "CPU threads (default: OMP_NUM_THREADS or all cores)"},
    {"--device", NULL, "DEV", "cpu (default), cuda or cuda:N (needs the CUDA plugin and a GPU)"},
    {"--precision", NULL, "P", "fp32 (default), bf16 or fp16: autocast + loss scaling (fp16)"},
    {"--graph", NULL, NULL, "capture a step as a CUDA graph and replay it (--device cuda)"},
    {"--limit", NULL, "N", "use only the first N training and test images (smoke runs)"},
    {"--out", NULL, "FILE", "save the trained model (.born, or .safetensors) for born eval"},
    {"--checkpoint", NULL, "DIR", "write checkpoints DIR/epoch-NNNN.born (model, optimizer, RNG)"},
    {"--checkpoint-every", NULL, "N", "checkpoint every N epochs and after the last (default 1)"},
    {"--resume", NULL, "FILE", "continue from a checkpoint (same options; --epochs is the total)"},
    {"--confusion", NULL, NULL, "print the test set's confusion matrix at the end"},
    {"--json", NULL, NULL, "one JSON object per epoch and a final one, one per line"},
    {NULL, NULL, NULL, NULL},
};

const cli_cmd cli_cmd_train = {
    .name = "train",
    .summary = "train the MLP or CNN on Fashion-MNIST (or MNIST, or IDX files)",
    .args_usage = "",
    .description =
        "Trains a classifier on 28x28 grey images with cross-entropy and reports each epoch:\n"
        "training loss and accuracy, test loss and accuracy, seconds and samples/s. Images are\n"
        "scaled to [0, 1] and normalised like torchvision's Normalize((0.2860,), (0.3530,))\n"
        "(MNIST: (0.1307,), (0.3081,)). The data set is looked for in $BORN_DATA/<name>,\n"
        "$BORN_DATA and /usr/share/datasets/<name> (apt-get install dataset-fashion-mnist).\n"
        "--resume continues a run from a checkpoint with weights bit-identical to a run that\n"
        "never stopped (give the same --model/--optim/--lr/--batch/--seed/--data/--limit).\n"
        "Example: born train --model cnn --epochs 3 --batch 64 --lr 1e-3 --optim adam",
    .opts = train_opts,
    .max_positional = 0,
    .run = run_train,
};
