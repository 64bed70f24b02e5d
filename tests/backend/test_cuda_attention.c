/* tests/backend/test_cuda_attention.c — the CUDA fused attention (cuda_attention.cu) against the
 * CPU backend's fused kernel, which tests/unit/test_attention.c checks against PyTorch and the
 * reference path: bn_attention on the GPU (BN_ATTN_FUSED and BN_ATTN_AUTO) for MHA, GQA and MQA,
 * causal with Tq < Tk and Tq > Tk (rows that see no key), bool and float masks broadcast over
 * batch, heads and rows, two leading dims, dropout (the same weights dropped as on the CPU), T
 * not a multiple of the tile, D in {3, 16, 32, 64, 80, 128, 256} and D != Dv; outputs and the
 * gradients of sum(out * gout) through autograd on the GPU. f32 within rel 1e-5 (plus an
 * absolute term for the different order of the sums), f64 within 1e-12. Repeated runs give
 * identical bits (no atomics). The packed-rows entry GPT blocks use (bn__attention_packed:
 * q, k and v read in place from a strided (B, T, (hq + 2 hkv) hd) tensor, one gradient written
 * for it) against the same entry on the CPU. Logs the forward and forward+backward times of two GPT shapes.
 * Without a GPU every test skips. */
#include "bn_test.h"
#include "bn_test_cuda.h"

#include "born/autograd.h"
#include "born/cuda.h"
#include "born/transformer.h"
#include "core/internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


typedef struct attn_case {
    const char *name;
    int64_t B, Hq, Hkv, Tq, Tk, D, Dv;
    bool causal;
    /* 0 none, 1 bool (B, 1, Tq, Tk), 2 float (Tq, Tk), 3 bool (Hq, 1, Tk),
     * 4 float (B, Hq, Tq, Tk) with -inf entries */
    int mask;
    double p;     /* dropout */
    bool lead2;   /* two leading dims (2, B, ...), the mask (2, 1, 1, Tq, Tk) bool */
} attn_case;

static bn_shape shape_of(const attn_case *c, int64_t h, int64_t t, int64_t e)
{
    return c->lead2 ? BN_SHAPE(2, c->B, h, t, e) : BN_SHAPE(c->B, h, t, e);
}

/* The case's mask on the CPU in dtype dt (float masks), or NULL. */
static bn_tensor *make_mask(const attn_case *c, bn_dtype dt)
{
    if (c->lead2) return bn_gt_scalar(bn_rand(BN_SHAPE(2, 1, 1, c->Tq, c->Tk), BN_F32), 0.3);
    switch (c->mask) {
    case 1: return bn_gt_scalar(bn_rand(BN_SHAPE(c->B, 1, c->Tq, c->Tk), BN_F32), 0.2);
    case 2: return bn_to_dtype(bn_mul_scalar(bn_rand(BN_SHAPE(c->Tq, c->Tk), BN_F32), -4), dt);
    case 3: return bn_gt_scalar(bn_rand(BN_SHAPE(c->Hq, 1, c->Tk), BN_F32), 0.5);
    case 4: {
        bn_shape s = BN_SHAPE(c->B, c->Hq, c->Tq, c->Tk);
        bn_tensor *hide = bn_gt_scalar(bn_rand(s, BN_F32), 0.7);
        return bn_to_dtype(bn_masked_fill(bn_randn(s, BN_F32), hide, -INFINITY), dt);
    }
    default: return NULL;
    }
}

/* out and the gradients of sum(out * gout) with respect to q, k, v, computed on the GPU (or the
 * CPU) with impl; all four copied to the CPU, owned by the open scope. */
static void run_on(const attn_case *c, bn_dtype dt, bool on_gpu, int impl, bn_tensor **res)
{
    bn_manual_seed(11);
    bn_tensor *q = bn_to_dtype(bn_randn(shape_of(c, c->Hq, c->Tq, c->D), BN_F32), dt);
    bn_tensor *k = bn_to_dtype(bn_randn(shape_of(c, c->Hkv, c->Tk, c->D), BN_F32), dt);
    bn_tensor *v = bn_to_dtype(bn_randn(shape_of(c, c->Hkv, c->Tk, c->Dv), BN_F32), dt);
    bn_tensor *gout = bn_to_dtype(bn_randn(shape_of(c, c->Hq, c->Tq, c->Dv), BN_F32), dt);
    bn_tensor *mask = make_mask(c, dt);
    if (on_gpu) {
        q = gpu(q), k = gpu(k), v = gpu(v), gout = gpu(gout);
        if (mask) mask = gpu(mask);
    }
    bn_tensor *in[3] = {q, k, v};
    for (int i = 0; i < 3; i++) cr_assert_eq(bn_set_requires_grad(in[i], true), BN_OK);
    bn_manual_seed(99); /* the dropout draws: the same reservation on both devices */
    bn_attention_opts o = {.mask = mask,
                           .causal = c->causal,
                           .dropout_p = c->p,
                           .training = c->p > 0,
                           .impl = impl};
    bn_tensor *out = bn_attention(q, k, v, &o);
    cr_assert_not_null(out, "%s: %s", c->name, bn_error_message());
    cr_assert_eq(bn_device_of(out).type, on_gpu ? BN_DEVICE_CUDA : BN_DEVICE_CPU);
    cr_assert_str_eq(bn_grad_fn_name(out), "AttentionBackward", "%s: not the fused kernel",
                     c->name);
    cr_assert_eq(bn_backward_ex(out, (bn_backward_opts){.grad = gout}), BN_OK, "%s: %s", c->name,
                 bn_error_message());
    res[0] = cpu(out);
    for (int i = 0; i < 3; i++) {
        bn_tensor *g = bn_grad(in[i]);
        cr_assert_not_null(g, "%s: no gradient %d", c->name, i);
        res[i + 1] = cpu(g);
    }
}

static void compare_with_cpu(const attn_case *c, bn_dtype dt, int impl, double rtol, double atol)
{
    bn_scope_begin();
    bn_tensor *g[4], *w[4];
    run_on(c, dt, true, impl, g);
    run_on(c, dt, false, BN_ATTN_FUSED, w);
    static const char *const what[4] = {"out", "dq", "dk", "dv"};
    for (int i = 0; i < 4; i++) {
        char msg[240];
        snprintf(msg, sizeof msg,
                 "%s %s %s (GPU vs CPU): B %lld Hq %lld Hkv %lld Tq %lld Tk %lld D %lld Dv %lld "
                 "causal %d mask %d p %g",
                 c->name, bn_dtype_name(dt), what[i], (long long)c->B, (long long)c->Hq,
                 (long long)c->Hkv, (long long)c->Tq, (long long)c->Tk, (long long)c->D,
                 (long long)c->Dv, c->causal, c->mask, c->p);
        bnt_assert_close(g[i], w[i], rtol, atol, msg);
    }
    bn_scope_end();
}

static const attn_case F32_CASES[] = {
    {"mha d16", 2, 4, 4, 70, 70, 16, 16, false, 0, 0, false},
    {"mha causal d32", 2, 3, 3, 129, 129, 32, 32, true, 0, 0, false},
    {"gqa causal bool mask d64", 1, 6, 2, 200, 200, 64, 64, true, 1, 0, false},
    {"mqa kv cache tq<tk d80", 1, 4, 1, 33, 150, 80, 80, true, 0, 0, false},
    {"causal tq>tk rows see no key", 2, 2, 2, 90, 40, 64, 64, true, 0, 0, false},
    {"float mask d128", 1, 2, 2, 65, 130, 128, 128, false, 2, 0, false},
    {"d != dv head mask", 1, 4, 2, 77, 91, 64, 48, true, 3, 0, false},
    {"d256 dv200", 1, 2, 1, 50, 70, 256, 200, false, 0, 0, false},
    {"d3 dv5 unaligned rows", 2, 2, 2, 17, 23, 3, 5, true, 1, 0, false},
    {"float mask with -inf", 2, 2, 1, 45, 61, 32, 32, false, 4, 0, false},
    {"two leading dims", 2, 4, 2, 40, 52, 16, 16, true, 0, 0, true},
    {"dropout gqa causal", 2, 4, 2, 67, 70, 64, 64, true, 0, 0.3, false},
    {"dropout float mask", 1, 2, 2, 130, 129, 32, 32, false, 4, 0.2, false},
    {"dropout d128", 1, 2, 2, 70, 70, 128, 128, true, 1, 0.5, false},
    {"one query row", 1, 4, 2, 1, 90, 64, 64, true, 0, 0, false},
};

Test(cuda_attention, fused_matches_cpu_f32)
{
    NEED_GPU();
    BNT_ASSERT_NO_LEAK({
        for (size_t i = 0; i < sizeof F32_CASES / sizeof *F32_CASES; i++)
            compare_with_cpu(&F32_CASES[i], BN_F32, BN_ATTN_FUSED, 1e-5, 1e-5);
    });
}

Test(cuda_attention, auto_picks_the_fused_kernel_on_the_gpu)
{
    NEED_GPU();
    BNT_ASSERT_NO_LEAK({
        compare_with_cpu(&F32_CASES[2], BN_F32, BN_ATTN_AUTO, 1e-5, 1e-5);
        compare_with_cpu(&F32_CASES[11], BN_F32, BN_ATTN_AUTO, 1e-5, 1e-5);
    });
}

/* Grouped heads with enough key blocks to fill the GPU take the one-block-per-kv-head path
 * (the cases above, with few key blocks, take the per-query-head partial sums). */
Test(cuda_attention, grouped_heads_with_many_key_blocks_match_cpu)
{
    NEED_GPU();
    static const attn_case c = {"gqa many key blocks", 4, 8, 4, 1100, 1100, 32, 32, true, 0, 0,
                                false};
    BNT_ASSERT_NO_LEAK(compare_with_cpu(&c, BN_F32, BN_ATTN_FUSED, 1e-5, 1e-5));
}

Test(cuda_attention, fused_matches_cpu_f64)
{
    NEED_GPU();
    static const attn_case cases[] = {
        {"mha", 2, 2, 2, 19, 23, 8, 8, false, 0, 0, false},
        {"gqa causal bool mask", 2, 4, 2, 33, 33, 16, 12, true, 1, 0, false},
        {"mqa tq>tk float mask", 1, 3, 1, 20, 9, 5, 7, true, 4, 0, false},
        {"dropout", 2, 4, 2, 67, 70, 16, 16, true, 0, 0.3, false},
        {"dropout float mask", 1, 2, 2, 30, 29, 8, 8, false, 2, 0.5, false},
        {"d256", 1, 2, 2, 9, 11, 256, 256, false, 0, 0, false},
        {"two leading dims", 2, 2, 1, 10, 14, 4, 4, false, 0, 0.1, true},
    };
    BNT_ASSERT_NO_LEAK({
        for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
            compare_with_cpu(&cases[i], BN_F64, BN_ATTN_FUSED, 1e-12, 1e-12);
    });
}

/* f16 / bf16 inputs without a mask, head dims 64 / 128: the tensor-core kernels
 * (cuda_attention_tc.cu) take them as they are; against the CPU, which computes in f32 from the
 * same rounded inputs. Dropout keeps exactly the CPU's weights. */
Test(cuda_attention, tensor_core_kernels_match_cpu_in_bf16_and_f16)
{
    NEED_GPU();
    static const attn_case cases[] = {
        {"tc mha d64", 2, 4, 4, 100, 100, 64, 64, false, 0, 0, false},
        {"tc causal d64", 2, 3, 3, 257, 257, 64, 64, true, 0, 0, false},
        {"tc gqa causal d128", 1, 8, 2, 130, 130, 128, 128, true, 0, 0, false},
        {"tc mqa kv cache tq<tk", 1, 4, 1, 33, 150, 64, 64, true, 0, 0, false},
        {"tc causal tq>tk rows see no key", 2, 2, 2, 90, 40, 64, 64, true, 0, 0, false},
        {"tc one query row", 1, 4, 2, 1, 90, 128, 128, true, 0, 0, false},
        {"tc ragged", 1, 2, 2, 17, 23, 64, 64, false, 0, 0, false},
        {"tc two leading dims", 2, 4, 2, 40, 52, 64, 64, true, 0, 0, true},
        {"tc dropout gqa causal", 2, 4, 2, 67, 70, 64, 64, true, 0, 0.3, false},
        {"tc dropout d128", 1, 2, 2, 70, 70, 128, 128, false, 0, 0.2, false},
    };
    BNT_ASSERT_NO_LEAK({
        for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
            compare_with_cpu(&cases[i], BN_BF16, BN_ATTN_FUSED, 3e-2, 3e-2);
            compare_with_cpu(&cases[i], BN_F16, BN_ATTN_FUSED, 5e-3, 5e-3);
        }
    });
}

/* out and d(sum(out * gout))/d(wide) of bn__attention_packed on a column range of wide (so the
 * rows are strided), on the GPU or the CPU; copied to the CPU, owned by the open scope. */
static void run_packed_on(const attn_case *c, bn_dtype dt, bool on_gpu, bn_tensor **res)
{
    int64_t w = (c->Hq + 2 * c->Hkv) * c->D;
    bn_manual_seed(12);
    bn_tensor *wide = bn_to_dtype(bn_randn(BN_SHAPE(c->B, c->Tq, w + 8), BN_F32), dt);
    bn_tensor *gout = bn_to_dtype(bn_randn(BN_SHAPE(c->B, c->Tq, c->Hq * c->D), BN_F32), dt);
    bn_tensor *mask = make_mask(c, dt);
    if (on_gpu) {
        wide = gpu(wide), gout = gpu(gout);
        if (mask) mask = gpu(mask);
    }
    cr_assert_eq(bn_set_requires_grad(wide, true), BN_OK);
    bn_manual_seed(99);
    bn_attention_opts o = {.mask = mask, .causal = c->causal, .dropout_p = c->p,
                           .training = c->p > 0};
    bn_tensor *out = bn__attention_packed(bn_narrow(wide, 2, 8, w), c->Hq, c->Hkv, &o);
    cr_assert_not_null(out, "%s: %s", c->name, bn_error_message());
    cr_assert_str_eq(bn_grad_fn_name(out), "AttentionPackedBackward", "%s", c->name);
    cr_assert_eq(bn_backward_ex(out, (bn_backward_opts){.grad = gout}), BN_OK, "%s: %s", c->name,
                 bn_error_message());
    res[0] = cpu(out);
    res[1] = cpu(bn_grad(wide));
}

/* Packed rows: tensor cores for bf16 / f16 (no mask, hd 64 / 128), f32 kernels otherwise. */
Test(cuda_attention, packed_rows_match_cpu)
{
    NEED_GPU();
    static const struct {
        attn_case c;
        bn_dtype dt;
        double tol;
    } cases[] = {
        {{"packed tc gpt", 2, 4, 4, 130, 130, 64, 64, true, 0, 0, false}, BN_BF16, 3e-2},
        {{"packed tc gqa d128", 1, 4, 2, 70, 70, 128, 128, true, 0, 0, false}, BN_F16, 5e-3},
        {{"packed tc dropout", 2, 2, 1, 67, 67, 64, 64, true, 0, 0.25, false}, BN_BF16, 3e-2},
        {{"packed f32 mask", 2, 4, 2, 45, 45, 32, 32, false, 1, 0, false}, BN_F32, 1e-5},
        {{"packed bf16 in f32 (d 48)", 1, 2, 2, 33, 33, 48, 48, true, 0, 0, false}, BN_BF16, 1e-2},
    };
    BNT_ASSERT_NO_LEAK({
        for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
            bn_scope_begin();
            bn_tensor *g[2], *w[2];
            run_packed_on(&cases[i].c, cases[i].dt, true, g);
            run_packed_on(&cases[i].c, cases[i].dt, false, w);
            char msg[160];
            snprintf(msg, sizeof msg, "%s: out (GPU vs CPU)", cases[i].c.name);
            bnt_assert_close(g[0], w[0], cases[i].tol, cases[i].tol, msg);
            snprintf(msg, sizeof msg, "%s: d qkv (GPU vs CPU)", cases[i].c.name);
            bnt_assert_close(g[1], w[1], cases[i].tol, cases[i].tol, msg);
            bn_scope_end();
        }
    });
}

/* f16 / bf16 inputs the tensor-core kernels do not take (a mask, head dims other than 64 and
 * 128) are converted to f32 by ops/attention.c; the kernel sees f32. */
Test(cuda_attention, half_inputs_run_in_f32)
{
    NEED_GPU();
    BNT_ASSERT_NO_LEAK({
        compare_with_cpu(&F32_CASES[2], BN_BF16, BN_ATTN_FUSED, 1e-2, 1e-2);
        compare_with_cpu(&F32_CASES[3], BN_F16, BN_ATTN_FUSED, 1e-3, 1e-3);
    });
}

Test(cuda_attention, results_are_bitwise_repeatable)
{
    NEED_GPU();
    static const attn_case cases[] = {
        {"gqa partial sums", 1, 6, 2, 200, 200, 64, 64, true, 1, 0.1, false},
        {"mha", 2, 4, 4, 129, 129, 128, 128, false, 0, 0, false},
    };
    BNT_ASSERT_NO_LEAK({
        for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
            bn_scope_begin();
            bn_tensor *a[4], *b[4];
            run_on(&cases[i], BN_F32, true, BN_ATTN_FUSED, a);
            run_on(&cases[i], BN_F32, true, BN_ATTN_FUSED, b);
            for (int j = 0; j < 4; j++) bnt_assert_equal(a[j], b[j], cases[i].name);
            bn_scope_end();
        }
    });
}

Test(cuda_attention, dropout_drops_the_cpu_weights_only_when_training)
{
    NEED_GPU();
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_manual_seed(5);
        /* v = ones: each output element is the kept weight mass times 1/(1-p), about 1 */
        bn_tensor *q = gpu(bn_randn(BN_SHAPE(2, 4, 64, 16), BN_F32));
        bn_tensor *k = gpu(bn_randn(BN_SHAPE(2, 4, 64, 16), BN_F32));
        bn_tensor *v = gpu(bn_ones(BN_SHAPE(2, 4, 64, 4), BN_F32));
        bn_attention_opts o = {.dropout_p = 0.4, .training = true};
        bn_tensor *out = bn_attention(q, k, v, &o);
        cr_assert_not_null(out, "%s", bn_error_message());
        double mean = bn_item(bn_mean(out, BN_ALL, false));
        cr_assert(fabs(mean - 1.0) < 0.03, "mean kept weight mass %g, expected about 1", mean);
        bn_tensor *out2 = bn_attention(q, k, v, &o); /* a new reservation: other draws */
        cr_assert_gt(bn_item(bn_max(bn_abs(bn_sub(out, out2)), BN_ALL, false)), 0.01);
        o.training = false;
        bn_tensor *ev = bn_attention(q, k, v, &o);
        bnt_assert_close(cpu(ev), bn_ones(BN_SHAPE(2, 4, 64, 4), BN_F32), 1e-6, 1e-6,
                         "eval: no dropout");
        bn_scope_end();
    });
}

Test(cuda_attention, empty_and_keyless_inputs)
{
    NEED_GPU();
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_tensor *q = gpu(bn_randn(BN_SHAPE(2, 2, 3, 4), BN_F32));
        bn_tensor *k = gpu(bn_randn(BN_SHAPE(2, 2, 0, 4), BN_F32));
        cr_assert_eq(bn_set_requires_grad(q, true), BN_OK);
        bn_tensor *out = bn_attention(q, k, k, &(bn_attention_opts){.impl = BN_ATTN_FUSED});
        cr_assert_not_null(out, "%s", bn_error_message());
        bnt_assert_close(cpu(out), bn_zeros(BN_SHAPE(2, 2, 3, 4), BN_F32), 0, 0, "no keys");
        cr_assert_eq(bn_backward(bn_sum(out, BN_ALL, false)), BN_OK, "%s", bn_error_message());
        bnt_assert_close(cpu(bn_grad(q)), bn_zeros(BN_SHAPE(2, 2, 3, 4), BN_F32), 0, 0,
                         "no keys: dq");
        bn_tensor *q0 = gpu(bn_randn(BN_SHAPE(2, 2, 0, 4), BN_F32));
        bn_tensor *kv = gpu(bn_randn(BN_SHAPE(2, 2, 5, 4), BN_F32));
        bn_tensor *out0 = bn_attention(q0, kv, kv, &(bn_attention_opts){.impl = BN_ATTN_FUSED});
        cr_assert_not_null(out0, "%s", bn_error_message());
        cr_assert_eq(bn_numel(out0), 0);
        bn_scope_end();
    });
}

Test(cuda_attention, bad_inputs_fail_with_a_message_and_leak_nothing)
{
    NEED_GPU();
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        /* a head dim past the kernel's: unsupported, not a fallback */
        bn_tensor *big = gpu(bn_randn(BN_SHAPE(1, 2, 4, 300), BN_F32));
        cr_assert_null(bn_attention(big, big, big, &(bn_attention_opts){.impl = BN_ATTN_FUSED}));
        bnt_assert_error(BN_ERR_UNSUPPORTED, "attention", "300", "256", NULL);
        /* operands on different devices */
        bn_tensor *q = gpu(bn_randn(BN_SHAPE(1, 2, 4, 8), BN_F32));
        bn_tensor *kc = bn_randn(BN_SHAPE(1, 2, 4, 8), BN_F32);
        cr_assert_null(bn_attention(q, kc, kc, NULL));
        bnt_assert_error(BN_ERR_DEVICE, "bn_attention", "different devices", NULL);
        bn_tensor *mc = bn_ones(BN_SHAPE(4, 4), BN_BOOL);
        cr_assert_null(bn_attention(q, q, q, &(bn_attention_opts){.mask = mc}));
        bnt_assert_error(BN_ERR_DEVICE, "bn_attention", "different devices", NULL);
        /* the op's own checks hold on the GPU too */
        bn_tensor *mi = gpu(bn_ones(BN_SHAPE(4, 4), BN_I32));
        cr_assert_null(bn_attention(q, q, q, &(bn_attention_opts){.mask = mi}));
        bnt_assert_error(BN_ERR_DTYPE, "bn_attention", "mask", "i32", NULL);
        bn_scope_end();
    });
}

/* ---- timing (not a check) ------------------------------------------------------------------- */
static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* median seconds of reps causal f32 runs: forward only, or forward + backward */
static double time_attention(bn_tensor *q, bn_tensor *k, bn_tensor *v, bool backward, int reps)
{
    double t[16];
    for (int r = -1; r < reps; r++) { /* r = -1: warm-up */
        bn_scope_begin();
        cr_assert_eq(bn_cuda_synchronize(0), BN_OK);
        double t0 = now_s();
        bn_tensor *out = bn_attention(q, k, v, &(bn_attention_opts){.causal = true});
        cr_assert_not_null(out, "%s", bn_error_message());
        if (backward) cr_assert_eq(bn_backward(bn_sum(out, BN_ALL, false)), BN_OK);
        cr_assert_eq(bn_cuda_synchronize(0), BN_OK);
        if (r >= 0) t[r] = now_s() - t0;
        bn_scope_end();
    }
    qsort(t, (size_t)reps, sizeof *t, cmp_double);
    return t[reps / 2];
}

Test(cuda_attention, gpt_shapes_time_is_logged)
{
    NEED_GPU();
    static const int64_t shapes[2][4] = {{8, 12, 1024, 64}, {1, 12, 4096, 64}};
    BNT_ASSERT_NO_LEAK({
        for (int s = 0; s < 2; s++) {
            int64_t B = shapes[s][0], H = shapes[s][1], T = shapes[s][2], D = shapes[s][3];
            bn_scope_begin();
            bn_tensor *q = gpu(bn_randn(BN_SHAPE(B, H, T, D), BN_F32));
            bn_tensor *k = gpu(bn_randn(BN_SHAPE(B, H, T, D), BN_F32));
            bn_tensor *v = gpu(bn_randn(BN_SHAPE(B, H, T, D), BN_F32));
            double fwd = time_attention(q, k, v, false, 7);
            bn_tensor *in[3] = {q, k, v};
            for (int i = 0; i < 3; i++) cr_assert_eq(bn_set_requires_grad(in[i], true), BN_OK);
            double both = time_attention(q, k, v, true, 7);
            double flops = 4.0 * (double)(B * H) * (double)T * (double)T * (double)D / 2;
            cr_log_info("attention f32 causal (B %lld, H %lld, T %lld, D %lld): forward %.3f ms "
                        "(%.1f TFLOP/s), forward+backward %.3f ms (%.1f TFLOP/s at 3.5x)",
                        (long long)B, (long long)H, (long long)T, (long long)D, fwd * 1e3,
                        flops / fwd * 1e-12, both * 1e3, 3.5 * flops / both * 1e-12);
            bn_scope_end();
        }
    });
}
