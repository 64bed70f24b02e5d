/* tests/unit/test_amp.c — mixed precision on the CPU (born/amp.h).
 *
 * autocast: regions nest per thread and report their dtype; matmul and the convolutions compute
 * in the region's dtype, bit for bit like the graph with the casts written out, forward and
 * backward, and their gradients reach f32 leaves as f32; f64 and integer operands are left
 * alone; the weight-cast cache casts a weight once per region, notices in-place updates and
 * backward passes, and is emptied when the region ends; against PyTorch 1.13's CPU autocast
 * (bf16) on an MLP and on the convolutions (tests/data/amp.txt, scripts/gen_amp.py).
 * amp_hooks: the ops of other files that take part in autocast through the lines listed in
 * docs/AMP.md (linear, the f32 list).
 * grad_scaler: torch.cuda.amp.GradScaler's rules computed by hand — scaling, unscaling, skipped
 * steps on inf/NaN, backoff, growth after the interval and never to inf, several optimizers,
 * checkpoint state, the disabled scaler, misuse — and a short f16 training run against f32. */
#include "bn_test.h"

#include "amp/amp_internal.h"
#include "born/amp.h"
#include "born/autograd.h"
#include "born/optim.h"
#include "born/transformer.h"

#include <float.h>
#include <math.h>
#include <pthread.h>
#include <string.h>

TestSuite(autocast, .fini = bnt_release_kept);
TestSuite(amp_hooks, .fini = bnt_release_kept);
TestSuite(grad_scaler, .fini = bnt_release_kept);

static const bn_dtype lows[] = {BN_BF16, BN_F16};

/* A leaf f32 tensor of normal values that requires grad (owned by the open scope). */
static bn_tensor *leaf(bn_shape s)
{
    bn_tensor *t = bn_randn(s, BN_F32);
    cr_assert_not_null(t);
    cr_assert_eq(bn_set_requires_grad(t, true), BN_OK);
    return t;
}

/* Another leaf with t's values. */
static bn_tensor *twin(const bn_tensor *t)
{
    if (!t) return NULL;
    bn_tensor *c = bn_clone(bn_detach(t));
    cr_assert_eq(bn_set_requires_grad(c, true), BN_OK);
    return c;
}

static bn_tensor *cast(const bn_tensor *t, bn_dtype dt) { return t ? bn_to_dtype(t, dt) : NULL; }

/* ---- regions -------------------------------------------------------------------------------- */
Test(autocast, regions_nest_and_report_their_dtype)
{
    cr_assert_eq(bn_autocast_dtype(), BN_F32);
    cr_assert_not(bn_autocast_enabled());
    cr_assert_eq(bn_autocast_depth(), 0);
    cr_assert_eq(bn_autocast_begin(BN_BF16), BN_OK);
    cr_assert_eq(bn_autocast_dtype(), BN_BF16);
    cr_assert(bn_autocast_enabled());
    cr_assert_eq(bn_autocast_begin(BN_F16), BN_OK);
    cr_assert_eq(bn_autocast_dtype(), BN_F16);
    cr_assert_eq(bn_autocast_depth(), 2);
    cr_assert_eq(bn_autocast_end(), BN_OK);
    cr_assert_eq(bn_autocast_dtype(), BN_BF16);
    cr_assert_eq(bn_autocast_end(), BN_OK);
    cr_assert_eq(bn_autocast_dtype(), BN_F32);
    cr_assert_not(bn_autocast_enabled());
    cr_assert_eq(bn_autocast_depth(), 0);
    bnt_assert_no_error("regions");
}

static void *other_thread(void *arg)
{
    bn_dtype *seen = arg;
    seen[0] = bn_autocast_dtype();
    bn_autocast_begin(BN_F16);
    seen[1] = bn_autocast_dtype();
    bn_autocast_end();
    return NULL;
}

Test(autocast, regions_are_per_thread)
{
    cr_assert_eq(bn_autocast_begin(BN_BF16), BN_OK);
    bn_dtype seen[2] = {BN_BOOL, BN_BOOL};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, other_thread, seen), 0);
    cr_assert_eq(pthread_join(th, NULL), 0);
    cr_assert_eq(seen[0], BN_F32, "another thread sees no region");
    cr_assert_eq(seen[1], BN_F16);
    cr_assert_eq(bn_autocast_dtype(), BN_BF16, "its region did not touch ours");
    cr_assert_eq(bn_autocast_end(), BN_OK);
}

Test(autocast, bad_regions_are_errors)
{
    cr_assert_eq(bn_autocast_begin(BN_F32), BN_ERR_DTYPE);
    bnt_assert_error(BN_ERR_DTYPE, "bn_autocast_begin", "bf16 or f16", "f32", NULL);
    cr_assert_eq(bn_autocast_begin(BN_I32), BN_ERR_DTYPE);
    bnt_assert_error(BN_ERR_DTYPE, "bn_autocast_begin", "i32", NULL);
    cr_assert_eq(bn_autocast_begin((bn_dtype)77), BN_ERR_DTYPE);
    bnt_assert_error(BN_ERR_DTYPE, "bn_autocast_begin", "77", NULL);
    cr_assert_eq(bn_autocast_depth(), 0);
    cr_assert_eq(bn_autocast_end(), BN_ERR_ARG);
    bnt_assert_error(BN_ERR_ARG, "bn_autocast_end", "no bn_autocast_begin", NULL);
    int opened = 0;
    while (bn_autocast_begin(BN_BF16) == BN_OK) opened++;
    cr_assert_eq(opened, 64);
    bnt_assert_error(BN_ERR_ARG, "bn_autocast_begin", "64", NULL);
    for (int i = 0; i < opened; i++) cr_assert_eq(bn_autocast_end(), BN_OK);
    cr_assert_eq(bn_autocast_depth(), 0);
}

Test(autocast, suspension_turns_the_open_regions_off)
{
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_tensor *a = bn_randn(BN_SHAPE(3, 4), BN_F32), *b = bn_randn(BN_SHAPE(4, 2), BN_F32);
        cr_assert_eq(bn_autocast_begin(BN_BF16), BN_OK);
        int saved = bn__autocast_suspend();
        cr_assert_not(bn_autocast_enabled());
        cr_assert_eq(bn_autocast_dtype(), BN_F32);
        cr_assert_eq(bn_dtype_of(bn_matmul(a, b)), BN_F32);
        cr_assert_eq(bn_autocast_end(), BN_ERR_ARG); /* not the suspended code's region */
        bnt_assert_error(BN_ERR_ARG, "bn_autocast_end", "suspended", NULL);
        cr_assert_eq(bn_autocast_begin(BN_F16), BN_OK); /* a region opened inside applies */
        cr_assert_eq(bn_dtype_of(bn_matmul(a, b)), BN_F16);
        cr_assert_eq(bn_autocast_end(), BN_OK);
        bn__autocast_resume(saved);
        cr_assert_eq(bn_dtype_of(bn_matmul(a, b)), BN_BF16);
        cr_assert_eq(bn_autocast_end(), BN_OK);
        bn_scope_end();
    });
}

/* ---- the low-precision ops -------------------------------------------------------------------- */
Test(autocast, matmul_computes_in_the_region_dtype)
{
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        for (int k = 0; k < 2; k++) {
            bn_dtype low = lows[k];
            bn_tensor *a = bn_randn(BN_SHAPE(2, 5, 7), BN_F32);
            bn_tensor *b = bn_randn(BN_SHAPE(3, 7), BN_F32);
            bn_tensor *bt = bn_transpose(b, 0, 1); /* strided */
            bn_tensor *a64 = bn_randn(BN_SHAPE(4, 7), BN_F64);
            bn_tensor *b64 = bn_randn(BN_SHAPE(7, 2), BN_F64);
            bn_tensor *ai = bn_randint(-5, 5, BN_SHAPE(3, 4), BN_I32);
            bn_tensor *bi = bn_randint(-5, 5, BN_SHAPE(4, 2), BN_I32);
            bn_tensor *other = bn_to_dtype(a, k ? BN_BF16 : BN_F16); /* the other low dtype */
            cr_assert_eq(bn_autocast_begin(low), BN_OK);
            bn_tensor *y = bn_matmul(a, bt), *y64 = bn_matmul(a64, b64), *yi = bn_matmul(ai, bi);
            bn_tensor *yo = bn_matmul(other, bt);
            cr_assert_eq(bn_autocast_end(), BN_OK);
            cr_assert_not_null(y, "%s", bn_error_message());
            bnt_assert_equal(y, bn_matmul(cast(a, low), cast(bt, low)), "matmul in the region");
            bnt_assert_equal(y64, bn_matmul(a64, b64), "f64 is left alone");
            bnt_assert_equal(yi, bn_matmul(ai, bi), "integers are left alone");
            bnt_assert_equal(yo, bn_matmul(cast(other, low), cast(bt, low)),
                             "the other low dtype is cast too");
            cr_assert_eq(bn_dtype_of(bn_matmul(a, bt)), BN_F32, "outside the region: f32");
        }
        bn_scope_end();
    });
}

/* The op under test, with x, w, b (b may be NULL). */
typedef bn_tensor *(*op3)(const bn_tensor *x, const bn_tensor *w, const bn_tensor *b);
static bn_tensor *op_matmul(const bn_tensor *x, const bn_tensor *w, const bn_tensor *b)
{
    (void)b;
    return bn_matmul(x, w);
}
static bn_tensor *op_conv1d(const bn_tensor *x, const bn_tensor *w, const bn_tensor *b)
{
    return bn_conv1d(x, w, b, (bn_conv_opts){.stride = 2, .groups = 2});
}
static bn_tensor *op_conv2d(const bn_tensor *x, const bn_tensor *w, const bn_tensor *b)
{
    return bn_conv2d(x, w, b, (bn_conv_opts){.padding = 1});
}
static bn_tensor *op_conv_transpose2d(const bn_tensor *x, const bn_tensor *w, const bn_tensor *b)
{
    return bn_conv_transpose2d(x, w, b, (bn_conv_opts){.stride = 2, .padding = 1});
}

/* fn on f32 leaves inside a region of dtype low equals fn on the leaves' explicit casts, and the
 * gradients (of sum(out * g) for a random g) reach the f32 leaves as f32, equal too. */
static void check_like_manual_casts(const char *name, op3 fn, bn_shape xs, bn_shape ws,
                                    const bn_shape *bs, bn_dtype low)
{
    char what[160];
    bn_scope_begin();
    bn_tensor *x = leaf(xs), *w = leaf(ws), *b = bs ? leaf(*bs) : NULL;
    bn_tensor *x2 = twin(x), *w2 = twin(w), *b2 = twin(b);
    cr_assert_eq(bn_autocast_begin(low), BN_OK);
    bn_tensor *y = fn(x, w, b);
    cr_assert_eq(bn_autocast_end(), BN_OK);
    cr_assert_not_null(y, "%s: %s", name, bn_error_message());
    bn_tensor *y2 = fn(cast(x2, low), cast(w2, low), cast(b2, low));
    snprintf(what, sizeof what, "%s (%s): forward", name, bn_dtype_name(low));
    bnt_assert_equal(y, y2, what);
    bn_tensor *g = cast(bn_randn(bn_shape_of(y), BN_F32), low);
    cr_assert_eq(bn_backward_ex(y, (bn_backward_opts){.grad = g}), BN_OK, "%s", bn_error_message());
    cr_assert_eq(bn_backward_ex(y2, (bn_backward_opts){.grad = g}), BN_OK);
    bn_tensor *got[3] = {x, w, b}, *want[3] = {x2, w2, b2};
    const char *names[3] = {"x", "w", "b"};
    for (int i = 0; i < 3; i++) {
        if (!got[i]) continue;
        bn_tensor *gg = bn_grad(got[i]);
        cr_assert_not_null(gg, "%s: no gradient for %s", name, names[i]);
        cr_assert_eq(bn_dtype_of(gg), BN_F32, "%s: grad %s is %s", name, names[i],
                     bn_dtype_name(bn_dtype_of(gg)));
        snprintf(what, sizeof what, "%s (%s): grad %s", name, bn_dtype_name(low), names[i]);
        bnt_assert_equal(gg, bn_grad(want[i]), what);
    }
    bn_scope_end();
}

Test(autocast, matmul_and_convolutions_match_the_casts_written_out)
{
    bn_manual_seed(3);
    bn_shape b6 = BN_SHAPE(6), b4 = BN_SHAPE(4), b3 = BN_SHAPE(3);
    BNT_ASSERT_NO_LEAK({
        for (int k = 0; k < 2; k++) {
            bn_dtype low = lows[k];
            check_like_manual_casts("matmul", op_matmul, BN_SHAPE(2, 4, 6), BN_SHAPE(6, 5), NULL,
                                    low);
            check_like_manual_casts("matmul vec", op_matmul, BN_SHAPE(6), BN_SHAPE(3, 6, 2), NULL,
                                    low);
            check_like_manual_casts("conv1d", op_conv1d, BN_SHAPE(2, 4, 9), BN_SHAPE(6, 2, 3),
                                    &b6, low);
            check_like_manual_casts("conv2d", op_conv2d, BN_SHAPE(2, 3, 7, 6),
                                    BN_SHAPE(4, 3, 3, 3), &b4, low);
            check_like_manual_casts("conv2d no bias", op_conv2d, BN_SHAPE(3, 5, 5),
                                    BN_SHAPE(2, 3, 3, 3), NULL, low);
            check_like_manual_casts("conv_transpose2d", op_conv_transpose2d,
                                    BN_SHAPE(2, 4, 5, 5), BN_SHAPE(4, 3, 3, 3), &b3, low);
        }
    });
}

Test(autocast, op_errors_keep_their_messages)
{
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_tensor *a = bn_randn(BN_SHAPE(3, 4), BN_F32), *b = bn_randn(BN_SHAPE(5, 2), BN_F32);
        cr_assert_eq(bn_autocast_begin(BN_BF16), BN_OK);
        cr_assert_null(bn_matmul(a, b));
        bnt_assert_error(BN_ERR_SHAPE, "bn_matmul", "inner dimensions", "(4 != 5)", NULL);
        cr_assert_null(bn_matmul(a, NULL));
        bnt_assert_error(BN_ERR_ARG, "bn_matmul", "b", NULL);
        cr_assert_null(bn_conv2d(a, NULL, NULL, (bn_conv_opts){0}));
        bnt_assert_error(BN_ERR_ARG, "bn_conv2d", "w", NULL);
        bn_tensor *x = bn_randn(BN_SHAPE(1, 3, 5, 5), BN_F32);
        bn_tensor *w = bn_randn(BN_SHAPE(2, 4, 3, 3), BN_F32);
        cr_assert_null(bn_conv2d(x, w, NULL, (bn_conv_opts){0}));
        bnt_assert_error(BN_ERR_SHAPE, "bn_conv2d", "3 channels", NULL);
        bn_tensor *w64 = bn_randn(BN_SHAPE(2, 3, 3, 3), BN_F64); /* f64 stays: dtypes differ */
        cr_assert_null(bn_conv2d(x, w64, NULL, (bn_conv_opts){0}));
        bnt_assert_error(BN_ERR_DTYPE, "bn_conv2d", "bf16", "f64", NULL);
        cr_assert_eq(bn_autocast_end(), BN_OK);
        cr_assert_eq(bn__autocast_cache_size(), 0);
        bn_scope_end();
    });
}

/* ---- the hooks' helpers ----------------------------------------------------------------------- */
Test(autocast, helpers_cast_only_eligible_inputs)
{
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_tensor *f = bn_randn(BN_SHAPE(4), BN_F32), *d = bn_randn(BN_SHAPE(4), BN_F64);
        bn_tensor *h = bn_to_dtype(f, BN_F16), *i = bn_randint(0, 3, BN_SHAPE(4), BN_I64);
        bn_tensor *out[4];
        /* off: nothing to do */
        cr_assert_not(bn__autocast_low_args(out, (const bn_tensor *[]){f, d, h, i}, 4));
        cr_assert_not(bn__autocast_f32_args(out, (const bn_tensor *[]){h}, 1));
        bn_tensor *same = bn__autocast_input(f);
        cr_assert_eq(same, f);
        bn_release(same);
        cr_assert_null(bn__autocast_input(NULL));
        cr_assert_eq(bn_autocast_begin(BN_BF16), BN_OK);
        cr_assert(bn__autocast_low_args(out, (const bn_tensor *[]){f, d, h, NULL}, 4));
        cr_assert_eq(bn_dtype_of(out[0]), BN_BF16);
        cr_assert_eq(out[1], d);
        cr_assert_eq(bn_dtype_of(out[2]), BN_BF16);
        cr_assert_null(out[3]);
        bnt_assert_equal(out[2], bn_to_dtype(h, BN_BF16), "f16 -> bf16");
        cr_assert_eq(bn__autocast_result(out, 4, f), f);
        cr_assert(bn__autocast_f32_args(out, (const bn_tensor *[]){h, f, i}, 3));
        cr_assert_eq(bn_dtype_of(out[0]), BN_F32);
        cr_assert_eq(out[1], f);
        cr_assert_eq(out[2], i);
        bn__autocast_result(out, 3, NULL);
        cr_assert_not(bn__autocast_low_args(out, (const bn_tensor *[]){d, i}, 2));
        cr_assert_not(bn__autocast_f32_args(out, (const bn_tensor *[]){f, d, i}, 3));
        bn_tensor *up = bn__autocast_f32(h), *down = bn__autocast_input(f);
        cr_assert_eq(bn_dtype_of(up), BN_F32);
        cr_assert_eq(bn_dtype_of(down), BN_BF16);
        bn_release(up);
        bn_release(down);
        cr_assert_eq(bn_autocast_end(), BN_OK);
        bn_scope_end();
    });
}

/* ---- the weight-cast cache -------------------------------------------------------------------- */
Test(autocast, a_weight_is_cast_once_per_region)
{
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_tensor *x = bn_randn(BN_SHAPE(3, 4), BN_F32), *w = leaf(BN_SHAPE(4, 5));
        bn_tensor *w2 = twin(w);
        cr_assert_eq(bn_autocast_begin(BN_BF16), BN_OK);
        bn_tensor *y1 = bn_matmul(x, w);
        cr_assert_eq(bn__autocast_cache_size(), 1);
        cr_assert_eq(bn_autocast_begin(BN_BF16), BN_OK); /* nested regions share the cache */
        bn_tensor *y2 = bn_matmul(x, w);
        cr_assert_eq(bn_autocast_end(), BN_OK);
        cr_assert_eq(bn__autocast_cache_size(), 1, "the cast was made again");
        bn_tensor *y3 = bn_matmul(bn_mul_scalar(w, 1.0), bn_transpose(w, 0, 1));
        cr_assert_not_null(y3);
        cr_assert_eq(bn__autocast_cache_size(), 1, "non-leaves and views are not cached");
        cr_assert_eq(bn_autocast_end(), BN_OK);
        cr_assert_eq(bn__autocast_cache_size(), 0, "the outermost end empties the cache");
        /* both uses send their gradient through to the one weight */
        bn_tensor *loss = bn_add(bn_sum(bn_to_dtype(y1, BN_F32), BN_ALL, false),
                                 bn_sum(bn_to_dtype(y2, BN_F32), BN_ALL, false));
        cr_assert_eq(bn_backward(loss), BN_OK, "%s", bn_error_message());
        bn_tensor *xb = bn_to_dtype(x, BN_BF16), *wb = bn_to_dtype(w2, BN_BF16);
        bn_tensor *l2 = bn_add(bn_sum(bn_to_dtype(bn_matmul(xb, wb), BN_F32), BN_ALL, false),
                               bn_sum(bn_to_dtype(bn_matmul(xb, wb), BN_F32), BN_ALL, false));
        cr_assert_eq(bn_backward(l2), BN_OK);
        bnt_assert_equal(bn_grad(w), bn_grad(w2), "grad through a cached cast");
        /* no grad mode, or a weight that needs no grad: nothing is cached */
        bn_tensor *c = bn_randn(BN_SHAPE(4, 5), BN_F32);
        cr_assert_eq(bn_autocast_begin(BN_F16), BN_OK);
        bn_no_grad_begin();
        bn_matmul(x, w);
        bn_no_grad_end();
        bn_matmul(x, c);
        cr_assert_eq(bn__autocast_cache_size(), 0);
        cr_assert_eq(bn_autocast_end(), BN_OK);
        bn_scope_end();
    });
}

Test(autocast, an_in_place_update_or_a_backward_makes_the_cached_cast_stale)
{
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_tensor *x = bn_randn(BN_SHAPE(3, 4), BN_F32), *w = leaf(BN_SHAPE(4, 2));
        cr_assert_eq(bn_autocast_begin(BN_BF16), BN_OK);
        bn_tensor *y1 = bn_matmul(x, w);
        bn_no_grad_begin(); /* an optimizer step, say */
        cr_assert_eq(bn_fill_(w, 0.25), BN_OK);
        bn_no_grad_end();
        bn_tensor *y2 = bn_matmul(x, w);
        bnt_assert_equal(y2, bn_matmul(bn_to_dtype(x, BN_BF16), bn_full(BN_SHAPE(4, 2), 0.25, BN_BF16)),
                         "the new values are used");
        cr_assert_eq(bn__autocast_cache_size(), 1, "the stale entry is replaced");
        (void)y1;
        /* a backward inside the region frees the cast's node: the next use casts again */
        cr_assert_eq(bn_backward(bn_sum(bn_to_dtype(y2, BN_F32), BN_ALL, false)), BN_OK);
        bn_tensor *y3 = bn_matmul(x, w);
        cr_assert_eq(bn_backward(bn_sum(bn_to_dtype(y3, BN_F32), BN_ALL, false)), BN_OK, "%s",
                     bn_error_message());
        cr_assert_eq(bn_autocast_end(), BN_OK);
        /* two backwards of sum(x @ w) in bf16: twice the column sums of bf16(x) */
        bn_tensor *want = bn_mul_scalar(
            bn_to_dtype(bn_matmul(bn_transpose(bn_to_dtype(x, BN_BF16), 0, 1),
                                  bn_ones(BN_SHAPE(3, 2), BN_BF16)),
                        BN_F32),
            2.0);
        bnt_assert_equal(bn_grad(w), want, "grad after two backwards");
        bn_scope_end();
    });
}

/* ---- against PyTorch's CPU autocast ----------------------------------------------------------- */
static bn_tensor *load(fx_file *f, const char *cs, const char *name, bool grad)
{
    bn_tensor *t = bnt_keep(fx_tensor(f, cs, name));
    if (grad) cr_assert_eq(bn_set_requires_grad(t, true), BN_OK);
    return t;
}

/* |got - want| <= rtol * max|want| everywhere: the bf16 roundings of the two libraries differ
 * in a few last places, which relative errors near zero would magnify. */
static void assert_close_scaled(bn_tensor *got, bn_tensor *want, double rtol, const char *what)
{
    cr_assert_not_null(got, "%s: %s", what, bn_error_message());
    double scale = bn_item(bn_max(bn_abs(bn_to_dtype(want, BN_F64)), BN_ALL, false));
    bnt_assert_close(got, want, 0, rtol * scale, what);
}

Test(autocast, mlp_matches_torch_cpu_autocast_bf16)
{
    fx_file *f = fx_open("amp.txt");
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        const char *cs = "mlp";
        bn_tensor *x = load(f, cs, "x", true), *w1 = load(f, cs, "w1", true);
        bn_tensor *b1 = load(f, cs, "b1", true), *w2 = load(f, cs, "w2", true);
        bn_tensor *b2 = load(f, cs, "b2", true), *t = load(f, cs, "t", true);
        cr_assert_eq(bn_autocast_begin(BN_BF16), BN_OK);
        bn_tensor *z = bn_matmul(x, bn_transpose(w1, 0, 1));
        cr_assert_eq(bn_dtype_of(z), BN_BF16);
        bn_tensor *h = bn_relu(bn_add(z, b1));
        cr_assert_eq(bn_dtype_of(h), BN_F32, "bias adds promote");
        bn_tensor *y = bn_add(bn_matmul(h, bn_transpose(w2, 0, 1)), b2);
        bn_tensor *d = bn_sub(y, t);
        bn_tensor *loss = bn_mean(bn_mul(d, d), BN_ALL, false);
        cr_assert_eq(bn_autocast_end(), BN_OK);
        cr_assert_eq(bn_dtype_of(loss), BN_F32);
        bnt_assert_close(loss, load(f, cs, "loss", false), 1e-2, 0, "mlp loss");
        cr_assert_eq(bn_backward(loss), BN_OK, "%s", bn_error_message());
        const char *names[6] = {"x", "w1", "b1", "w2", "b2", "t"};
        bn_tensor *leaves[6] = {x, w1, b1, w2, b2, t};
        for (int i = 0; i < 6; i++) {
            char gname[16], what[64];
            snprintf(gname, sizeof gname, "g%s", names[i]);
            snprintf(what, sizeof what, "mlp grad %s", names[i]);
            bn_tensor *g = bn_grad(leaves[i]);
            cr_assert_eq(bn_dtype_of(g), BN_F32, "%s", what);
            assert_close_scaled(g, load(f, cs, gname, false), 2e-2, what);
        }
        bn_scope_end();
        bnt_release_kept();
    });
    fx_close(f);
}

Test(autocast, convolutions_match_torch_bf16)
{
    fx_file *f = fx_open("amp.txt");
    const char *cases[3] = {"conv2d", "conv1d", "conv_transpose2d"};
    op3 fns[3] = {op_conv2d, op_conv1d, op_conv_transpose2d};
    BNT_ASSERT_NO_LEAK({
        for (int c = 0; c < 3; c++) {
            bn_scope_begin();
            const char *cs = cases[c];
            bn_tensor *x = load(f, cs, "x", true), *w = load(f, cs, "w", true);
            bn_tensor *b = load(f, cs, "b", true);
            cr_assert_eq(bn_autocast_begin(BN_BF16), BN_OK);
            bn_tensor *out = fns[c](x, w, b);
            cr_assert_eq(bn_autocast_end(), BN_OK);
            char what[64];
            snprintf(what, sizeof what, "%s forward", cs);
            assert_close_scaled(out, load(f, cs, "out", false), 1e-2, what);
            bn_tensor *gout = load(f, cs, "gout", false);
            bn_tensor *l = bn_sum(bn_mul(bn_to_dtype(out, BN_F32), gout), BN_ALL, false);
            cr_assert_eq(bn_backward(l), BN_OK, "%s", bn_error_message());
            const char *names[3] = {"x", "w", "b"};
            bn_tensor *ls[3] = {x, w, b};
            for (int i = 0; i < 3; i++) {
                char gname[8];
                snprintf(gname, sizeof gname, "g%s", names[i]);
                snprintf(what, sizeof what, "%s grad %s", cs, names[i]);
                assert_close_scaled(bn_grad(ls[i]), load(f, cs, gname, false), 2e-2, what);
            }
            bn_scope_end();
            bnt_release_kept();
        }
    });
    fx_close(f);
}

/* ---- ops of other files (docs/AMP.md lists the line each one calls) ------------------------- */
/* Each takes x (4, 5) in a low dtype; other inputs are f32 or integers. Ops applied to x before
 * the op under test keep its values exact (abs), so they commute with the upcast. */
typedef bn_tensor *(*op1)(const bn_tensor *x);
static bn_tensor *f32c(double v) { return bn_full(BN_SHAPE(4, 5), v, BN_F32); }
static bn_tensor *vec5(double v) { return bn_full(BN_SHAPE(5), v, BN_F32); }
static bn_tensor *classes(void)
{
    int64_t y[4] = {0, 4, 2, 1};
    return bn_from_data(y, BN_SHAPE(4), BN_I64);
}
static bn_tensor *f_exp(const bn_tensor *x) { return bn_exp(x); }
static bn_tensor *f_log(const bn_tensor *x) { return bn_log(bn_abs(x)); }
static bn_tensor *f_log1p(const bn_tensor *x) { return bn_log1p(bn_abs(x)); }
static bn_tensor *f_rsqrt(const bn_tensor *x) { return bn_rsqrt(bn_abs(x)); }
static bn_tensor *f_pow(const bn_tensor *x) { return bn_pow(bn_abs(x), f32c(1.5)); }
static bn_tensor *f_pow_scalar(const bn_tensor *x) { return bn_pow_scalar(x, 3); }
static bn_tensor *f_rpow_scalar(const bn_tensor *x) { return bn_rpow_scalar(2, x); }
static bn_tensor *f_softplus(const bn_tensor *x) { return bn_softplus(x, 1, 20); }
static bn_tensor *f_sum(const bn_tensor *x) { return bn_sum(x, 0, false); }
static bn_tensor *f_sum_dims(const bn_tensor *x) { return bn_sum_dims(x, (int[]){0, 1}, 2, true); }
static bn_tensor *f_mean(const bn_tensor *x) { return bn_mean(x, BN_ALL, false); }
static bn_tensor *f_mean_dims(const bn_tensor *x) { return bn_mean_dims(x, (int[]){1}, 1, false); }
static bn_tensor *f_prod(const bn_tensor *x) { return bn_prod(x, 1, false); }
static bn_tensor *f_cumsum(const bn_tensor *x) { return bn_cumsum(x, 1); }
static bn_tensor *f_logsumexp(const bn_tensor *x) { return bn_logsumexp(x, 1, true); }
static bn_tensor *f_softmax(const bn_tensor *x) { return bn_softmax(x, -1); }
static bn_tensor *f_log_softmax(const bn_tensor *x) { return bn_log_softmax(x, 1); }
static bn_tensor *f_layer_norm(const bn_tensor *x)
{
    return bn_layer_norm(x, 1, vec5(1.5), vec5(0.25), 1e-5);
}
static bn_tensor *f_rms_norm(const bn_tensor *x) { return bn_rms_norm(x, 1, vec5(2), 1e-6); }
static bn_tensor *f_group_norm(const bn_tensor *x)
{
    return bn_group_norm(bn_reshape(x, BN_SHAPE(2, 2, 5)), 2, bn_ones(BN_SHAPE(2), BN_F32),
                         NULL, 1e-5);
}
static bn_tensor *f_mse(const bn_tensor *x) { return bn_mse_loss(x, f32c(0.5), (bn_loss_opts){0}); }
static bn_tensor *f_l1(const bn_tensor *x) { return bn_l1_loss(x, f32c(0.5), (bn_loss_opts){0}); }
static bn_tensor *f_smooth_l1(const bn_tensor *x)
{
    return bn_smooth_l1_loss(x, f32c(0.5), (bn_loss_opts){.reduction = BN_REDUCTION_SUM});
}
static bn_tensor *f_huber(const bn_tensor *x)
{
    return bn_huber_loss(x, f32c(0.5), (bn_loss_opts){.beta = 0.5});
}
static bn_tensor *f_bce(const bn_tensor *x) /* x holds probabilities */
{
    return bn_binary_cross_entropy(x, f32c(0.25), (bn_bce_opts){0});
}
static bn_tensor *f_bce_logits(const bn_tensor *x)
{
    return bn_binary_cross_entropy_with_logits(x, f32c(0.25), (bn_bce_opts){0});
}
static bn_tensor *f_kl_div(const bn_tensor *x)
{
    return bn_kl_div(x, bn_softmax(f32c(0), 1), (bn_kl_opts){.batchmean = true});
}
static bn_tensor *f_cross_entropy(const bn_tensor *x)
{
    return bn_cross_entropy(x, classes(), (bn_ce_opts){.label_smoothing = 0.1});
}
static bn_tensor *f_nll(const bn_tensor *x) { return bn_nll_loss(x, classes(), (bn_ce_opts){0}); }
static bn_tensor *f_linear_ce(const bn_tensor *x)
{
    return bn_linear_cross_entropy(x, bn_full(BN_SHAPE(5, 5), 0.1, BN_F32), vec5(0.5), classes(),
                                   (bn_ce_opts){0});
}

Test(amp_hooks, range_ops_compute_low_inputs_in_f32)
{
    struct {
        const char *name;
        op1 fn;
        bool probs; /* x in (0, 1) */
    } ops[] = {{"exp", f_exp, false},
               {"log", f_log, false},
               {"log1p", f_log1p, false},
               {"rsqrt", f_rsqrt, false},
               {"pow", f_pow, false},
               {"pow_scalar", f_pow_scalar, false},
               {"rpow_scalar", f_rpow_scalar, false},
               {"softplus", f_softplus, false},
               {"sum", f_sum, false},
               {"sum_dims", f_sum_dims, false},
               {"mean", f_mean, false},
               {"mean_dims", f_mean_dims, false},
               {"prod", f_prod, false},
               {"cumsum", f_cumsum, false},
               {"logsumexp", f_logsumexp, false},
               {"softmax", f_softmax, false},
               {"log_softmax", f_log_softmax, false},
               {"layer_norm", f_layer_norm, false},
               {"rms_norm", f_rms_norm, false},
               {"group_norm", f_group_norm, false},
               {"mse_loss", f_mse, false},
               {"l1_loss", f_l1, false},
               {"smooth_l1_loss", f_smooth_l1, false},
               {"huber_loss", f_huber, false},
               {"binary_cross_entropy", f_bce, true},
               {"binary_cross_entropy_with_logits", f_bce_logits, false},
               {"kl_div", f_kl_div, false},
               {"cross_entropy", f_cross_entropy, false},
               {"nll_loss", f_nll, false},
               {"linear_cross_entropy", f_linear_ce, false}};
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
            for (int k = 0; k < 2; k++) {
                bn_tensor *x0 = ops[i].probs
                                    ? bn_add_scalar(bn_mul_scalar(bn_rand(BN_SHAPE(4, 5), BN_F32),
                                                                  0.9),
                                                    0.05)
                                    : bn_randn(BN_SHAPE(4, 5), BN_F32);
                bn_tensor *x = bn_to_dtype(x0, lows[k]);
                cr_assert_eq(bn_autocast_begin(BN_BF16), BN_OK);
                bn_tensor *got = ops[i].fn(x);
                cr_assert_eq(bn_autocast_end(), BN_OK);
                cr_assert_not_null(got, "%s: %s", ops[i].name, bn_error_message());
                cr_assert_eq(bn_dtype_of(got), BN_F32, "%s of %s gave %s", ops[i].name,
                             bn_dtype_name(lows[k]), bn_dtype_name(bn_dtype_of(got)));
                bnt_assert_equal(got, ops[i].fn(bn_to_dtype(x, BN_F32)), ops[i].name);
                /* and gradients flow back to the low-precision input in its dtype */
                bn_tensor *xg = bn_clone(x);
                cr_assert_eq(bn_set_requires_grad(xg, true), BN_OK);
                cr_assert_eq(bn_autocast_begin(BN_F16), BN_OK);
                bn_tensor *yg = ops[i].fn(xg);
                cr_assert_eq(bn_autocast_end(), BN_OK);
                cr_assert_eq(bn_backward(bn_sum(yg, BN_ALL, false)), BN_OK, "%s: %s",
                             ops[i].name, bn_error_message());
                cr_assert_eq(bn_dtype_of(bn_grad(xg)), lows[k], "%s: grad dtype", ops[i].name);
            }
        }
        bn_scope_end();
    });
}

/* Low-precision ops of other files: on f32 inputs they equal the casts written out, forward
 * and backward. */
static bn_tensor *op_linear(const bn_tensor *x, const bn_tensor *w, const bn_tensor *b)
{
    return bn_linear(x, w, b);
}
static bn_tensor *op_attention(const bn_tensor *q, const bn_tensor *k, const bn_tensor *v)
{
    return bn_attention(q, k, v, &(bn_attention_opts){.causal = true});
}

Test(amp_hooks, linear_and_attention_compute_in_the_region_dtype)
{
    bn_manual_seed(5);
    bn_shape b3 = BN_SHAPE(3), kv = BN_SHAPE(2, 2, 6, 8);
    BNT_ASSERT_NO_LEAK({
        for (int k = 0; k < 2; k++) {
            check_like_manual_casts("linear", op_linear, BN_SHAPE(2, 5, 4), BN_SHAPE(3, 4), &b3,
                                    lows[k]);
            check_like_manual_casts("linear no bias", op_linear, BN_SHAPE(4), BN_SHAPE(3, 4),
                                    NULL, lows[k]);
            check_like_manual_casts("attention", op_attention, BN_SHAPE(2, 4, 6, 8),
                                    BN_SHAPE(2, 2, 6, 8), &kv, lows[k]);
        }
    });
}

/* A checkpointed segment recomputes under the forward's region: the same dtypes and gradients
 * as without the checkpoint. */
static bn_tensor *segment(void *ctx, bn_tensor *const *in, int n)
{
    (void)ctx, (void)n;
    return bn_relu(bn_matmul(bn_tanh(bn_matmul(in[0], in[1])), in[1]));
}

Test(amp_hooks, checkpoint_recomputes_in_the_forwards_region)
{
    BNT_ASSERT_NO_LEAK({
        for (int k = 0; k < 2; k++) {
            bn_scope_begin();
            bn_tensor *x = leaf(BN_SHAPE(4, 6)), *w = leaf(BN_SHAPE(6, 6));
            bn_tensor *x2 = twin(x), *w2 = twin(w);
            cr_assert_eq(bn_autocast_begin(lows[k]), BN_OK);
            bn_tensor *y = bn_checkpoint(segment, NULL, (bn_tensor *[]){x, w}, 2);
            bn_tensor *y2 = segment(NULL, (bn_tensor *[]){x2, w2}, 2);
            cr_assert_eq(bn_autocast_end(), BN_OK);
            cr_assert_eq(bn_dtype_of(y), lows[k]);
            bnt_assert_equal(y, y2, "checkpointed forward");
            bn_tensor *g = bn_to_dtype(bn_randn(BN_SHAPE(4, 6), BN_F32), lows[k]);
            cr_assert_eq(bn_backward_ex(y, (bn_backward_opts){.grad = g}), BN_OK, "%s",
                         bn_error_message());
            cr_assert_eq(bn_backward_ex(y2, (bn_backward_opts){.grad = g}), BN_OK);
            bnt_assert_equal(bn_grad(x), bn_grad(x2), "checkpointed grad x");
            bnt_assert_equal(bn_grad(w), bn_grad(w2), "checkpointed grad w");
            bn_scope_end();
        }
    });
}

/* ---- grad scaler ------------------------------------------------------------------------------ */
/* A parameter (f32 leaf) with the values v. */
static bn_tensor *param(const float *v, int64_t n)
{
    bn_tensor *p = bn_from_data(v, BN_SHAPE(n), BN_F32);
    cr_assert_eq(bn_set_requires_grad(p, true), BN_OK);
    return p;
}

/* p's gradient set to g (copied) */
static void set_grad(bn_tensor *p, const float *g, int64_t n)
{
    cr_assert_eq(bn_set_grad(p, bn_from_data(g, BN_SHAPE(n), BN_F32)), BN_OK);
}

static void assert_values(const bn_tensor *t, const float *want, int64_t n, const char *what)
{
    bnt_assert_equal(t, bn_from_data(want, BN_SHAPE(n), BN_F32), what);
}

Test(grad_scaler, defaults_are_torchs)
{
    bn_grad_scaler *s = bn_grad_scaler_new((bn_grad_scaler_opts){0});
    cr_assert_not_null(s);
    cr_assert(bn_grad_scaler_is_enabled(s));
    cr_assert_eq(bn_grad_scaler_get_scale(s), 65536.0);
    bn_grad_scaler_state st;
    cr_assert_eq(bn_grad_scaler_get_state(s, &st), BN_OK);
    cr_assert_eq(st.scale, 65536.0);
    cr_assert_eq(st.growth_tracker, 0);
    cr_assert_not(bn_grad_scaler_found_inf(s));
    /* 1999 clean steps keep the scale, the 2000th doubles it */
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        float v[2] = {1, 2}, g[2] = {3, 4};
        bn_tensor *p = param(v, 2);
        bn_optim *o = bn_optim_sgd_params(&p, 1, (bn_sgd_opts){.lr = 0});
        cr_assert_not_null(o, "%s", bn_error_message());
        for (int i = 1; i <= 2000; i++) {
            set_grad(p, g, 2);
            cr_assert_eq(bn_grad_scaler_step(s, o), BN_OK, "%s", bn_error_message());
            cr_assert_eq(bn_grad_scaler_update(s), BN_OK);
            cr_assert_eq(bn_grad_scaler_get_scale(s), i < 2000 ? 65536.0 : 131072.0, "step %d",
                         i);
        }
        cr_assert_eq(bn_grad_scaler_get_state(s, &st), BN_OK);
        cr_assert_eq(st.growth_tracker, 0);
        bn_optim_free(o);
        bn_scope_end();
    });
    bn_grad_scaler_free(s);
}

Test(grad_scaler, bad_options_and_arguments_are_errors)
{
    struct {
        bn_grad_scaler_opts o;
        const char *msg;
    } bad[] = {{{.init_scale = -1}, "init_scale"},     {{.init_scale = 1e39}, "init_scale"},
               {{.init_scale = NAN}, "init_scale"},    {{.growth_factor = 1}, "growth_factor"},
               {{.growth_factor = 0.5}, "growth_factor"}, {{.growth_factor = INFINITY}, "growth_factor"},
               {{.backoff_factor = 1}, "backoff_factor"}, {{.backoff_factor = -0.5}, "backoff_factor"},
               {{.growth_interval = -3}, "growth_interval"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_null(bn_grad_scaler_new(bad[i].o));
        bnt_assert_error(BN_ERR_ARG, "bn_grad_scaler_new", bad[i].msg, NULL);
    }
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_grad_scaler *s = bn_grad_scaler_new((bn_grad_scaler_opts){0});
        cr_assert_null(bn_grad_scaler_scale(NULL, bn_ones(BN_SHAPE(1), BN_F32)));
        bnt_assert_error(BN_ERR_ARG, "bn_grad_scaler_scale", "s", NULL);
        cr_assert_null(bn_grad_scaler_scale(s, NULL));
        bnt_assert_error(BN_ERR_ARG, "bn_grad_scaler_scale", "loss", NULL);
        cr_assert_null(bn_grad_scaler_scale(s, bn_ones(BN_SHAPE(1), BN_I64)));
        bnt_assert_error(BN_ERR_DTYPE, "bn_grad_scaler_scale", "i64", NULL);
        cr_assert_eq(bn_grad_scaler_unscale(s, NULL), BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "bn_grad_scaler_unscale", "o", NULL);
        cr_assert_eq(bn_grad_scaler_step(NULL, NULL), BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "bn_grad_scaler_step", NULL);
        cr_assert_eq(bn_grad_scaler_update(NULL), BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "bn_grad_scaler_update", NULL);
        cr_assert(isnan(bn_grad_scaler_get_scale(NULL)));
        bnt_assert_error(BN_ERR_ARG, "bn_grad_scaler_get_scale", NULL);
        cr_assert_eq(bn_grad_scaler_get_state(s, NULL), BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "bn_grad_scaler_get_state", NULL);
        /* update with no check since the last one */
        cr_assert_eq(bn_grad_scaler_update(s), BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "bn_grad_scaler_update", "no inf/NaN check", NULL);
        /* state out of range */
        bn_grad_scaler_state bad_st[] = {{0, 0}, {-2, 0}, {INFINITY, 0}, {NAN, 0}, {1e39, 0},
                                         {1024, -1}, {1024, 2000}};
        for (size_t i = 0; i < sizeof bad_st / sizeof bad_st[0]; i++) {
            cr_assert_eq(bn_grad_scaler_set_state(s, bad_st[i]), BN_ERR_ARG, "state %zu", i);
            bnt_assert_error(BN_ERR_ARG, "bn_grad_scaler_set_state", NULL);
        }
        cr_assert_eq(bn_grad_scaler_get_scale(s), 65536.0);
        bn_grad_scaler_free(s);
        bn_grad_scaler_free(NULL);
        bn_scope_end();
    });
}

Test(grad_scaler, scale_unscale_and_step)
{
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_grad_scaler *s = bn_grad_scaler_new((bn_grad_scaler_opts){.init_scale = 1024});
        float v0[3] = {1, -2, 3}, v1[2] = {0.5f, 4}, c0[3] = {0.25f, -3, 7}, c1[2] = {1e-3f, 2};
        bn_tensor *p[3] = {param(v0, 3), param(v1, 2), param(v1, 2)}; /* p[2] gets no grad */
        bn_optim *o = bn_optim_sgd_params(p, 3, (bn_sgd_opts){.lr = 0.5});
        cr_assert_not_null(o, "%s", bn_error_message());
        bn_tensor *loss = bn_add(bn_sum(bn_mul(p[0], bn_from_data(c0, BN_SHAPE(3), BN_F32)),
                                        BN_ALL, false),
                                 bn_sum(bn_mul(p[1], bn_from_data(c1, BN_SHAPE(2), BN_F32)),
                                        BN_ALL, false));
        bn_tensor *scaled = bn_grad_scaler_scale(s, loss);
        cr_assert_float_eq(bn_item(scaled), bn_item(loss) * 1024, 1e-3);
        cr_assert_eq(bn_backward(scaled), BN_OK);
        float sc0[3], sc1[2];
        for (int i = 0; i < 3; i++) sc0[i] = c0[i] * 1024;
        for (int i = 0; i < 2; i++) sc1[i] = c1[i] * 1024;
        assert_values(bn_grad(p[0]), sc0, 3, "scaled grad 0");
        assert_values(bn_grad(p[1]), sc1, 2, "scaled grad 1");
        cr_assert_eq(bn_grad_scaler_unscale(s, o), BN_OK, "%s", bn_error_message());
        assert_values(bn_grad(p[0]), c0, 3, "unscaled grad 0");
        assert_values(bn_grad(p[1]), c1, 2, "unscaled grad 1");
        cr_assert_null(bn_grad(p[2]));
        cr_assert_not(bn_grad_scaler_found_inf(s));
        cr_assert_eq(bn_grad_scaler_unscale(s, o), BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "bn_grad_scaler_unscale", "already unscaled", NULL);
        cr_assert_eq(bn_grad_scaler_step(s, o), BN_OK); /* no second unscale */
        float want0[3], want1[2];
        for (int i = 0; i < 3; i++) want0[i] = v0[i] - 0.5f * c0[i];
        for (int i = 0; i < 2; i++) want1[i] = v1[i] - 0.5f * c1[i];
        assert_values(p[0], want0, 3, "stepped param 0");
        assert_values(p[1], want1, 2, "stepped param 1");
        assert_values(p[2], v1, 2, "param without grad");
        cr_assert_eq(bn_grad_scaler_step(s, o), BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "bn_grad_scaler_step", "already called", NULL);
        cr_assert_eq(bn_grad_scaler_unscale(s, o), BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "bn_grad_scaler_unscale", "step already ran", NULL);
        cr_assert_eq(bn_grad_scaler_update(s), BN_OK);
        cr_assert_eq(bn_grad_scaler_get_scale(s), 1024.0);
        bn_grad_scaler_state st;
        bn_grad_scaler_get_state(s, &st);
        cr_assert_eq(st.growth_tracker, 1);
        bn_optim_free(o);
        bn_grad_scaler_free(s);
        bn_scope_end();
    });
}

Test(grad_scaler, inf_or_nan_skips_the_step_and_backs_off)
{
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        float bads[2] = {INFINITY, NAN};
        for (int k = 0; k < 2; k++) {
            bn_grad_scaler *s = bn_grad_scaler_new((bn_grad_scaler_opts){0});
            float v0[3] = {1, 2, 3}, v1[2] = {4, 5}, g0[3] = {1, 1, 1}, g1[2] = {2, bads[k]};
            bn_tensor *p[2] = {param(v0, 3), param(v1, 2)};
            bn_optim *o = bn_optim_adam_params(p, 2, (bn_adam_opts){.lr = 0.1});
            set_grad(p[0], g0, 3);
            set_grad(p[1], g1, 2);
            cr_assert_eq(bn_grad_scaler_step(s, o), BN_OK, "%s", bn_error_message());
            cr_assert(bn_grad_scaler_found_inf(s));
            assert_values(p[0], v0, 3, "skipped step: param 0");
            assert_values(p[1], v1, 2, "skipped step: param 1");
            cr_assert_eq(bn_optim_step_count(o), 0, "the optimizer did not step");
            cr_assert_eq(bn_grad_scaler_update(s), BN_OK);
            cr_assert_eq(bn_grad_scaler_get_scale(s), 32768.0);
            cr_assert_not(bn_grad_scaler_found_inf(s), "update starts a new iteration");
            /* the next, clean step goes through with the halved scale */
            g1[1] = 3;
            float sg0[3], sg1[2];
            for (int i = 0; i < 3; i++) sg0[i] = g0[i] * 32768;
            for (int i = 0; i < 2; i++) sg1[i] = g1[i] * 32768;
            set_grad(p[0], sg0, 3);
            set_grad(p[1], sg1, 2);
            cr_assert_eq(bn_grad_scaler_step(s, o), BN_OK);
            cr_assert_eq(bn_optim_step_count(o), 1);
            assert_values(bn_grad(p[1]), g1, 2, "unscaled with the new scale");
            cr_assert_eq(bn_grad_scaler_update(s), BN_OK);
            bn_optim_free(o);
            bn_grad_scaler_free(s);
        }
        bn_scope_end();
    });
}

Test(grad_scaler, scale_follows_torchs_rules_over_a_sequence)
{
    /* growth_interval 3, growth 2, backoff 0.5 from 8, computed by hand with torch's
     * _amp_update_scale_: overflow -> scale * 0.5, tracker 0; else tracker + 1, and on reaching
     * 3 -> scale * 2, tracker 0 */
    struct {
        bool overflow;
        double scale;
        int64_t tracker;
    } seq[] = {{false, 8, 1}, {false, 8, 2},  {false, 16, 0}, {true, 8, 0},  {false, 8, 1},
               {true, 4, 0},  {true, 2, 0},   {false, 2, 1},  {false, 2, 2}, {false, 4, 0},
               {false, 4, 1}, {false, 4, 2},  {true, 2, 0},   {false, 2, 1}, {false, 2, 2},
               {false, 4, 0}, {false, 4, 1},  {false, 4, 2},  {false, 8, 0}, {true, 4, 0}};
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_grad_scaler *s = bn_grad_scaler_new(
            (bn_grad_scaler_opts){.init_scale = 8, .growth_interval = 3});
        float v[2] = {1, 2};
        bn_tensor *p = param(v, 2);
        bn_optim *o = bn_optim_sgd_params(&p, 1, (bn_sgd_opts){.lr = 0.5});
        float cur[2] = {1, 2};
        for (size_t i = 0; i < sizeof seq / sizeof seq[0]; i++) {
            double scale = bn_grad_scaler_get_scale(s);
            float g[2] = {(float)(2 * scale), seq[i].overflow ? -INFINITY : (float)(4 * scale)};
            set_grad(p, g, 2);
            cr_assert_eq(bn_grad_scaler_step(s, o), BN_OK, "%s", bn_error_message());
            if (!seq[i].overflow) cur[0] -= 0.5f * 2, cur[1] -= 0.5f * 4;
            assert_values(p, cur, 2, "param along the sequence");
            cr_assert_eq(bn_grad_scaler_update(s), BN_OK);
            bn_grad_scaler_state st;
            bn_grad_scaler_get_state(s, &st);
            cr_assert_eq(st.scale, seq[i].scale, "step %zu: scale %g, want %g", i, st.scale,
                         seq[i].scale);
            cr_assert_eq(st.growth_tracker, seq[i].tracker, "step %zu: tracker", i);
        }
        bn_optim_free(o);
        bn_grad_scaler_free(s);
        bn_scope_end();
    });
}

Test(grad_scaler, scale_never_grows_to_inf_and_state_round_trips)
{
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        float v[1] = {1}, g[1] = {0};
        bn_tensor *p = param(v, 1);
        bn_optim *o = bn_optim_sgd_params(&p, 1, (bn_sgd_opts){.lr = 0.5});
        bn_grad_scaler *s = bn_grad_scaler_new((bn_grad_scaler_opts){
            .init_scale = ldexp(1.0, 127), .growth_interval = 1});
        set_grad(p, g, 1);
        cr_assert_eq(bn_grad_scaler_step(s, o), BN_OK);
        cr_assert_eq(bn_grad_scaler_update(s), BN_OK);
        cr_assert_eq(bn_grad_scaler_get_scale(s), ldexp(1.0, 127), "2^128 is inf in f32");
        /* growing to just below FLT_MAX still happens (in f32) */
        cr_assert_eq(bn_grad_scaler_set_state(s, (bn_grad_scaler_state){3e38, 0}), BN_OK);
        cr_assert_eq(bn_grad_scaler_get_scale(s), (double)3e38f);
        bn_grad_scaler *s2 = bn_grad_scaler_new((bn_grad_scaler_opts){
            .init_scale = 3e38, .growth_factor = 1.1, .growth_interval = 1});
        set_grad(p, g, 1);
        cr_assert_eq(bn_grad_scaler_step(s2, o), BN_OK);
        cr_assert_eq(bn_grad_scaler_update(s2), BN_OK);
        cr_assert_eq(bn_grad_scaler_get_scale(s2), (double)(float)((double)3e38f * 1.1));
        /* state for checkpoints */
        cr_assert_eq(bn_grad_scaler_set_state(s2, (bn_grad_scaler_state){1024, 0}), BN_OK);
        bn_grad_scaler *s3 = bn_grad_scaler_new((bn_grad_scaler_opts){.growth_interval = 10});
        cr_assert_eq(bn_grad_scaler_set_state(s3, (bn_grad_scaler_state){512, 7}), BN_OK);
        bn_grad_scaler_state st;
        cr_assert_eq(bn_grad_scaler_get_state(s3, &st), BN_OK);
        cr_assert_eq(st.scale, 512.0);
        cr_assert_eq(st.growth_tracker, 7);
        for (int i = 0; i < 3; i++) { /* 8, 9, then the 10th clean step grows */
            set_grad(p, g, 1);
            cr_assert_eq(bn_grad_scaler_step(s3, o), BN_OK);
            cr_assert_eq(bn_grad_scaler_update(s3), BN_OK);
        }
        cr_assert_eq(bn_grad_scaler_get_scale(s3), 1024.0);
        bn_grad_scaler_free(s);
        bn_grad_scaler_free(s2);
        bn_grad_scaler_free(s3);
        bn_optim_free(o);
        bn_scope_end();
    });
}

Test(grad_scaler, optimizers_skip_on_their_own_overflow_and_the_update_sees_any)
{
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_grad_scaler *s = bn_grad_scaler_new((bn_grad_scaler_opts){.init_scale = 4});
        float va[2] = {1, 2}, vb[2] = {3, 4}, ga[2] = {4, 8}, gb[2] = {NAN, 4};
        bn_tensor *pa = param(va, 2), *pb = param(vb, 2);
        bn_optim *oa = bn_optim_sgd_params(&pa, 1, (bn_sgd_opts){.lr = 0.5});
        bn_optim *ob = bn_optim_sgd_params(&pb, 1, (bn_sgd_opts){.lr = 0.5});
        set_grad(pa, ga, 2);
        set_grad(pb, gb, 2);
        cr_assert_eq(bn_grad_scaler_unscale(s, oa), BN_OK);
        cr_assert_not(bn_grad_scaler_found_inf(s));
        cr_assert_eq(bn_grad_scaler_step(s, oa), BN_OK);
        cr_assert_eq(bn_grad_scaler_step(s, ob), BN_OK);
        cr_assert(bn_grad_scaler_found_inf(s));
        float wa[2] = {1 - 0.5f * 1, 2 - 0.5f * 2};
        assert_values(pa, wa, 2, "a steps");
        assert_values(pb, vb, 2, "b skips");
        cr_assert_eq(bn_grad_scaler_update(s), BN_OK);
        cr_assert_eq(bn_grad_scaler_get_scale(s), 2.0);
        bn_optim_free(oa);
        bn_optim_free(ob);
        bn_grad_scaler_free(s);
        bn_scope_end();
    });
}

Test(grad_scaler, disabled_passes_everything_through)
{
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_grad_scaler *s = bn_grad_scaler_new((bn_grad_scaler_opts){.disabled = true});
        cr_assert_not(bn_grad_scaler_is_enabled(s));
        cr_assert_eq(bn_grad_scaler_get_scale(s), 1.0);
        bn_tensor *loss = bn_scalar(2.5, BN_F32);
        cr_assert_eq(bn_grad_scaler_scale(s, loss), loss);
        float v[2] = {1, 2}, g[2] = {INFINITY, 2};
        bn_tensor *p = param(v, 2);
        bn_optim *o = bn_optim_sgd_params(&p, 1, (bn_sgd_opts){.lr = 0.5});
        set_grad(p, g, 2);
        cr_assert_eq(bn_grad_scaler_unscale(s, o), BN_OK);
        assert_values(bn_grad(p), g, 2, "not unscaled");
        cr_assert_eq(bn_grad_scaler_step(s, o), BN_OK);
        cr_assert_eq(bn_optim_step_count(o), 1, "no skipping when disabled");
        cr_assert_eq(bn_grad_scaler_update(s), BN_OK);
        cr_assert_eq(bn_grad_scaler_get_scale(s), 1.0);
        bn_optim_free(o);
        bn_grad_scaler_free(s);
        bn_scope_end();
    });
}

/* ---- a short training run ---------------------------------------------------------------------- */
/* 40 SGD steps of a 2-layer MLP regression (matmul + bias, tanh) in f32, or with f16 autocast and
 * the scaler; returns the last loss and the number of skipped steps. */
static double train(bool f16, int *skipped)
{
    bn_manual_seed(11);
    bn_scope_begin();
    bn_tensor *x = bn_randn(BN_SHAPE(32, 8), BN_F32), *t = bn_randn(BN_SHAPE(32, 1), BN_F32);
    bn_tensor *p[4] = {bn_mul_scalar(bn_randn(BN_SHAPE(8, 16), BN_F32), 0.3),
                       bn_zeros(BN_SHAPE(16), BN_F32),
                       bn_mul_scalar(bn_randn(BN_SHAPE(16, 1), BN_F32), 0.3),
                       bn_zeros(BN_SHAPE(1), BN_F32)};
    for (int i = 0; i < 4; i++) bn_set_requires_grad(p[i], true);
    bn_optim *o = bn_optim_sgd_params(p, 4, (bn_sgd_opts){.lr = 0.1});
    bn_grad_scaler *s = bn_grad_scaler_new((bn_grad_scaler_opts){.disabled = !f16});
    double last = NAN;
    *skipped = 0;
    for (int step = 0; step < 40; step++) {
        bn_scope_begin();
        if (f16) bn_autocast_begin(BN_F16);
        bn_tensor *h = bn_tanh(bn_add(bn_matmul(x, p[0]), p[1]));
        bn_tensor *y = bn_add(bn_matmul(h, p[2]), p[3]);
        bn_tensor *d = bn_sub(y, t);
        bn_tensor *loss = bn_mean(bn_mul(d, d), BN_ALL, false);
        if (f16) bn_autocast_end();
        last = bn_item(loss);
        cr_assert_eq(bn_backward(bn_grad_scaler_scale(s, loss)), BN_OK, "%s", bn_error_message());
        cr_assert_eq(bn_grad_scaler_step(s, o), BN_OK, "%s", bn_error_message());
        *skipped += bn_grad_scaler_found_inf(s);
        cr_assert_eq(bn_grad_scaler_update(s), BN_OK);
        bn_optim_zero_grad(o);
        bn_scope_end();
    }
    bn_grad_scaler_free(s);
    bn_optim_free(o);
    bn_scope_end();
    return last;
}

Test(grad_scaler, f16_training_follows_f32)
{
    BNT_ASSERT_NO_LEAK({
        int skipped32, skipped16;
        double l32 = train(false, &skipped32), l16 = train(true, &skipped16);
        cr_assert_eq(skipped32, 0);
        cr_assert_lt(skipped16, 5, "%d steps skipped", skipped16);
        cr_assert(fabs(l16 - l32) <= 0.03 * l32, "last loss f16 %g vs f32 %g", l16, l32);
        cr_log_info("last loss: f32 %.6f, f16 autocast %.6f (%d skipped)", l32, l16, skipped16);
    });
}
