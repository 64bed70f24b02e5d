/* tests/unit/test_attention.c — bn_attention, fused and reference paths: outputs and gradients
 * against PyTorch (tests/data/attention.txt, made by scripts/gen_attention.py) for MHA, GQA, MQA,
 * causal with Tq < Tk and Tq > Tk, bool and float masks broadcast over batch and heads, fully
 * masked rows, no and two leading dims; the fused kernel against the reference on random shapes
 * (T not a multiple of the block, D in {16, 32, 64, 80, 128}); float64 finite-difference
 * gradients of both paths; dropout (the same weights drop on both paths, the backward replays
 * them); the packed-rows entry GPT blocks use (core/internal.h's bn__attention_packed) against
 * bn_attention of the parts; and every bad input. */
#include "bn_test.h"

#include "born/autograd.h"
#include "born/transformer.h"
#include "core/internal.h"

#include <math.h>
#include <string.h>

TestSuite(attention, .fini = bnt_release_kept);

static const int IMPLS[2] = {BN_ATTN_FUSED, BN_ATTN_REFERENCE};
static const char *const IMPL_NAMES[2] = {"fused", "reference"};

/* ---- PyTorch fixtures ------------------------------------------------------------------------- */
typedef struct attn_case {
    const char *name;
    bool causal, mask;
    double scale; /* 0: default */
} attn_case;

static const attn_case CASES[] = {
    {"attn_mha", false, false, 0},
    {"attn_mha_causal", true, false, 0},
    {"attn_gqa_causal", true, false, 0},
    {"attn_mqa_kv_cache", true, false, 0},
    {"attn_causal_tq_gt_tk", true, false, 0},
    {"attn_bool_mask", false, true, 0},
    {"attn_float_mask_scale", true, true, 0.3},
    {"attn_no_batch", false, false, 0},
    {"attn_two_lead_dims", false, true, 0},
};

/* One fixture case on one path in dtype dt: forward and the three gradients. */
static void check_attn_case(fx_file *f, const attn_case *c, int impl, bn_dtype dt, double rtol,
                            double atol)
{
    bn_scope_begin();
    bn_tensor *in[3];
    const char *names[3] = {"q", "k", "v"};
    for (int i = 0; i < 3; i++) {
        in[i] = bn_detach(bn_to_dtype(bnt_keep(fx_tensor(f, c->name, names[i])), dt));
        cr_assert_eq(bn_set_requires_grad(in[i], true), BN_OK);
    }
    bn_tensor *mask = NULL;
    if (c->mask) {
        mask = bnt_keep(fx_tensor(f, c->name, "mask"));
        if (bn_dtype_is_float(bn_dtype_of(mask))) mask = bn_to_dtype(mask, dt);
    }
    bn_attention_opts o = {.mask = mask, .causal = c->causal, .scale = c->scale, .impl = impl};
    bn_tensor *out = bn_attention(in[0], in[1], in[2], &o);
    cr_assert_not_null(out, "%s: %s", c->name, bn_error_message());
    char what[160];
    snprintf(what, sizeof what, "%s %s %s: forward", c->name, IMPL_NAMES[impl - 1],
             bn_dtype_name(dt));
    bn_tensor *want = bn_to_dtype(bnt_keep(fx_tensor(f, c->name, "out")), dt);
    bnt_assert_close(out, want, rtol, atol, what);
    bn_tensor *gout = bn_to_dtype(bnt_keep(fx_tensor(f, c->name, "gout")), dt);
    cr_assert_eq(bn_backward_ex(out, (bn_backward_opts){.grad = gout}), BN_OK, "%s: %s", c->name,
                 bn_error_message());
    for (int i = 0; i < 3; i++) {
        char gname[8];
        snprintf(gname, sizeof gname, "g%s", names[i]);
        snprintf(what, sizeof what, "%s %s %s: grad %s", c->name, IMPL_NAMES[impl - 1],
                 bn_dtype_name(dt), names[i]);
        bn_tensor *g = bn_grad(in[i]);
        bnt_assert_close(g, bn_to_dtype(bnt_keep(fx_tensor(f, c->name, gname)), dt), rtol, atol,
                         what);
    }
    bn_scope_end();
}

Test(attention, matches_torch_f64_both_paths)
{
    fx_file *f = fx_open("attention.txt");
    for (size_t c = 0; c < sizeof CASES / sizeof *CASES; c++)
        for (int p = 0; p < 2; p++) check_attn_case(f, &CASES[c], IMPLS[p], BN_F64, 1e-11, 1e-12);
    fx_close(f);
}

Test(attention, matches_torch_f32_both_paths)
{
    fx_file *f = fx_open("attention.txt");
    for (size_t c = 0; c < sizeof CASES / sizeof *CASES; c++)
        for (int p = 0; p < 2; p++) check_attn_case(f, &CASES[c], IMPLS[p], BN_F32, 1e-4, 1e-5);
    fx_close(f);
}

Test(attention, matches_torch_bf16_and_f16_in_f32)
{
    fx_file *f = fx_open("attention.txt");
    check_attn_case(f, &CASES[2], BN_ATTN_FUSED, BN_F16, 2e-2, 2e-2);
    check_attn_case(f, &CASES[2], BN_ATTN_REFERENCE, BN_BF16, 5e-2, 5e-2);
    check_attn_case(f, &CASES[5], BN_ATTN_FUSED, BN_BF16, 5e-2, 5e-2);
    fx_close(f);
}

/* ---- fused against reference on random shapes ------------------------------------------------ */
typedef struct rnd_case {
    int64_t B, Hq, Hkv, Tq, Tk, D, Dv;
    bool causal;
    int mask; /* 0 none, 1 bool (B, 1, Tq, Tk), 2 float (Tq, Tk), 3 bool (Hq, 1, Tk) */
    double p; /* dropout */
} rnd_case;

/* out and the grads of sum(out * gout) on one path (owned by the open scope) */
static void run_path(const rnd_case *c, bn_dtype dt, int impl, bn_tensor **res)
{
    bn_manual_seed(11);
    bn_tensor *q = bn_randn(BN_SHAPE(c->B, c->Hq, c->Tq, c->D), dt);
    bn_tensor *k = bn_randn(BN_SHAPE(c->B, c->Hkv, c->Tk, c->D), dt);
    bn_tensor *v = bn_randn(BN_SHAPE(c->B, c->Hkv, c->Tk, c->Dv), dt);
    bn_tensor *gout = bn_randn(BN_SHAPE(c->B, c->Hq, c->Tq, c->Dv), dt);
    bn_tensor *mask = NULL;
    if (c->mask == 1)
        mask = bn_gt_scalar(bn_rand(BN_SHAPE(c->B, 1, c->Tq, c->Tk), BN_F32), 0.2);
    if (c->mask == 2) mask = bn_mul_scalar(bn_rand(BN_SHAPE(c->Tq, c->Tk), dt), -4);
    if (c->mask == 3) mask = bn_gt_scalar(bn_rand(BN_SHAPE(c->Hq, 1, c->Tk), BN_F32), 0.5);
    bn_tensor *in[3] = {q, k, v};
    for (int i = 0; i < 3; i++) cr_assert_eq(bn_set_requires_grad(in[i], true), BN_OK);
    bn_manual_seed(99); /* the dropout draws */
    bn_attention_opts o = {.mask = mask,
                           .causal = c->causal,
                           .dropout_p = c->p,
                           .training = c->p > 0,
                           .impl = impl};
    bn_tensor *out = bn_attention(q, k, v, &o);
    cr_assert_not_null(out, "%s", bn_error_message());
    cr_assert_eq(bn_backward_ex(out, (bn_backward_opts){.grad = gout}), BN_OK, "%s",
                 bn_error_message());
    res[0] = out;
    for (int i = 0; i < 3; i++) res[i + 1] = bn_grad(in[i]);
}

static void compare_paths(const rnd_case *c, bn_dtype dt, double rtol, double atol)
{
    bn_tensor *a[4], *b[4];
    run_path(c, dt, BN_ATTN_FUSED, a);
    run_path(c, dt, BN_ATTN_REFERENCE, b);
    const char *what[4] = {"out", "dq", "dk", "dv"};
    for (int i = 0; i < 4; i++) {
        char msg[200];
        snprintf(msg, sizeof msg,
                 "%s fused vs reference: B %lld Hq %lld Hkv %lld Tq %lld Tk %lld D %lld Dv %lld "
                 "causal %d mask %d p %g",
                 what[i], (long long)c->B, (long long)c->Hq, (long long)c->Hkv, (long long)c->Tq,
                 (long long)c->Tk, (long long)c->D, (long long)c->Dv, c->causal, c->mask, c->p);
        bnt_assert_close(a[i], b[i], rtol, atol, msg);
    }
}

Test(attention, fused_equals_reference_f32_random_shapes)
{
    static const rnd_case cases[] = {
        {2, 4, 4, 70, 70, 16, 16, true, 0, 0},   {1, 6, 2, 129, 129, 32, 32, true, 1, 0},
        {2, 2, 1, 100, 65, 64, 64, false, 2, 0}, {1, 3, 3, 33, 150, 80, 80, true, 0, 0},
        {1, 2, 2, 65, 65, 128, 128, false, 3, 0}, {1, 4, 2, 1, 90, 64, 48, true, 0, 0},
        {2, 2, 2, 200, 17, 16, 24, true, 1, 0},
    };
    bn_scope_begin();
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        compare_paths(&cases[i], BN_F32, 1e-5, 2e-6);
    bn_scope_end();
}

Test(attention, fused_equals_reference_f64_with_dropout)
{
    /* identical outputs and gradients to 1e-12 mean the same weights dropped on both paths:
     * one different weight of 1/(1-p) would move the output by far more */
    static const rnd_case cases[] = {
        {2, 4, 2, 67, 70, 16, 16, true, 0, 0.3},
        {1, 2, 2, 130, 129, 32, 8, false, 1, 0.5},
        {1, 3, 1, 5, 9, 8, 8, true, 2, 0.1},
    };
    bn_scope_begin();
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        compare_paths(&cases[i], BN_F64, 1e-11, 1e-12);
    bn_scope_end();
}

Test(attention, dropout_drops_the_expected_fraction_and_only_when_training)
{
    bn_scope_begin();
    bn_manual_seed(5);
    /* v = ones: each output element is the sum of the kept weights times 1/(1-p); its mean over
     * many rows is 1 */
    bn_tensor *q = bn_randn(BN_SHAPE(2, 4, 64, 16), BN_F32);
    bn_tensor *k = bn_randn(BN_SHAPE(2, 4, 64, 16), BN_F32);
    bn_tensor *v = bn_ones(BN_SHAPE(2, 4, 64, 1), BN_F32);
    bn_attention_opts o = {.dropout_p = 0.4, .training = true};
    bn_tensor *out = bn_attention(q, k, v, &o);
    cr_assert_not_null(out, "%s", bn_error_message());
    double mean = bn_item(bn_mean(out, BN_ALL, false));
    cr_assert(fabs(mean - 1.0) < 0.03, "mean kept weight mass %g, expected about 1", mean);
    bn_tensor *out2 = bn_attention(q, k, v, &o); /* a new reservation: other draws */
    cr_assert_gt(bn_item(bn_max(bn_abs(bn_sub(out, out2)), BN_ALL, false)), 0.01);
    o.training = false;
    bn_tensor *ev = bn_attention(q, k, v, &o);
    bnt_assert_close(ev, bn_ones(BN_SHAPE(2, 4, 64, 1), BN_F32), 1e-6, 1e-6, "eval: no dropout");
    bn_scope_end();
}

Test(attention, auto_uses_the_fused_kernel_and_no_weights_are_saved)
{
    bn_scope_begin();
    bn_tensor *q = bn_randn(BN_SHAPE(1, 2, 8, 4), BN_F32);
    cr_assert_eq(bn_set_requires_grad(q, true), BN_OK);
    bn_tensor *out = bn_attention(q, q, q, NULL);
    cr_assert_str_eq(bn_grad_fn_name(out), "AttentionBackward");
    bn_tensor *ref = bn_attention(q, q, q, &(bn_attention_opts){.impl = BN_ATTN_REFERENCE});
    cr_assert_str_neq(bn_grad_fn_name(ref), "AttentionBackward");
    bnt_assert_close(out, ref, 1e-5, 1e-6, "auto vs reference");
    bn_scope_end();
}

Test(attention, fused_rule_refuses_create_graph)
{
    bn_scope_begin();
    bn_tensor *q = bn_randn(BN_SHAPE(1, 2, 3, 4), BN_F64);
    cr_assert_eq(bn_set_requires_grad(q, true), BN_OK);
    bn_tensor *out = bn_sum(bn_attention(q, q, q, NULL), BN_ALL, false);
    cr_assert_neq(bn_backward_ex(out, (bn_backward_opts){.create_graph = true}), BN_OK);
    bnt_assert_error(BN_ERR_UNSUPPORTED, "AttentionBackward", "create_graph", NULL);
    bn_scope_end();
}

Test(attention, empty_and_keyless_inputs)
{
    bn_scope_begin();
    for (int p = 0; p < 2; p++) {
        bn_attention_opts o = {.impl = IMPLS[p]};
        bn_tensor *q = bn_randn(BN_SHAPE(2, 2, 3, 4), BN_F32);
        bn_tensor *k = bn_randn(BN_SHAPE(2, 2, 0, 4), BN_F32);
        bn_tensor *out = bn_attention(q, k, k, &o);
        cr_assert_not_null(out, "%s: %s", IMPL_NAMES[p], bn_error_message());
        bnt_assert_close(out, bn_zeros(BN_SHAPE(2, 2, 3, 4), BN_F32), 0, 0, "no keys: zeros");
        bn_tensor *q0 = bn_randn(BN_SHAPE(2, 2, 0, 4), BN_F32);
        bn_tensor *out0 = bn_attention(q0, q, q, &o);
        cr_assert_not_null(out0, "%s: %s", IMPL_NAMES[p], bn_error_message());
        cr_assert_eq(bn_numel(out0), 0);
    }
    bn_scope_end();
}

/* ---- float64 finite differences --------------------------------------------------------------- */
typedef struct fd_ctx {
    bn_attention_opts o;
} fd_ctx;

static bn_tensor *fd_attention(void *ctx, bn_tensor *const *in, int n)
{
    (void)n;
    fd_ctx *c = ctx;
    bn_manual_seed(77); /* the same dropout draws on every evaluation */
    return bn_attention(in[0], in[1], in[2], &c->o);
}

static bn_tensor *fd_packed(void *ctx, bn_tensor *const *in, int n)
{
    (void)n;
    fd_ctx *c = ctx;
    return bn__attention_packed(in[0], 2, 1, &c->o);
}

static void gradcheck_attention(const char *what, bn_shape qs, bn_shape ks, bn_shape vs,
                                bn_attention_opts o)
{
    bn_manual_seed(21);
    bn_tensor *in[3] = {bnt_param(qs, -1, 1), bnt_param(ks, -1, 1), bnt_param(vs, -1, 1)};
    fd_ctx c = {o};
    bnt_gradcheck(what, fd_attention, &c, in, 3);
    for (int i = 0; i < 3; i++) bn_release(in[i]);
}

Test(attention, gradcheck_both_paths)
{
    bn_scope_begin();
    bn_tensor *bmask = bn_gt_scalar(bn_rand(BN_SHAPE(2, 1, 4, 6), BN_F32), 0.3);
    bn_tensor *fmask = bn_mul_scalar(bn_rand(BN_SHAPE(4, 6), BN_F64), -2);
    for (int p = 0; p < 2; p++) {
        bn_attention_opts plain = {.impl = IMPLS[p]};
        gradcheck_attention(IMPL_NAMES[p], BN_SHAPE(2, 2, 4, 3), BN_SHAPE(2, 2, 6, 3),
                            BN_SHAPE(2, 2, 6, 5), plain);
        bn_attention_opts gqa = {.impl = IMPLS[p], .causal = true, .mask = bmask, .scale = 0.7};
        gradcheck_attention(IMPL_NAMES[p], BN_SHAPE(2, 4, 4, 3), BN_SHAPE(2, 2, 6, 3),
                            BN_SHAPE(2, 2, 6, 2), gqa);
        bn_attention_opts mqa = {.impl = IMPLS[p], .causal = true, .mask = fmask,
                                 .dropout_p = 0.25, .training = true};
        gradcheck_attention(IMPL_NAMES[p], BN_SHAPE(3, 4, 3), BN_SHAPE(1, 6, 3),
                            BN_SHAPE(1, 6, 3), mqa);
    }
    bn_scope_end();
}

/* ---- packed q, k, v rows (bn__attention_packed) --------------------------------------------- */
/* attention of the parts of qkv (B, T, (hq + 2 hkv) hd) through bn_attention, heads merged */
static bn_tensor *parts_attention(const bn_tensor *qkv, int64_t hq, int64_t hkv,
                                  const bn_attention_opts *o)
{
    int64_t B = bn_dim(qkv, 0), T = bn_dim(qkv, 1), hd = bn_dim(qkv, 2) / (hq + 2 * hkv);
    int64_t first[3] = {0, hq, hq + hkv}, heads[3] = {hq, hkv, hkv};
    bn_tensor *p[3];
    for (int i = 0; i < 3; i++)
        p[i] = bn_transpose(bn_reshape(bn_narrow(qkv, 2, first[i] * hd, heads[i] * hd),
                                       BN_SHAPE(B, T, heads[i], hd)),
                            1, 2);
    bn_tensor *y = bn_attention(p[0], p[1], p[2], o);
    return bn_reshape(bn_transpose(y, 1, 2), BN_SHAPE(B, T, hq * hd));
}

/* out and d(sum(out * gout))/d(qkv) of the packed entry (packed) or of the parts; qkv is a
 * column range of a wider tensor, so its rows are strided */
static void run_packed(int64_t B, int64_t T, int64_t hq, int64_t hkv, int64_t hd, bn_dtype dt,
                       const bn_attention_opts *o, bool packed, bn_tensor **res)
{
    int64_t w = (hq + 2 * hkv) * hd;
    bn_manual_seed(5);
    bn_tensor *wide = bn_randn(BN_SHAPE(B, T, w + 3), dt);
    cr_assert_eq(bn_set_requires_grad(wide, true), BN_OK);
    bn_tensor *qkv = bn_narrow(wide, 2, 1, w);
    bn_tensor *gout = bn_randn(BN_SHAPE(B, T, hq * hd), dt);
    bn_manual_seed(99); /* the dropout draws */
    bn_tensor *out = packed ? bn__attention_packed(qkv, hq, hkv, o) : parts_attention(qkv, hq, hkv, o);
    cr_assert_not_null(out, "%s", bn_error_message());
    cr_assert_eq(bn_backward_ex(out, (bn_backward_opts){.grad = gout}), BN_OK, "%s",
                 bn_error_message());
    res[0] = out;
    res[1] = bn_grad(wide);
}

Test(attention, packed_rows_equal_the_parts)
{
    bn_scope_begin();
    bn_tensor *bmask = bn_gt_scalar(bn_rand(BN_SHAPE(2, 1, 37, 37), BN_F32), 0.3);
    bn_tensor *fmask = bn_mul_scalar(bn_rand(BN_SHAPE(4, 37, 37), BN_F64), -3);
    struct {
        int64_t B, T, hq, hkv, hd;
        bn_dtype dt;
        bn_attention_opts o;
        double tol;
    } cases[] = {
        {2, 37, 4, 4, 16, BN_F32, {.causal = true}, 1e-5},
        {2, 37, 4, 2, 64, BN_F32, {.causal = true, .mask = bmask}, 1e-5},
        {1, 37, 4, 1, 8, BN_F64, {.mask = fmask, .dropout_p = 0.2, .training = true}, 1e-12},
        {2, 37, 2, 2, 32, BN_BF16, {.causal = true}, 2e-2},
        {2, 37, 2, 2, 32, BN_F32, {.causal = true, .impl = BN_ATTN_REFERENCE}, 1e-5},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        bn_tensor *a[2], *b[2];
        run_packed(cases[i].B, cases[i].T, cases[i].hq, cases[i].hkv, cases[i].hd, cases[i].dt,
                   &cases[i].o, true, a);
        run_packed(cases[i].B, cases[i].T, cases[i].hq, cases[i].hkv, cases[i].hd, cases[i].dt,
                   &cases[i].o, false, b);
        char msg[96];
        snprintf(msg, sizeof msg, "packed case %zu: out", i);
        bnt_assert_close(a[0], b[0], cases[i].tol, cases[i].tol, msg);
        snprintf(msg, sizeof msg, "packed case %zu: d qkv", i);
        bnt_assert_close(a[1], b[1], cases[i].tol, cases[i].tol, msg);
    }
    bn_scope_end();
}

Test(attention, packed_rows_gradcheck_and_bad_inputs)
{
    bn_scope_begin();
    bn_manual_seed(3);
    bn_tensor *in = bnt_param(BN_SHAPE(2, 5, 4 * 3), -1, 1); /* hq 2, hkv 1, hd 3 */
    fd_ctx c = {{.causal = true}};
    bnt_gradcheck("packed", fd_packed, &c, &in, 1);
    bn_release(in);
    bn_tensor *x = bn_randn(BN_SHAPE(2, 5, 12), BN_F32);
    cr_assert_null(bn__attention_packed(x, 3, 2, NULL));
    cr_assert_eq(bn_error_code(), BN_ERR_SHAPE);
    cr_assert(strstr(bn_error_message(), "bn__attention_packed") &&
              strstr(bn_error_message(), "hq 3, hkv 2"), "%s", bn_error_message());
    cr_assert_null(bn__attention_packed(bn_reshape(x, BN_SHAPE(10, 12)), 2, 1, NULL));
    cr_assert_eq(bn_error_code(), BN_ERR_SHAPE);
    cr_assert_null(bn__attention_packed(x, 2, 1, &(bn_attention_opts){.dropout_p = 1.5}));
    cr_assert_eq(bn_error_code(), BN_ERR_ARG);
    bn_tensor *bad = bn_zeros(BN_SHAPE(3, 5, 5), BN_BOOL);
    cr_assert_null(bn__attention_packed(x, 2, 1, &(bn_attention_opts){.mask = bad}));
    cr_assert_eq(bn_error_code(), BN_ERR_SHAPE);
    cr_assert_null(bn__attention_packed(bn_zeros(BN_SHAPE(2, 5, 12), BN_I32), 2, 1, NULL));
    cr_assert_eq(bn_error_code(), BN_ERR_DTYPE);
    bn_scope_end();
}

/* ---- errors ------------------------------------------------------------------------------------- */
Test(attention, bad_inputs_fail_with_a_message_and_leak_nothing)
{
    bn_tensor *q = bn_randn(BN_SHAPE(2, 4, 5, 8), BN_F32), *k = bn_randn(BN_SHAPE(2, 2, 6, 8), BN_F32);
    bn_tensor *v = bn_randn(BN_SHAPE(2, 2, 6, 8), BN_F32);
    bn_tensor *k3 = bn_randn(BN_SHAPE(2, 3, 6, 8), BN_F32);
    bn_tensor *kd = bn_randn(BN_SHAPE(2, 2, 6, 7), BN_F32);
    bn_tensor *vt = bn_randn(BN_SHAPE(2, 2, 5, 8), BN_F32);
    bn_tensor *kb = bn_randn(BN_SHAPE(3, 2, 6, 8), BN_F32);
    bn_tensor *k64 = bn_randn(BN_SHAPE(2, 2, 6, 8), BN_F64);
    bn_tensor *qi = bn_zeros(BN_SHAPE(2, 4, 5, 8), BN_I64);
    bn_tensor *q2 = bn_randn(BN_SHAPE(5, 8), BN_F32), *k5 = bn_randn(BN_SHAPE(1, 2, 2, 6, 8), BN_F32);
    bn_tensor *mbad = bn_ones(BN_SHAPE(3, 1, 5, 6), BN_BOOL);
    bn_tensor *mint = bn_ones(BN_SHAPE(5, 6), BN_I32);
    bn_tensor *mbig = bn_ones(BN_SHAPE(1, 2, 4, 5, 6), BN_BOOL);
    BNT_ASSERT_NO_LEAK({
        cr_assert_null(bn_attention(NULL, k, v, NULL));
        bnt_assert_error(BN_ERR_ARG, "bn_attention", "q", NULL);
        cr_assert_null(bn_attention(q, k3, k3, NULL));
        bnt_assert_error(BN_ERR_SHAPE, "bn_attention", "4 query heads", "multiple", "3 kv heads",
                         NULL);
        cr_assert_null(bn_attention(q, kd, kd, NULL));
        bnt_assert_error(BN_ERR_SHAPE, "bn_attention", "k [2, 2, 6, 7]", "head dim 7", "8", NULL);
        cr_assert_null(bn_attention(q, k, vt, NULL));
        bnt_assert_error(BN_ERR_SHAPE, "bn_attention", "v [2, 2, 5, 8]", "k [2, 2, 6, 8]", NULL);
        cr_assert_null(bn_attention(q, kb, kb, NULL));
        bnt_assert_error(BN_ERR_SHAPE, "bn_attention", "leading dims", "[3, 2, 6, 8]", NULL);
        cr_assert_null(bn_attention(q, k64, v, NULL));
        bnt_assert_error(BN_ERR_DTYPE, "bn_attention", "f32", "f64", NULL);
        cr_assert_null(bn_attention(qi, k, v, NULL));
        bnt_assert_error(BN_ERR_DTYPE, "bn_attention", "q", "float", "i64", NULL);
        cr_assert_null(bn_attention(q2, q2, q2, NULL));
        bnt_assert_error(BN_ERR_SHAPE, "bn_attention", "at least 3 dims", "[5, 8]", NULL);
        cr_assert_null(bn_attention(q, k5, k5, NULL));
        bnt_assert_error(BN_ERR_SHAPE, "bn_attention", "same number of dims", NULL);
        cr_assert_null(bn_attention(q, k, v, &(bn_attention_opts){.mask = mbad}));
        bnt_assert_error(BN_ERR_SHAPE, "bn_attention", "mask [3, 1, 5, 6]", "[2, 4, 5, 6]", NULL);
        cr_assert_null(bn_attention(q, k, v, &(bn_attention_opts){.mask = mbig}));
        bnt_assert_error(BN_ERR_SHAPE, "bn_attention", "mask [1, 2, 4, 5, 6]", NULL);
        cr_assert_null(bn_attention(q, k, v, &(bn_attention_opts){.mask = mint}));
        bnt_assert_error(BN_ERR_DTYPE, "bn_attention", "mask", "i32", NULL);
        cr_assert_null(bn_attention(q, k, v, &(bn_attention_opts){.dropout_p = 1.0}));
        bnt_assert_error(BN_ERR_ARG, "bn_attention", "dropout_p 1", "[0, 1)", NULL);
        cr_assert_null(bn_attention(q, k, v, &(bn_attention_opts){.dropout_p = -0.1}));
        bnt_assert_error(BN_ERR_ARG, "bn_attention", "dropout_p -0.1", NULL);
        cr_assert_null(bn_attention(q, k, v, &(bn_attention_opts){.dropout_p = NAN}));
        bnt_assert_error(BN_ERR_ARG, "bn_attention", "dropout_p nan", NULL);
        cr_assert_null(bn_attention(q, k, v, &(bn_attention_opts){.scale = INFINITY}));
        bnt_assert_error(BN_ERR_ARG, "bn_attention", "scale inf", NULL);
        cr_assert_null(bn_attention(q, k, v, &(bn_attention_opts){.impl = 7}));
        bnt_assert_error(BN_ERR_ARG, "bn_attention", "impl 7", NULL);
    });
    bn_tensor *all[] = {q, k, v, k3, kd, vt, kb, k64, qi, q2, k5, mbad, mint, mbig};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) bn_release(all[i]);
}

Test(attention, forward_and_backward_leak_nothing)
{
    bn_tensor *q = bn_randn(BN_SHAPE(1, 2, 70, 8), BN_F32);
    bn_tensor *r = bn_rand(BN_SHAPE(70, 70), BN_F32), *m = bn_gt_scalar(r, 0.5);
    bn_release(r);
    cr_assert_eq(bn_set_requires_grad(q, true), BN_OK);
    bn_scope_begin(); /* q's gradient exists before the count starts */
    cr_assert_eq(bn_backward(bn_sum(bn_attention(q, q, q, NULL), BN_ALL, false)), BN_OK);
    bn_scope_end();
    BNT_ASSERT_NO_LEAK({
        for (int p = 0; p < 2; p++) {
            bn_scope_begin();
            bn_attention_opts o = {.impl = IMPLS[p], .mask = m, .causal = true,
                                   .dropout_p = 0.1, .training = true};
            bn_tensor *out = bn_attention(q, q, q, &o);
            cr_assert_eq(bn_backward(bn_sum(out, BN_ALL, false)), BN_OK, "%s", bn_error_message());
            bn_scope_end();
        }
    });
    bn_release(q);
    bn_release(m);
}
