/* tests/unit/test_autograd.c — the backward engine: accumulation, broadcasting, retain_graph,
 * retain_grad, no-grad, detach, higher derivatives, bn_autograd_grad, in-place detection,
 * checkpointing; gradients checked against float64 finite differences. */
#include "bn_test.h"

#include "born/autograd.h"

#include <math.h>

static bn_tensor *vec(const double *v, int64_t n, bool grad)
{
    bn_tensor *t = bn_from_data(v, BN_SHAPE(n), BN_F64);
    if (grad) bn_set_requires_grad(t, true);
    return t;
}

Test(autograd, product_rule_and_accumulation)
{
    bn_scope_begin();
    bn_tensor *a = vec((double[]){1, 2, 3}, 3, true);
    bn_tensor *b = vec((double[]){4, 5, 6}, 3, true);
    bn_tensor *y = bn_sum(bn_add(bn_mul(a, b), a), BN_ALL, false); /* sum(a*b + a) */
    cr_assert_str_eq(bn_grad_fn_name(y), "SumBackward");
    cr_assert(!bn_is_leaf(y) && bn_is_leaf(a));
    cr_assert_eq(bn_backward(y), BN_OK, "%s", bn_error_message());
    bnt_assert_values(bn_grad(a), (double[]){5, 6, 7}, 3, 0, "d/da = b + 1");
    bnt_assert_values(bn_grad(b), (double[]){1, 2, 3}, 3, 0, "d/db = a");
    /* a second backward through a fresh graph accumulates */
    bn_tensor *z = bn_sum(bn_mul(a, a), BN_ALL, false);
    cr_assert_eq(bn_backward(z), BN_OK);
    bnt_assert_values(bn_grad(a), (double[]){7, 10, 13}, 3, 0, "accumulated");
    cr_assert_eq(bn_set_grad(a, NULL), BN_OK);
    cr_assert_null(bn_grad(a));
    bnt_assert_no_error("cleared grad");
    bn_scope_end();
}

Test(autograd, broadcast_gradients_sum_back_to_input_shapes)
{
    bn_scope_begin();
    bn_tensor *a = bn_reshape(vec((double[]){1, 2, 3}, 3, false), BN_SHAPE(3, 1));
    bn_set_requires_grad(a, true);
    bn_tensor *b = vec((double[]){10, 20}, 2, true); /* [2] broadcasts to [3, 2] */
    bn_tensor *y = bn_sum(bn_mul(a, b), BN_ALL, false);
    cr_assert_eq(bn_backward(y), BN_OK, "%s", bn_error_message());
    bn_tensor *ga = bn_grad(a), *gb = bn_grad(b);
    cr_assert(bn_shape_equal(bn_shape_of(ga), BN_SHAPE(3, 1)));
    bnt_assert_values(ga, (double[]){30, 30, 30}, 3, 0, "d/da");
    bnt_assert_values(gb, (double[]){6, 6}, 2, 0, "d/db");
    bn_scope_end();
}

Test(autograd, graph_is_freed_unless_retained)
{
    bn_scope_begin();
    bn_tensor *a = vec((double[]){2}, 1, true);
    bn_tensor *y = bn_sum(bn_mul(a, a), BN_ALL, false);
    cr_assert_eq(bn_backward_ex(y, (bn_backward_opts){.retain_graph = true}), BN_OK);
    cr_assert_eq(bn_backward(y), BN_OK);
    bnt_assert_values(bn_grad(a), (double[]){8}, 1, 0, "twice with retain_graph");
    cr_assert_eq(bn_backward(y), BN_ERR_ARG);
    bnt_assert_error(BN_ERR_ARG, "bn_backward", "already freed", "retain_graph", NULL);
    bn_scope_end();
}

Test(autograd, retain_grad_keeps_a_non_leaf_gradient)
{
    bn_scope_begin();
    bn_tensor *a = vec((double[]){1, 2}, 2, true);
    bn_tensor *h = bn_mul(a, a);
    cr_assert_eq(bn_retain_grad(h), BN_OK);
    bn_tensor *y = bn_sum(bn_mul(h, vec((double[]){3, 4}, 2, false)), BN_ALL, false);
    cr_assert_eq(bn_backward(y), BN_OK);
    bnt_assert_values(bn_grad(h), (double[]){3, 4}, 2, 0, "non-leaf grad");
    bnt_assert_values(bn_grad(a), (double[]){6, 16}, 2, 0, "leaf grad");
    bn_scope_end();
}

Test(autograd, no_grad_and_detach_record_nothing)
{
    bn_scope_begin();
    bn_tensor *a = vec((double[]){1, 2}, 2, true);
    bn_no_grad_begin();
    cr_assert(!bn_grad_enabled());
    bn_tensor *y = bn_mul(a, a);
    bn_no_grad_end();
    cr_assert(bn_grad_enabled());
    cr_assert(!bn_requires_grad(y) && bn_is_leaf(y));
    bn_tensor *d = bn_detach(bn_mul(a, a));
    cr_assert(!bn_requires_grad(d) && bn_is_leaf(d));
    cr_assert_eq(bn_backward(bn_sum(d, BN_ALL, false)), BN_ERR_ARG);
    bnt_assert_error(BN_ERR_ARG, "bn_backward", "does not require grad", NULL);
    bn_no_grad_end();
    bnt_assert_error(BN_ERR_ARG, "bn_no_grad_end", NULL);
    bn_scope_end();
}

Test(autograd, second_derivative_with_create_graph)
{
    bn_scope_begin();
    bn_tensor *x = vec((double[]){2, -1}, 2, true);
    bn_tensor *y = bn_sum(bn_mul(bn_mul(x, x), x), BN_ALL, false); /* sum x^3 */
    bn_tensor *g1[1];
    cr_assert_eq(bn_autograd_grad(&y, NULL, 1, &x, 1, g1, (bn_backward_opts){.create_graph = true}),
                 BN_OK, "%s", bn_error_message());
    bnt_assert_values(g1[0], (double[]){12, 3}, 2, 1e-12, "3x^2");
    cr_assert(bn_requires_grad(g1[0]));
    cr_assert_null(bn_grad(x), "bn_autograd_grad leaves .grad alone");
    bn_tensor *s = bn_sum(g1[0], BN_ALL, false);
    cr_assert_eq(bn_backward(s), BN_OK, "%s", bn_error_message());
    bnt_assert_values(bn_grad(x), (double[]){12, -6}, 2, 1e-12, "6x");
    bn_scope_end();
}

Test(autograd, in_place_changes_are_caught)
{
    bn_scope_begin();
    bn_tensor *a = vec((double[]){1, 2}, 2, true);
    cr_assert_eq(bn_fill_(a, 0), BN_ERR_ARG);
    bnt_assert_error(BN_ERR_ARG, "bn_fill_", "requires grad", "bn_no_grad_begin", NULL);
    bn_tensor *b = vec((double[]){3, 4}, 2, false);
    bn_tensor *y = bn_sum(bn_mul(a, b), BN_ALL, false);
    cr_assert_eq(bn_fill_(b, 7), BN_OK); /* b was saved by MulBackward */
    cr_assert_eq(bn_backward(y), BN_ERR_ARG);
    bnt_assert_error(BN_ERR_ARG, "MulBackward", "modified in place", NULL);
    bn_no_grad_begin();
    cr_assert_eq(bn_fill_(a, 0), BN_OK); /* allowed: an optimizer step */
    bn_no_grad_end();
    bn_scope_end();
}

Test(autograd, bad_arguments)
{
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_tensor *i = bn_ones(BN_SHAPE(2), BN_I32);
        cr_assert_eq(bn_set_requires_grad(i, true), BN_ERR_DTYPE);
        bnt_assert_error(BN_ERR_DTYPE, "bn_set_requires_grad", "i32", NULL);
        bn_tensor *a = vec((double[]){1, 2}, 2, true);
        bn_tensor *m = bn_mul(a, a);
        cr_assert_eq(bn_set_requires_grad(m, false), BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "bn_set_requires_grad", "not a leaf", "MulBackward", NULL);
        cr_assert_eq(bn_backward(m), BN_ERR_SHAPE);
        bnt_assert_error(BN_ERR_SHAPE, "bn_backward", "[2]", "2 elements", NULL);
        cr_assert_eq(bn_backward_ex(m, (bn_backward_opts){.grad = bn_ones(BN_SHAPE(3), BN_F64)}),
                     BN_ERR_SHAPE);
        bnt_assert_error(BN_ERR_SHAPE, "bn_backward", "[3]", "[2]", NULL);
        cr_assert_eq(bn_backward_ex(m, (bn_backward_opts){.grad = bn_ones(BN_SHAPE(2), BN_F64)}),
                     BN_OK);
        cr_assert_eq(bn_backward(NULL), BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "bn_backward", "NULL", NULL);
        cr_assert_eq(bn_set_grad(a, bn_ones(BN_SHAPE(3), BN_F64)), BN_ERR_SHAPE);
        bnt_assert_error(BN_ERR_SHAPE, "bn_set_grad", "[3]", NULL);
        cr_assert_eq(bn_retain_grad(bn_ones(BN_SHAPE(1), BN_F32)), BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "bn_retain_grad", "does not require grad", NULL);
        bn_tensor *g[1];
        bn_tensor *s = bn_sum(m, BN_ALL, false);
        cr_assert_eq(bn_autograd_grad(&s, NULL, 1, &i, 1, g, (bn_backward_opts){0}), BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "bn_autograd_grad", "input 0", NULL);
        cr_assert_null(bn_detach(NULL));
        bnt_assert_error(BN_ERR_ARG, "bn_detach", NULL);
        cr_assert_null(bn_checkpoint(NULL, NULL, &a, 1));
        bnt_assert_error(BN_ERR_ARG, "bn_checkpoint", "fn", NULL);
        bn_scope_end();
    });
}

Test(autograd, long_chains_free_without_deep_recursion)
{
    BNT_ASSERT_NO_LEAK({
        bn_tensor *x = vec((double[]){1.0}, 1, true);
        bn_tensor *c = vec((double[]){0.5}, 1, false);
        bn_tensor *y = x;
        bn_retain(y);
        for (int i = 0; i < 200000; i++) {
            bn_tensor *z = bn_add(y, c);
            bn_release(y);
            y = z;
        }
        bn_release(y);
        bn_release(c);
        bn_release(x);
    });
}

/* ---- checkpointing -------------------------------------------------------------------------- */
static bn_tensor *chain(void *ctx, bn_tensor *const *in, int n)
{
    (void)ctx;
    (void)n;
    bn_tensor *y = in[0];
    for (int i = 0; i < 20; i++) y = bn_add(bn_mul(y, in[1]), in[0]);
    return y;
}

Test(autograd, checkpoint_saves_memory_and_matches_gradients)
{
    bn_scope_begin();
    bn_tensor *x = bnt_keep(bnt_param(BN_SHAPE(64, 64), -1, 1));
    bn_tensor *w = bnt_keep(bnt_param(BN_SHAPE(64, 64), 0.5, 0.9));
    bn_tensor *in[2] = {x, w};
    /* plain: the graph keeps every intermediate alive */
    long long before = bnt_live_tensors();
    bn_tensor *y1 = bn_sum(chain(NULL, in, 2), BN_ALL, false);
    long long plain = bnt_live_tensors() - before;
    cr_assert_eq(bn_backward(y1), BN_OK);
    bn_tensor *gx1 = bn_scope_keep(bn_clone(bn_grad(x))), *gw1 = bn_scope_keep(bn_clone(bn_grad(w)));
    bn_set_grad(x, NULL);
    bn_set_grad(w, NULL);
    bn_scope_end();
    bn_scope_begin();
    before = bnt_live_tensors();
    bn_tensor *seg = bn_checkpoint(chain, NULL, in, 2);
    cr_assert_not_null(seg, "%s", bn_error_message());
    cr_assert_str_eq(bn_grad_fn_name(seg), "CheckpointBackward");
    long long ckpt = bnt_live_tensors() - before;
    cr_assert_lt(ckpt, plain / 10, "checkpointed forward holds %lld tensors, plain %lld", ckpt,
                 plain);
    cr_assert_eq(bn_backward(bn_sum(seg, BN_ALL, false)), BN_OK, "%s", bn_error_message());
    bnt_assert_close(bn_grad(x), gx1, 1e-12, 1e-12, "checkpoint d/dx");
    bnt_assert_close(bn_grad(w), gw1, 1e-12, 1e-12, "checkpoint d/dw");
    bn_scope_end();
    bn_release(gx1);
    bn_release(gw1);
    bnt_release_kept();
}

/* ---- finite differences ---------------------------------------------------------------------- */
static bn_tensor *arith(void *ctx, bn_tensor *const *in, int n)
{
    (void)ctx;
    (void)n;
    /* (a - b) * a / (b broadcast) + a: every rule, with broadcasting */
    bn_tensor *at = in[0]; /* [4, 3] */
    return bn_add(bn_div(bn_mul(bn_sub(at, in[1]), at), in[1]), at);
}

static bn_tensor *reductions(void *ctx, bn_tensor *const *in, int n)
{
    (void)ctx;
    (void)n;
    bn_tensor *s = bn_sum(in[0], 1, true);                   /* [2, 1, 4] */
    bn_tensor *m = bn_mean(in[0], -1, false);                /* [2, 3] */
    bn_tensor *sd = bn_sum_dims(in[0], (int[]){0, 2}, 2, false); /* [3] */
    return bn_add(bn_add(bn_sum(bn_mul(s, s), BN_ALL, false), bn_mean(m, BN_ALL, false)),
                  bn_sum(bn_mul(sd, sd), BN_ALL, true));
}

Test(autograd, arithmetic_matches_finite_differences)
{
    bn_tensor *a = bnt_param(BN_SHAPE(4, 3), -2, 2);
    bn_tensor *b = bnt_param(BN_SHAPE(3), 1, 2); /* broadcasts over the last dim of a^T */
    bn_tensor *in[2] = {a, b};
    bnt_gradcheck("arith", arith, NULL, in, 2);
    bn_release(a);
    bn_release(b);
}

Test(autograd, sum_and_mean_match_finite_differences)
{
    bn_tensor *x = bnt_param(BN_SHAPE(2, 3, 4), -1, 1);
    bnt_gradcheck("reductions", reductions, NULL, &x, 1);
    bn_release(x);
}

/* bn_no_grad_begin inside a forced-on region (a checkpoint's recompute) still disables. */
static bn_tensor *no_grad_inside(void *ctx, bn_tensor *const *in, int n)
{
    (void)ctx;
    (void)n;
    bn_no_grad_begin();
    bool off = !bn_grad_enabled();
    bn_no_grad_end();
    cr_assert(off, "no-grad inside a checkpoint must disable grad");
    return bn_mul(in[0], in[0]);
}

Test(autograd, no_grad_nests_inside_engine_overrides)
{
    bn_scope_begin();
    bn_tensor *x = vec((double[]){3}, 1, true);
    bn_tensor *y = bn_checkpoint(no_grad_inside, NULL, &x, 1);
    cr_assert_eq(bn_backward(bn_sum(y, BN_ALL, false)), BN_OK, "%s", bn_error_message());
    bnt_assert_values(bn_grad(x), (double[]){6}, 1, 0, "d x^2");
    cr_assert(bn_grad_enabled());
    bn_scope_end();
}
