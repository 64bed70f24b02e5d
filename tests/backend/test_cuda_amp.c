/* tests/backend/test_cuda_amp.c — mixed precision on the GPU (born/amp.h): autocast's
 * low-precision ops (matmul, linear, conv2d) on CUDA tensors against the same region on the
 * CPU, the grad scaler's inf/NaN check and unscaling with the gradients on the GPU, and a small
 * MLP trained on the GPU with bf16 and fp16 autocast (+ the scaler) whose losses follow the f32
 * run's. Without a GPU (or the plugin) every test skips. */
#include "bn_test.h"
#include "bn_test_cuda.h"

#include "born/amp.h"
#include "born/autograd.h"
#include "born/cuda.h"
#include "born/nn.h"
#include "born/optim.h"

#include <math.h>


static const bn_dtype lows[] = {BN_BF16, BN_F16};

static void expect_on_gpu(const bn_tensor *t, bn_dtype dt, const char *what)
{
    cr_assert_not_null(t, "%s: %s", what, bn_error_message());
    cr_assert_eq(bn_device_of(t).type, BN_DEVICE_CUDA, "%s: not on the GPU", what);
    cr_assert_eq(bn_dtype_of(t), dt, "%s: %s, want %s", what, bn_dtype_name(bn_dtype_of(t)),
                 bn_dtype_name(dt));
}

/* ---- autocast's ops on the GPU ---------------------------------------------------------------- */
Test(cuda_amp, low_precision_ops_match_the_cpu_under_autocast)
{
    NEED_GPU();
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        for (int k = 0; k < 2; k++) {
            bn_dtype low = lows[k];
            double tol = low == BN_BF16 ? 1e-2 : 1e-3;
            bn_tensor *a = bn_randn(BN_SHAPE(3, 17, 40), BN_F32);
            bn_tensor *b = bn_randn(BN_SHAPE(40, 9), BN_F32);
            bn_tensor *w = bn_randn(BN_SHAPE(9, 40), BN_F32), *bias = bn_randn(BN_SHAPE(9), BN_F32);
            bn_tensor *x = bn_randn(BN_SHAPE(2, 3, 9, 8), BN_F32);
            bn_tensor *cw = bn_randn(BN_SHAPE(5, 3, 3, 3), BN_F32);
            bn_tensor *cb = bn_randn(BN_SHAPE(5), BN_F32);
            bn_conv_opts co = {.padding = 1};
            cr_assert_eq(bn_autocast_begin(low), BN_OK);
            bn_tensor *mm = bn_matmul(gpu(a), gpu(b)), *mm_cpu = bn_matmul(a, b);
            bn_tensor *lin = bn_linear(gpu(a), gpu(w), gpu(bias)), *lin_cpu = bn_linear(a, w, bias);
            bn_tensor *cv = bn_conv2d(gpu(x), gpu(cw), gpu(cb), co);
            bn_tensor *cv_cpu = bn_conv2d(x, cw, cb, co);
            cr_assert_eq(bn_autocast_end(), BN_OK);
            expect_on_gpu(mm, low, "matmul");
            expect_on_gpu(lin, low, "linear");
            expect_on_gpu(cv, low, "conv2d");
            bnt_assert_close(cpu(mm), mm_cpu, tol, tol, "matmul");
            bnt_assert_close(cpu(lin), lin_cpu, tol, tol, "linear");
            bnt_assert_close(cpu(cv), cv_cpu, tol, tol, "conv2d");
            /* a range op on a low input computes in f32 */
            cr_assert_eq(bn_autocast_begin(low), BN_OK);
            bn_tensor *sm = bn_softmax(mm, -1);
            cr_assert_eq(bn_autocast_end(), BN_OK);
            expect_on_gpu(sm, BN_F32, "softmax");
        }
        bn_scope_end();
    });
}

Test(cuda_amp, gradients_reach_f32_weights_on_the_gpu)
{
    NEED_GPU();
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_tensor *x = bn_randn(BN_SHAPE(8, 24), BN_F32), *w0 = bn_randn(BN_SHAPE(6, 24), BN_F32);
        bn_tensor *w = gpu(w0), *wc = bn_clone(w0);
        cr_assert_eq(bn_set_requires_grad(w, true), BN_OK);
        cr_assert_eq(bn_set_requires_grad(wc, true), BN_OK);
        for (int k = 0; k < 2; k++) {
            cr_assert_eq(bn_autocast_begin(lows[k]), BN_OK);
            bn_tensor *y = bn_linear(gpu(x), w, NULL), *yc = bn_linear(x, wc, NULL);
            cr_assert_eq(bn_autocast_end(), BN_OK);
            cr_assert_eq(bn_backward(bn_sum(bn_to_dtype(y, BN_F32), BN_ALL, false)), BN_OK, "%s",
                         bn_error_message());
            cr_assert_eq(bn_backward(bn_sum(bn_to_dtype(yc, BN_F32), BN_ALL, false)), BN_OK);
        }
        bn_tensor *g = bn_grad(w);
        expect_on_gpu(g, BN_F32, "grad of the f32 weight");
        bnt_assert_close(cpu(g), bn_grad(wc), 1e-2, 1e-2, "weight grad vs the CPU");
        bn_scope_end();
    });
}

/* ---- the grad scaler with the gradients on the GPU ------------------------------------------- */
Test(cuda_amp, scaler_unscales_and_finds_inf_on_the_gpu)
{
    NEED_GPU();
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_tensor *p0 = gpu(bn_randn(BN_SHAPE(1000), BN_F32)), *p1 = gpu(bn_randn(BN_SHAPE(7, 3), BN_F32));
        bn_tensor *ps[2] = {p0, p1};
        for (int i = 0; i < 2; i++) cr_assert_eq(bn_set_requires_grad(ps[i], true), BN_OK);
        bn_tensor *before0 = bn_clone(cpu(p0)); /* copies, whatever the device */
        bn_optim *o = bn_optim_sgd_params(ps, 2, (bn_sgd_opts){.lr = 0.5});
        cr_assert_not_null(o, "%s", bn_error_message());
        bn_grad_scaler *s = bn_grad_scaler_new((bn_grad_scaler_opts){.init_scale = 1024});
        /* clean: the grads come back divided by 1024 exactly */
        bn_tensor *g0 = bn_randn(BN_SHAPE(1000), BN_F32), *g1 = bn_randn(BN_SHAPE(7, 3), BN_F32);
        cr_assert_eq(bn_set_grad(p0, gpu(bn_mul_scalar(g0, 1024))), BN_OK);
        cr_assert_eq(bn_set_grad(p1, gpu(bn_mul_scalar(g1, 1024))), BN_OK);
        cr_assert_eq(bn_grad_scaler_unscale(s, o), BN_OK, "%s", bn_error_message());
        cr_assert_not(bn_grad_scaler_found_inf(s));
        expect_on_gpu(bn_grad(p0), BN_F32, "unscaled grad");
        bnt_assert_equal(cpu(bn_grad(p0)), g0, "unscaled grad 0");
        bnt_assert_equal(cpu(bn_grad(p1)), g1, "unscaled grad 1");
        cr_assert_eq(bn_grad_scaler_step(s, o), BN_OK, "%s", bn_error_message());
        cr_assert_eq(bn_grad_scaler_update(s), BN_OK);
        bnt_assert_close(cpu(p0), bn_sub(before0, bn_mul_scalar(g0, 0.5)), 1e-6, 1e-6, "stepped");
        /* one inf (then one NaN) among a million finite values: the step is skipped */
        float bads[2] = {INFINITY, NAN};
        for (int k = 0; k < 2; k++) {
            bn_tensor *after0 = bn_clone(cpu(p0)), *after1 = bn_clone(cpu(p1));
            bn_tensor *big = bn_randn(BN_SHAPE(1000), BN_F32);
            cr_assert_eq(bn_set(big, (int64_t[]){617}, bads[k]), BN_OK);
            cr_assert_eq(bn_set_grad(p0, gpu(big)), BN_OK);
            cr_assert_eq(bn_set_grad(p1, gpu(g1)), BN_OK);
            double scale = bn_grad_scaler_get_scale(s);
            cr_assert_eq(bn_grad_scaler_step(s, o), BN_OK, "%s", bn_error_message());
            cr_assert(bn_grad_scaler_found_inf(s));
            bnt_assert_equal(cpu(p0), after0, "skipped step: p0");
            bnt_assert_equal(cpu(p1), after1, "skipped step: p1");
            cr_assert_eq(bn_grad_scaler_update(s), BN_OK);
            cr_assert_eq(bn_grad_scaler_get_scale(s), scale * 0.5);
        }
        bn_grad_scaler_free(s);
        bn_optim_free(o);
        bn_scope_end();
    });
}

/* ---- training -------------------------------------------------------------------------------- */
#define STEPS 30
#define BATCH 64

/* STEPS Adam steps of an MLP on one fixed random batch on the GPU, in f32 or under autocast
 * (prec BN_BF16 / BN_F16; f16 with the grad scaler). Fills losses[]; returns the steps the
 * scaler skipped. */
static int train(bn_dtype prec, double *losses)
{
    bn_manual_seed(7);
    bn_module *m = bn_nn_sequential(bn_nn_linear(32, 64, true), bn_nn_relu(),
                                    bn_nn_linear(64, 64, true), bn_nn_relu(),
                                    bn_nn_linear(64, 10, true), NULL);
    cr_assert_not_null(m, "%s", bn_error_message());
    cr_assert_eq(bn_module_to_device(m, bn_cuda(0)), BN_OK, "%s", bn_error_message());
    bn_optim *o = bn_optim_adam(m, (bn_adam_opts){.lr = 3e-3});
    cr_assert_not_null(o, "%s", bn_error_message());
    /* 1024 instead of torch's 65536: the first steps then need no backoff, so the f16 run's
     * losses line up step for step with the others (the skipping is checked above) */
    bn_grad_scaler *s =
        bn_grad_scaler_new((bn_grad_scaler_opts){.init_scale = 1024, .disabled = prec != BN_F16});
    int skipped = 0;
    bn_scope_begin();
    bn_tensor *x = gpu(bn_randn(BN_SHAPE(BATCH, 32), BN_F32));
    bn_tensor *y = gpu(bn_randint(0, 10, BN_SHAPE(BATCH), BN_I64));
    for (int i = 0; i < STEPS; i++) {
        bn_scope_begin();
        if (prec != BN_F32) cr_assert_eq(bn_autocast_begin(prec), BN_OK);
        bn_tensor *logits = bn_module_forward(m, x);
        bn_tensor *loss = bn_cross_entropy(logits, y, (bn_ce_opts){0});
        if (prec != BN_F32) cr_assert_eq(bn_autocast_end(), BN_OK);
        expect_on_gpu(logits, prec, "logits");
        expect_on_gpu(loss, BN_F32, "loss");
        losses[i] = bn_item(loss);
        cr_assert_eq(bn_backward(bn_grad_scaler_scale(s, loss)), BN_OK, "%s", bn_error_message());
        cr_assert_eq(bn_grad_scaler_step(s, o), BN_OK, "%s", bn_error_message());
        skipped += bn_grad_scaler_found_inf(s);
        cr_assert_eq(bn_grad_scaler_update(s), BN_OK);
        bn_optim_zero_grad(o);
        bn_scope_end();
    }
    bn_tensor *params[8];
    int n = bn_module_parameters(m, params, 8);
    cr_assert_eq(n, 6);
    for (int i = 0; i < n; i++) expect_on_gpu(params[i], BN_F32, "master weight");
    bn_scope_end();
    bn_grad_scaler_free(s);
    bn_optim_free(o);
    bn_module_free(m);
    return skipped;
}

Test(cuda_amp, mlp_trains_in_bf16_and_fp16_like_f32)
{
    NEED_GPU();
    BNT_ASSERT_NO_LEAK({
        double l32[STEPS], lbf[STEPS], lhf[STEPS];
        cr_assert_eq(train(BN_F32, l32), 0);
        cr_assert_eq(train(BN_BF16, lbf), 0);
        int skipped = train(BN_F16, lhf);
        cr_assert_eq(skipped, 0, "the f16 run skipped %d steps", skipped);
        cr_assert_lt(l32[STEPS - 1], 0.8 * l32[0], "f32 did not learn: %g -> %g", l32[0],
                     l32[STEPS - 1]);
        for (int i = 0; i < STEPS; i++) {
            cr_assert(fabs(lbf[i] - l32[i]) <= 0.05 * l32[i], "step %d: bf16 loss %g, f32 %g", i,
                      lbf[i], l32[i]);
            cr_assert(fabs(lhf[i] - l32[i]) <= 0.03 * l32[i], "step %d: f16 loss %g, f32 %g", i,
                      lhf[i], l32[i]);
        }
        cr_log_info("loss after %d steps: f32 %.5f, bf16 %.5f, f16 %.5f (from %.5f)", STEPS,
                    l32[STEPS - 1], lbf[STEPS - 1], lhf[STEPS - 1], l32[0]);
    });
}
