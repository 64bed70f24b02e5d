/* tests/unit/test_vmath.c — the vectorised f32 math of src/backend/cpu/vmath*.{c,h} (issue 4)
 * against a double-precision libm reference, for every variant this CPU has (portable, avx2,
 * avx512): 10M values spread uniformly over the f32 bit patterns (1M under the sanitizers;
 * BORN_VMATH_SWEEP overrides), every f32 in the ranges around each function's thresholds and
 * branch points, and the special values; the variants must agree bit for bit, an element's
 * result must not depend on its position (vector body or tail), and the unary / softmax kernels
 * that use them must give the same bits for strided inputs and for 1 and 2 threads.
 * No fixture file: the reference is libm in double.
 *
 * The polynomial coefficients in vmath_kernel.h come from scripts/fit_vmath.py (a relative
 * least-squares fit against mpmath, f32-rounded): e^r on |r| <= ln2/2 (degree 5 of
 * (e^r-1-r)/r^2), log1p(f) on [sqrt(1/2)-1, sqrt 2-1] (degree 8 of (log1p f - f + f^2/2)/f^3),
 * tanh on |x| < 0.625 (degree 5 in x^2), erf on |x| < 1 (degree 7 in x^2), and x e^{x^2} erfc(x)
 * as degree 8 in 1/x on [1, 2.5] and [2.5, 10]. */
#include "bn_test.h"

#include "backend/cpu/vmath.h"
#include "born/info.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- reference and tolerance ------------------------------------------------------------- */
#define SOFTPLUS_BETA 1.0f
#define SOFTPLUS_THRESHOLD 20.0f
#define ELU_ALPHA 1.0f

static const char *const OP_NAMES[BN_VM_OP_COUNT] = {"exp",      "log",  "tanh",      "sigmoid",
                                                     "erf",      "gelu", "gelu_tanh", "silu",
                                                     "softplus", "elu"};

static double reference(bn_vm_op op, double x)
{
    switch (op) {
    case BN_VM_EXP: return exp(x);
    case BN_VM_LOG: return log(x);
    case BN_VM_TANH: return tanh(x);
    case BN_VM_SIGMOID: return x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x));
    case BN_VM_ERF: return erf(x);
    case BN_VM_GELU: return 0.5 * x * erfc(-x / sqrt(2.0));
    case BN_VM_GELU_TANH: {
        double k = 0.7978845608028654 * (x + 0.044715 * x * x * x);
        return x / (1 + exp(-2 * k)); /* x/2 (1 + tanh k) without cancellation */
    }
    case BN_VM_SILU: return x >= 0 ? x / (1 + exp(-x)) : x * exp(x) / (1 + exp(x));
    case BN_VM_SOFTPLUS: {
        double y = x * SOFTPLUS_BETA;
        return y > SOFTPLUS_THRESHOLD ? x : log1p(exp(y)) / SOFTPLUS_BETA;
    }
    case BN_VM_ELU: return x > 0 ? x : ELU_ALPHA * expm1(x);
    default: return NAN;
    }
}

/* Asserted bounds, in ulps of the f32 result (denormal results in denormal ulps), plus where
 * the f32 formula itself is ill-conditioned: gelu_tanh's f32 argument k carries a relative
 * error ~1e-7 that e^{2k} multiplies by |2k| for very negative x (rel_floor), and the denormal
 * results of silu (x < -87) and gelu_tanh come from a denormal e^x times x (abs_floor). */
typedef struct bound {
    double ulps, rel_floor, abs_floor;
} bound;

static bound bound_of(bn_vm_op op)
{
    static const double ulps[BN_VM_OP_COUNT] = {1, 1, 2, 3, 3, 16, 4, 4, 4, 2};
    bound b = {ulps[op], 0, 0};
    if (op == BN_VM_GELU_TANH) b.rel_floor = 4e-5;
    if (op == BN_VM_SILU || op == BN_VM_GELU_TANH) b.abs_floor = 128 * 0x1p-149;
    return b;
}

/* spacing of f32 at |r| (r rounded to f32; 2^-149 among the denormals) */
static double ulp_at(double r)
{
    float f = fabsf((float)r);
    if (isinf(f)) f = FLT_MAX;
    return (double)nextafterf(f, INFINITY) - (double)f;
}

typedef struct check {
    const char *isa;
    bn_vm_op op;
    double worst;  /* largest error seen, in ulps */
    float worst_x; /* where */
    int64_t bad;   /* values outside the bound or of the wrong class (NaN, inf) */
    float bad_x;
} check;

static void check_one(check *c, float x, float got, double r)
{
    float rf = (float)r;
    bool ok;
    if (isnan(rf) || isnan(got)) {
        ok = isnan(rf) && isnan(got);
    } else if (isinf(rf) || isinf(got)) {
        ok = rf == got;
    } else {
        bound b = bound_of(c->op);
        double err = fabs((double)got - r), u = err / ulp_at(r);
        if (u > c->worst) c->worst = u, c->worst_x = x;
        ok = err <= b.ulps * ulp_at(r) + b.rel_floor * fabs(r) + b.abs_floor;
    }
    if (!ok && c->bad++ == 0) c->bad_x = x;
}

static void report(const check *c, const char *what)
{
    cr_assert_eq(c->bad, 0,
                 "%s %s (%s): %lld values outside %.0f ulp, first at x = %a (%.9g): got %a, "
                 "libm %a",
                 OP_NAMES[c->op], c->isa, what, (long long)c->bad, bound_of(c->op).ulps,
                 (double)c->bad_x, (double)c->bad_x, 0.0, reference(c->op, c->bad_x));
}

/* the variants this CPU runs */
static int variants(const bn_vm_kernels **out)
{
    static const char *const names[] = {"portable", "avx2", "avx512"};
    int n = 0;
    for (int i = 0; i < 3; i++)
        if (bn_vm_isa(names[i])) out[n++] = bn_vm_isa(names[i]);
    return n;
}

/* x[0..n) through every variant: within the bound and bit-identical to the portable one */
static void check_values(bn_vm_op op, const float *x, int64_t n, const char *what, double *worst)
{
    const bn_vm_kernels *ks[3];
    int nk = variants(ks);
    float *y = malloc((size_t)n * sizeof(float)), *y0 = malloc((size_t)n * sizeof(float));
    double *ref = malloc((size_t)n * sizeof(double));
    cr_assert(y && y0 && ref);
    for (int64_t i = 0; i < n; i++) ref[i] = reference(op, (double)x[i]);
    for (int k = 0; k < nk; k++) {
        ks[k]->map[op](x, k == 0 ? y0 : y, n, op == BN_VM_ELU ? ELU_ALPHA : SOFTPLUS_BETA,
                       SOFTPLUS_THRESHOLD);
        const float *got = k == 0 ? y0 : y;
        check c = {ks[k]->isa, op, 0, 0, 0, 0};
        for (int64_t i = 0; i < n; i++) check_one(&c, x[i], got[i], ref[i]);
        report(&c, what);
        if (c.worst > *worst) *worst = c.worst;
        for (int64_t i = 0; k > 0 && i < n; i++)
            cr_assert(memcmp(&y[i], &y0[i], 4) == 0 || (isnan(y[i]) && isnan(y0[i])),
                      "%s: %s and portable differ at x = %a: %a vs %a", OP_NAMES[op], ks[k]->isa,
                      (double)x[i], (double)y[i], (double)y0[i]);
    }
    free(y);
    free(y0);
    free(ref);
}

static int64_t sweep_count(void)
{
    const char *env = getenv("BORN_VMATH_SWEEP");
    if (env) return atoll(env);
#if defined(__SANITIZE_ADDRESS__)
    return 1000000;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
    return 1000000;
#endif
#endif
    return 10000000;
}

/* uniform over the 2^32 bit patterns (every sign, exponent, NaN payload) */
static void sweep_bits(bn_vm_op op)
{
    const int64_t chunk = 1 << 20;
    float *x = malloc((size_t)chunk * sizeof(float));
    cr_assert_not_null(x);
    uint64_t s = 0x9e3779b97f4a7c15u + (uint64_t)op;
    double worst = 0;
    for (int64_t done = 0, total = sweep_count(); done < total; done += chunk) {
        int64_t n = total - done < chunk ? total - done : chunk;
        for (int64_t i = 0; i < n; i++) {
            s = s * 6364136223846793005u + 1442695040888963407u;
            uint32_t u = (uint32_t)(s >> 32);
            memcpy(&x[i], &u, 4);
        }
        check_values(op, x, n, "bit-pattern sweep", &worst);
    }
    free(x);
    cr_log_info("vmath %s: worst %.2f ulp over the bit-pattern sweep", OP_NAMES[op], worst);
}

/* every f32 in [lo, hi] */
static void sweep_range(bn_vm_op op, float lo, float hi)
{
    int64_t n = 0;
    for (float v = lo; v <= hi; v = nextafterf(v, INFINITY)) n++;
    float *x = malloc((size_t)n * sizeof(float));
    cr_assert_not_null(x);
    n = 0;
    for (float v = lo; v <= hi; v = nextafterf(v, INFINITY)) x[n++] = v;
    double worst = 0;
    char what[96];
    snprintf(what, sizeof what, "every f32 in [%g, %g]", (double)lo, (double)hi);
    check_values(op, x, n, what, &worst);
    free(x);
}

static void specials(bn_vm_op op)
{
    const float v[] = {0.0f,         -0.0f,        INFINITY,
                       -INFINITY,    NAN,          -NAN,
                       0x1p-149f,    -0x1p-149f,   0x1.fffffcp-127f,
                       FLT_MIN,      -FLT_MIN,     FLT_MAX,
                       -FLT_MAX,     1.0f,         -1.0f,
                       88.7228393f,  88.7228394f,  89.0f,
                       -87.3365479f, -103.972084f, -103.972076f,
                       -104.0f,      -150.0f,      0.625f,
                       -0.625f,      1.0f,         2.5f,
                       -2.5f,        10.0f,        -10.0f,
                       14.2f,        -14.2f,       20.0f,
                       20.0001f,     -20.0f,       1e10f,
                       -1e10f,       1e-10f,       -1e-10f};
    double worst = 0;
    check_values(op, v, (int64_t)(sizeof v / sizeof v[0]), "special values", &worst);
}

#define SWEEP_TEST(name, op)                                                                       \
    Test(vmath, name##_within_its_ulp_bound_over_the_bit_patterns, .timeout = 300)                 \
    {                                                                                              \
        sweep_bits(op);                                                                            \
        specials(op);                                                                              \
    }

SWEEP_TEST(exp, BN_VM_EXP)
SWEEP_TEST(log, BN_VM_LOG)
SWEEP_TEST(tanh, BN_VM_TANH)
SWEEP_TEST(sigmoid, BN_VM_SIGMOID)
SWEEP_TEST(erf, BN_VM_ERF)
SWEEP_TEST(gelu, BN_VM_GELU)
SWEEP_TEST(gelu_tanh, BN_VM_GELU_TANH)
SWEEP_TEST(silu, BN_VM_SILU)
SWEEP_TEST(softplus, BN_VM_SOFTPLUS)
SWEEP_TEST(elu, BN_VM_ELU)

Test(vmath, every_f32_near_thresholds_and_branch_points, .timeout = 300)
{
    sweep_range(BN_VM_EXP, 88.0f, 89.5f);         /* overflow */
    sweep_range(BN_VM_EXP, -104.5f, -86.0f);      /* denormal results, underflow */
    sweep_range(BN_VM_EXP, 0.33f, 0.36f);         /* the edge of the polynomial's range */
    sweep_range(BN_VM_LOG, 0.99f, 1.01f);         /* log near 1 */
    sweep_range(BN_VM_LOG, 0.70f, 0.72f);         /* the sqrt(1/2) split */
    sweep_range(BN_VM_LOG, 0x1p-149f, 0x1p-140f); /* denormal inputs */
    sweep_range(BN_VM_TANH, 0.6f, 0.65f);         /* the polynomial / exp split */
    sweep_range(BN_VM_TANH, 8.5f, 9.5f);          /* rounding to 1 */
    sweep_range(BN_VM_SIGMOID, -90.0f, -85.0f);   /* results leave the normals */
    sweep_range(BN_VM_ERF, 0.98f, 1.02f);         /* polynomial / erfc split */
    sweep_range(BN_VM_ERF, 2.48f, 2.52f);         /* the two erfc fits */
    sweep_range(BN_VM_ERF, 3.8f, 4.0f);           /* rounding to 1 */
    sweep_range(BN_VM_GELU, -1.5f, -1.3f);        /* 1 + erf at its worst cancellation */
    sweep_range(BN_VM_GELU, -14.5f, -13.8f);      /* erfc past 10 */
    sweep_range(BN_VM_SOFTPLUS, 19.9f, 20.1f);    /* threshold */
    sweep_range(BN_VM_ELU, -1e-3f, -1e-4f);       /* expm1 near 0 */
}

Test(vmath, edges_match_libm)
{
    const bn_vm_kernels *k = bn_vm() ? bn_vm() : &bn_vm_portable;
    float x[6] = {89.0f, -104.0f, 30.0f, -30.0f, -200.0f, 200.0f}, y[6];
    k->map[BN_VM_EXP](x, y, 2, 0, 0);
    cr_assert(isinf(y[0]) && y[0] > 0, "exp(89) = %g", (double)y[0]);
    cr_assert_eq(y[1], expf(-104.0f), "exp(-104) = %a, libm %a", (double)y[1],
                 (double)expf(-104.0f));
    k->map[BN_VM_TANH](x + 2, y, 2, 0, 0);
    cr_assert(y[0] == 1.0f && y[1] == -1.0f);
    k->map[BN_VM_SIGMOID](x + 4, y, 2, 0, 0);
    cr_assert(y[0] == 0.0f && y[1] == 1.0f, "sigmoid(-200) = %g, sigmoid(200) = %g", (double)y[0],
              (double)y[1]);
}

/* ---- determinism ---------------------------------------------------------------------------- */
Test(vmath, element_result_does_not_depend_on_position)
{
    const bn_vm_kernels *ks[3];
    int nk = variants(ks);
    float x[64], alone[64], all[64];
    for (int i = 0; i < 64; i++) x[i] = (float)(i - 32) * 0.37f + 0.01f;
    for (int k = 0; k < nk; k++)
        for (int op = 0; op < BN_VM_OP_COUNT; op++) {
            ks[k]->map[op](x, all, 64, 1.0f, 20.0f);
            for (int i = 0; i < 64; i++) { /* each element as a one-element tail */
                ks[k]->map[op](x + i, alone + i, 1, 1.0f, 20.0f);
                cr_assert(memcmp(&alone[i], &all[i], 4) == 0, "%s %s: x = %g tail %a body %a",
                          ks[k]->isa, OP_NAMES[op], (double)x[i], (double)alone[i], (double)all[i]);
            }
        }
}

/* ---- the kernels that use them --------------------------------------------------------------- */
typedef bn_tensor *(*unary_op)(const bn_tensor *);

static bn_tensor *random_f32(int64_t rows, int64_t cols, float scale)
{
    bn_tensor *t = bn_empty(BN_SHAPE(rows, cols), BN_F32);
    float *p = bn_tensor_data_f32(t);
    uint32_t s = 7;
    for (int64_t i = 0; i < rows * cols; i++) {
        s = s * 1664525u + 1013904223u;
        p[i] = ((float)(s >> 8) / 16777216.0f - 0.5f) * 2 * scale;
    }
    return t;
}

Test(vmath, unary_kernels_give_same_bits_strided_and_on_1_or_2_threads)
{
    const unary_op ops[] = {bn_exp, bn_tanh, bn_sigmoid, bn_gelu, bn_gelu_tanh, bn_silu, bn_erf};
    BNT_ASSERT_NO_LEAK({
        bn_tensor *x = random_f32(300, 257, 12.0f); /* 77100 elements: goes parallel */
        bn_tensor *tr = bn_transpose(x, 0, 1);
        bn_tensor *xt = bn_contiguous(tr);
        for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
            bn_set_num_threads(1);
            bn_tensor *one = ops[i](x);
            bn_set_num_threads(2);
            bn_tensor *two = ops[i](x);
            bnt_assert_equal(two, one, "1 vs 2 threads");
            /* strided: the transpose of a contiguous transpose is x with strides (1, 300) */
            bn_tensor *back = bn_transpose(xt, 0, 1);
            bn_tensor *strided = ops[i](back);
            bnt_assert_equal(strided, one, "strided vs contiguous");
            bn_release(back);
            bn_release(one);
            bn_release(two);
            bn_release(strided);
        }
        bn_release(tr);
        bn_release(xt);
        bn_release(x);
    });
}

/* softmax / log_softmax of each row against a double computation */
static void check_softmax_rows(bn_tensor *x, bool log_form)
{
    bn_tensor *y = log_form ? bn_log_softmax(x, -1) : bn_softmax(x, -1);
    cr_assert_not_null(y);
    int64_t rows = bn_dim(x, 0), cols = bn_dim(x, 1);
    const float *px = bn_tensor_data_f32(x), *py = bn_tensor_data_f32(y);
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = px + r * cols;
        double m = -INFINITY, s = 0;
        for (int64_t j = 0; j < cols; j++) m = xr[j] > m ? xr[j] : m;
        for (int64_t j = 0; j < cols; j++) s += exp((double)xr[j] - m);
        for (int64_t j = 0; j < cols; j++) {
            double want = log_form ? xr[j] - m - log(s) : exp(xr[j] - m) / s;
            double got = py[r * cols + j];
            cr_assert(fabs(got - want) <= 2e-6 * fabs(want) + (log_form ? 1e-6 : 1e-30),
                      "%s row %lld col %lld: got %.9g want %.9g",
                      log_form ? "log_softmax" : "softmax", (long long)r, (long long)j, got, want);
        }
    }
    bn_release(y);
}

Test(vmath, fused_softmax_matches_double_reference)
{
    BNT_ASSERT_NO_LEAK({
        bn_tensor *x = random_f32(67, 1031, 30.0f); /* odd lengths: tails */
        check_softmax_rows(x, false);
        check_softmax_rows(x, true);
        bn_tensor *big = random_f32(3, 5000, 1e4f); /* large values: max subtraction */
        check_softmax_rows(big, false);
        check_softmax_rows(big, true);
        bn_set_num_threads(1);
        bn_tensor *one = bn_softmax(x, -1);
        bn_set_num_threads(2);
        bn_tensor *two = bn_softmax(x, -1);
        bnt_assert_equal(two, one, "softmax 1 vs 2 threads");
        bn_release(one);
        bn_release(two);
        bn_release(x);
        bn_release(big);
    });
}

Test(vmath, fused_softmax_keeps_nan_and_inf_rules)
{
    BNT_ASSERT_NO_LEAK({
        const float v[12] = {1,         2,         NAN, 3,         -INFINITY, -INFINITY,
                             -INFINITY, -INFINITY, 0,   -INFINITY, 5,         -INFINITY};
        bn_tensor *x = bn_from_data(v, BN_SHAPE(3, 4), BN_F32);
        bn_tensor *y = bn_softmax(x, 1);
        const float *p = bn_tensor_data_f32(y);
        for (int j = 0; j < 8; j++) cr_assert(isnan(p[j]), "NaN row and all -inf row give NaN");
        cr_assert(p[8] > 0 && p[9] == 0 && p[11] == 0 && fabsf(p[8] + p[10] - 1) < 1e-6f);
        bn_release(x);
        bn_release(y);
    });
}
