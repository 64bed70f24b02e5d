/* tests/backend/test_cuda_optim.c — optimizers on the GPU against the CPU backend: every
 * configuration of tests/unit/test_optim.c for 20 steps over several parameters at once (empty,
 * tiny, spanning several kernel chunks, one launch's worth of tensors and more), torch's own
 * trajectory on the fixture problem, state tensors that live on the GPU and carry over from a CPU
 * optimizer, gradient clipping on the GPU, and the errors: mixed devices, a gradient on another
 * device, L-BFGS off the CPU. Without a GPU (or the plugin) every test skips.
 * Tolerances (issue 5): f32 rel 1e-5, f64 1e-12; the kernels round like the CPU's, so the
 * results are expected to agree to the bit. Fixtures: tests/data/optim.txt (scripts/gen_optim.py). */
#include "bn_test.h"
#include "bn_test_cuda.h"

#include "born/autograd.h"
#include "born/cuda.h"
#include "born/optim.h"

#include <math.h>
#include <string.h>

static void fini(void) { bnt_release_kept(); }
TestSuite(cuda_optim, .fini = fini);

#define STEPS 20

static double rtol_of(bn_dtype dt) { return dt == BN_F32 ? 1e-5 : 1e-12; }
static double atol_of(bn_dtype dt) { return dt == BN_F32 ? 1e-6 : 1e-13; }

/* got lives on the GPU and is close to want (on the CPU) */
/* the configurations of tests/unit/test_optim.c (scripts/gen_optim.py), over p[0 .. n) */
static bn_optim *make_optim(const char *name, bn_tensor *const *p, int n)
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

static const char *const optim_names[] = {
    "sgd",      "sgd_momentum",     "sgd_nesterov",  "sgd_maximize", "adam",
    "adam_wd_amsgrad", "adam_maximize", "adamw",   "adamw_wd",     "rmsprop",
    "rmsprop_centered", "adagrad",  "adagrad_decay", "adadelta",     "adadelta_wd",
    "nadam",    "nadam_wd"};
#define NCONF ((int)(sizeof optim_names / sizeof *optim_names))

/* g = a * (w - c) on w's device: the gradient of sum(a (w - c)^2) / 2 */
static void set_quadratic_grad(bn_tensor *w, const bn_tensor *a, const bn_tensor *c)
{
    bn_scope_begin();
    bn_no_grad_begin();
    cr_assert_eq(bn_set_grad(w, bn_mul(a, bn_sub(w, c))), BN_OK, "%s", bn_error_message());
    bn_no_grad_end();
    bn_scope_end();
}

/* ---- every configuration, GPU against CPU ------------------------------------------------------
 * n parameters of the given sizes, one problem on the CPU and its copy on the GPU, stepped side
 * by side for 20 steps; parameter 1 gets no gradient on some steps (its state must not move). */
static void compare_case(const char *name, bn_dtype dt, const int64_t *sizes, int n)
{
    bn_scope_begin();
    bn_tensor *wc[64], *wg[64], *ac[64], *ag[64], *cc[64], *cg[64];
    cr_assert_leq(n, 64);
    for (int k = 0; k < n; k++) {
        wc[k] = bn_to_dtype(bn_randn(BN_SHAPE(sizes[k]), BN_F64), dt);
        ac[k] = bn_to_dtype(bn_add_scalar(bn_rand(BN_SHAPE(sizes[k]), BN_F64), 0.1), dt);
        cc[k] = bn_to_dtype(bn_randn(BN_SHAPE(sizes[k]), BN_F64), dt);
        wg[k] = gpu(wc[k]);
        ag[k] = gpu(ac[k]);
        cg[k] = gpu(cc[k]);
        cr_assert_not_null(cg[k], "%s", bn_error_message());
        bn_set_requires_grad(wc[k], true);
        bn_set_requires_grad(wg[k], true);
    }
    bn_optim *oc = make_optim(name, wc, n), *og = make_optim(name, wg, n);
    cr_assert_not_null(oc, "%s: %s", name, bn_error_message());
    cr_assert_not_null(og, "%s on the GPU: %s", name, bn_error_message());
    char what[128];
    for (int s = 0; s < STEPS; s++) {
        for (int k = 0; k < n; k++) {
            if (k == 1 && s % 7 == 3) {
                bn_set_grad(wc[k], NULL);
                bn_set_grad(wg[k], NULL);
                continue;
            }
            set_quadratic_grad(wc[k], ac[k], cc[k]);
            set_quadratic_grad(wg[k], ag[k], cg[k]);
        }
        cr_assert_eq(bn_optim_step(oc), BN_OK, "%s: %s", name, bn_error_message());
        cr_assert_eq(bn_optim_step(og), BN_OK, "%s on the GPU: %s", name, bn_error_message());
        bn_scope_begin();
        for (int k = 0; k < n; k++) {
            snprintf(what, sizeof what, "%s %s: params[%d] (%lld) after step %d", name,
                     bn_dtype_name(dt), k, (long long)sizes[k], s + 1);
            expect_close(wg[k], wc[k], rtol_of(dt), atol_of(dt), what);
        }
        bn_scope_end();
    }
    cr_assert_eq(bn_optim_state_count(og), bn_optim_state_count(oc));
    for (int i = 0; i < bn_optim_state_count(oc); i++) {
        bn_scope_begin();
        const char *nc = NULL, *ng = NULL;
        bn_tensor *sc = bn_optim_state(oc, i, &nc);
        char cname[64];
        snprintf(cname, sizeof cname, "%s", nc);
        bn_tensor *sg = bn_optim_state(og, i, &ng);
        cr_assert_str_eq(ng, cname);
        snprintf(what, sizeof what, "%s %s: state %s", name, bn_dtype_name(dt), cname);
        expect_close(sg, sc, rtol_of(dt), atol_of(dt), what);
        bn_scope_end();
    }
    bn_optim_free(oc);
    bn_optim_free(og);
    bn_scope_end();
}

static void compare_all(bn_dtype dt)
{
    /* empty, tiny, the problem's sizes, several 8192-element chunks with a ragged end */
    const int64_t sizes[] = {15, 3, 0, 70001, 8193, 1};
    BNT_ASSERT_NO_LEAK({
        for (int i = 0; i < NCONF; i++) {
            bn_manual_seed(11 + (uint64_t)i);
            compare_case(optim_names[i], dt, sizes, 6);
        }
    });
}

Test(cuda_optim, every_optimizer_matches_the_cpu_for_20_steps_f32)
{
    NEED_GPU();
    compare_all(BN_F32);
}

Test(cuda_optim, every_optimizer_matches_the_cpu_for_20_steps_f64)
{
    NEED_GPU();
    compare_all(BN_F64);
}

/* more tensors than one launch carries (36), of sizes around the chunk length */
Test(cuda_optim, many_tensors_take_several_launches)
{
    NEED_GPU();
    int64_t sizes[64];
    for (int k = 0; k < 64; k++) sizes[k] = (k * 977 + (k % 5) * 8191) % 20000;
    const char *names[] = {"adam_wd_amsgrad", "rmsprop_centered", "sgd_nesterov", "nadam_wd"};
    for (int i = 0; i < 4; i++) {
        bn_manual_seed(40 + (uint64_t)i);
        compare_case(names[i], BN_F32, sizes, 64);
    }
}

/* torch.optim's own trajectory on the fixture problem, run on the GPU */
Test(cuda_optim, every_optimizer_follows_torch_on_the_gpu)
{
    NEED_GPU();
    fx_file *f = fx_open("optim.txt");
    const char *tags[2] = {"f32", "f64"};
    for (int t = 0; t < 2; t++)
        for (int i = 0; i < NCONF; i++) {
            bn_scope_begin();
            char pcase[64], ocase[64];
            snprintf(pcase, sizeof pcase, "problem_%s", tags[t]);
            snprintf(ocase, sizeof ocase, "%s_%s", optim_names[i], tags[t]);
            bn_tensor *w[2] = {gpu(bnt_keep(fx_tensor(f, pcase, "w0"))), gpu(bnt_keep(fx_tensor(f, pcase, "w1")))};
            bn_tensor *a[2] = {gpu(bnt_keep(fx_tensor(f, pcase, "a0"))), gpu(bnt_keep(fx_tensor(f, pcase, "a1")))};
            bn_tensor *c[2] = {gpu(bnt_keep(fx_tensor(f, pcase, "c0"))), gpu(bnt_keep(fx_tensor(f, pcase, "c1")))};
            bn_tensor *traj = bnt_keep(fx_tensor(f, ocase, "traj"));
            for (int k = 0; k < 2; k++) bn_set_requires_grad(w[k], true);
            bn_optim *o = make_optim(optim_names[i], w, 2);
            cr_assert_not_null(o, "%s: %s", ocase, bn_error_message());
            double rtol = t == 0 ? 1e-5 : 1e-12, atol = t == 0 ? 1e-6 : 1e-14;
            for (int s = 0; s < STEPS; s++) {
                for (int k = 0; k < 2; k++) set_quadratic_grad(w[k], a[k], c[k]);
                cr_assert_eq(bn_optim_step(o), BN_OK, "%s: %s", ocase, bn_error_message());
                bn_scope_begin();
                bn_tensor *flat[2] = {bn_reshape(w[0], BN_SHAPE(-1)), w[1]};
                char what[96];
                snprintf(what, sizeof what, "%s on the GPU after step %d", ocase, s + 1);
                expect_close(bn_cat(flat, 2, 0), bn_select(traj, 0, s), rtol, atol, what);
                bn_scope_end();
            }
            bn_optim_free(o);
            bn_scope_end();
        }
    fx_close(f);
}

/* ---- state -------------------------------------------------------------------------------------- */
Test(cuda_optim, state_lives_on_the_gpu_and_carries_over_from_a_cpu_optimizer)
{
    NEED_GPU();
    BNT_ASSERT_NO_LEAK({
        const char *names[] = {"adam_wd_amsgrad", "nadam_wd", "rmsprop_centered", "adagrad_decay",
                               "sgd_momentum"};
        for (int i = 0; i < 5; i++) {
            bn_manual_seed(60 + (uint64_t)i);
            bn_scope_begin();
            bn_tensor *wc = bn_randn(BN_SHAPE(5000), BN_F32), *a = bn_rand(BN_SHAPE(5000), BN_F32);
            bn_tensor *c = bn_randn(BN_SHAPE(5000), BN_F32);
            bn_set_requires_grad(wc, true);
            bn_optim *oc = make_optim(names[i], &wc, 1);
            for (int s = 0; s < 5; s++) {
                set_quadratic_grad(wc, a, c);
                cr_assert_eq(bn_optim_step(oc), BN_OK);
            }
            /* a checkpoint's path: parameters, state tensors and step count onto the GPU */
            bn_tensor *wg = gpu(bn_detach(wc));
            bn_set_requires_grad(wg, true);
            bn_optim *og = make_optim(names[i], &wg, 1);
            cr_assert_not_null(og, "%s", bn_error_message());
            cr_assert_eq(bn_optim_state_count(og), bn_optim_state_count(oc));
            for (int k = 0; k < bn_optim_state_count(og); k++) {
                bn_tensor *sg = bn_optim_state(og, k, NULL);
                cr_assert_eq(bn_device_of(sg).type, BN_DEVICE_CUDA, "%s state %d", names[i], k);
                cr_assert_eq(bn_copy_(sg, gpu(bn_optim_state(oc, k, NULL))), BN_OK, "%s",
                             bn_error_message());
            }
            cr_assert_eq(bn_optim_set_step_count(og, bn_optim_step_count(oc)), BN_OK);
            bn_tensor *ag = gpu(a), *cg = gpu(c);
            for (int s = 0; s < 5; s++) {
                set_quadratic_grad(wc, a, c);
                set_quadratic_grad(wg, ag, cg);
                cr_assert_eq(bn_optim_step(oc), BN_OK);
                cr_assert_eq(bn_optim_step(og), BN_OK, "%s", bn_error_message());
            }
            expect_close(wg, wc, 1e-5, 1e-6, names[i]);
            cr_assert_eq(bn_optim_step_count(og), 10);
            bn_optim_free(oc);
            bn_optim_free(og);
            bn_scope_end();
        }
    });
}

/* ---- clipping ----------------------------------------------------------------------------------- */
Test(cuda_optim, clipping_on_the_gpu_matches_the_cpu)
{
    NEED_GPU();
    BNT_ASSERT_NO_LEAK({
        const double norms[] = {2, 1, 3, INFINITY};
        for (int t = 0; t < 2; t++)
            for (int i = 0; i < 4; i++) {
                bn_manual_seed(70 + (uint64_t)i);
                bn_scope_begin();
                bn_dtype dt = t ? BN_F64 : BN_F32;
                int64_t sizes[] = {300, 0, 70001, 7};
                bn_tensor *pc[5], *pg[5];
                for (int k = 0; k < 4; k++) {
                    pc[k] = bn_zeros(BN_SHAPE(sizes[k]), dt);
                    pg[k] = gpu(pc[k]);
                    bn_tensor *g = bn_to_dtype(bn_randn(BN_SHAPE(sizes[k]), BN_F64), dt);
                    bn_set_grad(pc[k], g);
                    bn_set_grad(pg[k], gpu(g));
                }
                pc[4] = bn_zeros(BN_SHAPE(2), dt); /* no gradient: skipped */
                pg[4] = gpu(pc[4]);
                double nc = bn_clip_grad_norm(pc, 5, 1.5, norms[i]);
                double ng = bn_clip_grad_norm(pg, 5, 1.5, norms[i]);
                cr_assert_gt(nc, 1.5);
                cr_assert(fabs(ng - nc) <= 1e-12 * nc, "norm %g: %.17g on the GPU, %.17g", norms[i],
                          ng, nc);
                for (int k = 0; k < 4; k++)
                    expect_close(bn_grad(pg[k]), bn_grad(pc[k]), rtol_of(dt), 0, "clipped by norm");
                cr_assert_null(bn_grad(pg[4]));
                cr_assert_eq(bn_clip_grad_value(pc, 5, 0.01), BN_OK);
                cr_assert_eq(bn_clip_grad_value(pg, 5, 0.01), BN_OK, "%s", bn_error_message());
                for (int k = 0; k < 4; k++)
                    /* the inputs already differ by the norm clipping's rounding */
                    expect_close(bn_grad(pg[k]), bn_grad(pc[k]), rtol_of(dt), 0,
                                 "clipped by value");
                bn_scope_end();
            }
    });
}

Test(cuda_optim, clip_grad_norm_sums_gradients_across_devices)
{
    NEED_GPU();
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_tensor *a = bn_zeros(BN_SHAPE(2), BN_F32), *b = gpu(bn_zeros(BN_SHAPE(1), BN_F32));
        bn_set_grad(a, bn_from_data((float[]){3, 4}, BN_SHAPE(2), BN_F32));
        bn_set_grad(b, gpu(bn_from_data((float[]){12}, BN_SHAPE(1), BN_F32)));
        bn_tensor *ps[] = {b, a};
        double norm = bn_clip_grad_norm(ps, 2, 6.5, 2);
        cr_assert_float_eq(norm, 13.0, 1e-9, "%s", bn_error_message());
        double coef = 6.5 / (13.0 + 1e-6);
        bnt_assert_values(bn_grad(a), (double[]){3 * coef, 4 * coef}, 2, 1e-6, "a clipped");
        bnt_assert_values(cpu(bn_grad(b)), (double[]){12 * coef}, 1, 1e-6, "b clipped");
        cr_assert_eq(bn_device_of(bn_grad(b)).type, BN_DEVICE_CUDA);
        bn_scope_end();
    });
}

/* ---- errors ------------------------------------------------------------------------------------- */
Test(cuda_optim, mixed_devices_are_rejected)
{
    NEED_GPU();
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_tensor *c = bn_zeros(BN_SHAPE(3), BN_F32);
        bn_tensor *g = gpu(bn_zeros(BN_SHAPE(2), BN_F32));
        cr_assert_null(bn_optim_adam_params((bn_tensor *[]){c, g}, 2, (bn_adam_opts){0}));
        bnt_assert_error(BN_ERR_DEVICE, "bn_optim_adam", "params[0]", "cpu:0", "params[1]",
                         "cuda:0", NULL);
        cr_assert_null(bn_optim_sgd_params((bn_tensor *[]){g, c}, 2, (bn_sgd_opts){0}));
        bnt_assert_error(BN_ERR_DEVICE, "bn_optim_sgd", "params[0]", "cuda:0", "params[1]", "cpu:0",
                         NULL);
        /* a gradient on another device than its parameter */
        bn_optim *o = bn_optim_sgd_params(&g, 1, (bn_sgd_opts){.lr = 0.1});
        cr_assert_not_null(o, "%s", bn_error_message());
        bn_set_grad(g, bn_ones(BN_SHAPE(2), BN_F32));
        cr_assert_eq(bn_optim_step(o), BN_ERR_DEVICE);
        bnt_assert_error(BN_ERR_DEVICE, "bn_optim_step", "params[0]", "cuda:0", "cpu:0", NULL);
        cr_assert_eq(bn_optim_step_count(o), 0);
        bn_optim_free(o);
        /* L-BFGS stays on the CPU */
        cr_assert_null(bn_optim_lbfgs_params(&g, 1, (bn_lbfgs_opts){0}));
        bnt_assert_error(BN_ERR_UNSUPPORTED, "bn_optim_lbfgs", "CPU", "cuda:0", NULL);
        bn_scope_end();
    });
}
