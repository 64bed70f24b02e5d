/* nn/gpt.c — the decoder-only transformer as modules: the norms (LayerNorm with an optional
 * bias, RMSNorm), causal self-attention (fused q/k/v projection, grouped-query heads, rotary or
 * ALiBi positions, dropout on the weights and the output), the MLP (GELU) or gated FFN, pre-norm
 * blocks, and the model (embeddings, blocks, final norm, tied or separate classifier) with
 * GPT-2's initialisation, its forward, hidden states and loss through the fused classifier +
 * cross-entropy, and optional activation checkpointing per block.
 *
 * Each block computes from an explicit array of its parameters (block_compute), so the same code
 * runs on the module's own tensors and, under checkpointing, on the leaves bn_checkpoint hands
 * back in backward (it differentiates only with respect to its inputs). Config: gpt_config.c;
 * KV cache and generation: gpt_generate.c; files: gpt_io.c. The attention itself is
 * bn_attention (transformer.h). */
#include "nn/gpt_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- norms -------------------------------------------------------------------------------------- */

typedef struct gpt_norm {
    bn_module base;
    bn_gpt_norm kind;
    int64_t dim;
    double eps;
} gpt_norm;

static bn_tensor *norm_apply(bn_gpt_norm kind, double eps, const bn_tensor *x, const bn_tensor *w,
                             const bn_tensor *b)
{
    return kind == BN_GPT_RMSNORM ? bn_rms_norm(x, 1, w, eps) : bn_layer_norm(x, 1, w, b, eps);
}

static bn_tensor *norm_forward(bn_module *m, const bn_tensor *x)
{
    gpt_norm *n = (gpt_norm *)m;
    if (x->ndim < 1 || x->shape[x->ndim - 1] != n->dim)
        return bn__module_shape_error(m, "input is %s, expected [..., %lld]", bn__tshape(x),
                                      (long long)n->dim);
    return norm_apply(n->kind, n->eps, x, bn__module_tensor(m, "weight"),
                      bn__module_tensor(m, "bias"));
}

static void norm_repr(const bn_module *m, char *buf, size_t n)
{
    const gpt_norm *g = (const gpt_norm *)m;
    char e[32];
    snprintf(buf, n, "(%lld,), eps=%s, bias=%s", (long long)g->dim,
             bn__py_float(g->eps, e, sizeof e), bn__module_tensor(m, "bias") ? "True" : "False");
}

static const bn_module_vtable layernorm_vt = {"LayerNorm", norm_forward, NULL, norm_repr};
static const bn_module_vtable rmsnorm_vt = {"RMSNorm", norm_forward, NULL, norm_repr};

static bn_module *norm_new(const bn_gpt_config *c)
{
    gpt_norm *n = (gpt_norm *)bn_module_alloc(
        sizeof(gpt_norm), c->norm == BN_GPT_RMSNORM ? &rmsnorm_vt : &layernorm_vt);
    if (!n) return NULL;
    n->kind = c->norm;
    n->dim = c->dim;
    n->eps = c->norm_eps;
    bn_tensor *w = bn__module_new_param(&n->base, "weight", BN_SHAPE(c->dim));
    bool bias = c->norm == BN_GPT_LAYERNORM && !c->no_bias;
    bn_tensor *b = bias ? bn__module_new_param(&n->base, "bias", BN_SHAPE(c->dim)) : NULL;
    if (!w || (bias && !b) || bn_init_ones(w) != BN_OK) {
        bn_module_free(&n->base);
        return NULL;
    }
    return &n->base;
}

/* ---- the block's computation ------------------------------------------------------------------- */

/* A block's parameters in a fixed order (NULL where a bias is absent). */
enum {
    P_LN1_W, P_LN1_B, P_QKV_W, P_QKV_B, P_APROJ_W, P_APROJ_B,
    P_LN2_W, P_LN2_B, P_FC_W, P_FC_B, P_MPROJ_W, P_MPROJ_B, P_COUNT
};

/* How one call runs a block. */
typedef struct block_run {
    const bn_gpt_config *cfg;
    bool training;
    int64_t pos0;           /* position of the first row */
    const bn_tensor *alibi; /* (heads, Tq, Tk) bias, or NULL (made here when ALiBi needs it) */
    bn_tensor **cache_k, **cache_v; /* this layer's KV cache slots, or NULL */
    int64_t cache_len, cache_batch;
} block_run;

/* A head view: x (B, T, H * hd) → (B, H, T, hd). */
static bn_tensor *heads_view(const bn_tensor *x, int64_t heads, int64_t hd)
{
    bn_shape s = bn_shape_of(x);
    return bn_transpose(bn_reshape(x, BN_SHAPE(s.dims[0], s.dims[1], heads, hd)), 1, 2);
}

/* Writes the new keys (or values) t (B, Hkv, Tn, hd) at rows [len, len + Tn) of the cache slot
 * (allocated on first use) and returns rows [0, len + Tn). */
static bn_tensor *cache_append(bn_tensor **slot, const bn_tensor *t, const block_run *r,
                               int64_t context)
{
    bn_shape s = bn_shape_of(t);
    if (!*slot) {
        int64_t dims[4] = {r->cache_batch, s.dims[1], context, s.dims[3]};
        *slot = bn__full(dims, 4, 0.0, bn_dtype_of(t), bn_device_of(t));
        if (!*slot) return NULL;
    }
    bn_tensor *dst = bn_narrow(*slot, 2, r->cache_len, s.dims[2]);
    if (!dst || bn_copy_(dst, t) != BN_OK) return NULL;
    return bn_narrow(*slot, 2, 0, r->cache_len + s.dims[2]);
}

/* x @ w[start : start + n]^T + b[start : start + n]: one of q, k, v (B, T, n). */
static bn_tensor *qkv_part(const bn_tensor *x, const bn_tensor *w, const bn_tensor *b,
                           int64_t start, int64_t n)
{
    return bn_linear(x, bn_narrow(w, 0, start, n), b ? bn_narrow(b, 0, start, n) : NULL);
}

/* Causal self-attention of x (B, T, D) (already normalised) → (B, T, D). */
static bn_tensor *attn_compute(const block_run *r, const bn_tensor *x, const bn_tensor *wqkv,
                               const bn_tensor *bqkv, const bn_tensor *wproj,
                               const bn_tensor *bproj)
{
    const bn_gpt_config *c = r->cfg;
    int64_t hq = c->heads, hkv = c->kv_heads, hd = c->dim / c->heads;
    bn_attention_opts ao = {.causal = true, .dropout_p = c->dropout, .training = r->training};
    if (c->pos != BN_GPT_POS_ROPE && !r->cache_k) {
        /* one projection, and attention reading q, k and v where it wrote them: its backward
         * writes one gradient for the projection, so nothing is copied, padded or summed */
        bn_tensor *qkv = bn_linear(x, wqkv, bqkv);
        if (!qkv) return NULL;
        ao.mask = r->alibi;
        if (c->pos == BN_GPT_POS_ALIBI && !ao.mask) {
            int64_t t = bn_dim(qkv, 1);
            ao.mask = bn_alibi_bias(hq, t, t, bn_dtype_of(qkv), bn_device_of(qkv));
            if (!ao.mask) return NULL;
        }
        bn_tensor *y = bn__attention_packed(qkv, hq, hkv, &ao); /* (B, T, hq hd) */
        return bn_dropout(bn_linear(y, wproj, bproj), c->dropout, r->training);
    }
    /* q, k and v from row blocks of the fused weight: slicing the weight rather than the
     * (B, T, (hq + 2 hkv) hd) output keeps the slices' backward at the weight's size */
    bn_tensor *q = heads_view(qkv_part(x, wqkv, bqkv, 0, hq * hd), hq, hd);
    bn_tensor *k = heads_view(qkv_part(x, wqkv, bqkv, hq * hd, hkv * hd), hkv, hd);
    bn_tensor *v = heads_view(qkv_part(x, wqkv, bqkv, (hq + hkv) * hd, hkv * hd), hkv, hd);
    if (c->pos == BN_GPT_POS_ROPE) {
        bn_rope_opts ro = c->rope;
        ro.offset = r->pos0;
        q = bn_rope(q, &ro);
        k = bn_rope(k, &ro);
    }
    if (r->cache_k) {
        k = k ? cache_append(r->cache_k, k, r, c->context) : NULL;
        v = v && k ? cache_append(r->cache_v, v, r, c->context) : NULL;
    }
    if (!q || !k || !v) return NULL;
    const bn_tensor *alibi = r->alibi;
    if (c->pos == BN_GPT_POS_ALIBI && !alibi) {
        alibi = bn_alibi_bias(hq, bn_dim(q, 2), bn_dim(k, 2), bn_dtype_of(q), bn_device_of(q));
        if (!alibi) return NULL;
    }
    ao.mask = alibi;
    bn_tensor *y = bn_attention(q, k, v, &ao); /* (B, hq, T, hd) */
    bn_shape xs = bn_shape_of(x);
    y = bn_reshape(bn_transpose(y, 1, 2), BN_SHAPE(xs.dims[0], xs.dims[1], c->dim));
    return bn_dropout(bn_linear(y, wproj, bproj), c->dropout, r->training);
}

static bn_tensor *mlp_compute(const block_run *r, const bn_tensor *x, const bn_tensor *wfc,
                              const bn_tensor *bfc, const bn_tensor *wproj, const bn_tensor *bproj)
{
    const bn_gpt_config *c = r->cfg;
    bn_tensor *h = bn_linear(x, wfc, bfc);
    switch (c->ffn) {
    case BN_GPT_FFN_GELU: h = bn_gelu(h); break;
    case BN_GPT_FFN_GELU_TANH: h = bn_gelu_tanh(h); break;
    case BN_GPT_FFN_SWIGLU: h = bn_gated_activation(h, BN_GLU_SWIGLU); break;
    case BN_GPT_FFN_GEGLU: h = bn_gated_activation(h, BN_GLU_GEGLU); break;
    case BN_GPT_FFN_REGLU: h = bn_gated_activation(h, BN_GLU_REGLU); break;
    }
    return bn_dropout(bn_linear(h, wproj, bproj), c->dropout, r->training);
}

/* x + attn(ln_1(x)), then + mlp(ln_2(.)); x (B, T, D). */
static bn_tensor *block_compute(const block_run *r, const bn_tensor *x, bn_tensor *const *P)
{
    const bn_gpt_config *c = r->cfg;
    bn_tensor *a = attn_compute(r, norm_apply(c->norm, c->norm_eps, x, P[P_LN1_W], P[P_LN1_B]),
                                P[P_QKV_W], P[P_QKV_B], P[P_APROJ_W], P[P_APROJ_B]);
    bn_tensor *h = bn_add(x, a);
    bn_tensor *f = mlp_compute(r, norm_apply(c->norm, c->norm_eps, h, P[P_LN2_W], P[P_LN2_B]),
                               P[P_FC_W], P[P_FC_B], P[P_MPROJ_W], P[P_MPROJ_B]);
    return bn_add(h, f);
}

/* ---- block, attention and MLP modules ---------------------------------------------------------- */

typedef struct gpt_part {
    bn_module base;
    bn_gpt_config cfg; /* a copy of the model's, so a part can run on its own */
} gpt_part;

static bn_tensor *child_tensor(const bn_module *m, const char *child, const char *name)
{
    bn_module *c = bn_module_child(m, child);
    return c ? bn__module_tensor(c, name) : NULL;
}

static void block_params(const bn_module *b, bn_tensor **P)
{
    const bn_module *attn = bn_module_child(b, "attn"), *mlp = bn_module_child(b, "mlp");
    P[P_LN1_W] = child_tensor(b, "ln_1", "weight");
    P[P_LN1_B] = child_tensor(b, "ln_1", "bias");
    P[P_QKV_W] = child_tensor(attn, "c_attn", "weight");
    P[P_QKV_B] = child_tensor(attn, "c_attn", "bias");
    P[P_APROJ_W] = child_tensor(attn, "c_proj", "weight");
    P[P_APROJ_B] = child_tensor(attn, "c_proj", "bias");
    P[P_LN2_W] = child_tensor(b, "ln_2", "weight");
    P[P_LN2_B] = child_tensor(b, "ln_2", "bias");
    P[P_FC_W] = child_tensor(mlp, "c_fc", "weight");
    P[P_FC_B] = child_tensor(mlp, "c_fc", "bias");
    P[P_MPROJ_W] = child_tensor(mlp, "c_proj", "weight");
    P[P_MPROJ_B] = child_tensor(mlp, "c_proj", "bias");
}

static bool check_width(bn_module *m, const bn_tensor *x, int64_t dim)
{
    if (x->ndim == 3 && x->shape[2] == dim) return true;
    bn__module_shape_error(m, "input is %s, expected (B, T, %lld)", bn__tshape(x), (long long)dim);
    return false;
}

static bn_tensor *attn_forward(bn_module *m, const bn_tensor *x)
{
    gpt_part *p = (gpt_part *)m;
    if (!check_width(m, x, p->cfg.dim)) return NULL;
    block_run r = {.cfg = &p->cfg, .training = m->training};
    return attn_compute(&r, x, child_tensor(m, "c_attn", "weight"),
                        child_tensor(m, "c_attn", "bias"), child_tensor(m, "c_proj", "weight"),
                        child_tensor(m, "c_proj", "bias"));
}

static bn_tensor *mlp_forward(bn_module *m, const bn_tensor *x)
{
    gpt_part *p = (gpt_part *)m;
    if (!check_width(m, x, p->cfg.dim)) return NULL;
    block_run r = {.cfg = &p->cfg, .training = m->training};
    return mlp_compute(&r, x, child_tensor(m, "c_fc", "weight"), child_tensor(m, "c_fc", "bias"),
                       child_tensor(m, "c_proj", "weight"), child_tensor(m, "c_proj", "bias"));
}

static bn_tensor *block_forward(bn_module *m, const bn_tensor *x)
{
    gpt_part *p = (gpt_part *)m;
    if (!check_width(m, x, p->cfg.dim)) return NULL;
    bn_tensor *P[P_COUNT];
    block_params(m, P);
    block_run r = {.cfg = &p->cfg, .training = m->training};
    return block_compute(&r, x, P);
}

static const bn_module_vtable attn_vt = {"CausalSelfAttention", attn_forward, NULL, NULL};
static const bn_module_vtable mlp_vt = {"MLP", mlp_forward, NULL, NULL};
static const bn_module_vtable block_vt = {"Block", block_forward, NULL, NULL};
static const bn_module_vtable dict_vt = {"ModuleDict", NULL, NULL, NULL};

static bn_module *part_new(const bn_module_vtable *vt, const bn_gpt_config *c)
{
    gpt_part *p = (gpt_part *)bn_module_alloc(sizeof(gpt_part), vt);
    if (!p) return NULL;
    p->cfg = *c;
    return &p->base;
}

/* GPT-2's initialisation of a Linear: weight normal(0, std), bias 0. */
static bn_module *linear_init(int64_t in, int64_t out, bool bias, double std)
{
    bn_module *l = bn_nn_linear(in, out, bias);
    if (!l) return NULL;
    bn_tensor *w = bn__module_tensor(l, "weight"), *b = bn__module_tensor(l, "bias");
    if (bn_init_normal(w, 0.0, std) != BN_OK || (b && bn_init_zeros(b) != BN_OK)) {
        bn_module_free(l);
        return NULL;
    }
    return l;
}

static bn_module *block_new(const bn_gpt_config *c)
{
    bool bias = !c->no_bias;
    bool gated = c->ffn >= BN_GPT_FFN_SWIGLU;
    int64_t hd = c->dim / c->heads, f = c->ffn_hidden;
    double std = 0.02, proj_std = 0.02 / sqrt(2.0 * (double)c->layers);
    bn_module *m = part_new(&block_vt, c);
    if (!m) return NULL;
    bn_module *attn = bn_module_add_child(m, "ln_1", norm_new(c))
                          ? bn_module_add_child(m, "attn", part_new(&attn_vt, c))
                          : NULL;
    bn_module *mlp = attn && bn_module_add_child(m, "ln_2", norm_new(c))
                         ? bn_module_add_child(m, "mlp", part_new(&mlp_vt, c))
                         : NULL;
    bool ok = mlp &&
              bn_module_add_child(attn, "c_attn",
                                  linear_init(c->dim, (c->heads + 2 * c->kv_heads) * hd, bias,
                                              std)) &&
              bn_module_add_child(attn, "c_proj", linear_init(c->dim, c->dim, bias, proj_std)) &&
              bn_module_add_child(mlp, "c_fc", linear_init(c->dim, gated ? 2 * f : f, bias, std)) &&
              bn_module_add_child(mlp, "c_proj", linear_init(f, c->dim, bias, proj_std));
    if (!ok) {
        bn_module_free(m);
        return NULL;
    }
    return m;
}

/* ---- the model ------------------------------------------------------------------------------------ */

static bn_tensor *gpt_forward(bn_module *m, const bn_tensor *tokens);

static void gpt_free(bn_module *m) { free(((bn__gpt *)m)->blocks); }

static void gpt_repr(const bn_module *m, char *buf, size_t n)
{
    const bn_gpt_config *c = &((const bn__gpt *)m)->cfg;
    snprintf(buf, n, "vocab_size=%lld, context=%lld, layers=%lld, heads=%lld, kv_heads=%lld, "
             "dim=%lld, ffn_hidden=%lld", (long long)c->vocab_size, (long long)c->context,
             (long long)c->layers, (long long)c->heads, (long long)c->kv_heads,
             (long long)c->dim, (long long)c->ffn_hidden);
}

static const bn_module_vtable gpt_vt = {"GPT", gpt_forward, gpt_free, gpt_repr};

bool bn_is_gpt(const bn_module *m) { return m && m->vt == &gpt_vt; }

bn__gpt *bn__gpt_of(const char *fn, const bn_module *m)
{
    if (!m) return bn__null_arg(fn, "m");
    if (!bn_is_gpt(m))
        return bn__error_null(BN_ERR_ARG, "%s: m is a %s, not a model made by bn_gpt_new", fn,
                              bn_module_type_name(m));
    return (bn__gpt *)m;
}

const bn_gpt_config *bn_gpt_config_of(const bn_module *m)
{
    bn__gpt *g = bn__gpt_of("bn_gpt_config_of", m);
    return g ? &g->cfg : NULL;
}

bn_status bn_gpt_set_checkpointing(bn_module *m, bool on)
{
    bn__gpt *g = bn__gpt_of("bn_gpt_set_checkpointing", m);
    if (!g) return bn_error_code();
    g->cfg.checkpoint = on;
    return BN_OK;
}

bn_module *bn_gpt_new(const bn_gpt_config *cfg)
{
    const char *fn = "bn_gpt_new";
    BN_CHECK_NULL(fn, cfg);
    bn_gpt_config c;
    if (bn_gpt_config_resolve(cfg, &c) != BN_OK) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", bn_error_message());
        return bn__error_null(bn_error_code(), "%s: %s", fn, msg);
    }
    bn__gpt *g = (bn__gpt *)bn_module_alloc(sizeof(bn__gpt), &gpt_vt);
    if (!g) return NULL;
    g->cfg = c;
    g->blocks = calloc((size_t)c.layers, sizeof *g->blocks);
    bn_module *m = &g->base;
    bn_module *tr = g->blocks ? bn_module_add_child(m, "transformer",
                                                    bn_module_alloc(sizeof(bn_module), &dict_vt))
                              : NULL;
    g->wte = tr ? bn_module_add_child(tr, "wte", bn_nn_embedding(c.vocab_size, c.dim)) : NULL;
    bool ok = g->wte && bn_init_normal(bn__module_tensor(g->wte, "weight"), 0.0, 0.02) == BN_OK;
    if (ok && c.pos == BN_GPT_POS_LEARNED) {
        g->wpe = bn_module_add_child(tr, "wpe", bn_nn_embedding(c.context, c.dim));
        ok = g->wpe && bn_init_normal(bn__module_tensor(g->wpe, "weight"), 0.0, 0.02) == BN_OK;
    }
    bn_module *h = ok ? bn_module_add_child(tr, "h", bn_nn_module_list()) : NULL;
    ok = h != NULL;
    for (int64_t i = 0; ok && i < c.layers; i++) {
        g->blocks[i] = block_new(&c);
        ok = g->blocks[i] && bn_module_append(h, g->blocks[i]) == BN_OK;
    }
    if (ok) ok = (g->ln_f = bn_module_add_child(tr, "ln_f", norm_new(&c))) != NULL;
    if (ok && c.untied)
        ok = (g->lm_head = bn_module_add_child(m, "lm_head",
                                               linear_init(c.dim, c.vocab_size, false, 0.02))) !=
             NULL;
    if (!ok) {
        if (!g->blocks) bn__error(BN_ERR_OOM, "%s: out of memory", fn);
        bn_module_free(m);
        return NULL;
    }
    return m;
}

bn_tensor *bn__gpt_head_weight(const bn__gpt *g)
{
    return bn__module_tensor(g->lm_head ? g->lm_head : g->wte, "weight");
}

bool bn__gpt_check_tokens(const char *fn, const bn__gpt *g, const bn_tensor *tokens, int64_t room)
{
    if (!tokens) {
        bn__null_arg(fn, "tokens");
        return false;
    }
    if (!bn_dtype_is_int(tokens->dtype)) {
        bn__error(BN_ERR_DTYPE, "%s: tokens are %s, expected an integer dtype", fn,
                  bn_dtype_name(tokens->dtype));
        return false;
    }
    int64_t t = tokens->ndim >= 1 ? tokens->shape[tokens->ndim - 1] : 0;
    if (tokens->ndim < 1 || tokens->ndim > 2 || t < 1 || t > room ||
        (tokens->ndim == 2 && tokens->shape[0] < 1)) {
        bn__error(BN_ERR_SHAPE, "%s: tokens are %s, expected (B, T) or (T) with 1 <= T <= %lld "
                  "(the context is %lld)", fn, bn__tshape(tokens), (long long)room,
                  (long long)g->cfg.context);
        return false;
    }
    /* while a CUDA graph is captured there is no value to read: the embedding's own check
     * (which poisons its rows with NaN there) stands in */
    if (bn__capturing()) return true;
    bn__scope_suspend();
    bn_tensor *lo = bn_min(tokens, BN_ALL, false), *hi = bn_max(tokens, BN_ALL, false);
    double a = lo ? bn_item(lo) : NAN, b = hi ? bn_item(hi) : NAN;
    bn_release(lo);
    bn_release(hi);
    bn__scope_resume();
    if (isnan(a) || isnan(b)) return false;
    if (a < 0 || b >= (double)g->cfg.vocab_size) {
        bn__error(BN_ERR_ARG, "%s: token ids must be in [0, vocab_size %lld), got values in "
                  "[%lld, %lld]", fn, (long long)g->cfg.vocab_size, (long long)a, (long long)b);
        return false;
    }
    return true;
}

/* ---- running the model ------------------------------------------------------------------------ */

/* Checkpointed blocks: inputs[0] is x, then the block's non-NULL parameters in P order. */
static bn_tensor *block_checkpoint_fn(void *ctx, bn_tensor *const *inputs, int n)
{
    gpt_part *b = ctx;
    bn_tensor *own[P_COUNT], *P[P_COUNT];
    block_params(&b->base, own);
    for (int i = 0, k = 1; i < P_COUNT; i++) P[i] = own[i] && k < n ? inputs[k++] : NULL;
    block_run r = {.cfg = &b->cfg, .training = b->base.training};
    return block_compute(&r, inputs[0], P);
}

bn_tensor *bn__gpt_run(bn__gpt *g, const bn_tensor *tokens, int64_t pos0, bn_kv_cache *cache)
{
    const bn_gpt_config *c = &g->cfg;
    bool training = g->base.training;
    int64_t T = bn_dim(tokens, 1);
    bn_tensor *wte = bn__module_tensor(g->wte, "weight");
    bn_device dev = bn_device_of(wte);
    bn_dtype dt = bn_dtype_of(wte);
    const bn_tensor *ids = tokens;
    if (bn_device_of(tokens).type != dev.type || bn_device_of(tokens).index != dev.index)
        ids = bn_tensor_to(tokens, dev);
    bn_tensor *x = bn_embedding(wte, ids); /* (B, T, D) */
    if (c->pos == BN_GPT_POS_LEARNED || c->pos == BN_GPT_POS_SINUSOIDAL) {
        bn_tensor *pe;
        if (c->pos == BN_GPT_POS_LEARNED) {
            bn_tensor *pos = bn_arange((double)pos0, (double)(pos0 + T), 1, BN_I64);
            if (dev.type != BN_DEVICE_CPU) pos = bn_tensor_to(pos, dev);
            pe = bn_embedding(bn__module_tensor(g->wpe, "weight"), pos);
        } else {
            pe = bn_narrow(bn_sinusoidal_positions(pos0 + T, c->dim, 0, dt, dev), 0, pos0, T);
        }
        x = bn_add(x, pe);
    }
    x = bn_dropout(x, c->dropout, training);
    const bn_tensor *alibi = NULL;
    if (c->pos == BN_GPT_POS_ALIBI) {
        int64_t tk = (cache ? cache->len : 0) + T;
        alibi = bn_alibi_bias(c->heads, T, tk, dt, dev);
        if (!alibi) return NULL;
    }
    bool ckpt = c->checkpoint && !cache && bn_grad_enabled();
    for (int64_t i = 0; x && i < c->layers; i++) {
        bn_module *b = g->blocks[i];
        bn_tensor *P[P_COUNT];
        block_params(b, P);
        if (ckpt) {
            bn_tensor *in[P_COUNT + 1];
            int n = 0;
            in[n++] = x;
            for (int k = 0; k < P_COUNT; k++)
                if (P[k]) in[n++] = P[k];
            x = bn_checkpoint(block_checkpoint_fn, b, in, n);
            continue;
        }
        block_run r = {.cfg = c, .training = training, .pos0 = pos0, .alibi = alibi};
        if (cache) {
            r.cache_k = &cache->k[i];
            r.cache_v = &cache->v[i];
            r.cache_len = cache->len;
            r.cache_batch = cache->batch;
        }
        x = block_compute(&r, x, P);
    }
    return norm_apply(c->norm, c->norm_eps, x, bn__module_tensor(g->ln_f, "weight"),
                      bn__module_tensor(g->ln_f, "bias"));
}

/* tokens (B, T) or (T) → logits (B, T, V) or (T, V); inside bn_module_forward's scope. */
static bn_tensor *gpt_forward(bn_module *m, const bn_tensor *tokens)
{
    bn__gpt *g = (bn__gpt *)m;
    if (!bn__gpt_check_tokens("bn_gpt_forward", g, tokens, g->cfg.context)) return NULL;
    bool flat = tokens->ndim == 1;
    bn_tensor *h = bn__gpt_run(g, flat ? bn_unsqueeze(tokens, 0) : tokens, 0, NULL);
    bn_tensor *logits = bn_linear(h, bn__gpt_head_weight(g), NULL);
    return flat ? bn_squeeze(logits, 0) : logits;
}

bn_tensor *bn_gpt_forward(bn_module *m, const bn_tensor *tokens)
{
    if (!bn__gpt_of("bn_gpt_forward", m)) return NULL;
    if (!tokens) return bn__null_arg("bn_gpt_forward", "tokens");
    return bn_module_forward(m, tokens);
}

bn_tensor *bn_gpt_hidden(bn_module *m, const bn_tensor *tokens)
{
    const char *fn = "bn_gpt_hidden";
    bn__gpt *g = bn__gpt_of(fn, m);
    if (!g || !bn__gpt_check_tokens(fn, g, tokens, g->cfg.context)) return NULL;
    bn_scope_begin();
    bool flat = tokens->ndim == 1;
    bn_tensor *h = bn__gpt_run(g, flat ? bn_unsqueeze(tokens, 0) : tokens, 0, NULL);
    if (flat) h = bn_squeeze(h, 0);
    bn_retain(h);
    bn_scope_end();
    return bn__out(h);
}

bn_tensor *bn_gpt_loss(bn_module *m, const bn_tensor *tokens, const bn_tensor *targets)
{
    const char *fn = "bn_gpt_loss";
    bn__gpt *g = bn__gpt_of(fn, m);
    if (!g || !bn__gpt_check_tokens(fn, g, tokens, g->cfg.context)) return NULL;
    if (!targets) return bn__null_arg(fn, "targets");
    if (!bn_shape_equal(bn_shape_of(targets), bn_shape_of(tokens)) ||
        !bn_dtype_is_int(targets->dtype))
        return bn__error_null(BN_ERR_SHAPE, "%s: targets are %s %s, expected integer ids of the "
                              "tokens' shape %s", fn, bn_dtype_name(targets->dtype),
                              bn__tshape(targets), bn__tshape(tokens));
    bn_scope_begin();
    bool flat = tokens->ndim == 1;
    bn_tensor *h = bn__gpt_run(g, flat ? bn_unsqueeze(tokens, 0) : tokens, 0, NULL);
    int64_t n = bn_numel(targets);
    bn_tensor *w = bn__gpt_head_weight(g);
    const bn_tensor *tg = targets;
    bn_device dev = bn_device_of(w);
    if (bn_device_of(targets).type != dev.type || bn_device_of(targets).index != dev.index)
        tg = bn_tensor_to(targets, dev);
    bn_tensor *loss = bn_linear_cross_entropy(
        bn_reshape(h, BN_SHAPE(n, g->cfg.dim)), w, NULL, bn_reshape(tg, BN_SHAPE(n)),
        (bn_ce_opts){.use_ignore_index = true, .ignore_index = -1});
    bn_retain(loss);
    bn_scope_end();
    return bn__out(loss);
}
