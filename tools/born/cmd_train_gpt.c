/* tools/born/cmd_train_gpt.c — `born train --model gpt --data FILE …`: trains a decoder-only
 * transformer (gpt.h) on a text file, character- or byte-level, nanoGPT-style: random windows of
 * the first 90% of the tokens, AdamW with weight decay on the matrices only, warmup + cosine
 * learning rate, gradient clipping, and a periodic estimate of the train / validation loss on
 * fixed batches. Prints a line per evaluation (or with --json one JSON object per evaluation and
 * a final summary) and saves the model with the best validation loss of those evaluations (or,
 * with --save-last, the last one), its config and its tokenizer in one file with --out (read by
 * `born generate` and `born eval`). --checkpoint DIR writes the whole training state every N
 * evaluations and --resume continues from such a file bit for bit (gpt_common.c). main.c routes
 * `born train` here when --model gpt is given, so this command has its own options table. */
#include "cli.h"
#include "gpt_common.h"
#include "json.h"
#include "train_common.h"

#include "born/born.h"
#include "born/gpt.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

bool cli_train_is_gpt(int argc, char **argv);

/* ---- options ---------------------------------------------------------------------------------- */

typedef struct gpt_run_cfg {
    const char *data, *out, *preset;
    bool bytes, json;
    bn_gpt_config model;
    int64_t batch, steps, warmup, eval_every, eval_iters, limit;
    double lr, min_lr, weight_decay, grad_clip;
    uint64_t seed;
    int threads;
    const char *device_name; /* --device as given */
    bn_device device;
    bn_dtype precision; /* BN_F32, or BN_BF16 / BN_F16 for autocast */
    bool graph;         /* --graph: CUDA graph steps after two eager ones */
    bool save_last;     /* --out gets the last model instead of the best one */
    const char *ckpt_dir, *resume;
    int64_t ckpt_every; /* checkpoint every ckpt_every evaluations (and after the last step) */
} gpt_run_cfg;

#define HELP "born train"

/* A name among names (absent: *v unchanged). */
static bool opt_name(const cli_cmd *cmd, const cli_args *a, const char *name,
                     const char *const *names, int n, int *v)
{
    const char *s = cli_value(cmd, a, name);
    if (!s) return true;
    for (int i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0) {
            *v = i;
            return true;
        }
    char list[160] = "";
    for (int i = 0; i < n; i++) {
        strcat(list, names[i]);
        if (i + 1 < n) strcat(list, ", ");
    }
    const char *hint = cli_suggest(s, names, n);
    if (hint)
        cli_usage_error(HELP, "%s: unknown value '%s' (did you mean '%s'? known: %s)", name, s,
                        hint, list);
    else
        cli_usage_error(HELP, "%s: unknown value '%s' (known: %s)", name, s, list);
    return false;
}

static const char *const norm_names[] = {"layernorm", "rmsnorm"};
static const char *const ffn_names[] = {"gelu", "gelu_tanh", "swiglu", "geglu", "reglu"};
static const char *const pos_names[] = {"learned", "sinusoidal", "rope", "alibi", "none"};
static const char *const tok_names[] = {"char", "byte"};

static int parse(const cli_cmd *cmd, const cli_args *a, gpt_run_cfg *c)
{
    *c = (gpt_run_cfg){.batch = 32, .steps = 1000, .warmup = -1, .eval_every = 250,
                       .eval_iters = 20, .lr = 1e-3, .min_lr = -1, .weight_decay = 0.1,
                       .grad_clip = 1.0};
    c->model = (bn_gpt_config){.context = 64, .layers = 4, .heads = 4, .dim = 128};
    const char *model = cli_value(cmd, a, "--model");
    if (!model || strcmp(model, "gpt") != 0)
        return cli_usage_error(HELP, "--model must be gpt for these options");
    c->data = cli_value(cmd, a, "--data");
    if (!c->data) return cli_usage_error(HELP, "--data FILE is required (a text file)");
    c->device_name = cli_value(cmd, a, "--device");
    if (!c->device_name) c->device_name = "cpu";
    if (!tc_parse_device(HELP, c->device_name, &c->device)) return CLI_EXIT_USAGE;
    const char *prec = cli_value(cmd, a, "--precision");
    c->precision = BN_F32;
    if (prec && strcmp(prec, "bf16") == 0) c->precision = BN_BF16;
    else if (prec && strcmp(prec, "fp32") != 0)
        return cli_usage_error(HELP, "--precision must be fp32 or bf16 for gpt, got '%s'", prec);
    c->out = cli_value(cmd, a, "--out");
    if (c->out) {
        size_t n = strlen(c->out);
        bool born = n > 5 && strcmp(c->out + n - 5, ".born") == 0;
        bool st = n > 12 && strcmp(c->out + n - 12, ".safetensors") == 0;
        if (!born && !st)
            return cli_usage_error(HELP, "--out: '%s' must end in .born or .safetensors", c->out);
    }
    c->preset = cli_value(cmd, a, "--preset");
    if (c->preset) {
        bn_gpt_config p;
        if (bn_gpt_preset(c->preset, &p) != BN_OK)
            return cli_usage_error(HELP, "--preset: unknown name '%s' (known: gpt2, baby, llama)",
                                   c->preset);
        c->model = p;
    }
    int tok = 0, norm = (int)c->model.norm, ffn = (int)c->model.ffn, pos = (int)c->model.pos;
    int64_t threads = 0, seed = 0;
    bn_gpt_config *m = &c->model;
    bool ok = opt_name(cmd, a, "--tokenizer", tok_names, 2, &tok) &&
              cli_opt_int(cmd, a, HELP, "--layers", 1, 1000, &m->layers) &&
              cli_opt_int(cmd, a, HELP, "--heads", 1, 1024, &m->heads) &&
              cli_opt_int(cmd, a, HELP, "--kv-heads", 1, 1024, &m->kv_heads) &&
              cli_opt_int(cmd, a, HELP, "--dim", 1, 1 << 16, &m->dim) &&
              cli_opt_int(cmd, a, HELP, "--context", 1, 1 << 20, &m->context) &&
              cli_opt_int(cmd, a, HELP, "--ffn-hidden", 1, 1 << 20, &m->ffn_hidden) &&
              opt_name(cmd, a, "--norm", norm_names, 2, &norm) &&
              opt_name(cmd, a, "--ffn", ffn_names, 5, &ffn) &&
              opt_name(cmd, a, "--pos", pos_names, 5, &pos) &&
              cli_opt_real(cmd, a, HELP, "--dropout", 0, 1, true, &m->dropout) &&
              cli_opt_int(cmd, a, HELP, "--batch", 1, 1 << 20, &c->batch) &&
              cli_opt_int(cmd, a, HELP, "--steps", 1, 100000000, &c->steps) &&
              cli_opt_int(cmd, a, HELP, "--warmup", 0, 100000000, &c->warmup) &&
              cli_opt_int(cmd, a, HELP, "--eval-every", 1, 100000000, &c->eval_every) &&
              cli_opt_int(cmd, a, HELP, "--eval-iters", 1, 100000, &c->eval_iters) &&
              cli_opt_int(cmd, a, HELP, "--limit", 1, INT64_MAX, &c->limit) &&
              cli_opt_int(cmd, a, HELP, "--seed", 0, INT64_MAX, &seed) &&
              cli_opt_int(cmd, a, HELP, "--threads", 1, 1024, &threads) &&
              cli_opt_real(cmd, a, HELP, "--lr", 0, 10, false, &c->lr) &&
              cli_opt_real(cmd, a, HELP, "--min-lr", 0, 10, false, &c->min_lr) &&
              cli_opt_real(cmd, a, HELP, "--weight-decay", 0, 10, false, &c->weight_decay) &&
              cli_opt_real(cmd, a, HELP, "--grad-clip", 0, 1e9, false, &c->grad_clip) &&
              cli_opt_int(cmd, a, HELP, "--checkpoint-every", 1, 100000000, &c->ckpt_every);
    if (!ok) return CLI_EXIT_USAGE;
    if (!(c->lr > 0)) return cli_usage_error(HELP, "--lr must be > 0");
    m->norm = (bn_gpt_norm)norm;
    m->ffn = (bn_gpt_ffn)ffn;
    m->pos = (bn_gpt_pos)pos;
    if (cli_has(cmd, a, "--no-bias")) m->no_bias = true;
    if (cli_has(cmd, a, "--untied")) m->untied = true;
    if (cli_has(cmd, a, "--checkpointing")) m->checkpoint = true;
    c->graph = cli_has(cmd, a, "--graph");
    if (c->graph && c->device.type != BN_DEVICE_CUDA)
        return cli_usage_error(HELP, "--graph needs --device cuda (got --device %s)",
                               c->device_name ? c->device_name : "cpu");
    if (c->graph && m->dropout > 0)
        return cli_usage_error(HELP, "--graph needs --dropout 0: every replay of a captured step "
                                     "would draw the same dropout masks");
    if (cli_has(cmd, a, "--heads") && !cli_has(cmd, a, "--kv-heads")) m->kv_heads = 0;
    c->bytes = tok == 1;
    c->json = cli_has(cmd, a, "--json");
    c->seed = (uint64_t)seed;
    c->threads = (int)threads;
    if (c->min_lr < 0) c->min_lr = c->lr / 10;
    if (c->warmup < 0) c->warmup = c->steps / 10 < 100 ? c->steps / 10 : 100;
    c->save_last = cli_has(cmd, a, "--save-last");
    if (c->save_last && !c->out) return cli_usage_error(HELP, "--save-last needs --out FILE");
    c->ckpt_dir = cli_value(cmd, a, "--checkpoint");
    c->resume = cli_value(cmd, a, "--resume");
    if (c->ckpt_every && !c->ckpt_dir)
        return cli_usage_error(HELP, "--checkpoint-every needs --checkpoint DIR");
    if (c->ckpt_dir && !c->ckpt_every) c->ckpt_every = 1;
    if (c->warmup > c->steps)
        return cli_usage_error(HELP, "--warmup %lld is longer than --steps %lld",
                               (long long)c->warmup, (long long)c->steps);
    /* the vocabulary comes from the data: check the rest now, with a placeholder */
    bn_gpt_config probe = *m, r;
    probe.vocab_size = 1;
    if (bn_gpt_config_resolve(&probe, &r) != BN_OK) {
        const char *msg = bn_error_message();
        const char *colon = strstr(msg, ": ");
        return cli_usage_error(HELP, "the model options do not fit: %s", colon ? colon + 2 : msg);
    }
    return TC_PARSE_OK;
}

/* ---- the run ----------------------------------------------------------------------------------- */

typedef struct gpt_session {
    bn_text_data *data;
    bn_module *model;
    bn_optim *decay, *no_decay;
    bn_sched *s_decay, *s_no_decay;
    bn_text_loader *train;
    bn_tensor *params[4096];
    int nparams;
    /* --graph: the captured forward + loss + backward, its static batch and its loss */
    bn_cuda_graph *graph;
    bn_tensor *xs, *ys, *gloss;
    int64_t eager_steps;
} gpt_session;

static void close_session(gpt_session *s)
{
    bn_cuda_graph_free(s->graph);
    bn_release(s->xs);
    bn_release(s->ys);
    bn_release(s->gloss);
    bn_sched_free(s->s_decay);
    bn_sched_free(s->s_no_decay);
    bn_optim_free(s->decay);
    bn_optim_free(s->no_decay);
    bn_text_loader_free(s->train);
    bn_module_free(s->model);
    bn_text_data_free(s->data);
}

/* AdamW with weight decay on the matrices (embeddings and linear weights) and none on biases
 * and norm weights, like nanoGPT; each group with its warmup-cosine schedule. */
static int make_optimizers(const gpt_run_cfg *c, gpt_session *s)
{
    s->nparams = bn_module_parameters(s->model, s->params, 4096);
    if (s->nparams < 0 || s->nparams > 4096)
        return tc_fail("train", "%s", s->nparams < 0 ? bn_error_message() : "too many parameters");
    bn_tensor *two[4096], *one[4096];
    int n2 = 0, n1 = 0;
    for (int i = 0; i < s->nparams; i++) {
        if (bn_ndim(s->params[i]) >= 2) two[n2++] = s->params[i];
        else one[n1++] = s->params[i];
    }
    bn_adam_opts o = {.lr = c->lr, .beta1 = 0.9, .beta2 = 0.99,
                      .weight_decay = c->weight_decay > 0 ? c->weight_decay : BN_ZERO};
    s->decay = bn_optim_adamw_params(two, n2, o);
    o.weight_decay = BN_ZERO;
    s->no_decay = s->decay && n1 ? bn_optim_adamw_params(one, n1, o) : NULL;
    if (!s->decay || (n1 && !s->no_decay)) return tc_fail("train", "%s", bn_error_message());
    s->s_decay = bn_sched_warmup_cosine(s->decay, c->warmup, c->steps, c->min_lr);
    s->s_no_decay = s->no_decay ? bn_sched_warmup_cosine(s->no_decay, c->warmup, c->steps,
                                                         c->min_lr)
                                : NULL;
    if (!s->s_decay || (s->no_decay && !s->s_no_decay))
        return tc_fail("train", "%s", bn_error_message());
    return CLI_EXIT_OK;
}

static int open_session(gpt_run_cfg *c, gpt_session *s)
{
    *s = (gpt_session){0};
    if (c->threads && bn_set_num_threads(c->threads) != BN_OK)
        return tc_fail("train", "%s", bn_error_message());
    s->data = bn_text_data_load(c->data, (bn_text_data_opts){.bytes = c->bytes, .limit = c->limit});
    if (!s->data) return tc_fail("train", "%s", bn_error_message());
    int64_t need = c->model.context + 1;
    int64_t ntrain = bn_text_data_len(s->data, BN_SPLIT_TRAIN);
    int64_t nval = bn_text_data_len(s->data, BN_SPLIT_VAL);
    if (ntrain < need || nval < need)
        return tc_fail("train", "%s holds %lld train and %lld validation tokens; --context %lld "
                       "needs at least %lld in each (use more text or a shorter context)",
                       c->data, (long long)ntrain, (long long)nval, (long long)c->model.context,
                       (long long)need);
    c->model.vocab_size = bn_tokenizer_vocab_size(bn_text_data_tokenizer(s->data));
    bn_manual_seed(c->seed);
    s->model = bn_gpt_new(&c->model);
    if (!s->model) return tc_fail("train", "%s", bn_error_message());
    c->model = *bn_gpt_config_of(s->model);
    if (c->device.type != BN_DEVICE_CPU && bn_module_to_device(s->model, c->device) != BN_OK)
        return tc_fail("train", "--device %s: %s", c->device_name, bn_error_message());
    s->train = bn_text_loader_new(s->data, BN_SPLIT_TRAIN, c->batch, c->model.context, c->seed);
    if (!s->train) return tc_fail("train", "%s", bn_error_message());
    return make_optimizers(c, s);
}

/* The mean loss over eval_iters fixed batches of a split (the same batches every time; `born
 * eval` draws the same ones from the same seed). */
static bn_status estimate(const gpt_run_cfg *c, gpt_session *s, bn_text_split split, double *loss)
{
    return gpt_mean_loss(s->model, s->data, split, c->batch, c->eval_iters,
                         c->seed + (split == BN_SPLIT_TRAIN ? 1 : 2), c->precision, true, loss);
}

/* --graph: the forward, loss and backward on copies of (x, y), captured once; the gradients it
 * makes are rewritten by each replay, so they are not zeroed between steps. */
static bn_status capture_step(const gpt_run_cfg *c, gpt_session *s, bn_tensor *x, bn_tensor *y)
{
    s->xs = bn_clone(x);
    s->ys = bn_clone(y);
    if (!s->xs || !s->ys) return bn_error_code();
    bn_retain(s->xs); /* past this step's scope: close_session releases them */
    bn_retain(s->ys);
    bn_optim_zero_grad(s->decay);
    if (s->no_decay) bn_optim_zero_grad(s->no_decay);
    bn_status st = bn_cuda_graph_begin(c->device.index);
    if (st != BN_OK) return st;
    bn_scope_begin();
    bn_tensor *l = NULL;
    if (c->precision != BN_F32) st = bn_autocast_begin(c->precision);
    if (st == BN_OK) {
        l = bn_gpt_loss(s->model, s->xs, s->ys);
        if (c->precision != BN_F32) bn_autocast_end();
    }
    if (st == BN_OK) st = l ? bn_backward(l) : bn_error_code();
    if (st == BN_OK && (s->gloss = bn_detach(l)) != NULL) bn_retain(s->gloss);
    bn_scope_end();
    if (st != BN_OK) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", bn_error_message());
        bn_cuda_graph_free(bn_cuda_graph_end(c->device.index));
        fprintf(stderr, "born train: capturing a step for --graph: %s\n", msg);
        return st;
    }
    s->graph = bn_cuda_graph_end(c->device.index);
    return s->graph ? BN_OK : bn_error_code();
}

/* One optimizer step through the graph (captured first when there is none). */
static bn_status graph_step(const gpt_run_cfg *c, gpt_session *s, double *loss)
{
    bn_scope_begin();
    bn_tensor *x, *y;
    bn_status st = bn_text_loader_next(s->train, &x, &y);
    if (st == BN_OK) { /* the captured inputs live on the device, where the replays read them */
        x = bn_tensor_to(x, c->device);
        y = bn_tensor_to(y, c->device);
        if (!x || !y) st = bn_error_code();
    }
    if (st == BN_OK && !s->graph) st = capture_step(c, s, x, y);
    if (st == BN_OK) st = bn_copy_(s->xs, x);
    if (st == BN_OK) st = bn_copy_(s->ys, y);
    if (st == BN_OK) st = bn_cuda_graph_replay(s->graph);
    if (st == BN_OK) *loss = bn_item(s->gloss);
    if (st == BN_OK && bn_error_code() != BN_OK) st = bn_error_code();
    if (st == BN_OK && c->grad_clip > 0 &&
        !bn_clip_grad_norm_async(s->params, s->nparams, c->grad_clip, 2.0))
        st = bn_error_code();
    bn_scope_end();
    if (st == BN_OK) st = bn_optim_step(s->decay);
    if (st == BN_OK && s->no_decay) st = bn_optim_step(s->no_decay);
    if (st == BN_OK) st = bn_sched_step(s->s_decay);
    if (st == BN_OK && s->s_no_decay) st = bn_sched_step(s->s_no_decay);
    if (st == BN_OK && !isfinite(*loss))
        st = BN_ERR_ARG, bn_error_clear();
    return st;
}

/* One optimizer step; *loss gets the batch's loss. */
static bn_status train_step(const gpt_run_cfg *c, gpt_session *s, double *loss)
{
    if (c->graph && s->eager_steps >= 2) return graph_step(c, s, loss);
    s->eager_steps++;
    bn_scope_begin();
    bn_tensor *x, *y, *l = NULL;
    bn_status st = bn_text_loader_next(s->train, &x, &y);
    if (st == BN_OK && c->precision != BN_F32) st = bn_autocast_begin(c->precision);
    if (st == BN_OK) {
        l = bn_gpt_loss(s->model, x, y);
        if (c->precision != BN_F32) bn_autocast_end();
    }
    if (st == BN_OK && !l) st = bn_error_code();
    if (st == BN_OK) {
        *loss = bn_item(l);
        st = bn_backward(l);
    }
    bn_scope_end();
    if (st == BN_OK && c->grad_clip > 0 &&
        bn_clip_grad_norm(s->params, s->nparams, c->grad_clip, 2.0) < 0)
        st = bn_error_code();
    if (st == BN_OK) st = bn_optim_step(s->decay);
    if (st == BN_OK && s->no_decay) st = bn_optim_step(s->no_decay);
    bn_optim_zero_grad(s->decay);
    if (s->no_decay) bn_optim_zero_grad(s->no_decay);
    if (st == BN_OK) st = bn_sched_step(s->s_decay);
    if (st == BN_OK && s->s_no_decay) st = bn_sched_step(s->s_no_decay);
    if (st == BN_OK && !isfinite(*loss))
        st = BN_ERR_ARG, bn_error_clear();
    return st;
}

static void print_eval(const gpt_run_cfg *c, int64_t step, double train, double val, double lr,
                       double step_seconds, double elapsed)
{
    double tps = step_seconds > 0 ? (double)(c->batch * c->model.context) / step_seconds : 0;
    if (c->json) {
        json_writer w = jw_writer_make(stdout);
        jw_begin_object(&w);
        jw_key(&w, "step");
        jw_int(&w, step);
        jw_key(&w, "steps");
        jw_int(&w, c->steps);
        tc_json_number(&w, "train_loss", train);
        tc_json_number(&w, "val_loss", val);
        tc_json_number(&w, "lr", lr);
        tc_json_number(&w, "ms_per_step", step_seconds * 1e3);
        tc_json_number(&w, "tokens_per_second", tps);
        tc_json_number(&w, "seconds", elapsed);
        jw_end_object(&w);
        fputc('\n', stdout);
    } else {
        printf("step %lld/%lld: train loss %.4f, val loss %.4f, lr %.3g, %.0f ms/step, %.0f "
               "tokens/s, %.0f s\n",
               (long long)step, (long long)c->steps, train, val, lr, step_seconds * 1e3, tps,
               elapsed);
    }
    fflush(stdout);
}

/* Where a run stands beyond the objects: the checkpoint's counters, the first step of this run
 * (after --resume: the checkpoint's step + 1) and whether --out was written by it. */
typedef struct run_state {
    gpt_ckpt_progress p;
    int64_t first;
    bool out_written;
    double train, val; /* the last evaluation */
} run_state;

static void print_final(const gpt_run_cfg *c, const gpt_session *s, const run_state *r,
                        double train_seconds, double total)
{
    int64_t ran = c->steps - r->first + 1;
    double train = r->train, val = r->val;
    double tps = train_seconds > 0 ? (double)(ran * c->batch * c->model.context) / train_seconds
                                   : 0;
    int64_t params = bn_module_num_parameters(s->model);
    if (!c->json) {
        printf("final: val loss %.4f, train loss %.4f (%lld batches each), %lld steps in %.1f s "
               "(%.0f tokens/s); best val loss %.4f at step %lld\n",
               val, train, (long long)c->eval_iters, (long long)ran, train_seconds, tps,
               r->p.best_val, (long long)r->p.best_step);
        return;
    }
    const bn_gpt_config *m = &c->model;
    json_writer w = jw_writer_make(stdout);
    jw_begin_object(&w);
    jw_key(&w, "final");
    jw_bool(&w, true);
    jw_key(&w, "model");
    jw_string(&w, "gpt");
    jw_key(&w, "data");
    jw_string(&w, c->data);
    jw_key(&w, "tokenizer");
    jw_string(&w, c->bytes ? "byte" : "char");
    jw_key(&w, "vocab_size");
    jw_int(&w, m->vocab_size);
    jw_key(&w, "layers");
    jw_int(&w, m->layers);
    jw_key(&w, "heads");
    jw_int(&w, m->heads);
    jw_key(&w, "kv_heads");
    jw_int(&w, m->kv_heads);
    jw_key(&w, "dim");
    jw_int(&w, m->dim);
    jw_key(&w, "context");
    jw_int(&w, m->context);
    jw_key(&w, "params");
    jw_int(&w, params);
    jw_key(&w, "batch");
    jw_int(&w, c->batch);
    jw_key(&w, "steps");
    jw_int(&w, c->steps);
    jw_key(&w, "first_step");
    jw_int(&w, r->first);
    tc_json_number(&w, "lr", c->lr);
    tc_json_number(&w, "dropout", m->dropout);
    jw_key(&w, "seed");
    jw_int(&w, (long long)c->seed);
    jw_key(&w, "threads");
    jw_int(&w, bn_num_threads());
    tc_json_number(&w, "train_loss", train);
    tc_json_number(&w, "val_loss", val);
    tc_json_number(&w, "best_val_loss", r->p.best_val);
    jw_key(&w, "best_step");
    jw_int(&w, r->p.best_step);
    jw_key(&w, "out");
    if (c->out) jw_string(&w, c->out);
    else jw_null(&w);
    jw_key(&w, "saved");
    jw_string(&w, !c->out ? "none" : c->save_last ? "last" : "best");
    tc_json_number(&w, "train_seconds", train_seconds);
    tc_json_number(&w, "tokens_per_second", tps);
    tc_json_number(&w, "total_seconds", total);
    jw_end_object(&w);
    fputc('\n', stdout);
}

/* Writes --out: the model after `step` steps, whose validation loss is val. */
static int save(const gpt_run_cfg *c, gpt_session *s, int64_t step, double val, bool best)
{
    char note[320];
    snprintf(note, sizeof note,
             "{\"step\":%lld,\"steps\":%lld,\"val_loss\":%.17g,\"best\":%s,\"data\":\"%s\"}",
             (long long)step, (long long)c->steps, val, best ? "true" : "false",
             strpbrk(c->data, "\"\\") || strlen(c->data) > 200 ? "?" : c->data);
    bn_metadata md = {0};
    bn_status st = bn_metadata_set(&md, "born.train", note);
    if (st == BN_OK)
        st = bn_gpt_save(s->model, c->out, bn_text_data_tokenizer(s->data), &md);
    bn_metadata_free(&md);
    if (st != BN_OK) return tc_fail("train", "%s", bn_error_message());
    if (!c->json)
        printf("saved %s (%s model: step %lld, val loss %.4f)\n", c->out,
               best ? "the best" : "the last", (long long)step, val);
    return CLI_EXIT_OK;
}

/* The options a resumed run must repeat to continue exactly, as a JSON object whose keys are the
 * option names. */
static void options_json(const gpt_run_cfg *c, char *buf, size_t n)
{
    const char *data = strpbrk(c->data, "\"\\") || strlen(c->data) > 1000 ? "?" : c->data;
    snprintf(buf, n,
             "{\"data\":\"%s\",\"tokenizer\":\"%s\",\"limit\":%lld,\"batch\":%lld,\"steps\":%lld,"
             "\"warmup\":%lld,\"lr\":%.15g,\"min-lr\":%.15g,\"weight-decay\":%.15g,"
             "\"grad-clip\":%.15g,\"seed\":%llu,\"eval-every\":%lld,\"eval-iters\":%lld,"
             "\"precision\":\"%s\"}",
             data, c->bytes ? "byte" : "char", (long long)c->limit, (long long)c->batch,
             (long long)c->steps, (long long)c->warmup, c->lr, c->min_lr, c->weight_decay,
             c->grad_clip, (unsigned long long)c->seed, (long long)c->eval_every,
             (long long)c->eval_iters, c->precision == BN_F32 ? "fp32" : "bf16");
}

/* A resumed run matches an uninterrupted one only with the same options: warns about each that
 * differs from the checkpoint's. */
static void warn_changed_options(const gpt_run_cfg *c, const char *path, const char *saved)
{
    static const char *const keys[] = {"data", "tokenizer", "limit", "batch", "steps",
                                       "warmup", "lr", "min-lr", "weight-decay", "grad-clip",
                                       "seed", "eval-every", "eval-iters", "precision"};
    char now[2048];
    options_json(c, now, sizeof now);
    for (size_t i = 0; saved && i < sizeof keys / sizeof keys[0]; i++) {
        char a[1100], b[1100];
        if (!tc_config_value(saved, keys[i], a, sizeof a) ||
            !tc_config_value(now, keys[i], b, sizeof b) || strcmp(a, b) == 0)
            continue;
        fprintf(stderr, "born train: warning: --%s is %s here but %s was saved with %s; the run "
                        "will not match an uninterrupted one\n", keys[i], b, path, a);
    }
}

static gpt_ckpt_objs objs_of(gpt_session *s)
{
    return (gpt_ckpt_objs){.model = s->model, .optim = {s->decay, s->no_decay},
                           .sched = {s->s_decay, s->s_no_decay}, .loader = s->train,
                           .tok = bn_text_data_tokenizer(s->data)};
}

/* --resume: restores everything from the checkpoint into s and r. */
static int resume(const gpt_run_cfg *c, gpt_session *s, gpt_ckpt_file *f, run_state *r)
{
    int rc = gpt_ckpt_check("train", f, &c->model, bn_text_data_tokenizer(s->data));
    gpt_ckpt_objs o = objs_of(s);
    if (rc == CLI_EXIT_OK) rc = gpt_ckpt_restore("train", f, &o, &r->p);
    if (rc != CLI_EXIT_OK) return rc;
    if (r->p.step >= c->steps)
        return tc_fail("train", "%s is at step %lld: --steps %lld leaves nothing to train (give "
                                "the run's total, larger than %lld)",
                       c->resume, (long long)r->p.step, (long long)c->steps,
                       (long long)r->p.step);
    warn_changed_options(c, c->resume, f->options_json);
    r->first = r->p.step + 1;
    return CLI_EXIT_OK;
}

/* After the evaluation at `step`: keeps the best model in --out and writes the checkpoint when
 * one is due (every ckpt_every evaluations and after the last step). */
static int after_eval(const gpt_run_cfg *c, gpt_session *s, run_state *r, int64_t step)
{
    if (!gpt_history_append(&r->p, step, r->train, r->val))
        return tc_fail("train", "out of memory");
    r->p.step = step;
    int rc = CLI_EXIT_OK;
    if (isnan(r->p.best_val) || r->val < r->p.best_val) {
        r->p.best_val = r->val;
        r->p.best_step = step;
        if (c->out && !c->save_last) {
            rc = save(c, s, step, r->val, true);
            r->out_written = true;
        }
    }
    if (rc != CLI_EXIT_OK || !c->ckpt_dir) return rc;
    bool due = step == c->steps ||
               (step % c->eval_every == 0 && (step / c->eval_every) % c->ckpt_every == 0);
    if (!due) return rc;
    char path[4200], opts[2048];
    snprintf(path, sizeof path, "%s/step-%07lld.born", c->ckpt_dir, (long long)step);
    options_json(c, opts, sizeof opts);
    gpt_ckpt_objs o = objs_of(s);
    rc = gpt_ckpt_save("train", path, &o, &r->p, opts);
    if (rc == CLI_EXIT_OK && !c->json) printf("checkpoint %s\n", path);
    return rc;
}

/* --out at the end: the last model with --save-last; else the best one is already there, unless
 * this run resumed after it and never improved on it. */
static int save_at_end(const gpt_run_cfg *c, gpt_session *s, const run_state *r)
{
    if (c->save_last) return save(c, s, c->steps, r->val, false);
    if (r->out_written) return CLI_EXIT_OK;
    if (access(c->out, F_OK) == 0) {
        if (!c->json)
            printf("%s keeps the best model (step %lld, val loss %.4f), saved before the "
                   "resume\n", c->out, (long long)r->p.best_step, r->p.best_val);
        return CLI_EXIT_OK;
    }
    fprintf(stderr, "born train: warning: the best model (step %lld, val loss %.4f) was saved "
                    "before the resume and %s does not exist; it gets the last model instead\n",
            (long long)r->p.best_step, r->p.best_val, c->out);
    return save(c, s, c->steps, r->val, false);
}

/* Every step frees and allocates the same large buffers: keep freed memory in the heap rather
 * than returning it to the kernel, which would fault every page in again (about 15% of a small
 * model's step on the CPU). */
static void keep_freed_memory(void)
{
#if defined(__GLIBC__)
    mallopt(M_MMAP_THRESHOLD, 512 << 20);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
}

static int run_train_gpt(const cli_cmd *cmd, const cli_args *args)
{
    gpt_run_cfg c;
    int rc = parse(cmd, args, &c);
    if (rc != TC_PARSE_OK) return rc;
    if (c.ckpt_dir && mkdir(c.ckpt_dir, 0777) != 0 && errno != EEXIST)
        return tc_fail("train", "cannot create the checkpoint directory '%s': %s", c.ckpt_dir,
                       strerror(errno));
    keep_freed_memory();
    double t0 = tc_now();
    gpt_ckpt_file ck = {0};
    if (c.resume && (rc = gpt_ckpt_open("train", c.resume, &ck)) != CLI_EXIT_OK) {
        gpt_ckpt_close(&ck);
        return rc;
    }
    gpt_session s;
    run_state r = {.p = {.best_val = NAN}, .first = 1, .train = NAN, .val = NAN};
    rc = open_session(&c, &s);
    if (rc == CLI_EXIT_OK && c.resume) rc = resume(&c, &s, &ck, &r);
    gpt_ckpt_close(&ck);
    if (rc != CLI_EXIT_OK) {
        free(r.p.history);
        close_session(&s);
        return rc;
    }
    const bn_gpt_config *m = &c.model;
    if (!c.json)
        printf("born train: gpt (%lld layers, %lld heads, %lld kv heads, dim %lld, context %lld, "
               "vocab %lld, %.2fM parameters) on %s (%lld train / %lld val tokens, %s), batch "
               "%lld, %lld steps, lr %g, %d thread%s, seed %llu\n",
               (long long)m->layers, (long long)m->heads, (long long)m->kv_heads,
               (long long)m->dim, (long long)m->context, (long long)m->vocab_size,
               (double)bn_module_num_parameters(s.model) / 1e6, c.data,
               (long long)bn_text_data_len(s.data, BN_SPLIT_TRAIN),
               (long long)bn_text_data_len(s.data, BN_SPLIT_VAL), c.bytes ? "bytes" : "chars",
               (long long)c.batch, (long long)c.steps, c.lr, bn_num_threads(),
               bn_num_threads() == 1 ? "" : "s", (unsigned long long)c.seed);
    if (!c.json && c.resume)
        printf("resuming from %s at step %lld (best val loss %.4f at step %lld)\n", c.resume,
               (long long)r.p.step, r.p.best_val, (long long)r.p.best_step);
    double train_seconds = 0, since = 0;
    int64_t steps_since = 0;
    for (int64_t step = r.first; step <= c.steps && rc == CLI_EXIT_OK; step++) {
        double lr = bn_optim_get_lr(s.decay), loss = NAN, t = tc_now();
        bn_status st = train_step(&c, &s, &loss);
        double dt = tc_now() - t;
        train_seconds += dt;
        since += dt;
        steps_since++;
        if (st != BN_OK) {
            rc = bn_error_code() != BN_OK
                     ? tc_fail("train", "step %lld failed: %s", (long long)step,
                               bn_error_message())
                     : tc_fail("train", "step %lld: the loss is %g; lower --lr", (long long)step,
                               loss);
            break;
        }
        if (step % c.eval_every && step != c.steps) continue;
        if (estimate(&c, &s, BN_SPLIT_TRAIN, &r.train) != BN_OK ||
            estimate(&c, &s, BN_SPLIT_VAL, &r.val) != BN_OK) {
            rc = tc_fail("train", "evaluation failed: %s", bn_error_message());
            break;
        }
        print_eval(&c, step, r.train, r.val, lr, since / (double)steps_since, tc_now() - t0);
        since = 0;
        steps_since = 0;
        rc = after_eval(&c, &s, &r, step);
    }
    if (rc == CLI_EXIT_OK) print_final(&c, &s, &r, train_seconds, tc_now() - t0);
    if (rc == CLI_EXIT_OK && c.out) rc = save_at_end(&c, &s, &r);
    free(r.p.history);
    close_session(&s);
    return rc;
}

/* True when argv (a `born train` command line) asks for --model gpt. */
bool cli_train_is_gpt(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) break;
        if ((strcmp(a, "--model") == 0 || strcmp(a, "-m") == 0) && i + 1 < argc)
            return strcmp(argv[i + 1], "gpt") == 0;
        if (strcmp(a, "--model=gpt") == 0) return true;
    }
    return false;
}

static const cli_opt train_gpt_opts[] = {
    {"--model", "-m", "gpt", "gpt (this page; mlp and cnn: born train --help)"},
    {"--data", "-d", "FILE", "a text file (required); the last 10% is the validation split"},
    {"--tokenizer", NULL, "KIND", "char (default: the file's characters) or byte"},
    {"--preset", NULL, "NAME", "start from gpt2, baby or llama shapes (flags below override)"},
    {"--layers", NULL, "L", "transformer blocks (default 4)"},
    {"--heads", NULL, "H", "attention heads (default 4)"},
    {"--kv-heads", NULL, "H", "key/value heads: fewer than --heads for GQA, 1 for MQA"},
    {"--dim", NULL, "D", "model width, a multiple of --heads (default 128)"},
    {"--context", NULL, "T", "tokens per sequence (default 64)"},
    {"--ffn-hidden", NULL, "F", "FFN width (default 4 D; gated: LLaMA's 8/3 rule)"},
    {"--norm", NULL, "KIND", "layernorm (default) or rmsnorm"},
    {"--ffn", NULL, "KIND", "gelu (default), gelu_tanh, swiglu, geglu or reglu"},
    {"--pos", NULL, "KIND", "learned (default), sinusoidal, rope, alibi or none"},
    {"--no-bias", NULL, NULL, "no biases in the linear layers and LayerNorms"},
    {"--untied", NULL, NULL, "a separate output matrix instead of the token embedding"},
    {"--dropout", NULL, "P", "dropout probability (default 0)"},
    {"--checkpointing", NULL, NULL, "recompute each block in backward (less memory)"},
    {"--graph", NULL, NULL, "CUDA graph steps: capture one step, replay it (--device cuda, no dropout)"},
    {"--batch", "-b", "B", "sequences per step (default 32)"},
    {"--steps", NULL, "N", "optimizer steps (default 1000)"},
    {"--lr", NULL, "LR", "peak learning rate of AdamW (default 1e-3)"},
    {"--min-lr", NULL, "LR", "learning rate at the end of the cosine (default lr / 10)"},
    {"--warmup", NULL, "N", "linear warmup steps (default min(100, steps / 10))"},
    {"--weight-decay", NULL, "W", "AdamW weight decay of the matrices (default 0.1)"},
    {"--grad-clip", NULL, "C", "clip the gradient norm to C (default 1; 0: off)"},
    {"--eval-every", NULL, "N", "estimate train/val loss every N steps (default 250)"},
    {"--eval-iters", NULL, "N", "batches per estimate (default 20)"},
    {"--out", NULL, "FILE", "save the best-val-loss model, config, tokenizer (.born/.safetensors)"},
    {"--save-last", NULL, NULL, "--out gets the last model instead of the best one"},
    {"--checkpoint", NULL, "DIR", "write DIR/step-NNNNNNN.born: model, AdamW, schedules, RNGs"},
    {"--checkpoint-every", NULL, "N", "checkpoint every N evaluations and after the last (default 1)"},
    {"--resume", NULL, "FILE", "continue from a checkpoint (same options; --steps is the total)"},
    {"--seed", "-s", "S", "seed of the weights and the batches (default 0)"},
    {"--threads", "-t", "T", "CPU threads (default: OMP_NUM_THREADS or all cores)"},
    {"--device", NULL, "DEV", "cpu (default), cuda or cuda:N"},
    {"--precision", NULL, "P", "fp32 (default) or bf16 (autocast, f32 master weights)"},
    {"--limit", NULL, "N", "use only the first N bytes of the file"},
    {"--json", NULL, NULL, "one JSON object per evaluation and a final one, one per line"},
    {NULL, NULL, NULL, NULL},
};

const cli_cmd cli_cmd_train_gpt = {
    .name = "train",
    .summary = "train a GPT on a text file (born train --model gpt)",
    .args_usage = "",
    .description =
        "Trains a decoder-only transformer on a text file, one token per character (or byte):\n"
        "random windows of --context tokens from the first 90% of the text, AdamW (betas 0.9,\n"
        "0.99; weight decay on the matrices only) with linear warmup and cosine decay, gradient\n"
        "clipping, and every --eval-every steps the mean loss of --eval-iters fixed batches of\n"
        "the train and validation splits. --out saves the model with the lowest validation loss\n"
        "of those evaluations (rewritten each time it improves; --save-last: the last model)\n"
        "with its config and tokenizer, for born generate and born eval. --checkpoint DIR\n"
        "writes the whole training state every --checkpoint-every evaluations; --resume FILE\n"
        "continues from one bit for bit (give the same options, --steps being the total).\n"
        "Example: born train --model gpt --data tinyshakespeare.txt --layers 4 --heads 4 --dim\n"
        "128 --context 64 --batch 32 --steps 2000 --lr 1e-3 --out gpt.born",
    .opts = train_gpt_opts,
    .max_positional = 0,
    .run = run_train_gpt,
};
