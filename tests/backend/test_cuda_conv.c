/* tests/backend/test_cuda_conv.c — the CUDA plugin's convolution and pooling family
 * (src/backend_cuda/cuda_conv*.{c,cu}) against the CPU backend: im2col / col2im through the
 * backend slots, bit for bit, in every cols layout ops/conv.c uses and past 2^31 elements;
 * bn_conv1d / bn_conv2d (stride, padding, dilation, groups, bias) and bn_conv_transpose2d,
 * forward and the gradients of x, w and b through autograd, on strided and contiguous inputs in
 * every float dtype; every pool (max with and without indices, NaN and ties; average with both
 * divisors, padding and ceil_mode; adaptive with non-divisible sizes), forward and backward;
 * the Fashion-MNIST CNN (bn_model_build("cnn")) forward and backward moved to the GPU; clear
 * errors for bad input. Without a GPU every device test skips. No fixture files: the CPU backend
 * is the reference (it is checked against PyTorch in tests/unit/test_conv.c and test_pool.c).
 * Tolerances: relative, plus absolute scaled by the largest expected magnitude: f32 1e-5, f64
 * 1e-12, f16 2e-3, bf16 1.6e-2 (the GEMMs sum in another order); the data-movement and pooling
 * kernels add in the CPU's order, so their f32/f64 results must be identical. */
#include "bn_test.h"
#include "bn_test_cuda.h"

#include "backend/backend.h"
#include "backend/backend_conv.h"
#include "born/autograd.h"
#include "born/cuda.h"
#include "born/nn.h"
#include "born/train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


static const bn_dtype float_types[] = {BN_F32, BN_F64, BN_F16, BN_BF16};

static double tol_of(bn_dtype dt)
{
    switch (dt) {
    case BN_F32: return 1e-5;
    case BN_F64: return 1e-12;
    case BN_F16: return 2e-3;
    default: return 1.6e-2;
    }
}

/* the largest finite |t| (0 for none) */
static double max_abs(const bn_tensor *t)
{
    int64_t n = bn_numel(t);
    if (n <= 0) return 0;
    double *v = malloc((size_t)n * sizeof *v), m = 0;
    cr_assert_not_null(v);
    bn_tensor *h = bn_contiguous(cpu(bn_to_dtype(t, BN_F64)));
    cr_assert_eq(bn_copy_to_host(h, v, (size_t)n * sizeof *v), BN_OK, "%s", bn_error_message());
    for (int64_t i = 0; i < n; i++)
        if (isfinite(v[i]) && fabs(v[i]) > m) m = fabs(v[i]);
    free(v);
    return m;
}

/* got (on the GPU) is want (on the CPU) within tol relative and tol * max|want| absolute */
static void expect_near(const bn_tensor *got, const bn_tensor *want, double tol, const char *what)
{
    cr_assert_not_null(want, "%s on the CPU: %s", what, bn_error_message());
    cr_assert_not_null(got, "%s on the GPU: %s", what, bn_error_message());
    cr_assert_eq(bn_device_of(got).type, BN_DEVICE_CUDA, "%s: result not on the GPU", what);
    bnt_assert_close(cpu(got), want, tol, tol * max_abs(want), what);
}

/* A fresh contiguous leaf copy of t on d that requires grad (owned by the open scope). */
static bn_tensor *leaf_on(const bn_tensor *t, bn_device d)
{
    bn_tensor *c = bn_clone(bn_tensor_to(t, d));
    cr_assert_not_null(c, "leaf: %s", bn_error_message());
    cr_assert_eq(bn_set_requires_grad(c, true), BN_OK);
    return c;
}

/* sum(y * r) backward; r is made from y's shape on first use (uniform [-1, 1), y's dtype) */
static void backward_weighted(bn_tensor *y, bn_tensor **r, bn_device d, const char *what)
{
    if (!*r) *r = rand_in(bn_shape_of(y), -1, 1, bn_dtype_of(y));
    bn_tensor *loss = bn_sum(bn_mul(y, bn_tensor_to(*r, d)), BN_ALL, false);
    cr_assert_not_null(loss, "%s: loss: %s", what, bn_error_message());
    cr_assert_eq(bn_backward(loss), BN_OK, "%s: backward: %s", what, bn_error_message());
}

/* ---- im2col / col2im through the backend slots ---------------------------------------------- */
static const bn_backend_conv *gpu_conv(void)
{
    const bn_backend *gb = bn__backend("test", bn_cuda(0));
    cr_assert_not_null(gb, "%s", bn_error_message());
    cr_assert_not_null(gb->conv, "the CUDA backend has no conv table (cuda_backend.c: "
                                 ".conv = &bcu_conv)");
    return gb->conv;
}

/* The geometry of a convolution of an (N, C, H, W) image with a KH x KW kernel. */
static bn_window_geom conv_geom(int64_t N, int64_t C, int64_t H, int64_t W, int64_t KH,
                                int64_t KW, int64_t s, int64_t p, int64_t d)
{
    bn_window_geom g = {.N = N, .C = C, .H = H, .W = W, .KH = KH, .KW = KW, .stride_h = s,
                        .stride_w = s, .pad_h = p, .pad_w = p, .dil_h = d, .dil_w = d};
    g.OH = (H + 2 * p - d * (KH - 1) - 1) / s + 1;
    g.OW = (W + 2 * p - d * (KW - 1) - 1) / s + 1;
    return g;
}

/* t's flat buffer seen as (d0, d1, d2) with strides (s0, s1, s2) */
static bn_tview view3(const bn_tensor *t, int64_t d0, int64_t d1, int64_t d2, int64_t s0,
                      int64_t s1, int64_t s2)
{
    bn_tview v = bn__tview(t);
    v.ndim = 3;
    v.shape[0] = d0, v.shape[1] = d1, v.shape[2] = d2;
    v.strides[0] = s0, v.strides[1] = s1, v.strides[2] = s2;
    return v;
}

Test(cuda_conv, im2col_and_col2im_match_cpu_bit_for_bit_in_every_layout)
{
    NEED_GPU();
    const bn_backend_conv *gc = gpu_conv(), *cc = bn__cpu_backend()->conv;
    /* N, C, H, W, KH, KW, stride, padding, dilation */
    static const int64_t geoms[][9] = {
        {2, 3, 9, 8, 3, 3, 1, 0, 1},   {3, 2, 10, 11, 3, 2, 2, 1, 1}, {2, 2, 12, 9, 3, 3, 1, 2, 2},
        {1, 4, 7, 7, 1, 1, 1, 0, 1},   {2, 1, 5, 6, 5, 5, 1, 2, 1},   {4, 1, 28, 28, 3, 3, 1, 0, 1},
        {3, 32, 13, 13, 3, 3, 1, 0, 1}, {2, 3, 17, 15, 4, 3, 3, 3, 2}, {0, 3, 5, 5, 3, 3, 1, 1, 1},
    };
    BNT_ASSERT_NO_LEAK({
        for (size_t gi = 0; gi < sizeof geoms / sizeof geoms[0]; gi++) {
            for (int k = 0; k < 2; k++) {
                bn_scope_begin();
                bn_dtype dt = float_types[k];
                const int64_t *q = geoms[gi];
                bn_window_geom g = conv_geom(q[0], q[1], q[2], q[3], q[4], q[5], q[6], q[7], q[8]);
                int64_t CKK = g.C * g.KH * g.KW, L = g.OH * g.OW, total = g.N * CKK * L;
                /* x strided: a transposed (N, C, W, H) */
                bn_tensor *xb = rand_in(BN_SHAPE(g.N, g.C, g.W, g.H), -1, 1, dt);
                bn_tensor *xc = bn_transpose(xb, 2, 3), *xg = bn_transpose(gpu(xb), 2, 3);
                bn_tview xcv = bn__tview(xc), xgv = bn__tview(xg);
                char what[96];
                for (int layout = 0; layout < 2; layout++) {
                    /* 0: per image (N, CKK, L) contiguous; 1: the weight gradient's (L, N*L, 1) */
                    int64_t s0 = layout ? L : CKK * L, s1 = layout ? g.N * L : L;
                    bn_tensor *cc_buf = bn_full(BN_SHAPE(total + 3), 7.0, dt);
                    bn_tensor *gc_buf = gpu(cc_buf);
                    bn_tview cv = view3(cc_buf, g.N, CKK, L, s0, s1, 1);
                    bn_tview gv = view3(gc_buf, g.N, CKK, L, s0, s1, 1);
                    cr_assert_eq(cc->im2col(&xcv, &cv, &g), BN_OK);
                    cr_assert_eq(gc->im2col(&xgv, &gv, &g), BN_OK, "%s", bn_error_message());
                    snprintf(what, sizeof what, "im2col geometry %zu %s layout %d", gi,
                             bn_dtype_name(dt), layout);
                    bnt_assert_equal(cpu(gc_buf), cc_buf, what);
                    /* col2im of random columns in the same layout into a contiguous image */
                    bn_tensor *cols = rand_in(BN_SHAPE(total + 3), -1, 1, dt), *gcols = gpu(cols);
                    cv = view3(cols, g.N, CKK, L, s0, s1, 1);
                    gv = view3(gcols, g.N, CKK, L, s0, s1, 1);
                    bn_tensor *img = bn_full(BN_SHAPE(g.N, g.C, g.H, g.W), 7.0, dt);
                    bn_tensor *gimg = gpu(img);
                    bn_tview iv = bn__tview(img), giv = bn__tview(gimg);
                    cr_assert_eq(cc->col2im(&cv, &iv, &g), BN_OK);
                    cr_assert_eq(gc->col2im(&gv, &giv, &g), BN_OK, "%s", bn_error_message());
                    snprintf(what, sizeof what, "col2im geometry %zu %s layout %d", gi,
                             bn_dtype_name(dt), layout);
                    bnt_assert_equal(cpu(gimg), img, what);
                }
                bn_scope_end();
            }
        }
    });
}

/* cols of a 2048 x 2048 image and a 23 x 23 kernel: 529 x 2026^2 = 2,171,417,044 elements, past
 * 2^31 (8.7 GB of f32): the kernels' 64-bit index path and offsets. */
Test(cuda_conv, im2col_and_col2im_handle_more_than_2_31_elements, .timeout = 300)
{
    NEED_GPU();
    const bn_backend_conv *gc = gpu_conv();
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        const int64_t S = 2048, K = 23, O = S - K + 1, KK = K * K;
        /* small integers, so col2im's sums are exact whatever their order */
        bn_tensor *x = bn_to_dtype(bn_randint(0, 8, BN_SHAPE(1, 1, S, S), BN_I32), BN_F32);
        bn_tensor *xg = gpu(x);
        int64_t cshape[3] = {1, KK, O * O};
        bn_tensor *cols = bn__empty(cshape, 3, BN_F32, bn_cuda(0));
        if (!cols) {
            bn_error_clear();
            bn_scope_end();
            cr_skip_test("not enough GPU memory for 8.7 GB of columns");
        }
        bn__out(cols);
        bn_window_geom g = conv_geom(1, 1, S, S, K, K, 1, 0, 1);
        bn_tview xv = bn__tview(xg), cv = bn__tview(cols);
        cr_assert_eq(gc->im2col(&xv, &cv, &g), BN_OK, "%s", bn_error_message());
        const int64_t rows[] = {0, 253, KK - 1}; /* the last row lies wholly past 2^31 */
        for (int r = 0; r < 3; r++) {
            int64_t kh = rows[r] / K, kw = rows[r] % K;
            bn_tensor *got = bn_reshape(bn_slice(cols, 1, rows[r], rows[r] + 1, 1), BN_SHAPE(O, O));
            bn_tensor *want = bn_reshape(
                bn_contiguous(bn_slice(bn_slice(x, 2, kh, kh + O, 1), 3, kw, kw + O, 1)),
                BN_SHAPE(O, O));
            char what[64];
            snprintf(what, sizeof what, "im2col row %lld", (long long)rows[r]);
            bnt_assert_equal(cpu(got), want, what);
        }
        /* col2im: each pixel is x times the windows covering it along H and along W */
        bn_tensor *back = bn__out(bn__empty((int64_t[]){1, 1, S, S}, 4, BN_F32, bn_cuda(0)));
        bn_tview bv = bn__tview(back);
        cr_assert_eq(gc->col2im(&cv, &bv, &g), BN_OK, "%s", bn_error_message());
        float *cover = malloc((size_t)S * sizeof *cover);
        cr_assert_not_null(cover);
        for (int64_t i = 0; i < S; i++) {
            int64_t lo = i - (K - 1) < 0 ? 0 : i - (K - 1), hi = i < O - 1 ? i : O - 1;
            cover[i] = (float)(hi - lo + 1);
        }
        bn_tensor *ch = bn_reshape(bn_from_data(cover, BN_SHAPE(S), BN_F32), BN_SHAPE(S, 1));
        bn_tensor *cw = bn_from_data(cover, BN_SHAPE(S), BN_F32);
        free(cover);
        bnt_assert_equal(cpu(back), bn_mul(bn_mul(x, ch), cw), "col2im past 2^31");
        bn_scope_end();
        cr_assert_eq(bn_cuda_empty_cache(0), BN_OK); /* give the 8.7 GB back */
    });
}

/* ---- convolutions: forward and gradients ---------------------------------------------------- */
typedef enum conv_kind { CONV1D, CONV2D, CONV_T2D } conv_kind;

typedef struct conv_case {
    int64_t N, C, H, W, O, KH, KW;
    bn_conv_opts o;
    bool bias, strided;
} conv_case;

static bn_tensor *conv_call(conv_kind k, const bn_tensor *x, const bn_tensor *w,
                            const bn_tensor *b, bn_conv_opts o)
{
    switch (k) {
    case CONV1D: return bn_conv1d(x, w, b, o);
    case CONV2D: return bn_conv2d(x, w, b, o);
    default: return bn_conv_transpose2d(x, w, b, o);
    }
}

typedef struct conv_result {
    bn_tensor *y, *gx, *gw, *gb;
} conv_result;

/* The convolution on device d from the CPU tensors (x_base transposed in its last two dims when
 * strided) and the gradients of sum(y * r). */
static conv_result run_conv(conv_kind k, const conv_case *c, const bn_tensor *x_base,
                            const bn_tensor *w, const bn_tensor *b, bn_tensor **r, bn_device d)
{
    conv_result out = {0};
    bn_tensor *xl = leaf_on(x_base, d), *wl = leaf_on(w, d), *bl = b ? leaf_on(b, d) : NULL;
    bn_tensor *x = c->strided ? bn_transpose(xl, -1, -2) : xl;
    out.y = conv_call(k, x, wl, bl, c->o);
    cr_assert_not_null(out.y, "conv on %s: %s", d.type == BN_DEVICE_CUDA ? "cuda" : "cpu",
                       bn_error_message());
    backward_weighted(out.y, r, d, "conv");
    out.gx = bn_grad(xl);
    out.gw = bn_grad(wl);
    out.gb = bl ? bn_grad(bl) : NULL;
    return out;
}

static void check_conv_case(conv_kind k, const conv_case *c, bn_dtype dt, int index)
{
    static const char *const names[] = {"conv1d", "conv2d", "conv_transpose2d"};
    int64_t G = c->o.groups ? c->o.groups : 1;
    bn_shape xs = k == CONV1D ? (c->strided ? BN_SHAPE(c->N, c->W, c->C) : BN_SHAPE(c->N, c->C, c->W))
                  : c->strided ? BN_SHAPE(c->N, c->C, c->W, c->H)
                               : BN_SHAPE(c->N, c->C, c->H, c->W);
    bn_shape ws = k == CONV1D   ? BN_SHAPE(c->O, c->C / G, c->KW)
                  : k == CONV2D ? BN_SHAPE(c->O, c->C / G, c->KH, c->KW)
                                : BN_SHAPE(c->C, c->O / G, c->KH, c->KW);
    bn_tensor *x = rand_in(xs, -1, 1, dt), *w = rand_in(ws, -1, 1, dt);
    bn_tensor *b = c->bias ? rand_in(BN_SHAPE(c->O), -1, 1, dt) : NULL, *r = NULL;
    conv_result want = run_conv(k, c, x, w, b, &r, bn_cpu());
    conv_result got = run_conv(k, c, x, w, b, &r, bn_cuda(0));
    double tol = tol_of(dt);
    char what[96];
#define CMP(FIELD, LABEL)                                                                          \
    snprintf(what, sizeof what, "%s case %d %s: %s", names[k], index, bn_dtype_name(dt), LABEL);  \
    expect_near(got.FIELD, want.FIELD, tol, what)
    CMP(y, "forward");
    CMP(gx, "grad x");
    CMP(gw, "grad w");
    if (c->bias) {
        CMP(gb, "grad b");
    }
#undef CMP
}

Test(cuda_conv, conv2d_matches_cpu_forward_and_gradients)
{
    NEED_GPU();
    static const conv_case cases[] = {
        {2, 3, 9, 8, 4, 3, 3, {0}, true, false},
        {3, 4, 10, 11, 6, 3, 2, {.stride = 2, .padding = 1, .groups = 2}, true, true},
        {2, 2, 12, 9, 3, 3, 3, {.padding = 2, .dilation = 2}, false, true},
        {1, 6, 7, 7, 6, 3, 3, {.stride = 2, .padding = 1, .groups = 6}, true, false},
        {4, 1, 28, 28, 8, 3, 3, {0}, true, false},  /* the CNN's first layer */
        {5, 8, 13, 13, 16, 3, 3, {0}, true, false}, /* and its second */
        {2, 3, 6, 5, 2, 1, 1, {0}, true, true},
        {2, 2, 5, 5, 3, 5, 5, {.padding = 2}, true, false},
        {2, 4, 9, 9, 4, 3, 3, {.same = true, .dilation = 2}, true, true},
        /* 2.4 MB of columns per image: several blocks of images on the CPU */
        {3, 16, 64, 64, 8, 3, 3, {.padding = 1}, true, false},
    };
    BNT_ASSERT_NO_LEAK({
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
            for (int k = 0; k < 4; k++) {
                bn_scope_begin();
                check_conv_case(CONV2D, &cases[i], float_types[k], (int)i);
                bn_scope_end();
            }
    });
}

Test(cuda_conv, conv1d_matches_cpu_forward_and_gradients)
{
    NEED_GPU();
    static const conv_case cases[] = {
        {3, 4, 1, 20, 5, 1, 3, {0}, true, false},
        {2, 6, 1, 17, 4, 1, 4, {.stride = 2, .padding = 1, .dilation = 2, .groups = 2}, true, true},
        {4, 3, 1, 9, 3, 1, 1, {0}, false, true},
    };
    BNT_ASSERT_NO_LEAK({
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
            for (int k = 0; k < 4; k++) {
                bn_scope_begin();
                check_conv_case(CONV1D, &cases[i], float_types[k], (int)i);
                bn_scope_end();
            }
    });
}

Test(cuda_conv, conv_transpose2d_matches_cpu_forward_and_gradients)
{
    NEED_GPU();
    static const conv_case cases[] = {
        {2, 4, 5, 6, 3, 3, 3, {0}, true, false},
        {2, 4, 4, 5, 6, 3, 3, {.stride = 2, .padding = 1, .output_padding = 1, .groups = 2}, true,
         true},
        {1, 3, 6, 6, 2, 2, 3, {.stride = 3, .dilation = 2, .output_padding = 1}, false, false},
    };
    BNT_ASSERT_NO_LEAK({
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
            for (int k = 0; k < 4; k++) {
                bn_scope_begin();
                check_conv_case(CONV_T2D, &cases[i], float_types[k], (int)i);
                bn_scope_end();
            }
    });
}

Test(cuda_conv, conv_gradients_are_deterministic_and_empty_batches_work)
{
    NEED_GPU();
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        conv_case c = {6, 8, 13, 13, 16, 3, 3, {.padding = 1}, true, true};
        bn_tensor *x = rand_in(BN_SHAPE(6, 8, 13, 13), -1, 1, BN_F32);
        bn_tensor *w = rand_in(BN_SHAPE(16, 8, 3, 3), -1, 1, BN_F32);
        bn_tensor *b = rand_in(BN_SHAPE(16), -1, 1, BN_F32), *r = NULL;
        conv_result a = run_conv(CONV2D, &c, x, w, b, &r, bn_cuda(0));
        conv_result a2 = run_conv(CONV2D, &c, x, w, b, &r, bn_cuda(0));
        bnt_assert_equal(cpu(a2.y), cpu(a.y), "forward twice");
        bnt_assert_equal(cpu(a2.gx), cpu(a.gx), "grad x twice");
        bnt_assert_equal(cpu(a2.gw), cpu(a.gw), "grad w twice");
        /* no images: empty results, zero weight gradient */
        bn_tensor *x0 = gpu(bn_zeros(BN_SHAPE(0, 8, 13, 13), BN_F32));
        bn_tensor *y0 = bn_conv2d(x0, gpu(w), gpu(b), (bn_conv_opts){.padding = 1});
        cr_assert_not_null(y0, "%s", bn_error_message());
        cr_assert_eq(bn_ndim(y0), 4);
        cr_assert_eq(bn_dim(y0, 0), 0);
        cr_assert_eq(bn_dim(y0, 1), 16);
        bn_tensor *p0 = bn_max_pool2d(x0, 2, (bn_pool_opts){0});
        cr_assert_not_null(p0, "%s", bn_error_message());
        cr_assert_eq(bn_numel(p0), 0);
        bn_tensor *a0 = bn_avg_pool2d(x0, 3, (bn_pool_opts){.padding = 1});
        cr_assert_not_null(a0, "%s", bn_error_message());
        cr_assert_eq(bn_numel(a0), 0);
        bn_scope_end();
    });
}

/* ---- pooling -------------------------------------------------------------------------------- */
typedef struct pool_case {
    int kind; /* 0 max, 1 avg, 2 adaptive */
    int64_t N, C, H, W, kernel, out_h, out_w;
    bn_pool_opts o;
    bool strided, ties;
} pool_case;

static bn_tensor *pool_call(const pool_case *c, const bn_tensor *x)
{
    switch (c->kind) {
    case 0: return bn_max_pool2d(x, c->kernel, c->o);
    case 1: return bn_avg_pool2d(x, c->kernel, c->o);
    default: return bn_adaptive_avg_pool2d(x, c->out_h, c->out_w);
    }
}

/* (N, C, H, W), or (N, C, W, H) to be transposed, with values in [-1, 1); with ties: small
 * integers (many equal values in a window) and a few NaNs and infinities (max pooling only) */
static bn_tensor *pool_input(const pool_case *c, bn_dtype dt)
{
    int64_t a = c->strided ? c->W : c->H, b = c->strided ? c->H : c->W;
    int64_t n = c->N * c->C * a * b;
    if (!c->ties) return rand_in(BN_SHAPE(c->N, c->C, a, b), -1, 1, dt);
    double *v = malloc((size_t)(n ? n : 1) * sizeof *v);
    cr_assert_not_null(v);
    uint64_t state = 0x2545F4914F6CDD1Dull;
    for (int64_t i = 0; i < n; i++) {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        v[i] = (double)((int64_t)(state >> 33) % 7 - 3);
        if (i % 37 == 5) v[i] = i % 3 == 0 ? NAN : i % 3 == 1 ? -INFINITY : INFINITY;
    }
    bn_tensor *t = bn_from_data(v, BN_SHAPE(c->N, c->C, a, b), BN_F64);
    free(v);
    return bn_to_dtype(t, dt);
}

static void check_pool_case(const pool_case *c, bn_dtype dt, int index)
{
    static const char *const names[] = {"max_pool2d", "avg_pool2d", "adaptive_avg_pool2d"};
    bn_tensor *x = pool_input(c, dt), *r = NULL;
    /* the pools add in the CPU's order: f32 and f64 results are identical */
    double tol = dt == BN_F32 || dt == BN_F64 ? 0 : tol_of(dt);
    bn_tensor *want_y = NULL, *want_g = NULL;
    char what[96];
    for (int dev = 0; dev < 2; dev++) {
        bn_device d = dev ? bn_cuda(0) : bn_cpu();
        bn_tensor *xl = leaf_on(x, d);
        bn_tensor *xi = c->strided ? bn_transpose(xl, -1, -2) : xl;
        bn_tensor *y = pool_call(c, xi);
        cr_assert_not_null(y, "%s case %d on %s: %s", names[c->kind], index, dev ? "cuda" : "cpu",
                           bn_error_message());
        backward_weighted(y, &r, d, names[c->kind]);
        bn_tensor *gx = bn_grad(xl);
        if (!dev) {
            want_y = y, want_g = gx;
            continue;
        }
        snprintf(what, sizeof what, "%s case %d %s: forward", names[c->kind], index,
                 bn_dtype_name(dt));
        expect_near(y, want_y, tol, what);
        snprintf(what, sizeof what, "%s case %d %s: grad x", names[c->kind], index,
                 bn_dtype_name(dt));
        expect_near(gx, want_g, tol, what);
    }
    if (c->kind == 0) { /* no grad wanted: the kernel writes no indices */
        bn_tensor *xg = gpu(x);
        bn_tensor *y = pool_call(c, c->strided ? bn_transpose(xg, -1, -2) : xg);
        snprintf(what, sizeof what, "max_pool2d case %d %s: without indices", index,
                 bn_dtype_name(dt));
        expect_near(y, want_y, tol, what);
    }
}

Test(cuda_conv, pools_match_cpu_forward_and_gradients)
{
    NEED_GPU();
    static const pool_case cases[] = {
        {0, 4, 3, 12, 12, 2, 0, 0, {0}, false, false}, /* the CNN's 2x2 pool */
        {0, 2, 3, 11, 13, 2, 0, 0, {0}, true, true},   /* odd sizes, ties, NaN, strided */
        {0, 2, 2, 10, 9, 3, 0, 0, {.stride = 2, .padding = 1, .ceil_mode = true}, false, true},
        {0, 2, 2, 11, 12, 3, 0, 0, {.stride = 1, .padding = 1, .dilation = 2}, true, false},
        {0, 1, 2, 7, 1, 2, 0, 0, {.stride = 1, .padding = 1, .dilation = 2}, false, false},
        {0, 3, 2, 9, 9, 4, 0, 0, {.stride = 3, .padding = 2}, false, true},
        {1, 2, 3, 10, 11, 3, 0, 0, {.stride = 2, .padding = 1}, false, false},
        {1, 2, 3, 10, 11, 3, 0, 0, {.stride = 2, .padding = 1, .exclude_padding = true}, true,
         false},
        {1, 2, 2, 9, 8, 2, 0, 0, {.ceil_mode = true}, false, false},
        {1, 2, 2, 9, 8, 3, 0, 0, {.stride = 2, .padding = 1, .ceil_mode = true,
                                  .exclude_padding = true}, true, false},
        {2, 2, 3, 10, 7, 0, 3, 4, {0}, false, false},
        {2, 2, 3, 10, 7, 0, 4, 3, {0}, true, false},
        {2, 1, 2, 5, 5, 0, 7, 8, {0}, false, false}, /* more cells than pixels */
        {2, 2, 2, 6, 6, 0, 1, 1, {0}, false, false},
    };
    BNT_ASSERT_NO_LEAK({
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
            for (int k = 0; k < 4; k++) {
                bn_scope_begin();
                check_pool_case(&cases[i], float_types[k], (int)i);
                bn_scope_end();
            }
    });
}

Test(cuda_conv, unbatched_inputs_match_cpu)
{
    NEED_GPU();
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_tensor *x = rand_in(BN_SHAPE(3, 9, 10), -1, 1, BN_F32);
        bn_tensor *w = rand_in(BN_SHAPE(4, 3, 3, 3), -1, 1, BN_F32);
        bn_conv_opts co = {.padding = 1};
        expect_near(bn_conv2d(gpu(x), gpu(w), NULL, co), bn_conv2d(x, w, NULL, co), 1e-5,
                    "conv2d (C, H, W)");
        bn_pool_opts po = {.stride = 2};
        expect_near(bn_max_pool2d(gpu(x), 3, po), bn_max_pool2d(x, 3, po), 0, "max (C, H, W)");
        expect_near(bn_avg_pool2d(gpu(x), 3, po), bn_avg_pool2d(x, 3, po), 0, "avg (C, H, W)");
        expect_near(bn_adaptive_avg_pool2d(gpu(x), 4, 3), bn_adaptive_avg_pool2d(x, 4, 3), 0,
                    "adaptive (C, H, W)");
        bn_scope_end();
    });
}

/* ---- the Fashion-MNIST CNN ------------------------------------------------------------------ */
/* The CNN of bn_model_build("cnn") on the CPU and, built from the same seed, on the GPU: logits
 * and every parameter's gradient of sum(logits * r). In f64 the two agree to rounding; in f32 a
 * max-pool or ReLU decision between two values a last bit apart may go the other way after the
 * GEMMs' different summation orders, so the gradients get 1e-3. */
static void check_cnn(bn_dtype dt, double tol_fwd, double tol_grad)
{
    bn_module *m[2];
    for (int d = 0; d < 2; d++) {
        bn_manual_seed(1234);
        m[d] = bn_model_build("cnn");
        cr_assert_not_null(m[d], "%s", bn_error_message());
        cr_assert_eq(bn_module_to_dtype(m[d], dt), BN_OK, "%s", bn_error_message());
    }
    cr_assert_eq(bn_module_to_device(m[1], bn_cuda(0)), BN_OK, "%s", bn_error_message());
    bn_scope_begin();
    bn_tensor *x = rand_in(BN_SHAPE(6, 1, 28, 28), 0, 1, dt), *r = NULL, *logits[2];
    for (int d = 0; d < 2; d++) {
        bn_device dev = d ? bn_cuda(0) : bn_cpu();
        logits[d] = bn_module_forward(m[d], bn_tensor_to(x, dev));
        cr_assert_not_null(logits[d], "cnn forward on %s: %s", d ? "cuda" : "cpu",
                           bn_error_message());
        backward_weighted(logits[d], &r, dev, "cnn");
    }
    char what[96];
    snprintf(what, sizeof what, "cnn %s logits", bn_dtype_name(dt));
    expect_near(logits[1], logits[0], tol_fwd, what);
    bn_tensor_list pc = bn_module_named_parameters(m[0]), pg = bn_module_named_parameters(m[1]);
    cr_assert_eq(pc.count, 8, "the CNN has 8 parameters, got %d", pc.count);
    cr_assert_eq(pg.count, pc.count);
    for (int i = 0; i < pc.count; i++) {
        cr_assert_str_eq(pg.names[i], pc.names[i]);
        cr_assert_eq(bn_device_of(pg.tensors[i]).type, BN_DEVICE_CUDA);
        snprintf(what, sizeof what, "cnn %s grad %s", bn_dtype_name(dt), pc.names[i]);
        expect_near(bn_grad(pg.tensors[i]), bn_grad(pc.tensors[i]), tol_grad, what);
    }
    bn_tensor_list_free(&pc);
    bn_tensor_list_free(&pg);
    bn_scope_end();
    bn_module_free(m[0]);
    bn_module_free(m[1]);
}

Test(cuda_conv, cnn_model_forward_and_backward_match_cpu)
{
    NEED_GPU();
    BNT_ASSERT_NO_LEAK({
        check_cnn(BN_F64, 1e-10, 1e-10);
        check_cnn(BN_F32, 1e-5, 1e-3);
    });
}

/* ---- errors --------------------------------------------------------------------------------- */
Test(cuda_conv, bad_inputs_are_clear_errors)
{
    NEED_GPU();
    const bn_backend_conv *gc = gpu_conv();
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_tensor *x = gpu(bn_randn(BN_SHAPE(2, 3, 8, 8), BN_F32));
        bn_tensor *w = bn_randn(BN_SHAPE(4, 3, 3, 3), BN_F32);
        cr_assert_null(bn_conv2d(x, w, NULL, (bn_conv_opts){0})); /* w on the CPU */
        bnt_assert_error(BN_ERR_DEVICE, "bn_conv2d", NULL);
        cr_assert_null(bn_conv2d(x, gpu(bn_randn(BN_SHAPE(4, 2, 3, 3), BN_F32)), NULL,
                                 (bn_conv_opts){0}));
        bnt_assert_error(BN_ERR_SHAPE, "bn_conv2d", "channels", NULL);
        cr_assert_null(bn_max_pool2d(gpu(bn_zeros(BN_SHAPE(1, 1, 4, 4), BN_I32)), 2,
                                     (bn_pool_opts){0}));
        bnt_assert_error(BN_ERR_DTYPE, "bn_max_pool2d", NULL);
        cr_assert_null(bn_avg_pool2d(x, 2, (bn_pool_opts){.padding = 2}));
        bnt_assert_error(BN_ERR_ARG, "bn_avg_pool2d", "padding", NULL);
        /* the kernels themselves: a dtype they lack, and a broken layout promise */
        bn_tensor *xi = gpu(bn_zeros(BN_SHAPE(1, 1, 4, 4), BN_I32));
        bn_tensor *ci = gpu(bn_zeros(BN_SHAPE(1, 4, 9), BN_I32));
        bn_window_geom g = conv_geom(1, 1, 4, 4, 2, 2, 1, 0, 1);
        bn_tview xv = bn__tview(xi), cv = bn__tview(ci);
        cr_assert_eq(gc->im2col(&xv, &cv, &g), BN_ERR_UNSUPPORTED);
        bnt_assert_error(BN_ERR_UNSUPPORTED, "im2col", "i32", NULL);
        bn_tensor *o = gpu(bn_zeros(BN_SHAPE(1, 1, 3, 3), BN_I32));
        bn_tview ov = bn__tview(o), none = {.data = NULL, .dtype = BN_I64};
        cr_assert_eq(gc->max_pool2d(&xv, &ov, &none, &g), BN_ERR_UNSUPPORTED);
        bnt_assert_error(BN_ERR_UNSUPPORTED, "max_pool2d", "i32", NULL);
        bn_tensor *gi = bn_transpose(gpu(bn_zeros(BN_SHAPE(1, 1, 4, 4), BN_F32)), 2, 3);
        bn_tensor *go = gpu(bn_zeros(BN_SHAPE(1, 1, 3, 3), BN_F32));
        bn_tview giv = bn__tview(gi), gov = bn__tview(go);
        cr_assert_eq(gc->avg_pool2d_backward(&gov, &giv, &g, false), BN_ERR_INTERNAL);
        bnt_assert_error(BN_ERR_INTERNAL, "avg_pool2d_backward", "contiguous", NULL);
        bn_scope_end();
    });
}

/* ---- speed (logged, not checked) ------------------------------------------------------------ */
static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The CNN's forward + backward per batch (no optimizer step) at batch 64 and 512, and what a
 * 60000-image epoch of them takes; the targets for a whole epoch with Adam on an H100
 * are 1.35 s (64) and 0.17 s (512). */
Test(cuda_conv, cnn_step_time_is_logged, .timeout = 300)
{
    NEED_GPU();
    BNT_ASSERT_NO_LEAK({
        bn_manual_seed(1);
        bn_module *m = bn_model_build("cnn");
        cr_assert_not_null(m);
        cr_assert_eq(bn_module_to_device(m, bn_cuda(0)), BN_OK, "%s", bn_error_message());
        for (int64_t B = 64; B <= 512; B *= 8) {
            bn_scope_begin();
            bn_tensor *x = gpu(bn_rand(BN_SHAPE(B, 1, 28, 28), BN_F32));
            bn_tensor *r = gpu(bn_randn(BN_SHAPE(B, 10), BN_F32));
            double t0 = 0;
            int reps = 30;
            for (int i = -5; i < reps; i++) {
                if (i == 0) {
                    cr_assert_eq(bn_cuda_synchronize(0), BN_OK);
                    t0 = now_s();
                }
                bn_scope_begin();
                bn_module_zero_grad(m);
                bn_tensor *loss = bn_sum(bn_mul(bn_module_forward(m, x), r), BN_ALL, false);
                cr_assert_eq(bn_backward(loss), BN_OK, "%s", bn_error_message());
                bn_scope_end();
            }
            cr_assert_eq(bn_cuda_synchronize(0), BN_OK);
            double step = (now_s() - t0) / reps;
            cr_log_info("cnn forward+backward batch %lld: %.3f ms/step, %.3f s per 60000 images",
                        (long long)B, step * 1e3, step * (60000.0 / (double)B));
            bn_scope_end();
        }
        bn_module_free(m);
    });
}

/* im2col and col2im of the CNN's second layer (batch 512: 32 x 13 x 13 → 288 x 121 per image) */
Test(cuda_conv, im2col_bandwidth_is_logged)
{
    NEED_GPU();
    const bn_backend_conv *gc = gpu_conv();
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_window_geom g = conv_geom(512, 32, 13, 13, 3, 3, 1, 0, 1);
        int64_t CKK = g.C * 9, L = g.OH * g.OW;
        bn_tensor *x = gpu(bn_rand(BN_SHAPE(g.N, g.C, g.H, g.W), BN_F32));
        bn_tensor *cols = bn__out(bn__empty((int64_t[]){g.N, CKK, L}, 3, BN_F32, bn_cuda(0)));
        cr_assert_not_null(cols);
        bn_tview xv = bn__tview(x), cv = bn__tview(cols);
        for (int pass = 0; pass < 2; pass++) {
            double t0 = 0;
            int reps = 50;
            for (int i = -3; i < reps; i++) {
                if (i == 0) {
                    cr_assert_eq(bn_cuda_synchronize(0), BN_OK);
                    t0 = now_s();
                }
                bn_status st = pass ? gc->col2im(&cv, &xv, &g) : gc->im2col(&xv, &cv, &g);
                cr_assert_eq(st, BN_OK, "%s", bn_error_message());
            }
            cr_assert_eq(bn_cuda_synchronize(0), BN_OK);
            double t = (now_s() - t0) / reps;
            double bytes = 4.0 * (double)(g.N * CKK * L + g.N * g.C * g.H * g.W);
            cr_log_info("%s 512x32x13x13, 3x3: %.1f us, %.0f GB/s", pass ? "col2im" : "im2col",
                        t * 1e6, bytes / t / 1e9);
        }
        bn_scope_end();
    });
}
