/* tests/unit/test_loss.c — losses: values and input (and target) gradients against PyTorch for
 * every option combination in the fixture, float64 finite-difference checks (with broadcasting
 * and non-contiguous views), and bad input.
 * Fixtures: tests/data/loss.txt, written by scripts/gen_loss.py. */
#include "bn_test.h"

#include "born/autograd.h"

#include <math.h>
#include <string.h>

static void fini(void) { bnt_release_kept(); }
TestSuite(loss, .fini = fini);

enum { MSE, L1, SMOOTH_L1, HUBER, BCE, BCE_LOGITS, KL, CE, NLL };

typedef struct loss_case {
    int kind;
    bn_reduction reduction;
    double beta, smoothing;
    bool use_ignore, log_target, batchmean;
    int64_t ignore_index;
    const bn_tensor *weight, *pos_weight;
} loss_case;

static bn_tensor *run_loss(const loss_case *c, const bn_tensor *x, const bn_tensor *t)
{
    bn_loss_opts lo = {.reduction = c->reduction, .beta = c->beta};
    bn_bce_opts bo = {.reduction = c->reduction, .weight = c->weight, .pos_weight = c->pos_weight};
    bn_ce_opts co = {.reduction = c->reduction,
                     .label_smoothing = c->smoothing,
                     .weight = c->weight,
                     .use_ignore_index = c->use_ignore,
                     .ignore_index = c->ignore_index};
    switch (c->kind) {
    case MSE: return bn_mse_loss(x, t, lo);
    case L1: return bn_l1_loss(x, t, lo);
    case SMOOTH_L1: return bn_smooth_l1_loss(x, t, lo);
    case HUBER: return bn_huber_loss(x, t, lo);
    case BCE: return bn_binary_cross_entropy(x, t, bo);
    case BCE_LOGITS: return bn_binary_cross_entropy_with_logits(x, t, bo);
    case KL:
        return bn_kl_div(x, t, (bn_kl_opts){.reduction = c->reduction, .batchmean = c->batchmean,
                                            .log_target = c->log_target});
    case CE: return bn_cross_entropy(x, t, co);
    case NLL: return bn_nll_loss(x, t, co);
    }
    return NULL;
}

static void check_case(fx_file *f, const char *name)
{
    bn_scope_begin();
    loss_case c = {
        .kind = (int)fx_scalar(f, name, "kind"),
        .reduction = (bn_reduction)fx_scalar(f, name, "reduction"),
        .beta = fx_scalar(f, name, "beta"),
        .smoothing = fx_scalar(f, name, "smoothing"),
        .use_ignore = fx_scalar(f, name, "use_ignore") != 0,
        .ignore_index = (int64_t)fx_scalar(f, name, "ignore_index"),
        .log_target = fx_scalar(f, name, "log_target") != 0,
        .batchmean = fx_scalar(f, name, "batchmean") != 0,
    };
    if (fx_scalar(f, name, "has_weight") != 0) c.weight = bnt_keep(fx_tensor(f, name, "weight"));
    if (fx_scalar(f, name, "has_pos_weight") != 0)
        c.pos_weight = bnt_keep(fx_tensor(f, name, "pos_weight"));
    bool has_gx = fx_scalar(f, name, "has_gx") != 0;
    bool target_grad = fx_scalar(f, name, "target_grad") != 0;
    bn_tensor *x = bnt_keep(fx_tensor(f, name, "x"));
    bn_tensor *t = bnt_keep(fx_tensor(f, name, "target"));
    if (has_gx) bn_set_requires_grad(x, true);
    if (target_grad) bn_set_requires_grad(t, true);
    bn_tensor *xin = fx_scalar(f, name, "transposed") != 0 ? bn_transpose(x, 0, 1) : x;
    bn_tensor *out = run_loss(&c, xin, t);
    cr_assert_not_null(out, "%s: %s", name, bn_error_message());
    bn_tensor *want = bnt_keep(fx_tensor(f, name, "out"));
    bn_dtype dt = bn_dtype_of(want);
    char what[128];
    snprintf(what, sizeof what, "%s: loss", name);
    bnt_assert_close(out, want, bnt_rtol(dt), bnt_atol(dt), what);
    if (has_gx || target_grad) {
        bn_tensor *gout = bnt_keep(fx_tensor(f, name, "gout"));
        cr_assert_eq(bn_backward_ex(out, (bn_backward_opts){.grad = gout}), BN_OK, "%s: %s", name,
                     bn_error_message());
        /* large-logit and clamped cases have gradients of 1e12: compare relative there */
        double atol = dt == BN_F32 ? 1e-5 : 1e-10;
        if (has_gx) {
            snprintf(what, sizeof what, "%s: d/dx", name);
            bnt_assert_close(bn_grad(x), bnt_keep(fx_tensor(f, name, "gx")), bnt_rtol(dt) * 4,
                             atol, what);
        }
        if (target_grad) {
            snprintf(what, sizeof what, "%s: d/dtarget", name);
            bnt_assert_close(bn_grad(t), bnt_keep(fx_tensor(f, name, "gt")), bnt_rtol(dt) * 4,
                             atol, what);
        }
    }
    bn_scope_end();
}

Test(loss, every_fixture_case_matches_torch_values_and_gradients)
{
    fx_file *f = fx_open("loss.txt");
    int n = 0;
    for (const char *name; (name = fx_case_name(f, n)); n++) check_case(f, name);
    cr_assert_gt(n, 70, "only %d cases", n);
    fx_close(f);
}

Test(loss, forward_and_backward_leave_nothing_behind)
{
    bn_tensor *x = bn_randn(BN_SHAPE(4, 3), BN_F32);
    bn_tensor *t = bn_from_data((int64_t[]){0, 2, 1, 2}, BN_SHAPE(4), BN_I64);
    bn_set_requires_grad(x, true);
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_tensor *l = bn_cross_entropy(x, t, (bn_ce_opts){.label_smoothing = 0.1});
        cr_assert_eq(bn_backward(l), BN_OK, "%s", bn_error_message());
        bn_tensor *m = bn_mse_loss(x, bn_zeros(BN_SHAPE(3), BN_F32), (bn_loss_opts){0});
        cr_assert_eq(bn_backward(m), BN_OK, "%s", bn_error_message());
        bn_set_grad(x, NULL);
        bn_scope_end();
    });
    bn_release(x);
    bn_release(t);
}

Test(loss, records_its_own_node_and_nothing_without_grad)
{
    bn_scope_begin();
    bn_tensor *x = bn_randn(BN_SHAPE(2, 3), BN_F32);
    bn_tensor *t = bn_from_data((int64_t[]){0, 2}, BN_SHAPE(2), BN_I64);
    cr_assert(bn_is_leaf(bn_cross_entropy(x, t, (bn_ce_opts){0})));
    bn_set_requires_grad(x, true);
    cr_assert_str_eq(bn_grad_fn_name(bn_cross_entropy(x, t, (bn_ce_opts){0})),
                     "CrossEntropyBackward");
    cr_assert_str_eq(bn_grad_fn_name(bn_mse_loss(x, x, (bn_loss_opts){0})), "MseLossBackward");
    bn_no_grad_begin();
    cr_assert(bn_is_leaf(bn_l1_loss(x, x, (bn_loss_opts){0})));
    bn_no_grad_end();
    bn_scope_end();
}

/* ---- float64 finite differences -------------------------------------------------------------- */
typedef struct gc_ctx {
    loss_case c;
    const bn_tensor *target; /* fixed (class indices or a constant) when the check has one input */
    int view;                /* 0: as is; 1: transpose x; 2: slice x's columns; 3: expand t */
} gc_ctx;

static bn_tensor *gc_fn(void *vctx, bn_tensor *const *in, int n)
{
    gc_ctx *ctx = vctx;
    const bn_tensor *x = in[0];
    const bn_tensor *t = n > 1 ? in[1] : ctx->target;
    if (ctx->view == 1) x = bn_transpose(x, 0, 1);
    if (ctx->view == 2) x = bn_slice(x, 1, 0, bn_dim(x, 1), 2);
    if (ctx->view == 3) t = bn_expand(t, BN_SHAPE(3, -1));
    if (ctx->c.kind == KL || ctx->c.kind == NLL) x = bn_log_softmax(x, ctx->c.kind == KL ? -1 : 1);
    if (ctx->c.kind == BCE) x = bn_sigmoid(x);
    return run_loss(&ctx->c, x, t);
}

static void gradcheck_pair(const char *what, int kind, bn_reduction r, int view, bn_shape xs,
                           bn_shape ts, double lo, double hi)
{
    bn_tensor *in[2] = {bnt_param(xs, -2, 2), bnt_param(ts, lo, hi)};
    gc_ctx ctx = {.c = {.kind = kind, .reduction = r, .beta = 0.7}, .view = view};
    bnt_gradcheck(what, gc_fn, &ctx, in, 2);
    bn_release(in[0]);
    bn_release(in[1]);
}

Test(loss, regression_losses_pass_gradcheck_with_views_and_broadcasting)
{
    const int kinds[] = {MSE, L1, SMOOTH_L1, HUBER, BCE_LOGITS};
    const char *names[] = {"mse", "l1", "smooth_l1", "huber", "bce_logits"};
    for (int k = 0; k < 5; k++)
        for (bn_reduction r = BN_REDUCTION_MEAN; r <= BN_REDUCTION_NONE; r++) {
            char what[64];
            snprintf(what, sizeof what, "%s reduction %d", names[k], (int)r);
            gradcheck_pair(what, kinds[k], r, 0, BN_SHAPE(3, 4), BN_SHAPE(3, 4), -2, 2);
            gradcheck_pair(what, kinds[k], r, 1, BN_SHAPE(4, 3), BN_SHAPE(3, 4), -2, 2);
            gradcheck_pair(what, kinds[k], r, 3, BN_SHAPE(3, 4), BN_SHAPE(1, 4), -2, 2);
        }
}

Test(loss, bce_kl_and_weights_pass_gradcheck)
{
    /* BCE through a sigmoid (probabilities away from 0 and 1); targets fixed */
    bn_scope_begin();
    bn_tensor *x = bnt_param(BN_SHAPE(3, 4), -2, 2);
    bn_tensor *w = bn_rand(BN_SHAPE(4), BN_F64);
    gc_ctx ctx = {.c = {.kind = BCE, .reduction = BN_REDUCTION_MEAN, .weight = w},
                  .target = bn_rand(BN_SHAPE(3, 4), BN_F64)};
    bnt_gradcheck("bce with weight", gc_fn, &ctx, &x, 1);
    ctx.c = (loss_case){.kind = BCE_LOGITS, .reduction = BN_REDUCTION_SUM, .weight = w,
                        .pos_weight = bn_add_scalar(w, 0.5)};
    bn_tensor *xt[2] = {x, bnt_param(BN_SHAPE(3, 4), 0, 1)};
    bnt_gradcheck("bce with logits, pos_weight, input and target", gc_fn, &ctx, xt, 2);
    /* KL: input log_softmax(x); target positive probabilities (and log targets) */
    ctx.c = (loss_case){.kind = KL, .reduction = BN_REDUCTION_MEAN, .batchmean = true};
    bn_tensor *kt[2] = {x, bnt_param(BN_SHAPE(3, 4), 0.1, 1)};
    bnt_gradcheck("kl batchmean, input and target", gc_fn, &ctx, kt, 2);
    ctx.c.log_target = true;
    ctx.c.batchmean = false;
    ctx.c.reduction = BN_REDUCTION_NONE;
    bn_tensor *lt[2] = {x, bnt_param(BN_SHAPE(3, 4), -2, 0)};
    bnt_gradcheck("kl log_target", gc_fn, &ctx, lt, 2);
    bn_release(x);
    bn_release(xt[1]);
    bn_release(kt[1]);
    bn_release(lt[1]);
    bn_scope_end();
}

Test(loss, cross_entropy_and_nll_pass_gradcheck)
{
    bn_scope_begin();
    bn_tensor *x = bnt_param(BN_SHAPE(5, 4), -3, 3);
    bn_tensor *idx = bn_from_data((int64_t[]){0, 3, 1, 3, 2}, BN_SHAPE(5), BN_I64);
    bn_tensor *w = bn_add_scalar(bn_rand(BN_SHAPE(4), BN_F64), 0.2);
    for (bn_reduction r = BN_REDUCTION_MEAN; r <= BN_REDUCTION_NONE; r++) {
        gc_ctx ctx = {.c = {.kind = CE, .reduction = r, .smoothing = 0.15, .weight = w,
                            .use_ignore = true, .ignore_index = 1},
                      .target = idx};
        bnt_gradcheck("ce with weights, smoothing and ignore_index", gc_fn, &ctx, &x, 1);
        ctx.view = 2; /* every other class column: a non-contiguous (5, 2) view */
        ctx.target = bn_from_data((int64_t[]){0, 1, 1, 0, 1}, BN_SHAPE(5), BN_I64);
        ctx.c.weight = NULL;
        ctx.c.use_ignore = false;
        bnt_gradcheck("ce of a strided view", gc_fn, &ctx, &x, 1);
        gc_ctx nll = {.c = {.kind = NLL, .reduction = r, .weight = w}, .target = idx};
        bnt_gradcheck("nll of log_softmax", gc_fn, &nll, &x, 1);
    }
    /* probability targets: gradients for both logits and target */
    gc_ctx ctx = {.c = {.kind = CE, .reduction = BN_REDUCTION_MEAN, .smoothing = 0.1, .weight = w}};
    bn_tensor *in[2] = {x, bnt_param(BN_SHAPE(5, 4), 0, 1)};
    bnt_gradcheck("ce with probability targets", gc_fn, &ctx, in, 2);
    /* spatial (N, C, d) with the transposed logits view */
    bn_tensor *xs = bnt_param(BN_SHAPE(2, 3, 4), -2, 2);
    gc_ctx sp = {.c = {.kind = CE, .reduction = BN_REDUCTION_NONE},
                 .target = bn_from_data((int64_t[]){0, 1, 2, 1, 1, 0, 2, 2}, BN_SHAPE(2, 4), BN_I64)};
    bnt_gradcheck("ce spatial", gc_fn, &sp, &xs, 1);
    bn_release(x);
    bn_release(in[1]);
    bn_release(xs);
    bn_scope_end();
}

/* d ce / dx at x (owned by the open scope; create_graph as asked) */
static bn_tensor *ce_grad(bn_tensor *x, const bn_tensor *t, bool create_graph)
{
    bn_tensor *l = bn_cross_entropy(x, t, (bn_ce_opts){.label_smoothing = 0.2});
    bn_tensor *g = NULL;
    cr_assert_eq(bn_autograd_grad(&l, NULL, 1, &x, 1, &g,
                                  (bn_backward_opts){.create_graph = create_graph}),
                 BN_OK, "%s", bn_error_message());
    return g;
}

/* The Hessian-vector product from create_graph against central differences of the gradient. */
Test(loss, cross_entropy_has_a_second_derivative)
{
    bn_scope_begin();
    bn_tensor *x = bnt_param(BN_SHAPE(3, 4), -2, 2);
    bn_tensor *t = bn_from_data((int64_t[]){0, 3, 1}, BN_SHAPE(3), BN_I64);
    bn_tensor *v = bn_randn(BN_SHAPE(3, 4), BN_F64);
    bn_tensor *g = ce_grad(x, t, true);
    cr_assert(bn_requires_grad(g), "the gradient is differentiable with create_graph");
    cr_assert_eq(bn_backward(bn_sum(bn_mul(g, v), BN_ALL, false)), BN_OK, "%s",
                 bn_error_message());
    bn_tensor *hv = bn_grad(x);
    double want[12], got[12], eps = 1e-6;
    for (int i = 0; i < 12; i++) {
        double side[2];
        for (int s = 0; s < 2; s++) {
            bn_tensor *dx = bn_zeros(BN_SHAPE(12), BN_F64);
            bn_fill_(bn_narrow(dx, 0, i, 1), s ? -eps : eps);
            bn_tensor *xp = bn_detach(bn_add(x, bn_reshape(dx, BN_SHAPE(3, 4))));
            bn_set_requires_grad(xp, true);
            bn_tensor *gp = ce_grad(xp, t, false);
            side[s] = bn_item(bn_sum(bn_mul(gp, v), BN_ALL, false));
        }
        want[i] = (side[0] - side[1]) / (2 * eps);
    }
    bn_copy_to_host(hv, got, sizeof got);
    for (int i = 0; i < 12; i++)
        cr_assert(fabs(got[i] - want[i]) <= 1e-6 * (1 + fabs(want[i])), "H v [%d]: %g vs %g", i,
                  got[i], want[i]);
    bn_release(x);
    bn_scope_end();
}

/* ---- bad input ---------------------------------------------------------------------------------- */
Test(loss, elementwise_losses_reject_bad_input)
{
    bn_tensor *a = bn_zeros(BN_SHAPE(2, 3), BN_F32), *b = bn_zeros(BN_SHAPE(4), BN_F32);
    bn_tensor *i = bn_zeros(BN_SHAPE(2, 3), BN_I64);
    BNT_ASSERT_NO_LEAK({
        cr_assert_null(bn_mse_loss(a, b, (bn_loss_opts){0}));
        bnt_assert_error(BN_ERR_SHAPE, "bn_mse_loss", "input [2, 3]", "target [4]", NULL);
        cr_assert_null(bn_l1_loss(NULL, b, (bn_loss_opts){0}));
        bnt_assert_error(BN_ERR_ARG, "bn_l1_loss", "input", NULL);
        cr_assert_null(bn_l1_loss(i, a, (bn_loss_opts){0}));
        bnt_assert_error(BN_ERR_DTYPE, "bn_l1_loss", "input", "i64", NULL);
        cr_assert_null(bn_smooth_l1_loss(a, i, (bn_loss_opts){0}));
        bnt_assert_error(BN_ERR_DTYPE, "bn_smooth_l1_loss", "target", "i64", NULL);
        cr_assert_null(bn_huber_loss(a, a, (bn_loss_opts){.beta = -1}));
        bnt_assert_error(BN_ERR_ARG, "bn_huber_loss", "-1", "positive", NULL);
        cr_assert_null(bn_mse_loss(a, a, (bn_loss_opts){.reduction = 7}));
        bnt_assert_error(BN_ERR_ARG, "bn_mse_loss", "reduction 7", NULL);
        bn_tensor *two = bn_full(BN_SHAPE(2, 3), 2.0, BN_F32);
        cr_assert_null(bn_binary_cross_entropy(two, a, (bn_bce_opts){0}));
        bnt_assert_error(BN_ERR_ARG, "bn_binary_cross_entropy", "[0, 1]", NULL);
        cr_assert_null(bn_binary_cross_entropy_with_logits(a, a, (bn_bce_opts){.pos_weight = b}));
        bnt_assert_error(BN_ERR_SHAPE, "bn_binary_cross_entropy_with_logits", "pos_weight [4]",
                         "[2, 3]", NULL);
        cr_assert_null(bn_binary_cross_entropy(a, a, (bn_bce_opts){.pos_weight = a}));
        bnt_assert_error(BN_ERR_ARG, "bn_binary_cross_entropy", "pos_weight", NULL);
        cr_assert_null(bn_kl_div(a, a, (bn_kl_opts){.reduction = BN_REDUCTION_NONE,
                                                    .batchmean = true}));
        bnt_assert_error(BN_ERR_ARG, "bn_kl_div", "batchmean", NULL);
        cr_assert_null(bn_kl_div(a, NULL, (bn_kl_opts){0}));
        bnt_assert_error(BN_ERR_ARG, "bn_kl_div", "target", NULL);
        bn_release(two);
    });
    bn_release(a);
    bn_release(b);
    bn_release(i);
}

Test(loss, bce_refuses_a_target_that_requires_grad)
{
    bn_tensor *p = bn_full(BN_SHAPE(3), 0.5, BN_F32), *t = bn_full(BN_SHAPE(3), 0.5, BN_F32);
    bn_set_requires_grad(t, true);
    BNT_ASSERT_NO_LEAK({
        cr_assert_null(bn_binary_cross_entropy(p, t, (bn_bce_opts){0}));
        bnt_assert_error(BN_ERR_UNSUPPORTED, "bn_binary_cross_entropy", "target", NULL);
    });
    bn_release(p);
    bn_release(t);
}

Test(loss, cross_entropy_rejects_bad_input)
{
    bn_tensor *x = bn_zeros(BN_SHAPE(2, 3), BN_F32);
    bn_tensor *t = bn_from_data((int64_t[]){0, 7}, BN_SHAPE(2), BN_I64);
    bn_tensor *neg = bn_from_data((int64_t[]){-1, 0}, BN_SHAPE(2), BN_I64);
    bn_tensor *t3 = bn_zeros(BN_SHAPE(3), BN_I64);
    bn_tensor *tb = bn_zeros(BN_SHAPE(2), BN_BOOL);
    bn_tensor *p = bn_zeros(BN_SHAPE(2, 4), BN_F32);
    bn_tensor *w = bn_ones(BN_SHAPE(4), BN_F32);
    bn_tensor *xi = bn_zeros(BN_SHAPE(2, 3), BN_I32);
    BNT_ASSERT_NO_LEAK({
        cr_assert_null(bn_cross_entropy(x, t, (bn_ce_opts){0}));
        bnt_assert_error(BN_ERR_ARG, "bn_cross_entropy", "target 7", "3 classes", NULL);
        cr_assert_null(bn_nll_loss(x, neg, (bn_ce_opts){0}));
        bnt_assert_error(BN_ERR_ARG, "bn_nll_loss", "target -1", NULL);
        cr_assert_null(bn_cross_entropy(x, t3, (bn_ce_opts){0}));
        bnt_assert_error(BN_ERR_SHAPE, "bn_cross_entropy", "target [3]", "[2, 3]", "[2]", NULL);
        cr_assert_null(bn_cross_entropy(x, tb, (bn_ce_opts){0}));
        bnt_assert_error(BN_ERR_DTYPE, "bn_cross_entropy", "target", "bool", NULL);
        cr_assert_null(bn_cross_entropy(x, p, (bn_ce_opts){0}));
        bnt_assert_error(BN_ERR_SHAPE, "bn_cross_entropy", "[2, 4]", "[2, 3]", NULL);
        cr_assert_null(bn_cross_entropy(x, neg, (bn_ce_opts){.label_smoothing = 1.5}));
        bnt_assert_error(BN_ERR_ARG, "bn_cross_entropy", "label_smoothing = 1.5", "[0, 1]",
                         NULL);
        cr_assert_null(bn_cross_entropy(x, neg, (bn_ce_opts){.weight = w}));
        bnt_assert_error(BN_ERR_SHAPE, "bn_cross_entropy", "weight [4]", "[3]", NULL);
        cr_assert_null(bn_cross_entropy(xi, neg, (bn_ce_opts){0}));
        bnt_assert_error(BN_ERR_DTYPE, "bn_cross_entropy", "logits", "i32", NULL);
        cr_assert_null(bn_nll_loss(x, x, (bn_ce_opts){0}));
        bnt_assert_error(BN_ERR_DTYPE, "bn_nll_loss", "class indices", NULL);
        cr_assert_null(bn_cross_entropy(NULL, t, (bn_ce_opts){0}));
        bnt_assert_error(BN_ERR_ARG, "bn_cross_entropy", "logits", NULL);
        cr_assert_null(bn_cross_entropy(x, x, (bn_ce_opts){.use_ignore_index = true}));
        bnt_assert_error(BN_ERR_ARG, "bn_cross_entropy", "ignore_index", NULL);
    });
    bn_release(x);
    bn_release(t);
    bn_release(neg);
    bn_release(t3);
    bn_release(tb);
    bn_release(p);
    bn_release(w);
    bn_release(xi);
}
