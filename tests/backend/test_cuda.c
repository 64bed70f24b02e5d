/* tests/backend/test_cuda.c — the CUDA plugin against the CPU backend: every kernel it has, on
 * random inputs of several shapes and dtypes, strided (transposed, sliced, broadcast) and
 * contiguous; the caching allocator's statistics; pinned transfers; clear errors for mixed
 * devices and missing devices. Without a GPU (or the plugin) the device tests skip and only the
 * "unavailable" behaviour is checked. No fixture files: the CPU backend is the reference.
 * Tolerances: f32 rel 1e-5 (issue 5), f64 1e-12, f16 1e-3, bf16 1e-2; matmul and reductions add
 * an absolute term for the different summation order. */
#include "bn_test.h"
#include "bn_test_cuda.h"

#include "backend/backend.h"
#include "born/cuda.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double rtol_of(bn_dtype dt)
{
    switch (dt) {
    case BN_F32: return 1e-5;
    case BN_F64: return 1e-12;
    case BN_F16: return 1e-3;
    case BN_BF16: return 1e-2;
    default: return 0;
    }
}

static const bn_dtype float_types[] = {BN_F32, BN_F64, BN_F16, BN_BF16};

/* ---- availability ---------------------------------------------------------------------------- */
Test(cuda, missing_device_is_a_clear_error)
{
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        int n = bn_cuda_device_count();
        bn_tensor *x = bn_zeros(BN_SHAPE(2, 3), BN_F32);
        bn_tensor *y = bn_tensor_to(x, bn_cuda(n)); /* one past the last device */
        cr_assert_null(y);
        bnt_assert_error(BN_ERR_DEVICE, "bn_tensor_to", "cuda:", NULL);
        cr_assert_not(bn_device_available(bn_cuda(n)));
        bn_cuda_memory_stats st;
        cr_assert_eq(bn_cuda_memory_stats_get(n, &st), BN_ERR_DEVICE);
        bnt_assert_error(BN_ERR_DEVICE, "bn_cuda_memory_stats_get", NULL);
        cr_assert_eq(bn_cuda_memory_stats_get(0, NULL), BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "bn_cuda_memory_stats_get", NULL);
        if (n == 0) cr_assert_not_null(bn_cuda_unavailable_reason());
        bn_scope_end();
    });
}

Test(cuda, device_is_listed_with_a_name)
{
    NEED_GPU();
    char name[256] = "";
    cr_assert_eq(bn_cuda_device_name(0, name, sizeof name), BN_OK);
    cr_assert(strlen(name) > 0);
    cr_assert(bn_device_available(bn_cuda(0)));
    cr_log_info("cuda:0 is %s (%d device(s))", name, bn_cuda_device_count());
}

/* ---- memory ---------------------------------------------------------------------------------- */
Test(cuda, allocator_reuses_cached_blocks)
{
    NEED_GPU();
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_tensor *x = bn_ones(BN_SHAPE(1000, 1000), BN_F32);
        bn_cuda_memory_stats a, b, c;
        bn_tensor *g = bn_tensor_to(x, bn_cuda(0));
        cr_assert_not_null(g);
        cr_assert_eq(bn_cuda_memory_stats_get(0, &a), BN_OK);
        cr_assert_geq(a.allocated, 4000000u);
        bn_scope_begin();
        bn_mul_scalar(g, 2.0); /* the first op may cudaMalloc its blocks */
        bn_scope_end();
        cr_assert_eq(bn_cuda_memory_stats_get(0, &a), BN_OK);
        uint64_t mallocs = a.num_device_mallocs;
        for (int i = 0; i < 5; i++) { /* all from the cache */
            bn_scope_begin();
            bn_mul_scalar(g, 2.0);
            bn_scope_end();
        }
        cr_assert_eq(bn_cuda_memory_stats_get(0, &b), BN_OK);
        cr_assert_eq(b.num_device_mallocs, mallocs, "cudaMalloc per op: %llu -> %llu",
                     (unsigned long long)mallocs, (unsigned long long)b.num_device_mallocs);
        cr_assert_geq(b.cached, 4000000u);
        cr_assert_geq(b.peak_allocated, b.allocated);
        cr_assert_eq(b.reserved, b.allocated + b.cached);
        cr_assert_eq(bn_cuda_empty_cache(0), BN_OK);
        cr_assert_eq(bn_cuda_memory_stats_get(0, &c), BN_OK);
        cr_assert_eq(c.cached, 0u);
        bn_scope_end();
    });
}

Test(cuda, copies_roundtrip_every_dtype_small_and_pinned)
{
    NEED_GPU();
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        for (int dt = 0; dt < BN_DTYPE_COUNT; dt++) {
            /* 3M elements go through the pinned staging buffers in several chunks */
            int64_t sizes[] = {0, 1, 777, 3000001};
            for (int k = 0; k < 4; k++) {
                bn_tensor *x = rand_in(BN_SHAPE(sizes[k]), 0, 100, (bn_dtype)dt);
                bnt_assert_equal(cpu(gpu(x)), x, bn_dtype_name((bn_dtype)dt));
            }
        }
        bn_tensor *x = bn_randn(BN_SHAPE(3), BN_F32);
        cr_assert_float_eq(bn_item(bn_sum(gpu(x), 0, false)), bn_item(bn_sum(x, 0, false)), 1e-5);
        bn_scope_end();
    });
}

/* ---- data movement --------------------------------------------------------------------------- */
Test(cuda, cast_matches_cpu_for_every_dtype_pair_strided)
{
    NEED_GPU();
    BNT_ASSERT_NO_LEAK({
        for (int s = 0; s < BN_DTYPE_COUNT; s++) {
            for (int d = 0; d < BN_DTYPE_COUNT; d++) {
                bn_scope_begin();
                bn_tensor *x = rand_in(BN_SHAPE(7, 33), 0, 100, (bn_dtype)s);
                bn_tensor *xt = bn_transpose(x, 0, 1);
                bn_tensor *want = bn_to_dtype(xt, (bn_dtype)d);
                bn_tensor *got = bn_to_dtype(bn_transpose(gpu(x), 0, 1), (bn_dtype)d);
                cr_assert_not_null(got, "%s->%s: %s", bn_dtype_name((bn_dtype)s),
                                   bn_dtype_name((bn_dtype)d), bn_error_message());
                char what[64];
                snprintf(what, sizeof what, "cast %s -> %s", bn_dtype_name((bn_dtype)s),
                         bn_dtype_name((bn_dtype)d));
                bnt_assert_equal(cpu(got), want, what);
                bnt_assert_equal(cpu(bn_contiguous(bn_transpose(gpu(x), 0, 1))), bn_contiguous(xt),
                                 what);
                bn_scope_end();
            }
        }
    });
}

Test(cuda, fill_sequence_and_random_match_cpu)
{
    NEED_GPU();
    const bn_backend *gb = bn__backend("test", bn_cuda(0)), *cb = bn__cpu_backend();
    cr_assert_not_null(gb);
    BNT_ASSERT_NO_LEAK({
        for (int dt = 0; dt < BN_DTYPE_COUNT; dt++) {
            bn_scope_begin();
            bn_dtype t = (bn_dtype)dt;
            bn_tensor *g = bn__out(bn__empty((int64_t[]){3, 5}, 2, t, bn_cuda(0)));
            cr_assert_eq(bn_fill_(g, 3.0), BN_OK);
            bnt_assert_equal(cpu(g), bn_full(BN_SHAPE(3, 5), 3.0, t), "fill");
            /* sequence and random through the kernels directly (creation ops make CPU tensors) */
            int64_t n = 1001;
            bn_tensor *gs = bn__out(bn__empty(&n, 1, t, bn_cuda(0)));
            bn_tensor *cs = bn__out(bn__empty(&n, 1, t, bn_cpu()));
            bn_tview gv = bn__tview(gs), cv = bn__tview(cs);
            for (int op = 0; op < 2; op++) {
                double step = t == BN_BOOL ? 0 : t <= BN_BF16 ? 0.01 : 1;
                cr_assert_eq(gb->sequence((bn_sequence_op)op, &gv, -2, step, -2 + step * 1000),
                             BN_OK);
                cr_assert_eq(cb->sequence((bn_sequence_op)op, &cv, -2, step, -2 + step * 1000),
                             BN_OK);
                bnt_assert_close(cpu(gs), cs, rtol_of(t), 0, "sequence");
            }
            for (int op = 0; op < 3; op++) {
                if (op == BN_RANDOM_NORMAL && !bn_dtype_is_float(t)) continue;
                double a = op == BN_RANDOM_INT ? 0 : -1, b = op == BN_RANDOM_INT ? 7 : 2;
                if (t == BN_BOOL) a = 0, b = 2;
                cr_assert_eq(gb->random((bn_random_op)op, &gv, 1234, 77, a, b), BN_OK);
                cr_assert_eq(cb->random((bn_random_op)op, &cv, 1234, 77, a, b), BN_OK);
                /* Box-Muller through the GPU's log/sin/cos may differ in the last f64 bit */
                bnt_assert_close(cpu(gs), cs, op == BN_RANDOM_NORMAL ? fmax(rtol_of(t), 1e-12) : 0,
                                 op == BN_RANDOM_NORMAL ? 1e-12 : 0, "random");
            }
            bn_scope_end();
        }
    });
}

/* ---- element-wise ---------------------------------------------------------------------------- */
typedef bn_tensor *(*unary_fn)(const bn_tensor *);
static bn_tensor *leaky(const bn_tensor *x) { return bn_leaky_relu(x, 0.1); }
static bn_tensor *elu1(const bn_tensor *x) { return bn_elu(x, 1.3); }
static bn_tensor *softplus2(const bn_tensor *x) { return bn_softplus(x, 2.0, 3.0); }
static bn_tensor *clamp01(const bn_tensor *x) { return bn_clamp(x, -0.5, 0.7); }

Test(cuda, unary_ops_match_cpu_on_strided_floats)
{
    NEED_GPU();
    static const struct {
        const char *name;
        unary_fn fn;
        double lo, hi;
    } ops[] = {
        {"neg", bn_neg, -3, 3},         {"abs", bn_abs, -3, 3},
        {"exp", bn_exp, -3, 3},         {"log", bn_log, 0.1, 5},
        {"log1p", bn_log1p, -0.5, 5},   {"sqrt", bn_sqrt, 0.1, 5},
        {"rsqrt", bn_rsqrt, 0.1, 5},    {"sin", bn_sin, -3, 3},
        {"cos", bn_cos, -3, 3},         {"tanh", bn_tanh, -3, 3},
        {"sigmoid", bn_sigmoid, -5, 5}, {"relu", bn_relu, -3, 3},
        {"leaky_relu", leaky, -3, 3},   {"elu", elu1, -3, 3},
        {"gelu", bn_gelu, -3, 3},       {"gelu_tanh", bn_gelu_tanh, -3, 3},
        {"silu", bn_silu, -3, 3},       {"softplus", softplus2, -3, 3},
        {"erf", bn_erf, -2, 2},         {"floor", bn_floor, -3, 3},
        {"ceil", bn_ceil, -3, 3},       {"round", bn_round, -3, 3},
        {"sign", bn_sign, -3, 3},       {"clamp", clamp01, -3, 3},
    };
    BNT_ASSERT_NO_LEAK({
        for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
            for (int k = 0; k < 4; k++) {
                bn_scope_begin();
                bn_dtype dt = float_types[k];
                bn_tensor *x = rand_in(BN_SHAPE(65, 31), ops[i].lo, ops[i].hi, dt);
                bn_tensor *want = ops[i].fn(bn_transpose(x, 0, 1));
                bn_tensor *got = ops[i].fn(bn_transpose(gpu(x), 0, 1));
                char what[64];
                snprintf(what, sizeof what, "%s %s", ops[i].name, bn_dtype_name(dt));
                /* f16/bf16: the two sides may round a last-bit tie differently: one ulp */
                double atol = dt == BN_F32 ? 1e-6 : dt == BN_F64 ? 1e-14 : 0;
                expect_close(got, want, rtol_of(dt), atol, what);
                bn_scope_end();
            }
        }
        bn_scope_begin();
        bn_tensor *b = bn_gt_scalar(bn_randn(BN_SHAPE(9), BN_F32), 0);
        bnt_assert_equal(cpu(bn_logical_not(gpu(b))), bn_logical_not(b), "logical_not");
        bn_scope_end();
    });
}

typedef bn_tensor *(*binary_fn)(const bn_tensor *, const bn_tensor *);

Test(cuda, binary_ops_broadcast_like_cpu)
{
    NEED_GPU();
    static const struct {
        const char *name;
        binary_fn fn;
        bool ints;
    } ops[] = {
        {"add", bn_add, true},         {"sub", bn_sub, true},
        {"mul", bn_mul, true},         {"div", bn_div, false},
        {"pow", bn_pow, false},        {"maximum", bn_maximum, true},
        {"minimum", bn_minimum, true}, {"remainder", bn_remainder, false},
        {"eq", bn_eq, true},           {"ne", bn_ne, true},
        {"lt", bn_lt, true},           {"le", bn_le, true},
        {"gt", bn_gt, true},           {"ge", bn_ge, true},
        {"and", bn_logical_and, true}, {"or", bn_logical_or, true},
        {"xor", bn_logical_xor, true},
    };
    static const bn_dtype types[] = {BN_F32, BN_F64, BN_F16, BN_BF16, BN_I32, BN_I64, BN_U8, BN_I8};
    BNT_ASSERT_NO_LEAK({
        for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
            for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
                bn_dtype dt = types[k];
                if (!bn_dtype_is_float(dt) && !ops[i].ints) continue;
                bn_scope_begin();
                /* (3, 1, 5) with (4, 5): both broadcast; b is a sliced view */
                bn_tensor *a = rand_in(BN_SHAPE(3, 1, 5), 0.5, 9, dt);
                bn_tensor *b = rand_in(BN_SHAPE(4, 10), 0.5, 3, dt);
                bn_tensor *want = ops[i].fn(a, bn_slice(b, 1, 0, 10, 2));
                bn_tensor *got = ops[i].fn(gpu(a), bn_slice(gpu(b), 1, 0, 10, 2));
                char what[64];
                snprintf(what, sizeof what, "%s %s", ops[i].name, bn_dtype_name(dt));
                expect_close(got, want, rtol_of(dt), dt == BN_F32 ? 1e-6 : 0, what);
                bn_scope_end();
            }
        }
        bn_scope_begin();
        bn_tensor *c = bn_gt_scalar(bn_randn(BN_SHAPE(4, 1), BN_F32), 0);
        bn_tensor *a = bn_randn(BN_SHAPE(4, 6), BN_F32), *b = bn_randn(BN_SHAPE(6), BN_F32);
        bnt_assert_equal(cpu(bn_where(gpu(c), gpu(a), gpu(b))), bn_where(c, a, b), "where");
        bn_scope_end();
    });
}

/* ---- reductions ------------------------------------------------------------------------------ */
#define CHECK(NAME, CALL)                                                                          \
    do {                                                                                           \
        snprintf(what, sizeof what, "%s dim %d %s", NAME, d, bn_dtype_name(dt));                   \
        bn_tensor *x_ = xt;                                                                        \
        bn_tensor *want_ = CALL;                                                                   \
        x_ = gt;                                                                                   \
        expect_close(CALL, want_, r, a, what);                                                     \
    } while (0)

/* every float reduction of a transposed (5, 300, 6) view along dim against the CPU */
static void check_float_reductions(bn_dtype dt, int dim)
{
    bn_tensor *x = rand_in(BN_SHAPE(6, 300, 5), -2, 2, dt);
    bn_tensor *xt = bn_transpose(x, 0, 2), *gt = bn_transpose(gpu(x), 0, 2);
    /* sums near 0 of 300 terms: an absolute term of a few of the dtype's ulps at 16 */
    double r = rtol_of(dt), a = dt == BN_F64   ? 1e-12
                                : dt == BN_F32 ? 1e-5
                                : dt == BN_F16 ? 2e-2
                                               : 1.3e-1;
    int d = dim;
    char what[64];
    CHECK("sum", bn_sum(x_, d, false));
    CHECK("mean", bn_mean(x_, d, true));
    CHECK("max", bn_max(x_, d, false));
    CHECK("min", bn_min(x_, d, false));
    CHECK("var", bn_var(x_, d, 1, false));
    CHECK("std", bn_std(x_, d, 0, false));
    CHECK("logsumexp", bn_logsumexp(x_, d, false));
    CHECK("argmax", bn_argmax(x_, d, false));
    CHECK("argmin", bn_argmin(x_, d, false));
    CHECK("softmax", bn_softmax(x_, d));
    CHECK("log_softmax", bn_log_softmax(x_, d));
    CHECK("cumsum", bn_cumsum(x_, d));
    int dims[2] = {0, 2};
    CHECK("sum_dims", bn_sum_dims(x_, dims, 2, false));
}
#undef CHECK

Test(cuda, reductions_match_cpu_over_each_dim)
{
    NEED_GPU();
    BNT_ASSERT_NO_LEAK({
        for (int k = 0; k < 4; k++) {
            for (int dim = 0; dim < 3; dim++) {
                bn_scope_begin();
                check_float_reductions(float_types[k], dim);
                bn_scope_end();
            }
        }
        bn_scope_begin();
        bn_tensor *i = rand_in(BN_SHAPE(5, 40), -100, 100, BN_I32);
        bnt_assert_equal(cpu(bn_sum(gpu(i), 1, false)), bn_sum(i, 1, false), "sum i32");
        bnt_assert_equal(cpu(bn_max(gpu(i), 0, false)), bn_max(i, 0, false), "max i32");
        bn_tensor *b = bn_gt_scalar(i, 0);
        bnt_assert_equal(cpu(bn_all(gpu(b), 1, false)), bn_all(b, 1, false), "all");
        bnt_assert_equal(cpu(bn_any(gpu(b), 1, false)), bn_any(b, 1, false), "any");
        bn_tensor *p = rand_in(BN_SHAPE(4, 9), 0.5, 1.5, BN_F32);
        expect_close(bn_prod(gpu(p), 1, false), bn_prod(p, 1, false), 1e-5, 0, "prod");
        bn_scope_end();
    });
}

/* ---- matmul ---------------------------------------------------------------------------------- */
Test(cuda, matmul_matches_cpu_for_layouts_batches_and_dtypes)
{
    NEED_GPU();
    static const int64_t mkn[][3] = {{1, 1, 1}, {7, 13, 5}, {64, 128, 96}, {129, 65, 257}};
    BNT_ASSERT_NO_LEAK({
        for (int k = 0; k < 4; k++) {
            for (size_t s = 0; s < sizeof mkn / sizeof mkn[0]; s++) {
                bn_scope_begin();
                bn_dtype dt = float_types[k];
                int64_t m = mkn[s][0], kk = mkn[s][1], n = mkn[s][2];
                double r = dt == BN_F32 ? 1e-5 : dt == BN_F64 ? 1e-12 : dt == BN_F16 ? 2e-3 : 1e-2;
                double a = (dt == BN_F32 ? 2e-5 : dt == BN_F64 ? 1e-12 : 1e-2) * sqrt((double)kk);
                /* reference in f64 on the CPU, rounded to dt: GEMM order differs */
                bn_tensor *A = rand_in(BN_SHAPE(3, m, kk), -1, 1, dt);
                bn_tensor *B = rand_in(BN_SHAPE(kk, n), -1, 1, dt);
                bn_tensor *Bt = bn_contiguous(bn_transpose(B, 0, 1)); /* (n, kk) */
                bn_tensor *want =
                    bn_to_dtype(bn_matmul(bn_to_dtype(A, BN_F64), bn_to_dtype(B, BN_F64)), dt);
                char what[80];
                snprintf(what, sizeof what, "matmul %s %lldx%lldx%lld", bn_dtype_name(dt),
                         (long long)m, (long long)kk, (long long)n);
                expect_close(bn_matmul(gpu(A), gpu(B)), want, r, a, what); /* broadcast b */
                expect_close(bn_matmul(gpu(A), bn_transpose(gpu(Bt), 0, 1)), want, r, a,
                             what);                                   /* transposed b */
                bn_tensor *At = bn_contiguous(bn_transpose(A, 1, 2)); /* (3, kk, m) */
                expect_close(bn_matmul(bn_transpose(gpu(At), 1, 2), gpu(B)), want, r, a,
                             what); /* transposed a */
                bn_tensor *As = bn_slice(gpu(bn_cat((bn_tensor *[]){A, A}, 2, 2)), 2, 0, 2 * kk,
                                         2); /* neither layout: copied */
                bn_tensor *want_s =
                    bn_to_dtype(bn_matmul(bn_to_dtype(bn_slice(bn_cat((bn_tensor *[]){A, A}, 2, 2),
                                                               2, 0, 2 * kk, 2),
                                                      BN_F64),
                                          bn_to_dtype(B, BN_F64)),
                                dt);
                expect_close(bn_matmul(As, gpu(B)), want_s, r, a, what);
                bn_scope_end();
            }
        }
    });
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Not a check: logs born's GEMM rate (TF32 when run with BORN_CUDA_TF32=1) for the record. */
Test(cuda, matmul_rate_is_logged)
{
    NEED_GPU();
    static const bn_dtype types[] = {BN_F32, BN_BF16, BN_F16};
    BNT_ASSERT_NO_LEAK({
        for (int k = 0; k < 3; k++) {
            for (int64_t n = 4096; n <= 8192; n *= 2) {
                bn_scope_begin();
                bn_tensor *a = gpu(bn_randn(BN_SHAPE(n, n), types[k]));
                bn_tensor *b = gpu(bn_randn(BN_SHAPE(n, n), types[k]));
                for (int w = 0; w < 2; w++) {
                    bn_scope_begin();
                    bn_matmul(a, b);
                    bn_scope_end();
                }
                bn_cuda_synchronize(0);
                int reps = 10;
                double t0 = now_s();
                for (int r = 0; r < reps; r++) {
                    bn_scope_begin();
                    bn_matmul(a, b);
                    bn_scope_end();
                }
                cr_assert_eq(bn_cuda_synchronize(0), BN_OK);
                double dt = (now_s() - t0) / reps;
                cr_log_info("matmul %s %lld^3: %.3f ms, %.1f TFLOP/s%s", bn_dtype_name(types[k]),
                            (long long)n, dt * 1e3, 2.0 * (double)n * n * n / dt / 1e12,
                            getenv("BORN_CUDA_TF32") ? " (BORN_CUDA_TF32 set)" : "");
                bn_scope_end();
            }
        }
    });
}

/* ---- what is not on the GPU yet -------------------------------------------------------------- */
Test(cuda, mixed_devices_are_a_clear_error_not_a_copy)
{
    NEED_GPU();
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_tensor *x = gpu(bn_randn(BN_SHAPE(4, 5), BN_F32));
        bn_tensor *c = bn_randn(BN_SHAPE(4, 5), BN_F32);
        cr_assert_null(bn_add(x, c));
        bnt_assert_error(BN_ERR_DEVICE, "bn_add", NULL);
        cr_assert_null(bn_matmul(x, bn_transpose(c, 0, 1)));
        bnt_assert_error(BN_ERR_DEVICE, "bn_matmul", NULL);
        bn_tensor *i = bn_randint(0, 5, BN_SHAPE(2, 5), BN_I64);
        cr_assert_null(bn_gather(x, 0, i));
        bnt_assert_error(BN_ERR_DEVICE, "bn_gather", NULL);
        bn_scope_end();
    });
}
