/* tools/born/train_common.h — what `born train` and `born eval` share: their options (parsed and
 * checked into a train_cfg, with exit code 2 and a clear message for bad values), opening the
 * data set, the model, the optimizer and the loaders, and small output helpers. */
#ifndef BORN_TRAIN_COMMON_H
#define BORN_TRAIN_COMMON_H

#include "cli.h"
#include "json.h"

#include "born/born.h"

typedef struct train_cfg {
    const char *model, *data, *optim;
    int epochs;
    int64_t batch;
    double lr;      /* 0: the optimizer's default */
    double lr_used; /* what the optimizer runs with */
    uint64_t seed;
    int threads; /* 0: leave as is */
    int64_t limit; /* 0: all */
    bool json, confusion;
    const char *device_name; /* --device as given ("cpu" when absent) */
    bn_device device;
    const char *precision;   /* --precision: "fp32" (default), "bf16" or "fp16" */
    bool graph;              /* born train --graph: CUDA graph steps (bn_train_opts.graph) */
} train_cfg;

/* tc_parse's "go on" value; anything else is the exit code to return. */
#define TC_PARSE_OK (-1)
/* "cpu", "cuda" or "cuda:N" into *out; false after a usage error. */
bool tc_parse_device(const char *help, const char *s, bn_device *out);
int tc_parse(const cli_cmd *cmd, const cli_args *args, const char *name, train_cfg *c);

typedef struct tc_session {
    bn_dataset *train, *test;
    bn_loader *train_loader, *test_loader;
    bn_module *model;
    bn_optim *optim;
    bn_grad_scaler *scaler; /* --precision fp16: dynamic loss scaling; NULL otherwise */
    char dir[4096]; /* where the data came from */
} tc_session;

/* Loads the data (and, when training, builds the model and the optimizer). Returns CLI_EXIT_OK,
 * or prints "born <cmd>: <why>" and returns CLI_EXIT_FAILURE. */
int tc_open(train_cfg *c, tc_session *s, bool training);
/* --precision as a dtype: BN_F32, BN_BF16 or BN_F16. */
bn_dtype tc_precision(const train_cfg *c);
/* Moves s->model to c->device (nothing for the CPU); CLI_EXIT_OK or a printed failure. */
int tc_model_to_device(const train_cfg *c, tc_session *s, const char *cmd);
void tc_close(tc_session *s);

/* The run as a JSON object for a saved model's config ("model", "data", "optim", "lr", "batch",
 * "seed", "epochs", "limit"): born eval rebuilds the architecture from "model". */
void tc_config_json(const train_cfg *c, char *buf, size_t n);
/* The "model" string of such a config into out; false when there is none. */
bool tc_config_model(const char *config_json, char *out, size_t n);
/* The text of key's value in such a config (a string without its quotes, or a number). */
bool tc_config_value(const char *config_json, const char *key, char *out, size_t n);

/* Prints "born <cmd>: <message>" to stderr; returns CLI_EXIT_FAILURE. */
int tc_fail(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
double tc_now(void);
/* "key": number (finite; 6 significant digits past what %g shows is not needed here) */
void tc_json_number(json_writer *w, const char *key, double v);

#endif
