/* born/checkpoint.h — loading a model that does not quite match its file (a report of the
 * missing, unexpected and shape-mismatched keys, by name), and training checkpoints: the model,
 * the optimizer's state, the learning-rate schedule's position, the random generator, the
 * epoch/step counters and a metrics history in one .born file, so that training resumed from it
 * gives bit-identical weights to a run that never stopped (DESIGN §9). */
#ifndef BORN_CHECKPOINT_H
#define BORN_CHECKPOINT_H

#include "io.h"
#include "nn.h"
#include "optim.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What a load found. Every list holds malloc'ed strings; free with bn_load_report_free.
 * missing: keys of the module not in the file; unexpected: keys of the file not in the module;
 * mismatched: keys in both with different shapes, as "name: file [2, 3], module [3, 2]". */
typedef struct bn_load_report {
    int n_missing, n_unexpected, n_mismatched;
    char **missing, **unexpected, **mismatched;
} bn_load_report;
BN_API void bn_load_report_free(bn_load_report *r); /* NULL is ignored */

/* Compares sd with m's state dict, fills report (may be NULL) and copies every entry present in
 * both with equal shapes. strict: any missing, unexpected or mismatched key is an error (BN_ERR_ARG,
 * or BN_ERR_SHAPE when only shapes differ) naming the keys, and nothing is copied. */
BN_API bn_status bn_module_load_state_dict_ex(bn_module *m, const bn_tensor_list *sd, bool strict,
                                              bn_load_report *report);
/* The same from a file (.born or .safetensors, by extension). bn_module_load(m, path) is
 * bn_module_load_ex(m, path, true, NULL). */
BN_API bn_status bn_module_load_ex(bn_module *m, const char *path, bool strict,
                                   bn_load_report *report);
/* bn_module_save with the model's architecture/config (a JSON object, .born only; may be NULL)
 * and metadata (may be NULL). */
BN_API bn_status bn_module_save_ex(const bn_module *m, const char *path, const char *config_json,
                                   const bn_metadata *metadata);

/* ---- checkpoints ---------------------------------------------------------------------------- */
/* The counters and extras of a checkpoint. history_json is a JSON array of the metrics so far
 * (its rows are the caller's; NULL: "[]"); config_json a JSON object describing the model
 * (NULL: none). On load both come back malloc'ed (free with bn_checkpoint_info_free). */
typedef struct bn_checkpoint_info {
    int64_t epoch;    /* epochs completed */
    int64_t step;     /* optimizer steps taken */
    bn_rng_state rng; /* the generator's state at saving (bn_rng_get_state) */
    char *history_json;
    char *config_json;
} bn_checkpoint_info;
BN_API void bn_checkpoint_info_free(bn_checkpoint_info *info); /* NULL is ignored */

/* Writes m's state dict ("model.<key>"), o's state tensors ("optim.<i>.<state>") and step
 * count, s's position and learning rate, and info into path (.born; written to a temporary name
 * and renamed). o and s may be NULL. */
BN_API bn_status bn_checkpoint_save(const char *path, const bn_module *m, const bn_optim *o,
                                    const bn_sched *s, const bn_checkpoint_info *info);
/* Restores what bn_checkpoint_save wrote into m (strict), o and s (each may be NULL; when not
 * NULL the file must hold its state, from an optimizer of the same kind over the same shapes),
 * sets the random generator to the saved state and fills info (may be NULL). A schedule gets
 * its saved state back exactly (bn_sched_set_state: position, rate, ReduceLROnPlateau's best
 * value and counters). Nothing is changed when the file does not match. */
BN_API bn_status bn_checkpoint_load(const char *path, bn_module *m, bn_optim *o, bn_sched *s,
                                    bn_checkpoint_info *info);

#ifdef __cplusplus
}
#endif
#endif
