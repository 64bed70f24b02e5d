/* tests/backend/test_cuda_nn.c — the CUDA nn kernel family (backend_nn.h) and the losses on the
 * GPU against the CPU backend, through the public ops: layer / RMS / group norm, batch norm
 * (train and eval, running statistics), dropout (the same mask as the CPU for the same seed),
 * embedding, every loss, their gradients through autograd, and small models moved to the GPU
 * whole. Inputs are random, of many shapes (warp-per-row and block-per-row norms, vectorised and
 * not, per-channel sums over planes and over columns), contiguous and strided, in every float
 * dtype. Without a GPU (or the plugin) every test skips. No fixture files: the CPU is the
 * reference. Tolerances: f32 rel 1e-5 (issue 5), f64 1e-12, f16 2e-3, bf16 1e-2 (one rounding of
 * an f32 result that may differ from the CPU's in its last bit), with a small absolute term for
 * values that cancel to near zero. */
#include "bn_test.h"
#include "bn_test_cuda.h"

#include "backend/backend.h"
#include "backend/backend_nn.h"
#include "born/cuda.h"
#include "born/nn.h"

#include <math.h>
#include <stdio.h>
#include <string.h>


static double rtol_of(bn_dtype dt)
{
    switch (dt) {
    case BN_F32: return 1e-5;
    case BN_F64: return 1e-12;
    case BN_F16: return 2e-3;
    case BN_BF16: return 1e-2;
    default: return 0;
    }
}

static double atol_of(bn_dtype dt)
{
    switch (dt) {
    case BN_F32: return 1e-6;
    case BN_F64: return 1e-13;
    case BN_F16: return 2e-3;
    case BN_BF16: return 1e-2;
    default: return 0;
    }
}

static const bn_dtype float_types[] = {BN_F32, BN_F64, BN_F16, BN_BF16};

/* ---- forward and backward of one op on both devices ----------------------------------------------
 * fn computes an output from inputs on one device; the inputs whose bit is set in grad_mask are
 * made leaves that require grad. The outputs must agree, and so must the gradients of
 * sum(fn(in) * r) for a fixed random r. */
typedef bn_tensor *(*nn_fn)(bn_tensor *const *in, void *ctx);

static void check_op(const char *what, nn_fn fn, void *ctx, bn_tensor *const *in_cpu, int n,
                     unsigned grad_mask, double rtol, double atol)
{
    bn_tensor *cin[8], *gin[8];
    cr_assert(n <= 8);
    for (int i = 0; i < n; i++) {
        cin[i] = in_cpu[i] ? bn_clone(in_cpu[i]) : NULL;
        gin[i] = in_cpu[i] ? gpu(in_cpu[i]) : NULL;
        if (in_cpu[i] && (grad_mask & (1u << i))) {
            cr_assert_eq(bn_set_requires_grad(cin[i], true), BN_OK);
            cr_assert_eq(bn_set_requires_grad(gin[i], true), BN_OK);
        }
    }
    bn_tensor *yc = fn(cin, ctx), *yg = fn(gin, ctx);
    char msg[160];
    snprintf(msg, sizeof msg, "%s forward", what);
    expect_close(yg, yc, rtol, atol, msg);
    if (!grad_mask) return;
    bn_tensor *r = rand_in(bn_shape_of(yc), -1, 1, bn_dtype_of(yc));
    cr_assert_eq(bn_backward(bn_sum(bn_mul(yc, r), BN_ALL, false)), BN_OK, "%s: %s", what,
                 bn_error_message());
    cr_assert_eq(bn_backward(bn_sum(bn_mul(yg, gpu(r)), BN_ALL, false)), BN_OK, "%s (GPU): %s",
                 what, bn_error_message());
    for (int i = 0; i < n; i++) {
        if (!in_cpu[i] || !(grad_mask & (1u << i))) continue;
        snprintf(msg, sizeof msg, "%s grad of input %d", what, i);
        /* gradients sum over rows / channels: a little more room */
        expect_close(bn_grad(gin[i]), bn_grad(cin[i]), rtol * 4, atol * 10, msg);
    }
}

/* ---- layer / RMS / group norm --------------------------------------------------------------------- */
typedef struct norm_ctx {
    int nd;        /* normalized dims (layer / RMS) */
    int64_t groups; /* group norm */
    bool transpose; /* normalise a transposed (strided) view of x */
} norm_ctx;

static bn_tensor *maybe_t(const bn_tensor *x, const norm_ctx *c)
{
    return c->transpose ? bn_transpose(x, 0, bn_ndim(x) - 1) : (bn_tensor *)x;
}

static bn_tensor *layer_norm_fn(bn_tensor *const *in, void *ctx)
{
    norm_ctx *c = ctx;
    return bn_layer_norm(maybe_t(in[0], c), c->nd, in[1], in[2], 1e-5);
}

static bn_tensor *rms_norm_fn(bn_tensor *const *in, void *ctx)
{
    norm_ctx *c = ctx;
    return bn_rms_norm(maybe_t(in[0], c), c->nd, in[1], 1e-6);
}

static bn_tensor *group_norm_fn(bn_tensor *const *in, void *ctx)
{
    norm_ctx *c = ctx;
    return bn_group_norm(in[0], c->groups, in[1], in[2], 1e-5);
}

/* x's shape as given; weight / bias of the last nd dims (after the transpose, if any) */
static void check_row_norm(bool rms, bn_shape xs, int nd, bool affine, bool transpose, bn_dtype dt)
{
    norm_ctx c = {.nd = nd, .transpose = transpose};
    bn_tensor *x = rand_in(xs, -3, 2, dt);
    bn_shape ws = bn_shape_of(maybe_t(x, &c));
    bn_shape last = {.ndim = nd};
    for (int i = 0; i < nd; i++) last.dims[i] = ws.dims[ws.ndim - nd + i];
    bn_tensor *w = affine ? rand_in(last, 0.5, 1.5, dt) : NULL;
    bn_tensor *b = affine && !rms ? rand_in(last, -1, 1, dt) : NULL;
    bn_tensor *in[3] = {x, w, b};
    char what[128];
    snprintf(what, sizeof what, "%s %s nd %d %s%s", rms ? "rms_norm" : "layer_norm",
             bn__sshape(xs), nd, bn_dtype_name(dt), transpose ? " transposed" : "");
    check_op(what, rms ? rms_norm_fn : layer_norm_fn, &c, in, 3, 7u, rtol_of(dt), atol_of(dt));
}

static const struct {
    bn_shape s;
    int nd;
} row_cases[] = {
    {BN_SHAPE(4, 10), 1},       /* warp per row, scalar path */
    {BN_SHAPE(3, 5, 768), 1},   /* the one-pass backward (cols 128 k <= 1024), a partial block */
    {BN_SHAPE(100, 256), 1},    /* one-pass backward over 4 blocks */
    {BN_SHAPE(37, 1024), 1},    /* one-pass backward, widest rows */
    {BN_SHAPE(2, 33, 384), 1},
    {BN_SHAPE(2, 3, 4, 6), 2},  /* two normalized dims */
    {BN_SHAPE(6, 3000), 1},     /* block of 256 per row */
    {BN_SHAPE(2, 9001), 1},     /* block of 1024, odd columns */
    {BN_SHAPE(7, 1), 1},        /* one column: var 0 */
    {BN_SHAPE(0, 16), 1},       /* empty */
    {BN_SHAPE(3, 12, 5), 2},
};

Test(cuda_nn, layer_and_rms_norm_match_cpu_with_gradients)
{
    NEED_GPU();
    BNT_ASSERT_NO_LEAK({
        for (size_t k = 0; k < sizeof row_cases / sizeof row_cases[0]; k++)
            for (int d = 0; d < 4; d++)
                for (int rms = 0; rms < 2; rms++) {
                    bn_scope_begin();
                    check_row_norm(rms, row_cases[k].s, row_cases[k].nd, true, false,
                                   float_types[d]);
                    bn_scope_end();
                }
    });
}

Test(cuda_nn, row_norms_without_affine_and_on_strided_views)
{
    NEED_GPU();
    BNT_ASSERT_NO_LEAK({
        for (int d = 0; d < 2; d++)
            for (int rms = 0; rms < 2; rms++) {
                bn_scope_begin();
                check_row_norm(rms, BN_SHAPE(33, 20), 1, false, false, float_types[d]);
                check_row_norm(rms, BN_SHAPE(64, 48), 1, true, true, float_types[d]);
                check_row_norm(rms, BN_SHAPE(1500, 2, 7), 1, true, true, float_types[d]);
                bn_scope_end();
            }
        /* a contiguous view one element in: the rows are not 16-byte aligned (scalar path) */
        bn_scope_begin();
        bn_tensor *big = rand_in(BN_SHAPE(8 * 64 + 1), -2, 2, BN_F32);
        bn_tensor *x = bn_reshape(bn_slice(big, 0, 1, 8 * 64 + 1, 1), BN_SHAPE(8, 64));
        bn_tensor *w = rand_in(BN_SHAPE(64), 0.5, 1.5, BN_F32);
        expect_close(bn_layer_norm(bn_reshape(bn_slice(gpu(big), 0, 1, 8 * 64 + 1, 1),
                                              BN_SHAPE(8, 64)),
                                   1, gpu(w), NULL, 1e-5),
                     bn_layer_norm(x, 1, w, NULL, 1e-5), 1e-5, 1e-6, "layer_norm unaligned");
        bn_scope_end();
    });
}

Test(cuda_nn, group_norm_matches_cpu_with_gradients)
{
    NEED_GPU();
    static const struct {
        bn_shape s;
        int64_t groups;
    } cases[] = {
        {BN_SHAPE(4, 6, 5, 5), 3}, {BN_SHAPE(2, 8, 40), 8},  {BN_SHAPE(3, 4), 2},
        {BN_SHAPE(2, 32, 9, 9), 4}, {BN_SHAPE(5, 6, 70), 1}, {BN_SHAPE(0, 4, 3), 2},
    };
    BNT_ASSERT_NO_LEAK({
        for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++)
            for (int d = 0; d < 4; d++)
                for (int affine = 0; affine < 2; affine++) {
                    bn_scope_begin();
                    bn_dtype dt = float_types[d];
                    norm_ctx c = {.groups = cases[k].groups};
                    int64_t C = cases[k].s.dims[1];
                    bn_tensor *in[3] = {rand_in(cases[k].s, -2, 3, dt),
                                        affine ? rand_in(BN_SHAPE(C), 0.5, 1.5, dt) : NULL,
                                        affine ? rand_in(BN_SHAPE(C), -1, 1, dt) : NULL};
                    char what[96];
                    snprintf(what, sizeof what, "group_norm %s groups %lld %s",
                             bn__sshape(cases[k].s), (long long)cases[k].groups,
                             bn_dtype_name(dt));
                    check_op(what, group_norm_fn, &c, in, 3, 7u, rtol_of(dt), atol_of(dt));
                    bn_scope_end();
                }
    });
}

/* ---- batch norm ------------------------------------------------------------------------------------ */
typedef struct bn_ctx {
    bn_tensor *rm, *rv; /* running stats on the device of the call, or NULL */
    bool training;
} bn_ctx;

static bn_tensor *batch_norm_fn(bn_tensor *const *in, void *ctx)
{
    bn_ctx *c = ctx;
    bool on_gpu = bn_device_of(in[0]).type == BN_DEVICE_CUDA;
    bn_tensor *rm = c->rm, *rv = c->rv;
    if (rm && on_gpu) rm = c[1].rm, rv = c[1].rv; /* c[0]: the CPU's buffers, c[1]: the GPU's */
    return bn_batch_norm(in[0], rm, rv, in[1], in[2], c->training, 0.1, 1e-5);
}

/* running stats in dtype rdt, as strided views (every other element of a buffer twice as long) */
static void check_batch_norm(bn_shape xs, bn_dtype dt, bn_dtype rdt, bool training, bool affine,
                             bool running)
{
    int64_t C = xs.dims[1];
    bn_tensor *rm_buf = rand_in(BN_SHAPE(2 * C), -0.5, 0.5, rdt);
    bn_tensor *rv_buf = rand_in(BN_SHAPE(2 * C), 0.5, 2, rdt);
    bn_tensor *grm_buf = gpu(rm_buf), *grv_buf = gpu(rv_buf);
    bn_ctx c[2] = {{running ? bn_slice(rm_buf, 0, 0, 2 * C, 2) : NULL,
                    running ? bn_slice(rv_buf, 0, 0, 2 * C, 2) : NULL, training},
                   {running ? bn_slice(grm_buf, 0, 0, 2 * C, 2) : NULL,
                    running ? bn_slice(grv_buf, 0, 0, 2 * C, 2) : NULL, training}};
    bn_tensor *in[3] = {rand_in(xs, -2, 3, dt), affine ? rand_in(BN_SHAPE(C), 0.5, 1.5, dt) : NULL,
                        affine ? rand_in(BN_SHAPE(C), -1, 1, dt) : NULL};
    char what[128];
    snprintf(what, sizeof what, "batch_norm %s %s running %s %s%s", bn__sshape(xs),
             bn_dtype_name(dt), bn_dtype_name(rdt), training ? "train" : "eval",
             affine ? "" : " no affine");
    check_op(what, batch_norm_fn, c, in, 3, 7u, rtol_of(dt), atol_of(dt));
    if (running) { /* updated once per forward (check_op runs one forward on each device) */
        char w2[160];
        snprintf(w2, sizeof w2, "%s running stats", what);
        double rt = fmax(rtol_of(rdt), rtol_of(dt)), at = fmax(atol_of(rdt), atol_of(dt));
        expect_close(grm_buf, rm_buf, rt, at, w2);
        expect_close(grv_buf, rv_buf, rt, at, w2);
    }
}

Test(cuda_nn, batch_norm_train_and_eval_match_cpu_with_running_stats)
{
    NEED_GPU();
    static const bn_shape shapes[] = {
        BN_SHAPE(16, 5),          /* S 1: per-channel sums over columns */
        BN_SHAPE(8, 3, 10, 10),   /* S 100: over planes */
        BN_SHAPE(4, 7, 31),       /* S 31: columns */
        BN_SHAPE(300, 4, 40),     /* many chunks over N */
        BN_SHAPE(2000, 70),       /* many chunks, columns */
        BN_SHAPE(2, 3, 0),        /* empty batch */
    };
    BNT_ASSERT_NO_LEAK({
        for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++)
            for (int d = 0; d < 3; d++)
                for (int training = 0; training < 2; training++) {
                    bn_scope_begin();
                    bn_dtype dt = float_types[d];
                    bool empty = shapes[k].dims[0] * (shapes[k].ndim > 2 ? shapes[k].dims[2] : 1) == 0;
                    if (!(empty && !training)) {
                        check_batch_norm(shapes[k], dt, dt, training, true, true);
                        if (!empty) check_batch_norm(shapes[k], dt, BN_BF16, training, false, true);
                    }
                    if (training) check_batch_norm(shapes[k], dt, dt, true, true, false);
                    bn_scope_end();
                }
    });
}

/* ---- dropout ---------------------------------------------------------------------------------------- */
Test(cuda_nn, dropout_draws_the_cpu_mask_for_the_same_seed)
{
    NEED_GPU();
    static const int64_t sizes[] = {0, 1, 3, 4, 1001, (1 << 20) + 3};
    static const double ps[] = {0.1, 0.5, 0.9, 1.0};
    BNT_ASSERT_NO_LEAK({
        for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++)
            for (int d = 0; d < 4; d++)
                for (size_t j = 0; j < sizeof ps / sizeof ps[0]; j++) {
                    bn_scope_begin();
                    bn_dtype dt = float_types[d];
                    bn_tensor *x = rand_in(BN_SHAPE(sizes[k]), 0.5, 2, dt);
                    bn_tensor *gx = gpu(x);
                    bn_manual_seed(1234 + k);
                    bn_tensor *want = bn_dropout(x, ps[j], true);
                    bn_manual_seed(1234 + k);
                    bn_tensor *got = bn_dropout(gx, ps[j], true);
                    cr_assert_not_null(got, "%s", bn_error_message());
                    char what[80];
                    snprintf(what, sizeof what, "dropout n %lld p %g %s", (long long)sizes[k],
                             ps[j], bn_dtype_name(dt));
                    bnt_assert_equal(cpu(got), want, what);
                    bn_scope_end();
                }
        /* the gradient is the mask, on the GPU */
        bn_scope_begin();
        bn_tensor *x = rand_in(BN_SHAPE(37, 11), -1, 1, BN_F32);
        bn_tensor *gx = gpu(x);
        bn_set_requires_grad(x, true);
        bn_set_requires_grad(gx, true);
        bn_manual_seed(99);
        bn_backward(bn_sum(bn_dropout(x, 0.3, true), BN_ALL, false));
        bn_manual_seed(99);
        bn_backward(bn_sum(bn_dropout(gx, 0.3, true), BN_ALL, false));
        bnt_assert_equal(cpu(bn_grad(gx)), bn_grad(x), "dropout grad");
        bn_scope_end();
    });
}

/* ---- embedding ---------------------------------------------------------------------------------------- */
static bn_tensor *embedding_fn(bn_tensor *const *in, void *ctx)
{
    bool transpose = ctx != NULL;
    return bn_embedding(transpose ? bn_transpose(in[0], 0, 1) : in[0], in[1]);
}

Test(cuda_nn, embedding_gathers_like_cpu_for_dtypes_and_layouts)
{
    NEED_GPU();
    static const bn_dtype types[] = {BN_F32, BN_F64, BN_F16, BN_BF16, BN_I32, BN_I64, BN_U8};
    static const int64_t dims[] = {1, 3, 4, 16, 33, 768};
    BNT_ASSERT_NO_LEAK({
        for (size_t t = 0; t < sizeof types / sizeof types[0]; t++)
            for (size_t k = 0; k < sizeof dims / sizeof dims[0]; k++)
                for (int tr = 0; tr < 2; tr++)
                    for (int i64 = 0; i64 < 2; i64++) {
                        bn_scope_begin();
                        bn_dtype dt = types[t];
                        int64_t num = 13, dim = dims[k];
                        /* transposed: the table is stored (dim, num) and viewed (num, dim) */
                        bn_tensor *w = rand_in(tr ? BN_SHAPE(dim, num) : BN_SHAPE(num, dim), 0,
                                               100, dt);
                        bn_tensor *idx = bn_randint(0, num, BN_SHAPE(2, 5, 3), i64 ? BN_I64 : BN_I32);
                        bn_tensor *in[2] = {w, idx};
                        char what[96];
                        snprintf(what, sizeof what, "embedding %s dim %lld%s %s",
                                 bn_dtype_name(dt), (long long)dim, tr ? " strided" : "",
                                 i64 ? "i64" : "i32");
                        bool fl = dt == BN_F32 || dt == BN_F64;
                        /* sums in index order in the element type, as the CPU: exact */
                        check_op(what, embedding_fn, tr ? (void *)1 : NULL, in, 2, fl ? 1u : 0u,
                                 0, 0);
                        bn_scope_end();
                    }
    });
}

Test(cuda_nn, embedding_backward_is_deterministic_with_many_repeats)
{
    NEED_GPU();
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        /* 5000 indices into 7 rows (long runs) and into 50000 rows (short ones) */
        for (int k = 0; k < 2; k++) {
            int64_t num = k ? 50000 : 7, dim = 96;
            bn_tensor *w = rand_in(BN_SHAPE(num, dim), -1, 1, BN_F32);
            bn_tensor *idx = bn_randint(0, num, BN_SHAPE(5000), BN_I64);
            bn_tensor *g = rand_in(BN_SHAPE(5000, dim), -1, 1, BN_F32);
            bn_tensor *grads[3];
            for (int rep = 0; rep < 3; rep++) {
                bn_tensor *gw = rep < 2 ? gpu(w) : bn_clone(w);
                bn_set_requires_grad(gw, true);
                bn_tensor *y = bn_embedding(gw, rep < 2 ? gpu(idx) : idx);
                cr_assert_eq(bn_backward(bn_sum(bn_mul(y, rep < 2 ? gpu(g) : g), BN_ALL, false)),
                             BN_OK, "%s", bn_error_message());
                grads[rep] = rep < 2 ? cpu(bn_grad(gw)) : bn_grad(gw);
            }
            bnt_assert_equal(grads[0], grads[1], "embedding grad run to run");
            bnt_assert_equal(grads[0], grads[2], "embedding grad vs CPU");
        }
        bn_scope_end();
    });
}

Test(cuda_nn, embedding_index_out_of_range_is_an_error_naming_it)
{
    NEED_GPU();
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_tensor *w = gpu(bn_randn(BN_SHAPE(5, 4), BN_F32));
        int64_t bad[] = {1, 4, 9, 2, -3};
        cr_assert_null(bn_embedding(w, gpu(bn_from_data(bad, BN_SHAPE(5), BN_I64))));
        bnt_assert_error(BN_ERR_ARG, "bn_embedding", "index 9 is out of range", "5 rows", NULL);
        int32_t neg[] = {0, -1};
        cr_assert_null(bn_embedding(w, gpu(bn_from_data(neg, BN_SHAPE(2), BN_I32))));
        bnt_assert_error(BN_ERR_ARG, "bn_embedding", "index -1", NULL);
        /* zero columns still checks the indices */
        bn_tensor *w0 = gpu(bn_zeros(BN_SHAPE(3, 0), BN_F32));
        int64_t three[] = {3};
        cr_assert_null(bn_embedding(w0, gpu(bn_from_data(three, BN_SHAPE(1), BN_I64))));
        bnt_assert_error(BN_ERR_ARG, "index 3 is out of range", NULL);
        bn_scope_end();
    });
}

/* ---- the kernels themselves: dtypes outside their contract ---------------------------------------- */
Test(cuda_nn, norm_kernels_refuse_other_dtypes_by_name)
{
    NEED_GPU();
    const bn_backend *be = bn__backend("test", bn_cuda(0));
    cr_assert_not_null(be);
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_tensor *x = gpu(bn_ones(BN_SHAPE(2, 4), BN_F16));
        bn_tensor *m = gpu(bn_ones(BN_SHAPE(2), BN_F16));
        bn_tview xv = bn__tview(x), mv = bn__tview(m);
        bn_row_norm_geom g = {.rows = 2, .cols = 4, .groups = 1, .inner = 1};
        cr_assert_eq(be->nn->row_norm(&xv, NULL, NULL, &xv, &mv, &mv, &g, 1e-5),
                     BN_ERR_UNSUPPORTED);
        bnt_assert_error(BN_ERR_UNSUPPORTED, "row_norm", "f16", NULL);
        bn_tensor *i = gpu(bn_ones(BN_SHAPE(3), BN_I32));
        bn_tview iv = bn__tview(i);
        cr_assert_eq(be->nn->dropout_mask(&iv, 0.5, 1, 0), BN_ERR_UNSUPPORTED);
        bnt_assert_error(BN_ERR_UNSUPPORTED, "dropout_mask", "i32", NULL);
        bn_scope_end();
    });
}

Test(cuda_nn, mixed_devices_are_a_clear_error)
{
    NEED_GPU();
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_tensor *x = gpu(bn_randn(BN_SHAPE(3, 4), BN_F32)), *w = bn_ones(BN_SHAPE(4), BN_F32);
        cr_assert_null(bn_layer_norm(x, 1, w, NULL, 1e-5));
        bnt_assert_error(BN_ERR_DEVICE, "bn_layer_norm", NULL);
        int64_t t[] = {0, 1, 2};
        cr_assert_null(bn_cross_entropy(x, bn_from_data(t, BN_SHAPE(3), BN_I64), (bn_ce_opts){0}));
        bnt_assert_error(BN_ERR_DEVICE, "bn_cross_entropy", NULL);
        bn_scope_end();
    });
}

/* ---- losses -------------------------------------------------------------------------------------------- */
typedef struct ce_ctx {
    bn_ce_opts o;
    bool nll;
    bn_tensor *weight[2]; /* CPU, GPU */
} ce_ctx;

static bn_tensor *ce_fn(bn_tensor *const *in, void *ctx)
{
    ce_ctx *c = ctx;
    bn_ce_opts o = c->o;
    bool on_gpu = bn_device_of(in[0]).type == BN_DEVICE_CUDA;
    o.weight = c->weight[on_gpu];
    return c->nll ? bn_nll_loss(bn_log_softmax(in[0], bn_ndim(in[0]) >= 2 ? 1 : 0), in[1], o)
                  : bn_cross_entropy(in[0], in[1], o);
}

static void check_ce(bn_shape xs, bool prob, bool nll, bn_ce_opts o, bool weighted, bn_dtype dt)
{
    int cdim = xs.ndim >= 2 ? 1 : 0;
    int64_t C = xs.dims[cdim];
    bn_shape ts = {.ndim = 0};
    for (int i = 0; i < xs.ndim; i++)
        if (i != cdim) ts.dims[ts.ndim++] = xs.dims[i];
    bn_tensor *x = rand_in(xs, -4, 4, dt);
    bn_tensor *t = prob ? bn_softmax(rand_in(xs, -2, 2, dt), cdim) : bn_randint(0, C, ts, BN_I64);
    if (!prob && o.use_ignore_index && bn_numel(t) > 1) { /* some targets ignored */
        int64_t n = bn_numel(t);
        bn_tensor *flat = bn_reshape(bn_clone(t), BN_SHAPE(n));
        bn_tensor *ign = bn_full(BN_SHAPE(1), (double)o.ignore_index, BN_I64);
        bn_copy_(bn_slice(flat, 0, 0, n, 3), bn_expand(ign, BN_SHAPE((n + 2) / 3)));
        t = bn_reshape(flat, ts);
    }
    ce_ctx c = {.o = o, .nll = nll};
    if (weighted) {
        c.weight[0] = rand_in(BN_SHAPE(C), 0.2, 2, dt);
        c.weight[1] = gpu(c.weight[0]);
    }
    bn_tensor *in[2] = {x, t};
    char what[160];
    snprintf(what, sizeof what, "%s %s %s red %d eps %g%s%s", nll ? "nll" : "cross_entropy",
             bn__sshape(xs), bn_dtype_name(dt), (int)o.reduction, o.label_smoothing,
             weighted ? " weighted" : "", o.use_ignore_index ? " ignore" : "");
    /* reductions over many terms in f32 on the GPU, in f64 on the CPU */
    double rt = dt == BN_F64 ? 1e-11 : rtol_of(dt) * 3, at = dt == BN_F64 ? 1e-12 : atol_of(dt) * 5;
    check_op(what, ce_fn, &c, in, 2, prob ? 3u : 1u, rt, at);
}

Test(cuda_nn, cross_entropy_and_nll_match_cpu_with_gradients)
{
    NEED_GPU();
    static const bn_shape shapes[] = {BN_SHAPE(16, 10), BN_SHAPE(4, 5, 3, 2), BN_SHAPE(7),
                                      BN_SHAPE(64, 1000)};
    static const bn_reduction reds[] = {BN_REDUCTION_MEAN, BN_REDUCTION_SUM, BN_REDUCTION_NONE};
    BNT_ASSERT_NO_LEAK({
        for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++)
            for (int d = 0; d < 2; d++)
                for (size_t r = 0; r < 3; r++) {
                    bn_scope_begin();
                    bn_dtype dt = float_types[d];
                    bn_ce_opts o = {.reduction = reds[r]};
                    check_ce(shapes[k], false, false, o, false, dt);
                    check_ce(shapes[k], false, true, o, false, dt);
                    check_ce(shapes[k], false, false, o, true, dt);
                    check_ce(shapes[k], true, false, o, true, dt);
                    bn_ce_opts s = {.reduction = reds[r], .label_smoothing = 0.1};
                    check_ce(shapes[k], false, false, s, false, dt);
                    check_ce(shapes[k], false, false, s, true, dt);
                    check_ce(shapes[k], true, false, s, false, dt);
                    bn_ce_opts ig = {.reduction = reds[r], .use_ignore_index = true,
                                     .ignore_index = 1, .label_smoothing = 0.05};
                    check_ce(shapes[k], false, false, ig, true, dt);
                    check_ce(shapes[k], false, true, ig, false, dt);
                    bn_scope_end();
                }
        /* f16 logits: computed in f32 on the GPU, rounded once */
        bn_scope_begin();
        check_ce(BN_SHAPE(8, 12), false, false, (bn_ce_opts){0}, false, BN_F16);
        bn_scope_end();
    });
}

Test(cuda_nn, cross_entropy_edge_cases_match_cpu)
{
    NEED_GPU();
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        /* every target ignored: a mean over nothing is NaN, as on the CPU (and in torch) */
        bn_tensor *x = rand_in(BN_SHAPE(3, 4), -1, 1, BN_F32);
        int64_t all_ign[] = {-100, -100, -100};
        bn_tensor *t = bn_from_data(all_ign, BN_SHAPE(3), BN_I64);
        bn_ce_opts o = {.use_ignore_index = true, .ignore_index = -100};
        bn_tensor *want = bn_cross_entropy(x, t, o), *got = bn_cross_entropy(gpu(x), gpu(t), o);
        expect_close(got, want, 0, 0, "cross_entropy all ignored");
        cr_assert(isnan(bn_item(got)));
        /* an empty batch */
        bn_tensor *x0 = rand_in(BN_SHAPE(0, 4), -1, 1, BN_F32);
        bn_tensor *t0 = bn_zeros(BN_SHAPE(0), BN_I64);
        for (int r = 0; r < 3; r++) {
            bn_ce_opts e = {.reduction = (bn_reduction)r};
            expect_close(bn_cross_entropy(gpu(x0), gpu(t0), e), bn_cross_entropy(x0, t0, e), 0, 0,
                         "cross_entropy empty batch");
        }
        /* a -inf logit on a class that is not the target */
        float xv[] = {0.5f, -INFINITY, 1.0f, 2.0f, 0.0f, -1.0f};
        int64_t tv[] = {0, 2};
        bn_tensor *xi = bn_from_data(xv, BN_SHAPE(2, 3), BN_F32);
        bn_tensor *ti = bn_from_data(tv, BN_SHAPE(2), BN_I64);
        expect_close(bn_cross_entropy(gpu(xi), gpu(ti), (bn_ce_opts){0}),
                     bn_cross_entropy(xi, ti, (bn_ce_opts){0}), 1e-6, 1e-6, "cross_entropy -inf");
        bn_scope_end();
    });
}

Test(cuda_nn, cross_entropy_target_out_of_range_is_an_error_naming_it)
{
    NEED_GPU();
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_tensor *x = gpu(bn_randn(BN_SHAPE(4, 3), BN_F32));
        int64_t t[] = {0, 2, 5, -1};
        cr_assert_null(bn_cross_entropy(x, gpu(bn_from_data(t, BN_SHAPE(4), BN_I64)),
                                        (bn_ce_opts){0}));
        bnt_assert_error(BN_ERR_ARG, "bn_cross_entropy", "target 5 is out of range for 3 classes",
                         NULL);
        cr_assert_null(bn_nll_loss(x, gpu(bn_from_data(t, BN_SHAPE(4), BN_I64)), (bn_ce_opts){0}));
        bnt_assert_error(BN_ERR_ARG, "bn_nll_loss", "target 5", NULL);
        /* an ignored target may be anything */
        int64_t ti[] = {0, 2, 7, 7};
        bn_ce_opts o = {.use_ignore_index = true, .ignore_index = 7};
        bn_tensor *tc = bn_from_data(ti, BN_SHAPE(4), BN_I64);
        expect_close(bn_cross_entropy(x, gpu(tc), o), bn_cross_entropy(cpu(x), tc, o), 1e-5, 1e-6,
                     "cross_entropy ignored out of range");
        bn_scope_end();
    });
}

typedef struct pair_ctx {
    int which;
} pair_ctx;

static bn_tensor *pair_loss_fn(bn_tensor *const *in, void *ctx)
{
    pair_ctx *c = ctx;
    bn_loss_opts o = {.reduction = BN_REDUCTION_MEAN, .beta = 0.7};
    switch (c->which) {
    case 0: return bn_mse_loss(in[0], in[1], o);
    case 1: return bn_l1_loss(in[0], in[1], (bn_loss_opts){.reduction = BN_REDUCTION_SUM});
    case 2: return bn_smooth_l1_loss(in[0], in[1], o);
    case 3: return bn_huber_loss(in[0], in[1], (bn_loss_opts){.reduction = BN_REDUCTION_NONE});
    case 4: return bn_binary_cross_entropy(bn_sigmoid(in[0]), bn_detach(in[1]), (bn_bce_opts){0});
    case 5: return bn_binary_cross_entropy_with_logits(in[0], in[1], (bn_bce_opts){0});
    case 6: return bn_kl_div(bn_log_softmax(in[0], 1), bn_softmax(in[1], 1),
                             (bn_kl_opts){.reduction = BN_REDUCTION_SUM, .batchmean = true});
    default: return bn_kl_div(bn_log_softmax(in[0], 1), bn_log_softmax(in[1], 1),
                              (bn_kl_opts){.reduction = BN_REDUCTION_MEAN, .log_target = true});
    }
}

Test(cuda_nn, elementwise_losses_match_cpu_with_gradients)
{
    NEED_GPU();
    static const char *names[] = {"mse", "l1", "smooth_l1", "huber", "bce", "bce_logits",
                                  "kl", "kl_log_target"};
    BNT_ASSERT_NO_LEAK({
        for (int k = 0; k < 8; k++)
            for (int d = 0; d < 2; d++) {
                bn_scope_begin();
                bn_dtype dt = float_types[d];
                bn_tensor *x = rand_in(BN_SHAPE(9, 13), -2, 2, dt);
                bn_tensor *t = k == 5 ? rand_in(BN_SHAPE(9, 13), 0, 1, dt)
                                      : rand_in(BN_SHAPE(9, 13), -2, 2, dt);
                if (k == 4) t = rand_in(BN_SHAPE(9, 13), 0, 1, dt);
                bn_tensor *in[2] = {x, t};
                pair_ctx c = {k};
                char what[64];
                snprintf(what, sizeof what, "%s %s", names[k], bn_dtype_name(dt));
                check_op(what, pair_loss_fn, &c, in, 2, k == 4 ? 1u : 3u, rtol_of(dt) * 3,
                         atol_of(dt) * 5);
                bn_scope_end();
            }
    });
}

/* ---- whole models moved to the GPU ----------------------------------------------------------------- */
static bn_module *mlp(void)
{
    return bn_nn_sequential(bn_nn_linear(20, 32, true), bn_nn_layernorm(BN_SHAPE(32), (bn_norm_opts){0}),
                            bn_nn_relu(), bn_nn_dropout(0.2), bn_nn_linear(32, 16, true),
                            bn_nn_batchnorm1d(16, (bn_norm_opts){0}), bn_nn_gelu(false),
                            bn_nn_rmsnorm(BN_SHAPE(16), (bn_norm_opts){0}),
                            bn_nn_linear(16, 10, false), NULL);
}

Test(cuda_nn, mlp_on_the_gpu_trains_like_on_the_cpu)
{
    NEED_GPU();
    BNT_ASSERT_NO_LEAK({
        bn_manual_seed(5);
        bn_module *mc = mlp();
        bn_manual_seed(5);
        bn_module *mg = mlp();
        cr_assert_not_null(mc);
        cr_assert_not_null(mg);
        cr_assert_eq(bn_module_to_device(mg, bn_cuda(0)), BN_OK, "%s", bn_error_message());
        for (int step = 0; step < 2; step++) {
            bn_scope_begin();
            bn_module_train(mc, step == 0);
            bn_module_train(mg, step == 0);
            bn_tensor *x = rand_in(BN_SHAPE(64, 20), -1, 1, BN_F32);
            bn_tensor *y = bn_randint(0, 10, BN_SHAPE(64), BN_I64);
            bn_manual_seed(77);
            bn_tensor *lc = bn_cross_entropy(bn_module_forward(mc, x), y, (bn_ce_opts){0});
            bn_manual_seed(77);
            bn_tensor *lg = bn_cross_entropy(bn_module_forward(mg, gpu(x)), gpu(y), (bn_ce_opts){0});
            expect_close(lg, lc, 1e-5, 1e-6, "mlp loss");
            cr_assert_eq(bn_backward(lc), BN_OK);
            cr_assert_eq(bn_backward(lg), BN_OK, "%s", bn_error_message());
            bn_tensor_list pc = bn_module_named_parameters(mc), pg = bn_module_named_parameters(mg);
            cr_assert_eq(pc.count, pg.count);
            for (int i = 0; i < pc.count; i++)
                expect_close(bn_grad(pg.tensors[i]), bn_grad(pc.tensors[i]), 1e-4, 1e-6,
                             pc.names[i]);
            bn_tensor_list bc = bn_module_named_buffers(mc), bg = bn_module_named_buffers(mg);
            for (int i = 0; i < bc.count; i++)
                if (bn_dtype_is_float(bn_dtype_of(bc.tensors[i])))
                    expect_close(bg.tensors[i], bc.tensors[i], 1e-5, 1e-6, bc.names[i]);
            bn_tensor_list_free(&pc);
            bn_tensor_list_free(&pg);
            bn_tensor_list_free(&bc);
            bn_tensor_list_free(&bg);
            bn_module_zero_grad(mc);
            bn_module_zero_grad(mg);
            bn_scope_end();
        }
        bn_module_free(mc);
        bn_module_free(mg);
    });
}

Test(cuda_nn, embedding_model_on_the_gpu_matches_cpu)
{
    NEED_GPU();
    BNT_ASSERT_NO_LEAK({
        bn_manual_seed(11);
        bn_module *ec = bn_nn_embedding(100, 24);
        bn_manual_seed(11);
        bn_module *eg = bn_nn_embedding(100, 24);
        cr_assert_eq(bn_module_to_device(eg, bn_cuda(0)), BN_OK, "%s", bn_error_message());
        bn_scope_begin();
        bn_tensor *idx = bn_randint(0, 100, BN_SHAPE(8, 12), BN_I64);
        bn_tensor *yc = bn_layer_norm(bn_module_forward(ec, idx), 1, NULL, NULL, 1e-5);
        bn_tensor *yg = bn_layer_norm(bn_module_forward(eg, gpu(idx)), 1, NULL, NULL, 1e-5);
        expect_close(yg, yc, 1e-5, 1e-6, "embedding + layer_norm");
        bn_tensor *r = rand_in(BN_SHAPE(8, 12, 24), -1, 1, BN_F32);
        cr_assert_eq(bn_backward(bn_sum(bn_mul(yc, r), BN_ALL, false)), BN_OK);
        cr_assert_eq(bn_backward(bn_sum(bn_mul(yg, gpu(r)), BN_ALL, false)), BN_OK, "%s",
                     bn_error_message());
        bn_tensor *wc = bn_module_get(ec, "weight"), *wg = bn_module_get(eg, "weight");
        expect_close(bn_grad(wg), bn_grad(wc), 1e-5, 1e-6, "embedding weight grad");
        bn_scope_end();
        bn_module_free(ec);
        bn_module_free(eg);
    });
}

/* ---- determinism ----------------------------------------------------------------------------------------- */
Test(cuda_nn, norm_gradients_are_the_same_on_every_run)
{
    NEED_GPU();
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_tensor *x = gpu(rand_in(BN_SHAPE(4096, 768), -2, 2, BN_F32));
        bn_tensor *w0 = gpu(rand_in(BN_SHAPE(768), 0.5, 1.5, BN_F32));
        bn_tensor *b0 = gpu(rand_in(BN_SHAPE(768), -1, 1, BN_F32));
        bn_tensor *xb = gpu(rand_in(BN_SHAPE(256, 64, 14, 14), -2, 2, BN_F32));
        bn_tensor *wb0 = gpu(rand_in(BN_SHAPE(64), 0.5, 1.5, BN_F32));
        bn_tensor *first[3] = {NULL, NULL, NULL};
        for (int rep = 0; rep < 2; rep++) {
            /* fresh leaves each run, so the gradients do not accumulate */
            bn_tensor *w = bn_detach(w0), *b = bn_detach(b0), *wb = bn_detach(wb0);
            bn_set_requires_grad(w, true);
            bn_set_requires_grad(b, true);
            bn_set_requires_grad(wb, true);
            cr_assert_eq(bn_backward(bn_sum(bn_layer_norm(x, 1, w, b, 1e-5), BN_ALL, false)), BN_OK,
                         "%s", bn_error_message());
            bn_tensor *y = bn_batch_norm(xb, NULL, NULL, wb, NULL, true, 0.1, 1e-5);
            cr_assert_eq(bn_backward(bn_sum(bn_mul(y, xb), BN_ALL, false)), BN_OK, "%s",
                         bn_error_message());
            bn_tensor *now[3] = {cpu(bn_grad(w)), cpu(bn_grad(b)), cpu(bn_grad(wb))};
            for (int i = 0; i < 3; i++) {
                cr_assert_not_null(now[i]);
                if (rep == 0)
                    first[i] = now[i];
                else
                    bnt_assert_equal(now[i], first[i], "gradient run to run");
            }
        }
        bn_scope_end();
    });
}
