/* tools/born/train_common.c — option checking and set-up shared by `born train` and `born
 * eval` (see train_common.h). */
#include "train_common.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

double tc_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int tc_fail(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "born %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return CLI_EXIT_FAILURE;
}

/* The same comma logic as json.c's writer (which has no number writer yet). */
void tc_json_number(json_writer *w, const char *key, double v)
{
    jw_key(w, key);
    jw_number(w, v);
}

/* s as a JSON string body (quotes and backslashes escaped, control characters dropped). */
static void json_escaped(const char *s, char *out, size_t n)
{
    size_t k = 0;
    for (; *s && k + 3 < n; s++) {
        if (*s == '"' || *s == '\\') out[k++] = '\\';
        if ((unsigned char)*s >= 0x20) out[k++] = *s;
    }
    out[k] = '\0';
}

void tc_config_json(const train_cfg *c, char *buf, size_t n)
{
    char data[512];
    json_escaped(c->data, data, sizeof data);
    snprintf(buf, n,
             "{\"format\":\"born-train\",\"model\":\"%s\",\"data\":\"%s\",\"optim\":\"%s\","
             "\"lr\":%.17g,\"batch\":%lld,\"seed\":%llu,\"epochs\":%d,\"limit\":%lld}",
             c->model, data, c->optim, c->lr_used, (long long)c->batch,
             (unsigned long long)c->seed, c->epochs, (long long)c->limit);
}

bool tc_config_value(const char *config_json, const char *key, char *out, size_t n)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\"", key);
    const char *p = config_json ? strstr(config_json, pat) : NULL;
    if (!p) return false;
    p += strlen(pat);
    while (*p == ' ' || *p == ':') p++;
    bool quoted = *p == '"';
    p += quoted;
    size_t len = quoted ? strcspn(p, "\"") : strcspn(p, ",}");
    if ((quoted && p[len] != '"') || len + 1 > n) return false;
    memcpy(out, p, len);
    out[len] = '\0';
    return true;
}

bool tc_config_model(const char *config_json, char *out, size_t n)
{
    return tc_config_value(config_json, "model", out, n);
}

/* An integer option in [lo, hi]; *ok false after printing a usage error. */
static int64_t int_option(const char *help, const char *opt, const char *s, int64_t lo,
                          int64_t hi, int64_t dflt, bool *ok)
{
    if (!s) return dflt;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || errno || v < lo || v > hi) {
        if (hi == INT64_MAX)
            cli_usage_error(help, "%s must be an integer >= %lld, got '%s'", opt, (long long)lo, s);
        else
            cli_usage_error(help, "%s must be an integer in [%lld, %lld], got '%s'", opt,
                            (long long)lo, (long long)hi, s);
        *ok = false;
        return dflt;
    }
    return v;
}

static const char *const optim_names[] = {"adam", "adamw", "sgd", "rmsprop", "adagrad", "nadam"};
#define NOPTIMS ((int)(sizeof optim_names / sizeof optim_names[0]))
static const char *const model_names[] = {"mlp", "cnn"};

/* name must be one of names; otherwise a usage error with a hint. */
static bool check_name(const char *help, const char *opt, const char *name,
                       const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(name, names[i]) == 0) return true;
    const char *hint = cli_suggest(name, names, n);
    char list[256] = "";
    for (int i = 0; i < n; i++) {
        strcat(list, names[i]);
        if (i + 1 < n) strcat(list, ", ");
    }
    if (hint)
        cli_usage_error(help, "%s: unknown name '%s' (did you mean '%s'? known: %s)", opt, name,
                        hint, list);
    else
        cli_usage_error(help, "%s: unknown name '%s' (known: %s)", opt, name, list);
    return false;
}

bool tc_parse_device(const char *help, const char *s, bn_device *out)
{
    if (strcmp(s, "cpu") == 0) {
        *out = bn_cpu();
        return true;
    }
    if (strcmp(s, "cuda") == 0) {
        *out = bn_cuda(0);
        return true;
    }
    if (strncmp(s, "cuda:", 5) == 0 && s[5]) {
        char *end;
        errno = 0;
        long v = strtol(s + 5, &end, 10);
        if (!*end && !errno && v >= 0 && v < 64) {
            *out = bn_cuda((int)v);
            return true;
        }
    }
    cli_usage_error(help, "--device must be cpu, cuda or cuda:N, got '%s'", s);
    return false;
}

bn_dtype tc_precision(const train_cfg *c)
{
    if (strcmp(c->precision, "bf16") == 0) return BN_BF16;
    if (strcmp(c->precision, "fp16") == 0) return BN_F16;
    return BN_F32;
}

int tc_model_to_device(const train_cfg *c, tc_session *s, const char *cmd)
{
    if (c->device.type == BN_DEVICE_CPU) return CLI_EXIT_OK;
    if (bn_module_to_device(s->model, c->device) != BN_OK)
        return tc_fail(cmd, "--device %s: %s", c->device_name, bn_error_message());
    return CLI_EXIT_OK;
}

int tc_parse(const cli_cmd *cmd, const cli_args *args, const char *name, train_cfg *c)
{
    char help[32];
    snprintf(help, sizeof help, "born %s", name);
    bool ok = true;
    *c = (train_cfg){0};
    c->model = cli_value(cmd, args, "--model");
    c->data = cli_value(cmd, args, "--data");
    c->optim = cli_value(cmd, args, "--optim");
    if (!c->data) c->data = "fashion-mnist";
    if (!c->optim) c->optim = "adam";
    if (strcmp(name, "train") == 0) {
        if (!c->model) c->model = "mlp";
        if (!check_name(help, "--model", c->model, model_names, 2)) return CLI_EXIT_USAGE;
        if (!check_name(help, "--optim", c->optim, optim_names, NOPTIMS)) return CLI_EXIT_USAGE;
    } else if (!c->model) {
        return cli_usage_error(help, "--model FILE is required (a model saved by born train)");
    }
    c->epochs = (int)int_option(help, "--epochs", cli_value(cmd, args, "--epochs"), 1, 100000, 1, &ok);
    if (ok) c->batch = int_option(help, "--batch", cli_value(cmd, args, "--batch"), 1, 1 << 24, 64, &ok);
    if (ok) c->seed = (uint64_t)int_option(help, "--seed", cli_value(cmd, args, "--seed"), 0, INT64_MAX, 0, &ok);
    if (ok) c->threads = (int)int_option(help, "--threads", cli_value(cmd, args, "--threads"), 1, 1024, 0, &ok);
    if (ok) c->limit = int_option(help, "--limit", cli_value(cmd, args, "--limit"), 1, INT64_MAX, 0, &ok);
    if (!ok) return CLI_EXIT_USAGE;
    const char *lr = cli_value(cmd, args, "--lr");
    if (lr) {
        char *end;
        c->lr = strtod(lr, &end);
        if (!*lr || *end || !(c->lr > 0) || !isfinite(c->lr))
            return cli_usage_error(help, "--lr must be a positive number, got '%s'", lr);
    }
    c->json = cli_has(cmd, args, "--json");
    c->confusion = cli_has(cmd, args, "--confusion");
    c->device_name = cli_value(cmd, args, "--device");
    if (!c->device_name) c->device_name = "cpu";
    if (!tc_parse_device(help, c->device_name, &c->device)) return CLI_EXIT_USAGE;
    c->precision = cli_value(cmd, args, "--precision");
    if (!c->precision) c->precision = "fp32";
    static const char *const precisions[] = {"fp32", "bf16", "fp16"};
    if (!check_name(help, "--precision", c->precision, precisions, 3)) return CLI_EXIT_USAGE;
    return TC_PARSE_OK;
}

static bn_dataset *load_split(const train_cfg *c, bool test)
{
    bn_dataset *d = bn_mnist_load(c->data, (bn_mnist_opts){.test = test, .normalize = true});
    if (!d || !c->limit || c->limit >= bn_dataset_len(d)) return d;
    bn_dataset *s = bn_dataset_slice(d, 0, c->limit);
    bn_dataset_free(d);
    return s;
}

static bn_optim *make_optim(train_cfg *c, bn_module *m)
{
    double lr = c->lr;
    const char *o = c->optim;
    bn_optim *opt = NULL;
    if (strcmp(o, "adam") == 0) opt = bn_optim_adam(m, (bn_adam_opts){.lr = lr});
    else if (strcmp(o, "adamw") == 0) opt = bn_optim_adamw(m, (bn_adam_opts){.lr = lr});
    else if (strcmp(o, "sgd") == 0) opt = bn_optim_sgd(m, (bn_sgd_opts){.lr = lr});
    else if (strcmp(o, "rmsprop") == 0) opt = bn_optim_rmsprop(m, (bn_rmsprop_opts){.lr = lr});
    else if (strcmp(o, "adagrad") == 0) opt = bn_optim_adagrad(m, (bn_adagrad_opts){.lr = lr});
    else opt = bn_optim_nadam(m, (bn_nadam_opts){.lr = lr});
    c->lr_used = opt ? bn_optim_get_lr(opt) : lr;
    return opt;
}

int tc_open(train_cfg *c, tc_session *s, bool training)
{
    const char *cmd = training ? "train" : "eval";
    *s = (tc_session){0};
    if (c->threads && bn_set_num_threads(c->threads) != BN_OK)
        return tc_fail(cmd, "%s", bn_error_message());
    if (!bn_mnist_find(c->data, s->dir, sizeof s->dir)) snprintf(s->dir, sizeof s->dir, "?");
    s->test = load_split(c, true);
    if (training && s->test) s->train = load_split(c, false);
    if (!s->test || (training && !s->train)) {
        tc_close(s);
        return tc_fail(cmd, "%s", bn_error_message());
    }
    s->test_loader = bn_loader_new(s->test, (bn_loader_opts){.batch_size = 1000, .prefetch = true});
    if (training) {
        bn_manual_seed(c->seed);
        s->model = bn_model_build(c->model);
        if (s->model && tc_model_to_device(c, s, cmd) != CLI_EXIT_OK) {
            tc_close(s);
            return CLI_EXIT_FAILURE;
        }
        s->optim = s->model ? make_optim(c, s->model) : NULL;
        if (s->optim && tc_precision(c) == BN_F16 &&
            !(s->scaler = bn_grad_scaler_new((bn_grad_scaler_opts){0}))) {
            int rc = tc_fail(cmd, "%s", bn_error_message());
            tc_close(s);
            return rc;
        }
        s->train_loader = bn_loader_new(s->train, (bn_loader_opts){.batch_size = c->batch,
                                                                   .shuffle = true,
                                                                   .seed = c->seed,
                                                                   .prefetch = true});
    }
    if (!s->test_loader || (training && (!s->optim || !s->train_loader))) {
        int rc = tc_fail(cmd, "%s", bn_error_message());
        tc_close(s);
        return rc;
    }
    return CLI_EXIT_OK;
}

void tc_close(tc_session *s)
{
    bn_loader_free(s->train_loader);
    bn_loader_free(s->test_loader);
    bn_grad_scaler_free(s->scaler);
    bn_optim_free(s->optim);
    bn_module_free(s->model);
    bn_dataset_free(s->train);
    bn_dataset_free(s->test);
    *s = (tc_session){0};
}
