/* tools/born/gpt_common.h — what `born train --model gpt` and `born eval` on a GPT share: the
 * loss estimate over fixed batches (so `born eval` reproduces a training run's validation loss
 * exactly), and the training checkpoint of a GPT run. A checkpoint is the file
 * bn_checkpoint_save writes (checkpoint.h: "model.*", the decayed parameters' AdamW state as
 * "optim.*", its schedule, the generator, the step and the history; bn_checkpoint_load restores
 * those), plus what that API has no place for: the second AdamW (no weight decay: biases and
 * norm weights) as "optim2.*" with its schedule, the train loader's generator, the best
 * validation loss so far, the model config, the tokenizer and the training options. */
#ifndef BORN_GPT_COMMON_H
#define BORN_GPT_COMMON_H

#include "cli.h"

#include "born/born.h"
#include "born/gpt.h"

#include <stdbool.h>
#include <stdint.h>

/* The mean loss of iters random windows (batch x model context) of a split, drawn from the
 * loader seed `seed` (the trainer uses its --seed + 1 for train, + 2 for val); the model in eval
 * mode and without gradients for the call, then back in training mode when train_after.
 * precision BN_F32 or an autocast dtype. */
bn_status gpt_mean_loss(bn_module *m, const bn_text_data *d, bn_text_split split, int64_t batch,
                        int64_t iters, uint64_t seed, bn_dtype precision, bool train_after,
                        double *loss);

/* The objects of a run a checkpoint saves and restores (optim[1] / sched[1] may be NULL). */
typedef struct gpt_ckpt_objs {
    bn_module *model;
    bn_optim *optim[2]; /* [0] with weight decay, [1] without */
    bn_sched *sched[2];
    bn_text_loader *loader;
    const bn_tokenizer *tok;
} gpt_ckpt_objs;

/* The counters and notes of a checkpoint. */
typedef struct gpt_ckpt_progress {
    int64_t step;      /* optimizer steps taken */
    double best_val;   /* the lowest validation loss evaluated so far (NaN: none) */
    int64_t best_step; /* where it was (0: none) */
    char *history;     /* JSON array of {"step","train_loss","val_loss"}; malloc'ed */
} gpt_ckpt_progress;

/* Appends an evaluation to p->history; false when out of memory. */
bool gpt_history_append(gpt_ckpt_progress *p, int64_t step, double train, double val);

/* Writes path (.born, through a temporary name). options_json: the run's options (a JSON
 * object), kept to warn when a resume changes them. Prints "born <cmd>: ..." on failure and
 * returns CLI_EXIT_FAILURE; CLI_EXIT_OK otherwise. */
int gpt_ckpt_save(const char *cmd, const char *path, const gpt_ckpt_objs *o,
                  const gpt_ckpt_progress *p, const char *options_json);

/* A checkpoint file opened for resuming (mapped once; read by the calls below). */
typedef struct gpt_ckpt_file {
    const char *path;
    bn_loaded f;
    bn_gpt_config config; /* the model's config as saved */
    const char *tokenizer_json, *options_json; /* in f's metadata (NULL when absent) */
} gpt_ckpt_file;

/* Opens path and checks that it is a GPT training checkpoint; prints why not (naming the path)
 * and returns CLI_EXIT_FAILURE. */
int gpt_ckpt_open(const char *cmd, const char *path, gpt_ckpt_file *out);
void gpt_ckpt_close(gpt_ckpt_file *f);
/* The run being resumed has this model (resolved config) and this tokenizer (from --data):
 * either differing is an error naming the difference. */
int gpt_ckpt_check(const char *cmd, const gpt_ckpt_file *f, const bn_gpt_config *model,
                   const bn_tokenizer *tok);
/* Restores every object of o and fills *p (p->history malloc'ed). The model, the decayed
 * parameters' optimizer and schedule and the generator go through bn_checkpoint_load; the rest
 * is read here, after it is checked. */
int gpt_ckpt_restore(const char *cmd, const gpt_ckpt_file *f, const gpt_ckpt_objs *o,
                     gpt_ckpt_progress *p);

/* `born eval` routing (main.c): true when argv (a `born eval` command line) is about a GPT —
 * --model gpt, --split or --iters given, --data naming a regular file, or a --model file whose
 * metadata says "born.model": "gpt". */
bool cli_eval_is_gpt(int argc, char **argv);
/* `born eval` on a GPT (cmd_eval_gpt.c). */
extern const cli_cmd cli_cmd_eval_gpt;

#endif
