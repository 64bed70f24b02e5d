/* tests/unit/test_conv.c — bn_conv1d, bn_conv2d and bn_conv_transpose2d: forward results and
 * gradients against PyTorch (tests/data/conv.txt, made by scripts/gen_conv.py) for strides,
 * padding, same padding, dilation, groups, depthwise, 1x1, non-square, unbatched, transposed
 * input, empty batch and every float dtype; float64 finite differences; the refusal of a
 * second derivative; every error. */
#include "bn_test.h"

#include "born/autograd.h"
#include "born/info.h"
#include "core/internal.h"

#include <stdlib.h>
#include <string.h>

/* Registers t with the open scope, like a tensor an op returned. */
static bn_tensor *own(bn_tensor *t) { return bn__out(t); }

/* ---- fixture cases ---------------------------------------------------------------------------- */
static bn_conv_opts opts_of(fx_file *f, const char *cs)
{
    return (bn_conv_opts){
        .stride = (int64_t)fx_scalar(f, cs, "stride"),
        .padding = (int64_t)fx_scalar(f, cs, "padding"),
        .dilation = (int64_t)fx_scalar(f, cs, "dilation"),
        .groups = (int64_t)fx_scalar(f, cs, "groups"),
        .output_padding = (int64_t)fx_scalar(f, cs, "output_padding"),
        .same = fx_scalar(f, cs, "same") != 0,
    };
}

static bn_tensor *run_conv(int kind, const bn_tensor *x, const bn_tensor *w, const bn_tensor *b,
                           bn_conv_opts o)
{
    switch (kind) {
    case 1: return bn_conv1d(x, w, b, o);
    case 2: return bn_conv2d(x, w, b, o);
    default: return bn_conv_transpose2d(x, w, b, o);
    }
}

static void check_close(const bn_tensor *got, const bn_tensor *want, const char *cs,
                        const char *what)
{
    char label[160];
    snprintf(label, sizeof label, "%s: %s", cs, what);
    cr_assert_not_null(got, "%s is missing: %s", label, bn_error_message());
    bn_dtype dt = bn_dtype_of(want);
    double rtol = dt == BN_F32 ? 1e-4 : bnt_rtol(dt), atol = dt == BN_F32 ? 1e-4 : bnt_atol(dt);
    if (dt == BN_F64) rtol = atol = 1e-10;
    bnt_assert_close(got, want, rtol, atol, label);
}

/* Case cs: the forward result and the gradients of sum(out * gout) match torch's. */
static void check_conv_case(const char *cs)
{
    fx_file *f = fx_open("conv.txt");
    bn_scope_begin();
    bool view = strstr(cs, "transposed_input") != NULL;
    bn_tensor *leaf = own(fx_tensor(f, cs, view ? "x_base" : "x"));
    bn_tensor *w = own(fx_tensor(f, cs, "w"));
    bool has_b = strstr(cs, "no_bias") == NULL;
    bn_tensor *b = has_b ? own(fx_tensor(f, cs, "b")) : NULL;
    cr_assert_eq(bn_set_requires_grad(leaf, true), BN_OK);
    cr_assert_eq(bn_set_requires_grad(w, true), BN_OK);
    if (b) cr_assert_eq(bn_set_requires_grad(b, true), BN_OK);
    bn_tensor *x = view ? bn_transpose(leaf, 2, 3) : leaf;
    int kind = (int)fx_scalar(f, cs, "kind");
    bn_tensor *out = run_conv(kind, x, w, b, opts_of(f, cs));
    check_close(out, own(fx_tensor(f, cs, "out")), cs, "forward");
    bn_tensor *gout = own(fx_tensor(f, cs, "gout"));
    cr_assert_eq(bn_backward_ex(out, (bn_backward_opts){.grad = gout}), BN_OK, "%s: %s", cs,
                 bn_error_message());
    bn_tensor *gx = bn_grad(leaf);
    if (view) gx = bn_transpose(gx, 2, 3);
    check_close(gx, own(fx_tensor(f, cs, "gx")), cs, "grad x");
    check_close(bn_grad(w), own(fx_tensor(f, cs, "gw")), cs, "grad w");
    if (b) check_close(bn_grad(b), own(fx_tensor(f, cs, "gb")), cs,
                       "grad b");
    bn_scope_end();
    fx_close(f);
}

#define CONV_CASE(test_name, case_name)                                                            \
    Test(conv, test_name) { BNT_ASSERT_NO_LEAK(check_conv_case(case_name)); }

CONV_CASE(conv2d_matches_torch, "conv2d_basic")
CONV_CASE(conv2d_stride_2_matches_torch, "conv2d_stride2")
CONV_CASE(conv2d_padding_1_matches_torch, "conv2d_padding1")
CONV_CASE(conv2d_dilation_2_matches_torch, "conv2d_dilation2")
CONV_CASE(conv2d_groups_2_matches_torch, "conv2d_groups2")
CONV_CASE(conv2d_depthwise_matches_torch, "conv2d_depthwise")
CONV_CASE(conv2d_same_pads_an_even_kernel_like_torch, "conv2d_same_even_kernel")
CONV_CASE(conv2d_same_with_dilation_matches_torch, "conv2d_same_dilation2")
CONV_CASE(conv2d_1x1_matches_torch, "conv2d_1x1")
CONV_CASE(conv2d_non_square_without_bias_matches_torch, "conv2d_nonsquare_no_bias")
CONV_CASE(conv2d_unbatched_input_matches_torch, "conv2d_unbatched")
CONV_CASE(conv2d_transposed_input_matches_torch, "conv2d_transposed_input")
CONV_CASE(conv2d_empty_batch_gives_empty_output_and_zero_grads, "conv2d_empty_batch")
CONV_CASE(conv2d_f64_matches_torch, "conv2d_f64")
CONV_CASE(conv2d_f16_computes_in_f32_and_rounds_once, "conv2d_f16")
CONV_CASE(conv2d_bf16_computes_in_f32_and_rounds_once, "conv2d_bf16")
CONV_CASE(conv1d_stride_and_padding_match_torch, "conv1d_stride2_padding1")
CONV_CASE(conv1d_same_with_dilation_matches_torch, "conv1d_same_dilation2")
CONV_CASE(conv1d_unbatched_groups_match_torch, "conv1d_unbatched_groups")
CONV_CASE(conv_transpose2d_matches_torch, "conv_transpose2d_basic")
CONV_CASE(conv_transpose2d_stride_and_output_padding_match_torch,
          "conv_transpose2d_stride2_output_padding")
CONV_CASE(conv_transpose2d_groups_and_dilation_match_torch, "conv_transpose2d_groups2_dilation2")
CONV_CASE(conv_transpose2d_unbatched_without_bias_matches_torch,
          "conv_transpose2d_unbatched_no_bias")
CONV_CASE(conv_transpose2d_f64_matches_torch, "conv_transpose2d_f64")

/* The forward result and the weight's gradient of a fresh conv on `threads` threads. */
static void conv_on_threads(int threads, bn_tensor *x, bn_tensor *w, bn_tensor **y, bn_tensor **gw)
{
    bn_set_num_threads(threads);
    *y = bn_conv2d(x, w, NULL, (bn_conv_opts){.padding = 1});
    bn_tensor *loss = bn_sum(bn_mul(*y, *y), BN_ALL, false);
    cr_assert_eq(bn_autograd_grad(&loss, NULL, 1, &w, 1, gw, (bn_backward_opts){0}), BN_OK, "%s",
                 bn_error_message());
}

Test(conv, results_and_gradients_are_the_same_on_one_and_two_threads)
{
    bn_scope_begin();
    bn_manual_seed(7);
    bn_tensor *x = bn_randn(BN_SHAPE(8, 16, 13, 13), BN_F32);
    bn_tensor *w = bn_randn(BN_SHAPE(32, 16, 3, 3), BN_F32);
    bn_set_requires_grad(w, true);
    int was = bn_num_threads();
    bn_tensor *y1, *y2, *g1, *g2;
    conv_on_threads(1, x, w, &y1, &g1);
    conv_on_threads(2, x, w, &y2, &g2);
    bn_set_num_threads(was);
    bnt_assert_equal(y1, y2, "forward on 1 vs 2 threads");
    bnt_assert_equal(g1, g2, "grad w on 1 vs 2 threads");
    bn_scope_end();
}

/* ---- against a plain reference ------------------------------------------------------------------ */
/* The obviously-correct direct convolution in double: x (N, C, H, W), w (O, C/G, KH, KW), b (O)
 * → out (N, O, OH, OW), all contiguous. */
static void reference_conv2d(const float *x, const float *w, const float *b, double *out,
                             const int64_t *xs, const int64_t *ws, int64_t s, int64_t p,
                             int64_t d, int64_t G, int64_t OH, int64_t OW)
{
    int64_t N = xs[0], C = xs[1], H = xs[2], W = xs[3], O = ws[0], Cg = ws[1], KH = ws[2],
            KW = ws[3], Og = O / G;
    for (int64_t n = 0; n < N; n++)
        for (int64_t o = 0; o < O; o++)
            for (int64_t oh = 0; oh < OH; oh++)
                for (int64_t ow = 0; ow < OW; ow++) {
                    double acc = b[o];
                    for (int64_t c = 0; c < Cg; c++)
                        for (int64_t kh = 0; kh < KH; kh++)
                            for (int64_t kw = 0; kw < KW; kw++) {
                                int64_t ih = oh * s - p + kh * d, iw = ow * s - p + kw * d;
                                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                                int64_t ci = (o / Og) * Cg + c;
                                acc += (double)x[((n * C + ci) * H + ih) * W + iw] *
                                       w[((o * Cg + c) * KH + kh) * KW + kw];
                            }
                    out[((n * O + o) * OH + oh) * OW + ow] = acc;
                }
}

Test(conv, conv2d_matches_a_direct_reference_on_larger_random_inputs)
{
    static const struct {
        int64_t x[4], w[4], s, p, d, g;
    } cases[] = {
        {{16, 6, 11, 10}, {8, 3, 3, 3}, 2, 1, 2, 2}, /* many images: one GEMM per thread */
        {{2, 16, 15, 17}, {32, 16, 3, 3}, 1, 1, 1, 1}, /* few large images: split GEMMs */
        {{64, 1, 28, 28}, {32, 1, 3, 3}, 1, 0, 1, 1}, /* the CNN's first layer */
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        bn_scope_begin();
        bn_manual_seed(3 + k);
        const int64_t *xs = cases[k].x, *ws = cases[k].w;
        bn_tensor *x = bn_randn(BN_SHAPE(xs[0], xs[1], xs[2], xs[3]), BN_F32);
        bn_tensor *w = bn_randn(BN_SHAPE(ws[0], ws[1], ws[2], ws[3]), BN_F32);
        bn_tensor *b = bn_randn(BN_SHAPE(ws[0]), BN_F32);
        bn_tensor *y = bn_conv2d(x, w, b,
                                 (bn_conv_opts){.stride = cases[k].s, .padding = cases[k].p,
                                                .dilation = cases[k].d, .groups = cases[k].g});
        cr_assert_not_null(y, "%s", bn_error_message());
        int64_t OH = bn_dim(y, 2), OW = bn_dim(y, 3), n = bn_numel(y);
        double *want = malloc(sizeof(double) * (size_t)n);
        reference_conv2d(bn_tensor_data_f32(x), bn_tensor_data_f32(w), bn_tensor_data_f32(b),
                         want, xs, ws, cases[k].s, cases[k].p, cases[k].d, cases[k].g, OH, OW);
        bnt_assert_values(y, want, n, 1e-4, "conv2d vs the direct reference");
        free(want);
        bn_scope_end();
    }
}

/* ---- finite differences (float64) ------------------------------------------------------------ */
typedef struct conv_fd {
    int kind;
    bn_conv_opts o;
    bool transpose_x; /* differentiate through a transposed view of the leaf x */
} conv_fd;

static bn_tensor *conv_fn(void *ctx, bn_tensor *const *in, int n)
{
    const conv_fd *c = ctx;
    const bn_tensor *x = c->transpose_x ? bn_transpose(in[0], -1, -2) : in[0];
    return run_conv(c->kind, x, in[1], n > 2 ? in[2] : NULL, c->o);
}

static void gradcheck_conv(const char *what, conv_fd c, bn_shape xs, bn_shape ws, int64_t nb)
{
    bn_manual_seed(11);
    bn_tensor *in[3] = {bnt_param(xs, -1, 1), bnt_param(ws, -1, 1),
                        nb ? bnt_param(BN_SHAPE(nb), -1, 1) : NULL};
    bnt_gradcheck(what, conv_fn, &c, in, nb ? 3 : 2);
    for (int i = 0; i < 3; i++) bn_release(in[i]);
}

Test(conv, conv2d_gradients_match_finite_differences)
{
    BNT_ASSERT_NO_LEAK({
        gradcheck_conv("conv2d stride 2 padding 1",
                       (conv_fd){2, {.stride = 2, .padding = 1}, false}, BN_SHAPE(2, 2, 5, 4),
                       BN_SHAPE(3, 2, 3, 3), 3);
        gradcheck_conv("conv2d groups 2 dilation 2",
                       (conv_fd){2, {.groups = 2, .dilation = 2, .padding = 1}, false},
                       BN_SHAPE(1, 4, 5, 5), BN_SHAPE(4, 2, 2, 3), 4);
        gradcheck_conv("conv2d same, unbatched", (conv_fd){2, {.same = true}, false},
                       BN_SHAPE(2, 4, 5), BN_SHAPE(2, 2, 2, 3), 2);
    });
}

Test(conv, conv2d_gradients_through_a_transposed_view_match_finite_differences)
{
    gradcheck_conv("conv2d of x^T", (conv_fd){2, {.padding = 1}, true}, BN_SHAPE(1, 2, 5, 4),
                   BN_SHAPE(2, 2, 3, 3), 0);
}

Test(conv, conv1d_and_conv_transpose2d_gradients_match_finite_differences)
{
    BNT_ASSERT_NO_LEAK({
        gradcheck_conv("conv1d stride 2", (conv_fd){1, {.stride = 2, .padding = 1}, false},
                       BN_SHAPE(2, 2, 7), BN_SHAPE(3, 2, 3), 3);
        gradcheck_conv("conv_transpose2d stride 2 output_padding 1",
                       (conv_fd){3, {.stride = 2, .padding = 1, .output_padding = 1}, false},
                       BN_SHAPE(1, 2, 3, 3), BN_SHAPE(2, 3, 3, 3), 3);
        gradcheck_conv("conv_transpose2d groups 2 dilation 2",
                       (conv_fd){3, {.groups = 2, .dilation = 2}, false}, BN_SHAPE(2, 4, 2, 3),
                       BN_SHAPE(4, 1, 2, 2), 2);
    });
}

Test(conv, second_derivative_is_refused_clearly)
{
    bn_scope_begin();
    bn_tensor *x = own(bnt_param(BN_SHAPE(1, 1, 4, 4), -1, 1));
    bn_tensor *w = own(bnt_param(BN_SHAPE(1, 1, 3, 3), -1, 1));
    bn_tensor *y = bn_sum(bn_conv2d(x, w, NULL, (bn_conv_opts){0}), BN_ALL, false);
    bn_tensor *g = NULL;
    cr_assert_neq(bn_autograd_grad(&y, NULL, 1, &x, 1, &g, (bn_backward_opts){.create_graph = true}),
                  BN_OK);
    bnt_assert_error(BN_ERR_UNSUPPORTED, "Conv2dBackward", "create_graph", NULL);
    bn_scope_end();
}

/* ---- errors ----------------------------------------------------------------------------------- */
static bn_tensor *zeros(bn_shape s, bn_dtype dt) { return bn_zeros(s, dt); }

Test(conv, null_arguments_are_reported)
{
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_tensor *x = zeros(BN_SHAPE(1, 1, 4, 4), BN_F32), *w = zeros(BN_SHAPE(1, 1, 3, 3), BN_F32);
        cr_assert_null(bn_conv2d(NULL, w, NULL, (bn_conv_opts){0}));
        bnt_assert_error(BN_ERR_ARG, "bn_conv2d", "x", NULL);
        cr_assert_null(bn_conv2d(x, NULL, NULL, (bn_conv_opts){0}));
        bnt_assert_error(BN_ERR_ARG, "bn_conv2d", "w", NULL);
        cr_assert_null(bn_conv1d(NULL, w, NULL, (bn_conv_opts){0}));
        bnt_assert_error(BN_ERR_ARG, "bn_conv1d", "x", NULL);
        cr_assert_null(bn_conv_transpose2d(x, NULL, NULL, (bn_conv_opts){0}));
        bnt_assert_error(BN_ERR_ARG, "bn_conv_transpose2d", "w", NULL);
        bn_scope_end();
    });
}

Test(conv, bad_dtypes_are_reported)
{
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_tensor *xi = zeros(BN_SHAPE(1, 1, 4, 4), BN_I32), *wi = zeros(BN_SHAPE(1, 1, 3, 3), BN_I32);
        cr_assert_null(bn_conv2d(xi, wi, NULL, (bn_conv_opts){0}));
        bnt_assert_error(BN_ERR_DTYPE, "bn_conv2d", "x is i32", NULL);
        bn_tensor *x = zeros(BN_SHAPE(1, 1, 4, 4), BN_F32), *w = zeros(BN_SHAPE(1, 1, 3, 3), BN_F64);
        cr_assert_null(bn_conv2d(x, w, NULL, (bn_conv_opts){0}));
        bnt_assert_error(BN_ERR_DTYPE, "bn_conv2d", "x is f32", "w is f64", NULL);
        bn_tensor *w32 = zeros(BN_SHAPE(1, 1, 3, 3), BN_F32), *b = zeros(BN_SHAPE(1), BN_F16);
        cr_assert_null(bn_conv_transpose2d(x, w32, b, (bn_conv_opts){0}));
        bnt_assert_error(BN_ERR_DTYPE, "bn_conv_transpose2d", "b is f16", NULL);
        bn_scope_end();
    });
}

Test(conv, bad_shapes_name_both_tensors)
{
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_tensor *x = zeros(BN_SHAPE(2, 3, 5, 5), BN_F32);
        cr_assert_null(bn_conv2d(zeros(BN_SHAPE(5, 5), BN_F32), zeros(BN_SHAPE(1, 1, 3, 3), BN_F32),
                                 NULL, (bn_conv_opts){0}));
        bnt_assert_error(BN_ERR_SHAPE, "bn_conv2d", "x must be", "[5, 5]", NULL);
        cr_assert_null(bn_conv2d(x, zeros(BN_SHAPE(4, 3, 3), BN_F32), NULL, (bn_conv_opts){0}));
        bnt_assert_error(BN_ERR_SHAPE, "bn_conv2d", "w must be", "[4, 3, 3]", NULL);
        cr_assert_null(bn_conv2d(x, zeros(BN_SHAPE(4, 2, 3, 3), BN_F32), NULL, (bn_conv_opts){0}));
        bnt_assert_error(BN_ERR_SHAPE, "bn_conv2d", "[2, 3, 5, 5]", "[4, 2, 3, 3]", "channels",
                         NULL);
        cr_assert_null(bn_conv2d(zeros(BN_SHAPE(1, 4, 5, 5), BN_F32),
                                 zeros(BN_SHAPE(3, 2, 3, 3), BN_F32), NULL,
                                 (bn_conv_opts){.groups = 2}));
        bnt_assert_error(BN_ERR_SHAPE, "bn_conv2d", "not divisible by groups 2", "[3, 2, 3, 3]",
                         NULL);
        cr_assert_null(bn_conv2d(x, zeros(BN_SHAPE(4, 3, 3, 3), BN_F32),
                                 zeros(BN_SHAPE(5), BN_F32), (bn_conv_opts){0}));
        bnt_assert_error(BN_ERR_SHAPE, "bn_conv2d", "b must be (4)", "[5]", NULL);
        cr_assert_null(bn_conv2d(x, zeros(BN_SHAPE(4, 3, 4, 4), BN_F32), NULL,
                                 (bn_conv_opts){.dilation = 3, .padding = 1}));
        bnt_assert_error(BN_ERR_SHAPE, "bn_conv2d", "larger than the padded input", "[4, 3, 4, 4]",
                         "[2, 3, 5, 5]", NULL);
        cr_assert_null(bn_conv1d(zeros(BN_SHAPE(2, 3, 5), BN_F32), zeros(BN_SHAPE(4, 2, 3), BN_F32),
                                 NULL, (bn_conv_opts){0}));
        bnt_assert_error(BN_ERR_SHAPE, "bn_conv1d", "[2, 3, 5]", "[4, 2, 3]", NULL);
        cr_assert_null(bn_conv_transpose2d(x, zeros(BN_SHAPE(4, 3, 3, 3), BN_F32), NULL,
                                           (bn_conv_opts){0}));
        bnt_assert_error(BN_ERR_SHAPE, "bn_conv_transpose2d", "[2, 3, 5, 5]", "[4, 3, 3, 3]", NULL);
        cr_assert_null(bn_conv_transpose2d(zeros(BN_SHAPE(1, 1, 1, 1), BN_F32),
                                           zeros(BN_SHAPE(1, 1, 1, 1), BN_F32), NULL,
                                           (bn_conv_opts){.padding = 1}));
        bnt_assert_error(BN_ERR_SHAPE, "bn_conv_transpose2d", "empty", NULL);
        bn_scope_end();
    });
}

Test(conv, bad_options_are_reported)
{
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_tensor *x = zeros(BN_SHAPE(1, 2, 6, 6), BN_F32), *w = zeros(BN_SHAPE(2, 2, 3, 3), BN_F32);
        cr_assert_null(bn_conv2d(x, w, NULL, (bn_conv_opts){.stride = -1}));
        bnt_assert_error(BN_ERR_ARG, "bn_conv2d", "stride -1", NULL);
        cr_assert_null(bn_conv2d(x, w, NULL, (bn_conv_opts){.padding = -2}));
        bnt_assert_error(BN_ERR_ARG, "bn_conv2d", "padding -2", NULL);
        cr_assert_null(bn_conv2d(x, w, NULL, (bn_conv_opts){.same = true, .stride = 2}));
        bnt_assert_error(BN_ERR_ARG, "bn_conv2d", "same", "stride 2", NULL);
        cr_assert_null(bn_conv2d(x, w, NULL, (bn_conv_opts){.output_padding = 1}));
        bnt_assert_error(BN_ERR_ARG, "bn_conv2d", "output_padding 1", NULL);
        cr_assert_null(bn_conv_transpose2d(x, w, NULL, (bn_conv_opts){.output_padding = 1}));
        bnt_assert_error(BN_ERR_ARG, "bn_conv_transpose2d", "output_padding 1", "stride 1", NULL);
        cr_assert_null(bn_conv_transpose2d(x, w, NULL, (bn_conv_opts){.same = true}));
        bnt_assert_error(BN_ERR_ARG, "bn_conv_transpose2d", "same", NULL);
        cr_assert_null(bn_conv1d(zeros(BN_SHAPE(2, 4), BN_F32), zeros(BN_SHAPE(1, 2, 2), BN_F32),
                                 NULL, (bn_conv_opts){.groups = -1}));
        bnt_assert_error(BN_ERR_ARG, "bn_conv1d", "groups -1", NULL);
        bn_scope_end();
    });
}

Test(conv, an_earlier_error_propagates_through_a_null_input)
{
    bn_scope_begin();
    bn_tensor *bad = bn_reshape(bn_zeros(BN_SHAPE(4), BN_F32), BN_SHAPE(3));
    cr_assert_null(bad);
    cr_assert_null(bn_conv2d(bad, bn_zeros(BN_SHAPE(1, 1, 1, 1), BN_F32), NULL, (bn_conv_opts){0}));
    bnt_assert_error(BN_ERR_SHAPE, "bn_reshape", NULL);
    bn_scope_end();
}
