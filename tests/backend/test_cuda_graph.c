/* tests/backend/test_cuda_graph.c — CUDA graphs (born/cuda.h bn_cuda_graph_*): a captured chain
 * of ops replays on new data written into its static inputs; temporaries of the capture never
 * share memory with tensors made outside it; host constants made during the capture are replayed;
 * what cannot be captured (a host read, random numbers, nested or missing captures) fails with a
 * clear error and leaves the device usable; and bn_train_epoch_ex with .graph trains the same
 * parameters as the eager loop. Without a GPU (or the plugin) the GPU tests skip; the argument
 * checks that need no GPU run everywhere. */
#include "bn_test.h"
#include "bn_test_cuda.h"

#include "born/amp.h"
#include "born/autograd.h"
#include "born/cuda.h"
#include "born/data.h"
#include "born/gpt.h"
#include "born/nn.h"
#include "born/optim.h"
#include "born/train.h"


Test(cuda_graph, replays_a_chain_of_ops_on_new_inputs)
{
    NEED_GPU();
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_tensor *x = gpu(bn_randn(BN_SHAPE(37, 130), BN_F32));
        bn_tensor *w = gpu(bn_randn(BN_SHAPE(130, 20), BN_F32));
        bn_tensor *out = gpu(bn_zeros(BN_SHAPE(37, 20), BN_F32));
        cr_assert_eq(bn_cuda_graph_begin(0), BN_OK, "%s", bn_error_message());
        bn_scope_begin();
        /* temporaries (the product, the softmax) come from the graph's pool */
        bn_tensor *y = bn_softmax(bn_add_scalar(bn_matmul(bn_tanh(x), w), 0.5), -1);
        cr_assert_eq(bn_copy_(out, y), BN_OK, "%s", bn_error_message());
        bn_scope_end();
        bn_cuda_graph *g = bn_cuda_graph_end(0);
        cr_assert_not_null(g, "%s", bn_error_message());
        for (int rep = 0; rep < 3; rep++) {
            bn_tensor *xn = bn_randn(BN_SHAPE(37, 130), BN_F32);
            cr_assert_eq(bn_copy_(x, gpu(xn)), BN_OK);
            /* tensors made between replays must not be overwritten by them */
            bn_tensor *bystander = gpu(bn_full(BN_SHAPE(37, 20), 7.0, BN_F32));
            cr_assert_eq(bn_cuda_graph_replay(g), BN_OK, "%s", bn_error_message());
            bn_tensor *want = bn_softmax(bn_add_scalar(bn_matmul(bn_tanh(xn), cpu(w)), 0.5), -1);
            bnt_assert_close(cpu(out), want, 1e-5, 1e-6, "replay");
            bnt_assert_close(cpu(bystander), bn_full(BN_SHAPE(37, 20), 7.0, BN_F32), 0, 0,
                             "bystander");
        }
        bn_cuda_graph_free(g);
        bn_scope_end();
    });
}

Test(cuda_graph, host_constants_made_during_the_capture_are_replayed)
{
    NEED_GPU();
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_tensor *x = gpu(bn_zeros(BN_SHAPE(300, 300), BN_F32)); /* large: the pinned path */
        bn_tensor *out = gpu(bn_zeros(BN_SHAPE(300, 300), BN_F32));
        bn_tensor *c_host = bn_arange(0, 300 * 300, 1, BN_F32);
        cr_assert_eq(bn_cuda_graph_begin(0), BN_OK, "%s", bn_error_message());
        bn_scope_begin();
        bn_tensor *c = gpu(bn_reshape(c_host, BN_SHAPE(300, 300)));
        bn_tensor *small = gpu(bn_full(BN_SHAPE(1), 2.0, BN_F32)); /* the direct path */
        cr_assert_eq(bn_copy_(out, bn_mul(bn_add(x, c), small)), BN_OK, "%s", bn_error_message());
        bn_scope_end();
        bn_cuda_graph *g = bn_cuda_graph_end(0);
        cr_assert_not_null(g, "%s", bn_error_message());
        cr_assert_eq(bn_fill_(x, 1.0), BN_OK);
        cr_assert_eq(bn_cuda_graph_replay(g), BN_OK);
        bn_tensor *want = bn_mul_scalar(bn_add_scalar(bn_reshape(c_host, BN_SHAPE(300, 300)), 1.0), 2.0);
        bnt_assert_close(cpu(out), want, 0, 0, "replay");
        bn_cuda_graph_free(g);
        bn_scope_end();
    });
}

Test(cuda_graph, a_host_read_inside_the_capture_fails_and_the_device_recovers)
{
    NEED_GPU();
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_tensor *x = gpu(bn_randn(BN_SHAPE(64), BN_F32));
        cr_assert_eq(bn_cuda_graph_begin(0), BN_OK);
        bn_tensor *s = bn_sum(x, BN_ALL, false);
        double v = bn_item(s);
        cr_assert(v != v, "bn_item inside a capture must fail (NaN), got %g", v);
        bnt_assert_error(BN_ERR_UNSUPPORTED, "captured", NULL);
        bn_error_clear();
        bn_cuda_graph *g = bn_cuda_graph_end(0);
        cr_assert_null(g);
        cr_assert_neq(bn_error_code(), BN_OK);
        bn_error_clear();
        /* the stream left capture mode: eager work runs and reads back */
        bn_tensor *again = bn_sum(gpu(bn_ones(BN_SHAPE(10), BN_F32)), BN_ALL, false);
        cr_assert_float_eq(bn_item(again), 10.0, 0, "%s", bn_error_message());
        bn_scope_end();
    });
}

Test(cuda_graph, random_numbers_inside_the_capture_are_refused)
{
    NEED_GPU();
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_tensor *x = gpu(bn_randn(BN_SHAPE(8, 8), BN_F32));
        cr_assert_eq(bn_cuda_graph_begin(0), BN_OK);
        bn_tensor *d = bn_dropout(x, 0.5, true);
        cr_assert_not_null(d, "%s", bn_error_message());
        bn_cuda_graph *g = bn_cuda_graph_end(0);
        cr_assert_null(g);
        bnt_assert_error(BN_ERR_UNSUPPORTED, "random numbers", NULL);
        bn_error_clear();
        bn_scope_end();
    });
}

Test(cuda_graph, a_bad_class_target_inside_the_capture_gives_a_nan_loss)
{
    NEED_GPU();
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_tensor *x = gpu(bn_randn(BN_SHAPE(6, 5), BN_F32));
        bn_tensor *t = gpu(bn_from_data((const int64_t[]){0, 1, 2, 3, 4, 0}, BN_SHAPE(6), BN_I64));
        bn_tensor *loss = gpu(bn_zeros(BN_SHAPE(), BN_F32));
        cr_assert_eq(bn_cuda_graph_begin(0), BN_OK);
        bn_scope_begin();
        cr_assert_eq(bn_copy_(loss, bn_cross_entropy(x, t, (bn_ce_opts){0})), BN_OK, "%s",
                     bn_error_message());
        bn_scope_end();
        bn_cuda_graph *g = bn_cuda_graph_end(0);
        cr_assert_not_null(g, "%s", bn_error_message());
        cr_assert_eq(bn_cuda_graph_replay(g), BN_OK);
        bn_tensor *want = bn_cross_entropy(cpu(x), cpu(t), (bn_ce_opts){0});
        bnt_assert_close(cpu(loss), want, 1e-6, 1e-6, "good targets");
        cr_assert_eq(bn_copy_(t, gpu(bn_from_data((const int64_t[]){0, 1, 9, 3, 4, 0}, BN_SHAPE(6), BN_I64))),
                     BN_OK);
        cr_assert_eq(bn_cuda_graph_replay(g), BN_OK);
        double v = bn_item(loss);
        cr_assert(v != v, "a target out of range must poison the loss, got %g", v);
        bn_cuda_graph_free(g);
        bn_scope_end();
    });
}

Test(cuda_graph, nested_or_missing_captures_are_errors)
{
    NEED_GPU();
    BNT_ASSERT_NO_LEAK({
        cr_assert_null(bn_cuda_graph_end(0));
        bnt_assert_error(BN_ERR_ARG, "no capture", NULL);
        bn_error_clear();
        cr_assert_eq(bn_cuda_graph_begin(0), BN_OK);
        cr_assert_eq(bn_cuda_graph_begin(0), BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "already open", NULL);
        bn_error_clear();
        cr_assert_eq(bn_cuda_synchronize(0), BN_ERR_UNSUPPORTED);
        bn_error_clear();
        bn_cuda_graph *g = bn_cuda_graph_end(0); /* an empty capture is a valid graph */
        cr_assert_not_null(g, "%s", bn_error_message());
        cr_assert_eq(bn_cuda_graph_replay(g), BN_OK);
        bn_cuda_graph_free(g);
        cr_assert_eq(bn_cuda_graph_begin(99), BN_ERR_DEVICE);
        bn_error_clear();
        cr_assert_eq(bn_cuda_graph_replay(NULL), BN_ERR_ARG);
        bn_error_clear();
        bn_cuda_graph_free(NULL);
    });
}

/* ---- bn_train_epoch_ex(.graph) ---------------------------------------------------------------- */
/* Trains `model` for one epoch of 10 batches of 32 (+ a short batch of 7) on fixed random data,
 * on the GPU, eagerly or with graphs; returns its parameters on the CPU (in the open scope). */
static int train_params(const char *model, bool graph, bn_dtype precision, bn_tensor **params,
                        bn_metrics *mt)
{
    bn_manual_seed(11);
    bn_tensor *x = bn_randn(BN_SHAPE(327, 1, 28, 28), BN_F32);
    bn_tensor *y = bn_randint(0, 10, BN_SHAPE(327), BN_I64);
    bn_dataset *ds = bn_dataset_new(x, y);
    bn_loader *l = bn_loader_new(ds, (bn_loader_opts){.batch_size = 32});
    bn_manual_seed(5);
    bn_module *m = bn_model_build(model);
    cr_assert_not_null(m);
    cr_assert_eq(bn_module_to_device(m, bn_cuda(0)), BN_OK, "%s", bn_error_message());
    bn_optim *o = bn_optim_adam(m, (bn_adam_opts){.lr = 1e-3});
    bn_train_opts to = {.precision = precision, .graph = graph};
    bn_status st = bn_train_epoch_ex(m, o, l, &to, NULL, NULL, mt);
    cr_assert_eq(st, BN_OK, "%s graph %d: %s", model, graph, bn_error_message());
    bn_tensor *p[16];
    int n = (int)bn_module_parameters(m, p, 16);
    for (int i = 0; i < n; i++) params[i] = cpu(bn_detach(p[i]));
    bn_optim_free(o);
    bn_module_free(m);
    bn_loader_free(l);
    bn_dataset_free(ds);
    return n;
}

Test(cuda_graph, train_epoch_with_graphs_matches_the_eager_epoch)
{
    NEED_GPU();
    const char *models[] = {"mlp", "cnn"};
    const bn_dtype precs[] = {BN_F32, BN_BF16};
    for (int k = 0; k < 2; k++)
        for (int q = 0; q < 2; q++)
            BNT_ASSERT_NO_LEAK({
                bn_scope_begin();
                bn_tensor *pe[16], *pg[16];
                bn_metrics me, mg;
                int n = train_params(models[k], false, precs[q], pe, &me);
                int ng = train_params(models[k], true, precs[q], pg, &mg);
                cr_assert_eq(n, ng);
                cr_assert_eq(mg.batches, 11);
                cr_assert_eq(mg.samples, 327);
                cr_assert_float_eq(mg.loss, me.loss, 1e-5 * (1 + me.loss), "%s: loss %g vs %g",
                                   models[k], mg.loss, me.loss);
                cr_assert_eq(mg.correct, me.correct, "%s", models[k]);
                for (int i = 0; i < n; i++)
                    bnt_assert_close(pg[i], pe[i], 1e-5, 1e-6, models[k]);
                bn_metrics_free(&me);
                bn_metrics_free(&mg);
                bn_scope_end();
            });
}

/* A tiny GPT (learned positions, tied embeddings, bf16 autocast, the chunked classifier +
 * cross-entropy with its ignore_index) trained 5 AdamW steps on the GPU: the last 3 through a
 * captured step (copy the batch in, replay, step) against all 5 eager; returns the parameters
 * on the CPU and the last loss. */
static int gpt_train(bool graph, bn_tensor **params, double *last)
{
    bn_gpt_config c = {.vocab_size = 97, .context = 32, .layers = 2, .heads = 4, .dim = 64};
    bn_manual_seed(3);
    bn_module *m = bn_gpt_new(&c);
    cr_assert_not_null(m, "%s", bn_error_message());
    cr_assert_eq(bn_module_to_device(m, bn_cuda(0)), BN_OK, "%s", bn_error_message());
    bn_optim *o = bn_optim_adamw(m, (bn_adam_opts){.lr = 1e-3});
    cr_assert_not_null(o, "%s", bn_error_message());
    bn_tensor *xs = NULL, *ys = NULL, *gl = NULL;
    bn_cuda_graph *g = NULL;
    for (int step = 0; step < 5; step++) {
        bn_manual_seed(100 + (uint64_t)step);
        bn_tensor *x = gpu(bn_randint(0, 97, BN_SHAPE(3, 32), BN_I64));
        bn_tensor *y = gpu(bn_randint(0, 97, BN_SHAPE(3, 32), BN_I64));
        if (!graph || step < 2) {
            bn_optim_zero_grad(o);
            bn_scope_begin();
            cr_assert_eq(bn_autocast_begin(BN_BF16), BN_OK);
            bn_tensor *l = bn_gpt_loss(m, x, y);
            cr_assert_eq(bn_autocast_end(), BN_OK);
            cr_assert_not_null(l, "%s", bn_error_message());
            cr_assert_eq(bn_backward(l), BN_OK, "%s", bn_error_message());
            *last = bn_item(l);
            bn_scope_end();
        } else {
            if (!g) {
                xs = bn_clone(x), ys = bn_clone(y);
                bn_optim_zero_grad(o);
                cr_assert_eq(bn_cuda_graph_begin(0), BN_OK);
                bn_scope_begin();
                cr_assert_eq(bn_autocast_begin(BN_BF16), BN_OK);
                bn_tensor *l = bn_gpt_loss(m, xs, ys);
                cr_assert_eq(bn_autocast_end(), BN_OK);
                cr_assert_not_null(l, "%s", bn_error_message());
                cr_assert_eq(bn_backward(l), BN_OK, "%s", bn_error_message());
                gl = bn_scope_keep(bn_detach(l));
                bn_scope_end();
                g = bn_cuda_graph_end(0);
                cr_assert_not_null(g, "GPT capture: %s", bn_error_message());
            }
            cr_assert_eq(bn_copy_(xs, x), BN_OK);
            cr_assert_eq(bn_copy_(ys, y), BN_OK);
            cr_assert_eq(bn_cuda_graph_replay(g), BN_OK);
            *last = bn_item(gl);
        }
        cr_assert_eq(bn_optim_step(o), BN_OK, "%s", bn_error_message());
    }
    bn_tensor *p[64];
    int n = (int)bn_module_parameters(m, p, 64);
    for (int i = 0; i < n; i++) params[i] = cpu(bn_detach(p[i]));
    bn_cuda_graph_free(g);
    bn_optim_free(o);
    bn_module_free(m);
    return n;
}

Test(cuda_graph, gpt_steps_with_a_graph_match_the_eager_steps)
{
    NEED_GPU();
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_tensor *pe[64], *pg[64];
        double le = 0, lg = 0;
        int n = gpt_train(false, pe, &le), ng = gpt_train(true, pg, &lg);
        cr_assert_eq(n, ng);
        cr_assert_float_eq(lg, le, 1e-4 * (1 + le), "last loss %g (graph) vs %g (eager)", lg, le);
        for (int i = 0; i < n; i++) bnt_assert_close(pg[i], pe[i], 1e-4, 1e-5, "gpt parameter");
        bn_scope_end();
    });
}

/* A bad token id inside a capture: no error can be raised, the embedding rows and so the loss
 * become NaN. */
Test(cuda_graph, a_bad_token_inside_a_gpt_capture_gives_a_nan_loss)
{
    NEED_GPU();
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_gpt_config c = {.vocab_size = 50, .context = 16, .layers = 1, .heads = 2, .dim = 32};
        bn_module *m = bn_gpt_new(&c);
        cr_assert_eq(bn_module_to_device(m, bn_cuda(0)), BN_OK);
        bn_tensor *x = gpu(bn_randint(0, 50, BN_SHAPE(2, 16), BN_I64));
        bn_tensor *y = gpu(bn_randint(0, 50, BN_SHAPE(2, 16), BN_I64));
        bn_tensor *loss = gpu(bn_zeros(BN_SHAPE(), BN_F32));
        cr_assert_eq(bn_cuda_graph_begin(0), BN_OK);
        bn_scope_begin();
        cr_assert_eq(bn_copy_(loss, bn_gpt_loss(m, x, y)), BN_OK, "%s", bn_error_message());
        bn_scope_end();
        bn_cuda_graph *g = bn_cuda_graph_end(0);
        cr_assert_not_null(g, "%s", bn_error_message());
        cr_assert_eq(bn_cuda_graph_replay(g), BN_OK);
        double ok = bn_item(loss);
        cr_assert(ok == ok, "good tokens give a number, got %g", ok);
        cr_assert_eq(bn_fill_(bn_narrow(x, 1, 3, 1), 77), BN_OK); /* >= vocab 50 */
        cr_assert_eq(bn_cuda_graph_replay(g), BN_OK);
        double bad = bn_item(loss);
        cr_assert(bad != bad, "a token out of range must poison the loss, got %g", bad);
        bn_cuda_graph_free(g);
        bn_module_free(m);
        bn_scope_end();
    });
}

/* No GPU needed: the options are checked before anything runs. */
Test(cuda_graph, train_epoch_graph_needs_a_cuda_model_and_no_scaler)
{
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_dataset *ds = bn_dataset_new(bn_randn(BN_SHAPE(8, 1, 28, 28), BN_F32),
                                        bn_randint(0, 10, BN_SHAPE(8), BN_I64));
        bn_loader *l = bn_loader_new(ds, (bn_loader_opts){.batch_size = 4});
        bn_module *m = bn_model_build("mlp");
        bn_optim *o = bn_optim_adam(m, (bn_adam_opts){0});
        bn_metrics mt;
        bn_train_opts to = {.graph = true};
        cr_assert_eq(bn_train_epoch_ex(m, o, l, &to, NULL, NULL, &mt), BN_ERR_DEVICE);
        bnt_assert_error(BN_ERR_DEVICE, "needs the model on a CUDA device", NULL);
        bn_error_clear();
        cr_assert_eq(mt.batches, 0);
        if (have_gpu()) {
            bn_grad_scaler *sc = bn_grad_scaler_new((bn_grad_scaler_opts){0});
            cr_assert_eq(bn_module_to_device(m, bn_cuda(0)), BN_OK);
            to.scaler = sc;
            cr_assert_eq(bn_train_epoch_ex(m, o, l, &to, NULL, NULL, &mt), BN_ERR_ARG);
            bnt_assert_error(BN_ERR_ARG, "loss scaler", NULL);
            bn_error_clear();
            bn_grad_scaler_free(sc);
        }
        bn_optim_free(o);
        bn_module_free(m);
        bn_loader_free(l);
        bn_dataset_free(ds);
        bn_scope_end();
    });
}
