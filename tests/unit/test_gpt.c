/* tests/unit/test_gpt.c — the GPT model (gpt.h): configs and presets, nanoGPT's state-dict
 * names, logits / loss / every gradient against PyTorch for four variants (learned positions +
 * LayerNorm + GELU; RoPE + RMSNorm + SwiGLU + GQA; ALiBi + MQA + GeGLU; sinusoidal + ReGLU) in
 * float64 and float32, a float64 finite-difference check of whole tiny models, activation
 * checkpointing, the KV cache against full forwards, generation (greedy against a full-forward
 * reference beyond the context, seeded sampling), the sampling distribution against PyTorch,
 * save / load, and bad input. Fixtures: scripts/gen_gpt.py → tests/data/gpt.txt. */
#include "bn_test.h"

#include "born/autograd.h"
#include "born/checkpoint.h"
#include "born/gpt.h"
#include "born/io.h"
#include "born/nn.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void fini(void) { bnt_release_kept(); }
TestSuite(gpt, .fini = fini);

static const char *const variants[] = {"learned", "rope", "alibi", "sinusoidal"};
#define NVARIANTS 4

/* The configs of scripts/gen_gpt.py's VARIANTS. */
static bn_gpt_config variant(const char *tag)
{
    bn_gpt_config c = {.vocab_size = 13, .context = 16, .layers = 2, .heads = 4, .dim = 32};
    if (strcmp(tag, "learned") == 0) {
        c.ffn_hidden = 128;
    } else if (strcmp(tag, "rope") == 0) {
        c.kv_heads = 2;
        c.ffn_hidden = 64;
        c.norm = BN_GPT_RMSNORM;
        c.ffn = BN_GPT_FFN_SWIGLU;
        c.pos = BN_GPT_POS_ROPE;
        c.no_bias = true;
        c.untied = true;
    } else if (strcmp(tag, "alibi") == 0) {
        c.kv_heads = 1;
        c.ffn_hidden = 48;
        c.ffn = BN_GPT_FFN_GEGLU;
        c.pos = BN_GPT_POS_ALIBI;
        c.no_bias = true;
    } else {
        c.ffn_hidden = 40;
        c.ffn = BN_GPT_FFN_REGLU;
        c.pos = BN_GPT_POS_SINUSOIDAL;
    }
    return c;
}

/* The weight formula of gen_gpt.py, in named_parameters order (f32 parameters). */
static void formula_weights(bn_module *m)
{
    bn_tensor_list p = bn_module_named_parameters(m);
    cr_assert_geq(p.count, 1, "%s", bn_error_message());
    for (int k = 0; k < p.count; k++) {
        float *d = bn_tensor_data_f32(p.tensors[k]);
        cr_assert_not_null(d, "%s", bn_error_message());
        int64_t n = bn_numel(p.tensors[k]), d0 = bn_dim(p.tensors[k], 0);
        int64_t per = n / d0 > 1 ? n / d0 : 1;
        double bound = 1.0 / sqrt((double)per);
        for (int64_t i = 0; i < n; i++)
            d[i] = (float)((double)((i * 7919 + 13 * k) % 2001 - 1000) / 1000.0 * bound);
    }
    bn_tensor_list_free(&p);
}

static bn_module *make_model(const char *tag, bn_dtype dt)
{
    bn_gpt_config c = variant(tag);
    bn_module *m = bn_gpt_new(&c);
    cr_assert_not_null(m, "%s: %s", tag, bn_error_message());
    formula_weights(m);
    if (dt != BN_F32) cr_assert_eq(bn_module_to_dtype(m, dt), BN_OK, "%s", bn_error_message());
    return m;
}

/* ---- configs --------------------------------------------------------------------------------- */

Test(gpt, presets_resolve_and_round_trip_through_json)
{
    bn_gpt_config c, r;
    cr_assert_eq(bn_gpt_preset("gpt2", &c), BN_OK);
    cr_assert_eq(bn_gpt_config_resolve(&c, &r), BN_OK);
    cr_assert(r.vocab_size == 50257 && r.context == 1024 && r.layers == 12 && r.heads == 12 &&
              r.kv_heads == 12 && r.dim == 768 && r.ffn_hidden == 3072);
    cr_assert(r.norm == BN_GPT_LAYERNORM && r.pos == BN_GPT_POS_LEARNED && !r.no_bias &&
              !r.untied && r.norm_eps == 1e-5);
    /* LLaMA's FFN rule: int(2 * 4 * 4096 / 3) = 10922, up to a multiple of 256 = 11008 */
    cr_assert_eq(bn_gpt_preset("llama", &c), BN_OK);
    c.ffn_hidden = 0;
    cr_assert_eq(bn_gpt_config_resolve(&c, &r), BN_OK);
    cr_assert_eq(r.ffn_hidden, 11008);
    cr_assert(r.norm == BN_GPT_RMSNORM && r.ffn == BN_GPT_FFN_SWIGLU && r.pos == BN_GPT_POS_ROPE &&
              r.rope.base == 10000 && r.rope.rotary_dim == 128 && r.no_bias && r.untied);
    cr_assert_eq(bn_gpt_preset("baby", &c), BN_OK);
    cr_assert(c.layers == 6 && c.heads == 6 && c.dim == 384 && c.context == 256 &&
              c.dropout == 0.2);
    cr_assert_neq(bn_gpt_preset("gpt5", &c), BN_OK);
    bnt_assert_error(BN_ERR_ARG, "bn_gpt_preset", "gpt5", "gpt2", NULL);

    for (int v = 0; v < NVARIANTS; v++) {
        bn_gpt_config in = variant(variants[v]), want, got;
        in.dropout = 0.125;
        in.rope.interleaved = v == 1;
        cr_assert_eq(bn_gpt_config_resolve(&in, &want), BN_OK);
        char *json = bn_gpt_config_to_json(&in);
        cr_assert_not_null(json, "%s", bn_error_message());
        cr_assert_eq(bn_gpt_config_from_json(json, &got), BN_OK, "%s: %s", json,
                     bn_error_message());
        cr_assert(got.vocab_size == want.vocab_size && got.context == want.context &&
                  got.layers == want.layers && got.heads == want.heads &&
                  got.kv_heads == want.kv_heads && got.dim == want.dim &&
                  got.ffn_hidden == want.ffn_hidden && got.norm == want.norm &&
                  got.ffn == want.ffn && got.pos == want.pos && got.no_bias == want.no_bias &&
                  got.untied == want.untied && got.dropout == want.dropout &&
                  got.norm_eps == want.norm_eps && got.rope.base == want.rope.base &&
                  got.rope.rotary_dim == want.rope.rotary_dim &&
                  got.rope.interleaved == want.rope.interleaved,
                  "%s did not round-trip", json);
        free(json);
    }
}

Test(gpt, bad_configs_name_the_field)
{
    bn_gpt_config r, c = variant("learned");
    c.dim = 30;
    cr_assert_neq(bn_gpt_config_resolve(&c, &r), BN_OK);
    bnt_assert_error(BN_ERR_ARG, "bn_gpt_config_resolve", "dim 30", "heads 4", NULL);
    c = variant("learned"); /* the fuzzer's dim: 4 * dim would overflow */
    c.heads = 3;
    c.dim = 3842000000000000001LL;
    cr_assert_neq(bn_gpt_config_resolve(&c, &r), BN_OK);
    bnt_assert_error(BN_ERR_ARG, "bn_gpt_config_resolve", "dim 3842000000000000001",
                     "2147483647", NULL);
    c = variant("learned");
    c.kv_heads = 3;
    cr_assert_null(bn_gpt_new(&c));
    bnt_assert_error(BN_ERR_ARG, "bn_gpt_new", "kv_heads 3", "heads 4", NULL);
    c = variant("learned");
    c.vocab_size = 0;
    cr_assert_neq(bn_gpt_config_resolve(&c, &r), BN_OK);
    bnt_assert_error(BN_ERR_ARG, "vocab_size 0", NULL);
    c = variant("learned");
    c.dropout = 1;
    cr_assert_neq(bn_gpt_config_resolve(&c, &r), BN_OK);
    bnt_assert_error(BN_ERR_ARG, "dropout 1", NULL);
    c = variant("rope");
    c.rope.rotary_dim = 7;
    cr_assert_neq(bn_gpt_config_resolve(&c, &r), BN_OK);
    bnt_assert_error(BN_ERR_ARG, "rotary_dim 7", NULL);
    c = variant("learned");
    c.ffn = (bn_gpt_ffn)42;
    cr_assert_neq(bn_gpt_config_resolve(&c, &r), BN_OK);
    bnt_assert_error(BN_ERR_ARG, "ffn 42", NULL);
    cr_assert_null(bn_gpt_new(NULL));
    bnt_assert_error(BN_ERR_ARG, "bn_gpt_new", "cfg", NULL);

    cr_assert_neq(bn_gpt_config_from_json("[1]", &r), BN_OK);
    bnt_assert_error(BN_ERR_FORMAT, "bn_gpt_config_from_json", "not a JSON object", NULL);
    cr_assert_neq(bn_gpt_config_from_json("{\"vocab_size\":5}", &r), BN_OK);
    bnt_assert_error(BN_ERR_FORMAT, "\"context\" is missing", NULL);
    cr_assert_neq(bn_gpt_config_from_json("{\"vocab_size\":5,\"context\":4,\"layers\":1,"
                                          "\"heads\":1,\"dim\":4,\"norm\":\"batchnorm\"}", &r),
                  BN_OK);
    bnt_assert_error(BN_ERR_FORMAT, "\"norm\" is \"batchnorm\"", "rmsnorm", NULL);
    cr_assert_neq(bn_gpt_config_from_json("{\"vocab_size\":5,\"context\":4,\"layers\":1,"
                                          "\"heads\":3,\"dim\":4}", &r),
                  BN_OK);
    bnt_assert_error(BN_ERR_FORMAT, "dim 4 must be a multiple of heads 3", NULL);
}

/* ---- structure -------------------------------------------------------------------------------- */

Test(gpt, state_dict_names_and_shapes_match_torch)
{
    fx_file *f = fx_open("gpt.txt");
    for (int v = 0; v < NVARIANTS; v++) {
        bn_module *m = make_model(variants[v], BN_F32);
        bn_tensor_list sd = bn_module_state_dict(m);
        char prefix[64];
        snprintf(prefix, sizeof prefix, "sd:%s:", variants[v]);
        int seen = 0;
        for (int c = 0; fx_case_name(f, c); c++) {
            const char *cn = fx_case_name(f, c);
            if (strncmp(cn, prefix, strlen(prefix))) continue;
            const char *name = strchr(cn + strlen(prefix), ':') + 1;
            cr_assert_lt(seen, sd.count, "%s: born lacks %s", variants[v], name);
            cr_assert_str_eq(sd.names[seen], name, "%s entry %d", variants[v], seen);
            bn_tensor *shape = fx_tensor(f, cn, "shape");
            bn_shape s = bn_shape_of(sd.tensors[seen]);
            cr_assert_eq(s.ndim, bn_numel(shape), "%s %s", variants[v], name);
            for (int d = 0; d < s.ndim; d++)
                cr_assert_eq(s.dims[d], (int64_t)bn_get(shape, (int64_t[]){d}), "%s %s dim %d",
                             variants[v], name, d);
            bn_release(shape);
            seen++;
        }
        cr_assert_eq(seen, sd.count, "%s: born has %d entries, torch %d", variants[v], sd.count,
                     seen);
        bn_tensor_list_free(&sd);
        bn_module_free(m);
    }
    /* whole presets: the parameter count of nanoGPT's baby model and a small LLaMA */
    bn_gpt_config c;
    bn_gpt_preset("baby", &c);
    bn_module *m = bn_gpt_new(&c);
    cr_assert_not_null(m, "%s", bn_error_message());
    cr_assert_eq(bn_module_num_parameters(m), (int64_t)fx_scalar(f, "count:baby", "n"));
    bn_module_free(m);
    c = (bn_gpt_config){.vocab_size = 100, .context = 64, .layers = 3, .heads = 8, .kv_heads = 2,
                        .dim = 128, .ffn_hidden = 256, .norm = BN_GPT_RMSNORM,
                        .ffn = BN_GPT_FFN_SWIGLU, .pos = BN_GPT_POS_ROPE, .no_bias = true,
                        .untied = true};
    m = bn_gpt_new(&c);
    cr_assert_not_null(m, "%s", bn_error_message());
    cr_assert_eq(bn_module_num_parameters(m), (int64_t)fx_scalar(f, "count:tiny_llama", "n"));
    cr_assert(bn_is_gpt(m));
    cr_assert_str_eq(bn_module_type_name(bn_module_child(m, "transformer.h.2")), "Block");
    cr_assert_str_eq(bn_module_type_name(bn_module_child(m, "transformer.ln_f")), "RMSNorm");
    bn_module_free(m);
    fx_close(f);
}

Test(gpt, initialisation_follows_gpt2)
{
    bn_manual_seed(3);
    bn_gpt_config c = {.vocab_size = 500, .context = 64, .layers = 4, .heads = 4, .dim = 64};
    bn_module *m = bn_gpt_new(&c);
    cr_assert_not_null(m);
    struct {
        const char *name;
        double std;
    } want[] = {{"transformer.wte.weight", 0.02},
                {"transformer.wpe.weight", 0.02},
                {"transformer.h.1.attn.c_attn.weight", 0.02},
                {"transformer.h.1.mlp.c_fc.weight", 0.02},
                {"transformer.h.1.attn.c_proj.weight", 0.02 / sqrt(8.0)},
                {"transformer.h.3.mlp.c_proj.weight", 0.02 / sqrt(8.0)}};
    bn_scope_begin();
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        bn_tensor *w = bn_module_get(m, want[i].name);
        cr_assert_not_null(w, "%s", want[i].name);
        double sd = bn_item(bn_std(w, BN_ALL, 1, false)), mean = bn_item(bn_mean(w, BN_ALL, false));
        cr_assert(fabs(sd - want[i].std) < 0.06 * want[i].std, "%s: std %g, want %g",
                  want[i].name, sd, want[i].std);
        cr_assert(fabs(mean) < 0.1 * want[i].std, "%s: mean %g", want[i].name, mean);
    }
    cr_assert_eq(bn_item(bn_sum(bn_abs(bn_module_get(m, "transformer.h.0.attn.c_attn.bias")),
                                BN_ALL, false)), 0.0);
    cr_assert_eq(bn_item(bn_mean(bn_module_get(m, "transformer.h.0.ln_1.weight"), BN_ALL, false)),
                 1.0);
    bn_scope_end();
    bn_module_free(m);
}

/* ---- against PyTorch --------------------------------------------------------------------------- */

static void check_against_torch(const char *tag, bn_dtype dt)
{
    fx_file *f = fx_open("gpt.txt");
    bn_module *m = make_model(tag, dt);
    bn_tensor *tokens = fx_tensor(f, tag, "tokens"), *targets = fx_tensor(f, tag, "targets");
    bool f64 = dt == BN_F64;
    bn_scope_begin();
    bn_tensor *logits = bn_gpt_forward(m, tokens);
    cr_assert_not_null(logits, "%s: %s", tag, bn_error_message());
    bn_tensor *want = bnt_keep(fx_tensor(f, tag, "logits"));
    bnt_assert_close(bn_to_dtype(logits, BN_F64), want, f64 ? 1e-10 : 1e-4, f64 ? 1e-10 : 2e-5,
                     tag);
    bn_tensor *loss = bn_gpt_loss(m, tokens, targets);
    cr_assert_not_null(loss, "%s: %s", tag, bn_error_message());
    double want_loss = bn_item(bnt_keep(fx_tensor(f, tag, "loss")));
    cr_assert(fabs(bn_item(loss) - want_loss) <= (f64 ? 1e-11 : 2e-5) * (1 + fabs(want_loss)),
              "%s loss: born %.12g, torch %.12g", tag, bn_item(loss), want_loss);
    cr_assert_eq(bn_backward(loss), BN_OK, "%s", bn_error_message());
    bn_tensor_list p = bn_module_named_parameters(m);
    int checked = 0;
    for (int k = 0; k < p.count; k++) {
        char key[160];
        snprintf(key, sizeof key, "grad.%s", p.names[k]);
        /* the variants beyond the first two keep only some gradients */
        bool full = !strcmp(tag, "learned") || !strcmp(tag, "rope");
        if (!full && strcmp(p.names[k], "transformer.wte.weight") &&
            strcmp(p.names[k], "transformer.h.0.attn.c_attn.weight"))
            continue;
        bn_tensor *g = bn_grad(p.tensors[k]);
        cr_assert_not_null(g, "%s: %s has no gradient", tag, p.names[k]);
        char what[200];
        snprintf(what, sizeof what, "%s d loss / d %s", tag, p.names[k]);
        bnt_assert_close(bn_to_dtype(g, BN_F32), bnt_keep(fx_tensor(f, tag, key)),
                         f64 ? 2e-6 : 2e-3, f64 ? 1e-9 : 2e-6, what);
        checked++;
    }
    cr_assert_geq(checked, 2);
    bn_tensor_list_free(&p);
    bn_scope_end();
    bn_release(tokens);
    bn_release(targets);
    bn_module_free(m);
    fx_close(f);
}

Test(gpt, learned_layernorm_gelu_matches_torch_f64) { check_against_torch("learned", BN_F64); }
Test(gpt, learned_layernorm_gelu_matches_torch_f32) { check_against_torch("learned", BN_F32); }
Test(gpt, rope_rmsnorm_swiglu_gqa_matches_torch_f64) { check_against_torch("rope", BN_F64); }
Test(gpt, rope_rmsnorm_swiglu_gqa_matches_torch_f32) { check_against_torch("rope", BN_F32); }
Test(gpt, alibi_mqa_geglu_matches_torch_f64) { check_against_torch("alibi", BN_F64); }
Test(gpt, sinusoidal_reglu_matches_torch_f64) { check_against_torch("sinusoidal", BN_F64); }
Test(gpt, sinusoidal_reglu_matches_torch_f32) { check_against_torch("sinusoidal", BN_F32); }

/* ---- float64 finite differences of whole tiny models ------------------------------------------ */

typedef struct fd_ctx {
    bn_module *m;
    bn_tensor *tokens, *targets;
    bool loss;
} fd_ctx;

static bn_tensor *fd_fn(void *ctx, bn_tensor *const *in, int n)
{
    (void)in;
    (void)n;
    fd_ctx *c = ctx; /* the inputs are the model's own parameters, perturbed in place */
    return c->loss ? bn_gpt_loss(c->m, c->tokens, c->targets) : bn_gpt_forward(c->m, c->tokens);
}

static void gradcheck_model(const char *what, bn_gpt_config c)
{
    bn_manual_seed(11);
    bn_module *m = bn_gpt_new(&c);
    cr_assert_not_null(m, "%s: %s", what, bn_error_message());
    cr_assert_eq(bn_module_to_dtype(m, BN_F64), BN_OK);
    bn_tensor_list p = bn_module_named_parameters(m);
    /* larger weights than GPT-2's 0.02 so every path carries signal */
    for (int k = 0; k < p.count; k++) {
        if (bn_ndim(p.tensors[k]) == 2) bn_init_normal(p.tensors[k], 0.0, 0.4);
        else bn_init_uniform(p.tensors[k], 0.5, 1.5);
    }
    int64_t tok[2][5] = {{1, 4, 0, 6, 2}, {3, 3, 5, 1, 0}}, tgt[2][5] = {{4, 0, 6, 2, 5},
                                                                         {3, 5, -1, 0, 2}};
    fd_ctx ctx = {m, bn_from_data(tok, BN_SHAPE(2, 5), BN_I64),
                  bn_from_data(tgt, BN_SHAPE(2, 5), BN_I64), false};
    for (int k = 0; k < p.count; k += 16) {
        int n = p.count - k < 16 ? p.count - k : 16;
        ctx.loss = false;
        bnt_gradcheck_ex(what, fd_fn, &ctx, p.tensors + k, n, 1e-6, 1e-5);
        ctx.loss = true;
        bnt_gradcheck_ex(what, fd_fn, &ctx, p.tensors + k, n, 1e-6, 1e-5);
    }
    bn_release(ctx.tokens);
    bn_release(ctx.targets);
    bn_tensor_list_free(&p);
    bn_module_free(m);
}

static bn_gpt_config tiny(bn_gpt_pos pos, bn_gpt_norm norm, bn_gpt_ffn ffn, int64_t kv)
{
    return (bn_gpt_config){.vocab_size = 7, .context = 6, .layers = 2, .heads = 2, .kv_heads = kv,
                           .dim = 8, .ffn_hidden = 12, .norm = norm, .ffn = ffn, .pos = pos};
}

Test(gpt, gradcheck_learned_layernorm_gelu)
{
    gradcheck_model("learned", tiny(BN_GPT_POS_LEARNED, BN_GPT_LAYERNORM, BN_GPT_FFN_GELU, 0));
}

Test(gpt, gradcheck_rope_rmsnorm_swiglu_gqa_untied)
{
    bn_gpt_config c = tiny(BN_GPT_POS_ROPE, BN_GPT_RMSNORM, BN_GPT_FFN_SWIGLU, 1);
    c.heads = 2;
    c.kv_heads = 1;
    c.untied = true;
    c.no_bias = true;
    gradcheck_model("rope", c);
}

Test(gpt, gradcheck_alibi_geglu_and_sinusoidal_reglu)
{
    gradcheck_model("alibi", tiny(BN_GPT_POS_ALIBI, BN_GPT_LAYERNORM, BN_GPT_FFN_GEGLU, 1));
    gradcheck_model("sinusoidal",
                    tiny(BN_GPT_POS_SINUSOIDAL, BN_GPT_LAYERNORM, BN_GPT_FFN_REGLU, 0));
}

Test(gpt, gradcheck_with_activation_checkpointing)
{
    bn_gpt_config c = tiny(BN_GPT_POS_ROPE, BN_GPT_LAYERNORM, BN_GPT_FFN_GELU_TANH, 0);
    c.checkpoint = true;
    gradcheck_model("checkpointed", c);
}

/* ---- activation checkpointing --------------------------------------------------------------------- */

Test(gpt, checkpointing_gives_the_same_gradients_with_dropout_and_keeps_less)
{
    bn_gpt_config c = variant("rope");
    c.dropout = 0.1;
    c.layers = 3;
    bn_module *m = bn_gpt_new(&c);
    cr_assert_not_null(m);
    formula_weights(m);
    fx_file *f = fx_open("gpt.txt");
    bn_tensor *tokens = fx_tensor(f, "rope", "tokens"), *targets = fx_tensor(f, "rope", "targets");
    bn_tensor_list p = bn_module_named_parameters(m);
    bn_tensor *plain[64] = {0};
    long long held[2];
    double loss_val[2];
    for (int run = 0; run < 2; run++) {
        bn_gpt_set_checkpointing(m, run == 1);
        bn_module_zero_grad(m);
        bn_manual_seed(99); /* the same dropout masks in both runs */
        bn_scope_begin();
        long long before = bnt_live_tensors();
        bn_tensor *loss = bn_gpt_loss(m, tokens, targets);
        cr_assert_not_null(loss, "%s", bn_error_message());
        held[run] = bnt_live_tensors() - before;
        loss_val[run] = bn_item(loss);
        cr_assert_eq(bn_backward(loss), BN_OK, "%s", bn_error_message());
        bn_scope_end();
        for (int k = 0; k < p.count; k++) {
            bn_tensor *g = bn_grad(p.tensors[k]);
            cr_assert_not_null(g, "run %d: %s has no gradient", run, p.names[k]);
            if (run == 0) {
                plain[k] = g;
            } else {
                char what[160];
                snprintf(what, sizeof what, "checkpointed d/d %s", p.names[k]);
                bnt_assert_close(g, plain[k], 1e-5, 1e-7, what);
                bn_release(plain[k]);
                bn_release(g);
            }
        }
    }
    cr_assert_eq(loss_val[0], loss_val[1]);
    cr_assert_lt(held[1], held[0] / 2, "checkpointed forward holds %lld tensors, plain %lld",
                 held[1], held[0]);
    bn_tensor_list_free(&p);
    bn_release(tokens);
    bn_release(targets);
    bn_module_free(m);
    fx_close(f);
}

/* ---- KV cache ----------------------------------------------------------------------------------- */

static void check_cache(const char *tag, bn_dtype dt, double tol)
{
    fx_file *f = fx_open("gpt.txt");
    bn_module *m = make_model(tag, dt);
    bn_module_eval(m);
    bn_tensor *tokens = fx_tensor(f, tag, "tokens"); /* (2, 16): the whole context */
    bn_kv_cache *cache = bn_kv_cache_new(m, 2);
    cr_assert_not_null(cache);
    bn_scope_begin();
    bn_tensor *full = bn_gpt_forward(m, tokens);
    int64_t chunks[] = {5, 1, 3, 1, 6};
    int64_t at = 0;
    for (size_t i = 0; i < sizeof chunks / sizeof chunks[0]; i++) {
        bn_tensor *part = bn_narrow(tokens, 1, at, chunks[i]);
        bn_tensor *got = bn_gpt_forward_cached(m, cache, part);
        cr_assert_not_null(got, "%s: %s", tag, bn_error_message());
        cr_assert(!bn_requires_grad(got), "cached forwards record no graph");
        char what[96];
        snprintf(what, sizeof what, "%s cached positions %lld..%lld", tag, (long long)at,
                 (long long)(at + chunks[i] - 1));
        bnt_assert_close(got, bn_narrow(full, 1, at, chunks[i]), tol, tol, what);
        at += chunks[i];
        cr_assert_eq(bn_kv_cache_len(cache), at);
    }
    /* full: one more position is an error; after a reset it starts again */
    cr_assert_null(bn_gpt_forward_cached(m, cache, bn_narrow(tokens, 1, 0, 1)));
    bnt_assert_error(BN_ERR_ARG, "bn_gpt_forward_cached", "the cache is full", NULL);
    bn_kv_cache_reset(cache);
    bnt_assert_close(bn_gpt_forward_cached(m, cache, bn_narrow(tokens, 1, 0, 4)),
                     bn_narrow(full, 1, 0, 4), tol, tol, "after reset");
    bn_scope_end();
    bn_kv_cache_free(cache);
    bn_release(tokens);
    bn_module_free(m);
    fx_close(f);
}

Test(gpt, kv_cache_gives_the_full_forward_logits)
{
    for (int v = 0; v < NVARIANTS; v++) {
        check_cache(variants[v], BN_F64, 1e-12);
        check_cache(variants[v], BN_F32, 2e-5);
    }
}

Test(gpt, kv_cache_bad_use)
{
    bn_module *m = make_model("learned", BN_F32), *other = make_model("rope", BN_F32);
    bn_kv_cache *c = bn_kv_cache_new(m, 1);
    BNT_ASSERT_NO_LEAK({
        bn_tensor *t = bn_zeros(BN_SHAPE(2, 3), BN_I64);
        cr_assert_null(bn_gpt_forward_cached(m, c, t));
        bnt_assert_error(BN_ERR_SHAPE, "bn_gpt_forward_cached", "batch 1", NULL);
        cr_assert_null(bn_gpt_forward_cached(other, c, t));
        bnt_assert_error(BN_ERR_ARG, "another model", NULL);
        cr_assert_null(bn_gpt_forward_cached(m, NULL, t));
        bnt_assert_error(BN_ERR_ARG, "bn_gpt_forward_cached", "c", NULL);
        bn_tensor *long_t = bn_zeros(BN_SHAPE(1, 17), BN_I64);
        cr_assert_null(bn_gpt_forward_cached(m, c, long_t));
        bnt_assert_error(BN_ERR_SHAPE, "1 <= T <= 16", NULL);
        bn_release(long_t);
        bn_release(t);
    });
    cr_assert_eq(bn_kv_cache_len(c), 0);
    cr_assert_null(bn_kv_cache_new(m, 0));
    bnt_assert_error(BN_ERR_ARG, "bn_kv_cache_new", "batch is 0", NULL);
    bn_module *lin = bn_nn_linear(2, 2, true);
    cr_assert_null(bn_kv_cache_new(lin, 1));
    bnt_assert_error(BN_ERR_ARG, "bn_kv_cache_new", "Linear", "bn_gpt_new", NULL);
    bn_module_free(lin);
    bn_kv_cache_free(c);
    bn_module_free(m);
    bn_module_free(other);
}

/* ---- generation ---------------------------------------------------------------------------------- */

static int64_t argmax_last(bn_module *m, const int64_t *ids, int64_t n)
{
    bn_scope_begin();
    bn_tensor *t = bn_from_data(ids, BN_SHAPE(1, n), BN_I64);
    bn_tensor *logits = bn_gpt_forward(m, t);
    cr_assert_not_null(logits, "%s", bn_error_message());
    int64_t best = (int64_t)bn_item(bn_argmax(bn_select(bn_select(logits, 0, 0), 0, n - 1), 0,
                                              false));
    bn_scope_end();
    return best;
}

/* Greedy generation against a full forward over the window the generator documents. */
static void check_greedy(const char *tag, int64_t shift, int64_t nprompt, int64_t nnew)
{
    bn_module *m = make_model(tag, BN_F64);
    bn_module_eval(m);
    int64_t ctx = 16, seq[128], got[128];
    for (int64_t i = 0; i < nprompt; i++) seq[i] = (i * 5 + 3) % 13;
    int64_t made = bn_gpt_generate(m, seq, nprompt, got,
                                   (bn_generate_opts){.max_new_tokens = nnew,
                                                      .window_shift = shift});
    cr_assert_eq(made, nnew, "%s: %s", tag, bn_error_message());
    int64_t eff = shift ? shift : ctx / 4, keep = ctx - eff + 1;
    int64_t n = nprompt, wstart = n > ctx ? n - ctx : 0;
    for (int64_t i = 0; i < nnew; i++) {
        int64_t want = argmax_last(m, seq + wstart, n - wstart);
        cr_assert_eq(got[i], want, "%s shift %lld: token %lld is %lld, the full forward says "
                     "%lld", tag, (long long)shift, (long long)i, (long long)got[i],
                     (long long)want);
        /* the window the next step sees: grown by one, or rebuilt from the last keep tokens */
        if (n - wstart >= ctx) wstart = n + 1 - keep;
        seq[n++] = want;
    }
    bn_module_free(m);
}

Test(gpt, greedy_generation_matches_full_forwards_past_the_context)
{
    for (int v = 0; v < NVARIANTS; v++) {
        check_greedy(variants[v], 1, 5, 30);  /* nanoGPT: the last 16 tokens at every step */
        check_greedy(variants[v], 0, 20, 30); /* a prompt longer than the context, shift 4 */
    }
    check_greedy("rope", 16, 3, 40);
}

typedef struct stop_ctx {
    int calls, stop_at;
    int64_t seen[64];
} stop_ctx;

static bool on_token(void *ctx, int64_t token)
{
    stop_ctx *s = ctx;
    s->seen[s->calls++] = token;
    return s->calls < s->stop_at;
}

Test(gpt, sampling_is_seeded_and_top_k_1_is_greedy)
{
    bn_module *m = make_model("rope", BN_F32);
    int64_t prompt[3] = {1, 2, 3}, a[40], b[40], c[40], g[40];
    bn_generate_opts o = {.max_new_tokens = 40, .temperature = 1.5, .top_p = 0.95, .seed = 5};
    bn_manual_seed(1234);
    bn_rng_state before = bn_rng_get_state();
    cr_assert_eq(bn_gpt_generate(m, prompt, 3, a, o), 40, "%s", bn_error_message());
    bn_rng_state after = bn_rng_get_state();
    cr_assert(before.seed == after.seed && before.offset == after.offset,
              "generation leaves the thread's generator alone");
    cr_assert(bn_module_is_training(m), "the model's mode is restored");
    cr_assert_eq(bn_gpt_generate(m, prompt, 3, b, o), 40);
    cr_assert_arr_eq(a, b, sizeof a, "the same seed gives the same tokens");
    o.seed = 6;
    cr_assert_eq(bn_gpt_generate(m, prompt, 3, c, o), 40);
    cr_assert(memcmp(a, c, sizeof a) != 0, "another seed gives other tokens");
    int distinct = 0;
    for (int i = 0; i < 13; i++)
        for (int k = 0; k < 40; k++)
            if (a[k] == i) {
                distinct++;
                break;
            }
    cr_assert_geq(distinct, 4, "temperature 1.5 samples several tokens (%d)", distinct);
    cr_assert_eq(bn_gpt_generate(m, prompt, 3, g, (bn_generate_opts){.max_new_tokens = 40}), 40);
    o = (bn_generate_opts){.max_new_tokens = 40, .temperature = 0.8, .top_k = 1, .seed = 9};
    cr_assert_eq(bn_gpt_generate(m, prompt, 3, c, o), 40);
    cr_assert_arr_eq(c, g, sizeof c, "top-k 1 is greedy");
    stop_ctx s = {.stop_at = 7};
    o.on_token = on_token;
    o.ctx = &s;
    cr_assert_eq(bn_gpt_generate(m, prompt, 3, c, o), 7);
    cr_assert_eq(s.calls, 7);
    cr_assert_arr_eq(s.seen, g, 7 * sizeof(int64_t));
    bn_module_free(m);
}

Test(gpt, generate_rejects_bad_arguments)
{
    bn_module *m = make_model("learned", BN_F32);
    int64_t p[2] = {1, 2}, out[4], bad[2] = {1, 13};
    bn_generate_opts o = {.max_new_tokens = 4};
    BNT_ASSERT_NO_LEAK({
        cr_assert_eq(bn_gpt_generate(m, NULL, 2, out, o), -1);
        bnt_assert_error(BN_ERR_ARG, "bn_gpt_generate", "prompt", NULL);
        cr_assert_eq(bn_gpt_generate(m, p, 0, out, o), -1);
        bnt_assert_error(BN_ERR_ARG, "n_prompt 0", NULL);
        cr_assert_eq(bn_gpt_generate(m, p, 2, out, (bn_generate_opts){0}), -1);
        bnt_assert_error(BN_ERR_ARG, "max_new_tokens 0", NULL);
        cr_assert_eq(bn_gpt_generate(m, bad, 2, out, o), -1);
        bnt_assert_error(BN_ERR_ARG, "prompt id 13 at position 1", "vocab_size 13", NULL);
        o.temperature = -1;
        cr_assert_eq(bn_gpt_generate(m, p, 2, out, o), -1);
        bnt_assert_error(BN_ERR_ARG, "temperature -1", NULL);
        o.temperature = 1;
        o.top_p = 1.5;
        cr_assert_eq(bn_gpt_generate(m, p, 2, out, o), -1);
        bnt_assert_error(BN_ERR_ARG, "top_p 1.5", NULL);
        o.top_p = 0;
        o.window_shift = 17;
        cr_assert_eq(bn_gpt_generate(m, p, 2, out, o), -1);
        bnt_assert_error(BN_ERR_ARG, "window_shift 17", NULL);
    });
    bn_module_free(m);
}

Test(gpt, sampling_probabilities_match_torch)
{
    fx_file *f = fx_open("gpt.txt");
    char name[32];
    for (int i = 0; i < 6; i++) {
        snprintf(name, sizeof name, "sampling:%d", i);
        bn_tensor *logits = bnt_keep(fx_tensor(f, name, "logits"));
        bn_tensor *got = bn_sampling_probs(logits, fx_scalar(f, name, "temperature"),
                                           (int64_t)fx_scalar(f, name, "top_k"),
                                           fx_scalar(f, name, "top_p"));
        cr_assert_not_null(got, "%s", bn_error_message());
        bnt_assert_close(got, bnt_keep(fx_tensor(f, name, "probs")), 1e-12, 1e-15, name);
        bn_release(got);
        /* float32 logits give the same distribution to f32 precision */
        bn_scope_begin();
        bnt_assert_close(bn_sampling_probs(bn_to_dtype(logits, BN_F32),
                                           fx_scalar(f, name, "temperature"),
                                           (int64_t)fx_scalar(f, name, "top_k"),
                                           fx_scalar(f, name, "top_p")),
                         bnt_keep(fx_tensor(f, name, "probs")), 1e-5, 1e-7, name);
        bn_scope_end();
    }
    BNT_ASSERT_NO_LEAK({
        bn_tensor *l = bn_zeros(BN_SHAPE(4), BN_F32), *i = bn_zeros(BN_SHAPE(4), BN_I64);
        cr_assert_null(bn_sampling_probs(l, 0, 0, 0));
        bnt_assert_error(BN_ERR_ARG, "bn_sampling_probs", "temperature 0", NULL);
        cr_assert_null(bn_sampling_probs(l, 1, -2, 0));
        bnt_assert_error(BN_ERR_ARG, "top_k -2", NULL);
        cr_assert_null(bn_sampling_probs(i, 1, 0, 0));
        bnt_assert_error(BN_ERR_ARG, "bn_sampling_probs", "i64", NULL);
        cr_assert_null(bn_sampling_probs(NULL, 1, 0, 0));
        bnt_assert_error(BN_ERR_ARG, "logits", NULL);
        bn_release(l);
        bn_release(i);
    });
    fx_close(f);
}

/* ---- save and load -------------------------------------------------------------------------------- */

static void temp_path(char *buf, size_t n, const char *ext)
{
    snprintf(buf, n, "/tmp/born_test_gpt_%d%s", (int)getpid(), ext);
}

Test(gpt, save_load_gives_the_same_logits_config_and_tokenizer)
{
    const char *exts[] = {".born", ".safetensors"};
    const char *text = "hello world";
    bn_tokenizer *tok = bn_tokenizer_chars(text, strlen(text));
    fx_file *f = fx_open("gpt.txt");
    for (int v = 0; v < NVARIANTS; v++) {
        for (int e = 0; e < 2; e++) {
            char path[256];
            temp_path(path, sizeof path, exts[e]);
            bn_module *m = make_model(variants[v], BN_F32);
            bn_gpt_set_checkpointing(m, v == 1);
            bn_metadata extra = {0};
            bn_metadata_set(&extra, "born.note", "a test");
            cr_assert_eq(bn_gpt_save(m, path, tok, &extra), BN_OK, "%s", bn_error_message());
            bn_metadata_free(&extra);
            bn_tokenizer *back = NULL;
            bn_manual_seed(77);
            bn_rng_state before = bn_rng_get_state();
            bn_module *l = bn_gpt_load(path, &back);
            cr_assert_not_null(l, "%s: %s", path, bn_error_message());
            bn_rng_state after = bn_rng_get_state();
            cr_assert(before.offset == after.offset, "loading leaves the generator alone");
            cr_assert_not_null(back);
            cr_assert_eq(bn_tokenizer_vocab_size(back), bn_tokenizer_vocab_size(tok));
            const bn_gpt_config *a = bn_gpt_config_of(m), *b = bn_gpt_config_of(l);
            cr_assert(a->pos == b->pos && a->kv_heads == b->kv_heads && a->ffn == b->ffn &&
                      a->untied == b->untied && b->checkpoint == (v == 1));
            bn_tensor *tokens = bnt_keep(fx_tensor(f, variants[v], "tokens"));
            bn_scope_begin();
            bnt_assert_equal(bn_gpt_forward(l, tokens), bn_gpt_forward(m, tokens), path);
            bn_scope_end();
            bn_loaded raw = {0};
            cr_assert_eq(bn_load_tensors(path, (bn_load_opts){0}, &raw), BN_OK);
            cr_assert_str_eq(bn_metadata_get(&raw.metadata, "born.model"), "gpt");
            cr_assert_str_eq(bn_metadata_get(&raw.metadata, "born.note"), "a test");
            cr_assert_not_null(bn_metadata_get(&raw.metadata, "born.tokenizer"));
            cr_assert((e == 0) == (raw.config_json != NULL));
            bn_loaded_free(&raw);
            bn_tokenizer_free(back);
            bn_module_free(l);
            bn_module_free(m);
            unlink(path);
        }
    }
    bn_tokenizer_free(tok);
    fx_close(f);
}

Test(gpt, load_rejects_files_that_are_not_gpts)
{
    char path[256];
    temp_path(path, sizeof path, "_other.born");
    BNT_ASSERT_NO_LEAK({
        cr_assert_null(bn_gpt_load("/nonexistent/model.born", NULL));
        bnt_assert_error(BN_ERR_IO, "/nonexistent/model.born", NULL);
        bn_module *lin = bn_nn_linear(3, 2, true);
        cr_assert_eq(bn_module_save(lin, path), BN_OK);
        cr_assert_null(bn_gpt_load(path, NULL));
        bnt_assert_error(BN_ERR_FORMAT, "bn_gpt_load", "does not hold a GPT", NULL);
        /* a GPT config over weights of another shape */
        bn_module *m = make_model("learned", BN_F32);
        char *cfg = bn_gpt_config_to_json(bn_gpt_config_of(m));
        cr_assert_eq(bn_module_save_ex(lin, path, cfg, NULL), BN_OK);
        free(cfg);
        cr_assert_null(bn_gpt_load(path, NULL));
        bnt_assert_error(BN_ERR_ARG, "bn_gpt_load", "missing key", "transformer.wte.weight",
                         NULL);
        cr_assert_neq(bn_gpt_save(lin, path, NULL, NULL), BN_OK);
        bnt_assert_error(BN_ERR_ARG, "bn_gpt_save", "Linear", NULL);
        bn_module_free(m);
        bn_module_free(lin);
    });
    unlink(path);
}

/* ---- bad input -------------------------------------------------------------------------------------- */

Test(gpt, forward_and_loss_reject_bad_tokens)
{
    bn_module *m = make_model("learned", BN_F32);
    BNT_ASSERT_NO_LEAK({
        bn_tensor *f = bn_zeros(BN_SHAPE(2, 4), BN_F32);
        cr_assert_null(bn_gpt_forward(m, f));
        bnt_assert_error(BN_ERR_DTYPE, "bn_gpt_forward", "f32", "integer", NULL);
        bn_tensor *t3 = bn_zeros(BN_SHAPE(1, 2, 4), BN_I64);
        cr_assert_null(bn_gpt_forward(m, t3));
        bnt_assert_error(BN_ERR_SHAPE, "bn_gpt_forward", "[1, 2, 4]", "(B, T) or (T)", NULL);
        bn_tensor *longer = bn_zeros(BN_SHAPE(1, 17), BN_I64);
        cr_assert_null(bn_gpt_hidden(m, longer));
        bnt_assert_error(BN_ERR_SHAPE, "bn_gpt_hidden", "T <= 16", NULL);
        bn_tensor *big = bn_full(BN_SHAPE(2, 3), 13, BN_I64);
        cr_assert_null(bn_gpt_loss(m, big, big));
        bnt_assert_error(BN_ERR_ARG, "bn_gpt_loss", "[0, vocab_size 13)", "[13, 13]", NULL);
        bn_tensor *neg = bn_full(BN_SHAPE(3), -1, BN_I32);
        cr_assert_null(bn_gpt_forward(m, neg));
        bnt_assert_error(BN_ERR_ARG, "[-1, -1]", NULL);
        bn_tensor *ok = bn_zeros(BN_SHAPE(2, 3), BN_I64), *tshort = bn_zeros(BN_SHAPE(2, 2), BN_I64);
        cr_assert_null(bn_gpt_loss(m, ok, tshort));
        bnt_assert_error(BN_ERR_SHAPE, "bn_gpt_loss", "targets", "[2, 2]", "[2, 3]", NULL);
        cr_assert_null(bn_gpt_loss(m, ok, NULL));
        bnt_assert_error(BN_ERR_ARG, "bn_gpt_loss", "targets", NULL);
        cr_assert_null(bn_gpt_forward(m, NULL));
        bnt_assert_error(BN_ERR_ARG, "tokens", NULL);
        bn_module *lin = bn_nn_linear(2, 2, true);
        cr_assert_null(bn_gpt_forward(lin, ok));
        bnt_assert_error(BN_ERR_ARG, "bn_gpt_forward", "Linear", NULL);
        cr_assert_null(bn_gpt_config_of(lin));
        bnt_assert_error(BN_ERR_ARG, "bn_gpt_config_of", NULL);
        cr_assert(!bn_is_gpt(lin) && !bn_is_gpt(NULL));
        bn_module_free(lin);
        bn_release(ok);
        bn_release(tshort);
        bn_release(neg);
        bn_release(big);
        bn_release(longer);
        bn_release(t3);
        bn_release(f);
    });
    bn_module_free(m);
}

Test(gpt, a_forward_without_backward_frees_its_graph)
{
    /* a 1-D sequence gives (T, V); in grad mode, releasing the result frees the whole graph */
    bn_module *m = make_model("rope", BN_F32);
    BNT_ASSERT_NO_LEAK({
        bn_tensor *one = bn_zeros(BN_SHAPE(5), BN_I32);
        bn_tensor *y = bn_gpt_forward(m, one);
        cr_assert_not_null(y, "%s", bn_error_message());
        cr_assert(bn_ndim(y) == 2 && bn_dim(y, 0) == 5 && bn_dim(y, 1) == 13);
        cr_assert(bn_requires_grad(y));
        bn_release(y);
        bn_tensor *l = bn_gpt_loss(m, one, one);
        cr_assert_not_null(l, "%s", bn_error_message());
        bn_release(l);
        bn_release(one);
    });
    bn_module_free(m);
}

Test(gpt, blocks_run_on_their_own_and_the_repr_names_the_parts)
{
    bn_module *m = make_model("rope", BN_F32);
    bn_module *block = bn_module_child(m, "transformer.h.0");
    bn_scope_begin();
    bn_tensor *x = bn_randn(BN_SHAPE(2, 5, 32), BN_F32);
    bn_tensor *y = bn_module_forward(block, x);
    cr_assert_not_null(y, "%s", bn_error_message());
    cr_assert(bn_shape_equal(bn_shape_of(y), bn_shape_of(x)));
    /* the block's attention and MLP add up to the block */
    bn_module *attn = bn_module_child(block, "attn"), *mlp = bn_module_child(block, "mlp");
    bn_module *ln1 = bn_module_child(block, "ln_1"), *ln2 = bn_module_child(block, "ln_2");
    bn_tensor *h = bn_add(x, bn_module_forward(attn, bn_module_forward(ln1, x)));
    bn_tensor *want = bn_add(h, bn_module_forward(mlp, bn_module_forward(ln2, h)));
    bnt_assert_close(y, want, 1e-6, 1e-6, "block = its parts");
    cr_assert_null(bn_module_forward(block, bn_randn(BN_SHAPE(2, 5, 31), BN_F32)));
    bnt_assert_error(BN_ERR_SHAPE, "Block", "[2, 5, 31]", "(B, T, 32)", NULL);
    bn_scope_end();
    char *r = bn_module_repr(m);
    cr_assert(strstr(r, "GPT(") && strstr(r, "(c_attn): Linear(in_features=32, out_features=64") &&
                  strstr(r, "RMSNorm((32,), eps=1e-05") && strstr(r, "CausalSelfAttention") &&
                  strstr(r, "(lm_head): Linear"),
              "%s", r);
    free(r);
    bn_module_free(m);
}
