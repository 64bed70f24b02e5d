/* nn/gpt_config.c — the GPT configuration: named presets (GPT-2 124M, nanoGPT's baby
 * Shakespeare model, LLaMA-2-7B shapes), checking and resolving the zero defaults, and the JSON
 * form kept in a model file's config. */
#include "nn/gpt_internal.h"

#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

bn_status bn_gpt_preset(const char *name, bn_gpt_config *out)
{
    const char *fn = "bn_gpt_preset";
    BN_CHECK_NULL_STATUS(fn, name);
    BN_CHECK_NULL_STATUS(fn, out);
    bn_gpt_config c = {0};
    if (strcmp(name, "gpt2") == 0) {
        c = (bn_gpt_config){.vocab_size = 50257, .context = 1024, .layers = 12, .heads = 12,
                            .dim = 768};
    } else if (strcmp(name, "baby") == 0) {
        c = (bn_gpt_config){.vocab_size = 65, .context = 256, .layers = 6, .heads = 6,
                            .dim = 384, .dropout = 0.2};
    } else if (strcmp(name, "llama") == 0) {
        c = (bn_gpt_config){.vocab_size = 32000, .context = 4096, .layers = 32, .heads = 32,
                            .dim = 4096, .ffn_hidden = 11008, .norm = BN_GPT_RMSNORM,
                            .ffn = BN_GPT_FFN_SWIGLU, .pos = BN_GPT_POS_ROPE, .no_bias = true,
                            .untied = true};
    } else {
        return bn__error(BN_ERR_ARG, "%s: unknown preset \"%s\" (known: gpt2, baby, llama)", fn,
                         name);
    }
    *out = c;
    return BN_OK;
}

static bool is_gated(bn_gpt_ffn f) { return f >= BN_GPT_FFN_SWIGLU; }

bn_status bn_gpt_config_resolve(const bn_gpt_config *in, bn_gpt_config *out)
{
    const char *fn = "bn_gpt_config_resolve";
    BN_CHECK_NULL_STATUS(fn, in);
    BN_CHECK_NULL_STATUS(fn, out);
    bn_gpt_config c = *in;
    if (c.vocab_size < 1 || c.context < 1 || c.layers < 1 || c.heads < 1 || c.dim < 1)
        return bn__error(BN_ERR_ARG, "%s: vocab_size %lld, context %lld, layers %lld, heads %lld "
                         "and dim %lld must all be >= 1", fn, (long long)c.vocab_size,
                         (long long)c.context, (long long)c.layers, (long long)c.heads,
                         (long long)c.dim);
    /* sizes beyond 2^31 - 1 are no model's: refused here, so the derived sizes (4 * dim, the
     * gated FFN's rounding) cannot overflow */
    const int64_t most = INT32_MAX;
    if (c.vocab_size > most || c.context > most || c.layers > most || c.heads > most ||
        c.dim > most || c.ffn_hidden > most || c.ffn_multiple_of > most)
        return bn__error(BN_ERR_ARG, "%s: vocab_size %lld, context %lld, layers %lld, heads %lld, "
                         "dim %lld, ffn_hidden %lld and ffn_multiple_of %lld must all be <= %lld",
                         fn, (long long)c.vocab_size, (long long)c.context, (long long)c.layers,
                         (long long)c.heads, (long long)c.dim, (long long)c.ffn_hidden,
                         (long long)c.ffn_multiple_of, (long long)most);
    if (c.dim % c.heads)
        return bn__error(BN_ERR_ARG, "%s: dim %lld must be a multiple of heads %lld", fn,
                         (long long)c.dim, (long long)c.heads);
    if (c.kv_heads == 0) c.kv_heads = c.heads;
    if (c.kv_heads < 1 || c.kv_heads > c.heads || c.heads % c.kv_heads)
        return bn__error(BN_ERR_ARG, "%s: kv_heads %lld must divide heads %lld", fn,
                         (long long)c.kv_heads, (long long)c.heads);
    if ((unsigned)c.norm > BN_GPT_RMSNORM || (unsigned)c.ffn > BN_GPT_FFN_REGLU ||
        (unsigned)c.pos > BN_GPT_POS_NONE)
        return bn__error(BN_ERR_ARG, "%s: norm %d, ffn %d or pos %d is not a known value", fn,
                         (int)c.norm, (int)c.ffn, (int)c.pos);
    if (c.ffn_multiple_of == 0) c.ffn_multiple_of = 256;
    if (c.ffn_multiple_of < 1 || c.ffn_hidden < 0)
        return bn__error(BN_ERR_ARG, "%s: ffn_hidden %lld must be >= 0 and ffn_multiple_of %lld "
                         ">= 1", fn, (long long)c.ffn_hidden, (long long)c.ffn_multiple_of);
    if (c.ffn_hidden == 0) {
        if (is_gated(c.ffn)) { /* LLaMA: int(2 * 4D / 3) rounded up to a multiple */
            int64_t h = 2 * (4 * c.dim) / 3, mo = c.ffn_multiple_of;
            c.ffn_hidden = (h + mo - 1) / mo * mo;
        } else {
            c.ffn_hidden = 4 * c.dim;
        }
    }
    if (c.norm_eps == 0) c.norm_eps = 1e-5;
    if (!(c.norm_eps > 0) || !isfinite(c.norm_eps))
        return bn__error(BN_ERR_ARG, "%s: norm_eps %g must be a positive number", fn, c.norm_eps);
    if (!(c.dropout >= 0 && c.dropout < 1))
        return bn__error(BN_ERR_ARG, "%s: dropout %g must be in [0, 1)", fn, c.dropout);
    int64_t hd = c.dim / c.heads;
    if (c.pos == BN_GPT_POS_SINUSOIDAL && c.dim % 2)
        return bn__error(BN_ERR_ARG, "%s: sinusoidal positions need an even dim (got %lld)", fn,
                         (long long)c.dim);
    if (c.pos == BN_GPT_POS_ROPE) {
        bn_rope_opts *r = &c.rope;
        if (r->base == 0) r->base = 10000;
        if (r->rotary_dim == 0) r->rotary_dim = hd;
        if (!(r->base > 1) || !isfinite(r->base))
            return bn__error(BN_ERR_ARG, "%s: rope.base %g must be > 1", fn, r->base);
        if (r->rotary_dim < 2 || r->rotary_dim > hd || r->rotary_dim % 2)
            return bn__error(BN_ERR_ARG, "%s: rope.rotary_dim %lld must be even and in [2, "
                             "head_dim %lld]", fn, (long long)r->rotary_dim, (long long)hd);
        if ((unsigned)r->scaling > BN_ROPE_SCALING_LLAMA3 ||
            (r->scaling != BN_ROPE_SCALING_NONE && !(r->factor > 0)))
            return bn__error(BN_ERR_ARG, "%s: rope.scaling %d needs a factor > 0 (got %g)", fn,
                             (int)r->scaling, r->factor);
        r->offset = 0;
        r->positions = NULL;
    } else {
        c.rope = (bn_rope_opts){0};
    }
    *out = c;
    return BN_OK;
}

/* ---- JSON --------------------------------------------------------------------------------------- */

static const char *const norm_names[] = {"layernorm", "rmsnorm"};
static const char *const ffn_names[] = {"gelu", "gelu_tanh", "swiglu", "geglu", "reglu"};
static const char *const pos_names[] = {"learned", "sinusoidal", "rope", "alibi", "none"};
static const char *const scaling_names[] = {"none", "linear", "ntk", "llama3"};
#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

char *bn_gpt_config_to_json(const bn_gpt_config *in)
{
    const char *fn = "bn_gpt_config_to_json";
    BN_CHECK_NULL(fn, in);
    bn_gpt_config c;
    if (bn_gpt_config_resolve(in, &c) != BN_OK) return NULL;
    json_t *rope = json_pack("{s:f, s:I, s:b, s:s, s:f, s:f, s:f, s:I}", "base", c.rope.base,
                             "rotary_dim", (json_int_t)c.rope.rotary_dim, "interleaved",
                             (int)c.rope.interleaved, "scaling", scaling_names[c.rope.scaling],
                             "factor", c.rope.factor, "low_freq_factor", c.rope.low_freq_factor,
                             "high_freq_factor", c.rope.high_freq_factor,
                             "original_max_positions",
                             (json_int_t)c.rope.original_max_positions);
    json_t *o = rope ? json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:s, s:s, s:s, "
                                 "s:o, s:f, s:b, s:b, s:f, s:b}",
                                 "model", "gpt", "vocab_size", (json_int_t)c.vocab_size,
                                 "context", (json_int_t)c.context, "layers",
                                 (json_int_t)c.layers, "heads", (json_int_t)c.heads, "kv_heads",
                                 (json_int_t)c.kv_heads, "dim", (json_int_t)c.dim, "ffn_hidden",
                                 (json_int_t)c.ffn_hidden, "ffn_multiple_of",
                                 (json_int_t)c.ffn_multiple_of, "norm", norm_names[c.norm],
                                 "ffn", ffn_names[c.ffn], "pos", pos_names[c.pos], "rope", rope,
                                 "norm_eps", c.norm_eps, "bias", (int)!c.no_bias, "tied",
                                 (int)!c.untied, "dropout", c.dropout, "checkpoint",
                                 (int)c.checkpoint)
                     : NULL;
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17))
                : NULL;
    json_decref(o);
    if (!s) return bn__error_null(BN_ERR_OOM, "%s: out of memory", fn);
    return s;
}

/* Reads an integer field; absent is an error when required, else leaves *v. */
static bool get_int(const json_t *o, const char *key, bool required, int64_t *v)
{
    json_t *j = json_object_get(o, key);
    if (!j) {
        if (required)
            bn__error(BN_ERR_FORMAT, "bn_gpt_config_from_json: \"%s\" is missing", key);
        return !required;
    }
    if (!json_is_integer(j)) {
        bn__error(BN_ERR_FORMAT, "bn_gpt_config_from_json: \"%s\" must be an integer", key);
        return false;
    }
    *v = (int64_t)json_integer_value(j);
    return true;
}

static bool get_real(const json_t *o, const char *key, double *v)
{
    json_t *j = json_object_get(o, key);
    if (!j) return true;
    if (!json_is_number(j)) {
        bn__error(BN_ERR_FORMAT, "bn_gpt_config_from_json: \"%s\" must be a number", key);
        return false;
    }
    *v = json_number_value(j);
    return true;
}

static bool get_bool(const json_t *o, const char *key, bool *v)
{
    json_t *j = json_object_get(o, key);
    if (!j) return true;
    if (!json_is_boolean(j)) {
        bn__error(BN_ERR_FORMAT, "bn_gpt_config_from_json: \"%s\" must be true or false", key);
        return false;
    }
    *v = json_is_true(j);
    return true;
}

/* An enum field given by name; absent leaves *v (the zero default). */
static bool get_name(const json_t *o, const char *key, const char *const *names, int n, int *v)
{
    json_t *j = json_object_get(o, key);
    if (!j) return true;
    const char *s = json_string_value(j);
    for (int i = 0; s && i < n; i++)
        if (strcmp(s, names[i]) == 0) {
            *v = i;
            return true;
        }
    char list[128] = "";
    for (int i = 0; i < n; i++) {
        strcat(list, names[i]);
        if (i + 1 < n) strcat(list, ", ");
    }
    bn__error(BN_ERR_FORMAT, "bn_gpt_config_from_json: \"%s\" is %s%s%s, expected one of %s",
              key, s ? "\"" : "", s ? s : "not a string", s ? "\"" : "", list);
    return false;
}

bn_status bn_gpt_config_from_json(const char *json, bn_gpt_config *out)
{
    const char *fn = "bn_gpt_config_from_json";
    BN_CHECK_NULL_STATUS(fn, json);
    BN_CHECK_NULL_STATUS(fn, out);
    json_error_t err;
    json_t *o = json_loads(json, JSON_REJECT_DUPLICATES, &err);
    if (!o || !json_is_object(o)) {
        json_decref(o);
        return bn__error(BN_ERR_FORMAT, "%s: not a JSON object (%s)", fn,
                         o ? "another JSON value" : err.text);
    }
    bn_gpt_config c = {0};
    int norm = 0, ffn = 0, pos = 0, scaling = 0;
    bool bias = true, tied = true;
    json_t *rope = json_object_get(o, "rope");
    const char *model = json_string_value(json_object_get(o, "model"));
    bool ok = true;
    if (model && strcmp(model, "gpt") != 0) {
        bn__error(BN_ERR_FORMAT, "%s: \"model\" is \"%s\", expected \"gpt\"", fn, model);
        ok = false;
    }
    ok = ok && get_int(o, "vocab_size", true, &c.vocab_size) &&
         get_int(o, "context", true, &c.context) && get_int(o, "layers", true, &c.layers) &&
         get_int(o, "heads", true, &c.heads) && get_int(o, "dim", true, &c.dim) &&
         get_int(o, "kv_heads", false, &c.kv_heads) &&
         get_int(o, "ffn_hidden", false, &c.ffn_hidden) &&
         get_int(o, "ffn_multiple_of", false, &c.ffn_multiple_of) &&
         get_name(o, "norm", norm_names, COUNT(norm_names), &norm) &&
         get_name(o, "ffn", ffn_names, COUNT(ffn_names), &ffn) &&
         get_name(o, "pos", pos_names, COUNT(pos_names), &pos) &&
         get_real(o, "norm_eps", &c.norm_eps) && get_bool(o, "bias", &bias) &&
         get_bool(o, "tied", &tied) && get_real(o, "dropout", &c.dropout) &&
         get_bool(o, "checkpoint", &c.checkpoint);
    if (ok && rope) {
        if (!json_is_object(rope)) {
            bn__error(BN_ERR_FORMAT, "%s: \"rope\" must be an object", fn);
            ok = false;
        }
        ok = ok && get_real(rope, "base", &c.rope.base) &&
             get_int(rope, "rotary_dim", false, &c.rope.rotary_dim) &&
             get_bool(rope, "interleaved", &c.rope.interleaved) &&
             get_name(rope, "scaling", scaling_names, COUNT(scaling_names), &scaling) &&
             get_real(rope, "factor", &c.rope.factor) &&
             get_real(rope, "low_freq_factor", &c.rope.low_freq_factor) &&
             get_real(rope, "high_freq_factor", &c.rope.high_freq_factor) &&
             get_int(rope, "original_max_positions", false, &c.rope.original_max_positions);
    }
    json_decref(o);
    if (!ok) return bn_error_code();
    c.norm = (bn_gpt_norm)norm;
    c.ffn = (bn_gpt_ffn)ffn;
    c.pos = (bn_gpt_pos)pos;
    c.rope.scaling = (bn_rope_scaling)scaling;
    c.no_bias = !bias;
    c.untied = !tied;
    bn_gpt_config r;
    if (bn_gpt_config_resolve(&c, &r) != BN_OK) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", bn_error_message());
        return bn__error(BN_ERR_FORMAT, "%s: %s", fn, msg);
    }
    *out = r;
    return BN_OK;
}
