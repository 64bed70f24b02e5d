/* tests/unit/test_nn_modules.c — modules (include/born/nn.h) against PyTorch: state-dict names,
 * order and shapes and parameter counts; forward outputs (and LSTM gradients) with parameters set
 * by a formula both sides compute exactly; BatchNorm running statistics; float64 finite
 * differences through LSTM/GRU/Linear/Conv/norm modules; loading state dicts. Fixtures:
 * tests/data/nn_modules.txt, made by scripts/gen_nn_modules.py. The rest of the module API (init,
 * train/eval, repr, errors) is in test_nn_modules_api.c. */
#include "nn_modules_common.h"

#include <stdio.h>
#include <string.h>


/* fixture tensors, loaded once per test and kept until its end (so leak counts around a block
 * can load them beforehand) */
#define FX_CACHE_MAX 64
static struct {
    char key[96];
    bn_tensor *t;
} fx_cache[FX_CACHE_MAX];
static int fx_ncache;

static void fini(void)
{
    bnt_release_kept();
    fx_ncache = 0;
}
TestSuite(nn_modules, .fini = fini);

/* The state dict of m equals the "sd:<tag>:<i>:<name>" cases in order; the count matches. */
static void check_state_dict(const char *tag, bn_module *m)
{
    fx_file *f = fx_open("nn_modules.txt");
    bn_tensor_list sd = bn_module_state_dict(m);
    cr_assert_geq(sd.count, 0, "%s", bn_error_message());
    char prefix[64];
    snprintf(prefix, sizeof prefix, "sd:%s:", tag);
    int seen = 0;
    for (int c = 0; fx_case_name(f, c); c++) {
        const char *cn = fx_case_name(f, c);
        if (strncmp(cn, prefix, strlen(prefix))) continue;
        const char *name = strchr(cn + strlen(prefix), ':') + 1;
        cr_assert_lt(seen, sd.count, "%s: born has fewer entries than torch (missing %s)", tag,
                     name);
        cr_assert_str_eq(sd.names[seen], name, "%s entry %d", tag, seen);
        bn_tensor *shape = fx_tensor(f, cn, "shape");
        bn_shape s = bn_shape_of(sd.tensors[seen]);
        cr_assert_eq(s.ndim, bn_numel(shape), "%s: ndim of %s", tag, name);
        for (int d = 0; d < s.ndim; d++)
            cr_assert_eq(s.dims[d], (int64_t)bn_get(shape, (int64_t[]){d}), "%s: %s dim %d", tag,
                         name, d);
        bn_release(shape);
        seen++;
    }
    cr_assert_eq(seen, sd.count, "%s: born has %d entries, torch %d", tag, sd.count, seen);
    char count_case[64];
    snprintf(count_case, sizeof count_case, "count:%s", tag);
    cr_assert_eq(bn_module_num_parameters(m), (int64_t)fx_scalar(f, count_case, "n"), "%s", tag);
    bn_tensor_list_free(&sd);
    fx_close(f);
}

static bn_tensor *fx(const char *c, const char *t)
{
    char key[96];
    snprintf(key, sizeof key, "%s/%s", c, t);
    for (int i = 0; i < fx_ncache; i++)
        if (!strcmp(fx_cache[i].key, key)) return fx_cache[i].t;
    cr_assert_lt(fx_ncache, FX_CACHE_MAX);
    fx_file *f = fx_open("nn_modules.txt");
    bn_tensor *r = bnt_keep(fx_tensor(f, c, t));
    fx_close(f);
    snprintf(fx_cache[fx_ncache].key, sizeof key, "%s", key);
    fx_cache[fx_ncache++].t = r;
    return r;
}

static void fx_preload(const char *c, const char *const *names, int n)
{
    for (int i = 0; i < n; i++) fx(c, names[i]);
}

static void close_f32(const bn_tensor *got, const bn_tensor *want, const char *what)
{
    cr_assert_not_null(got, "%s: %s", what, bn_error_message());
    bnt_assert_close(got, want, 1e-4, 1e-5, what);
}

/* forward of m (formula weights) on case's x equals its y */
static void check_forward(const char *c, bn_module *m)
{
    cr_assert_not_null(m, "%s: %s", c, bn_error_message());
    formula_weights(m);
    bn_tensor *x = fx(c, "x"), *y = fx(c, "y"); /* kept until the suite's fini */
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        close_f32(bn_module_forward(m, x), y, c);
        bn_scope_end();
    });
    bn_module_free(m);
}

/* ---- state dicts and counts ------------------------------------------------------------------- */

Test(nn_modules, state_dict_names_and_order_match_pytorch)
{
    BNT_ASSERT_NO_LEAK({
        bn_module *models[] = {
            mlp(),
            cnn(),
            bn_nn_sequential(bn_nn_conv2d_ex(3, 4, 3, (bn_nn_conv_opts){.no_bias = true}),
                             bn_nn_batchnorm2d(4, (bn_norm_opts){0}), bn_nn_relu(),
                             bn_nn_flatten(), bn_nn_linear(16, 5, true),
                             bn_nn_batchnorm1d(5, (bn_norm_opts){0}), NULL),
            bn_nn_lstm(5, 4, (bn_rnn_opts){.num_layers = 2}),
            bn_nn_gru(3, 6, (bn_rnn_opts){.no_bias = true}),
            net_new(),
            bn_nn_sequential(bn_nn_groupnorm(2, 4, (bn_norm_opts){0}),
                             bn_nn_layernorm(BN_SHAPE(2, 3), (bn_norm_opts){0}),
                             bn_nn_embedding(7, 3),
                             bn_nn_conv_transpose2d_ex(4, 6, 3, (bn_nn_conv_opts){.groups = 2}),
                             bn_nn_conv1d_ex(2, 4, 5, (bn_nn_conv_opts){.no_bias = true}), NULL),
        };
        const char *tags[] = {"mlp", "cnn", "bn", "lstm", "gru", "net", "norms"};
        for (int i = 0; i < 7; i++) {
            cr_assert_not_null(models[i], "%s: %s", tags[i], bn_error_message());
            check_state_dict(tags[i], models[i]);
            bn_module_free(models[i]);
        }
    });
}

Test(nn_modules, parameter_counts_and_lists)
{
    BNT_ASSERT_NO_LEAK({
        bn_module *m = mlp();
        cr_assert_eq(bn_module_num_parameters(m), 101770);
        bn_tensor *ps[8] = {0};
        cr_assert_eq(bn_module_parameters(m, NULL, 0), 4);
        cr_assert_eq(bn_module_parameters(m, ps, 8), 4);
        cr_assert(bn_requires_grad(ps[0]) && bn_is_leaf(ps[0]));
        cr_assert(bn_shape_equal(bn_shape_of(ps[2]), BN_SHAPE(10, 128)));
        bn_tensor_list np = bn_module_named_parameters(m);
        cr_assert_eq(np.count, 4);
        cr_assert_str_eq(np.names[3], "3.bias");
        cr_assert_eq(np.tensors[1], ps[1]);
        bn_tensor_list_free(&np);
        bn_tensor_list bufs = bn_module_named_buffers(m);
        cr_assert_eq(bufs.count, 0);
        bn_tensor_list_free(&bufs);
        bn_module_free(m);

        m = cnn();
        cr_assert_eq(bn_module_num_parameters(m), 225034); /* 320 + 18496 + 204928 + 1290 */
        bn_module_free(m);
    });
}

Test(nn_modules, shared_parameter_is_listed_once_but_saved_under_both_names)
{
    BNT_ASSERT_NO_LEAK({
        bn_module *a = bn_nn_linear(3, 3, false), *b = bn_nn_linear(3, 3, false);
        bn_tensor *w = bn_module_get(a, "weight");
        cr_assert_eq(bn_module_set_tensor(b, "weight", w), BN_OK);
        bn_release(w);
        bn_module *seq = bn_nn_sequential(a, b, NULL);
        cr_assert_eq(bn_module_num_parameters(seq), 9);
        bn_tensor_list sd = bn_module_state_dict(seq);
        cr_assert_eq(sd.count, 2);
        cr_assert_str_eq(sd.names[1], "1.weight");
        bn_tensor_list_free(&sd);
        bn_module_free(seq);
    });
}

Test(nn_modules, lookup_by_dotted_path)
{
    BNT_ASSERT_NO_LEAK({
        bn_module *m = net_new();
        bn_scope_begin();
        bn_tensor *w = bn_module_get(m, "head.0.weight");
        cr_assert(bn_shape_equal(bn_shape_of(w), BN_SHAPE(2, 3)));
        cr_assert_not_null(bn_module_get(m, "steps"));
        cr_assert_str_eq(bn_module_type_name(bn_module_child(m, "features.2")), "LayerNorm");
        cr_assert_eq(bn_module_num_children(m), 2);
        const char *name = NULL;
        cr_assert_eq(bn_module_child_at(m, 1, &name), bn_module_child(m, "head"));
        cr_assert_str_eq(name, "head");
        cr_assert_null(bn_module_get(m, "head.2.weight"));
        bnt_assert_error(BN_ERR_ARG, "bn_module_get", "Net", "head.2.weight", NULL);
        cr_assert_null(bn_module_child(m, "features.9"));
        bnt_assert_error(BN_ERR_ARG, "bn_module_child", "features.9", NULL);
        cr_assert_null(bn_module_child_at(m, 2, NULL));
        bnt_assert_error(BN_ERR_ARG, "bn_module_child_at", "index 2", NULL);
        bn_scope_end();
        bn_module_free(m);
    });
}

/* ---- forward against PyTorch -------------------------------------------------------------------- */

Test(nn_modules, linear_matches_pytorch_on_contiguous_and_strided_input)
{
    check_forward("linear", bn_nn_linear(4, 3, true));
    check_forward("linear_nobias", bn_nn_linear(4, 3, false));
    bn_tensor *x0 = fx("linear", "x"), *y0 = fx("linear", "y");
    BNT_ASSERT_NO_LEAK({
        bn_module *m = bn_nn_linear(4, 3, true);
        formula_weights(m);
        bn_scope_begin();
        /* the same values through a non-contiguous view */
        bn_tensor *x = bn_transpose(bn_contiguous(bn_transpose(x0, 0, 1)), 0, 1);
        cr_assert(!bn_is_contiguous(x));
        close_f32(bn_module_forward(m, x), y0, "strided");
        bn_scope_end();
        bn_module_free(m);
    });
}

Test(nn_modules, convolutions_match_pytorch)
{
    check_forward("conv2d_stride_pad", bn_nn_conv2d(2, 4, 3, (bn_conv_opts){.stride = 2,
                                                                          .padding = 1}));
    check_forward("conv2d_groups_dilation",
                  bn_nn_conv2d(4, 6, 3, (bn_conv_opts){.dilation = 2, .groups = 2}));
    check_forward("conv2d_same", bn_nn_conv2d(2, 3, 3, (bn_conv_opts){.same = true}));
    check_forward("conv2d_unbatched", bn_nn_conv2d(2, 3, 3, (bn_conv_opts){0}));
    check_forward("conv1d", bn_nn_conv1d(2, 4, 3, (bn_conv_opts){.padding = 1}));
    check_forward("conv_transpose2d",
                  bn_nn_conv_transpose2d(4, 2, 3, (bn_conv_opts){.stride = 2, .padding = 1,
                                                                 .output_padding = 1}));
}

Test(nn_modules, issue_models_match_pytorch)
{
    check_forward("cnn", cnn());
    check_forward("mlp", mlp());
}

Test(nn_modules, norms_match_pytorch)
{
    check_forward("layernorm", bn_nn_layernorm(BN_SHAPE(2, 3), (bn_norm_opts){0}));
    check_forward("groupnorm", bn_nn_groupnorm(2, 4, (bn_norm_opts){0}));
    /* RMSNorm keeps its default ones weight: the script's reference uses ones too */
    bn_tensor *x = fx("rmsnorm", "x"), *y = fx("rmsnorm", "y");
    BNT_ASSERT_NO_LEAK({
        bn_module *m = bn_nn_rmsnorm(BN_SHAPE(5), (bn_norm_opts){0});
        bn_scope_begin();
        close_f32(bn_module_forward(m, x), y, "rmsnorm");
        bn_scope_end();
        bn_module_free(m);
    });
}

static void check_batchnorm(const char *c, bn_module *m)
{
    cr_assert_not_null(m, "%s", bn_error_message());
    formula_weights(m);
    const char *names[] = {"x1", "x2", "x3", "y1", "y2", "y_eval", "running_mean", "running_var",
                           "num_batches_tracked"};
    fx_preload(c, names, 9);
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        close_f32(bn_module_forward(m, fx(c, "x1")), fx(c, "y1"), "train step 1");
        close_f32(bn_module_forward(m, fx(c, "x2")), fx(c, "y2"), "train step 2");
        close_f32(bn_module_get(m, "running_mean"), fx(c, "running_mean"), "running_mean");
        close_f32(bn_module_get(m, "running_var"), fx(c, "running_var"), "running_var");
        bnt_assert_equal(bn_module_get(m, "num_batches_tracked"), fx(c, "num_batches_tracked"),
                         "num_batches_tracked");
        bn_module_eval(m);
        close_f32(bn_module_forward(m, fx(c, "x3")), fx(c, "y_eval"), "eval uses running stats");
        bnt_assert_equal(bn_module_get(m, "num_batches_tracked"), fx(c, "num_batches_tracked"),
                         "eval does not count");
        bn_scope_end();
    });
    bn_module_free(m);
}

Test(nn_modules, batchnorm_trains_with_batch_stats_and_evaluates_with_running_stats)
{
    check_batchnorm("batchnorm2d", bn_nn_batchnorm2d(3, (bn_norm_opts){0}));
    check_batchnorm("batchnorm1d", bn_nn_batchnorm1d(3, (bn_norm_opts){0}));
    check_batchnorm("batchnorm1d_cumulative",
                    bn_nn_batchnorm1d(3, (bn_norm_opts){.cumulative_average = true}));
}

Test(nn_modules, batchnorm_without_running_stats_always_uses_the_batch)
{
    BNT_ASSERT_NO_LEAK({
        bn_module *m = bn_nn_batchnorm1d(2, (bn_norm_opts){.no_track_running_stats = true,
                                                            .no_affine = true});
        bn_tensor_list sd = bn_module_state_dict(m);
        cr_assert_eq(sd.count, 0);
        bn_tensor_list_free(&sd);
        bn_module_eval(m);
        bn_scope_begin();
        bn_tensor *x = bn_from_data((float[]){1, 10, 3, 20}, BN_SHAPE(2, 2), BN_F32);
        bnt_assert_close(bn_module_forward(m, x),
                         bn_from_data((float[]){-1, -1, 1, 1}, BN_SHAPE(2, 2), BN_F32), 1e-4,
                         1e-4, "batch statistics in eval");
        bn_scope_end();
        bn_module_free(m);
    });
}

Test(nn_modules, lstm_outputs_and_gradients_match_pytorch)
{
    fx_preload("lstm", (const char *[]){"x", "h0", "c0", "out", "hn", "cn", "grad_x",
                                        "grad_weight_ih_l0", "grad_bias_hh_l1", "out_zero_state"},
               10);
    BNT_ASSERT_NO_LEAK({
        bn_module *m = bn_nn_lstm(3, 4, (bn_rnn_opts){.num_layers = 2, .batch_first = true});
        cr_assert_not_null(m);
        formula_weights(m);
        bn_scope_begin();
        bn_tensor *x = bn_clone(fx("lstm", "x"));
        bn_set_requires_grad(x, true);
        bn_tensor *out = NULL, *hn = NULL, *cn = NULL;
        cr_assert_eq(bn_rnn_forward(m, x, fx("lstm", "h0"), fx("lstm", "c0"), &out, &hn, &cn),
                     BN_OK, "%s", bn_error_message());
        close_f32(out, fx("lstm", "out"), "out");
        close_f32(hn, fx("lstm", "hn"), "h_n");
        close_f32(cn, fx("lstm", "cn"), "c_n");
        bn_tensor *loss = bn_add(bn_add(bn_sum(out, BN_ALL, false), bn_sum(hn, BN_ALL, false)),
                                 bn_sum(cn, BN_ALL, false));
        cr_assert_eq(bn_backward(loss), BN_OK, "%s", bn_error_message());
        close_f32(bn_grad(x), fx("lstm", "grad_x"), "grad x");
        close_f32(bn_grad(bn_module_get(m, "weight_ih_l0")), fx("lstm", "grad_weight_ih_l0"),
                  "grad weight_ih_l0");
        close_f32(bn_grad(bn_module_get(m, "bias_hh_l1")), fx("lstm", "grad_bias_hh_l1"),
                  "grad bias_hh_l1");
        /* zero initial state; bn_module_forward returns the output only */
        close_f32(bn_module_forward(m, fx("lstm", "x")), fx("lstm", "out_zero_state"),
                  "zero state");
        bn_scope_end();
        bn_module_free(m); /* with the gradients it holds */
    });
}

Test(nn_modules, gru_matches_pytorch)
{
    fx_preload("gru", (const char *[]){"x", "out", "hn"}, 3);
    fx_preload("gru_unbatched_nobias", (const char *[]){"x", "h0", "out", "hn"}, 4);
    BNT_ASSERT_NO_LEAK({
        bn_module *m = bn_nn_gru(3, 4, (bn_rnn_opts){.num_layers = 2});
        formula_weights(m);
        bn_scope_begin();
        bn_tensor *out = NULL, *hn = NULL, *cn = NULL;
        cr_assert_eq(bn_rnn_forward(m, fx("gru", "x"), NULL, NULL, &out, &hn, &cn), BN_OK, "%s",
                     bn_error_message());
        cr_assert_null(cn);
        close_f32(out, fx("gru", "out"), "out");
        close_f32(hn, fx("gru", "hn"), "h_n");
        bn_scope_end();
        bn_module_free(m);

        m = bn_nn_gru(3, 4, (bn_rnn_opts){.no_bias = true});
        formula_weights(m);
        bn_scope_begin();
        const char *c = "gru_unbatched_nobias";
        cr_assert_eq(bn_rnn_forward(m, fx(c, "x"), fx(c, "h0"), NULL, &out, &hn, NULL), BN_OK,
                     "%s", bn_error_message());
        close_f32(out, fx(c, "out"), "unbatched out");
        close_f32(hn, fx(c, "hn"), "unbatched h_n");
        bn_scope_end();
        bn_module_free(m);
    });
}

/* ---- float64 finite differences through modules -------------------------------------------- */

static bn_tensor *rnn_fn(void *ctx, bn_tensor *const *in, int n)
{
    (void)n;
    /* x arrives as (N, T, C) and is viewed as (T, N, C); h0 is sliced from a larger leaf */
    bn_tensor *out = NULL, *hn = NULL, *cn = NULL;
    bn_tensor *h0 = bn_slice(in[1], 2, 0, 4, 1);
    bn_rnn_forward(ctx, bn_transpose(in[0], 0, 1), h0, NULL, &out, &hn, &cn);
    bn_tensor *r = bn_add(bn_sum(out, BN_ALL, false), bn_mul(hn, hn));
    return cn ? bn_add(r, cn) : r;
}

static bn_tensor *module_fn(void *ctx, bn_tensor *const *in, int n)
{
    (void)n;
    return bn_module_forward(ctx, in[0]);
}

Test(nn_modules, recurrent_gradients_match_finite_differences)
{
    bn_module *ms[2] = {bn_nn_lstm(3, 4, (bn_rnn_opts){.num_layers = 2}),
                        bn_nn_gru(3, 4, (bn_rnn_opts){.num_layers = 2})};
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(bn_module_to_dtype(ms[i], BN_F64), BN_OK, "%s", bn_error_message());
        bn_tensor *w = bn_module_get(ms[i], "weight_hh_l1");
        cr_assert_eq(bn_dtype_of(w), BN_F64);
        bn_release(w);
        bn_tensor *in[2] = {bnt_param(BN_SHAPE(2, 3, 3), -1, 1),
                            bnt_param(BN_SHAPE(2, 2, 6), -1, 1)};
        bnt_gradcheck(bn_module_type_name(ms[i]), rnn_fn, ms[i], in, 2);
        bn_release(in[0]);
        bn_release(in[1]);
        bn_module_free(ms[i]);
    }
}

/* the input arrives transposed: the module sees a non-contiguous view of the leaf */
static bn_tensor *module_fn_transposed(void *ctx, bn_tensor *const *in, int n)
{
    (void)n;
    return bn_module_forward(ctx, bn_transpose(in[0], 0, 1));
}

Test(nn_modules, gradients_through_a_model_on_a_strided_input_match_finite_differences)
{
    bn_module *m = bn_nn_sequential(bn_nn_linear(3, 4, true), bn_nn_tanh(),
                                    bn_nn_layernorm(BN_SHAPE(4), (bn_norm_opts){0}),
                                    bn_nn_linear(4, 2, false), NULL);
    cr_assert_eq(bn_module_to_dtype(m, BN_F64), BN_OK);
    bn_tensor *x = bnt_param(BN_SHAPE(3, 5), -1, 1); /* viewed as (5, 3) */
    bnt_gradcheck("mlp on x^T", module_fn_transposed, m, &x, 1);
    bn_release(x);
    bn_module_free(m);
}

Test(nn_modules, empty_batches_and_scalars_pass_through)
{
    BNT_ASSERT_NO_LEAK({
        bn_module *lin = bn_nn_linear(4, 3, true), *relu = bn_nn_relu();
        bn_scope_begin();
        bn_tensor *y = bn_module_forward(lin, bn_zeros(BN_SHAPE(0, 4), BN_F32));
        cr_assert_not_null(y, "%s", bn_error_message());
        cr_assert(bn_shape_equal(bn_shape_of(y), BN_SHAPE(0, 3)));
        bn_tensor *s = bn_module_forward(relu, bn_scalar(-2, BN_F32));
        cr_assert_eq(bn_ndim(s), 0);
        cr_assert_eq(bn_item(s), 0);
        bn_scope_end();
        bn_module_free(lin);
        bn_module_free(relu);
    });
}

Test(nn_modules, layer_gradients_match_finite_differences)
{
    bn_module *ms[] = {bn_nn_linear(4, 3, true),
                       bn_nn_conv2d(2, 3, 3, (bn_conv_opts){.padding = 1}),
                       bn_nn_layernorm(BN_SHAPE(4), (bn_norm_opts){0}),
                       bn_nn_batchnorm1d(2, (bn_norm_opts){0})};
    bn_shape shapes[] = {BN_SHAPE(2, 4), BN_SHAPE(1, 2, 4, 4), BN_SHAPE(3, 4), BN_SHAPE(3, 2, 4)};
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(bn_module_to_dtype(ms[i], BN_F64), BN_OK, "%s", bn_error_message());
        bn_tensor *x = bnt_param(shapes[i], -1, 1);
        bnt_gradcheck(bn_module_type_name(ms[i]), module_fn, ms[i], &x, 1);
        bn_release(x);
        bn_module_free(ms[i]);
    }
}

Test(nn_modules, load_state_dict_copies_values_and_checks_names_and_shapes)
{
    BNT_ASSERT_NO_LEAK({
        bn_module *a = net_new(), *b = net_new();
        formula_weights(a);
        bn_tensor_list sd = bn_module_state_dict(a);
        cr_assert_eq(bn_module_load_state_dict(b, &sd, true), BN_OK, "%s", bn_error_message());
        bn_scope_begin();
        bn_tensor *x = bn_randn(BN_SHAPE(3, 4), BN_F32);
        bnt_assert_equal(bn_module_forward(b, x), bn_module_forward(a, x), "same outputs");
        bn_scope_end();
        /* strict: a missing entry; lenient: the others still load */
        bn_tensor_list part = sd;
        part.count = sd.count - 1;
        cr_assert_eq(bn_module_load_state_dict(b, &part, true), BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "bn_module_load_state_dict", "missing key", "head.1.weight",
                         NULL);
        cr_assert_eq(bn_module_load_state_dict(b, &part, false), BN_OK);
        bn_tensor_list_free(&sd);
        bn_module *lin = bn_nn_linear(3, 2, true);
        sd = bn_module_state_dict(lin);
        cr_assert_eq(bn_module_load_state_dict(a, &sd, false), BN_OK); /* no common names */
        cr_assert_eq(bn_module_load_state_dict(a, &sd, true), BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "missing key", "scale", NULL);
        bn_module *lin2 = bn_nn_linear(4, 2, true);
        cr_assert_eq(bn_module_load_state_dict(lin2, &sd, true), BN_ERR_SHAPE);
        bnt_assert_error(BN_ERR_SHAPE, "bn_module_load_state_dict", "\"weight\"", "[2, 4]",
                         "[2, 3]", NULL);
        cr_assert_eq(bn_module_load_state_dict(lin2, NULL, true), BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "bn_module_load_state_dict", "sd", NULL);
        bn_tensor_list_free(&sd);
        bn_module_free(lin);
        bn_module_free(lin2);
        bn_module_free(a);
        bn_module_free(b);
    });
}

Test(nn_modules, zero_grad_clears_every_parameter_gradient)
{
    BNT_ASSERT_NO_LEAK({
        bn_module *m = mlp();
        bn_scope_begin();
        bn_tensor *y = bn_module_forward(m, bn_randn(BN_SHAPE(2, 784), BN_F32));
        cr_assert_eq(bn_backward(bn_sum(y, BN_ALL, false)), BN_OK, "%s", bn_error_message());
        bn_tensor *ps[4];
        bn_module_parameters(m, ps, 4);
        cr_assert_not_null(bn_grad(ps[0]));
        bn_module_zero_grad(m);
        for (int i = 0; i < 4; i++) cr_assert_null(bn_grad(ps[i]));
        bnt_assert_no_error("zero_grad");
        bn_scope_end();
        bn_module_free(m);
    });
}

Test(nn_modules, reduced_precision_modules_follow_the_float32_result)
{
    bn_dtype dts[] = {BN_F16, BN_BF16};
    for (int i = 0; i < 2; i++) {
        BNT_ASSERT_NO_LEAK({
            bn_module *m = bn_nn_sequential(bn_nn_linear(8, 4, true), bn_nn_gelu(false), NULL);
            bn_scope_begin();
            bn_tensor *x = bn_randn(BN_SHAPE(3, 8), BN_F32);
            bn_tensor *want = bn_module_forward(m, x);
            cr_assert_eq(bn_module_to_dtype(m, dts[i]), BN_OK);
            bn_tensor *got = bn_module_forward(m, bn_to_dtype(x, dts[i]));
            cr_assert_eq(bn_dtype_of(got), dts[i], "%s", bn_error_message());
            bnt_assert_close(bn_to_dtype(got, BN_F32), want, 0.05, 0.05, bn_dtype_name(dts[i]));
            bn_scope_end();
            bn_module_free(m);
        });
    }
}
