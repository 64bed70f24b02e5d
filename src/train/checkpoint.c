/* train/checkpoint.c — training checkpoints (checkpoint.h): one .born file holding the model's
 * state dict ("model.<key>"), the optimizer's state tensors ("optim.<i>.<state>") and, in the
 * metadata, the optimizer's kind, step count and learning rate, the schedule's position, the
 * random generator's state, the epoch/step counters and the metrics history (JSON). Loading
 * checks everything against the live objects before it changes any of them. */
#include "born/checkpoint.h"
#include "born/io.h"
#include "born/nn.h"
#include "born/optim.h"
#include "core/internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CK_SAVE "bn_checkpoint_save"
#define CK_LOAD "bn_checkpoint_load"
#define CK_VERSION "1"

void bn_checkpoint_info_free(bn_checkpoint_info *info)
{
    if (!info) return;
    free(info->history_json);
    free(info->config_json);
    *info = (bn_checkpoint_info){0};
}

static char *dup_string(const char *s)
{
    if (!s) return NULL;
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

/* ---- a growing tensor list ------------------------------------------------------------------ */
static bool list_push(bn_tensor_list *l, const char *prefix, const char *name, bn_tensor *t)
{
    char **names = realloc(l->names, sizeof(char *) * (size_t)(l->count + 1));
    if (names) l->names = names;
    bn_tensor **ts = names ? realloc(l->tensors, sizeof(bn_tensor *) * (size_t)(l->count + 1)) : NULL;
    if (ts) l->tensors = ts;
    size_t n = strlen(prefix) + strlen(name) + 1;
    char *full = ts ? malloc(n) : NULL;
    if (!full) return false;
    snprintf(full, n, "%s%s", prefix, name);
    bn_retain(t);
    l->names[l->count] = full;
    l->tensors[l->count++] = t;
    return true;
}

/* ---- saving --------------------------------------------------------------------------------- */
static bool meta_i64(bn_metadata *md, const char *key, int64_t v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%" PRId64, v);
    return bn_metadata_set(md, key, buf) == BN_OK;
}

static bool meta_u64(bn_metadata *md, const char *key, uint64_t v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%" PRIu64, v);
    return bn_metadata_set(md, key, buf) == BN_OK;
}

static bool meta_f64(bn_metadata *md, const char *key, double v)
{
    char buf[40];
    snprintf(buf, sizeof buf, "%.17g", v); /* round-trips exactly */
    return bn_metadata_set(md, key, buf) == BN_OK;
}

static bool fill_metadata(bn_metadata *md, const bn_optim *o, const bn_sched *s,
                          const bn_checkpoint_info *info)
{
    bn_checkpoint_info none = {.rng = bn_rng_get_state()};
    if (!info) info = &none;
    bool ok = bn_metadata_set(md, "born.checkpoint", CK_VERSION) == BN_OK &&
              meta_i64(md, "epoch", info->epoch) && meta_i64(md, "step", info->step) &&
              meta_u64(md, "rng.seed", info->rng.seed) &&
              meta_u64(md, "rng.offset", info->rng.offset) &&
              bn_metadata_set(md, "history", info->history_json ? info->history_json : "[]") ==
                  BN_OK;
    if (ok && o)
        ok = bn_metadata_set(md, "optim.name", bn_optim_name(o)) == BN_OK &&
             meta_i64(md, "optim.steps", bn_optim_step_count(o)) &&
             meta_f64(md, "optim.lr", bn_optim_get_lr(o)) &&
             meta_i64(md, "optim.num_params", bn_optim_num_params(o));
    if (ok && s) {
        bn_sched_state ss = bn_sched_get_state(s);
        ok = meta_i64(md, "sched.last_epoch", ss.last_epoch) && meta_f64(md, "sched.lr", ss.lr) &&
             meta_f64(md, "sched.best", ss.best) && meta_i64(md, "sched.bad_epochs", ss.bad_epochs) &&
             meta_i64(md, "sched.cooldown_counter", ss.cooldown_counter);
    }
    return ok;
}

/* The optimizer's state tensors into l as "optim.<name>". Runs in the caller's scope. */
static bool push_optim_state(bn_tensor_list *l, const bn_optim *o)
{
    int n = bn_optim_state_count(o);
    for (int i = 0; i < n; i++) {
        const char *name = NULL;
        bn_tensor *t = bn_optim_state(o, i, &name);
        if (!t || !list_push(l, "optim.", name, t)) return false;
    }
    return true;
}

static bool collect_tensors(bn_tensor_list *l, const bn_module *m, const bn_optim *o)
{
    bn_tensor_list sd = bn_module_state_dict(m);
    if (sd.count < 0) return false;
    bool ok = true;
    for (int i = 0; ok && i < sd.count; i++) ok = list_push(l, "model.", sd.names[i], sd.tensors[i]);
    bn_tensor_list_free(&sd);
    if (ok && o) {
        bn_scope_begin();
        ok = push_optim_state(l, o);
        bn_scope_end();
    }
    return ok;
}

bn_status bn_checkpoint_save(const char *path, const bn_module *m, const bn_optim *o,
                             const bn_sched *s, const bn_checkpoint_info *info)
{
    BN_CHECK_NULL_STATUS(CK_SAVE, path);
    BN_CHECK_NULL_STATUS(CK_SAVE, m);
    bn_tensor_list l = {0};
    bn_metadata md = {0};
    bn_status st = BN_OK;
    bn_error_clear();
    if (!collect_tensors(&l, m, o) || !fill_metadata(&md, o, s, info))
        st = bn_error_code() != BN_OK ? bn_error_code()
                                      : bn__error(BN_ERR_OOM, CK_SAVE ": out of memory");
    if (st == BN_OK)
        st = bn_save_tensors(path, &l, (bn_save_opts){.metadata = &md,
                                                      .config_json = info ? info->config_json
                                                                          : NULL});
    bn_tensor_list_free(&l);
    bn_metadata_free(&md);
    return st;
}

/* ---- loading -------------------------------------------------------------------------------- */
static bn_status meta_int(const bn_loaded *f, const char *path, const char *key, int64_t *out)
{
    const char *v = bn_metadata_get(&f->metadata, key);
    char *end = NULL;
    errno = 0;
    long long x = v ? strtoll(v, &end, 10) : 0;
    if (!v || !*v || *end || errno)
        return bn__error(BN_ERR_FORMAT, CK_LOAD ": %s: metadata \"%s\" is %s%s%s", path, key,
                         v ? "not an integer: \"" : "missing", v ? v : "", v ? "\"" : "");
    *out = x;
    return BN_OK;
}

static bn_status meta_uint(const bn_loaded *f, const char *path, const char *key, uint64_t *out)
{
    const char *v = bn_metadata_get(&f->metadata, key);
    char *end = NULL;
    errno = 0;
    unsigned long long x = v && *v != '-' ? strtoull(v, &end, 10) : 0;
    if (!v || !*v || *v == '-' || *end || errno)
        return bn__error(BN_ERR_FORMAT, CK_LOAD ": %s: metadata \"%s\" is missing or not an "
                                        "unsigned integer", path, key);
    *out = x;
    return BN_OK;
}

static bn_status meta_real(const bn_loaded *f, const char *path, const char *key, double *out)
{
    const char *v = bn_metadata_get(&f->metadata, key);
    char *end = NULL;
    double x = v ? strtod(v, &end) : 0;
    if (!v || !*v || *end)
        return bn__error(BN_ERR_FORMAT, CK_LOAD ": %s: metadata \"%s\" is missing or not a number",
                         path, key);
    *out = x;
    return BN_OK;
}

static const bn_tensor *find_tensor(const bn_loaded *f, const char *name)
{
    for (int i = 0; i < f->tensors.count; i++)
        if (strcmp(f->tensors.names[i], name) == 0) return f->tensors.tensors[i];
    return NULL;
}

/* The file's "model.*" entries with the prefix taken off (new references). */
static bool model_entries(const bn_loaded *f, bn_tensor_list *out)
{
    for (int i = 0; i < f->tensors.count; i++)
        if (strncmp(f->tensors.names[i], "model.", 6) == 0 &&
            !list_push(out, "", f->tensors.names[i] + 6, f->tensors.tensors[i]))
            return false;
    return true;
}

/* The optimizer in the file is o's kind over the same state shapes. */
static bn_status check_optim(const bn_loaded *f, const char *path, const bn_optim *o)
{
    const char *kind = bn_metadata_get(&f->metadata, "optim.name");
    if (!kind)
        return bn__error(BN_ERR_ARG, CK_LOAD ": %s holds no optimizer state (pass o = NULL)", path);
    if (strcmp(kind, bn_optim_name(o)) != 0)
        return bn__error(BN_ERR_ARG, CK_LOAD ": %s holds %s state, the optimizer is %s", path,
                         kind, bn_optim_name(o));
    bn_status st = BN_OK;
    bn_scope_begin();
    for (int i = 0; st == BN_OK && i < bn_optim_state_count(o); i++) {
        const char *name = NULL;
        bn_tensor *t = bn_optim_state(o, i, &name);
        char key[96];
        snprintf(key, sizeof key, "optim.%s", name ? name : "?");
        const bn_tensor *src = t ? find_tensor(f, key) : NULL;
        if (!t)
            st = bn_error_code();
        else if (!src)
            st = bn__error(BN_ERR_ARG, CK_LOAD ": %s has no optimizer state \"%s\"", path, key);
        else if (!bn_shape_equal(bn_shape_of(t), bn_shape_of(src)))
            st = bn__error(BN_ERR_SHAPE, CK_LOAD ": %s: \"%s\" is %s in the file but %s in the "
                                         "optimizer", path, key, bn__tshape(src), bn__tshape(t));
    }
    bn_scope_end();
    return st;
}

static bn_status restore_optim(const bn_loaded *f, const char *path, bn_optim *o)
{
    int64_t steps = 0;
    double lr = 0;
    bn_status st = meta_int(f, path, "optim.steps", &steps);
    if (st == BN_OK) st = meta_real(f, path, "optim.lr", &lr);
    if (st != BN_OK) return st;
    bn_scope_begin();
    bn_no_grad_begin();
    for (int i = 0; st == BN_OK && i < bn_optim_state_count(o); i++) {
        const char *name = NULL;
        bn_tensor *t = bn_optim_state(o, i, &name);
        char key[96];
        snprintf(key, sizeof key, "optim.%s", name ? name : "?");
        st = t ? bn_copy_(t, bn_tensor_to(find_tensor(f, key), bn_device_of(t)))
               : bn_error_code();
    }
    bn_no_grad_end();
    bn_scope_end();
    if (st == BN_OK) st = bn_optim_set_step_count(o, steps);
    if (st == BN_OK) st = bn_optim_set_lr(o, lr);
    return st;
}

/* Puts s exactly where it was saved (position, rate, plateau counters). */
static bn_status restore_sched(const bn_loaded *f, const char *path, bn_sched *s)
{
    bn_sched_state ss = {0};
    int64_t bad = 0, cooldown = 0;
    bn_status st = meta_int(f, path, "sched.last_epoch", &ss.last_epoch);
    if (st == BN_OK) st = meta_real(f, path, "sched.lr", &ss.lr);
    if (st == BN_OK) st = meta_real(f, path, "sched.best", &ss.best);
    if (st == BN_OK) st = meta_int(f, path, "sched.bad_epochs", &bad);
    if (st == BN_OK) st = meta_int(f, path, "sched.cooldown_counter", &cooldown);
    if (st != BN_OK) return st;
    if (bad > INT32_MAX || cooldown > INT32_MAX)
        return bn__error(BN_ERR_FORMAT, "bn_checkpoint_load: %s: schedule counters out of range",
                         path);
    ss.bad_epochs = (int)bad;
    ss.cooldown_counter = (int)cooldown;
    return bn_sched_set_state(s, ss);
}

/* The model's keys and shapes are the file's "model.*" ones (a first, plain message; the strict
 * load names every difference). */
static bn_status check_model(const bn_loaded *f, const char *path, const bn_module *m)
{
    bn_tensor_list own = bn_module_state_dict(m);
    if (own.count < 0) return bn_error_code();
    bn_status st = BN_OK;
    int in_file = 0;
    for (int i = 0; i < f->tensors.count; i++) in_file += !strncmp(f->tensors.names[i], "model.", 6);
    for (int i = 0; st == BN_OK && i < own.count; i++) {
        char key[512];
        snprintf(key, sizeof key, "model.%s", own.names[i]);
        const bn_tensor *t = find_tensor(f, key);
        if (!t)
            st = bn__error(BN_ERR_ARG, CK_LOAD ": %s does not hold this model: no \"%s\"", path,
                           key);
        else if (!bn_shape_equal(bn_shape_of(t), bn_shape_of(own.tensors[i])))
            st = bn__error(BN_ERR_SHAPE, CK_LOAD ": %s does not hold this model: \"%s\" is %s in "
                                         "the file but %s in the model", path, key, bn__tshape(t),
                           bn__tshape(own.tensors[i]));
    }
    if (st == BN_OK && in_file != own.count)
        st = bn__error(BN_ERR_ARG, CK_LOAD ": %s does not hold this model: %d model tensors in the "
                                   "file, %d in the model", path, in_file, own.count);
    bn_tensor_list_free(&own);
    return st;
}

static bn_status check_file(const bn_loaded *f, const char *path, const bn_module *m,
                            const bn_optim *o, const bn_sched *s)
{
    const char *v = bn_metadata_get(&f->metadata, "born.checkpoint");
    if (!v)
        return bn__error(BN_ERR_FORMAT, CK_LOAD ": %s is not a checkpoint (no \"born.checkpoint\" "
                                        "metadata; a plain model loads with bn_module_load)", path);
    if (strcmp(v, CK_VERSION) != 0)
        return bn__error(BN_ERR_FORMAT, CK_LOAD ": %s: checkpoint version \"%s\" is not supported "
                                        "(this born reads " CK_VERSION ")", path, v);
    bn_status st = check_model(f, path, m);
    if (st == BN_OK && o) st = check_optim(f, path, o);
    if (st == BN_OK && s) {
        /* every field restore_sched needs, checked before anything changes */
        int64_t i;
        double x;
        st = meta_int(f, path, "sched.last_epoch", &i);
        if (st == BN_OK) st = meta_real(f, path, "sched.lr", &x);
        if (st == BN_OK) st = meta_real(f, path, "sched.best", &x);
        if (st == BN_OK) st = meta_int(f, path, "sched.bad_epochs", &i);
        if (st == BN_OK) st = meta_int(f, path, "sched.cooldown_counter", &i);
    }
    return st; /* the model is checked as it loads: strict, it copies nothing on a mismatch */
}

static bn_status read_info(const bn_loaded *f, const char *path, bn_checkpoint_info *info)
{
    bn_status st = meta_int(f, path, "epoch", &info->epoch);
    if (st == BN_OK) st = meta_int(f, path, "step", &info->step);
    if (st == BN_OK) st = meta_uint(f, path, "rng.seed", &info->rng.seed);
    if (st == BN_OK) st = meta_uint(f, path, "rng.offset", &info->rng.offset);
    return st;
}

/* Strict: on a mismatch nothing is copied and the error names the keys. */
static bn_status load_model_strict(const bn_loaded *f, bn_module *m)
{
    bn_tensor_list sd = {0};
    bn_status st = BN_OK;
    if (!model_entries(f, &sd)) st = bn__error(BN_ERR_OOM, CK_LOAD ": out of memory");
    if (st == BN_OK) st = bn_module_load_state_dict_ex(m, &sd, true, NULL);
    bn_tensor_list_free(&sd);
    return st;
}

static bn_status apply_file(const bn_loaded *f, const char *path, bn_module *m, bn_optim *o,
                            bn_sched *s, bn_checkpoint_info *info)
{
    bn_checkpoint_info got = {0};
    bn_status st = check_file(f, path, m, o, s);
    if (st == BN_OK) st = read_info(f, path, &got);
    if (st == BN_OK) st = load_model_strict(f, m);
    if (st == BN_OK && s) st = restore_sched(f, path, s);
    if (st == BN_OK && o) st = restore_optim(f, path, o);
    if (st != BN_OK) return st;
    bn_rng_set_state(got.rng);
    if (info) {
        const char *h = bn_metadata_get(&f->metadata, "history");
        got.history_json = dup_string(h ? h : "[]");
        got.config_json = dup_string(f->config_json);
        if (!got.history_json || (f->config_json && !got.config_json)) {
            bn_checkpoint_info_free(&got);
            return bn__error(BN_ERR_OOM, CK_LOAD ": out of memory");
        }
        *info = got;
    }
    return BN_OK;
}

bn_status bn_checkpoint_load(const char *path, bn_module *m, bn_optim *o, bn_sched *s,
                             bn_checkpoint_info *info)
{
    if (info) *info = (bn_checkpoint_info){0};
    BN_CHECK_NULL_STATUS(CK_LOAD, path);
    BN_CHECK_NULL_STATUS(CK_LOAD, m);
    bn_loaded f = {0};
    bn_status st = bn_load_tensors(path, (bn_load_opts){0}, &f);
    if (st == BN_OK) st = apply_file(&f, path, m, o, s, info);
    bn_loaded_free(&f);
    return st;
}
