/* tests/unit/test_conv_fast.c — the CPU convolution's fast paths (ops/conv.c, backend/cpu/conv.c):
 * the channels-first blocks taken by images of at most 256 output positions and the per-image
 * GEMMs taken above, the col2im kernel for rows contiguous along W, blocks of near-equal size,
 * the bias gradient summed over the spatial dims first, and the SSE2 rows of the 2x2 max pool
 * (backend/cpu/pool.c). Each path against PyTorch
 * (tests/data/conv_fast.txt, made by scripts/gen_conv_fast.py), against a direct float64
 * reference on inputs large enough for several blocks, with float64 finite differences, and
 * with the same bits on one and two threads. */
#include "bn_test.h"

#include "born/autograd.h"
#include "born/info.h"
#include "core/internal.h"

#include <stdlib.h>
#include <string.h>

/* Registers t with the open scope, like a tensor an op returned. */
static bn_tensor *own(bn_tensor *t) { return bn__out(t); }

static bn_tensor *run_conv(int kind, const bn_tensor *x, const bn_tensor *w, const bn_tensor *b,
                           bn_conv_opts o)
{
    switch (kind) {
    case 1: return bn_conv1d(x, w, b, o);
    case 2: return bn_conv2d(x, w, b, o);
    default: return bn_conv_transpose2d(x, w, b, o);
    }
}

/* ---- against PyTorch ------------------------------------------------------------------------ */
static void check_close(const bn_tensor *got, const bn_tensor *want, const char *cs,
                        const char *what)
{
    char label[160];
    snprintf(label, sizeof label, "%s: %s", cs, what);
    cr_assert_not_null(got, "%s is missing: %s", label, bn_error_message());
    double tol = bn_dtype_of(want) == BN_F64 ? 1e-10 : 1e-4;
    bnt_assert_close(got, want, tol, tol, label);
}

/* Case cs: the forward result and the gradients of sum(out * gout) match torch's. */
static void check_case(const char *cs)
{
    fx_file *f = fx_open("conv_fast.txt");
    bn_scope_begin();
    bn_tensor *x = own(fx_tensor(f, cs, "x"));
    bn_tensor *w = own(fx_tensor(f, cs, "w"));
    bn_tensor *b = strstr(cs, "no_bias") ? NULL : own(fx_tensor(f, cs, "b"));
    cr_assert_eq(bn_set_requires_grad(x, true), BN_OK);
    cr_assert_eq(bn_set_requires_grad(w, true), BN_OK);
    if (b) cr_assert_eq(bn_set_requires_grad(b, true), BN_OK);
    bn_conv_opts o = {
        .stride = (int64_t)fx_scalar(f, cs, "stride"),
        .padding = (int64_t)fx_scalar(f, cs, "padding"),
        .dilation = (int64_t)fx_scalar(f, cs, "dilation"),
        .groups = (int64_t)fx_scalar(f, cs, "groups"),
        .output_padding = (int64_t)fx_scalar(f, cs, "output_padding"),
    };
    bn_tensor *out = run_conv((int)fx_scalar(f, cs, "kind"), x, w, b, o);
    check_close(out, own(fx_tensor(f, cs, "out")), cs, "forward");
    bn_tensor *gout = own(fx_tensor(f, cs, "gout"));
    cr_assert_eq(bn_backward_ex(out, (bn_backward_opts){.grad = gout}), BN_OK, "%s: %s", cs,
                 bn_error_message());
    check_close(bn_grad(x), own(fx_tensor(f, cs, "gx")), cs, "grad x");
    check_close(bn_grad(w), own(fx_tensor(f, cs, "gw")), cs, "grad w");
    if (b) check_close(bn_grad(b), own(fx_tensor(f, cs, "gb")), cs, "grad b");
    bn_scope_end();
    fx_close(f);
}

#define FAST_CASE(test_name, case_name)                                                            \
    Test(conv_fast, test_name) { BNT_ASSERT_NO_LEAK(check_case(case_name)); }

FAST_CASE(channels_first_stride_1_padding_1_matches_torch, "cf_stride1_padding1")
FAST_CASE(channels_first_dilation_and_groups_match_torch, "cf_dilation2_groups2")
FAST_CASE(channels_first_stride_2_matches_torch, "cf_stride2")
FAST_CASE(channels_first_depthwise_without_bias_matches_torch, "cf_depthwise_no_bias")
FAST_CASE(channels_first_non_square_kernel_matches_torch, "cf_nonsquare_kernel")
FAST_CASE(channels_first_at_exactly_256_positions_matches_torch, "cf_exactly_256_positions")
FAST_CASE(channels_first_f64_matches_torch, "cf_f64")
FAST_CASE(channels_first_conv1d_matches_torch, "cf_conv1d")
FAST_CASE(channels_first_conv_transpose2d_matches_torch, "cf_conv_transpose2d")
FAST_CASE(channels_first_conv_transpose2d_stride_2_matches_torch, "cf_conv_transpose2d_stride2")
FAST_CASE(per_image_at_257_positions_matches_torch, "per_image_257_positions")
FAST_CASE(per_image_padding_1_matches_torch, "per_image_padding1")
FAST_CASE(per_image_stride_dilation_and_groups_match_torch, "per_image_stride2_dilation2_groups2")
FAST_CASE(per_image_one_input_channel_matches_torch, "per_image_one_input_channel")
FAST_CASE(per_image_f64_matches_torch, "per_image_f64")
FAST_CASE(per_image_conv1d_matches_torch, "per_image_conv1d")
FAST_CASE(per_image_conv_transpose2d_matches_torch, "per_image_conv_transpose2d")

/* ---- 2x2 max pooling: the vectorised rows ------------------------------------------------- */
/* Case cs: windows of small integers (ties everywhere), NaN and -inf: the values and, through
 * the gradient, the element each index names match torch's exactly; without grad (no indices)
 * the values too. */
static void check_pool_case(const char *cs)
{
    fx_file *f = fx_open("conv_fast.txt");
    bn_scope_begin();
    bn_tensor *x = own(fx_tensor(f, cs, "x"));
    bn_tensor *want = own(fx_tensor(f, cs, "out"));
    bn_no_grad_begin();
    bnt_assert_close(bn_max_pool2d(x, 2, (bn_pool_opts){0}), want, 0, 0, "no-grad forward");
    bn_no_grad_end();
    cr_assert_eq(bn_set_requires_grad(x, true), BN_OK);
    bn_tensor *out = bn_max_pool2d(x, 2, (bn_pool_opts){0});
    bnt_assert_close(out, want, 0, 0, "forward");
    cr_assert_eq(bn_backward_ex(out, (bn_backward_opts){.grad = own(fx_tensor(f, cs, "gout"))}),
                 BN_OK, "%s", bn_error_message());
    bnt_assert_close(bn_grad(x), own(fx_tensor(f, cs, "gx")), 0, 0, "grad x (the indices)");
    bn_scope_end();
    fx_close(f);
}

Test(conv_fast, max_pool_2x2_of_the_cnns_first_layer_picks_torchs_elements)
{
    BNT_ASSERT_NO_LEAK(check_pool_case("pool_26x26"));
}

Test(conv_fast, max_pool_2x2_of_an_odd_size_picks_torchs_elements)
{
    BNT_ASSERT_NO_LEAK(check_pool_case("pool_11x11"));
}

Test(conv_fast, max_pool_2x2_with_a_vector_body_and_a_tail_picks_torchs_elements)
{
    BNT_ASSERT_NO_LEAK(check_pool_case("pool_10x13"));
}

/* ---- against a direct reference, several blocks -------------------------------------------- */
typedef struct geom {
    int64_t N, C, H, W, O, Cg, KH, KW, s, p, d, G, OH, OW;
} geom;

static int64_t xi(const geom *g, int64_t n, int64_t c, int64_t h, int64_t w)
{
    return ((n * g->C + c) * g->H + h) * g->W + w;
}

/* The obviously-correct direct convolution and its three gradients in double, for an upstream
 * gradient gy: y = conv(x, w) + b, gx, gw, gb of sum(y * gy). All contiguous. */
static void reference(const geom *g, const float *x, const float *w, const float *b,
                      const float *gy, double *y, double *gx, double *gw, double *gb)
{
    int64_t Og = g->O / g->G, KK = g->KH * g->KW;
    memset(gx, 0, sizeof(double) * (size_t)(g->N * g->C * g->H * g->W));
    memset(gw, 0, sizeof(double) * (size_t)(g->O * g->Cg * KK));
    memset(gb, 0, sizeof(double) * (size_t)g->O);
    for (int64_t n = 0; n < g->N; n++)
        for (int64_t o = 0; o < g->O; o++)
            for (int64_t oh = 0; oh < g->OH; oh++)
                for (int64_t ow = 0; ow < g->OW; ow++) {
                    int64_t yi = ((n * g->O + o) * g->OH + oh) * g->OW + ow;
                    double acc = b[o], up = gy[yi];
                    gb[o] += up;
                    for (int64_t c = 0; c < g->Cg; c++)
                        for (int64_t kh = 0; kh < g->KH; kh++)
                            for (int64_t kw = 0; kw < g->KW; kw++) {
                                int64_t ih = oh * g->s - g->p + kh * g->d,
                                        iw = ow * g->s - g->p + kw * g->d;
                                if (ih < 0 || ih >= g->H || iw < 0 || iw >= g->W) continue;
                                int64_t at = xi(g, n, (o / Og) * g->Cg + c, ih, iw),
                                        wi = (o * g->Cg + c) * KK + kh * g->KW + kw;
                                acc += (double)x[at] * w[wi];
                                gx[at] += up * w[wi];
                                gw[wi] += up * x[at];
                            }
                    y[yi] = acc;
                }
}

/* conv2d of random inputs and its gradients against the reference. */
static void check_against_reference(geom g)
{
    bn_scope_begin();
    bn_manual_seed((uint64_t)(g.N * 31 + g.C));
    bn_tensor *x = bn_randn(BN_SHAPE(g.N, g.C, g.H, g.W), BN_F32);
    bn_tensor *w = bn_randn(BN_SHAPE(g.O, g.Cg, g.KH, g.KW), BN_F32);
    bn_tensor *b = bn_randn(BN_SHAPE(g.O), BN_F32);
    bn_set_requires_grad(x, true);
    bn_set_requires_grad(w, true);
    bn_set_requires_grad(b, true);
    bn_tensor *y = bn_conv2d(x, w, b,
                             (bn_conv_opts){.stride = g.s, .padding = g.p, .dilation = g.d,
                                            .groups = g.G});
    cr_assert_not_null(y, "%s", bn_error_message());
    g.OH = bn_dim(y, 2), g.OW = bn_dim(y, 3);
    bn_tensor *gy = bn_randn(bn_shape_of(y), BN_F32);
    bn_tensor *in[3] = {x, w, b}, *grads[3] = {0};
    cr_assert_eq(bn_autograd_grad(&y, &gy, 1, in, 3, grads, (bn_backward_opts){0}), BN_OK, "%s",
                 bn_error_message());
    int64_t ny = bn_numel(y), nx = bn_numel(x), nw = bn_numel(w);
    double *want = malloc(sizeof(double) * (size_t)(ny + nx + nw + g.O));
    cr_assert_not_null(want);
    reference(&g, bn_tensor_data_f32(x), bn_tensor_data_f32(w), bn_tensor_data_f32(b),
              bn_tensor_data_f32(gy), want, want + ny, want + ny + nx, want + ny + nx + nw);
    /* sums of up to a few thousand f32 products: relative 1e-4 of their size */
    bnt_assert_values(y, want, ny, 2e-4, "forward vs the direct reference");
    bnt_assert_values(grads[0], want + ny, nx, 2e-4, "grad x vs the direct reference");
    bnt_assert_values(grads[1], want + ny + nx, nw, 2e-3, "grad w vs the direct reference");
    bnt_assert_values(grads[2], want + ny + nx + nw, g.O, 2e-3, "grad b vs the direct reference");
    free(want);
    bn_scope_end();
}

Test(conv_fast, channels_first_over_several_blocks_matches_a_direct_reference)
{
    /* 9 images of 576 x 256 columns (590 KB each): two blocks of 5 and 4 images */
    check_against_reference((geom){.N = 9, .C = 64, .H = 16, .W = 16, .O = 16, .Cg = 64,
                                   .KH = 3, .KW = 3, .s = 1, .p = 1, .d = 1, .G = 1});
}

Test(conv_fast, per_image_over_several_blocks_with_groups_matches_a_direct_reference)
{
    /* 12 images of 144 x 400 columns per group pair (460 KB each): two blocks of 6 */
    check_against_reference((geom){.N = 12, .C = 32, .H = 20, .W = 20, .O = 8, .Cg = 16,
                                   .KH = 3, .KW = 3, .s = 1, .p = 1, .d = 1, .G = 2});
}

Test(conv_fast, channels_first_strided_and_dilated_over_several_blocks_matches_a_reference)
{
    check_against_reference((geom){.N = 7, .C = 96, .H = 23, .W = 21, .O = 12, .Cg = 96,
                                   .KH = 3, .KW = 3, .s = 2, .p = 2, .d = 2, .G = 1});
}

/* ---- the same bits on one and two threads --------------------------------------------------- */
static void conv_on_threads(int threads, bn_tensor *x, bn_tensor *w, bn_tensor *b,
                            bn_tensor **out)
{
    bn_set_num_threads(threads);
    bn_tensor *y = bn_conv2d(x, w, b, (bn_conv_opts){.padding = 1});
    cr_assert_not_null(y, "%s", bn_error_message());
    bn_tensor *loss = bn_sum(bn_mul(y, y), BN_ALL, false);
    bn_tensor *in[3] = {x, w, b};
    cr_assert_eq(bn_autograd_grad(&loss, NULL, 1, in, 3, out + 1, (bn_backward_opts){0}), BN_OK,
                 "%s", bn_error_message());
    out[0] = y;
}

static void check_threads(bn_shape xs, bn_shape ws)
{
    bn_scope_begin();
    bn_manual_seed(5);
    bn_tensor *x = bn_randn(xs, BN_F32), *w = bn_randn(ws, BN_F32);
    bn_tensor *b = bn_randn(BN_SHAPE(ws.dims[0]), BN_F32);
    bn_set_requires_grad(x, true);
    bn_set_requires_grad(w, true);
    bn_set_requires_grad(b, true);
    int was = bn_num_threads();
    bn_tensor *one[4], *two[4];
    conv_on_threads(1, x, w, b, one);
    conv_on_threads(2, x, w, b, two);
    bn_set_num_threads(was);
    static const char *const what[4] = {"forward", "grad x", "grad w", "grad b"};
    for (int i = 0; i < 4; i++) bnt_assert_equal(one[i], two[i], what[i]);
    bn_scope_end();
}

Test(conv_fast, channels_first_gives_the_same_bits_on_one_and_two_threads)
{
    /* the CNN's second layer, several blocks */
    check_threads(BN_SHAPE(64, 32, 13, 13), BN_SHAPE(64, 32, 3, 3));
}

Test(conv_fast, per_image_gives_the_same_bits_on_one_and_two_threads)
{
    check_threads(BN_SHAPE(12, 4, 26, 26), BN_SHAPE(8, 4, 3, 3));
}

/* ---- finite differences (float64) ----------------------------------------------------------- */
typedef struct fd_ctx {
    int kind;
    bn_conv_opts o;
} fd_ctx;

static bn_tensor *conv_fn(void *ctx, bn_tensor *const *in, int n)
{
    const fd_ctx *c = ctx;
    return run_conv(c->kind, in[0], in[1], n > 2 ? in[2] : NULL, c->o);
}

static void gradcheck(const char *what, fd_ctx c, bn_shape xs, bn_shape ws, int64_t nb)
{
    bn_manual_seed(13);
    bn_tensor *in[3] = {bnt_param(xs, -1, 1), bnt_param(ws, -1, 1),
                        nb ? bnt_param(BN_SHAPE(nb), -1, 1) : NULL};
    bnt_gradcheck(what, conv_fn, &c, in, nb ? 3 : 2);
    for (int i = 0; i < 3; i++) bn_release(in[i]);
}

Test(conv_fast, channels_first_gradients_match_finite_differences)
{
    BNT_ASSERT_NO_LEAK({
        gradcheck("cf, stride 1, padding 1, dilation 2 (col2im along rows)",
                  (fd_ctx){2, {.padding = 1, .dilation = 2}}, BN_SHAPE(2, 2, 6, 5),
                  BN_SHAPE(3, 2, 2, 3), 3);
        gradcheck("cf, stride 2, groups 2 (general col2im)",
                  (fd_ctx){2, {.stride = 2, .padding = 1, .groups = 2}}, BN_SHAPE(2, 4, 5, 6),
                  BN_SHAPE(2, 2, 3, 3), 2);
        gradcheck("cf, conv_transpose2d", (fd_ctx){3, {.padding = 1}}, BN_SHAPE(1, 2, 4, 3),
                  BN_SHAPE(2, 3, 3, 3), 3);
    });
}

Test(conv_fast, per_image_gradients_match_finite_differences)
{
    BNT_ASSERT_NO_LEAK({
        /* 17 x 16 = 272 output positions per image */
        gradcheck("per image, padding 1", (fd_ctx){2, {.padding = 1}}, BN_SHAPE(1, 1, 17, 16),
                  BN_SHAPE(2, 1, 3, 3), 2);
        gradcheck("per image, conv1d", (fd_ctx){1, {.padding = 1}}, BN_SHAPE(2, 1, 280),
                  BN_SHAPE(1, 1, 3), 1);
    });
}
