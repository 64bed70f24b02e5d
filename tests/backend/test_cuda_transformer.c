/* tests/backend/test_cuda_transformer.c — the CUDA fused element-wise transformer kernels
 * (cuda_transformer.cu: gated activations forward and backward, rotary embeddings) and the
 * chunked fused classifier + cross-entropy (composed of ops) on the GPU, against the CPU backend,
 * which tests/unit/ checks against PyTorch:
 *   - bn_gated_activation, all five kinds, f32/f64/f16/bf16, contiguous and row-strided inputs,
 *     2-D and 3-D, F not a multiple of the block; outputs and gradients through autograd;
 *     f32 also against the unfused GPU path (narrow, activation, mul) to a few ulp;
 *   - bn_rope: half-split and interleaved pairs, partial rotary_dim (pass-through dims), an
 *     offset, explicit (T) and (B, T) positions, inputs with free strides (a transposed
 *     (B, T, H, D) tensor), 2-D to 4-D; outputs and gradients (the rotation by -angle);
 *   - f64 finite-difference gradient checks of both through the GPU;
 *   - bn_linear_cross_entropy on enough rows for several chunks on either device, mean / sum / none, label
 *     smoothing and ignored rows, with the gradients of x, w and b;
 *   - bad inputs on the GPU: the error code, the message, no leak.
 * Tolerances: f32 rel 1e-5 (the GPU's expf/erff/tanhf against the CPU's vmath), f64 1e-12,
 * f16/bf16 one unit of the last place. Without a GPU every device test skips. */
#include "bn_test.h"
#include "bn_test_cuda.h"

#include "born/autograd.h"
#include "born/cuda.h"
#include "born/transformer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static double rtol_of(bn_dtype dt)
{
    switch (dt) {
    case BN_F32: return 1e-5;
    case BN_F64: return 1e-12;
    case BN_F16: return 2e-3;
    default: return 1.6e-2;
    }
}
static double atol_of(bn_dtype dt)
{
    switch (dt) {
    case BN_F32: return 1e-6;
    case BN_F64: return 1e-12;
    case BN_F16: return 1e-3;
    default: return 1e-2;
    }
}

static const bn_dtype float_types[] = {BN_F32, BN_F64, BN_F16, BN_BF16};
static const char *const glu_names[] = {"swiglu", "geglu", "geglu_tanh", "reglu", "sigmoid"};

/* ---- gated activations ------------------------------------------------------------------------ */
typedef struct glu_case {
    int64_t rows, lead, F; /* x (lead, rows, 2F) when lead > 0, else (rows, 2F) */
    int64_t pad;           /* > 0: x is columns [pad, pad + 2F) of a (.., 2F + 2 pad) tensor */
} glu_case;

static bn_shape glu_shape(const glu_case *c, int64_t last)
{
    return c->lead > 0 ? BN_SHAPE(c->lead, c->rows, last) : BN_SHAPE(c->rows, last);
}

/* out and d(sum(out * gout))/dbase on the GPU or the CPU, both copied to the CPU (open scope).
 * fused = false composes narrow, the activation and mul instead of bn_gated_activation. */
static void glu_run(const glu_case *c, int kind, bn_dtype dt, bool on_gpu, bool fused,
                    bn_tensor **res)
{
    bn_manual_seed(7);
    int64_t width = 2 * c->F + 2 * c->pad;
    bn_tensor *base = bn_to_dtype(bn_mul_scalar(bn_randn(glu_shape(c, width), BN_F64), 2.0), dt);
    bn_tensor *gout = bn_to_dtype(bn_randn(glu_shape(c, c->F), BN_F64), dt);
    if (on_gpu) base = gpu(base), gout = gpu(gout);
    cr_assert_not_null(base, "%s", bn_error_message());
    cr_assert_eq(bn_set_requires_grad(base, true), BN_OK);
    int last = c->lead > 0 ? 2 : 1;
    bn_tensor *x = c->pad > 0 ? bn_narrow(base, last, c->pad, 2 * c->F) : base;
    bn_tensor *out;
    if (fused) {
        out = bn_gated_activation(x, (bn_glu_kind)kind);
        cr_assert_not_null(out, "%s: %s", glu_names[kind], bn_error_message());
        cr_assert_str_eq(bn_grad_fn_name(out), "GatedActivationBackward");
    } else {
        bn_tensor *a = bn_narrow(x, last, 0, c->F), *b = bn_narrow(x, last, c->F, c->F), *act;
        switch (kind) {
        case BN_GLU_SWIGLU: act = bn_silu(a); break;
        case BN_GLU_GEGLU: act = bn_gelu(a); break;
        case BN_GLU_GEGLU_TANH: act = bn_gelu_tanh(a); break;
        case BN_GLU_REGLU: act = bn_relu(a); break;
        default: act = bn_sigmoid(a); break;
        }
        out = bn_mul(act, b);
        cr_assert_not_null(out, "%s composed: %s", glu_names[kind], bn_error_message());
    }
    cr_assert_eq(bn_device_of(out).type, on_gpu ? BN_DEVICE_CUDA : BN_DEVICE_CPU);
    cr_assert_eq(bn_backward_ex(out, (bn_backward_opts){.grad = gout}), BN_OK, "%s: %s",
                 glu_names[kind], bn_error_message());
    res[0] = cpu(out);
    res[1] = cpu(bn_grad(base));
    cr_assert_not_null(res[1], "%s: no gradient", glu_names[kind]);
}

static void glu_compare(const glu_case *c, int kind, bn_dtype dt)
{
    bn_scope_begin();
    bn_tensor *g[2], *w[2];
    glu_run(c, kind, dt, true, true, g);
    glu_run(c, kind, dt, false, true, w);
    static const char *const what[2] = {"out", "dx"};
    for (int i = 0; i < 2; i++) {
        char msg[200];
        snprintf(msg, sizeof msg, "gated %s %s %s (GPU vs CPU): rows %lld lead %lld F %lld pad %lld",
                 glu_names[kind], bn_dtype_name(dt), what[i], (long long)c->rows,
                 (long long)c->lead, (long long)c->F, (long long)c->pad);
        /* gelu_tanh's derivative cancels near its zero crossing, where the CPU's vectorised
         * tanh (<= 2 ulp, test_vmath) and CUDA's tanhf part by ~1e-5 absolute */
        double atol = kind == BN_GLU_GEGLU_TANH && dt == BN_F32 ? 2e-5 : atol_of(dt);
        bnt_assert_close(g[i], w[i], rtol_of(dt), atol, msg);
    }
    bn_scope_end();
}

static const glu_case GLU_CASES[] = {
    {1, 0, 1, 0},   {7, 0, 33, 0},  {64, 0, 256, 0}, {5, 3, 300, 0},
    {9, 0, 40, 3},  {4, 2, 17, 5},  {300, 0, 700, 0}, {0, 0, 8, 0},
};

Test(cuda_transformer, gated_activation_matches_cpu)
{
    NEED_GPU();
    BNT_ASSERT_NO_LEAK({
        for (size_t t = 0; t < sizeof float_types / sizeof *float_types; t++)
            for (int kind = 0; kind <= BN_GLU_SIGMOID; kind++)
                for (size_t i = 0; i < sizeof GLU_CASES / sizeof *GLU_CASES; i++)
                    glu_compare(&GLU_CASES[i], kind, float_types[t]);
    });
}

/* The fused kernel runs the unfused GPU path's arithmetic: f32 outputs agree to a few ulp, f64
 * to rounding. The unfused gradient takes the activation's derivative through its own fused
 * pass (BN_BINARY_*_GRAD), whose formula rounds differently where 1 - t^2 cancels: f32 dx
 * agrees to 2e-6. */
Test(cuda_transformer, gated_activation_matches_the_unfused_gpu_path)
{
    NEED_GPU();
    static const glu_case c = {37, 2, 129, 2};
    BNT_ASSERT_NO_LEAK({
        for (int t = 0; t < 2; t++) {
            bn_dtype dt = t == 0 ? BN_F32 : BN_F64;
            double tol = t == 0 ? 5e-7 : 1e-14;
            for (int kind = 0; kind <= BN_GLU_SIGMOID; kind++) {
                bn_scope_begin();
                bn_tensor *f[2], *u[2];
                glu_run(&c, kind, dt, true, true, f);
                glu_run(&c, kind, dt, true, false, u);
                char msg[120];
                snprintf(msg, sizeof msg, "gated %s %s fused vs unfused on the GPU: out",
                         glu_names[kind], bn_dtype_name(dt));
                bnt_assert_close(f[0], u[0], tol, tol, msg);
                snprintf(msg, sizeof msg, "gated %s %s fused vs unfused on the GPU: dx",
                         glu_names[kind], bn_dtype_name(dt));
                double dtol = t == 0 ? 2e-6 : tol;
                bnt_assert_close(f[1], u[1], dtol, dtol, msg);
                bn_scope_end();
            }
        }
    });
}

/* act(a) * b composed of the GPU's unary and binary kernels */
static bn_tensor *glu_unfused(const bn_tensor *x, int kind, int64_t F)
{
    bn_tensor *a = bn_narrow(x, 1, 0, F), *b = bn_narrow(x, 1, F, F), *act;
    switch (kind) {
    case BN_GLU_SWIGLU: act = bn_silu(a); break;
    case BN_GLU_GEGLU: act = bn_gelu(a); break;
    case BN_GLU_GEGLU_TANH: act = bn_gelu_tanh(a); break;
    case BN_GLU_REGLU: act = bn_relu(a); break;
    default: act = bn_sigmoid(a); break;
    }
    return bn_mul(act, b);
}

/* Zeros, tiny, huge, infinite and NaN halves: the fused kernel gives what the unfused GPU path
 * gives (NaN where it gives NaN), and f64 what the CPU gives. */
Test(cuda_transformer, gated_activation_special_values_match_the_unfused_path)
{
    NEED_GPU();
    const double v[] = {0.0, -0.0, 1e-30, -1e-30, 30.0, -30.0, 100.0, -100.0, NAN, INFINITY,
                        -INFINITY, 0.5, 1.0, -1.0, 3.0, -3.0};
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        /* every (a, b) pair of the values as one row: x (256, 2) */
        double xs[16 * 16 * 2];
        for (int i = 0; i < 16; i++)
            for (int j = 0; j < 16; j++) {
                xs[(i * 16 + j) * 2] = v[i];
                xs[(i * 16 + j) * 2 + 1] = v[j];
            }
        bn_tensor *x64 = bn_from_data(xs, BN_SHAPE(256, 2), BN_F64);
        for (int t = 0; t < 2; t++) {
            bn_dtype dt = t == 0 ? BN_F32 : BN_F64;
            bn_tensor *x = gpu(bn_to_dtype(x64, dt));
            for (int kind = 0; kind <= BN_GLU_SIGMOID; kind++) {
                bn_tensor *g = bn_gated_activation(x, (bn_glu_kind)kind);
                cr_assert_not_null(g, "%s", bn_error_message());
                char msg[80];
                snprintf(msg, sizeof msg, "gated %s %s special values vs unfused",
                         glu_names[kind], bn_dtype_name(dt));
                bnt_assert_close(cpu(g), cpu(glu_unfused(x, kind, 1)), 5e-7, 0, msg);
                if (dt == BN_F64) {
                    snprintf(msg, sizeof msg, "gated %s f64 special values vs CPU",
                             glu_names[kind]);
                    bnt_assert_close(cpu(g), bn_gated_activation(cpu(x), (bn_glu_kind)kind),
                                     1e-12, 0, msg);
                }
            }
        }
        bn_scope_end();
    });
}

static bn_tensor *glu_on_gpu(void *ctx, bn_tensor *const *in, int n)
{
    (void)n;
    return cpu(bn_gated_activation(gpu(in[0]), (bn_glu_kind)(intptr_t)ctx));
}

Test(cuda_transformer, gated_activation_gradcheck_through_the_gpu)
{
    NEED_GPU();
    BNT_ASSERT_NO_LEAK({
        for (int kind = 0; kind <= BN_GLU_SIGMOID; kind++) {
            bn_manual_seed(3 + kind);
            bn_tensor *x = bnt_param(BN_SHAPE(3, 2, 10), -2, 2);
            char what[64];
            snprintf(what, sizeof what, "gated %s on the GPU", glu_names[kind]);
            bnt_gradcheck(what, glu_on_gpu, (void *)(intptr_t)kind, &x, 1);
            bn_release(x);
        }
    });
}

/* ---- rotary embeddings ------------------------------------------------------------------------ */
typedef struct rope_case {
    const char *name;
    int ndim;           /* 2: (T, D), 3: (H, T, D), 4: (B, H, T, D) */
    int64_t B, H, T, D; /* unused leading sizes ignored */
    int64_t rotary_dim, offset;
    bool interleaved;
    int positions;   /* 0 none, 1 (T), 2 (B, T) */
    bool transposed; /* x is a (B, T, H, D) tensor transposed to (B, H, T, D) */
} rope_case;

static bn_tensor *rope_input(const rope_case *c, bn_dtype dt)
{
    switch (c->ndim) {
    case 2: return bn_to_dtype(bn_randn(BN_SHAPE(c->T, c->D), BN_F64), dt);
    case 3: return bn_to_dtype(bn_randn(BN_SHAPE(c->H, c->T, c->D), BN_F64), dt);
    default:
        if (c->transposed)
            return bn_to_dtype(bn_randn(BN_SHAPE(c->B, c->T, c->H, c->D), BN_F64), dt);
        return bn_to_dtype(bn_randn(BN_SHAPE(c->B, c->H, c->T, c->D), BN_F64), dt);
    }
}

static void rope_run(const rope_case *c, bn_dtype dt, bool on_gpu, bn_tensor **res)
{
    bn_manual_seed(21);
    bn_tensor *base = rope_input(c, dt);
    bn_tensor *pos = NULL;
    if (c->positions == 1) pos = bn_randint(0, 5000, BN_SHAPE(c->T), BN_I64);
    if (c->positions == 2) pos = bn_randint(0, 5000, BN_SHAPE(c->B, c->T), BN_I32);
    if (on_gpu) {
        base = gpu(base);
        if (pos) pos = gpu(pos);
    }
    cr_assert_eq(bn_set_requires_grad(base, true), BN_OK);
    bn_tensor *x = c->transposed ? bn_transpose(base, 1, 2) : base;
    bn_tensor *gout = bn_to_dtype(bn_randn(bn_shape_of(x), BN_F64), dt);
    if (on_gpu) gout = gpu(gout);
    bn_rope_opts o = {.rotary_dim = c->rotary_dim,
                      .interleaved = c->interleaved,
                      .offset = c->offset,
                      .positions = pos};
    bn_tensor *out = bn_rope(x, &o);
    cr_assert_not_null(out, "%s: %s", c->name, bn_error_message());
    cr_assert_eq(bn_device_of(out).type, on_gpu ? BN_DEVICE_CUDA : BN_DEVICE_CPU);
    cr_assert_str_eq(bn_grad_fn_name(out), "RopeBackward", "%s: not the fused kernel", c->name);
    cr_assert_eq(bn_backward_ex(out, (bn_backward_opts){.grad = gout}), BN_OK, "%s: %s", c->name,
                 bn_error_message());
    res[0] = cpu(out);
    res[1] = cpu(bn_grad(base));
    cr_assert_not_null(res[1], "%s: no gradient", c->name);
}

static const rope_case ROPE_CASES[] = {
    {"llama half-split", 4, 2, 4, 33, 64, 0, 0, false, 0, false},
    {"interleaved", 4, 2, 3, 17, 32, 0, 0, true, 0, false},
    {"partial rotary dim", 4, 1, 2, 20, 48, 16, 0, false, 0, false},
    {"partial interleaved", 3, 0, 3, 9, 40, 24, 0, true, 0, false},
    {"offset (kv cache)", 4, 2, 2, 1, 128, 0, 1000, false, 0, false},
    {"positions (T)", 4, 2, 2, 15, 32, 0, 0, false, 1, false},
    {"positions (B, T)", 4, 3, 2, 11, 16, 8, 0, true, 2, false},
    {"transposed input", 4, 2, 4, 19, 64, 0, 7, false, 0, true},
    {"transposed interleaved positions", 4, 2, 3, 13, 32, 0, 0, true, 2, true},
    {"2-D", 2, 0, 0, 50, 8, 0, 3, false, 0, false},
    {"rotary dim 2", 3, 0, 2, 5, 6, 2, 0, false, 0, false},
    {"no rows", 4, 2, 2, 0, 16, 0, 0, false, 0, false},
};

Test(cuda_transformer, rope_matches_cpu)
{
    NEED_GPU();
    BNT_ASSERT_NO_LEAK({
        for (size_t t = 0; t < sizeof float_types / sizeof *float_types; t++)
            for (size_t i = 0; i < sizeof ROPE_CASES / sizeof *ROPE_CASES; i++) {
                bn_dtype dt = float_types[t];
                bn_scope_begin();
                bn_tensor *g[2], *w[2];
                rope_run(&ROPE_CASES[i], dt, true, g);
                rope_run(&ROPE_CASES[i], dt, false, w);
                static const char *const what[2] = {"out", "dx"};
                for (int k = 0; k < 2; k++) {
                    char msg[160];
                    snprintf(msg, sizeof msg, "rope %s %s %s (GPU vs CPU)", ROPE_CASES[i].name,
                             bn_dtype_name(dt), what[k]);
                    bnt_assert_close(g[k], w[k], rtol_of(dt), atol_of(dt), msg);
                }
                bn_scope_end();
            }
    });
}

static bn_tensor *rope_on_gpu(void *ctx, bn_tensor *const *in, int n)
{
    (void)n;
    return cpu(bn_rope(gpu(in[0]), (const bn_rope_opts *)ctx));
}

Test(cuda_transformer, rope_gradcheck_through_the_gpu)
{
    NEED_GPU();
    BNT_ASSERT_NO_LEAK({
        bn_rope_opts o[2] = {{.rotary_dim = 4, .offset = 5}, {.interleaved = true}};
        for (int i = 0; i < 2; i++) {
            bn_manual_seed(40 + i);
            bn_tensor *x = bnt_param(BN_SHAPE(2, 2, 5, 6), -1, 1);
            bnt_gradcheck(i == 0 ? "rope partial on the GPU" : "rope interleaved on the GPU",
                          rope_on_gpu, &o[i], &x, 1);
            bn_release(x);
        }
    });
}

/* ---- chunked linear + cross-entropy ----------------------------------------------------------- */
/* N rows, D = 32, V classes; the results (loss, dx, dw, db) on the CPU in res */
static void lce_run_n(bn_dtype dt, bn_ce_opts o, bool on_gpu, int64_t N, int64_t V,
                      bn_tensor **res)
{
    const int64_t D = 32;
    bn_manual_seed(5);
    bn_tensor *x = bn_to_dtype(bn_randn(BN_SHAPE(N, D), BN_F64), dt);
    bn_tensor *w = bn_to_dtype(bn_mul_scalar(bn_randn(BN_SHAPE(V, D), BN_F64), 0.2), dt);
    bn_tensor *b = bn_to_dtype(bn_mul_scalar(bn_randn(BN_SHAPE(V), BN_F64), 0.1), dt);
    bn_tensor *t = bn_randint(0, V, BN_SHAPE(N), BN_I64);
    if (o.use_ignore_index) { /* every 7th row ignored */
        bn_tensor *m = bn_eq_scalar(bn_remainder_scalar(bn_arange(0, (double)N, 1, BN_I64), 7), 0);
        t = bn_masked_fill(t, m, (double)o.ignore_index);
    }
    if (on_gpu) x = gpu(x), w = gpu(w), b = gpu(b), t = gpu(t);
    bn_tensor *in[3] = {x, w, b};
    for (int i = 0; i < 3; i++) cr_assert_eq(bn_set_requires_grad(in[i], true), BN_OK);
    bn_tensor *loss = bn_linear_cross_entropy(x, w, b, t, o);
    cr_assert_not_null(loss, "linear_cross_entropy: %s", bn_error_message());
    cr_assert_eq(bn_device_of(loss).type, on_gpu ? BN_DEVICE_CUDA : BN_DEVICE_CPU);
    bn_tensor *s = o.reduction == BN_REDUCTION_NONE ? bn_sum(bn_mul_scalar(loss, 0.01), 0, false) : loss;
    cr_assert_eq(bn_backward(s), BN_OK, "%s", bn_error_message());
    res[0] = cpu(loss);
    for (int i = 0; i < 3; i++) res[i + 1] = cpu(bn_grad(in[i]));
}

/* 144 MB of f32 logits: one chunk on the GPU, many on the CPU */
static void lce_run(bn_dtype dt, bn_ce_opts o, bool on_gpu, bn_tensor **res)
{
    lce_run_n(dt, o, on_gpu, 4500, 8000, res);
}

Test(cuda_transformer, linear_cross_entropy_matches_cpu)
{
    NEED_GPU();
    const bn_ce_opts opts[] = {
        {.reduction = BN_REDUCTION_MEAN},
        {.reduction = BN_REDUCTION_SUM, .label_smoothing = 0.1},
        {.reduction = BN_REDUCTION_NONE, .use_ignore_index = true, .ignore_index = -100},
        {.reduction = BN_REDUCTION_MEAN, .label_smoothing = 0.2, .use_ignore_index = true,
         .ignore_index = -1},
    };
    BNT_ASSERT_NO_LEAK({
        for (int t = 0; t < 2; t++) {
            bn_dtype dt = t == 0 ? BN_F32 : BN_F64;
            double rtol = t == 0 ? 1e-4 : 1e-10, atol = t == 0 ? 1e-5 : 1e-12;
            for (size_t i = 0; i < sizeof opts / sizeof *opts; i++) {
                bn_scope_begin();
                bn_tensor *g[4], *w[4];
                /* 1.15 GB of f32 logits: 2 chunks of the GPU's 1 GiB budget (3 in f64) */
                lce_run_n(dt, opts[i], true, 9000, 32000, g);
                lce_run_n(dt, opts[i], false, 9000, 32000, w);
                static const char *const what[4] = {"loss", "dx", "dw", "db"};
                for (int k = 0; k < 4; k++) {
                    char msg[120];
                    snprintf(msg, sizeof msg, "linear_cross_entropy %s opts %zu %s (GPU vs CPU)",
                             bn_dtype_name(dt), i, what[k]);
                    bnt_assert_close(g[k], w[k], rtol, atol, msg);
                }
                bn_scope_end();
            }
        }
    });
}

/* bf16 / f16 on the GPU: the three products on tensor cores in the input dtype (the logits
 * chunk widened to f32 for the softmax statistics, the loss in f32); against the CPU's f32
 * computation from the same rounded inputs, to the low dtype's precision relative to each
 * result's largest value. */
Test(cuda_transformer, linear_cross_entropy_in_bf16_and_f16_matches_cpu_f32)
{
    NEED_GPU();
    /* f16 takes sums: a mean's 1/N puts the logits' gradients in f16's subnormal range, where
     * they lose their digits (f16 training needs loss scaling for that reason) */
    const bn_ce_opts opts[2][2] = {
        {{.reduction = BN_REDUCTION_MEAN},
         {.reduction = BN_REDUCTION_MEAN, .label_smoothing = 0.2, .use_ignore_index = true,
          .ignore_index = -1}},
        {{.reduction = BN_REDUCTION_SUM},
         {.reduction = BN_REDUCTION_SUM, .label_smoothing = 0.2, .use_ignore_index = true,
          .ignore_index = -1}},
    };
    BNT_ASSERT_NO_LEAK({
        for (int t = 0; t < 2; t++) {
            bn_dtype dt = t == 0 ? BN_BF16 : BN_F16;
            double rel = 2e-2; /* relative to each result's largest value */
            for (size_t i = 0; i < 2; i++) {
                bn_scope_begin();
                bn_tensor *g[4], *w[4];
                lce_run(dt, opts[t][i], true, g);
                lce_run(dt, opts[t][i], false, w);
                static const char *const what[4] = {"loss", "dx", "dw", "db"};
                for (int k = 0; k < 4; k++) {
                    cr_assert_eq(bn_dtype_of(g[k]), k == 0 ? BN_F32 : dt, "%s's dtype", what[k]);
                    char msg[120];
                    snprintf(msg, sizeof msg, "linear_cross_entropy %s opts %zu %s (GPU vs CPU)",
                             bn_dtype_name(dt), i, what[k]);
                    bn_tensor *wf = bn_to_dtype(w[k], BN_F32);
                    double big = bn_item(bn_max(bn_abs(wf), BN_ALL, false));
                    bnt_assert_close(bn_to_dtype(g[k], BN_F32), wf, rel, rel * big, msg);
                }
                bn_scope_end();
            }
        }
    });
}

/* ---- bad inputs on the GPU -------------------------------------------------------------------- */
Test(cuda_transformer, bad_inputs_are_clear_errors)
{
    NEED_GPU();
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_tensor *xi = gpu(bn_zeros(BN_SHAPE(3, 4), BN_I32));
        cr_assert_null(bn_gated_activation(xi, BN_GLU_SWIGLU));
        bnt_assert_error(BN_ERR_DTYPE, "bn_gated_activation", "i32", NULL);
        bn_tensor *odd = gpu(bn_zeros(BN_SHAPE(3, 5), BN_F32));
        cr_assert_null(bn_gated_activation(odd, BN_GLU_GEGLU));
        bnt_assert_error(BN_ERR_SHAPE, "bn_gated_activation", "[3, 5]", NULL);
        bn_tensor *x = gpu(bn_zeros(BN_SHAPE(3, 4), BN_F32));
        cr_assert_null(bn_gated_activation(x, (bn_glu_kind)9));
        bnt_assert_error(BN_ERR_ARG, "bn_gated_activation", "kind 9", NULL);

        bn_tensor *r = gpu(bn_zeros(BN_SHAPE(2, 3, 8), BN_F32));
        bn_rope_opts o = {.positions = bn_zeros(BN_SHAPE(3), BN_I64)}; /* on the CPU */
        cr_assert_null(bn_rope(r, &o));
        bnt_assert_error(BN_ERR_DEVICE, "bn_rope", NULL);
        o.positions = gpu(bn_zeros(BN_SHAPE(4), BN_I64)); /* T is 3 */
        cr_assert_null(bn_rope(r, &o));
        bnt_assert_error(BN_ERR_SHAPE, "bn_rope", "positions", NULL);
        bn_rope_opts odd_rd = {.rotary_dim = 3};
        cr_assert_null(bn_rope(r, &odd_rd));
        bnt_assert_error(BN_ERR_ARG, "bn_rope", "rotary_dim", NULL);
        cr_assert_null(bn_rope(gpu(bn_zeros(BN_SHAPE(3, 8), BN_I64)), NULL));
        bnt_assert_error(BN_ERR_DTYPE, "bn_rope", "i64", NULL);

        bn_tensor *lx = gpu(bn_zeros(BN_SHAPE(4, 3), BN_F32));
        bn_tensor *lw = gpu(bn_zeros(BN_SHAPE(5, 3), BN_F32));
        bn_tensor *lt = bn_zeros(BN_SHAPE(4), BN_I64); /* on the CPU */
        cr_assert_null(bn_linear_cross_entropy(lx, lw, NULL, lt, (bn_ce_opts){0}));
        bnt_assert_error(BN_ERR_DEVICE, "bn_linear_cross_entropy", NULL);
        bn_tensor *lw2 = gpu(bn_zeros(BN_SHAPE(5, 2), BN_F32));
        cr_assert_null(bn_linear_cross_entropy(lx, lw2, NULL, gpu(lt), (bn_ce_opts){0}));
        bnt_assert_error(BN_ERR_SHAPE, "bn_linear_cross_entropy", NULL);
        bn_scope_end();
    });
}
