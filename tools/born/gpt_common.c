/* tools/born/gpt_common.c — the GPT loss estimate and training checkpoints shared by `born
 * train --model gpt` and `born eval` (gpt_common.h). The checkpoint is written here in the
 * layout of bn_checkpoint_save (the same tensor names and metadata keys, so bn_checkpoint_load
 * reads it and restores the model, the first optimizer and schedule and the generator), with the
 * second optimizer, its schedule and the run's other state as extra entries, because
 * bn_checkpoint_save takes one optimizer and writes no extra tensors. */
#include "gpt_common.h"

#include "train_common.h"

#include "born/checkpoint.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- the loss estimate ------------------------------------------------------------------------ */

bn_status gpt_mean_loss(bn_module *m, const bn_text_data *d, bn_text_split split, int64_t batch,
                        int64_t iters, uint64_t seed, bn_dtype precision, bool train_after,
                        double *loss)
{
    const bn_gpt_config *cfg = bn_gpt_config_of(m);
    if (!cfg) return bn_error_code();
    bn_text_loader *l = bn_text_loader_new(d, split, batch, cfg->context, seed);
    if (!l) return bn_error_code();
    bn_module_eval(m);
    bn_no_grad_begin();
    double sum = 0;
    bn_status st = BN_OK;
    for (int64_t i = 0; st == BN_OK && i < iters; i++) {
        bn_scope_begin();
        bn_tensor *x, *y, *v = NULL;
        st = bn_text_loader_next(l, &x, &y);
        if (st == BN_OK && precision != BN_F32) st = bn_autocast_begin(precision);
        if (st == BN_OK) {
            v = bn_gpt_loss(m, x, y);
            if (precision != BN_F32) bn_autocast_end();
        }
        if (st == BN_OK && !v) st = bn_error_code();
        if (v) sum += bn_item(v);
        bn_scope_end();
    }
    bn_no_grad_end();
    if (train_after) bn_module_train(m, true);
    bn_text_loader_free(l);
    *loss = sum / (double)iters;
    return st;
}

/* ---- writing a checkpoint --------------------------------------------------------------------- */

bool gpt_history_append(gpt_ckpt_progress *p, int64_t step, double train, double val)
{
    char row[160];
    int n = snprintf(row, sizeof row, "{\"step\":%" PRId64 ",\"train_loss\":%.17g,"
                                      "\"val_loss\":%.17g}", step, train, val);
    if (n < 0 || n >= (int)sizeof row) return false;
    size_t old = p->history ? strlen(p->history) : 0; /* "[...]", "[]" or nothing */
    char *h = realloc(p->history, old + (size_t)n + 3);
    if (!h) return false;
    size_t at = old <= 2 ? 0 : old - 1; /* start afresh, or write over the ']' */
    h[at] = at ? ',' : '[';
    memcpy(h + at + 1, row, (size_t)n);
    memcpy(h + at + 1 + (size_t)n, "]", 2);
    p->history = h;
    return true;
}

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

/* An optimizer's step count and rate, and its schedule's state, under prefixes (bn_checkpoint's
 * "optim." / "sched." for the first pair). */
static bool meta_optim(bn_metadata *md, const char *op, const char *sp, const bn_optim *o,
                       const bn_sched *s)
{
    char k[64];
#define KEY(p, name) (snprintf(k, sizeof k, "%s%s", p, name), k)
    bool ok = bn_metadata_set(md, KEY(op, "name"), bn_optim_name(o)) == BN_OK &&
              meta_i64(md, KEY(op, "steps"), bn_optim_step_count(o)) &&
              meta_f64(md, KEY(op, "lr"), bn_optim_get_lr(o)) &&
              meta_i64(md, KEY(op, "num_params"), bn_optim_num_params(o));
    if (ok && s) {
        bn_sched_state ss = bn_sched_get_state(s);
        ok = meta_i64(md, KEY(sp, "last_epoch"), ss.last_epoch) &&
             meta_f64(md, KEY(sp, "lr"), ss.lr) && meta_f64(md, KEY(sp, "best"), ss.best) &&
             meta_i64(md, KEY(sp, "bad_epochs"), ss.bad_epochs) &&
             meta_i64(md, KEY(sp, "cooldown_counter"), ss.cooldown_counter);
    }
#undef KEY
    return ok;
}

static bool fill_metadata(bn_metadata *md, const gpt_ckpt_objs *o, const gpt_ckpt_progress *p,
                          const char *config, const char *tok, const char *options)
{
    bn_rng_state rng = bn_rng_get_state(), ls = bn_text_loader_get_state(o->loader);
    /* what bn_checkpoint_load reads */
    bool ok = bn_metadata_set(md, "born.checkpoint", "1") == BN_OK && meta_i64(md, "epoch", 0) &&
              meta_i64(md, "step", p->step) && meta_u64(md, "rng.seed", rng.seed) &&
              meta_u64(md, "rng.offset", rng.offset) &&
              bn_metadata_set(md, "history", p->history ? p->history : "[]") == BN_OK &&
              meta_optim(md, "optim.", "sched.", o->optim[0], o->sched[0]);
    /* what it has no place for */
    if (ok && o->optim[1]) ok = meta_optim(md, "gpt.optim2.", "gpt.sched2.", o->optim[1],
                                           o->sched[1]);
    return ok && bn_metadata_set(md, "born.model", "gpt") == BN_OK &&
           bn_metadata_set(md, "born.gpt.config", config) == BN_OK &&
           bn_metadata_set(md, "born.tokenizer", tok) == BN_OK &&
           bn_metadata_set(md, "gpt.options", options ? options : "{}") == BN_OK &&
           meta_u64(md, "gpt.loader.seed", ls.seed) && meta_u64(md, "gpt.loader.offset", ls.offset) &&
           meta_f64(md, "gpt.best_val", p->best_val) && meta_i64(md, "gpt.best_step", p->best_step);
}

static bool list_push(bn_tensor_list *l, const char *prefix, const char *name, bn_tensor *t)
{
    char **names = realloc(l->names, sizeof(char *) * (size_t)(l->count + 1));
    if (names) l->names = names;
    bn_tensor **ts = names ? realloc(l->tensors, sizeof(bn_tensor *) * (size_t)(l->count + 1))
                           : NULL;
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

/* Runs inside the caller's scope (bn_optim_state's references belong to it). */
static bool push_optim(bn_tensor_list *l, const char *prefix, const bn_optim *o)
{
    for (int i = 0; o && i < bn_optim_state_count(o); i++) {
        const char *name = NULL;
        bn_tensor *t = bn_optim_state(o, i, &name);
        if (!t || !name || !list_push(l, prefix, name, t)) return false;
    }
    return true;
}

int gpt_ckpt_save(const char *cmd, const char *path, const gpt_ckpt_objs *o,
                  const gpt_ckpt_progress *p, const char *options_json)
{
    char *config = bn_gpt_config_to_json(bn_gpt_config_of(o->model));
    char *tok = config ? bn_tokenizer_to_json(o->tok) : NULL;
    bn_tensor_list l = {0};
    bn_metadata md = {0};
    bn_status st = config && tok ? BN_OK : bn_error_code();
    if (st == BN_OK) {
        bn_tensor_list sd = bn_module_state_dict(o->model);
        bool ok = sd.count >= 0;
        for (int i = 0; ok && i < sd.count; i++) ok = list_push(&l, "model.", sd.names[i],
                                                                sd.tensors[i]);
        bn_tensor_list_free(&sd);
        bn_scope_begin();
        ok = ok && push_optim(&l, "optim.", o->optim[0]) && push_optim(&l, "optim2.", o->optim[1]);
        bn_scope_end();
        if (!ok || !fill_metadata(&md, o, p, config, tok, options_json))
            st = bn_error_code() != BN_OK ? bn_error_code() : BN_ERR_OOM;
    }
    if (st == BN_OK)
        st = bn_save_tensors(path, &l, (bn_save_opts){.metadata = &md, .config_json = config});
    bn_tensor_list_free(&l);
    bn_metadata_free(&md);
    free(config);
    free(tok);
    if (st != BN_OK)
        return tc_fail(cmd, "writing the checkpoint %s: %s", path,
                       bn_error_code() != BN_OK ? bn_error_message() : "out of memory");
    return CLI_EXIT_OK;
}

/* ---- reading one back --------------------------------------------------------------------------- */

void gpt_ckpt_close(gpt_ckpt_file *f)
{
    if (f) bn_loaded_free(&f->f);
}

int gpt_ckpt_open(const char *cmd, const char *path, gpt_ckpt_file *out)
{
    *out = (gpt_ckpt_file){.path = path};
    /* read once per run: check the data's SHA-256 too, so a damaged file is not trained on */
    if (bn_load_tensors(path, (bn_load_opts){.verify = true}, &out->f) != BN_OK)
        return tc_fail(cmd, "cannot resume from %s: %s", path, bn_error_message());
    const bn_metadata *md = &out->f.metadata;
    const char *model = bn_metadata_get(md, "born.model");
    const char *config = bn_metadata_get(md, "born.gpt.config");
    if (!bn_metadata_get(md, "born.checkpoint"))
        return tc_fail(cmd, "cannot resume from %s: it is not a checkpoint (no \"born.checkpoint\" "
                            "metadata; checkpoints are the files --checkpoint DIR writes)", path);
    if (!model || strcmp(model, "gpt") != 0 || !config)
        return tc_fail(cmd, "cannot resume from %s: it is a checkpoint of a%s%s%s model, not of "
                            "a GPT", path, model ? " '" : "n unnamed", model ? model : "",
                       model ? "'" : "");
    if (bn_gpt_config_from_json(config, &out->config) != BN_OK)
        return tc_fail(cmd, "cannot resume from %s: its model config is damaged: %s", path,
                       bn_error_message());
    out->tokenizer_json = bn_metadata_get(md, "born.tokenizer");
    out->options_json = bn_metadata_get(md, "gpt.options");
    if (!out->tokenizer_json)
        return tc_fail(cmd, "cannot resume from %s: it holds no tokenizer (\"born.tokenizer\")",
                       path);
    return CLI_EXIT_OK;
}

/* One difference between two resolved configs, as "NAME is A in the file, B here"; false when
 * the fields below agree. */
static bool config_difference(const bn_gpt_config *f, const bn_gpt_config *m, char *out, size_t n)
{
    static const char *const norms[] = {"layernorm", "rmsnorm"};
    static const char *const ffns[] = {"gelu", "gelu_tanh", "swiglu", "geglu", "reglu"};
    static const char *const poss[] = {"learned", "sinusoidal", "rope", "alibi", "none"};
    struct { const char *name; int64_t a, b; } ints[] = {
        {"--context", f->context, m->context},       {"--layers", f->layers, m->layers},
        {"--heads", f->heads, m->heads},             {"--kv-heads", f->kv_heads, m->kv_heads},
        {"--dim", f->dim, m->dim},                   {"--ffn-hidden", f->ffn_hidden, m->ffn_hidden},
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        if (ints[i].a != ints[i].b) {
            snprintf(out, n, "%s is %lld here but %lld in the checkpoint", ints[i].name,
                     (long long)ints[i].b, (long long)ints[i].a);
            return true;
        }
    struct { const char *name; const char *const *names; int a, b; } kinds[] = {
        {"--norm", norms, (int)f->norm, (int)m->norm},
        {"--ffn", ffns, (int)f->ffn, (int)m->ffn},
        {"--pos", poss, (int)f->pos, (int)m->pos},
    };
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (kinds[i].a != kinds[i].b) {
            snprintf(out, n, "%s is %s here but %s in the checkpoint", kinds[i].name,
                     kinds[i].names[kinds[i].b], kinds[i].names[kinds[i].a]);
            return true;
        }
    if (f->no_bias != m->no_bias || f->untied != m->untied) {
        bool bias = f->no_bias != m->no_bias;
        bool here = bias ? m->no_bias : m->untied;
        snprintf(out, n, "%s is %s here but %s in the checkpoint", bias ? "--no-bias" : "--untied",
                 here ? "given" : "not given", here ? "was not" : "was");
        return true;
    }
    if (f->dropout != m->dropout) {
        snprintf(out, n, "--dropout is %g here but %g in the checkpoint", m->dropout, f->dropout);
        return true;
    }
    return false;
}

int gpt_ckpt_check(const char *cmd, const gpt_ckpt_file *f, const bn_gpt_config *model,
                   const bn_tokenizer *tok)
{
    char *tj = bn_tokenizer_to_json(tok);
    if (!tj) return tc_fail(cmd, "%s", bn_error_message());
    bool same_tok = strcmp(tj, f->tokenizer_json) == 0;
    free(tj);
    if (!same_tok) {
        bn_tokenizer *ft = bn_tokenizer_from_json(f->tokenizer_json);
        if (!ft) return tc_fail(cmd, "cannot resume from %s: its tokenizer is damaged: %s",
                                f->path, bn_error_message());
        char why[256];
        int64_t a = bn_tokenizer_vocab_size(ft), b = bn_tokenizer_vocab_size(tok);
        if (strcmp(bn_tokenizer_type(ft), bn_tokenizer_type(tok)) != 0)
            snprintf(why, sizeof why, "its tokenizer is %s-level, --tokenizer here is %s",
                     bn_tokenizer_type(ft), bn_tokenizer_type(tok));
        else if (a != b)
            snprintf(why, sizeof why, "its vocabulary has %lld tokens, --data here gives %lld",
                     (long long)a, (long long)b);
        else
            snprintf(why, sizeof why, "its vocabulary (%lld characters) holds other characters "
                                      "than --data's", (long long)a);
        bn_tokenizer_free(ft);
        return tc_fail(cmd, "cannot resume from %s: it was trained on other data: %s (give the "
                            "same --data, --limit and --tokenizer)", f->path, why);
    }
    /* activation checkpointing changes how, not what, is computed: it may differ */
    bn_gpt_config a = f->config, b = *model;
    a.checkpoint = b.checkpoint = false;
    char why[256];
    if (config_difference(&a, &b, why, sizeof why))
        return tc_fail(cmd, "cannot resume from %s: it holds another model: %s", f->path, why);
    char *ja = bn_gpt_config_to_json(&a), *jb = ja ? bn_gpt_config_to_json(&b) : NULL;
    bool same = ja && jb && strcmp(ja, jb) == 0;
    int rc = CLI_EXIT_OK;
    if (!ja || !jb)
        rc = tc_fail(cmd, "%s", bn_error_message());
    else if (!same)
        rc = tc_fail(cmd, "cannot resume from %s: it holds another model: its config is %s, the "
                          "options here give %s", f->path, ja, jb);
    free(ja);
    free(jb);
    return rc;
}

static bool meta_int(const gpt_ckpt_file *f, const char *key, int64_t *v)
{
    const char *s = bn_metadata_get(&f->f.metadata, key);
    char *end;
    errno = 0;
    long long x = s ? strtoll(s, &end, 10) : 0;
    if (!s || !*s || *end || errno) return false;
    *v = x;
    return true;
}

static bool meta_uint(const gpt_ckpt_file *f, const char *key, uint64_t *v)
{
    const char *s = bn_metadata_get(&f->f.metadata, key);
    char *end;
    errno = 0;
    unsigned long long x = s && *s != '-' ? strtoull(s, &end, 10) : 0;
    if (!s || !*s || *s == '-' || *end || errno) return false;
    *v = x;
    return true;
}

static bool meta_real(const gpt_ckpt_file *f, const char *key, double *v)
{
    const char *s = bn_metadata_get(&f->f.metadata, key);
    char *end;
    double x = s ? strtod(s, &end) : 0;
    if (!s || !*s || *end) return false;
    *v = x;
    return true;
}

static const bn_tensor *find_tensor(const gpt_ckpt_file *f, const char *name)
{
    for (int i = 0; i < f->f.tensors.count; i++)
        if (strcmp(f->f.tensors.names[i], name) == 0) return f->f.tensors.tensors[i];
    return NULL;
}

/* What restore_extras needs, read and checked before anything changes. */
typedef struct extras {
    int64_t steps2, bad2, cool2, best_step;
    double lr2, best_val;
    bn_sched_state s2;
    bn_rng_state loader;
} extras;

static int read_extras(const char *cmd, const gpt_ckpt_file *f, const gpt_ckpt_objs *o,
                       extras *e)
{
    const char *bad = NULL;
    if (!meta_uint(f, "gpt.loader.seed", &e->loader.seed)) bad = "gpt.loader.seed";
    else if (!meta_uint(f, "gpt.loader.offset", &e->loader.offset)) bad = "gpt.loader.offset";
    else if (!meta_real(f, "gpt.best_val", &e->best_val)) bad = "gpt.best_val";
    else if (!meta_int(f, "gpt.best_step", &e->best_step)) bad = "gpt.best_step";
    if (!bad && o->optim[1]) {
        const char *kind = bn_metadata_get(&f->f.metadata, "gpt.optim2.name");
        if (!kind || strcmp(kind, bn_optim_name(o->optim[1])) != 0)
            return tc_fail(cmd, "cannot resume from %s: it holds no %s state of the parameters "
                                "without weight decay (\"gpt.optim2.name\" is %s)", f->path,
                           bn_optim_name(o->optim[1]), kind ? kind : "missing");
        if (!meta_int(f, "gpt.optim2.steps", &e->steps2)) bad = "gpt.optim2.steps";
        else if (!meta_real(f, "gpt.optim2.lr", &e->lr2)) bad = "gpt.optim2.lr";
    }
    if (!bad && o->sched[1]) {
        if (!meta_int(f, "gpt.sched2.last_epoch", &e->s2.last_epoch)) bad = "gpt.sched2.last_epoch";
        else if (!meta_real(f, "gpt.sched2.lr", &e->s2.lr)) bad = "gpt.sched2.lr";
        else if (!meta_real(f, "gpt.sched2.best", &e->s2.best)) bad = "gpt.sched2.best";
        else if (!meta_int(f, "gpt.sched2.bad_epochs", &e->bad2) || e->bad2 < 0 ||
                 e->bad2 > INT32_MAX)
            bad = "gpt.sched2.bad_epochs";
        else if (!meta_int(f, "gpt.sched2.cooldown_counter", &e->cool2) || e->cool2 < 0 ||
                 e->cool2 > INT32_MAX)
            bad = "gpt.sched2.cooldown_counter";
        e->s2.bad_epochs = (int)e->bad2;
        e->s2.cooldown_counter = (int)e->cool2;
    }
    if (bad)
        return tc_fail(cmd, "cannot resume from %s: metadata \"%s\" is missing or not a number",
                       f->path, bad);
    int rc = CLI_EXIT_OK;
    bn_scope_begin();
    for (int i = 0; o->optim[1] && rc == CLI_EXIT_OK && i < bn_optim_state_count(o->optim[1]);
         i++) {
        const char *name = NULL;
        bn_tensor *t = bn_optim_state(o->optim[1], i, &name);
        char key[96];
        snprintf(key, sizeof key, "optim2.%s", name ? name : "?");
        const bn_tensor *src = t ? find_tensor(f, key) : NULL;
        if (!t)
            rc = tc_fail(cmd, "%s", bn_error_message());
        else if (!src)
            rc = tc_fail(cmd, "cannot resume from %s: it has no optimizer state \"%s\"", f->path,
                         key);
        else if (!bn_shape_equal(bn_shape_of(t), bn_shape_of(src)) ||
                 bn_dtype_of(t) != bn_dtype_of(src))
            rc = tc_fail(cmd, "cannot resume from %s: \"%s\" has another shape or dtype than the "
                              "optimizer's", f->path, key);
    }
    bn_scope_end();
    return rc;
}

static int restore_extras(const char *cmd, const gpt_ckpt_file *f, const gpt_ckpt_objs *o,
                          const extras *e)
{
    bn_status st = BN_OK;
    bn_optim *o2 = o->optim[1];
    if (o->sched[1]) st = bn_sched_set_state(o->sched[1], e->s2);
    bn_scope_begin();
    bn_no_grad_begin();
    for (int i = 0; o2 && st == BN_OK && i < bn_optim_state_count(o2); i++) {
        const char *name = NULL;
        bn_tensor *t = bn_optim_state(o2, i, &name);
        char key[96];
        snprintf(key, sizeof key, "optim2.%s", name ? name : "?");
        st = t ? bn_copy_(t, bn_tensor_to(find_tensor(f, key), bn_device_of(t)))
               : bn_error_code();
    }
    bn_no_grad_end();
    bn_scope_end();
    if (st == BN_OK && o2) st = bn_optim_set_step_count(o2, e->steps2);
    if (st == BN_OK && o2) st = bn_optim_set_lr(o2, e->lr2);
    if (st == BN_OK) st = bn_text_loader_set_state(o->loader, e->loader);
    if (st != BN_OK)
        return tc_fail(cmd, "cannot resume from %s: %s", f->path, bn_error_message());
    return CLI_EXIT_OK;
}

int gpt_ckpt_restore(const char *cmd, const gpt_ckpt_file *f, const gpt_ckpt_objs *o,
                     gpt_ckpt_progress *p)
{
    extras e = {0};
    int rc = read_extras(cmd, f, o, &e);
    if (rc != CLI_EXIT_OK) return rc;
    bn_checkpoint_info info;
    if (bn_checkpoint_load(f->path, o->model, o->optim[0], o->sched[0], &info) != BN_OK)
        return tc_fail(cmd, "cannot resume: %s", bn_error_message());
    rc = restore_extras(cmd, f, o, &e);
    *p = (gpt_ckpt_progress){.step = info.step, .best_val = e.best_val,
                             .best_step = e.best_step, .history = info.history_json};
    info.history_json = NULL;
    bn_checkpoint_info_free(&info);
    return rc;
}

/* ---- routing `born eval` ------------------------------------------------------------------------ */

/* The value of option name (or its short form) in argv, NULL when absent. */
static const char *arg_value(int argc, char **argv, const char *name, const char *short_name)
{
    size_t n = strlen(name);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) break;
        if ((strcmp(a, name) == 0 || (short_name && strcmp(a, short_name) == 0)) && i + 1 < argc)
            return argv[i + 1];
        if (strncmp(a, name, n) == 0 && a[n] == '=') return a + n + 1;
    }
    return NULL;
}

bool cli_eval_is_gpt(int argc, char **argv)
{
    const char *model = arg_value(argc, argv, "--model", "-m");
    const char *data = arg_value(argc, argv, "--data", "-d");
    if (model && strcmp(model, "gpt") == 0) return true;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) break;
        if (strncmp(argv[i], "--split", 7) == 0 || strncmp(argv[i], "--iters", 7) == 0)
            return true;
    }
    struct stat sb;
    if (data && stat(data, &sb) == 0 && S_ISREG(sb.st_mode)) return true; /* MLP data: a name
                                                                             or a directory */
    if (!model || stat(model, &sb) != 0 || !S_ISREG(sb.st_mode)) return false;
    bn_loaded f = {0};
    bool gpt = false;
    if (bn_load_tensors(model, (bn_load_opts){0}, &f) == BN_OK) {
        const char *name = bn_metadata_get(&f.metadata, "born.model");
        gpt = name && strcmp(name, "gpt") == 0;
    }
    bn_loaded_free(&f);
    bn_error_clear();
    return gpt;
}
