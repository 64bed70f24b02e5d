/* tests/unit/test_ce_rows.c — the CPU cross-entropy row kernels (backend_nn.h: ce_rows_forward,
 * ce_rows_backward; backend/cpu/ce_rows.c) that bn_linear_cross_entropy's chunks run through:
 *   - against PyTorch (tests/data/ce_rows.txt, scripts/gen_ce_rows.py): logsumexp, the target's
 *     logit, the row sum and d/dz of the smoothed cross-entropy, for f64, f32, bf16 and f16 logits
 *     (the fixture's logits are bf16 values, exact in every dtype), V from 1 to 4099 (not a
 *     multiple of 8 included), logits of magnitude ~1000, one logit far above the rest, -inf
 *     logits; dz written in z's dtype and in the compute dtype;
 *   - against the same statistics composed of public ops (bn_logsumexp, bn_gather, bn_sum; exp,
 *     scatter_add, mul) on random logits of many shapes, with strided rows and targets;
 *   - each row's results do not depend on the other rows (nor on the thread count: the whole
 *     problem runs threaded, the single rows serially), bit for bit;
 *   - infinite and NaN logits give torch's logsumexp; bad views give errors, never a bad read;
 *   - bn_linear_cross_entropy, now on these kernels, against bn_cross_entropy(bn_linear()),
 *     forward and backward, within 1e-6 in f32. */
#include "bn_test.h"

#include "backend/backend.h"
#include "backend/backend_nn.h"
#include "born/autograd.h"
#include "born/transformer.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

TestSuite(ce_rows, .fini = bnt_release_kept);

static const bn_backend_nn *nn(void) { return bn__cpu_backend()->nn; }

static bn_dtype cdt_of(bn_dtype dt) { return dt == BN_F64 ? BN_F64 : BN_F32; }

typedef struct fwd_out {
    bn_tensor *lse, *zt, *zsum;
} fwd_out;

/* The forward kernel on z (R, V) and t (R); outputs registered with the open scope. */
static fwd_out run_fwd(const bn_tensor *z, const bn_tensor *t, bool with_sum)
{
    int64_t R = bn_shape_of(z).dims[0];
    bn_dtype cdt = cdt_of(bn_dtype_of(z));
    fwd_out o = {bn_full(BN_SHAPE(R), -7, cdt), bn_full(BN_SHAPE(R), -7, cdt),
                 with_sum ? bn_full(BN_SHAPE(R), -7, cdt) : NULL};
    bn_tview zv = bn__tview(z), tv = bn__tview(t), lv = bn__tview(o.lse), ztv = bn__tview(o.zt);
    bn_tview sv = with_sum ? bn__tview(o.zsum) : (bn_tview){0};
    bn_status st = nn()->ce_rows_forward(&zv, &tv, &lv, &ztv, with_sum ? &sv : NULL);
    cr_assert_eq(st, BN_OK, "ce_rows_forward: %s", bn_error_message());
    return o;
}

/* The backward kernel into a new dz of dtype ddt. */
static bn_tensor *run_bwd(const bn_tensor *z, const bn_tensor *t, const bn_tensor *lse,
                          const bn_tensor *gr, double eps, bn_dtype ddt)
{
    bn_tensor *dz = bn_full(bn_shape_of(z), -7, ddt);
    bn_tview zv = bn__tview(z), tv = bn__tview(t), lv = bn__tview(lse), gv = bn__tview(gr);
    bn_tview dv = bn__tview(dz);
    bn_status st = nn()->ce_rows_backward(&zv, &tv, &lv, &gv, eps, &dv);
    cr_assert_eq(st, BN_OK, "ce_rows_backward: %s", bn_error_message());
    return dz;
}

/* The largest |finite value| of t, at least lo. */
static double max_abs_finite(const bn_tensor *t, double lo)
{
    bn_tensor *a = bn_contiguous(bn_to_dtype(t, BN_F64));
    const double *p = bn_tensor_data_f64(a);
    double m = lo;
    for (int64_t i = 0; i < bn_numel(a); i++)
        if (isfinite(p[i]) && fabs(p[i]) > m) m = fabs(p[i]);
    return m;
}

/* ---- against PyTorch ------------------------------------------------------------------------- */
Test(ce_rows, matches_torch)
{
    fx_file *f = fx_open("ce_rows.txt");
    const bn_dtype dts[4] = {BN_F64, BN_F32, BN_BF16, BN_F16};
    int ncases = 0;
    for (int c = 0; fx_case_name(f, c); c++, ncases++) {
        const char *cs = fx_case_name(f, c);
        bn_tensor *z64 = bnt_keep(fx_tensor(f, cs, "z")), *t = bnt_keep(fx_tensor(f, cs, "t"));
        bn_tensor *gr64 = bnt_keep(fx_tensor(f, cs, "gr"));
        double eps = fx_scalar(f, cs, "eps");
        bn_tensor *lse_w = bnt_keep(fx_tensor(f, cs, "lse")), *zt_w = bnt_keep(fx_tensor(f, cs, "zt"));
        bn_tensor *zsum_w = bnt_keep(fx_tensor(f, cs, "zsum")), *dz_w = bnt_keep(fx_tensor(f, cs, "dz"));
        double zmax = max_abs_finite(z64, 1), gmax = max_abs_finite(gr64, 1);
        for (int d = 0; d < 4; d++) {
            bn_dtype dt = dts[d], cdt = cdt_of(dt);
            if (dt == BN_F16 && zmax > 60000) continue; /* beyond f16's range */
            bn_scope_begin();
            bn_tensor *z = bn_to_dtype(z64, dt);
            fwd_out o = run_fwd(z, t, true);
            /* f32: the statistics round once (lse ~ |z| carries its ulp); f64: to rounding */
            double rt = cdt == BN_F64 ? 1e-13 : 1e-6, at = cdt == BN_F64 ? 1e-12 : 2e-7 * zmax;
            char m[128];
            snprintf(m, sizeof m, "%s %s: lse", cs, bn_dtype_name(dt));
            bnt_assert_close(o.lse, bn_to_dtype(lse_w, cdt), rt, at, m);
            /* exact (bf16 values), but f16 rounds those below its normal range */
            snprintf(m, sizeof m, "%s %s: zt", cs, bn_dtype_name(dt));
            bnt_assert_close(o.zt, bn_to_dtype(zt_w, cdt), 0, dt == BN_F16 ? 1e-7 : 0, m);
            snprintf(m, sizeof m, "%s %s: zsum", cs, bn_dtype_name(dt));
            bnt_assert_close(o.zsum, bn_to_dtype(zsum_w, cdt), rt, at, m); /* -inf: exactly */
            /* dz: exp(z - lse) carries the rounding of z - lse (an ulp of |z|), relative; then
             * one rounding to dz's dtype */
            bn_tensor *gr = bn_to_dtype(gr64, cdt);
            bn_dtype ddts[2] = {dt, cdt};
            for (int k = 0; k < (dt == cdt ? 1 : 2); k++) {
                bn_tensor *dz = run_bwd(z, t, o.lse, gr, eps, ddts[k]);
                double drt = ddts[k] == BN_F64  ? 1e-12
                             : ddts[k] == BN_F32 ? 1e-5
                             : ddts[k] == BN_F16 ? 1e-3
                                                 : 8e-3;
                double dat = cdt == BN_F64 ? 1e-13 * gmax : 4 * FLT_EPSILON * zmax * gmax;
                snprintf(m, sizeof m, "%s %s: dz (%s)", cs, bn_dtype_name(dt),
                         bn_dtype_name(ddts[k]));
                bnt_assert_close(bn_to_dtype(dz, BN_F64), dz_w, drt, dat, m);
            }
            bn_scope_end();
        }
    }
    cr_assert_geq(ncases, 10, "the fixture has %d cases", ncases);
    fx_close(f);
}

/* ---- against the composed ops ---------------------------------------------------------------- */
/* The composed forward / backward in the compute dtype (what ops/linear_ce.c runs on a backend
 * without the kernels). t is (R) i64. */
static fwd_out composed_fwd(const bn_tensor *z, const bn_tensor *t)
{
    bn_tensor *zc = bn_to_dtype(z, cdt_of(bn_dtype_of(z)));
    bn_tensor *tc = bn_unsqueeze(bn_contiguous(t), 1);
    return (fwd_out){bn_logsumexp(zc, 1, false), bn_squeeze(bn_gather(zc, 1, tc), 1),
                     bn_sum(zc, 1, false)};
}

static bn_tensor *composed_bwd(const bn_tensor *z, const bn_tensor *t, const bn_tensor *lse,
                               const bn_tensor *gr, double eps)
{
    bn_dtype cdt = cdt_of(bn_dtype_of(z));
    int64_t R = bn_shape_of(z).dims[0], V = bn_shape_of(z).dims[1];
    bn_tensor *pz = bn_exp(bn_sub(bn_to_dtype(z, cdt), bn_unsqueeze(lse, 1)));
    pz = bn_sub_scalar(pz, eps / (double)V);
    pz = bn_scatter_add(pz, 1, bn_unsqueeze(bn_contiguous(t), 1),
                        bn_full(BN_SHAPE(R, 1), -(1 - eps), cdt));
    return bn_mul(pz, bn_unsqueeze(gr, 1));
}

/* z (R, V) of dtype dt with random logits of scale s; strided: a narrow of a wider tensor (row
 * stride V + 5); targets strided (every other element of a 2R tensor) when strided. */
static void check_composed(int64_t R, int64_t V, bn_dtype dt, double s, bool strided, double eps)
{
    bn_scope_begin();
    bn_tensor *zw =
        bn_to_dtype(bn_mul_scalar(bn_randn(BN_SHAPE(R, V + (strided ? 5 : 0)), BN_F64), s), dt);
    bn_tensor *z = strided ? bn_narrow(zw, 1, 3, V) : zw; /* row stride V + 5 */
    bn_tensor *t2 = bn_randint(0, V, BN_SHAPE(R, 2), BN_I64);
    bn_tensor *t = strided ? bn_select(t2, 1, 1) : bn_contiguous(bn_select(t2, 1, 0));
    bn_dtype cdt = cdt_of(dt);
    bn_tensor *gr = bn_to_dtype(bn_randn(BN_SHAPE(R), BN_F64), cdt);
    fwd_out o = run_fwd(z, t, true), w = composed_fwd(z, t);
    char m[160];
    double rt = cdt == BN_F64 ? 1e-14 : 1e-6, at = cdt == BN_F64 ? 1e-13 * s : 1e-6 * s;
    snprintf(m, sizeof m, "(%lld, %lld) %s%s: lse", (long long)R, (long long)V,
             bn_dtype_name(dt), strided ? " strided" : "");
    bnt_assert_close(o.lse, w.lse, rt, at, m);
    snprintf(m, sizeof m, "(%lld, %lld) %s%s: zt", (long long)R, (long long)V, bn_dtype_name(dt),
             strided ? " strided" : "");
    bnt_assert_close(o.zt, w.zt, 0, 0, m);
    snprintf(m, sizeof m, "(%lld, %lld) %s%s: zsum", (long long)R, (long long)V,
             bn_dtype_name(dt), strided ? " strided" : "");
    bnt_assert_close(o.zsum, w.zsum, rt, at * sqrt((double)V), m);
    /* the same lse into both backward paths */
    bn_tensor *want = composed_bwd(z, t, o.lse, gr, eps);
    bn_dtype ddts[2] = {cdt, dt};
    for (int k = 0; k < (dt == cdt ? 1 : 2); k++) {
        bn_tensor *dz = run_bwd(z, t, o.lse, gr, eps, ddts[k]);
        snprintf(m, sizeof m, "(%lld, %lld) %s%s: dz (%s)", (long long)R, (long long)V,
                 bn_dtype_name(dt), strided ? " strided" : "", bn_dtype_name(ddts[k]));
        if (ddts[k] == cdt) {
            bnt_assert_close(dz, want, cdt == BN_F64 ? 1e-14 : 1e-6, cdt == BN_F64 ? 1e-16 : 1e-9,
                             m);
        } else { /* rounded once from the compute dtype: within an ulp of dt */
            cr_assert_eq(bn_dtype_of(dz), dt);
            bnt_assert_close(bn_to_dtype(dz, cdt), want, dt == BN_F16 ? 1.0 / 1024 : 1.0 / 128,
                             dt == BN_F16 ? 0x1p-24 : 1e-9, m); /* f16's subnormal ulp */
        }
    }
    bn_scope_end();
}

Test(ce_rows, matches_composed_ops)
{
    bn_manual_seed(3);
    const int64_t shapes[][2] = {{1, 1}, {2, 3}, {7, 8}, {5, 17}, {16, 1000}, {33, 1031},
                                 {3, 8192}, {64, 200}, {9, 4099}};
    const bn_dtype dts[4] = {BN_F32, BN_F64, BN_BF16, BN_F16};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        for (int d = 0; d < 4; d++)
            for (int strided = 0; strided < 2; strided++)
                check_composed(shapes[i][0], shapes[i][1], dts[d], 2.0, strided,
                               (i + (size_t)d) % 2 ? 0.1 : 0.0);
    /* large logits */
    check_composed(6, 777, BN_F32, 200.0, false, 0.1);
    check_composed(6, 777, BN_F64, 200.0, true, 0.1);
    check_composed(6, 777, BN_BF16, 200.0, true, 0.0);
}

/* ---- rows are independent ------------------------------------------------------------------- */
Test(ce_rows, rows_do_not_depend_on_each_other)
{
    bn_manual_seed(4);
    const bn_dtype dts[3] = {BN_F32, BN_BF16, BN_F64};
    for (int d = 0; d < 3; d++) {
        bn_scope_begin();
        int64_t R = 37, V = 3001;
        bn_dtype dt = dts[d], cdt = cdt_of(dt);
        bn_tensor *z = bn_to_dtype(bn_mul_scalar(bn_randn(BN_SHAPE(R, V), BN_F64), 3), dt);
        bn_tensor *t = bn_randint(0, V, BN_SHAPE(R), BN_I64);
        bn_tensor *gr = bn_to_dtype(bn_randn(BN_SHAPE(R), BN_F64), cdt);
        fwd_out all = run_fwd(z, t, true); /* threaded over rows */
        bn_tensor *dz = run_bwd(z, t, all.lse, gr, 0.1, dt);
        for (int64_t r = 0; r < R; r += 6) { /* one row at a time: serial */
            bn_tensor *zr = bn_narrow(z, 0, r, 1), *tr = bn_narrow(t, 0, r, 1);
            fwd_out one = run_fwd(zr, tr, true);
            char m[96];
            snprintf(m, sizeof m, "%s row %lld: lse", bn_dtype_name(dt), (long long)r);
            bnt_assert_equal(one.lse, bn_narrow(all.lse, 0, r, 1), m);
            snprintf(m, sizeof m, "%s row %lld: zsum", bn_dtype_name(dt), (long long)r);
            bnt_assert_equal(one.zsum, bn_narrow(all.zsum, 0, r, 1), m);
            bn_tensor *dzr =
                run_bwd(zr, tr, bn_narrow(all.lse, 0, r, 1), bn_narrow(gr, 0, r, 1), 0.1, dt);
            snprintf(m, sizeof m, "%s row %lld: dz", bn_dtype_name(dt), (long long)r);
            bnt_assert_equal(dzr, bn_narrow(dz, 0, r, 1), m);
        }
        /* zsum is optional and changes nothing else */
        fwd_out nosum = run_fwd(z, t, false);
        bnt_assert_equal(nosum.lse, all.lse, "lse without zsum");
        bnt_assert_equal(nosum.zt, all.zt, "zt without zsum");
        bn_scope_end();
    }
}

/* ---- infinities and NaN: torch's logsumexp -------------------------------------------------- */
Test(ce_rows, infinite_and_nan_logits)
{
    const double I = INFINITY;
    /* rows: all -inf; -inf and finite; one +inf; +inf and -inf; a NaN; a NaN and +inf */
    const double zv[6][4] = {{-I, -I, -I, -I}, {-I, 1, 2, -I}, {0, I, 1, 2},
                             {-I, I, 3, -I},   {1, NAN, 2, 3}, {I, NAN, 0, 0}};
    const int64_t tv[6] = {0, 2, 0, 2, 0, 2};
    for (int d = 0; d < 2; d++) {
        bn_scope_begin();
        bn_dtype dt = d ? BN_F64 : BN_F32;
        bn_tensor *z = bn_to_dtype(bn_from_data(zv, BN_SHAPE(6, 4), BN_F64), dt);
        bn_tensor *t = bn_from_data(tv, BN_SHAPE(6), BN_I64);
        fwd_out o = run_fwd(z, t, true), w = composed_fwd(z, t);
        bnt_assert_close(o.lse, w.lse, 1e-6, 1e-6, "lse of infinite / NaN rows");
        bnt_assert_close(o.zt, w.zt, 0, 0, "zt of infinite / NaN rows");
        bnt_assert_close(o.zsum, w.zsum, 1e-6, 1e-6, "zsum of infinite / NaN rows");
        const double want[6] = {-I, 2 + log1p(exp(-1.0)), I, I, NAN, NAN};
        bnt_assert_values(o.lse, want, 6, 1e-6, "lse against the closed form");
        bn_scope_end();
    }
}

/* ---- bad views --------------------------------------------------------------------------------- */
Test(ce_rows, bad_inputs)
{
    bn_scope_begin();
    bn_tensor *z = bn_randn(BN_SHAPE(3, 5), BN_F32), *zi = bn_zeros(BN_SHAPE(3, 5), BN_I32);
    bn_tensor *z1 = bn_randn(BN_SHAPE(15), BN_F32);
    bn_tensor *zT = bn_transpose(bn_randn(BN_SHAPE(5, 3), BN_F32), 0, 1); /* last stride 3 */
    const int64_t tv[3] = {0, 9, 1}, okv[3] = {0, 4, 1};
    bn_tensor *tbad = bn_from_data(tv, BN_SHAPE(3), BN_I64), *t = bn_from_data(okv, BN_SHAPE(3), BN_I64);
    bn_tensor *t32 = bn_zeros(BN_SHAPE(3), BN_I32), *t2 = bn_zeros(BN_SHAPE(2), BN_I64);
    bn_tensor *v = bn_zeros(BN_SHAPE(3), BN_F32), *v64 = bn_zeros(BN_SHAPE(3), BN_F64);
    bn_tensor *v2 = bn_zeros(BN_SHAPE(6), BN_F32);
    bn_tensor *vs = bn_narrow(bn_reshape(v2, BN_SHAPE(3, 2)), 1, 0, 1); /* stride 2 */
    vs = bn_squeeze(vs, 1);
    bn_tensor *dz = bn_zeros(BN_SHAPE(3, 5), BN_F32), *dz64 = bn_zeros(BN_SHAPE(3, 5), BN_F64);
    bn_tensor *dzT = bn_transpose(bn_zeros(BN_SHAPE(5, 3), BN_F32), 0, 1);
    bn_tview Z = bn__tview(z), ZI = bn__tview(zi), Z1 = bn__tview(z1), ZT = bn__tview(zT);
    bn_tview T = bn__tview(t), TB = bn__tview(tbad), T32 = bn__tview(t32), T2 = bn__tview(t2);
    bn_tview L = bn__tview(v), L64 = bn__tview(v64), LS = bn__tview(vs);
    bn_tview D = bn__tview(dz), D64 = bn__tview(dz64), DT = bn__tview(dzT);
    BNT_ASSERT_NO_LEAK({
        cr_assert_eq(nn()->ce_rows_forward(&ZI, &T, &L, &L, NULL), BN_ERR_UNSUPPORTED);
        bnt_assert_error(BN_ERR_UNSUPPORTED, "ce_rows_forward", "z", "i32", NULL);
        cr_assert_eq(nn()->ce_rows_forward(&Z1, &T, &L, &L, NULL), BN_ERR_SHAPE);
        bnt_assert_error(BN_ERR_SHAPE, "ce_rows_forward", "(R, V)", NULL);
        cr_assert_eq(nn()->ce_rows_forward(&ZT, &T, &L, &L, NULL), BN_ERR_SHAPE);
        bnt_assert_error(BN_ERR_SHAPE, "ce_rows_forward", "last stride 1", NULL);
        cr_assert_eq(nn()->ce_rows_forward(&Z, &T32, &L, &L, NULL), BN_ERR_UNSUPPORTED);
        bnt_assert_error(BN_ERR_UNSUPPORTED, "ce_rows_forward", "target", "i32", NULL);
        cr_assert_eq(nn()->ce_rows_forward(&Z, &T2, &L, &L, NULL), BN_ERR_UNSUPPORTED);
        bnt_assert_error(BN_ERR_UNSUPPORTED, "ce_rows_forward", "target", "[3]", NULL);
        cr_assert_eq(nn()->ce_rows_forward(&Z, &TB, &L, &L, NULL), BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "ce_rows_forward", "target 9 (row 1)", "5 classes", NULL);
        cr_assert_eq(nn()->ce_rows_forward(&Z, &T, &L64, &L, NULL), BN_ERR_UNSUPPORTED);
        bnt_assert_error(BN_ERR_UNSUPPORTED, "ce_rows_forward", "lse", "f64", NULL);
        cr_assert_eq(nn()->ce_rows_forward(&Z, &T, &L, &L, &LS), BN_ERR_UNSUPPORTED);
        bnt_assert_error(BN_ERR_UNSUPPORTED, "ce_rows_forward", "zsum", "contiguous", NULL);
        cr_assert_eq(nn()->ce_rows_backward(&Z, &T, &L, &L64, 0.0, &D), BN_ERR_UNSUPPORTED);
        bnt_assert_error(BN_ERR_UNSUPPORTED, "ce_rows_backward", "gr", "f64", NULL);
        cr_assert_eq(nn()->ce_rows_backward(&Z, &TB, &L, &L, 0.0, &D), BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "ce_rows_backward", "target 9 (row 1)", NULL);
        cr_assert_eq(nn()->ce_rows_backward(&Z, &T, &L, &L, 0.0, &DT), BN_ERR_UNSUPPORTED);
        bnt_assert_error(BN_ERR_UNSUPPORTED, "ce_rows_backward", "dz", "contiguous", NULL);
        cr_assert_eq(nn()->ce_rows_backward(&Z, &T, &L, &L, 0.0, &Z1), BN_ERR_UNSUPPORTED);
        bnt_assert_error(BN_ERR_UNSUPPORTED, "ce_rows_backward", "dz", NULL);
        /* dz holds z's dtype or the compute dtype, nothing else */
        cr_assert_eq(nn()->ce_rows_backward(&Z, &T, &L, &L, 0.0, &D64), BN_ERR_UNSUPPORTED);
        bnt_assert_error(BN_ERR_UNSUPPORTED, "ce_rows_backward", "dz", "f64", NULL);
    });
    /* the good views work */
    cr_assert_eq(nn()->ce_rows_forward(&Z, &T, &L, &L, NULL), BN_OK, "%s", bn_error_message());
    cr_assert_eq(nn()->ce_rows_backward(&Z, &T, &L, &L, 0.0, &D), BN_OK, "%s",
                 bn_error_message());
    bn_scope_end();
}

/* ---- bn_linear_cross_entropy on the kernels ------------------------------------------------ */
static bn_tensor *leaf(const bn_tensor *t)
{
    bn_tensor *c = bn_clone(t);
    cr_assert_eq(bn_set_requires_grad(c, true), BN_OK);
    return c;
}

Test(ce_rows, linear_cross_entropy_matches_composed)
{
    bn_manual_seed(5);
    const bn_ce_opts opts[3] = {{0},
                                {.label_smoothing = 0.1, .use_ignore_index = true,
                                 .ignore_index = -100},
                                {.reduction = BN_REDUCTION_SUM, .label_smoothing = 0.3}};
    for (int k = 0; k < 3; k++) {
        bn_scope_begin();
        int64_t N = 300, D = 32, V = 1000;
        bn_tensor *x = bn_randn(BN_SHAPE(N, D), BN_F32);
        bn_tensor *w = bn_mul_scalar(bn_randn(BN_SHAPE(V, D), BN_F32), 0.3);
        bn_tensor *b = bn_randn(BN_SHAPE(V), BN_F32);
        bn_tensor *t = bn_randint(0, V, BN_SHAPE(N), BN_I64);
        if (opts[k].use_ignore_index) {
            int64_t *tp = bn_tensor_data_i64(t);
            for (int64_t i = 0; i < N; i += 4) tp[i] = -100;
        }
        bn_tensor *x1 = leaf(x), *w1 = leaf(w), *b1 = leaf(b);
        bn_tensor *x2 = leaf(x), *w2 = leaf(w), *b2 = leaf(b);
        bn_tensor *l1 = bn_linear_cross_entropy(x1, w1, b1, t, opts[k]);
        bn_tensor *l2 = bn_cross_entropy(bn_linear(x2, w2, b2), t, opts[k]);
        cr_assert_not_null(l1, "%s", bn_error_message());
        cr_assert_not_null(l2, "%s", bn_error_message());
        bnt_assert_close(l1, l2, 1e-6, 0, "loss");
        cr_assert_eq(bn_backward(l1), BN_OK, "%s", bn_error_message());
        cr_assert_eq(bn_backward(l2), BN_OK, "%s", bn_error_message());
        bn_tensor *g1[3] = {bn_grad(x1), bn_grad(w1), bn_grad(b1)}; /* the scope's */
        bn_tensor *g2[3] = {bn_grad(x2), bn_grad(w2), bn_grad(b2)};
        const char *names[3] = {"grad x", "grad w", "grad b"};
        for (int i = 0; i < 3; i++) {
            /* within 1e-6 of the gradient's scale */
            bnt_assert_close(g1[i], g2[i], 0, 1e-6 * max_abs_finite(g2[i], 0), names[i]);
        }
        bn_scope_end();
    }
}
