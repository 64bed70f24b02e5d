/* tests/unit/test_nn_functional.c — bn_linear, bn_batch_norm, bn_layer_norm, bn_rms_norm,
 * bn_group_norm, bn_dropout and bn_embedding: outputs and gradients against PyTorch
 * (tests/data/nn_functional.txt, made by scripts/gen_nn_functional.py), gradients against float64
 * finite differences (through non-contiguous views), batch norm's running statistics, dropout's
 * statistics and thread independence, empty and 0-d inputs, and every error. */
#include "bn_test.h"

#include "born/autograd.h"
#include "born/info.h"
#include "core/internal.h"

#include <math.h>
#include <string.h>

/* fixtures and gradients (new references) go to bnt_keep's pool, emptied after each test */
TestSuite(nn_functional, .fini = bnt_release_kept);

/* ---- PyTorch fixtures ------------------------------------------------------------------------- */
#define MAX_IN 4

/* Computes a case's output from its inputs (in the order of the names given to check_case). */
typedef bn_tensor *(*case_fn)(bn_tensor *const *in);

/* Case cs: loads the named inputs (float ones require grad), compares fn's output with "out" and
 * the gradients of sum(out * gout) with "g<name>". */
static void check_case(const char *cs, const char *const *names, int n, case_fn fn, double rtol,
                       double atol)
{
    fx_file *f = fx_open("nn_functional.txt");
    bn_scope_begin();
    bn_tensor *in[MAX_IN] = {0};
    for (int i = 0; i < n; i++) {
        in[i] = bnt_keep(fx_tensor(f, cs, names[i]));
        if (bn_dtype_is_float(bn_dtype_of(in[i])))
            cr_assert_eq(bn_set_requires_grad(in[i], true), BN_OK);
    }
    bn_tensor *out = fn(in);
    cr_assert_not_null(out, "%s: %s", cs, bn_error_message());
    char what[128];
    snprintf(what, sizeof what, "%s: forward", cs);
    bnt_assert_close(out, bnt_keep(fx_tensor(f, cs, "out")), rtol, atol, what);
    bn_tensor *gout = bnt_keep(fx_tensor(f, cs, "gout"));
    cr_assert_eq(bn_backward_ex(out, (bn_backward_opts){.grad = gout}), BN_OK, "%s: %s", cs,
                 bn_error_message());
    for (int i = 0; i < n; i++) {
        if (!bn_dtype_is_float(bn_dtype_of(in[i]))) continue;
        char gname[32];
        snprintf(gname, sizeof gname, "g%s", names[i]);
        snprintf(what, sizeof what, "%s: grad %s", cs, names[i]);
        bnt_assert_close(bn_grad(in[i]), bnt_keep(fx_tensor(f, cs, gname)), rtol, atol, what);
    }
    bn_scope_end();
    fx_close(f);
}

#define NAMES(...) ((const char *const[]){__VA_ARGS__})
#define NNAMES(...) (int)(sizeof(NAMES(__VA_ARGS__)) / sizeof(const char *))
#define CHECK_CASE(cs, fn, rtol, atol, ...)                                                        \
    check_case(cs, NAMES(__VA_ARGS__), NNAMES(__VA_ARGS__), fn, rtol, atol)

static bn_tensor *linear3(bn_tensor *const *in) { return bn_linear(in[0], in[1], in[2]); }
static bn_tensor *linear2(bn_tensor *const *in) { return bn_linear(in[0], in[1], NULL); }
static bn_tensor *linear_t(bn_tensor *const *in)
{
    return bn_linear(bn_transpose(in[0], 0, 1), in[1], in[2]);
}

Test(nn_functional, linear_matches_torch_values_and_gradients)
{
    CHECK_CASE("linear_3d", linear3, 1e-5, 1e-5, "x", "w", "b");
    CHECK_CASE("linear_1d_no_bias", linear2, 1e-5, 1e-5, "x", "w");
    CHECK_CASE("linear_transposed_x", linear_t, 1e-5, 1e-5, "x_base", "w", "b");
}

static bn_tensor *layer_norm_affine(bn_tensor *const *in)
{
    return bn_layer_norm(in[0], 2, in[1], in[2], 1e-5);
}
static bn_tensor *layer_norm_plain(bn_tensor *const *in)
{
    return bn_layer_norm(in[0], 1, NULL, NULL, 1e-5);
}
static bn_tensor *layer_norm_t(bn_tensor *const *in)
{
    return bn_layer_norm(bn_transpose(in[0], 0, 1), 1, in[1], in[2], 1e-5);
}

Test(nn_functional, layer_norm_matches_torch_values_and_gradients)
{
    CHECK_CASE("layer_norm_affine", layer_norm_affine, 1e-4, 1e-5, "x", "weight", "bias");
    CHECK_CASE("layer_norm_plain", layer_norm_plain, 1e-4, 1e-5, "x");
    CHECK_CASE("layer_norm_transposed_x", layer_norm_t, 1e-4, 1e-5, "x_base", "weight", "bias");
}

Test(nn_functional, layer_norm_is_stable_for_large_offsets)
{
    /* x ~ 1e4 + 10 * N(0, 1) in f32: torch's f32 arithmetic differs from born's double
     * accumulation by a few f32 ulps of 1e4 */
    CHECK_CASE("layer_norm_large_values", layer_norm_plain, 1e-3, 1e-3, "x");
}

Test(nn_functional, layer_norm_computes_f64_and_rounds_f16_once)
{
    fx_file *f = fx_open("nn_functional.txt");
    bn_scope_begin();
    bn_tensor *x = bnt_keep(fx_tensor(f, "layer_norm_f64", "x"));
    bn_tensor *w = bnt_keep(fx_tensor(f, "layer_norm_f64", "weight"));
    bnt_assert_close(bn_layer_norm(x, 1, w, NULL, 1e-5),
                     bnt_keep(fx_tensor(f, "layer_norm_f64", "out")), 1e-12, 1e-12, "f64");
    bn_tensor *h = bnt_keep(fx_tensor(f, "layer_norm_f16", "x"));
    bn_tensor *y = bn_layer_norm(h, 1, NULL, NULL, 1e-5);
    cr_assert_eq(bn_dtype_of(y), BN_F16);
    bnt_assert_close(y, bnt_keep(fx_tensor(f, "layer_norm_f16", "out")), 1e-3, 1e-3, "f16");
    bn_scope_end();
    fx_close(f);
}

static bn_tensor *rms_affine(bn_tensor *const *in) { return bn_rms_norm(in[0], 1, in[1], 1e-6); }
static bn_tensor *rms_two(bn_tensor *const *in) { return bn_rms_norm(in[0], 2, NULL, 1e-6); }

Test(nn_functional, rms_norm_matches_torch_values_and_gradients)
{
    CHECK_CASE("rms_norm_affine", rms_affine, 1e-4, 1e-5, "x", "weight");
    CHECK_CASE("rms_norm_two_dims", rms_two, 1e-4, 1e-5, "x");
}

static bn_tensor *group3(bn_tensor *const *in)
{
    return bn_group_norm(in[0], 3, in[1], in[2], 1e-5);
}
static bn_tensor *group2(bn_tensor *const *in) { return bn_group_norm(in[0], 2, NULL, NULL, 1e-5); }

Test(nn_functional, group_norm_matches_torch_values_and_gradients)
{
    CHECK_CASE("group_norm_4d", group3, 1e-4, 1e-5, "x", "weight", "bias");
    CHECK_CASE("group_norm_2d_plain", group2, 1e-4, 1e-5, "x");
}

static bn_tensor *batch_train(bn_tensor *const *in)
{
    return bn_batch_norm(in[0], NULL, NULL, in[1], in[2], true, 0.1, 1e-5);
}

Test(nn_functional, batch_norm_training_matches_torch_for_2d_3d_and_4d_inputs)
{
    CHECK_CASE("batch_norm_train_2d", batch_train, 1e-4, 1e-5, "x", "weight", "bias");
    CHECK_CASE("batch_norm_train_3d", batch_train, 1e-4, 1e-5, "x", "weight", "bias");
    CHECK_CASE("batch_norm_train_4d", batch_train, 1e-4, 1e-5, "x", "weight", "bias");
}

static bn_tensor *eval_rm, *eval_rv;
static bn_tensor *batch_eval(bn_tensor *const *in)
{
    return bn_batch_norm(in[0], eval_rm, eval_rv, in[1], in[2], false, 0.1, 1e-5);
}

Test(nn_functional, batch_norm_eval_uses_the_running_statistics)
{
    fx_file *f = fx_open("nn_functional.txt");
    eval_rm = fx_tensor(f, "batch_norm_eval", "running_mean");
    eval_rv = fx_tensor(f, "batch_norm_eval", "running_var");
    bn_tensor *rm0 = bn_clone(eval_rm);
    CHECK_CASE("batch_norm_eval", batch_eval, 1e-4, 1e-5, "x", "weight", "bias");
    bnt_assert_equal(eval_rm, rm0, "eval leaves the running mean alone");
    bn_release(rm0);
    bn_release(eval_rm);
    bn_release(eval_rv);
    fx_close(f);
}

Test(nn_functional, batch_norm_updates_running_stats_like_torch)
{
    fx_file *f = fx_open("nn_functional.txt");
    const char *cs = "batch_norm_running_stats";
    bn_scope_begin();
    bn_tensor *rm = bn_zeros(BN_SHAPE(3), BN_F32), *rv = bn_ones(BN_SHAPE(3), BN_F32);
    uint64_t v0 = rm->storage->version;
    bn_tensor *out = NULL;
    for (int k = 0; k < 3; k++) {
        char name[8];
        snprintf(name, sizeof name, "x%d", k);
        out = bn_batch_norm(bnt_keep(fx_tensor(f, cs, name)), rm, rv, NULL, NULL, true, 0.2, 1e-5);
        cr_assert_not_null(out, "%s", bn_error_message());
    }
    cr_assert_gt(rm->storage->version, v0, "the update bumps the buffer's version");
    bnt_assert_close(out, bnt_keep(fx_tensor(f, cs, "out")), 1e-4, 1e-5, "last output");
    bnt_assert_close(rm, bnt_keep(fx_tensor(f, cs, "running_mean")), 1e-5, 1e-6, "running mean");
    bnt_assert_close(rv, bnt_keep(fx_tensor(f, cs, "running_var")), 1e-5, 1e-6,
                     "running var (unbiased)");
    bn_scope_end();
    fx_close(f);
}

static bn_tensor *embed(bn_tensor *const *in) { return bn_embedding(in[0], in[1]); }

Test(nn_functional, embedding_matches_torch_values_and_gradients)
{
    CHECK_CASE("embedding_2d_indices", embed, 0, 0, "weight", "indices");
    CHECK_CASE("embedding_i32_indices", embed, 0, 0, "weight", "indices");
}

/* ---- float64 finite differences ----------------------------------------------------------------- */
/* Each fn makes the view it is named for from the contiguous leaves. */
static bn_tensor *fd_linear(void *ctx, bn_tensor *const *in, int n)
{
    (void)ctx;
    return bn_linear(bn_transpose(in[0], 1, 2), in[1], n > 2 ? in[2] : NULL);
}
static bn_tensor *fd_layer_norm(void *ctx, bn_tensor *const *in, int n)
{
    int nd = *(int *)ctx;
    const bn_tensor *x = nd == 1 ? bn_transpose(in[0], 0, 1) : in[0];
    return bn_layer_norm(x, nd, in[1], n > 2 ? in[2] : NULL, 1e-5);
}
static bn_tensor *fd_rms_norm(void *ctx, bn_tensor *const *in, int n)
{
    (void)ctx;
    return bn_rms_norm(bn_transpose(in[0], 0, 1), 1, n > 1 ? in[1] : NULL, 1e-6);
}
static bn_tensor *fd_group_norm(void *ctx, bn_tensor *const *in, int n)
{
    (void)ctx;
    (void)n;
    return bn_group_norm(bn_transpose(in[0], 1, 2), 2, in[1], in[2], 1e-5);
}
static bn_tensor *fd_batch_norm(void *ctx, bn_tensor *const *in, int n)
{
    bn_tensor *const *running = ctx; /* NULL: training */
    (void)n;
    const bn_tensor *x = bn_transpose(in[0], 1, 2);
    if (!running) return bn_batch_norm(x, NULL, NULL, in[1], in[2], true, 0.1, 1e-5);
    return bn_batch_norm(x, running[0], running[1], in[1], in[2], false, 0.1, 1e-5);
}
static bn_tensor *fd_dropout(void *ctx, bn_tensor *const *in, int n)
{
    (void)ctx;
    (void)n;
    bn_manual_seed(5); /* the same mask on every call */
    return bn_dropout(bn_transpose(in[0], 0, 1), 0.4, true);
}
static bn_tensor *fd_embedding(void *ctx, bn_tensor *const *in, int n)
{
    (void)n;
    return bn_embedding(in[0], ctx);
}

static void gradcheck_params(const char *what, bnt_fn fn, void *ctx, const bn_shape *shapes, int n)
{
    bn_manual_seed(21);
    bn_tensor *in[MAX_IN];
    for (int i = 0; i < n; i++) in[i] = bnt_param(shapes[i], -1, 1);
    bnt_gradcheck(what, fn, ctx, in, n);
    for (int i = 0; i < n; i++) bn_release(in[i]);
}

#define SHAPES(...) ((const bn_shape[]){__VA_ARGS__})

Test(nn_functional, linear_gradients_match_finite_differences)
{
    BNT_ASSERT_NO_LEAK({
        gradcheck_params("linear of x^T", fd_linear, NULL,
                         SHAPES(BN_SHAPE(2, 4, 3), BN_SHAPE(5, 4), BN_SHAPE(5)), 3);
        gradcheck_params("linear, no bias", fd_linear, NULL,
                         SHAPES(BN_SHAPE(1, 4, 3), BN_SHAPE(2, 4)), 2);
    });
}

Test(nn_functional, norm_gradients_match_finite_differences)
{
    BNT_ASSERT_NO_LEAK({
        int one = 1, two = 2;
        gradcheck_params("layer_norm of x^T", fd_layer_norm, &one,
                         SHAPES(BN_SHAPE(5, 4), BN_SHAPE(5), BN_SHAPE(5)), 3);
        gradcheck_params("layer_norm over 2 dims, no bias", fd_layer_norm, &two,
                         SHAPES(BN_SHAPE(2, 3, 4), BN_SHAPE(3, 4)), 2);
        gradcheck_params("rms_norm of x^T", fd_rms_norm, NULL, SHAPES(BN_SHAPE(5, 3), BN_SHAPE(5)),
                         2);
        gradcheck_params("rms_norm, no weight", fd_rms_norm, NULL, SHAPES(BN_SHAPE(4, 3)), 1);
        gradcheck_params("group_norm of x^T", fd_group_norm, NULL,
                         SHAPES(BN_SHAPE(2, 3, 4), BN_SHAPE(4), BN_SHAPE(4)), 3);
        gradcheck_params("batch_norm training of x^T", fd_batch_norm, NULL,
                         SHAPES(BN_SHAPE(3, 4, 2), BN_SHAPE(2), BN_SHAPE(2)), 3);
    });
}

Test(nn_functional, batch_norm_eval_gradients_match_finite_differences)
{
    BNT_ASSERT_NO_LEAK({
        bn_tensor *running[2] = {bn_from_data((double[]){0.5, -0.25}, BN_SHAPE(2), BN_F64),
                                 bn_from_data((double[]){0.8, 1.5}, BN_SHAPE(2), BN_F64)};
        gradcheck_params("batch_norm eval of x^T", fd_batch_norm, running,
                         SHAPES(BN_SHAPE(3, 4, 2), BN_SHAPE(2), BN_SHAPE(2)), 3);
        bn_release(running[0]);
        bn_release(running[1]);
    });
}

Test(nn_functional, dropout_and_embedding_gradients_match_finite_differences)
{
    BNT_ASSERT_NO_LEAK({
        gradcheck_params("dropout of x^T", fd_dropout, NULL, SHAPES(BN_SHAPE(6, 5)), 1);
        bn_tensor *idx = bn_from_data((int64_t[]){2, 0, 2, 5, 2, 1}, BN_SHAPE(2, 3), BN_I64);
        gradcheck_params("embedding with repeated indices", fd_embedding, idx,
                         SHAPES(BN_SHAPE(6, 3)), 1);
        bn_release(idx);
    });
}

/* L = sum(y^2), y = x w^T + b; s = sum(c * dL/dx) = 2 sum(c * (y w)). Then
 * ds/dx = 2 c w^T w, ds/dw = 2 (y^T c + (c w^T)^T x), ds/db = 2 sum_rows(c w^T). */
Test(nn_functional, linear_supports_second_derivatives)
{
    bn_scope_begin();
    bn_manual_seed(31);
    bn_tensor *x = bnt_keep(bnt_param(BN_SHAPE(3, 4), -1, 1));
    bn_tensor *w = bnt_keep(bnt_param(BN_SHAPE(2, 4), -1, 1));
    bn_tensor *b = bnt_keep(bnt_param(BN_SHAPE(2), -1, 1));
    bn_tensor *c = bn_randn(BN_SHAPE(3, 4), BN_F64);
    bn_tensor *y = bn_linear(x, w, b);
    bn_tensor *loss = bn_sum(bn_mul(y, y), BN_ALL, false);
    bn_tensor *gx[1];
    cr_assert_eq(bn_autograd_grad(&loss, NULL, 1, &x, 1, gx,
                                  (bn_backward_opts){.create_graph = true}),
                 BN_OK, "%s", bn_error_message());
    cr_assert_eq(bn_backward(bn_sum(bn_mul(c, gx[0]), BN_ALL, false)), BN_OK, "%s",
                 bn_error_message());
    bn_no_grad_begin();
    bn_tensor *cwt = bn_matmul(c, bn_transpose(w, 0, 1)); /* (3, 2) */
    bn_tensor *want_x = bn_mul_scalar(bn_matmul(cwt, w), 2);
    bn_tensor *want_w = bn_mul_scalar(bn_add(bn_matmul(bn_transpose(y, 0, 1), c),
                                             bn_matmul(bn_transpose(cwt, 0, 1), x)),
                                      2);
    bn_tensor *want_b = bn_mul_scalar(bn_sum(cwt, 0, false), 2);
    bn_no_grad_end();
    bnt_assert_close(bn_grad(x), want_x, 1e-12, 1e-12, "d2/dx");
    bnt_assert_close(bn_grad(w), want_w, 1e-12, 1e-12, "d2/dw");
    bnt_assert_close(bn_grad(b), want_b, 1e-12, 1e-12, "d2/db");
    bn_scope_end();
}

static bn_tensor *block(void *ctx, bn_tensor *const *in, int n)
{
    (void)ctx;
    (void)n;
    bn_tensor *h = bn_layer_norm(bn_linear(in[0], in[1], in[2]), 1, NULL, NULL, 1e-5);
    return bn_dropout(bn_batch_norm(h, NULL, NULL, NULL, NULL, true, 0.1, 1e-5), 0.3, true);
}

/* the checkpoint's recompute runs with grad forced on: each op must still record one node */
Test(nn_functional, layers_inside_a_checkpoint_give_the_same_gradients)
{
    bn_scope_begin();
    bn_manual_seed(41);
    bn_tensor *in[3] = {bnt_keep(bnt_param(BN_SHAPE(6, 4), -1, 1)),
                        bnt_keep(bnt_param(BN_SHAPE(5, 4), -1, 1)),
                        bnt_keep(bnt_param(BN_SHAPE(5), -1, 1))};
    bn_tensor *c = bn_randn(BN_SHAPE(6, 5), BN_F64);
    bn_tensor *want[3], *got[3];
    bn_manual_seed(42);
    bn_tensor *y = bn_sum(bn_mul(block(NULL, in, 3), c), BN_ALL, false);
    cr_assert_eq(bn_autograd_grad(&y, NULL, 1, in, 3, want, (bn_backward_opts){0}), BN_OK, "%s",
                 bn_error_message());
    bn_manual_seed(42);
    bn_tensor *z = bn_sum(bn_mul(bn_checkpoint(block, NULL, in, 3), c), BN_ALL, false);
    cr_assert_eq(bn_autograd_grad(&z, NULL, 1, in, 3, got, (bn_backward_opts){0}), BN_OK, "%s",
                 bn_error_message());
    for (int i = 0; i < 3; i++) bnt_assert_close(got[i], want[i], 1e-12, 1e-12, "checkpointed");
    bn_scope_end();
}

Test(nn_functional, norms_refuse_a_second_derivative)
{
    bn_scope_begin();
    bn_tensor *x = bnt_keep(bnt_param(BN_SHAPE(2, 3), -1, 1));
    bn_tensor *y = bn_sum(bn_mul(bn_layer_norm(x, 1, NULL, NULL, 1e-5), x), BN_ALL, false);
    bn_tensor *g[1];
    cr_assert_eq(bn_autograd_grad(&y, NULL, 1, &x, 1, g, (bn_backward_opts){.create_graph = true}),
                 BN_ERR_UNSUPPORTED);
    bnt_assert_error(BN_ERR_UNSUPPORTED, "LayerNormBackward", "create_graph", NULL);
    bn_scope_end();
}

/* ---- dropout ------------------------------------------------------------------------------------ */
static double fraction_zero(const bn_tensor *t, double *mean)
{
    int64_t n = bn_numel(t), zeros = 0;
    double sum = 0;
    float *v = malloc((size_t)n * sizeof *v);
    cr_assert_eq(bn_copy_to_host(t, v, (size_t)n * sizeof *v), BN_OK);
    for (int64_t i = 0; i < n; i++) {
        zeros += v[i] == 0.0f;
        sum += v[i];
    }
    free(v);
    *mean = sum / (double)n;
    return (double)zeros / (double)n;
}

Test(nn_functional, dropout_zeroes_a_fraction_p_and_preserves_the_mean)
{
    bn_scope_begin();
    bn_manual_seed(3);
    bn_tensor *x = bn_ones(BN_SHAPE(200, 500), BN_F32);
    for (int k = 0; k < 3; k++) {
        double p = (double[]){0.1, 0.3, 0.7}[k], mean;
        bn_tensor *y = bn_dropout(x, p, true);
        double frac = fraction_zero(y, &mean);
        cr_assert(fabs(frac - p) < 0.01, "p %g: zeroed %g", p, frac);
        cr_assert(fabs(mean - 1.0) < 0.02, "p %g: mean %g", p, mean);
        bn_tensor *kept =
            bn_where(bn_ne_scalar(y, 0), y, bn_full(BN_SHAPE(1), (float)(1.0 / (1.0 - p)), BN_F32));
        bnt_assert_close(kept, bn_full(BN_SHAPE(200, 500), (float)(1.0 / (1.0 - p)), BN_F32), 0, 0,
                         "kept values are scaled by 1/(1-p)");
    }
    bnt_assert_equal(bn_dropout(x, 0.5, false), x, "eval is the identity");
    bnt_assert_equal(bn_dropout(x, 0.0, true), x, "p = 0 is the identity");
    bnt_assert_equal(bn_dropout(x, 1.0, true), bn_zeros(BN_SHAPE(200, 500), BN_F32), "p = 1");
    bn_scope_end();
}

Test(nn_functional, dropout_gradient_is_the_scaled_mask)
{
    bn_scope_begin();
    bn_manual_seed(4);
    bn_tensor *x = bnt_keep(bnt_param(BN_SHAPE(50, 40), 1, 1)); /* all ones */
    bn_tensor *y = bn_dropout(x, 0.25, true);
    cr_assert_eq(bn_backward(bn_sum(y, BN_ALL, false)), BN_OK, "%s", bn_error_message());
    bnt_assert_equal(bn_grad(x), y, "d/dx = mask / (1 - p) = y / x");
    bn_scope_end();
}

/* each op's output and the gradients of sum(out^2) with respect to its parameters */
#define NRES 16
static int forward_and_backward(bn_tensor **res, bn_tensor *x, bn_tensor *w, bn_tensor *b,
                                bn_tensor *table, bn_tensor *idx)
{
    bn_tensor *outs[5] = {bn_dropout(x, 0.5, true), bn_layer_norm(x, 1, w, b, 1e-5),
                          bn_batch_norm(x, NULL, NULL, NULL, NULL, true, 0.1, 1e-5),
                          bn_group_norm(x, 3, NULL, NULL, 1e-5), bn_embedding(table, idx)};
    int k = 0;
    for (int i = 0; i < 5; i++) {
        res[k++] = outs[i];
        bn_tensor *loss = bn_sum(bn_mul(outs[i], outs[i]), BN_ALL, false);
        bn_tensor *g[3] = {0};
        bn_tensor *wrt[3];
        int n = 0;
        if (i < 4) wrt[n++] = x;
        if (i == 1) wrt[n++] = w;
        if (i == 4) wrt[n++] = table;
        cr_assert_eq(bn_autograd_grad(&loss, NULL, 1, wrt, n, g, (bn_backward_opts){0}), BN_OK,
                     "%s", bn_error_message());
        for (int j = 0; j < n; j++) res[k++] = g[j];
    }
    return k;
}

Test(nn_functional, forward_and_backward_give_the_same_bits_on_1_and_2_threads)
{
    bn_scope_begin();
    int saved = bn_num_threads();
    bn_manual_seed(9);
    bn_tensor *x = bn_randn(BN_SHAPE(64, 3, 401), BN_F32);
    bn_tensor *w = bn_randn(BN_SHAPE(401), BN_F32), *b = bn_randn(BN_SHAPE(401), BN_F32);
    bn_tensor *table = bn_randn(BN_SHAPE(50, 300), BN_F32);
    bn_tensor *idx = bn_randint(0, 50, BN_SHAPE(40, 20), BN_I64);
    bn_set_requires_grad(x, true);
    bn_set_requires_grad(w, true);
    bn_set_requires_grad(table, true);
    bn_tensor *res[2][NRES];
    int n[2];
    for (int t = 0; t < 2; t++) {
        bn_set_num_threads(t + 1);
        bn_manual_seed(10);
        n[t] = forward_and_backward(res[t], x, w, b, table, idx);
    }
    bn_set_num_threads(saved);
    cr_assert_eq(n[0], n[1]);
    for (int k = 0; k < n[0]; k++) bnt_assert_equal(res[1][k], res[0][k], "1 vs 2 threads");
    bn_scope_end();
}

/* ---- empty, 0-d and other dtypes --------------------------------------------------------------- */
Test(nn_functional, empty_and_0d_inputs)
{
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_tensor *e = bn_zeros(BN_SHAPE(0, 4), BN_F32);
        cr_assert(
            bn_shape_equal(bn_shape_of(bn_layer_norm(e, 1, NULL, NULL, 1e-5)), BN_SHAPE(0, 4)));
        cr_assert(bn_shape_equal(bn_shape_of(bn_linear(e, bn_ones(BN_SHAPE(5, 4), BN_F32), NULL)),
                                 BN_SHAPE(0, 5)));
        cr_assert(bn_shape_equal(bn_shape_of(bn_group_norm(bn_zeros(BN_SHAPE(2, 4, 0), BN_F32), 2,
                                                           NULL, NULL, 1e-5)),
                                 BN_SHAPE(2, 4, 0)));
        /* an empty batch leaves the running statistics alone, like torch */
        bn_tensor *rm = bn_zeros(BN_SHAPE(3), BN_F32), *rv = bn_ones(BN_SHAPE(3), BN_F32);
        cr_assert(bn_shape_equal(bn_shape_of(bn_batch_norm(bn_zeros(BN_SHAPE(0, 3), BN_F32), rm, rv,
                                                           NULL, NULL, true, 0.1, 1e-5)),
                                 BN_SHAPE(0, 3)));
        bnt_assert_values(rm, (double[]){0, 0, 0}, 3, 0, "running mean untouched");
        bnt_assert_values(rv, (double[]){1, 1, 1}, 3, 0, "running var untouched");
        bn_tensor *none = bn_zeros(BN_SHAPE(0), BN_I64);
        cr_assert(bn_shape_equal(bn_shape_of(bn_embedding(bn_ones(BN_SHAPE(3, 2), BN_F32), none)),
                                 BN_SHAPE(0, 2)));
        /* an empty batch still gives zero weight gradients */
        bn_tensor *w = bnt_param(BN_SHAPE(4), 1, 1);
        bn_tensor *y = bn_layer_norm(bn_zeros(BN_SHAPE(0, 4), BN_F64), 1, w, NULL, 1e-5);
        cr_assert_eq(bn_backward(bn_sum(y, BN_ALL, false)), BN_OK, "%s", bn_error_message());
        bnt_assert_values(bn_grad(w), (double[]){0, 0, 0, 0}, 4, 0, "empty grad");
        bn_release(w);
        /* 0-d: dropout works, an index picks one row */
        bn_tensor *s = bn_full(BN_SCALAR, 2.0, BN_F32);
        bnt_assert_equal(bn_dropout(s, 0.5, false), s, "0-d eval");
        cr_assert_eq(bn_ndim(bn_dropout(s, 0.5, true)), 0);
        bn_tensor *w2 = bn_from_data((float[]){1, 2, 3, 4}, BN_SHAPE(2, 2), BN_F32);
        bnt_assert_values(bn_embedding(w2, bn_full(BN_SCALAR, 1, BN_I64)), (double[]){3, 4}, 2, 0,
                          "0-d index");
        bn_scope_end();
    });
}

Test(nn_functional, norms_of_f16_and_bf16_are_computed_in_f32_and_rounded_once)
{
    bn_scope_begin();
    bn_manual_seed(12);
    bn_tensor *x = bn_randn(BN_SHAPE(4, 6), BN_F32);
    for (int k = 0; k < 2; k++) {
        bn_dtype dt = k ? BN_BF16 : BN_F16;
        bn_tensor *xh = bn_to_dtype(x, dt), *xf = bn_to_dtype(xh, BN_F32);
        bn_tensor *want[3] = {
            bn_to_dtype(bn_layer_norm(xf, 1, NULL, NULL, 1e-5), dt),
            bn_to_dtype(bn_group_norm(xf, 2, NULL, NULL, 1e-5), dt),
            bn_to_dtype(bn_batch_norm(xf, NULL, NULL, NULL, NULL, true, 0.1, 1e-5), dt)};
        bnt_assert_equal(bn_layer_norm(xh, 1, NULL, NULL, 1e-5), want[0], "layer_norm");
        bnt_assert_equal(bn_group_norm(xh, 2, NULL, NULL, 1e-5), want[1], "group_norm");
        bnt_assert_equal(bn_batch_norm(xh, NULL, NULL, NULL, NULL, true, 0.1, 1e-5), want[2],
                         "batch_norm");
    }
    bn_scope_end();
}

/* ---- bad input ---------------------------------------------------------------------------------- */
Test(nn_functional, linear_rejects_bad_input)
{
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_tensor *x = bn_ones(BN_SHAPE(2, 3), BN_F32), *w = bn_ones(BN_SHAPE(5, 4), BN_F32);
        cr_assert_null(bn_linear(x, w, NULL));
        bnt_assert_error(BN_ERR_SHAPE, "bn_linear", "x [2, 3]", "w [5, 4]", "3", "4", NULL);
        cr_assert_null(bn_linear(x, bn_ones(BN_SHAPE(5, 3), BN_F32), bn_ones(BN_SHAPE(4), BN_F32)));
        bnt_assert_error(BN_ERR_SHAPE, "bn_linear", "b", "[4]", "[5, 3]", NULL);
        cr_assert_null(bn_linear(x, bn_ones(BN_SHAPE(5, 3), BN_F64), NULL));
        bnt_assert_error(BN_ERR_DTYPE, "bn_linear", "f32", "f64", NULL);
        cr_assert_null(bn_linear(x, bn_ones(BN_SHAPE(3), BN_F32), NULL));
        bnt_assert_error(BN_ERR_SHAPE, "bn_linear", "w must be 2-D", "[3]", NULL);
        cr_assert_null(bn_linear(NULL, w, NULL));
        bnt_assert_error(BN_ERR_ARG, "bn_linear", "x", NULL);
        bn_scope_end();
    });
}

Test(nn_functional, batch_norm_rejects_bad_input)
{
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_tensor *x = bn_ones(BN_SHAPE(4, 3, 2), BN_F32);
        cr_assert_null(
            bn_batch_norm(x, NULL, NULL, bn_ones(BN_SHAPE(4), BN_F32), NULL, true, 0.1, 1e-5));
        bnt_assert_error(BN_ERR_SHAPE, "bn_batch_norm", "weight", "[4]", "[4, 3, 2]", "3", NULL);
        bn_tensor *rm = bn_zeros(BN_SHAPE(2), BN_F32), *rv = bn_ones(BN_SHAPE(3), BN_F32);
        cr_assert_null(bn_batch_norm(x, rm, rv, NULL, NULL, true, 0.1, 1e-5));
        bnt_assert_error(BN_ERR_SHAPE, "bn_batch_norm", "running_mean", "[2]", NULL);
        cr_assert_null(bn_batch_norm(x, NULL, NULL, NULL, NULL, false, 0.1, 1e-5));
        bnt_assert_error(BN_ERR_ARG, "bn_batch_norm", "eval", NULL);
        cr_assert_null(bn_batch_norm(x, NULL, rv, NULL, NULL, true, 0.1, 1e-5));
        bnt_assert_error(BN_ERR_ARG, "bn_batch_norm", "running_mean and running_var", NULL);
        cr_assert_null(bn_batch_norm(bn_ones(BN_SHAPE(1, 3), BN_F32), NULL, NULL, NULL, NULL, true,
                                     0.1, 1e-5));
        bnt_assert_error(BN_ERR_ARG, "bn_batch_norm", "more than 1 value", "[1, 3]", NULL);
        cr_assert_null(
            bn_batch_norm(bn_ones(BN_SHAPE(4), BN_F32), NULL, NULL, NULL, NULL, true, 0.1, 1e-5));
        bnt_assert_error(BN_ERR_SHAPE, "bn_batch_norm", "(N, C, ...)", "[4]", NULL);
        cr_assert_null(bn_batch_norm(bn_ones(BN_SHAPE(4, 3), BN_I32), NULL, NULL, NULL, NULL, true,
                                     0.1, 1e-5));
        bnt_assert_error(BN_ERR_DTYPE, "bn_batch_norm", "x", "i32", NULL);
        cr_assert_null(bn_batch_norm(NULL, NULL, NULL, NULL, NULL, true, 0.1, 1e-5));
        bnt_assert_error(BN_ERR_ARG, "bn_batch_norm", "x", NULL);
        bn_scope_end();
    });
}

Test(nn_functional, layer_and_rms_norm_reject_bad_input)
{
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_tensor *x = bn_ones(BN_SHAPE(2, 3, 4), BN_F32);
        cr_assert_null(bn_layer_norm(x, 2, bn_ones(BN_SHAPE(4, 3), BN_F32), NULL, 1e-5));
        bnt_assert_error(BN_ERR_SHAPE, "bn_layer_norm", "weight", "[4, 3]", "[2, 3, 4]", "[3, 4]",
                         NULL);
        cr_assert_null(bn_layer_norm(x, 1, NULL, bn_ones(BN_SHAPE(3), BN_F32), 1e-5));
        bnt_assert_error(BN_ERR_SHAPE, "bn_layer_norm", "bias", "[3]", "[4]", NULL);
        cr_assert_null(bn_layer_norm(x, 4, NULL, NULL, 1e-5));
        bnt_assert_error(BN_ERR_ARG, "bn_layer_norm", "normalized_ndim 4", "[1, 3]", NULL);
        cr_assert_null(bn_layer_norm(x, 0, NULL, NULL, 1e-5));
        bnt_assert_error(BN_ERR_ARG, "bn_layer_norm", "normalized_ndim 0", NULL);
        cr_assert_null(bn_layer_norm(NULL, 1, NULL, NULL, 1e-5));
        bnt_assert_error(BN_ERR_ARG, "bn_layer_norm", "x", NULL);
        cr_assert_null(bn_rms_norm(x, 1, bn_ones(BN_SHAPE(5), BN_F32), 1e-5));
        bnt_assert_error(BN_ERR_SHAPE, "bn_rms_norm", "weight", "[5]", "[4]", NULL);
        cr_assert_null(bn_rms_norm(bn_ones(BN_SHAPE(3), BN_I64), 1, NULL, 1e-5));
        bnt_assert_error(BN_ERR_DTYPE, "bn_rms_norm", "i64", NULL);
        cr_assert_null(bn_rms_norm(NULL, 1, NULL, 1e-5));
        bnt_assert_error(BN_ERR_ARG, "bn_rms_norm", "x", NULL);
        bn_scope_end();
    });
}

Test(nn_functional, group_norm_rejects_bad_input)
{
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_tensor *x = bn_ones(BN_SHAPE(2, 6, 3), BN_F32);
        cr_assert_null(bn_group_norm(x, 4, NULL, NULL, 1e-5));
        bnt_assert_error(BN_ERR_ARG, "bn_group_norm", "groups 4", "6 channels", "[2, 6, 3]", NULL);
        cr_assert_null(bn_group_norm(x, 0, NULL, NULL, 1e-5));
        bnt_assert_error(BN_ERR_ARG, "bn_group_norm", "groups 0", NULL);
        cr_assert_null(bn_group_norm(x, 3, bn_ones(BN_SHAPE(3), BN_F32), NULL, 1e-5));
        bnt_assert_error(BN_ERR_SHAPE, "bn_group_norm", "weight", "[3]", "[2, 6, 3]", NULL);
        cr_assert_null(bn_group_norm(bn_ones(BN_SHAPE(6), BN_F32), 3, NULL, NULL, 1e-5));
        bnt_assert_error(BN_ERR_SHAPE, "bn_group_norm", "[6]", NULL);
        cr_assert_null(bn_group_norm(NULL, 3, NULL, NULL, 1e-5));
        bnt_assert_error(BN_ERR_ARG, "bn_group_norm", "x", NULL);
        bn_scope_end();
    });
}

Test(nn_functional, dropout_rejects_bad_input)
{
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_tensor *x = bn_ones(BN_SHAPE(4), BN_F32);
        cr_assert_null(bn_dropout(x, 1.5, true));
        bnt_assert_error(BN_ERR_ARG, "bn_dropout", "p 1.5", "[0, 1]", NULL);
        cr_assert_null(bn_dropout(x, -0.1, false));
        bnt_assert_error(BN_ERR_ARG, "bn_dropout", "p -0.1", NULL);
        cr_assert_null(bn_dropout(x, NAN, true));
        bnt_assert_error(BN_ERR_ARG, "bn_dropout", "nan", NULL);
        cr_assert_null(bn_dropout(bn_ones(BN_SHAPE(4), BN_I32), 0.5, true));
        bnt_assert_error(BN_ERR_DTYPE, "bn_dropout", "i32", NULL);
        cr_assert_null(bn_dropout(NULL, 0.5, true));
        bnt_assert_error(BN_ERR_ARG, "bn_dropout", "x", NULL);
        bn_scope_end();
    });
}

Test(nn_functional, embedding_rejects_bad_input)
{
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_tensor *w = bn_ones(BN_SHAPE(5, 2), BN_F32);
        cr_assert_null(bn_embedding(w, bn_from_data((int64_t[]){1, 7}, BN_SHAPE(2), BN_I64)));
        bnt_assert_error(BN_ERR_ARG, "bn_embedding", "index 7", "5 rows", NULL);
        cr_assert_null(bn_embedding(w, bn_from_data((int32_t[]){-1}, BN_SHAPE(1), BN_I32)));
        bnt_assert_error(BN_ERR_ARG, "bn_embedding", "index -1", NULL);
        cr_assert_null(bn_embedding(w, bn_ones(BN_SHAPE(2), BN_F32)));
        bnt_assert_error(BN_ERR_DTYPE, "bn_embedding", "indices", "f32", NULL);
        cr_assert_null(bn_embedding(bn_ones(BN_SHAPE(5), BN_F32), bn_zeros(BN_SHAPE(2), BN_I64)));
        bnt_assert_error(BN_ERR_SHAPE, "bn_embedding", "weight", "[5]", NULL);
        cr_assert_null(bn_embedding(w, NULL));
        bnt_assert_error(BN_ERR_ARG, "bn_embedding", "indices", NULL);
        bn_scope_end();
    });
}
