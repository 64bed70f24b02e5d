/* tests/unit/test_positional.c — bn_rope (half-split against Hugging Face's rotate_half,
 * interleaved against Meta's complex form; partial rotary dims, offsets, explicit (T) and (B, T)
 * positions, the linear / NTK / LLaMA 3 scalings), bn_rope_frequencies, bn_alibi_slopes (8, 12,
 * 6, 1 heads), bn_alibi_bias, bn_sinusoidal_positions, bn_gated_activation and
 * bn_linear_cross_entropy against PyTorch (tests/data/attention.txt, scripts/gen_attention.py),
 * forward and backward; the fused CPU kernels of bn_gated_activation and bn_rope against the
 * same math composed of public ops (bit for bit in f32/f64, forward and backward, contiguous or
 * not, every dtype); the chunked bn_linear_cross_entropy against bn_cross_entropy(bn_linear())
 * over several chunks; float64 finite differences, second derivatives through the fused rules;
 * every bad input. */
#include "bn_test.h"

#include "born/autograd.h"
#include "born/transformer.h"

#include <math.h>
#include <string.h>

TestSuite(positional, .fini = bnt_release_kept);

typedef bn_tensor *(*unary_case_fn)(const bn_tensor *x, const void *ctx);

/* Case cs: x (and extra consts read by fn through ctx) → out and grad x against the fixture. */
static void check_unary(fx_file *f, const char *cs, unary_case_fn fn, const void *ctx)
{
    bn_scope_begin();
    bn_tensor *x = bnt_keep(fx_tensor(f, cs, "x"));
    cr_assert_eq(bn_set_requires_grad(x, true), BN_OK);
    bn_tensor *out = fn(x, ctx);
    cr_assert_not_null(out, "%s: %s", cs, bn_error_message());
    char what[128];
    snprintf(what, sizeof what, "%s: forward", cs);
    bnt_assert_close(out, bnt_keep(fx_tensor(f, cs, "out")), 1e-12, 1e-12, what);
    bn_tensor *gout = bnt_keep(fx_tensor(f, cs, "gout"));
    cr_assert_eq(bn_backward_ex(out, (bn_backward_opts){.grad = gout}), BN_OK, "%s: %s", cs,
                 bn_error_message());
    snprintf(what, sizeof what, "%s: grad x", cs);
    bnt_assert_close(bn_grad(x), bnt_keep(fx_tensor(f, cs, "gx")), 1e-12, 1e-12, what);
    bn_scope_end();
}

static bn_tensor *rope_fn(const bn_tensor *x, const void *ctx) { return bn_rope(x, ctx); }

Test(positional, rope_matches_torch)
{
    fx_file *f = fx_open("attention.txt");
    check_unary(f, "rope_half", rope_fn, &(bn_rope_opts){0});
    check_unary(f, "rope_interleaved", rope_fn, &(bn_rope_opts){.interleaved = true});
    check_unary(f, "rope_half_partial_offset", rope_fn,
                &(bn_rope_opts){.rotary_dim = 4, .offset = 7});
    check_unary(f, "rope_interleaved_partial_base", rope_fn,
                &(bn_rope_opts){.interleaved = true, .rotary_dim = 8, .base = 500});
    bn_tensor *p1 = bnt_keep(fx_tensor(f, "rope_positions_1d", "positions"));
    check_unary(f, "rope_positions_1d", rope_fn, &(bn_rope_opts){.positions = p1});
    bn_tensor *p2 = bnt_keep(fx_tensor(f, "rope_positions_2d", "positions"));
    check_unary(f, "rope_positions_2d", rope_fn,
                &(bn_rope_opts){.positions = p2, .interleaved = true});
    check_unary(f, "rope_linear_scaling", rope_fn,
                &(bn_rope_opts){.offset = 100, .scaling = BN_ROPE_SCALING_LINEAR, .factor = 4});
    check_unary(f, "rope_ntk_scaling", rope_fn,
                &(bn_rope_opts){.offset = 3000, .scaling = BN_ROPE_SCALING_NTK, .factor = 4});
    fx_close(f);
}

Test(positional, rope_f32_and_i32_positions)
{
    fx_file *f = fx_open("attention.txt");
    bn_scope_begin();
    bn_tensor *x = bn_to_dtype(bnt_keep(fx_tensor(f, "rope_positions_2d", "x")), BN_F32);
    bn_tensor *p = bn_to_dtype(bnt_keep(fx_tensor(f, "rope_positions_2d", "positions")), BN_I32);
    bn_tensor *out = bn_rope(x, &(bn_rope_opts){.positions = p, .interleaved = true});
    cr_assert_not_null(out, "%s", bn_error_message());
    bnt_assert_close(out, bn_to_dtype(bnt_keep(fx_tensor(f, "rope_positions_2d", "out")), BN_F32),
                     1e-5, 1e-6, "rope f32");
    bn_scope_end();
    fx_close(f);
}

Test(positional, rope_frequencies_llama3_and_others)
{
    fx_file *f = fx_open("attention.txt");
    bn_scope_begin();
    bn_tensor *l3 = bn_rope_frequencies(128, &(bn_rope_opts){.base = 500000,
                                                             .scaling = BN_ROPE_SCALING_LLAMA3,
                                                             .factor = 8});
    cr_assert_not_null(l3, "%s", bn_error_message());
    bnt_assert_close(l3, bnt_keep(fx_tensor(f, "rope_llama3_frequencies", "freqs")), 1e-6, 0,
                     "llama3 defaults");
    bn_tensor *c = bn_rope_frequencies(
        64, &(bn_rope_opts){.scaling = BN_ROPE_SCALING_LLAMA3, .factor = 4, .low_freq_factor = 2,
                            .high_freq_factor = 8, .original_max_positions = 2048});
    bnt_assert_close(c, bnt_keep(fx_tensor(f, "rope_llama3_frequencies_custom", "freqs")), 1e-6,
                     0, "llama3 custom");
    bn_tensor *plain = bn_rope_frequencies(8, NULL);
    double want[4] = {1, 0.1, 0.01, 0.001};
    bnt_assert_values(plain, want, 4, 1e-7, "base 10000, dim 8");
    bn_scope_end();
    fx_close(f);
}

Test(positional, alibi_and_sinusoidal_match_torch)
{
    fx_file *f = fx_open("attention.txt");
    bn_scope_begin();
    const int64_t heads[4] = {8, 12, 6, 1};
    for (int i = 0; i < 4; i++) {
        char cs[32];
        snprintf(cs, sizeof cs, "alibi_slopes_%lld", (long long)heads[i]);
        bnt_assert_close(bn_alibi_slopes(heads[i]), bnt_keep(fx_tensor(f, cs, "slopes")), 1e-7,
                         0, cs);
    }
    bnt_assert_close(bn_alibi_bias(4, 3, 5, BN_F64, bn_cpu()),
                     bnt_keep(fx_tensor(f, "alibi_bias", "bias")), 1e-15, 0, "alibi bias");
    bnt_assert_close(bn_sinusoidal_positions(7, 6, 0, BN_F64, bn_cpu()),
                     bnt_keep(fx_tensor(f, "sinusoidal", "table")), 1e-15, 1e-15, "sinusoidal");
    bn_tensor *s32 = bn_sinusoidal_positions(7, 6, 0, BN_F32, bn_cpu());
    cr_assert_eq(bn_dtype_of(s32), BN_F32);
    bn_scope_end();
    fx_close(f);
}

static bn_tensor *glu_fn(const bn_tensor *x, const void *ctx)
{
    return bn_gated_activation(x, *(const bn_glu_kind *)ctx);
}

Test(positional, gated_activations_match_torch)
{
    fx_file *f = fx_open("attention.txt");
    const char *names[5] = {"glu_swiglu", "glu_geglu", "glu_geglu_tanh", "glu_reglu",
                            "glu_sigmoid"};
    for (int k = 0; k < 5; k++) {
        bn_glu_kind kind = (bn_glu_kind)k;
        check_unary(f, names[k], glu_fn, &kind);
    }
    fx_close(f);
}

Test(positional, linear_cross_entropy_matches_torch)
{
    fx_file *f = fx_open("attention.txt");
    struct {
        const char *name;
        bn_ce_opts o;
        bool bias;
    } cases[] = {
        {"lce_mean", {0}, true},
        {"lce_sum_smoothing", {.reduction = BN_REDUCTION_SUM, .label_smoothing = 0.1}, true},
        {"lce_none_ignore",
         {.reduction = BN_REDUCTION_NONE, .use_ignore_index = true, .ignore_index = 3},
         true},
        {"lce_mean_ignore_smoothing",
         {.use_ignore_index = true, .ignore_index = 6, .label_smoothing = 0.2},
         true},
        {"lce_no_bias", {0}, false},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        const char *cs = cases[c].name;
        bn_scope_begin();
        bn_tensor *x = bnt_keep(fx_tensor(f, cs, "x")), *w = bnt_keep(fx_tensor(f, cs, "w"));
        bn_tensor *b = cases[c].bias ? bnt_keep(fx_tensor(f, cs, "b")) : NULL;
        bn_tensor *t = bnt_keep(fx_tensor(f, cs, "target"));
        cr_assert_eq(bn_set_requires_grad(x, true), BN_OK);
        cr_assert_eq(bn_set_requires_grad(w, true), BN_OK);
        if (b) cr_assert_eq(bn_set_requires_grad(b, true), BN_OK);
        bn_tensor *out = bn_linear_cross_entropy(x, w, b, t, cases[c].o);
        cr_assert_not_null(out, "%s: %s", cs, bn_error_message());
        bnt_assert_close(out, bnt_keep(fx_tensor(f, cs, "out")), 1e-12, 1e-12, cs);
        bn_tensor *gout = bnt_keep(fx_tensor(f, cs, "gout"));
        cr_assert_eq(bn_backward_ex(out, (bn_backward_opts){.grad = gout}), BN_OK, "%s: %s", cs,
                     bn_error_message());
        bnt_assert_close(bn_grad(x), bnt_keep(fx_tensor(f, cs, "gx")), 1e-12, 1e-12, "gx");
        bnt_assert_close(bn_grad(w), bnt_keep(fx_tensor(f, cs, "gw")), 1e-12, 1e-12, "gw");
        if (b) bnt_assert_close(bn_grad(b), bnt_keep(fx_tensor(f, cs, "gb")), 1e-12, 1e-12, "gb");
        bn_scope_end();
    }
    fx_close(f);
}

/* ---- float64 finite differences --------------------------------------------------------------- */
static bn_tensor *fd_rope(void *ctx, bn_tensor *const *in, int n)
{
    (void)n;
    return bn_rope(in[0], ctx);
}

static bn_tensor *fd_glu(void *ctx, bn_tensor *const *in, int n)
{
    (void)n;
    return bn_gated_activation(in[0], *(bn_glu_kind *)ctx);
}

Test(positional, gradcheck_rope_and_glu)
{
    bn_manual_seed(3);
    bn_tensor *x = bnt_param(BN_SHAPE(2, 3, 4, 8), -1, 1);
    bn_rope_opts o1 = {.rotary_dim = 6, .offset = 2}, o2 = {.interleaved = true};
    bnt_gradcheck("rope half partial", fd_rope, &o1, &x, 1);
    bnt_gradcheck("rope interleaved", fd_rope, &o2, &x, 1);
    for (int k = 0; k < 5; k++) {
        bn_glu_kind kind = (bn_glu_kind)k;
        bnt_gradcheck("glu", fd_glu, &kind, &x, 1);
    }
    bn_release(x);
}

/* ---- errors ------------------------------------------------------------------------------------- */
Test(positional, bad_inputs_fail_with_a_message_and_leak_nothing)
{
    bn_tensor *x = bn_randn(BN_SHAPE(2, 3, 4, 8), BN_F32), *xi = bn_zeros(BN_SHAPE(4, 8), BN_I64);
    bn_tensor *x1 = bn_randn(BN_SHAPE(8), BN_F32), *xo = bn_randn(BN_SHAPE(2, 7), BN_F32);
    bn_tensor *pbad = bn_zeros(BN_SHAPE(5), BN_I64), *pf = bn_zeros(BN_SHAPE(4), BN_F32);
    bn_tensor *pb = bn_zeros(BN_SHAPE(3, 4), BN_I64);
    BNT_ASSERT_NO_LEAK({
        cr_assert_null(bn_rope(NULL, NULL));
        bnt_assert_error(BN_ERR_ARG, "bn_rope", "x", NULL);
        cr_assert_null(bn_rope(xi, NULL));
        bnt_assert_error(BN_ERR_DTYPE, "bn_rope", "float", "i64", NULL);
        cr_assert_null(bn_rope(x1, NULL));
        bnt_assert_error(BN_ERR_SHAPE, "bn_rope", "at least 2 dims", "[8]", NULL);
        cr_assert_null(bn_rope(x, &(bn_rope_opts){.rotary_dim = 5}));
        bnt_assert_error(BN_ERR_ARG, "bn_rope", "rotary_dim 5", "even", "8", NULL);
        cr_assert_null(bn_rope(x, &(bn_rope_opts){.rotary_dim = 10}));
        bnt_assert_error(BN_ERR_ARG, "bn_rope", "rotary_dim 10", NULL);
        cr_assert_null(bn_rope(xo, NULL));
        bnt_assert_error(BN_ERR_ARG, "bn_rope", "rotary_dim 7", NULL);
        cr_assert_null(bn_rope(x, &(bn_rope_opts){.base = -1}));
        bnt_assert_error(BN_ERR_ARG, "bn_rope", "base -1", NULL);
        cr_assert_null(bn_rope(x, &(bn_rope_opts){.offset = -2}));
        bnt_assert_error(BN_ERR_ARG, "bn_rope", "offset -2", NULL);
        cr_assert_null(bn_rope(x, &(bn_rope_opts){.scaling = BN_ROPE_SCALING_LINEAR}));
        bnt_assert_error(BN_ERR_ARG, "bn_rope", "factor 0", NULL);
        cr_assert_null(bn_rope(x, &(bn_rope_opts){.scaling = 9, .factor = 2}));
        bnt_assert_error(BN_ERR_ARG, "bn_rope", "scaling 9", NULL);
        cr_assert_null(bn_rope(x, &(bn_rope_opts){.scaling = BN_ROPE_SCALING_LLAMA3, .factor = 8,
                                                  .low_freq_factor = 4, .high_freq_factor = 2}));
        bnt_assert_error(BN_ERR_ARG, "bn_rope", "low_freq_factor (4)", NULL);
        cr_assert_null(bn_rope(x, &(bn_rope_opts){.positions = pbad}));
        bnt_assert_error(BN_ERR_SHAPE, "bn_rope", "positions [5]", "[4]", NULL);
        cr_assert_null(bn_rope(x, &(bn_rope_opts){.positions = pb}));
        bnt_assert_error(BN_ERR_SHAPE, "bn_rope", "positions [3, 4]", "[2, 4]", NULL);
        cr_assert_null(bn_rope(x, &(bn_rope_opts){.positions = pf}));
        bnt_assert_error(BN_ERR_DTYPE, "bn_rope", "positions", "f32", NULL);
        cr_assert_null(bn_rope_frequencies(1, NULL));
        bnt_assert_error(BN_ERR_ARG, "bn_rope_frequencies", "head_dim 1", NULL);
        cr_assert_null(bn_alibi_slopes(0));
        bnt_assert_error(BN_ERR_ARG, "bn_alibi_slopes", "heads 0", NULL);
        cr_assert_null(bn_alibi_bias(2, -1, 3, BN_F32, bn_cpu()));
        bnt_assert_error(BN_ERR_ARG, "bn_alibi_bias", "tq -1", NULL);
        cr_assert_null(bn_alibi_bias(2, 1, 3, BN_I32, bn_cpu()));
        bnt_assert_error(BN_ERR_DTYPE, "bn_alibi_bias", "i32", NULL);
        cr_assert_null(bn_sinusoidal_positions(4, 5, 0, BN_F32, bn_cpu()));
        bnt_assert_error(BN_ERR_ARG, "bn_sinusoidal_positions", "dim 5", NULL);
        cr_assert_null(bn_sinusoidal_positions(4, 6, -3, BN_F32, bn_cpu()));
        bnt_assert_error(BN_ERR_ARG, "bn_sinusoidal_positions", "base -3", NULL);
        cr_assert_null(bn_gated_activation(xo, BN_GLU_SWIGLU));
        bnt_assert_error(BN_ERR_SHAPE, "bn_gated_activation", "[2, 7]", "even", NULL);
        cr_assert_null(bn_gated_activation(x, 42));
        bnt_assert_error(BN_ERR_ARG, "bn_gated_activation", "kind 42", NULL);
        cr_assert_null(bn_gated_activation(xi, BN_GLU_REGLU));
        bnt_assert_error(BN_ERR_DTYPE, "bn_gated_activation", "i64", NULL);
        cr_assert_null(bn_linear_cross_entropy(x, xo, NULL, pbad, (bn_ce_opts){0}));
        bnt_assert_error(BN_ERR_SHAPE, "bn_linear_cross_entropy", "(N, D)", NULL);
        cr_assert_null(bn_linear_cross_entropy(xo, xo, NULL, pbad, (bn_ce_opts){.weight = xo}));
        bnt_assert_error(BN_ERR_ARG, "bn_linear_cross_entropy", "weight", NULL);
    });
    bn_tensor *all[] = {x, xi, x1, xo, pbad, pf, pb};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) bn_release(all[i]);
}

/* ---- fused kernels against their composed versions ------------------------------------------
 * The CPU backend runs bn_gated_activation and bn_rope through fused kernels; the references
 * below are the same math composed of public ops (what ops/ falls back to on a backend without
 * the kernels). f32 and f64 must agree bit for bit, forward and backward; f16/bf16 must equal
 * the f32 composition rounded once. */

/* A fresh leaf holding t's values (contiguous), requiring grad. */
static bn_tensor *leaf_copy(const bn_tensor *t)
{
    bn_tensor *c = bn_clone(t);
    cr_assert_not_null(c, "%s", bn_error_message());
    cr_assert_eq(bn_set_requires_grad(c, true), BN_OK);
    return c;
}

static bn_tensor *glu_composed(const bn_tensor *x, bn_glu_kind kind)
{
    int last = bn_ndim(x) - 1;
    int64_t F = bn_dim(x, last) / 2;
    bn_tensor *a = bn_narrow(x, last, 0, F), *b = bn_narrow(x, last, F, F), *act = NULL;
    switch (kind) {
    case BN_GLU_SWIGLU: act = bn_silu(a); break;
    case BN_GLU_GEGLU: act = bn_gelu(a); break;
    case BN_GLU_GEGLU_TANH: act = bn_gelu_tanh(a); break;
    case BN_GLU_REGLU: act = bn_relu(a); break;
    case BN_GLU_SIGMOID: act = bn_sigmoid(a); break;
    }
    return bn_mul(act, b);
}

typedef bn_tensor *(*op_fn)(const bn_tensor *x, const void *ctx);

static bn_tensor *glu_fused_fn(const bn_tensor *x, const void *ctx)
{
    return bn_gated_activation(x, *(const bn_glu_kind *)ctx);
}
static bn_tensor *glu_composed_fn(const bn_tensor *x, const void *ctx)
{
    return glu_composed(x, *(const bn_glu_kind *)ctx);
}

/* fused(x) and its gradient for gout against ref on a leaf with the same values: equal bits for
 * f32/f64; for f16/bf16, ref runs on the f32 values and its results are rounded to x's dtype.
 * The reference's gradient is taken with create_graph (every rule composed of ops). */
static void check_fused(const char *what, const bn_tensor *x, op_fn fused, op_fn ref,
                        const void *ctx)
{
    bn_scope_begin();
    bn_dtype dt = bn_dtype_of(x);
    bool half = dt == BN_F16 || dt == BN_BF16;
    bn_tensor *x1 = leaf_copy(x), *x2 = leaf_copy(half ? bn_to_dtype(x, BN_F32) : x);
    bn_tensor *o1 = fused(x1, ctx), *o2 = ref(x2, ctx);
    cr_assert_not_null(o1, "%s: %s", what, bn_error_message());
    cr_assert_not_null(o2, "%s: %s", what, bn_error_message());
    char m[160];
    snprintf(m, sizeof m, "%s (%s): forward", what, bn_dtype_name(dt));
    bnt_assert_equal(o1, half ? bn_to_dtype(o2, dt) : o2, m);
    bn_tensor *g = bn_to_dtype(bn_mul_scalar(bn_randn(bn_shape_of(o1), BN_F64), 1.5), dt);
    cr_assert_eq(bn_backward_ex(o1, (bn_backward_opts){.grad = g}), BN_OK, "%s: %s", what,
                 bn_error_message());
    bn_tensor *g2 = half ? bn_to_dtype(g, BN_F32) : g;
    /* create_graph: the reference's activation rules composed of ops (the fused kernels mirror
     * those; without it silu/gelu take their own one-pass rule, BN_BINARY_*_GRAD). Through
     * bn_autograd_grad, so no .grad holds a graph that refers back to x2 (a cycle). */
    bn_tensor *want = NULL;
    cr_assert_eq(bn_autograd_grad(&o2, &g2, 1, &x2, 1, &want,
                                  (bn_backward_opts){.create_graph = true}),
                 BN_OK, "%s: %s", what, bn_error_message());
    snprintf(m, sizeof m, "%s (%s): grad x", what, bn_dtype_name(dt));
    bnt_assert_equal(bn_grad(x1), half ? bn_to_dtype(want, dt) : want, m);
    bn_scope_end();
}

/* randn * scale with a few special values (0, -0, far in both tails) sprinkled in, as dt */
static bn_tensor *test_input(bn_shape s, double scale, bn_dtype dt)
{
    bn_tensor *x = bn_mul_scalar(bn_randn(s, BN_F64), scale);
    double *p = bn_tensor_data_f64(x);
    const double special[6] = {0.0, -0.0, 30.0, -30.0, 95.0, -95.0};
    int64_t n = bn_numel(x);
    for (int i = 0; i < 6 && p && n > 0; i++) p[(i * 7919) % n] = special[i];
    return bn_to_dtype(x, dt);
}

Test(positional, gated_activation_fused_equals_composed)
{
    bn_manual_seed(11);
    const bn_shape shapes[] = {BN_SHAPE(3, 10), BN_SHAPE(2, 5, 600), BN_SHAPE(4, 1, 2),
                               BN_SHAPE(0, 6), BN_SHAPE(64, 2048), BN_SHAPE(7, 514)};
    const bn_dtype dts[4] = {BN_F32, BN_F64, BN_F16, BN_BF16};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
        for (int d = 0; d < 4; d++)
            for (int k = 0; k < 5; k++) {
                bn_scope_begin();
                bn_glu_kind kind = (bn_glu_kind)k;
                char what[64];
                snprintf(what, sizeof what, "glu kind %d shape %zu", k, s);
                check_fused(what, test_input(shapes[s], 3.0, dts[d]), glu_fused_fn,
                            glu_composed_fn, &kind);
                bn_scope_end();
            }
    /* a non-contiguous x: the transpose of (2F, rows) */
    for (int k = 0; k < 5; k++) {
        bn_scope_begin();
        bn_glu_kind kind = (bn_glu_kind)k;
        bn_tensor *xt = bn_transpose(test_input(BN_SHAPE(12, 9), 2.0, BN_F32), 0, 1);
        check_fused("glu transposed x", xt, glu_fused_fn, glu_composed_fn, &kind);
        bn_scope_end();
    }
}

/* RoPE composed of public ops, with its tables computed here in f64 (the header's formula). */
typedef struct rope_case {
    bn_rope_opts o;
    const int64_t *pos; /* NULL: offset + t */
    int64_t prows;      /* rows of pos (1: (T), else (B, T)) */
} rope_case;

static bn_tensor *rope_composed(const bn_tensor *x, const void *ctx)
{
    const rope_case *rc = ctx;
    int nd = bn_ndim(x), last = nd - 1;
    int64_t T = bn_dim(x, nd - 2), D = bn_dim(x, last);
    int64_t rd = rc->o.rotary_dim ? rc->o.rotary_dim : D, half = rd / 2;
    double base = rc->o.base != 0 ? rc->o.base : 10000.0;
    int64_t rows = rc->pos ? rc->prows : 1;
    double *cs = malloc(sizeof(double) * (size_t)(rows * T * half));
    double *sn = malloc(sizeof(double) * (size_t)(rows * T * half));
    for (int64_t r = 0; r < rows * T; r++)
        for (int64_t i = 0; i < half; i++) {
            double f = pow(base, -(double)(2 * i) / (double)rd);
            double p = rc->pos ? (double)rc->pos[r] : (double)(rc->o.offset + r);
            cs[r * half + i] = cos(p * f);
            sn[r * half + i] = sin(p * f);
        }
    bn_shape ts = BN_SHAPE(T, half);
    if (rc->pos && rc->prows > 1) {
        ts.ndim = nd;
        ts.dims[0] = rows;
        for (int i = 1; i < nd - 2; i++) ts.dims[i] = 1;
        ts.dims[nd - 2] = T, ts.dims[nd - 1] = half;
    }
    bn_dtype cdt = bn_dtype_of(x) == BN_F64 ? BN_F64 : BN_F32;
    bn_tensor *c = bn_to_dtype(bn_from_data(cs, ts, BN_F64), cdt);
    bn_tensor *s = bn_to_dtype(bn_from_data(sn, ts, BN_F64), cdt);
    free(cs);
    free(sn);
    bn_tensor *xr = rd < D ? bn_narrow(x, last, 0, rd) : (bn_tensor *)x, *x1, *x2;
    if (rc->o.interleaved) {
        bn_shape p = bn_shape_of(xr);
        p.dims[last] = half;
        p.dims[p.ndim++] = 2;
        bn_tensor *pairs = bn_reshape(xr, p);
        x1 = bn_select(pairs, last + 1, 0);
        x2 = bn_select(pairs, last + 1, 1);
    } else {
        x1 = bn_narrow(xr, last, 0, half);
        x2 = bn_narrow(xr, last, half, half);
    }
    bn_tensor *pair[2] = {bn_sub(bn_mul(x1, c), bn_mul(x2, s)),
                          bn_add(bn_mul(x1, s), bn_mul(x2, c))};
    bn_tensor *rot = rc->o.interleaved
                         ? bn_reshape(bn_stack(pair, 2, last + 1), bn_shape_of(xr))
                         : bn_cat(pair, 2, last);
    if (rd < D) {
        bn_tensor *parts[2] = {rot, bn_narrow(x, last, rd, D - rd)};
        rot = bn_cat(parts, 2, last);
    }
    return rot;
}

static bn_tensor *rope_fused_fn(const bn_tensor *x, const void *ctx)
{
    const rope_case *rc = ctx;
    bn_rope_opts o = rc->o;
    if (rc->pos) {
        bn_shape ps = rc->prows > 1 ? BN_SHAPE(rc->prows, bn_dim(x, bn_ndim(x) - 2))
                                    : BN_SHAPE(bn_dim(x, bn_ndim(x) - 2));
        o.positions = bn_from_data(rc->pos, ps, BN_I64);
    }
    return bn_rope(x, &o);
}

Test(positional, rope_fused_equals_composed)
{
    bn_manual_seed(12);
    const int64_t pos1[5] = {4, 0, 17, 3, 1000};
    const int64_t pos2[10] = {0, 1, 2, 3, 4, 9, 7, 5, 3, 1};
    struct {
        bn_shape s;
        rope_case c;
    } cases[] = {
        {BN_SHAPE(2, 3, 5, 8), {{.base = 0}, NULL, 1}},
        {BN_SHAPE(2, 3, 5, 8), {{.interleaved = true}, NULL, 1}},
        {BN_SHAPE(2, 3, 5, 10), {{.rotary_dim = 4, .offset = 5}, NULL, 1}},
        {BN_SHAPE(3, 5, 12), {{.rotary_dim = 8, .interleaved = true, .base = 500}, NULL, 1}},
        {BN_SHAPE(2, 2, 5, 6), {{.base = 0}, pos1, 1}},
        {BN_SHAPE(2, 3, 5, 6), {{.interleaved = true}, pos2, 2}},
        {BN_SHAPE(2, 5, 6), {{.base = 0}, pos2, 2}},
        {BN_SHAPE(5, 6), {{.offset = 3}, NULL, 1}},
        {BN_SHAPE(1, 8, 64, 64), {{.offset = 100}, NULL, 1}},
        {BN_SHAPE(2, 0, 5, 6), {{.base = 0}, NULL, 1}},
    };
    const bn_dtype dts[4] = {BN_F32, BN_F64, BN_F16, BN_BF16};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        for (int d = 0; d < 4; d++) {
            bn_scope_begin();
            char what[64];
            snprintf(what, sizeof what, "rope case %zu", i);
            check_fused(what, test_input(cases[i].s, 1.0, dts[d]), rope_fused_fn, rope_composed,
                        &cases[i].c);
            bn_scope_end();
        }
    /* a transposed q, (B, T, H, D) seen as (B, H, T, D), read in place; and a layout that needs
     * a copy (T and D swapped) */
    bn_scope_begin();
    rope_case plain = {{.base = 0}, NULL, 1}, p2 = {{.interleaved = true}, pos2, 2};
    bn_tensor *q = bn_transpose(test_input(BN_SHAPE(2, 5, 3, 8), 1.0, BN_F32), 1, 2);
    check_fused("rope transposed q", q, rope_fused_fn, rope_composed, &plain);
    check_fused("rope transposed q, (B, T) positions", q, rope_fused_fn, rope_composed, &p2);
    bn_tensor *odd = bn_transpose(test_input(BN_SHAPE(3, 8, 5), 1.0, BN_F64), 1, 2);
    check_fused("rope (T, D) transposed", odd, rope_fused_fn, rope_composed, &plain);
    bn_scope_end();
}

/* ---- second derivatives through the fused rules --------------------------------------------- */
/* d/dx sum(op(x) * W), recorded (create_graph), so bnt_gradcheck checks the second derivative */
typedef struct grad_ctx {
    op_fn op;
    const void *ctx;
    bn_tensor *weight;
} grad_ctx;

static bn_tensor *fd_first_grad(void *vctx, bn_tensor *const *in, int n)
{
    (void)n;
    grad_ctx *c = vctx;
    /* the finite differences evaluate this under no-grad: the first derivative needs grad */
    bool off = !bn_grad_enabled();
    if (off) bn_no_grad_end();
    bn_tensor *out = bn_sum(bn_mul(c->op(in[0], c->ctx), c->weight), BN_ALL, false);
    bn_tensor *g = NULL;
    bn_status st =
        bn_autograd_grad(&out, NULL, 1, in, 1, &g, (bn_backward_opts){.create_graph = true});
    if (off) bn_no_grad_begin();
    cr_assert_eq(st, BN_OK, "%s", bn_error_message());
    return g;
}

/* d/dx sum(rope(x) * v) as a function of v (recorded through the fused rule) */
typedef struct rope_vjp_ctx {
    const rope_case *rc;
    bn_tensor *x;
} rope_vjp_ctx;

static bn_tensor *fd_rope_vjp(void *vctx, bn_tensor *const *in, int n)
{
    (void)n;
    rope_vjp_ctx *c = vctx;
    bool off = !bn_grad_enabled();
    if (off) bn_no_grad_end();
    bn_tensor *out = bn_sum(bn_mul(rope_fused_fn(c->x, c->rc), in[0]), BN_ALL, false);
    bn_tensor *g = NULL;
    bn_status st =
        bn_autograd_grad(&out, NULL, 1, &c->x, 1, &g, (bn_backward_opts){.create_graph = true});
    if (off) bn_no_grad_begin();
    cr_assert_eq(st, BN_OK, "%s", bn_error_message());
    cr_assert_str_eq(bn_grad_fn_name(g) ? bn_grad_fn_name(g) : "none", "RopeBackward");
    return g;
}

Test(positional, gradcheck_second_derivatives_of_fused_glu_and_rope)
{
    bn_manual_seed(13);
    bn_tensor *x = bnt_param(BN_SHAPE(3, 4, 8), -2, 2);
    bn_tensor *wg = bn_randn(BN_SHAPE(3, 4, 4), BN_F64);
    for (int k = 0; k < 5; k++) {
        if (k == BN_GLU_REGLU) continue; /* relu'' is 0 almost everywhere: checked by kind 3's */
        bn_glu_kind kind = (bn_glu_kind)k;
        grad_ctx c = {glu_fused_fn, &kind, wg};
        bnt_gradcheck("glu second derivative", fd_first_grad, &c, &x, 1);
    }
    /* rope is linear: its derivative does not depend on x, but the backward (rope by -angle)
     * is itself differentiated with respect to the incoming gradient */
    rope_case rc = {{.rotary_dim = 6, .offset = 2}, NULL, 1};
    bn_tensor *v = bnt_param(BN_SHAPE(3, 4, 8), -1, 1);
    bn_tensor *xr = bn_randn(BN_SHAPE(3, 4, 8), BN_F64);
    cr_assert_eq(bn_set_requires_grad(xr, true), BN_OK);
    rope_vjp_ctx rv = {&rc, xr};
    bnt_gradcheck("rope backward of the backward", fd_rope_vjp, &rv, &v, 1);
    bn_release(v);
    bn_release(xr);
    bn_release(x);
    bn_release(wg);
}

/* ---- chunked linear cross-entropy ----------------------------------------------------------- */
/* bn_linear_cross_entropy against bn_cross_entropy(bn_linear(...)) on problems of several
 * chunks (the last one partial), loss and gradients. */
static void check_lce_vs_composed(const char *what, int64_t N, int64_t D, int64_t V, bn_dtype dt,
                                  bool bias, bn_ce_opts o, double tol)
{
    bn_scope_begin();
    bn_tensor *x = bn_to_dtype(bn_randn(BN_SHAPE(N, D), BN_F64), dt);
    bn_tensor *w = bn_to_dtype(bn_mul_scalar(bn_randn(BN_SHAPE(V, D), BN_F64), 0.5), dt);
    bn_tensor *b = bias ? bn_to_dtype(bn_randn(BN_SHAPE(V), BN_F64), dt) : NULL;
    bn_tensor *t = bn_randint(0, V, BN_SHAPE(N), BN_I64);
    if (o.use_ignore_index) { /* every third row ignored */
        int64_t *tp = bn_tensor_data_i64(t);
        for (int64_t i = 0; i < N; i += 3) tp[i] = o.ignore_index;
    }
    bn_tensor *x1 = leaf_copy(x), *w1 = leaf_copy(w), *b1 = b ? leaf_copy(b) : NULL;
    bn_tensor *x2 = leaf_copy(x), *w2 = leaf_copy(w), *b2 = b ? leaf_copy(b) : NULL;
    bn_tensor *l1 = bn_linear_cross_entropy(x1, w1, b1, t, o);
    bn_tensor *l2 = bn_cross_entropy(bn_linear(x2, w2, b2), t, o);
    cr_assert_not_null(l1, "%s: %s", what, bn_error_message());
    cr_assert_not_null(l2, "%s: %s", what, bn_error_message());
    char m[128];
    snprintf(m, sizeof m, "%s: loss", what);
    bnt_assert_close(l1, l2, tol, tol, m);
    bn_tensor *g = o.reduction == BN_REDUCTION_NONE ? bn_to_dtype(bn_randn(BN_SHAPE(N), BN_F64), dt)
                                                    : bn_full(BN_SCALAR, 1.7, dt);
    cr_assert_eq(bn_backward_ex(l1, (bn_backward_opts){.grad = g}), BN_OK, "%s", bn_error_message());
    cr_assert_eq(bn_backward_ex(l2, (bn_backward_opts){.grad = g}), BN_OK, "%s", bn_error_message());
    snprintf(m, sizeof m, "%s: grad x", what);
    bnt_assert_close(bn_grad(x1), bn_grad(x2), tol, tol, m);
    snprintf(m, sizeof m, "%s: grad w", what);
    bnt_assert_close(bn_grad(w1), bn_grad(w2), tol, tol, m);
    if (b) {
        snprintf(m, sizeof m, "%s: grad b", what);
        bnt_assert_close(bn_grad(b1), bn_grad(b2), tol, tol, m);
    }
    bn_scope_end();
}

Test(positional, linear_cross_entropy_chunks_equal_composed)
{
    bn_manual_seed(14);
    bn_ce_opts mean = {0}, sum_s = {.reduction = BN_REDUCTION_SUM, .label_smoothing = 0.1};
    bn_ce_opts none_i = {.reduction = BN_REDUCTION_NONE, .use_ignore_index = true,
                         .ignore_index = -100};
    bn_ce_opts mean_is = {.use_ignore_index = true, .ignore_index = 2, .label_smoothing = 0.3};
    /* f64: 4 MiB of logits is 524 rows of 1000 classes: 3 chunks */
    check_lce_vs_composed("f64 mean", 1100, 16, 1000, BN_F64, true, mean, 1e-11);
    check_lce_vs_composed("f64 sum smoothing", 1100, 16, 1000, BN_F64, true, sum_s, 1e-11);
    check_lce_vs_composed("f64 none ignore", 1100, 16, 1000, BN_F64, false, none_i, 1e-11);
    check_lce_vs_composed("f64 mean ignore smoothing", 1100, 16, 1000, BN_F64, true, mean_is,
                          1e-11);
    /* f32: 70000 classes give the 16-row minimum chunk: 4 chunks */
    check_lce_vs_composed("f32 mean", 50, 8, 70000, BN_F32, true, mean, 2e-5);
    check_lce_vs_composed("f32 none ignore", 50, 8, 70000, BN_F32, true, none_i, 2e-5);
    check_lce_vs_composed("f32 mean ignore smoothing", 50, 8, 70000, BN_F32, false, mean_is, 2e-5);
}

typedef struct lce_ctx {
    bn_tensor *target;
    bn_ce_opts o;
} lce_ctx;

static bn_tensor *fd_lce(void *vctx, bn_tensor *const *in, int n)
{
    lce_ctx *c = vctx;
    return bn_linear_cross_entropy(in[0], in[1], n > 2 ? in[2] : NULL, c->target, c->o);
}

Test(positional, gradcheck_linear_cross_entropy)
{
    bn_manual_seed(15);
    bn_tensor *in[3] = {bnt_param(BN_SHAPE(6, 3), -1, 1), bnt_param(BN_SHAPE(5, 3), -1, 1),
                        bnt_param(BN_SHAPE(5), -1, 1)};
    const int64_t tv[6] = {0, 4, 2, 2, 1, 3};
    lce_ctx c = {bn_from_data(tv, BN_SHAPE(6), BN_I64), {0}};
    bnt_gradcheck("lce mean", fd_lce, &c, in, 3);
    c.o = (bn_ce_opts){.reduction = BN_REDUCTION_SUM, .label_smoothing = 0.25};
    bnt_gradcheck("lce sum smoothing", fd_lce, &c, in, 3);
    c.o = (bn_ce_opts){.reduction = BN_REDUCTION_NONE, .use_ignore_index = true, .ignore_index = 2};
    bnt_gradcheck("lce none ignore", fd_lce, &c, in, 3);
    c.o = (bn_ce_opts){.use_ignore_index = true, .ignore_index = 4, .label_smoothing = 0.1};
    bnt_gradcheck("lce mean ignore smoothing, no bias", fd_lce, &c, in, 2);
    bn_release(c.target);
    for (int i = 0; i < 3; i++) bn_release(in[i]);
}

Test(positional, linear_cross_entropy_edge_cases)
{
    bn_scope_begin();
    bn_tensor *x = leaf_copy(bn_randn(BN_SHAPE(4, 3), BN_F64));
    bn_tensor *w = leaf_copy(bn_randn(BN_SHAPE(5, 3), BN_F64));
    /* every row ignored: the mean is NaN (0 / 0, like torch) and the gradients are 0 */
    bn_tensor *t = bn_full(BN_SHAPE(4), 7, BN_I64);
    bn_tensor *l = bn_linear_cross_entropy(x, w, NULL, t,
                                           (bn_ce_opts){.use_ignore_index = true, .ignore_index = 7});
    cr_assert_not_null(l, "%s", bn_error_message());
    cr_assert(isnan(bn_item(l)));
    cr_assert_eq(bn_backward(l), BN_OK, "%s", bn_error_message());
    bnt_assert_close(bn_grad(x), bn_zeros(BN_SHAPE(4, 3), BN_F64), 0, 0, "all ignored: grad x");
    bnt_assert_close(bn_grad(w), bn_zeros(BN_SHAPE(5, 3), BN_F64), 0, 0, "all ignored: grad w");
    /* no rows: none gives (0), sum gives 0 */
    bn_tensor *x0 = bn_zeros(BN_SHAPE(0, 3), BN_F64), *t0 = bn_zeros(BN_SHAPE(0), BN_I64);
    bn_tensor *l0 = bn_linear_cross_entropy(x0, w, NULL, t0,
                                            (bn_ce_opts){.reduction = BN_REDUCTION_NONE});
    cr_assert_not_null(l0, "%s", bn_error_message());
    cr_assert_eq(bn_numel(l0), 0);
    bn_tensor *ls = bn_linear_cross_entropy(x0, w, NULL, t0,
                                            (bn_ce_opts){.reduction = BN_REDUCTION_SUM});
    cr_assert_eq(bn_item(ls), 0.0);
    /* i32 targets and f16 inputs (computed in f32) */
    const int32_t t32[4] = {1, 0, 4, 2};
    bn_tensor *ti = bn_from_data(t32, BN_SHAPE(4), BN_I32);
    bn_tensor *lh = bn_linear_cross_entropy(bn_to_dtype(x, BN_F16), bn_to_dtype(w, BN_F16), NULL,
                                            ti, (bn_ce_opts){0});
    cr_assert_not_null(lh, "%s", bn_error_message());
    cr_assert_eq(bn_dtype_of(lh), BN_F16);
    bn_tensor *ref = bn_cross_entropy(bn_linear(bn_to_dtype(bn_to_dtype(x, BN_F16), BN_F32),
                                                bn_to_dtype(bn_to_dtype(w, BN_F16), BN_F32), NULL),
                                      ti, (bn_ce_opts){0});
    bnt_assert_close(bn_to_dtype(lh, BN_F32), ref, 1e-3, 1e-3, "f16 inputs");
    /* second derivatives are refused with a message */
    bn_tensor *x2 = leaf_copy(x);
    bn_tensor *l2 = bn_linear_cross_entropy(x2, w, NULL, ti, (bn_ce_opts){0});
    bn_tensor *g = NULL;
    cr_assert_eq(bn_autograd_grad(&l2, NULL, 1, &x2, 1, &g, (bn_backward_opts){.create_graph = true}),
                 BN_ERR_UNSUPPORTED);
    bnt_assert_error(BN_ERR_UNSUPPORTED, "LinearCrossEntropyBackward", "create_graph", NULL);
    bn_scope_end();
}

Test(positional, linear_cross_entropy_bad_inputs)
{
    bn_tensor *x = bn_randn(BN_SHAPE(4, 3), BN_F32), *w = bn_randn(BN_SHAPE(5, 3), BN_F32);
    bn_tensor *b = bn_randn(BN_SHAPE(5), BN_F32), *b6 = bn_randn(BN_SHAPE(6), BN_F32);
    bn_tensor *w64 = bn_randn(BN_SHAPE(5, 3), BN_F64), *wd = bn_randn(BN_SHAPE(5, 2), BN_F32);
    bn_tensor *w0 = bn_zeros(BN_SHAPE(0, 3), BN_F32);
    const int64_t tv[4] = {0, 9, 1, -1};
    bn_tensor *t = bn_from_data(tv, BN_SHAPE(4), BN_I64), *t3 = bn_zeros(BN_SHAPE(3), BN_I64);
    bn_tensor *tf = bn_zeros(BN_SHAPE(4), BN_F32), *ok = bn_zeros(BN_SHAPE(4), BN_I64);
    bn_tensor *xi = bn_zeros(BN_SHAPE(4, 3), BN_I32);
    BNT_ASSERT_NO_LEAK({
        cr_assert_null(bn_linear_cross_entropy(NULL, w, b, ok, (bn_ce_opts){0}));
        bnt_assert_error(BN_ERR_ARG, "bn_linear_cross_entropy", "x", NULL);
        cr_assert_null(bn_linear_cross_entropy(x, NULL, b, ok, (bn_ce_opts){0}));
        bnt_assert_error(BN_ERR_ARG, "bn_linear_cross_entropy", "w", NULL);
        cr_assert_null(bn_linear_cross_entropy(x, w, b, NULL, (bn_ce_opts){0}));
        bnt_assert_error(BN_ERR_ARG, "bn_linear_cross_entropy", "target", NULL);
        cr_assert_null(bn_linear_cross_entropy(x, w, b, t, (bn_ce_opts){0}));
        bnt_assert_error(BN_ERR_ARG, "bn_linear_cross_entropy", "target 9 (row 1)", "5 classes",
                         NULL);
        cr_assert_null(bn_linear_cross_entropy(
            x, w, b, t, (bn_ce_opts){.use_ignore_index = true, .ignore_index = 9}));
        bnt_assert_error(BN_ERR_ARG, "bn_linear_cross_entropy", "target -1 (row 3)", NULL);
        cr_assert_null(bn_linear_cross_entropy(x, w, b, t3, (bn_ce_opts){0}));
        bnt_assert_error(BN_ERR_SHAPE, "bn_linear_cross_entropy", "target [3]", "[4]", NULL);
        cr_assert_null(bn_linear_cross_entropy(x, w, b, tf, (bn_ce_opts){0}));
        bnt_assert_error(BN_ERR_DTYPE, "bn_linear_cross_entropy", "target", "f32", NULL);
        cr_assert_null(bn_linear_cross_entropy(x, w, b6, ok, (bn_ce_opts){0}));
        bnt_assert_error(BN_ERR_SHAPE, "bn_linear_cross_entropy", "b [6]", "[5]", NULL);
        cr_assert_null(bn_linear_cross_entropy(x, w64, NULL, ok, (bn_ce_opts){0}));
        bnt_assert_error(BN_ERR_DTYPE, "bn_linear_cross_entropy", "f32", "f64", NULL);
        cr_assert_null(bn_linear_cross_entropy(x, wd, NULL, ok, (bn_ce_opts){0}));
        bnt_assert_error(BN_ERR_SHAPE, "bn_linear_cross_entropy", "[4, 3]", "[5, 2]", NULL);
        cr_assert_null(bn_linear_cross_entropy(x, w0, NULL, ok, (bn_ce_opts){0}));
        bnt_assert_error(BN_ERR_SHAPE, "bn_linear_cross_entropy", "no classes", NULL);
        cr_assert_null(bn_linear_cross_entropy(xi, w, NULL, ok, (bn_ce_opts){0}));
        bnt_assert_error(BN_ERR_DTYPE, "bn_linear_cross_entropy", "x", "i32", NULL);
        cr_assert_null(bn_linear_cross_entropy(x, w, b, ok, (bn_ce_opts){.label_smoothing = 2}));
        bnt_assert_error(BN_ERR_ARG, "bn_linear_cross_entropy", "label_smoothing = 2", NULL);
        cr_assert_null(bn_linear_cross_entropy(x, w, b, ok, (bn_ce_opts){.reduction = 7}));
        bnt_assert_error(BN_ERR_ARG, "bn_linear_cross_entropy", "reduction 7", NULL);
    });
    bn_tensor *all[] = {x, w, b, b6, w64, wd, w0, t, t3, tf, ok, xi};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) bn_release(all[i]);
}

Test(positional, fused_ops_record_their_own_nodes)
{
    bn_scope_begin();
    bn_tensor *x = leaf_copy(bn_randn(BN_SHAPE(2, 4, 6), BN_F32));
    cr_assert_str_eq(bn_grad_fn_name(bn_gated_activation(x, BN_GLU_SWIGLU)),
                     "GatedActivationBackward");
    cr_assert_str_eq(bn_grad_fn_name(bn_rope(x, NULL)), "RopeBackward");
    bn_tensor *w = leaf_copy(bn_randn(BN_SHAPE(5, 6), BN_F32));
    bn_tensor *t = bn_zeros(BN_SHAPE(4), BN_I64);
    cr_assert_str_eq(bn_grad_fn_name(bn_linear_cross_entropy(bn_select(x, 0, 0), w, NULL, t,
                                                             (bn_ce_opts){0})),
                     "LinearCrossEntropyBackward");
    bn_scope_end();
}
