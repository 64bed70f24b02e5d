/* tests/unit/test_optim.c — optimizers: the first 20 steps of every optimizer match torch.optim
 * (1.13, single-tensor implementations) on a quadratic problem, also when the problem is tiled
 * into one large parameter that the CPU backend's multi-tensor update cuts into chunks and
 * threads (the same bits on 1 and 2 threads); L-BFGS matches torch's on Rosenbrock; gradient
 * clipping against the norm's definition; state access; bad input.
 * Fixtures: tests/data/optim.txt, written by scripts/gen_optim.py. */
#include "bn_test.h"

#include "born/autograd.h"
#include "born/info.h"
#include "born/nn.h"
#include "born/optim.h"

#include <math.h>
#include <string.h>

static void fini(void) { bnt_release_kept(); }
TestSuite(optim, .fini = fini);

#define STEPS 20

/* the optimizer named by a fixture case, with the options gen_optim.py used, over p[0 .. n) */
static bn_optim *make_optim_n(const char *name, bn_tensor *const *p, int n)
{
    if (!strcmp(name, "sgd")) return bn_optim_sgd_params(p, n, (bn_sgd_opts){.lr = 0.1});
    if (!strcmp(name, "sgd_momentum"))
        return bn_optim_sgd_params(
            p, n, (bn_sgd_opts){.lr = 0.05, .momentum = 0.9, .dampening = 0.1, .weight_decay = 0.01});
    if (!strcmp(name, "sgd_nesterov"))
        return bn_optim_sgd_params(
            p, n, (bn_sgd_opts){.lr = 0.05, .momentum = 0.9, .nesterov = true, .weight_decay = 1e-3});
    if (!strcmp(name, "sgd_maximize"))
        return bn_optim_sgd_params(p, n,
                                   (bn_sgd_opts){.lr = 0.01, .momentum = 0.5, .maximize = true});
    if (!strcmp(name, "adam")) return bn_optim_adam_params(p, n, (bn_adam_opts){.lr = 0.01});
    if (!strcmp(name, "adam_wd_amsgrad"))
        return bn_optim_adam_params(p, n,
                                    (bn_adam_opts){.lr = 0.02, .beta1 = 0.8, .beta2 = 0.99,
                                                   .weight_decay = 0.1, .amsgrad = true});
    if (!strcmp(name, "adam_maximize"))
        return bn_optim_adam_params(p, n, (bn_adam_opts){.lr = 0.01, .maximize = true});
    if (!strcmp(name, "adamw")) return bn_optim_adamw_params(p, n, (bn_adam_opts){.lr = 0.01});
    if (!strcmp(name, "adamw_wd"))
        return bn_optim_adamw_params(p, n,
                                     (bn_adam_opts){.lr = 0.05, .weight_decay = 0.1, .eps = 1e-6});
    if (!strcmp(name, "rmsprop"))
        return bn_optim_rmsprop_params(p, n, (bn_rmsprop_opts){.lr = 0.01});
    if (!strcmp(name, "rmsprop_centered"))
        return bn_optim_rmsprop_params(p, n,
                                       (bn_rmsprop_opts){.lr = 0.01, .alpha = 0.9, .centered = true,
                                                         .momentum = 0.5, .weight_decay = 0.01});
    if (!strcmp(name, "adagrad"))
        return bn_optim_adagrad_params(p, n, (bn_adagrad_opts){.lr = 0.1});
    if (!strcmp(name, "adagrad_decay"))
        return bn_optim_adagrad_params(p, n,
                                       (bn_adagrad_opts){.lr = 0.1, .lr_decay = 0.01,
                                                         .initial_accumulator_value = 0.1,
                                                         .weight_decay = 0.01});
    if (!strcmp(name, "adadelta")) return bn_optim_adadelta_params(p, n, (bn_adadelta_opts){0});
    if (!strcmp(name, "adadelta_wd"))
        return bn_optim_adadelta_params(
            p, n, (bn_adadelta_opts){.lr = 0.5, .rho = 0.8, .weight_decay = 0.05});
    if (!strcmp(name, "nadam")) return bn_optim_nadam_params(p, n, (bn_nadam_opts){.lr = 0.01});
    if (!strcmp(name, "nadam_wd"))
        return bn_optim_nadam_params(
            p, n, (bn_nadam_opts){.lr = 0.01, .weight_decay = 0.01, .momentum_decay = 0.01});
    cr_assert_fail("unknown optimizer case %s", name);
    return NULL;
}

static bn_optim *make_optim(const char *name, bn_tensor *const *p)
{
    return make_optim_n(name, p, 2);
}

static const char *const optim_names[] = {
    "sgd",      "sgd_momentum",     "sgd_nesterov",  "sgd_maximize", "adam",
    "adam_wd_amsgrad", "adam_maximize", "adamw",   "adamw_wd",     "rmsprop",
    "rmsprop_centered", "adagrad",  "adagrad_decay", "adadelta",     "adadelta_wd",
    "nadam",    "nadam_wd"};

/* g = a * (w - c), the gradient of the fixture's quadratic loss */
static void set_quadratic_grad(bn_tensor *w, const bn_tensor *a, const bn_tensor *c)
{
    bn_scope_begin();
    bn_no_grad_begin();
    cr_assert_eq(bn_set_grad(w, bn_mul(a, bn_sub(w, c))), BN_OK, "%s", bn_error_message());
    bn_no_grad_end();
    bn_scope_end();
}

static void check_trajectory(fx_file *f, const char *name, const char *tag, double rtol,
                             double atol)
{
    char pcase[64], ocase[64];
    snprintf(pcase, sizeof pcase, "problem_%s", tag);
    snprintf(ocase, sizeof ocase, "%s_%s", name, tag);
    bn_tensor *w[2] = {bnt_keep(bn_clone(bnt_keep(fx_tensor(f, pcase, "w0")))),
                       bnt_keep(bn_clone(bnt_keep(fx_tensor(f, pcase, "w1"))))};
    bn_tensor *a[2] = {bnt_keep(fx_tensor(f, pcase, "a0")), bnt_keep(fx_tensor(f, pcase, "a1"))};
    bn_tensor *c[2] = {bnt_keep(fx_tensor(f, pcase, "c0")), bnt_keep(fx_tensor(f, pcase, "c1"))};
    bn_tensor *traj = bnt_keep(fx_tensor(f, ocase, "traj"));
    for (int k = 0; k < 2; k++) bn_set_requires_grad(w[k], true);
    bn_optim *opt = make_optim(name, w);
    cr_assert_not_null(opt, "%s: %s", ocase, bn_error_message());
    for (int s = 0; s < STEPS; s++) {
        for (int k = 0; k < 2; k++) set_quadratic_grad(w[k], a[k], c[k]);
        cr_assert_eq(bn_optim_step(opt), BN_OK, "%s: %s", ocase, bn_error_message());
        bn_scope_begin();
        bn_tensor *flat[2] = {bn_reshape(w[0], BN_SHAPE(-1)), w[1]};
        char what[96];
        snprintf(what, sizeof what, "%s after step %d", ocase, s + 1);
        bnt_assert_close(bn_cat(flat, 2, 0), bn_select(traj, 0, s), rtol, atol, what);
        bn_scope_end();
    }
    cr_assert_eq(bn_optim_step_count(opt), STEPS);
    bn_optim_zero_grad(opt);
    for (int k = 0; k < 2; k++) cr_assert_null(bn_grad(w[k]));
    bn_optim_free(opt);
}

Test(optim, every_optimizer_matches_torch_for_20_steps_f32)
{
    fx_file *f = fx_open("optim.txt");
    for (size_t i = 0; i < sizeof optim_names / sizeof *optim_names; i++)
        check_trajectory(f, optim_names[i], "f32", 1e-6, 1e-7);
    fx_close(f);
}

Test(optim, every_optimizer_matches_torch_for_20_steps_f64)
{
    fx_file *f = fx_open("optim.txt");
    for (size_t i = 0; i < sizeof optim_names / sizeof *optim_names; i++)
        check_trajectory(f, optim_names[i], "f64", 1e-12, 1e-14);
    fx_close(f);
}

/* ---- one large parameter: chunks and threads ----------------------------------------------------
 * The fixture's w0 (5, 3) tiled TILES times into one (TILES * 15,) parameter, with a0 and c0 tiled
 * alike: the update is element-wise, so every tile must follow torch's trajectory of w0. The
 * parameter spans several of the CPU backend's chunks (tiles straddle their boundaries) and is
 * large enough to be threaded; w1 and an empty parameter ride in the same multi-tensor call. */
#define TILES 4409 /* 66135 elements: 5 chunks of 16384, threaded */

static bn_tensor *tiled(const bn_tensor *t)
{
    bn_tensor *row = bn_reshape(t, BN_SHAPE(1, 15));
    return bn_reshape(bn_contiguous(bn_expand(row, BN_SHAPE(TILES, 15))), BN_SHAPE(TILES * 15));
}

/* runs the case on `threads` threads; returns the big parameter after the last step (kept) */
static bn_tensor *check_tiled(fx_file *f, const char *name, const char *tag, double rtol,
                              double atol, int threads)
{
    char pcase[64], ocase[64];
    snprintf(pcase, sizeof pcase, "problem_%s", tag);
    snprintf(ocase, sizeof ocase, "%s_%s", name, tag);
    cr_assert_eq(bn_set_num_threads(threads), BN_OK, "%s", bn_error_message());
    bn_scope_begin();
    bn_tensor *w0 = bnt_keep(fx_tensor(f, pcase, "w0")), *w1 = bnt_keep(fx_tensor(f, pcase, "w1"));
    bn_dtype dt = bn_dtype_of(w0);
    bn_tensor *w[3] = {bn_clone(tiled(w0)), bn_clone(w1), bn_zeros(BN_SHAPE(0), dt)};
    bn_tensor *a[3] = {tiled(bnt_keep(fx_tensor(f, pcase, "a0"))), bnt_keep(fx_tensor(f, pcase, "a1")),
                       bn_zeros(BN_SHAPE(0), dt)};
    bn_tensor *c[3] = {tiled(bnt_keep(fx_tensor(f, pcase, "c0"))), bnt_keep(fx_tensor(f, pcase, "c1")),
                       bn_zeros(BN_SHAPE(0), dt)};
    bn_tensor *traj = bnt_keep(fx_tensor(f, ocase, "traj"));
    for (int k = 0; k < 3; k++) bn_set_requires_grad(w[k], true);
    bn_optim *opt = make_optim_n(name, w, 3);
    cr_assert_not_null(opt, "%s: %s", ocase, bn_error_message());
    for (int s = 0; s < STEPS; s++) {
        for (int k = 0; k < 3; k++) set_quadratic_grad(w[k], a[k], c[k]);
        cr_assert_eq(bn_optim_step(opt), BN_OK, "%s: %s", ocase, bn_error_message());
        bn_scope_begin();
        bn_tensor *row = bn_select(traj, 0, s);
        bn_tensor *want0 = bn_narrow(row, 0, 0, 15);
        /* every tile lies between the tiles' elementwise min and max (NaN propagates to both) */
        bn_tensor *tiles = bn_reshape(w[0], BN_SHAPE(TILES, 15));
        char what[128];
        snprintf(what, sizeof what, "%s, largest tile value after step %d on %d thread(s)", ocase,
                 s + 1, threads);
        bnt_assert_close(bn_max(tiles, 0, false), want0, rtol, atol, what);
        snprintf(what, sizeof what, "%s, smallest tile value after step %d on %d thread(s)", ocase,
                 s + 1, threads);
        bnt_assert_close(bn_min(tiles, 0, false), want0, rtol, atol, what);
        snprintf(what, sizeof what, "%s, w1 after step %d on %d thread(s)", ocase, s + 1, threads);
        bnt_assert_close(w[1], bn_narrow(row, 0, 15, 3), rtol, atol, what);
        bn_scope_end();
    }
    cr_assert_eq(bn_optim_step_count(opt), STEPS);
    bn_optim_free(opt);
    bn_tensor *big = bnt_keep(bn_scope_keep(w[0]));
    bn_scope_end();
    return big;
}

static void check_tiled_all(const char *tag, double rtol, double atol)
{
    fx_file *f = fx_open("optim.txt");
    for (size_t i = 0; i < sizeof optim_names / sizeof *optim_names; i++) {
        bn_tensor *one = check_tiled(f, optim_names[i], tag, rtol, atol, 1);
        /* the thread count cannot change a bit: checked on the rules with the most state */
        const char *name = optim_names[i];
        if (strcmp(name, "adam_wd_amsgrad") && strcmp(name, "rmsprop_centered") &&
            strcmp(name, "nadam_wd") && strcmp(name, "sgd_nesterov"))
            continue;
        bn_tensor *two = check_tiled(f, optim_names[i], tag, rtol, atol, 2);
        bn_scope_begin();
        int64_t differ = (int64_t)bn_item(bn_sum(bn_ne(one, two), BN_ALL, false));
        cr_assert_eq(differ, 0, "%s_%s: %lld elements differ between 1 and 2 threads",
                     optim_names[i], tag, (long long)differ);
        bn_scope_end();
    }
    fx_close(f);
}

Test(optim, a_large_tiled_parameter_follows_torch_on_every_tile_f32)
{
    check_tiled_all("f32", 1e-6, 1e-7);
}

Test(optim, a_large_tiled_parameter_follows_torch_on_every_tile_f64)
{
    check_tiled_all("f64", 1e-12, 1e-14);
}

/* one optimizer over f32 and f64 parameters makes one backend call per dtype; each parameter
 * must end exactly where an optimizer of its own takes it */
Test(optim, parameters_of_both_dtypes_update_like_separate_optimizers)
{
    bn_manual_seed(9);
    bn_scope_begin();
    bn_tensor *a = bn_randn(BN_SHAPE(40000), BN_F32), *b = bn_randn(BN_SHAPE(7), BN_F64);
    bn_tensor *c = bn_randn(BN_SHAPE(3, 5), BN_F32);
    bn_tensor *ps[3] = {a, b, c}, *qs[3] = {bn_clone(a), bn_clone(b), bn_clone(c)};
    for (int k = 0; k < 3; k++) {
        bn_set_requires_grad(ps[k], true);
        bn_set_requires_grad(qs[k], true);
    }
    bn_nadam_opts no = {.lr = 0.01, .weight_decay = 0.01};
    bn_optim *all = bn_optim_nadam_params(ps, 3, no);
    bn_optim *one[3];
    for (int k = 0; k < 3; k++) one[k] = bn_optim_nadam_params(&qs[k], 1, no);
    for (int s = 0; s < 4; s++) {
        for (int k = 0; k < 3; k++) {
            bn_tensor *g = bn_randn(bn_shape_of(ps[k]), bn_dtype_of(ps[k]));
            bn_set_grad(ps[k], g);
            bn_set_grad(qs[k], g);
            cr_assert_eq(bn_optim_step(one[k]), BN_OK, "%s", bn_error_message());
        }
        cr_assert_eq(bn_optim_step(all), BN_OK, "%s", bn_error_message());
    }
    for (int k = 0; k < 3; k++) {
        bnt_assert_equal(ps[k], qs[k], "one optimizer vs one per parameter");
        bn_optim_free(one[k]);
    }
    bn_optim_free(all);
    bn_scope_end();
}

Test(optim, a_strided_gradient_updates_like_its_contiguous_copy)
{
    bn_manual_seed(5);
    bn_scope_begin();
    bn_tensor *p1 = bn_randn(BN_SHAPE(3, 4), BN_F32), *p2 = bn_clone(p1);
    bn_tensor *gt = bn_randn(BN_SHAPE(4, 3), BN_F32);
    bn_tensor *g = bn_transpose(gt, 0, 1); /* (3, 4), not contiguous */
    bn_set_requires_grad(p1, true);
    bn_set_requires_grad(p2, true);
    bn_optim *o1 = bn_optim_adam_params(&p1, 1, (bn_adam_opts){.lr = 0.1});
    bn_optim *o2 = bn_optim_adam_params(&p2, 1, (bn_adam_opts){.lr = 0.1});
    for (int s = 0; s < 3; s++) {
        cr_assert_eq(bn_set_grad(p1, g), BN_OK);
        cr_assert_eq(bn_set_grad(p2, bn_contiguous(g)), BN_OK);
        cr_assert_eq(bn_optim_step(o1), BN_OK, "%s", bn_error_message());
        cr_assert_eq(bn_optim_step(o2), BN_OK, "%s", bn_error_message());
    }
    bnt_assert_equal(p1, p2, "strided vs contiguous gradient");
    bnt_assert_equal(bn_grad(p1), g, "the gradient itself is untouched");
    bn_optim_free(o1);
    bn_optim_free(o2);
    bn_scope_end();
}

/* ---- L-BFGS on Rosenbrock ------------------------------------------------------------------ */
/* closure: f = (1 - x)^2 + 100 (y - x^2)^2 and its gradient, set as x's grad */
static double rosenbrock(void *ctx)
{
    bn_tensor *p = ctx;
    double v[2];
    bn_tensor *c = bn_to_dtype(p, BN_F64);
    bn_copy_to_host(c, v, sizeof v);
    bn_release(c);
    double x = v[0], y = v[1];
    double f = (1 - x) * (1 - x) + 100 * (y - x * x) * (y - x * x);
    double g[2] = {-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)};
    bn_tensor *gt = bn_from_data(g, BN_SHAPE(2), BN_F64);
    bn_tensor *gc = bn_to_dtype(gt, bn_dtype_of(p));
    bn_set_grad(p, gc);
    bn_release(gt);
    bn_release(gc);
    return f;
}

static void check_lbfgs(fx_file *f, const char *name, bn_dtype dt, bool wolfe, double rtol)
{
    double x0[2] = {-1.5, 2.0};
    bn_tensor *x64 = bn_from_data(x0, BN_SHAPE(2), BN_F64);
    bn_tensor *x = bn_to_dtype(x64, dt);
    bn_release(x64);
    bn_set_requires_grad(x, true);
    bn_lbfgs_opts o = wolfe ? (bn_lbfgs_opts){.lr = 1, .max_iter = 20, .history_size = 10,
                                              .strong_wolfe = true}
                            : (bn_lbfgs_opts){.lr = 0.1, .max_iter = 10, .history_size = 10};
    bn_optim *opt = bn_optim_lbfgs_params(&x, 1, o);
    cr_assert_not_null(opt, "%s", bn_error_message());
    bn_tensor *xs = bnt_keep(fx_tensor(f, name, "x"));
    bn_tensor *losses = bnt_keep(fx_tensor(f, name, "loss"));
    for (int s = 0; s < 6; s++) {
        double loss = NAN;
        cr_assert_eq(bn_optim_lbfgs_step(opt, rosenbrock, x, &loss), BN_OK, "%s",
                     bn_error_message());
        bn_scope_begin();
        char what[64];
        snprintf(what, sizeof what, "%s x after step %d", name, s + 1);
        bnt_assert_close(x, bn_select(xs, 0, s), rtol, rtol, what);
        double want = bn_item(bn_select(losses, 0, s));
        cr_assert(fabs(loss - want) <= rtol * (fabs(want) + 1e-6), "%s loss %d: %.17g vs %.17g",
                  name, s + 1, loss, want);
        bn_scope_end();
    }
    bn_optim_free(opt);
    bn_release(x);
}

Test(optim, lbfgs_strong_wolfe_matches_torch_on_rosenbrock)
{
    fx_file *f = fx_open("optim.txt");
    check_lbfgs(f, "lbfgs_wolfe_f64", BN_F64, true, 1e-9);
    check_lbfgs(f, "lbfgs_plain_f64", BN_F64, false, 1e-9);
    fx_close(f);
}

/* torch runs f32 L-BFGS on float32 vectors, born on doubles: the paths differ in the last bits
 * (and, without a line search, Rosenbrock amplifies that), but both reach the minimum. */
Test(optim, lbfgs_f32_reaches_the_rosenbrock_minimum)
{
    fx_file *f = fx_open("optim.txt");
    double x0[2] = {-1.5f, 2.0f};
    bn_tensor *x64 = bn_from_data(x0, BN_SHAPE(2), BN_F64);
    bn_tensor *x = bn_to_dtype(x64, BN_F32);
    bn_release(x64);
    bn_set_requires_grad(x, true);
    bn_optim *opt = bn_optim_lbfgs_params(
        &x, 1, (bn_lbfgs_opts){.lr = 1, .history_size = 10, .strong_wolfe = true});
    for (int s = 0; s < 6; s++) cr_assert_eq(bn_optim_lbfgs_step(opt, rosenbrock, x, NULL), BN_OK);
    bn_scope_begin();
    bn_tensor *want = bn_select(bnt_keep(fx_tensor(f, "lbfgs_wolfe_f32", "x")), 0, 5);
    bnt_assert_close(x, want, 1e-3, 1e-3, "f32 L-BFGS end point");
    bn_scope_end();
    bn_optim_free(opt);
    bn_release(x);
    fx_close(f);
}

/* ---- behaviour ---------------------------------------------------------------------------------- */
Test(optim, step_skips_params_without_grad)
{
    bn_scope_begin();
    bn_tensor *a = bn_ones(BN_SHAPE(3), BN_F32), *b = bn_ones(BN_SHAPE(2), BN_F32);
    bn_set_requires_grad(a, true);
    bn_set_requires_grad(b, true);
    bn_optim *o = bn_optim_sgd_params((bn_tensor *[]){a, b}, 2, (bn_sgd_opts){.lr = 0.5});
    bn_set_grad(a, bn_full(BN_SHAPE(3), 2.0, BN_F32));
    cr_assert_eq(bn_optim_step(o), BN_OK);
    bnt_assert_values(a, (double[]){0, 0, 0}, 3, 0, "a updated");
    bnt_assert_values(b, (double[]){1, 1}, 2, 0, "b untouched (no grad)");
    cr_assert_eq(bn_optim_get_lr(o), 0.5);
    cr_assert_eq(bn_optim_set_lr(o, 0.25), BN_OK);
    cr_assert_eq(bn_optim_get_lr(o), 0.25);
    cr_assert_str_eq(bn_optim_name(o), "SGD");
    bn_optim_free(o);
    bn_scope_end();
}

Test(optim, step_bumps_the_version_so_saved_graphs_notice)
{
    bn_scope_begin();
    bn_tensor *p = bn_ones(BN_SHAPE(2), BN_F64);
    bn_set_requires_grad(p, true);
    bn_optim *o = bn_optim_sgd_params(&p, 1, (bn_sgd_opts){.lr = 0.1});
    bn_tensor *y = bn_sum(bn_mul(p, p), BN_ALL, false); /* saves p */
    bn_set_grad(p, bn_ones(BN_SHAPE(2), BN_F64));
    cr_assert_eq(bn_optim_step(o), BN_OK);
    cr_assert_neq(bn_backward(y), BN_OK, "the graph saw p before the update");
    bnt_assert_error(bn_error_code(), "modified", NULL);
    bn_optim_free(o);
    bn_scope_end();
}

Test(optim, gradients_from_backward_drive_adam_on_a_module)
{
    bn_manual_seed(1);
    bn_scope_begin();
    bn_module *m = bn_nn_linear(4, 1, true);
    cr_assert_not_null(m, "%s", bn_error_message());
    bn_optim *o = bn_optim_adam(m, (bn_adam_opts){.lr = 0.05});
    cr_assert_not_null(o, "%s", bn_error_message());
    cr_assert_eq(bn_optim_num_params(o), 2);
    bn_tensor *x = bn_randn(BN_SHAPE(16, 4), BN_F32);
    bn_tensor *y = bn_sum(x, 1, true);
    double first = 0, last = 0;
    for (int s = 0; s < 100; s++) {
        bn_scope_begin();
        bn_optim_zero_grad(o);
        bn_tensor *d = bn_sub(bn_module_forward(m, x), y);
        bn_tensor *loss = bn_mean(bn_mul(d, d), BN_ALL, false);
        cr_assert_eq(bn_backward(loss), BN_OK, "%s", bn_error_message());
        cr_assert_eq(bn_optim_step(o), BN_OK);
        if (s == 0) first = bn_item(loss);
        last = bn_item(loss);
        bn_scope_end();
    }
    cr_assert(last < first * 0.05, "loss %g -> %g", first, last);
    bn_optim_free(o);
    bn_module_free(m);
    bn_scope_end();
}

Test(optim, state_is_named_and_live)
{
    bn_scope_begin();
    bn_tensor *a = bn_ones(BN_SHAPE(2), BN_F64);
    bn_set_requires_grad(a, true);
    bn_optim *o = bn_optim_adam_params(&a, 1, (bn_adam_opts){.amsgrad = true});
    cr_assert_eq(bn_optim_state_count(o), 3);
    const char *name = NULL;
    bn_tensor *m = bn_optim_state(o, 0, &name);
    cr_assert_str_eq(name, "0.exp_avg");
    bn_optim_state(o, 2, &name);
    cr_assert_str_eq(name, "0.max_exp_avg_sq");
    bn_set_grad(a, bn_full(BN_SHAPE(2), 1.0, BN_F64));
    bn_optim_step(o);
    bnt_assert_values(m, (double[]){0.1, 0.1}, 2, 1e-15, "exp_avg after one step");
    cr_assert_eq(bn_optim_step_count(o), 1);
    cr_assert_eq(bn_optim_set_step_count(o, 7), BN_OK);
    cr_assert_eq(bn_optim_step_count(o), 7);
    cr_assert_null(bn_optim_state(o, 3, NULL));
    bnt_assert_error(BN_ERR_ARG, "bn_optim_state", "index 3", "[0, 3)", NULL);
    bn_optim_free(o);
    bn_scope_end();
}

Test(optim, bn_zero_asks_for_an_exact_zero)
{
    bn_scope_begin();
    bn_tensor *a = bn_ones(BN_SHAPE(1), BN_F64);
    bn_set_requires_grad(a, true);
    /* beta1 = 0: exp_avg is the gradient itself; AdamW's weight decay off */
    bn_optim *o = bn_optim_adamw_params(&a, 1, (bn_adam_opts){.lr = 0.1, .beta1 = BN_ZERO,
                                                               .weight_decay = BN_ZERO});
    bn_set_grad(a, bn_full(BN_SHAPE(1), 3.0, BN_F64));
    bn_optim_step(o);
    bn_set_grad(a, bn_full(BN_SHAPE(1), 5.0, BN_F64));
    bn_optim_step(o);
    bn_tensor *m = bn_optim_state(o, 0, NULL);
    bnt_assert_values(m, (double[]){5}, 1, 0, "exp_avg with beta1 exactly 0");
    bn_optim_free(o);
    bn_scope_end();
}

/* ---- clipping ------------------------------------------------------------------------------------ */
Test(optim, clip_grad_norm_scales_like_torch)
{
    bn_scope_begin();
    bn_tensor *a = bn_zeros(BN_SHAPE(2), BN_F32), *b = bn_zeros(BN_SHAPE(1), BN_F32);
    bn_tensor *c = bn_zeros(BN_SHAPE(1), BN_F32); /* no grad: skipped */
    bn_set_grad(a, bn_from_data((float[]){3, 4}, BN_SHAPE(2), BN_F32));
    bn_set_grad(b, bn_from_data((float[]){12}, BN_SHAPE(1), BN_F32));
    bn_tensor *ps[] = {a, b, c};
    double norm = bn_clip_grad_norm(ps, 3, 6.5, 2);
    cr_assert_float_eq(norm, 13.0, 1e-9);
    double coef = 6.5 / (13.0 + 1e-6);
    bnt_assert_values(bn_grad(a), (double[]){3 * coef, 4 * coef}, 2, 1e-6, "a clipped");
    bnt_assert_values(bn_grad(b), (double[]){12 * coef}, 1, 1e-6, "b clipped");
    /* infinity norm; below max_norm nothing changes */
    norm = bn_clip_grad_norm(ps, 3, 100, INFINITY);
    cr_assert_float_eq(norm, 12 * coef, 1e-5);
    bnt_assert_values(bn_grad(b), (double[]){12 * coef}, 1, 1e-6, "unchanged");
    cr_assert_eq(bn_clip_grad_value(ps, 3, 2.0), BN_OK);
    bnt_assert_values(bn_grad(a), (double[]){1.5, 2}, 2, 1e-6, "clamped a");
    bnt_assert_values(bn_grad(b), (double[]){2}, 1, 0, "clamped b");
    bn_scope_end();
}

/* the total norm against its definition (sum over every element of |g|^p, in double), for
 * gradients of both dtypes, one of them strided, and a NaN that must reach the total */
static double norm_by_definition(bn_tensor *const *ps, int n, double p)
{
    double acc = 0;
    for (int i = 0; i < n; i++) {
        bn_tensor *g = bn_grad(ps[i]);
        if (!g) continue;
        bn_tensor *d = bn_to_dtype(g, BN_F64);
        int64_t m = bn_numel(d);
        double *v = malloc(sizeof(double) * (size_t)(m ? m : 1));
        cr_assert_eq(bn_copy_to_host(d, v, sizeof(double) * (size_t)m), BN_OK);
        for (int64_t j = 0; j < m; j++) {
            double a = fabs(v[j]);
            if (isinf(p)) acc = (a > acc || isnan(a)) ? a : acc;
            else acc += pow(a, p);
        }
        free(v);
    }
    return isinf(p) ? acc : pow(acc, 1.0 / p);
}

Test(optim, clip_grad_norm_follows_the_definition_for_every_norm_type)
{
    bn_manual_seed(21);
    bn_scope_begin();
    const double types[] = {1, 2, 3, 0.5, INFINITY};
    for (int t = 0; t < 5; t++) {
        bn_tensor *a = bn_zeros(BN_SHAPE(4, 3), BN_F32), *b = bn_zeros(BN_SHAPE(50000), BN_F64);
        bn_tensor *c = bn_zeros(BN_SHAPE(0), BN_F32), *d = bn_zeros(BN_SHAPE(2), BN_F32);
        bn_set_grad(a, bn_transpose(bn_randn(BN_SHAPE(3, 4), BN_F32), 0, 1)); /* strided */
        bn_set_grad(b, bn_randn(BN_SHAPE(50000), BN_F64));
        bn_set_grad(c, bn_zeros(BN_SHAPE(0), BN_F32)); /* empty: adds nothing */
        bn_tensor *ps[] = {a, b, c, d};                /* d: no gradient */
        double want = norm_by_definition(ps, 4, types[t]);
        bn_tensor *ga = bn_grad(a), *gb = bn_grad(b);
        double got = bn_clip_grad_norm(ps, 4, 0.5, types[t]);
        cr_assert(fabs(got - want) <= 1e-12 * want, "norm_type %g: %.17g, expected %.17g",
                  types[t], got, want);
        double coef = 0.5 / (want + 1e-6);
        bnt_assert_close(bn_grad(a), bn_mul_scalar(ga, coef), 1e-6, 0, "a scaled");
        bnt_assert_close(bn_grad(b), bn_mul_scalar(gb, coef), 1e-12, 0, "b scaled");
        cr_assert_null(bn_grad(d));
    }
    /* a NaN anywhere makes the total NaN, and every gradient follows (like torch) */
    bn_tensor *a = bn_zeros(BN_SHAPE(2), BN_F32), *b = bn_zeros(BN_SHAPE(1), BN_F32);
    bn_set_grad(a, bn_from_data((float[]){1, NAN}, BN_SHAPE(2), BN_F32));
    bn_set_grad(b, bn_from_data((float[]){100}, BN_SHAPE(1), BN_F32));
    for (int t = 0; t < 2; t++) {
        double norm = bn_clip_grad_norm((bn_tensor *[]){a, b}, 2, 1.0, t ? INFINITY : 2);
        cr_assert(isnan(norm), "norm_type %s: %g", t ? "inf" : "2", norm);
        cr_assert(isnan(bn_item(bn_grad(b))), "b's gradient became NaN");
    }
    bn_scope_end();
}

Test(optim, clipping_rejects_bad_arguments)
{
    BNT_ASSERT_NO_LEAK({
        bn_tensor *a = bn_zeros(BN_SHAPE(2), BN_F32);
        cr_assert_eq(bn_clip_grad_norm(NULL, 1, 1, 2), -1);
        bnt_assert_error(BN_ERR_ARG, "bn_clip_grad_norm", "params", "NULL", NULL);
        cr_assert_eq(bn_clip_grad_norm(&a, 1, 1, -1), -1);
        bnt_assert_error(BN_ERR_ARG, "bn_clip_grad_norm", "norm_type = -1", NULL);
        cr_assert_eq(bn_clip_grad_value(&a, 1, -2), BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "bn_clip_grad_value", "clip_value = -2", NULL);
        bn_release(a);
    });
}

/* ---- bad input ------------------------------------------------------------------------------------ */
Test(optim, constructors_reject_bad_params_and_options)
{
    BNT_ASSERT_NO_LEAK({
        bn_tensor *i = bn_zeros(BN_SHAPE(2), BN_I64);
        bn_tensor *f = bn_zeros(BN_SHAPE(2, 3), BN_F32);
        bn_tensor *t = bn_transpose(f, 0, 1);
        cr_assert_null(bn_optim_sgd_params(NULL, 1, (bn_sgd_opts){0}));
        bnt_assert_error(BN_ERR_ARG, "bn_optim_sgd", "params", "NULL", NULL);
        cr_assert_null(bn_optim_adam_params(&f, 0, (bn_adam_opts){0}));
        bnt_assert_error(BN_ERR_ARG, "bn_optim_adam", "0 parameters", NULL);
        cr_assert_null(bn_optim_adam_params(&i, 1, (bn_adam_opts){0}));
        bnt_assert_error(BN_ERR_DTYPE, "bn_optim_adam", "params[0]", "i64", NULL);
        cr_assert_null(bn_optim_rmsprop_params(&t, 1, (bn_rmsprop_opts){0}));
        bnt_assert_error(BN_ERR_ARG, "bn_optim_rmsprop", "params[0]", "[3, 2]", "contiguous",
                         NULL);
        cr_assert_null(bn_optim_sgd_params((bn_tensor *[]){f, f}, 2, (bn_sgd_opts){0}));
        bnt_assert_error(BN_ERR_ARG, "bn_optim_sgd", "params[0] and params[1]", NULL);
        cr_assert_null(bn_optim_sgd_params(&f, 1, (bn_sgd_opts){.lr = -1}));
        bnt_assert_error(BN_ERR_ARG, "bn_optim_sgd", "lr = -1", NULL);
        cr_assert_null(bn_optim_sgd_params(&f, 1, (bn_sgd_opts){.nesterov = true}));
        bnt_assert_error(BN_ERR_ARG, "bn_optim_sgd", "nesterov", "momentum 0", NULL);
        cr_assert_null(bn_optim_adam_params(&f, 1, (bn_adam_opts){.beta2 = 1.5}));
        bnt_assert_error(BN_ERR_ARG, "bn_optim_adam", "beta2 = 1.5", NULL);
        cr_assert_null(bn_optim_adadelta_params(&f, 1, (bn_adadelta_opts){.rho = 2}));
        bnt_assert_error(BN_ERR_ARG, "bn_optim_adadelta", "rho = 2", NULL);
        cr_assert_null(bn_optim_adagrad(NULL, (bn_adagrad_opts){0}));
        bnt_assert_error(BN_ERR_ARG, "bn_optim_adagrad", "m", NULL);
        bn_release(t);
        bn_release(f);
        bn_release(i);
    });
}

Test(optim, step_rejects_mismatched_grads_and_missing_closures)
{
    BNT_ASSERT_NO_LEAK({
        cr_assert_eq(bn_optim_step(NULL), BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "bn_optim_step", "NULL", NULL);
        bn_tensor *f = bn_zeros(BN_SHAPE(2), BN_F32);
        bn_optim *l = bn_optim_lbfgs_params(&f, 1, (bn_lbfgs_opts){0});
        cr_assert_eq(bn_optim_step(l), BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "bn_optim_step", "bn_optim_lbfgs_step", NULL);
        cr_assert_eq(bn_optim_lbfgs_step(l, NULL, NULL, NULL), BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "bn_optim_lbfgs_step", "closure", NULL);
        bn_optim *s = bn_optim_sgd_params(&f, 1, (bn_sgd_opts){0});
        cr_assert_eq(bn_optim_lbfgs_step(s, rosenbrock, f, NULL), BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "bn_optim_lbfgs_step", "SGD", "not LBFGS", NULL);
        cr_assert_eq(bn_optim_set_lr(s, -1), BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "bn_optim_set_lr", "lr = -1", NULL);
        bn_optim_free(s);
        bn_optim_free(l);
        bn_release(f);
    });
}
