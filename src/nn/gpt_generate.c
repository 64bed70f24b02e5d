/* nn/gpt_generate.c — generating text with a GPT: the KV cache (keys and values of the positions
 * seen so far, per layer, preallocated to the context), the cached forward that runs only the new
 * positions against it, the sampling distribution (temperature, top-k, top-p) computed in double
 * on the host, and the generation loop: prefill the prompt once, then one token at a time; when
 * the context is full, drop the oldest tokens and rebuild the cache from the rest. */
#include "nn/gpt_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- the KV cache -------------------------------------------------------------------------------- */

bn_kv_cache *bn_kv_cache_new(const bn_module *m, int64_t batch)
{
    const char *fn = "bn_kv_cache_new";
    bn__gpt *g = bn__gpt_of(fn, m);
    if (!g) return NULL;
    if (batch < 1)
        return bn__error_null(BN_ERR_ARG, "%s: batch is %lld, expected >= 1", fn,
                              (long long)batch);
    bn_kv_cache *c = calloc(1, sizeof *c);
    if (c) {
        c->k = calloc((size_t)g->cfg.layers, sizeof *c->k);
        c->v = calloc((size_t)g->cfg.layers, sizeof *c->v);
    }
    if (!c || !c->k || !c->v) {
        bn_kv_cache_free(c);
        return bn__error_null(BN_ERR_OOM, "%s: out of memory", fn);
    }
    c->model = m;
    c->batch = batch;
    c->layers = g->cfg.layers;
    return c;
}

void bn_kv_cache_free(bn_kv_cache *c)
{
    if (!c) return;
    for (int64_t i = 0; i < c->layers; i++) {
        if (c->k) bn_release(c->k[i]);
        if (c->v) bn_release(c->v[i]);
    }
    free(c->k);
    free(c->v);
    free(c);
}

int64_t bn_kv_cache_len(const bn_kv_cache *c) { return c ? c->len : -1; }

void bn_kv_cache_reset(bn_kv_cache *c)
{
    if (c) c->len = 0; /* the buffers stay; rows past len are overwritten before they are read */
}

bn_tensor *bn_gpt_forward_cached(bn_module *m, bn_kv_cache *c, const bn_tensor *tokens)
{
    const char *fn = "bn_gpt_forward_cached";
    bn__gpt *g = bn__gpt_of(fn, m);
    if (!g) return NULL;
    if (!c) return bn__null_arg(fn, "c");
    if (c->model != m)
        return bn__error_null(BN_ERR_ARG, "%s: the cache was made for another model", fn);
    int64_t room = g->cfg.context - c->len;
    if (room < 1)
        return bn__error_null(BN_ERR_ARG, "%s: the cache is full (%lld positions, the context); "
                              "reset it or start a new window", fn, (long long)c->len);
    if (!bn__gpt_check_tokens(fn, g, tokens, room)) return NULL;
    int64_t b = tokens->ndim == 2 ? tokens->shape[0] : 1;
    if (b != c->batch)
        return bn__error_null(BN_ERR_SHAPE, "%s: tokens are %s, but the cache holds batch %lld",
                              fn, bn__tshape(tokens), (long long)c->batch);
    bool flat = tokens->ndim == 1;
    bn_no_grad_begin();
    bn_scope_begin();
    bn_tensor *h = bn__gpt_run(g, flat ? bn_unsqueeze(tokens, 0) : tokens, c->len, c);
    bn_tensor *logits = bn_linear(h, bn__gpt_head_weight(g), NULL);
    if (flat) logits = bn_squeeze(logits, 0);
    bn_retain(logits);
    bn_scope_end();
    bn_no_grad_end();
    if (logits) c->len += bn_dim(tokens, -1);
    return bn__out(logits);
}

/* ---- the sampling distribution ------------------------------------------------------------------ */

typedef struct scored {
    double v;
    int64_t i;
} scored;

/* Descending by value, then ascending by index (a stable order for ties). */
static int cmp_desc(const void *a, const void *b)
{
    const scored *x = a, *y = b;
    if (x->v != y->v) return x->v < y->v ? 1 : -1;
    return (x->i > y->i) - (x->i < y->i);
}

/* Turns one row of logits l (n) into sampling probabilities in place; tmp has room for n. */
static void probs_row(double *l, int64_t n, double temperature, int64_t top_k, double top_p,
                      scored *tmp)
{
    for (int64_t i = 0; i < n; i++) l[i] /= temperature;
    if (top_k > 0 && top_k < n) {
        for (int64_t i = 0; i < n; i++) tmp[i] = (scored){l[i], i};
        qsort(tmp, (size_t)n, sizeof *tmp, cmp_desc);
        double kth = tmp[top_k - 1].v;
        for (int64_t i = 0; i < n; i++)
            if (l[i] < kth) l[i] = -INFINITY;
    }
    double mx = -INFINITY, sum = 0;
    for (int64_t i = 0; i < n; i++) mx = l[i] > mx ? l[i] : mx;
    for (int64_t i = 0; i < n; i++) sum += (l[i] = exp(l[i] - mx));
    for (int64_t i = 0; i < n; i++) l[i] /= sum;
    if (top_p > 0 && top_p < 1) {
        for (int64_t i = 0; i < n; i++) tmp[i] = (scored){l[i], i};
        qsort(tmp, (size_t)n, sizeof *tmp, cmp_desc);
        double before = 0, kept = 0;
        for (int64_t j = 0; j < n; j++) {
            /* a token stays while the more likely ones hold less than top_p */
            if (before < top_p) kept += tmp[j].v;
            else l[tmp[j].i] = 0;
            before += tmp[j].v;
        }
        for (int64_t i = 0; i < n; i++) l[i] /= kept;
    }
}

static bool check_sampling(const char *fn, double temperature, int64_t top_k, double top_p)
{
    if (!(temperature > 0) || !isfinite(temperature) || top_k < 0 || !(top_p >= 0 && top_p <= 1)) {
        bn__error(BN_ERR_ARG, "%s: temperature %g must be > 0, top_k %lld >= 0 and top_p %g in "
                  "[0, 1]", fn, temperature, (long long)top_k, top_p);
        return false;
    }
    return true;
}

bn_tensor *bn_sampling_probs(const bn_tensor *logits, double temperature, int64_t top_k,
                             double top_p)
{
    const char *fn = "bn_sampling_probs";
    BN_CHECK_NULL(fn, logits);
    if (!check_sampling(fn, temperature, top_k, top_p)) return NULL;
    if (!bn_dtype_is_float(logits->dtype) || logits->ndim < 1 || logits->shape[logits->ndim - 1] < 1)
        return bn__error_null(BN_ERR_ARG, "%s: logits are %s %s, expected a float tensor (..., V) "
                              "with V >= 1", fn, bn_dtype_name(logits->dtype), bn__tshape(logits));
    int64_t v = logits->shape[logits->ndim - 1], rows = bn__numel(logits) / v;
    bn__scope_suspend();
    bn_tensor *host = bn_tensor_to(logits, bn_cpu());
    bn_tensor *out = host ? bn_to_dtype(host, BN_F64) : NULL;
    bn_tensor *c = out ? bn_clone(out) : NULL; /* always a fresh buffer we may write */
    bn_release(host);
    bn_release(out);
    bn__scope_resume();
    scored *tmp = c ? malloc((size_t)v * sizeof *tmp) : NULL;
    if (!tmp) {
        bn_release(c);
        return c ? bn__error_null(BN_ERR_OOM, "%s: out of memory", fn) : NULL;
    }
    double *p = bn__data(c);
    for (int64_t r = 0; r < rows; r++) probs_row(p + r * v, v, temperature, top_k, top_p, tmp);
    free(tmp);
    return bn__out(c);
}

/* ---- generation ----------------------------------------------------------------------------------- */

typedef struct gen_state {
    bn_module *m;
    bn__gpt *g;
    bn_kv_cache *cache;
    double *row;  /* the last position's logits (V) */
    scored *tmp;  /* V */
    bn_rng_state rng;
} gen_state;

/* Runs ids (n) through the cache and leaves the last position's logits in s->row. */
static bn_status gen_feed(gen_state *s, const int64_t *ids, int64_t n)
{
    bn_status st = BN_OK;
    bn_scope_begin();
    bn_tensor *t = bn_from_data(ids, BN_SHAPE(1, n), BN_I64);
    bn_tensor *logits = t ? bn_gpt_forward_cached(s->m, s->cache, t) : NULL;
    bn_tensor *last = logits ? bn_to_dtype(bn_select(bn_select(logits, 0, 0), 0, n - 1), BN_F64)
                             : NULL;
    if (!last) st = bn_error_code();
    else st = bn_copy_to_host(last, s->row, (size_t)s->g->cfg.vocab_size * sizeof(double));
    bn_scope_end();
    return st;
}

/* The next token from s->row: argmax at temperature 0, else a draw from the sampler's stream. */
static int64_t gen_pick(gen_state *s, const bn_generate_opts *o)
{
    int64_t v = s->g->cfg.vocab_size;
    if (o->temperature == 0) {
        int64_t best = 0;
        for (int64_t i = 1; i < v; i++)
            if (s->row[i] > s->row[best]) best = i;
        return best;
    }
    probs_row(s->row, v, o->temperature, o->top_k, o->top_p, s->tmp);
    bn_rng_state saved = bn_rng_get_state();
    bn_rng_set_state(s->rng);
    bn__scope_suspend();
    bn_tensor *u = bn_rand(BN_SCALAR, BN_F64);
    bn__scope_resume();
    s->rng = bn_rng_get_state();
    bn_rng_set_state(saved);
    if (!u) return -1;
    double x = bn_item(u);
    bn_release(u);
    double cum = 0;
    int64_t last = -1;
    for (int64_t i = 0; i < v; i++) {
        if (s->row[i] <= 0) continue;
        last = i;
        cum += s->row[i];
        if (x < cum) return i;
    }
    return last; /* rounding left x above the total: the last possible token */
}

int64_t bn_gpt_generate(bn_module *m, const int64_t *prompt, int64_t n_prompt, int64_t *out,
                        bn_generate_opts o)
{
    const char *fn = "bn_gpt_generate";
    bn__gpt *g = bn__gpt_of(fn, m);
    if (!g) return -1;
    if (!prompt || !out) {
        bn__null_arg(fn, prompt ? "out" : "prompt");
        return -1;
    }
    int64_t ctx = g->cfg.context, v = g->cfg.vocab_size;
    if (n_prompt < 1 || o.max_new_tokens < 1) {
        bn__error(BN_ERR_ARG, "%s: n_prompt %lld and max_new_tokens %lld must be >= 1", fn,
                  (long long)n_prompt, (long long)o.max_new_tokens);
        return -1;
    }
    if (o.temperature != 0 && !check_sampling(fn, o.temperature, o.top_k, o.top_p)) return -1;
    if (o.window_shift < 0 || o.window_shift > ctx) {
        bn__error(BN_ERR_ARG, "%s: window_shift %lld must be in [0, context %lld]", fn,
                  (long long)o.window_shift, (long long)ctx);
        return -1;
    }
    for (int64_t i = 0; i < n_prompt; i++)
        if (prompt[i] < 0 || prompt[i] >= v) {
            bn__error(BN_ERR_ARG, "%s: prompt id %lld at position %lld is outside [0, vocab_size "
                      "%lld)", fn, (long long)prompt[i], (long long)i, (long long)v);
            return -1;
        }
    int64_t shift = o.window_shift ? o.window_shift : (ctx / 4 > 1 ? ctx / 4 : 1);
    int64_t keep = ctx - shift + 1; /* tokens in a rebuilt window, the newest included */
    int64_t total = n_prompt + o.max_new_tokens;
    gen_state s = {.m = m, .g = g, .rng = {.seed = o.seed, .offset = 0}};
    int64_t *seq = malloc((size_t)total * sizeof *seq);
    s.row = malloc((size_t)v * sizeof *s.row);
    s.tmp = malloc((size_t)v * sizeof *s.tmp);
    s.cache = seq && s.row && s.tmp ? bn_kv_cache_new(m, 1) : NULL;
    if (!s.cache) {
        if (seq && s.row && s.tmp) bn__error(BN_ERR_OOM, "%s: out of memory", fn);
        free(seq);
        free(s.row);
        free(s.tmp);
        return -1;
    }
    bool was_training = bn_module_is_training(m);
    bn_module_eval(m);
    memcpy(seq, prompt, (size_t)n_prompt * sizeof *seq);
    int64_t n = n_prompt, made = 0;
    int64_t start = n > ctx ? n - ctx : 0; /* the prompt's last context tokens */
    bn_status st = gen_feed(&s, seq + start, n - start);
    while (st == BN_OK && made < o.max_new_tokens) {
        int64_t next = gen_pick(&s, &o);
        if (next < 0) {
            st = bn_error_code();
            break;
        }
        seq[n++] = next;
        out[made++] = next;
        if ((o.on_token && !o.on_token(o.ctx, next)) || made == o.max_new_tokens) break;
        if (bn_kv_cache_len(s.cache) < ctx) {
            st = gen_feed(&s, &next, 1);
        } else {
            bn_kv_cache_reset(s.cache);
            st = gen_feed(&s, seq + n - keep, keep);
        }
    }
    bn_module_train(m, was_training);
    bn_kv_cache_free(s.cache);
    free(seq);
    free(s.row);
    free(s.tmp);
    return st == BN_OK ? made : -1;
}
