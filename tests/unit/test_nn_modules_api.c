/* tests/unit/test_nn_modules_api.c — the module API beyond PyTorch comparisons: train/eval
 * switching, a module written in C, activation/pooling/embedding modules, repr, initialisation
 * statistics, dtype conversion, and every error (bad shapes name the module and the shapes;
 * NULL; bad constructor arguments; bad registration). Values against PyTorch: test_nn_modules.c. */
#include "nn_modules_common.h"

#include <stdlib.h>
#include <string.h>

TestSuite(nn_modules_api);

/* ---- train / eval ---------------------------------------------------------------------------- */

Test(nn_modules_api, train_and_eval_switch_dropout_in_every_descendant)
{
    BNT_ASSERT_NO_LEAK({
        bn_module *m = bn_nn_sequential(bn_nn_identity(),
                                        bn_nn_sequential(bn_nn_dropout(0.5), NULL), NULL);
        bn_module *drop = bn_module_child(m, "1.0");
        cr_assert(bn_module_is_training(drop));
        bn_scope_begin();
        bn_tensor *x = bn_ones(BN_SHAPE(1000), BN_F32);
        bn_tensor *y = bn_module_forward(m, x);
        double zeros = bn_item(bn_sum(bn_eq_scalar(y, 0), BN_ALL, false));
        double twos = bn_item(bn_sum(bn_eq_scalar(y, 2), BN_ALL, false));
        cr_assert(zeros > 400 && zeros < 600 && zeros + twos == 1000, "zeros %g twos %g", zeros,
                  twos);
        bn_module_eval(m);
        cr_assert(!bn_module_is_training(drop));
        bnt_assert_equal(bn_module_forward(m, x), x, "eval: identity");
        bn_module_train(m, true);
        cr_assert(bn_module_is_training(drop));
        bn_scope_end();
        bn_module_free(m);
    });
}

Test(nn_modules_api, identity_returns_its_input)
{
    BNT_ASSERT_NO_LEAK({
        bn_module *m = bn_nn_identity();
        bn_tensor *x = bn_ones(BN_SHAPE(2), BN_F32);
        bn_tensor *y = bn_module_forward(m, x);
        cr_assert_eq(x, y);
        bn_release(y);
        bn_release(x);
        bn_module_free(m);
    });
}

/* ---- the custom module, activations, repr ------------------------------------------------------ */

Test(nn_modules_api, custom_module_in_c_runs_and_trains)
{
    BNT_ASSERT_NO_LEAK({
        bn_module *m = net_new();
        cr_assert_str_eq(bn_module_type_name(m), "Net");
        bn_scope_begin();
        bn_tensor *x = bn_randn(BN_SHAPE(5, 4), BN_F32);
        bn_tensor *y = bn_module_forward(m, x);
        cr_assert_not_null(y, "%s", bn_error_message());
        cr_assert(bn_shape_equal(bn_shape_of(y), BN_SHAPE(5, 2)));
        cr_assert_eq(((net *)m)->forwards, 1);
        cr_assert_eq(bn_backward(bn_sum(y, BN_ALL, false)), BN_OK, "%s", bn_error_message());
        bn_tensor *ps[8];
        int n = bn_module_parameters(m, ps, 8);
        cr_assert_eq(n, 8); /* scale, linear w+b, layernorm w+b, head0 w+b, head1 w */
        for (int i = 0; i < n; i++) cr_assert_not_null(bn_grad(ps[i]), "param %d has a grad", i);
        bn_scope_end();
        bn_module_free(m);
    });
}

Test(nn_modules_api, activation_modules_apply_their_functions)
{
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_tensor *x = bn_from_data((float[]){-2, -0.5f, 0, 1.5f}, BN_SHAPE(2, 2), BN_F32);
        struct {
            bn_module *m;
            bn_tensor *want;
        } cases[] = {
            {bn_nn_relu(), bn_relu(x)},
            {bn_nn_leaky_relu(0.1), bn_leaky_relu(x, 0.1)},
            {bn_nn_elu(0.5), bn_elu(x, 0.5)},
            {bn_nn_gelu(false), bn_gelu(x)},
            {bn_nn_gelu(true), bn_gelu_tanh(x)},
            {bn_nn_silu(), bn_silu(x)},
            {bn_nn_sigmoid(), bn_sigmoid(x)},
            {bn_nn_tanh(), bn_tanh(x)},
            {bn_nn_softmax(-1), bn_softmax(x, -1)},
            {bn_nn_softmax(0), bn_softmax(x, 0)},
            {bn_nn_flatten_dims(0, -1), bn_flatten(x, 0, -1)},
        };
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            bnt_assert_equal(bn_module_forward(cases[i].m, x), cases[i].want,
                             bn_module_type_name(cases[i].m));
            bn_module_free(cases[i].m);
        }
        bn_scope_end();
    });
}

Test(nn_modules_api, pooling_embedding_and_dropout_modules_forward)
{
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_tensor *x = bn_randn(BN_SHAPE(2, 3, 6, 6), BN_F32);
        bn_module *mp = bn_nn_maxpool2d(2, (bn_pool_opts){0});
        bn_module *ap = bn_nn_avgpool2d(3, (bn_pool_opts){.stride = 1, .padding = 1});
        bn_module *aap = bn_nn_adaptive_avgpool2d(2, 3);
        bnt_assert_equal(bn_module_forward(mp, x), bn_max_pool2d(x, 2, (bn_pool_opts){0}), "max");
        bnt_assert_equal(bn_module_forward(ap, x),
                         bn_avg_pool2d(x, 3, (bn_pool_opts){.stride = 1, .padding = 1}), "avg");
        bnt_assert_equal(bn_module_forward(aap, x), bn_adaptive_avg_pool2d(x, 2, 3), "adaptive");
        bn_module *emb = bn_nn_embedding(5, 3);
        bn_tensor *idx = bn_from_data((int64_t[]){4, 0, 4}, BN_SHAPE(3), BN_I64);
        bn_tensor *e = bn_module_forward(emb, idx);
        cr_assert(bn_shape_equal(bn_shape_of(e), BN_SHAPE(3, 3)));
        bnt_assert_equal(bn_select(e, 0, 0), bn_select(e, 0, 2), "same row twice");
        bn_module *drop0 = bn_nn_dropout(0);
        bnt_assert_equal(bn_module_forward(drop0, x), x, "p = 0");
        bn_module_free(mp);
        bn_module_free(ap);
        bn_module_free(aap);
        bn_module_free(emb);
        bn_module_free(drop0);
        bn_scope_end();
    });
}

Test(nn_modules_api, repr_prints_like_pytorch)
{
    bn_module *m = bn_nn_sequential(
        mlp(), bn_nn_conv2d(1, 32, 3, (bn_conv_opts){0}), bn_nn_maxpool2d(2, (bn_pool_opts){0}),
        bn_nn_batchnorm2d(4, (bn_norm_opts){0}), bn_nn_layernorm(BN_SHAPE(3), (bn_norm_opts){0}),
        bn_nn_lstm(3, 4, (bn_rnn_opts){.num_layers = 2, .batch_first = true}),
        bn_nn_dropout(0.25), bn_nn_gelu(true), bn_nn_leaky_relu(0.01), bn_nn_softmax(1),
        bn_nn_embedding(7, 3), bn_nn_groupnorm(2, 4, (bn_norm_opts){0}),
        bn_nn_adaptive_avgpool2d(5, 5), bn_nn_avgpool2d(2, (bn_pool_opts){0}),
        bn_nn_conv2d(4, 8, 3, (bn_conv_opts){.stride = 2, .padding = 1, .groups = 2}), NULL);
    char *s = bn_module_repr(m);
    const char *want =
        "Sequential(\n"
        "  (0): Sequential(\n"
        "    (0): Flatten(start_dim=1, end_dim=-1)\n"
        "    (1): Linear(in_features=784, out_features=128, bias=True)\n"
        "    (2): ReLU()\n"
        "    (3): Linear(in_features=128, out_features=10, bias=True)\n"
        "  )\n"
        "  (1): Conv2d(1, 32, kernel_size=(3, 3), stride=(1, 1))\n"
        "  (2): MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)\n"
        "  (3): BatchNorm2d(4, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)\n"
        "  (4): LayerNorm((3,), eps=1e-05, elementwise_affine=True)\n"
        "  (5): LSTM(3, 4, num_layers=2, batch_first=True)\n"
        "  (6): Dropout(p=0.25, inplace=False)\n"
        "  (7): GELU(approximate='tanh')\n"
        "  (8): LeakyReLU(negative_slope=0.01)\n"
        "  (9): Softmax(dim=1)\n"
        "  (10): Embedding(7, 3)\n"
        "  (11): GroupNorm(2, 4, eps=1e-05, affine=True)\n"
        "  (12): AdaptiveAvgPool2d(output_size=(5, 5))\n"
        "  (13): AvgPool2d(kernel_size=2, stride=2, padding=0)\n"
        "  (14): Conv2d(4, 8, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), groups=2)\n"
        ")";
    cr_assert_str_eq(s, want);
    free(s);
    bn_module_free(m);
}

Test(nn_modules_api, repr_of_a_custom_module_shows_its_children)
{
    bn_module *m = net_new();
    char *s = bn_module_repr(m);
    const char *want = "Net(\n"
                       "  (features): Sequential(\n"
                       "    (0): Linear(in_features=4, out_features=3, bias=True)\n"
                       "    (1): Tanh()\n"
                       "    (2): LayerNorm((3,), eps=1e-05, elementwise_affine=True)\n"
                       "  )\n"
                       "  (head): ModuleList(\n"
                       "    (0): Linear(in_features=3, out_features=2, bias=True)\n"
                       "    (1): Linear(in_features=2, out_features=2, bias=False)\n"
                       "  )\n"
                       ")";
    cr_assert_str_eq(s, want);
    free(s);
    bn_module_free(m);
}

/* ---- initialisation ----------------------------------------------------------------------------- */

static void moments(bn_tensor *t, double *mean, double *var, double *lo, double *hi)
{
    bn_scope_begin();
    *mean = bn_item(bn_mean(t, BN_ALL, false));
    *var = bn_item(bn_var(t, BN_ALL, 0, false));
    *lo = bn_item(bn_min(t, BN_ALL, false));
    *hi = bn_item(bn_max(t, BN_ALL, false));
    bn_scope_end();
}

Test(nn_modules_api, default_init_follows_pytorch_distributions)
{
    BNT_ASSERT_NO_LEAK({
        bn_manual_seed(7);
        bn_module *lin = bn_nn_linear(100, 400, true);
        bn_tensor *w = bn_module_get(lin, "weight"), *b = bn_module_get(lin, "bias");
        double mean, var, lo, hi, bound = 0.1; /* 1 / sqrt(100) */
        moments(w, &mean, &var, &lo, &hi);
        cr_assert(lo >= -bound && hi <= bound && hi > 0.99 * bound, "[%g, %g]", lo, hi);
        cr_assert(fabs(mean) < 0.002 && fabs(var - bound * bound / 3) < 2e-4, "%g %g", mean, var);
        moments(b, &mean, &var, &lo, &hi);
        cr_assert(lo >= -bound && hi <= bound);
        bn_release(w);
        bn_release(b);
        bn_module_free(lin);

        /* conv fan_in = in_channels / groups * k * k; transposed: out_channels / groups * k * k */
        bn_module *convs[2] = {bn_nn_conv2d(4, 8, 3, (bn_conv_opts){.groups = 2}),
                               bn_nn_conv_transpose2d(4, 6, 3, (bn_conv_opts){.groups = 2})};
        double conv_bounds[2] = {1 / sqrt(18.0), 1 / sqrt(27.0)};
        for (int i = 0; i < 2; i++) {
            const char *names[2] = {"weight", "bias"};
            for (int j = 0; j < 2; j++) {
                bn_tensor *p = bn_module_get(convs[i], names[j]);
                moments(p, &mean, &var, &lo, &hi);
                cr_assert(lo >= -conv_bounds[i] && hi <= conv_bounds[i] &&
                              (j == 1 || hi > 0.8 * conv_bounds[i]),
                          "conv %d %s: [%g, %g]", i, names[j], lo, hi);
                bn_release(p);
            }
            bn_module_free(convs[i]);
        }

        bn_module *emb = bn_nn_embedding(200, 100);
        w = bn_module_get(emb, "weight");
        moments(w, &mean, &var, &lo, &hi);
        cr_assert(fabs(mean) < 0.03 && fabs(var - 1) < 0.04, "normal(0, 1): %g %g", mean, var);
        bn_release(w);
        bn_module_free(emb);

        bn_module *lstm = bn_nn_lstm(3, 25, (bn_rnn_opts){0});
        w = bn_module_get(lstm, "weight_hh_l0");
        moments(w, &mean, &var, &lo, &hi);
        cr_assert(lo >= -0.2 && hi <= 0.2 && hi > 0.19, "uniform(+-1/sqrt(25)): [%g, %g]", lo, hi);
        bn_release(w);
        bn_module_free(lstm);

        bn_module *norm = bn_nn_batchnorm2d(3, (bn_norm_opts){0});
        bn_tensor *g = bn_module_get(norm, "weight"), *rv = bn_module_get(norm, "running_var");
        moments(g, &mean, &var, &lo, &hi);
        cr_assert(lo == 1 && hi == 1);
        moments(rv, &mean, &var, &lo, &hi);
        cr_assert(lo == 1 && hi == 1);
        bn_release(g);
        bn_release(rv);
        bn_module_free(norm);
    });
}

Test(nn_modules_api, init_helpers_have_the_documented_bounds_and_moments)
{
    BNT_ASSERT_NO_LEAK({
        bn_tensor *t = bn_empty(BN_SHAPE(200, 50, 2, 2), BN_F64); /* fan_in 200, fan_out 800 */
        int64_t fi = 0, fo = 0;
        cr_assert_eq(bn_init_fans(t, &fi, &fo), BN_OK);
        cr_assert(fi == 200 && fo == 800);
        double mean, var, lo, hi;
        cr_assert_eq(bn_init_kaiming_uniform(t, 0, BN_FAN_IN, BN_NONLIN_RELU), BN_OK);
        moments(t, &mean, &var, &lo, &hi);
        double bound = sqrt(2.0) * sqrt(3.0 / 200);
        cr_assert(lo >= -bound && hi <= bound && hi > 0.99 * bound);
        cr_assert_eq(bn_init_kaiming_normal(t, 0, BN_FAN_OUT, BN_NONLIN_RELU), BN_OK);
        moments(t, &mean, &var, &lo, &hi);
        cr_assert(fabs(var / (2.0 / 800) - 1) < 0.05, "kaiming normal var %g", var);
        cr_assert_eq(bn_init_xavier_uniform(t, 1.0), BN_OK);
        moments(t, &mean, &var, &lo, &hi);
        bound = sqrt(6.0 / 1000);
        cr_assert(lo >= -bound && hi <= bound && hi > 0.99 * bound);
        cr_assert_eq(bn_init_xavier_normal(t, 2.0), BN_OK);
        moments(t, &mean, &var, &lo, &hi);
        cr_assert(fabs(var / (4 * 2.0 / 1000) - 1) < 0.05, "xavier normal var %g", var);
        cr_assert_eq(bn_init_normal(t, 3, 0.5), BN_OK);
        moments(t, &mean, &var, &lo, &hi);
        cr_assert(fabs(mean - 3) < 0.01 && fabs(var - 0.25) < 0.01);
        cr_assert_eq(bn_init_uniform(t, 2, 4), BN_OK);
        moments(t, &mean, &var, &lo, &hi);
        cr_assert(lo >= 2 && hi < 4 && fabs(mean - 3) < 0.01);
        cr_assert_eq(bn_init_constant(t, 0.5), BN_OK);
        moments(t, &mean, &var, &lo, &hi);
        cr_assert(lo == 0.5 && hi == 0.5);
        cr_assert_eq(bn_init_zeros(t), BN_OK);
        cr_assert_eq(bn_init_ones(t), BN_OK);
        moments(t, &mean, &var, &lo, &hi);
        cr_assert(lo == 1 && hi == 1);
        cr_assert_float_eq(bn_init_gain(BN_NONLIN_LEAKY_RELU, sqrt(5.0)), sqrt(1.0 / 3), 1e-12);
        cr_assert_float_eq(bn_init_gain(BN_NONLIN_TANH, 0), 5.0 / 3, 1e-12);
        /* in place on a parameter that requires grad: under no-grad, no graph */
        bn_set_requires_grad(t, true);
        cr_assert_eq(bn_init_uniform(t, -1, 1), BN_OK, "%s", bn_error_message());
        cr_assert(bn_is_leaf(t));
        bn_release(t);
    });
}

/* ---- dtype conversion ------------------------------------------------------------------------------ */

Test(nn_modules_api, to_dtype_converts_float_parameters_and_buffers_only)
{
    BNT_ASSERT_NO_LEAK({
        bn_module *m = bn_nn_sequential(bn_nn_linear(2, 2, true),
                                        bn_nn_batchnorm1d(2, (bn_norm_opts){0}), NULL);
        cr_assert_eq(bn_module_to_dtype(m, BN_F64), BN_OK);
        bn_tensor_list sd = bn_module_state_dict(m);
        for (int i = 0; i < sd.count; i++) {
            bool counter = !strcmp(sd.names[i], "1.num_batches_tracked");
            cr_assert_eq(bn_dtype_of(sd.tensors[i]), counter ? BN_I64 : BN_F64, "%s",
                         sd.names[i]);
        }
        cr_assert(bn_requires_grad(sd.tensors[0]) && !bn_requires_grad(sd.tensors[4]));
        bn_tensor_list_free(&sd);
        bn_scope_begin();
        bn_tensor *y = bn_module_forward(m, bn_ones(BN_SHAPE(3, 2), BN_F64));
        cr_assert_eq(bn_dtype_of(y), BN_F64, "%s", bn_error_message());
        bn_scope_end();
        cr_assert_eq(bn_module_to_dtype(m, BN_I32), BN_ERR_DTYPE);
        bnt_assert_error(BN_ERR_DTYPE, "bn_module_to_dtype", "i32", NULL);
        bn_module_free(m);
    });
}

/* ---- bad input -------------------------------------------------------------------------------------- */

Test(nn_modules_api, wrong_input_shape_names_the_module_and_shapes)
{
    BNT_ASSERT_NO_LEAK({
        bn_module *lin = bn_nn_linear(4, 3, true);
        bn_module *conv = bn_nn_conv2d(3, 8, 3, (bn_conv_opts){0});
        bn_module *bn2 = bn_nn_batchnorm2d(3, (bn_norm_opts){0});
        bn_module *ln = bn_nn_layernorm(BN_SHAPE(4), (bn_norm_opts){0});
        bn_module *gn = bn_nn_groupnorm(2, 4, (bn_norm_opts){0});
        bn_module *lstm = bn_nn_lstm(3, 5, (bn_rnn_opts){.num_layers = 2});
        bn_module *seq = bn_nn_sequential(bn_nn_flatten(), bn_nn_linear(6, 2, true), NULL);
        bn_module *sm = bn_nn_softmax(3);
        bn_module *pool = bn_nn_maxpool2d(2, (bn_pool_opts){0});
        bn_module *emb = bn_nn_embedding(3, 2);
        bn_scope_begin();
        bn_tensor *x25 = bn_zeros(BN_SHAPE(2, 5), BN_F32);
        cr_assert_null(bn_module_forward(lin, x25));
        bnt_assert_error(BN_ERR_SHAPE, "bn_module_forward",
                         "Linear(in_features=4, out_features=3, bias=True)", "[2, 5]", "4]", NULL);
        cr_assert_null(bn_module_forward(conv, bn_zeros(BN_SHAPE(1, 2, 5, 5), BN_F32)));
        bnt_assert_error(BN_ERR_SHAPE, "Conv2d(3, 8", "[1, 2, 5, 5]", NULL);
        cr_assert_null(bn_module_forward(bn2, bn_zeros(BN_SHAPE(2, 3, 4), BN_F32)));
        bnt_assert_error(BN_ERR_SHAPE, "BatchNorm2d(3", "[2, 3, 4]", "(N, C, H, W)", NULL);
        cr_assert_null(bn_module_forward(ln, x25));
        bnt_assert_error(BN_ERR_SHAPE, "LayerNorm((4,)", "[2, 5]", "[..., 4]", NULL);
        cr_assert_null(bn_module_forward(gn, x25));
        bnt_assert_error(BN_ERR_SHAPE, "GroupNorm(2, 4", "[2, 5]", NULL);
        cr_assert_null(bn_module_forward(lstm, bn_zeros(BN_SHAPE(4, 2, 2), BN_F32)));
        bnt_assert_error(BN_ERR_SHAPE, "LSTM(3, 5, num_layers=2)", "[4, 2, 2]", "C = 3", NULL);
        bn_tensor *out = NULL;
        cr_assert_eq(bn_rnn_forward(lstm, bn_zeros(BN_SHAPE(4, 2, 3), BN_F32),
                                    bn_zeros(BN_SHAPE(1, 2, 5), BN_F32), NULL, &out, NULL, NULL),
                     BN_ERR_SHAPE);
        cr_assert_null(out);
        bnt_assert_error(BN_ERR_SHAPE, "bn_rnn_forward", "h0 is [1, 2, 5]", "[2, 2, 5]", NULL);
        cr_assert_null(bn_module_forward(seq, bn_zeros(BN_SHAPE(2, 7), BN_F32)));
        bnt_assert_error(BN_ERR_SHAPE, "Linear(in_features=6", "[2, 7]", NULL);
        cr_assert_null(bn_module_forward(sm, x25));
        bnt_assert_error(BN_ERR_SHAPE, "Softmax(dim=3)", "[2, 5]", NULL);
        cr_assert_null(bn_module_forward(pool, x25));
        bnt_assert_error(BN_ERR_SHAPE, "MaxPool2d", "[2, 5]", NULL);
        cr_assert_null(bn_module_forward(seq, bn_zeros(BN_SHAPE(2, 6), BN_F64)));
        bnt_assert_error(BN_ERR_DTYPE, "bn_module_forward: Linear(in_features=6", "bn_linear",
                         "f64", NULL);
        cr_assert_null(bn_module_forward(emb, x25));
        bnt_assert_error(BN_ERR_DTYPE, "Embedding", "f32", NULL);
        bn_scope_end();
        bn_module *all[] = {lin, conv, bn2, ln, gn, lstm, seq, sm, pool, emb};
        for (int i = 0; i < 10; i++) bn_module_free(all[i]);
    });
}

Test(nn_modules_api, null_arguments_are_reported)
{
    BNT_ASSERT_NO_LEAK({
        bn_module *lin = bn_nn_linear(2, 2, true);
        bn_tensor *x = bn_zeros(BN_SHAPE(1, 2), BN_F32);
        cr_assert_null(bn_module_forward(NULL, x));
        bnt_assert_error(BN_ERR_ARG, "bn_module_forward", "m", NULL);
        cr_assert_null(bn_module_forward(lin, NULL));
        bnt_assert_error(BN_ERR_ARG, "bn_module_forward", "x", NULL);
        cr_assert_eq(bn_module_add_param(lin, "w2", NULL), BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "bn_module_add_param", "t", NULL);
        cr_assert_eq(bn_module_add_buffer(NULL, "b", x), BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "bn_module_add_buffer", "m", NULL);
        cr_assert_null(bn_module_add_child(lin, "c", NULL));
        bnt_assert_error(BN_ERR_ARG, "bn_module_add_child", "child", NULL);
        cr_assert_null(bn_module_add_child(NULL, "c", bn_nn_relu())); /* the child is freed */
        bnt_assert_error(BN_ERR_ARG, "bn_module_add_child", "m", NULL);
        bn_tensor_list l = bn_module_named_parameters(NULL);
        cr_assert_eq(l.count, -1);
        bnt_assert_error(BN_ERR_ARG, "bn_module_named_parameters", NULL);
        bn_tensor_list_free(&l);
        cr_assert_eq(bn_module_parameters(NULL, NULL, 0), -1);
        bnt_assert_error(BN_ERR_ARG, "bn_module_parameters", NULL);
        cr_assert_eq(bn_module_num_parameters(NULL), -1);
        bnt_assert_error(BN_ERR_ARG, "bn_module_num_parameters", NULL);
        cr_assert_null(bn_module_get(lin, NULL));
        bnt_assert_error(BN_ERR_ARG, "bn_module_get", "path", NULL);
        cr_assert_null(bn_module_repr(NULL));
        bnt_assert_error(BN_ERR_ARG, "bn_module_repr", NULL);
        cr_assert_eq(bn_rnn_forward(NULL, x, NULL, NULL, NULL, NULL, NULL), BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "bn_rnn_forward", "m", NULL);
        cr_assert_eq(bn_init_uniform(NULL, 0, 1), BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "bn_init_uniform", "t", NULL);
        cr_assert_eq(bn_module_init(NULL, NULL), BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "bn_module_init", NULL);
        cr_assert_str_eq(bn_module_type_name(NULL), "?");
        bn_module_free(NULL);
        bn_release(x);
        bn_module_free(lin);
    });
}

Test(nn_modules_api, bad_constructor_arguments_are_reported)
{
    BNT_ASSERT_NO_LEAK({
        cr_assert_null(bn_nn_linear(-1, 3, true));
        bnt_assert_error(BN_ERR_ARG, "bn_nn_linear", "in_features -1", NULL);
        cr_assert_null(bn_nn_conv2d(3, 8, 3, (bn_conv_opts){.groups = 2}));
        bnt_assert_error(BN_ERR_ARG, "bn_nn_conv2d", "in_channels 3", "groups 2", NULL);
        cr_assert_null(bn_nn_conv2d(3, 8, 3, (bn_conv_opts){.same = true, .stride = 2}));
        bnt_assert_error(BN_ERR_ARG, "bn_nn_conv2d", "same", NULL);
        cr_assert_null(bn_nn_conv1d(0, 8, 3, (bn_conv_opts){0}));
        bnt_assert_error(BN_ERR_ARG, "bn_nn_conv1d", "in_channels 0", NULL);
        cr_assert_null(bn_nn_conv2d(2, 2, 3, (bn_conv_opts){.output_padding = 1}));
        bnt_assert_error(BN_ERR_ARG, "bn_nn_conv2d", "output_padding", NULL);
        cr_assert_null(bn_nn_maxpool2d(2, (bn_pool_opts){.padding = 2}));
        bnt_assert_error(BN_ERR_ARG, "bn_nn_maxpool2d", "padding 2", "kernel 2", NULL);
        cr_assert_null(bn_nn_avgpool2d(0, (bn_pool_opts){0}));
        bnt_assert_error(BN_ERR_ARG, "bn_nn_avgpool2d", "kernel 0", NULL);
        cr_assert_null(bn_nn_adaptive_avgpool2d(0, 2));
        bnt_assert_error(BN_ERR_ARG, "bn_nn_adaptive_avgpool2d", "(0, 2)", NULL);
        cr_assert_null(bn_nn_dropout(1.5));
        bnt_assert_error(BN_ERR_ARG, "bn_nn_dropout", "1.5", NULL);
        cr_assert_null(bn_nn_groupnorm(2, 3, (bn_norm_opts){0}));
        bnt_assert_error(BN_ERR_ARG, "bn_nn_groupnorm", "num_channels 3", "num_groups 2", NULL);
        cr_assert_null(bn_nn_batchnorm1d(0, (bn_norm_opts){0}));
        bnt_assert_error(BN_ERR_ARG, "bn_nn_batchnorm1d", "num_features 0", NULL);
        cr_assert_null(bn_nn_batchnorm2d(3, (bn_norm_opts){.momentum = 2}));
        bnt_assert_error(BN_ERR_ARG, "bn_nn_batchnorm2d", "momentum 2", NULL);
        cr_assert_null(bn_nn_layernorm(BN_SCALAR, (bn_norm_opts){0}));
        bnt_assert_error(BN_ERR_ARG, "bn_nn_layernorm", "normalized_shape", NULL);
        cr_assert_null(bn_nn_embedding(-2, 3));
        bnt_assert_error(BN_ERR_ARG, "bn_nn_embedding", "num_embeddings -2", NULL);
        cr_assert_null(bn_nn_lstm(3, 0, (bn_rnn_opts){0}));
        bnt_assert_error(BN_ERR_ARG, "bn_nn_lstm", "hidden_size 0", NULL);
        cr_assert_null(bn_nn_gru(3, 4, (bn_rnn_opts){.num_layers = -1}));
        bnt_assert_error(BN_ERR_ARG, "bn_nn_gru", "num_layers -1", NULL);
        /* a failed constructor inside the list fails the whole Sequential, freeing the rest */
        cr_assert_null(bn_nn_sequential(bn_nn_linear(2, 2, true), bn_nn_linear(-1, 2, true),
                                        NULL));
        bnt_assert_error(BN_ERR_ARG, "bn_nn_linear", NULL);
        bn_tensor *ints = bn_zeros(BN_SHAPE(2), BN_I32);
        cr_assert_eq(bn_init_uniform(ints, 0, 1), BN_ERR_DTYPE);
        bnt_assert_error(BN_ERR_DTYPE, "bn_init_uniform", "i32", NULL);
        bn_release(ints);
    });
}

Test(nn_modules_api, bad_registration_and_container_use_are_reported)
{
    BNT_ASSERT_NO_LEAK({
        bn_module *lin = bn_nn_linear(2, 2, true);
        bn_tensor *t = bn_zeros(BN_SHAPE(2), BN_F32);
        cr_assert_eq(bn_module_add_param(lin, "bias", t), BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "bn_module_add_param", "Linear", "\"bias\"", NULL);
        cr_assert_eq(bn_module_add_buffer(lin, "a.b", t), BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "bn_module_add_buffer", "a.b", NULL);
        cr_assert_null(bn_module_add_child(lin, "", bn_nn_relu()));
        bnt_assert_error(BN_ERR_ARG, "bn_module_add_child", "non-empty", NULL);
        cr_assert_eq(bn_module_set_tensor(lin, "nope", t), BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "bn_module_set_tensor", "nope", NULL);
        cr_assert_eq(bn_module_append(lin, bn_nn_relu()), BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "bn_module_append", "Linear", NULL);
        bn_module *list = bn_nn_module_list();
        cr_assert_eq(bn_module_append(list, bn_nn_relu()), BN_OK);
        cr_assert_null(bn_module_forward(list, t));
        bnt_assert_error(BN_ERR_UNSUPPORTED, "bn_module_forward", "ModuleList", NULL);
        cr_assert_eq(bn_rnn_forward(lin, t, NULL, NULL, NULL, NULL, NULL), BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "bn_rnn_forward", "Linear", "LSTM or GRU", NULL);
        cr_assert_null(bn_module_alloc(4, &net_vt));
        bnt_assert_error(BN_ERR_ARG, "bn_module_alloc", "size 4", NULL);
        bn_release(t);
        bn_module_free(list);
        bn_module_free(lin);
    });
}
