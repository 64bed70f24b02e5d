/* tests/backend/test_cuda_ce_rows.c — the CUDA cross-entropy row kernels (backend_nn.h:
 * ce_rows_forward, ce_rows_backward; src/backend_cuda/cuda_ce.cu) against the CPU backend's
 * (backend/cpu/ce_rows.c, itself checked against PyTorch in tests/unit/test_ce_rows.c):
 *   - both entries on random logits, f32 / bf16 / f16 (and f64), R from 1 to 3000 and V from 7
 *     to 50304: the warp-per-row (V <= 1024) and block-per-row kernels, 16-byte loads with and
 *     without a tail (V not a multiple of 8), rows that do not allow them (a row stride of
 *     V + 3, a start 2 bytes off), strided targets, dz in z's dtype and in f32, with and
 *     without label smoothing and zsum;
 *   - large logits, a logit far above the rest, -inf / +inf / NaN rows (torch's logsumexp);
 *   - the same bits on every run (no atomics);
 *   - bn_linear_cross_entropy on the GPU (now on these kernels) against the CPU, f32 and bf16;
 *   - bad views: the error code, the message, no leak.
 * Tolerances: the GPU's expf against the CPU's vmath exp and its own order of summation: f32
 * statistics rel 1e-5 (zsum, which cancels, by its magnitude sum |z|), dz rel 1e-5 (f32 dz also
 * 4 units of the last place of 1 times max |gr|, where p - eps / V cancels); f16 / bf16
 * dz one unit of the last place (and f16's subnormal spacing); f64 1e-12. Without a GPU (or
 * the plugin) every test skips. */
#include "bn_test.h"
#include "bn_test_cuda.h"

#include "backend/backend.h"
#include "backend/backend_nn.h"
#include "born/autograd.h"
#include "born/cuda.h"
#include "born/transformer.h"

#include <math.h>
#include <stdio.h>
#include <string.h>


static const bn_backend_nn *nn_of(bn_device d)
{
    const bn_backend *be = bn__backend("test_cuda_ce_rows", d);
    cr_assert_not_null(be, "%s", bn_error_message());
    cr_assert_not_null(be->nn, "no nn table");
    cr_assert_not_null(be->nn->ce_rows_forward, "the backend has no ce_rows_forward");
    cr_assert_not_null(be->nn->ce_rows_backward, "the backend has no ce_rows_backward");
    return be->nn;
}

static bn_dtype cdt_of(bn_dtype dt) { return dt == BN_F64 ? BN_F64 : BN_F32; }

typedef struct fwd_out {
    bn_tensor *lse, *zt, *zsum; /* on the CPU */
} fwd_out;

/* The forward kernel of z's device; the outputs come back to the CPU. */
static fwd_out run_fwd(const bn_tensor *z, const bn_tensor *t, bool with_sum)
{
    bn_device dev = bn_device_of(z);
    int64_t R = bn_shape_of(z).dims[0];
    bn_dtype cdt = cdt_of(bn_dtype_of(z));
    bn_tensor *lse = bn_tensor_to(bn_full(BN_SHAPE(R), -7, cdt), dev);
    bn_tensor *zt = bn_tensor_to(bn_full(BN_SHAPE(R), -7, cdt), dev);
    bn_tensor *zs = with_sum ? bn_tensor_to(bn_full(BN_SHAPE(R), -7, cdt), dev) : NULL;
    cr_assert(lse && zt && (!with_sum || zs), "%s", bn_error_message());
    bn_tview zv = bn__tview(z), tv = bn__tview(t), lv = bn__tview(lse), ztv = bn__tview(zt);
    bn_tview sv = zs ? bn__tview(zs) : (bn_tview){0};
    bn_status st = nn_of(dev)->ce_rows_forward(&zv, &tv, &lv, &ztv, zs ? &sv : NULL);
    cr_assert_eq(st, BN_OK, "ce_rows_forward: %s", bn_error_message());
    return (fwd_out){cpu(lse), cpu(zt), zs ? cpu(zs) : NULL};
}

/* The backward kernel of z's device into a new dz of dtype ddt; lse and gr on the CPU. The
 * result comes back to the CPU. */
static bn_tensor *run_bwd(const bn_tensor *z, const bn_tensor *t, const bn_tensor *lse,
                          const bn_tensor *gr, double eps, bn_dtype ddt)
{
    bn_device dev = bn_device_of(z);
    bn_tensor *l = bn_tensor_to(lse, dev), *g = bn_tensor_to(gr, dev);
    bn_tensor *dz = bn_tensor_to(bn_full(bn_shape_of(z), -7, ddt), dev);
    cr_assert(l && g && dz, "%s", bn_error_message());
    bn_tview zv = bn__tview(z), tv = bn__tview(t), lv = bn__tview(l), gv = bn__tview(g);
    bn_tview dv = bn__tview(dz);
    bn_status st = nn_of(dev)->ce_rows_backward(&zv, &tv, &lv, &gv, eps, &dv);
    cr_assert_eq(st, BN_OK, "ce_rows_backward: %s", bn_error_message());
    return cpu(dz);
}

/* layout of z: contiguous; row stride V + 8 (16-byte rows for every dtype); row stride V + 3
 * (rows not 16-byte aligned); a start 2 bytes off (the view begins at column 1) */
enum { LAY_CONTIG, LAY_PAD8, LAY_PAD3, LAY_OFF1, LAY_COUNT };
static const char *const lay_names[LAY_COUNT] = {"contiguous", "row stride V+8", "row stride V+3",
                                                 "start off by one"};

/* One problem on both devices: forward against the CPU, then backward from the same (CPU) lse
 * into dz of z's dtype and of f32. zsc scales the logits. */
static void check_rows(int64_t R, int64_t V, bn_dtype dt, int lay, double zsc, double eps)
{
    bn_scope_begin();
    int64_t pad = lay == LAY_PAD8 ? 8 : lay == LAY_PAD3 ? 3 : lay == LAY_OFF1 ? 1 : 0;
    bn_tensor *zw = bn_to_dtype(bn_mul_scalar(bn_randn(BN_SHAPE(R, V + pad), BN_F32), zsc), dt);
    bn_tensor *zc = bn_narrow(zw, 1, lay == LAY_OFF1 ? 1 : 0, V);
    bn_tensor *zg = bn_narrow(gpu(zw), 1, lay == LAY_OFF1 ? 1 : 0, V);
    /* targets: every other element of an (R, 2) tensor when the layout is not contiguous */
    bn_tensor *t2 = bn_randint(0, V, BN_SHAPE(R, 2), BN_I64);
    bn_tensor *tc = lay == LAY_CONTIG ? bn_contiguous(bn_select(t2, 1, 0)) : bn_select(t2, 1, 1);
    bn_tensor *tg = lay == LAY_CONTIG ? gpu(tc) : bn_select(gpu(t2), 1, 1);
    cr_assert(zc && zg && tc && tg, "%s", bn_error_message());
    bool with_sum = eps != 0;
    fwd_out w = run_fwd(zc, tc, with_sum), g = run_fwd(zg, tg, with_sum);
    bn_dtype cdt = cdt_of(dt);
    double rt = cdt == BN_F64 ? 1e-12 : 1e-5;
    char m[200];
#define WHAT(s)                                                                                    \
    snprintf(m, sizeof m, "(%lld, %lld) %s %s eps %g: %s", (long long)R, (long long)V,             \
             bn_dtype_name(dt), lay_names[lay], eps, s)
    WHAT("lse");
    bnt_assert_close(g.lse, w.lse, rt, rt * zsc, m);
    WHAT("zt");
    bnt_assert_close(g.zt, w.zt, 0, 0, m);
    if (with_sum) {
        /* sums in double on both devices, in different orders */
        double mag = bn_item(bn_sum(bn_abs(bn_to_dtype(zc, BN_F64)), BN_ALL, false)) / (double)R;
        WHAT("zsum");
        bnt_assert_close(g.zsum, w.zsum, rt, (cdt == BN_F64 ? 1e-14 : 1e-7) * mag, m);
    }
    bn_tensor *gr = bn_to_dtype(bn_randn(BN_SHAPE(R), BN_F64), cdt);
    bn_dtype ddts[2] = {dt, cdt};
    for (int k = 0; k < (dt == cdt ? 1 : 2); k++) {
        bn_dtype ddt = ddts[k];
        bn_tensor *dg = run_bwd(zg, tg, w.lse, gr, eps, ddt);
        bn_tensor *dc = run_bwd(zc, tc, w.lse, gr, eps, ddt);
        double drt = ddt == BN_F64   ? 1e-12
                     : ddt == BN_F32 ? 1e-5
                     : ddt == BN_F16 ? 1.0 / 1024
                                     : 1.0 / 128;
        /* f32: a few units of the last place of the softmax weight (<= 1) times |gr|, which
         * is what is left where p - eps / V cancels */
        double gmax = bn_item(bn_max(bn_abs(bn_to_dtype(gr, BN_F64)), BN_ALL, false));
        double dat = ddt == BN_F64   ? 1e-15
                     : ddt == BN_F16 ? 0x1p-24
                     : ddt == BN_F32 ? 4 * 0x1p-24 * gmax
                                     : 1e-9;
        snprintf(m, sizeof m, "(%lld, %lld) %s %s eps %g: dz (%s)", (long long)R, (long long)V,
                 bn_dtype_name(dt), lay_names[lay], eps, bn_dtype_name(ddt));
        cr_assert_eq(bn_dtype_of(dg), ddt, "%s: dtype", m);
        bnt_assert_close(bn_to_dtype(dg, cdt), bn_to_dtype(dc, cdt), drt, dat, m);
    }
#undef WHAT
    bn_scope_end();
}

/* ce_rows_fused against ce_rows_forward then ce_rows_backward on the GPU: the same bits (f64: within
 * 1e-12, the compiler may contract f64's exp differently in the two kernels and p - eps / V
 * cancels). Rows of
 * 1000 classes (a warp each), 5000 f32 and 50304 bf16 (the shared-memory row cache), unaligned
 * rows (no cache). */
static void check_fused(int64_t R, int64_t V, bn_dtype dt, int lay, double eps)
{
    bn_scope_begin();
    const bn_backend_nn *nn = nn_of(bn_cuda(0));
    cr_assert_not_null(nn->ce_rows_fused, "the CUDA backend has no ce_rows_fused");
    int64_t pad = lay == LAY_PAD8 ? 8 : lay == LAY_PAD3 ? 3 : lay == LAY_OFF1 ? 1 : 0;
    bn_tensor *zw = gpu(bn_to_dtype(bn_mul_scalar(bn_randn(BN_SHAPE(R, V + pad), BN_F32), 3), dt));
    bn_tensor *z = bn_narrow(zw, 1, lay == LAY_OFF1 ? 1 : 0, V);
    bn_tensor *t = gpu(bn_randint(0, V, BN_SHAPE(R), BN_I64));
    bn_dtype cdt = cdt_of(dt);
    bn_tensor *gr = gpu(bn_to_dtype(bn_randn(BN_SHAPE(R), BN_F64), cdt));
    bn_tensor *o[2][4]; /* lse, zt, zsum, dz: separate, fused */
    for (int f = 0; f < 2; f++) {
        for (int i = 0; i < 3; i++) o[f][i] = gpu(bn_full(BN_SHAPE(R), -7, cdt));
        o[f][3] = gpu(bn_full(BN_SHAPE(R, V), -7, dt));
        bn_tview zv = bn__tview(z), tv = bn__tview(t), gv = bn__tview(gr);
        bn_tview v[4];
        for (int i = 0; i < 4; i++) v[i] = bn__tview(o[f][i]);
        const bn_tview *sum = eps != 0 ? &v[2] : NULL;
        bn_status st = f ? nn->ce_rows_fused(&zv, &tv, &v[0], &v[1], sum, &gv, eps, &v[3])
                         : nn->ce_rows_forward(&zv, &tv, &v[0], &v[1], sum);
        if (!f && st == BN_OK) st = nn->ce_rows_backward(&zv, &tv, &v[0], &gv, eps, &v[3]);
        cr_assert_eq(st, BN_OK, "%s", bn_error_message());
    }
    static const char *const what[4] = {"lse", "zt", "zsum", "dz"};
    for (int i = 0; i < 4; i++) {
        char m[160];
        snprintf(m, sizeof m, "fused (%lld, %lld) %s %s eps %g: %s", (long long)R, (long long)V,
                 bn_dtype_name(dt), lay_names[lay], eps, what[i]);
        double tol = dt == BN_F64 ? 1e-12 : 0;
        bnt_assert_close(cpu(o[1][i]), cpu(o[0][i]), tol, tol * 1e-3, m);
    }
    bn_scope_end();
}

Test(cuda_ce_rows, fused_entry_gives_the_bits_of_both_passes)
{
    NEED_GPU();
    BNT_ASSERT_NO_LEAK({
        check_fused(37, 1000, BN_BF16, LAY_CONTIG, 0);
        check_fused(9, 5000, BN_F32, LAY_PAD8, 0.1);
        check_fused(5, 50304, BN_BF16, LAY_CONTIG, 0.2);
        check_fused(7, 20001, BN_F16, LAY_PAD3, 0);
        check_fused(6, 300, BN_F64, LAY_OFF1, 0.05);
    });
}

Test(cuda_ce_rows, forward_and_backward_match_cpu)
{
    NEED_GPU();
    bn_manual_seed(21);
    /* (R, V): warp rows (V <= 1024), 256-thread rows (<= 16384), 512-thread rows */
    const int64_t shapes[][2] = {{1, 7},     {3, 8},      {17, 33},    {300, 1000}, {5, 1031},
                                 {64, 1024}, {9, 1025},   {3000, 64},  {40, 8192},  {7, 16385},
                                 {4, 50257}, {12, 50304}, {1, 50304}};
    const bn_dtype dts[3] = {BN_F32, BN_BF16, BN_F16};
    BNT_ASSERT_NO_LEAK({
        for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++)
            for (int d = 0; d < 3; d++)
                check_rows(shapes[i][0], shapes[i][1], dts[d], (int)((i + (size_t)d) % LAY_COUNT),
                           3.0, (i + (size_t)d) % 2 ? 0.1 : 0.0);
    });
}

Test(cuda_ce_rows, every_layout_and_f64)
{
    NEED_GPU();
    bn_manual_seed(22);
    const bn_dtype dts[4] = {BN_F32, BN_BF16, BN_F16, BN_F64};
    for (int d = 0; d < 4; d++)
        for (int lay = 0; lay < LAY_COUNT; lay++) {
            check_rows(33, 999, dts[d], lay, 2.0, 0.1);   /* warp rows, a tail */
            check_rows(6, 4100, dts[d], lay, 2.0, 0.0);   /* block rows */
            check_rows(3, 20001, dts[d], lay, 2.0, 0.05); /* 512-thread rows, a tail */
        }
    /* many rows: the grid strides over them */
    check_rows(3000, 7, BN_BF16, LAY_CONTIG, 1.0, 0.1);
    check_rows(3000, 777, BN_F32, LAY_PAD8, 1.0, 0.0);
}

Test(cuda_ce_rows, large_and_special_logits)
{
    NEED_GPU();
    bn_manual_seed(23);
    check_rows(20, 1500, BN_F32, LAY_CONTIG, 300.0, 0.1);
    check_rows(20, 1500, BN_BF16, LAY_CONTIG, 300.0, 0.1);
    check_rows(20, 30000, BN_F32, LAY_PAD3, 100.0, 0.0);
    const double I = INFINITY;
    /* all -inf; -inf and finite; a +inf; +inf and -inf; a NaN; a NaN and +inf; a peak */
    const int64_t V = 40;
    double zv[7][40];
    for (int r = 0; r < 7; r++)
        for (int c = 0; c < V; c++) zv[r][c] = sin(1.0 + r * 7 + c) * 3;
    for (int c = 0; c < V; c++) zv[0][c] = -I;
    for (int c = 0; c < V; c += 2) zv[1][c] = -I;
    zv[2][17] = I;
    zv[3][3] = I, zv[3][4] = -I;
    zv[4][30] = NAN;
    zv[5][0] = NAN, zv[5][39] = I;
    zv[6][11] = 3000;
    const int64_t tv[7] = {0, 1, 5, 3, 2, 8, 11};
    const bn_dtype dts[4] = {BN_F32, BN_BF16, BN_F16, BN_F64};
    for (int d = 0; d < 4; d++) {
        bn_scope_begin();
        bn_dtype dt = dts[d], cdt = cdt_of(dt);
        bn_tensor *zc = bn_to_dtype(bn_from_data(zv, BN_SHAPE(7, V), BN_F64), dt);
        bn_tensor *tc = bn_from_data(tv, BN_SHAPE(7), BN_I64);
        fwd_out w = run_fwd(zc, tc, true), g = run_fwd(gpu(zc), gpu(tc), true);
        char m[96];
        snprintf(m, sizeof m, "special rows %s: lse", bn_dtype_name(dt));
        bnt_assert_close(g.lse, w.lse, 1e-5, 1e-5, m);
        snprintf(m, sizeof m, "special rows %s: zt", bn_dtype_name(dt));
        bnt_assert_close(g.zt, w.zt, 0, 0, m);
        snprintf(m, sizeof m, "special rows %s: zsum", bn_dtype_name(dt));
        bnt_assert_close(g.zsum, w.zsum, 1e-5, 1e-4, m);
        snprintf(m, sizeof m, "special rows %s: lse against the composed op", bn_dtype_name(dt));
        bnt_assert_close(g.lse, bn_logsumexp(bn_to_dtype(zc, cdt), 1, false), 1e-5, 1e-5, m);
        bn_tensor *gr = bn_to_dtype(bn_randn(BN_SHAPE(7), BN_F64), cdt);
        snprintf(m, sizeof m, "special rows %s: dz", bn_dtype_name(dt));
        bnt_assert_close(bn_to_dtype(run_bwd(gpu(zc), gpu(tc), w.lse, gr, 0.1, cdt), BN_F64),
                         bn_to_dtype(run_bwd(zc, tc, w.lse, gr, 0.1, cdt), BN_F64), 1e-5, 1e-7,
                         m);
        bn_scope_end();
    }
}

Test(cuda_ce_rows, same_bits_every_run)
{
    NEED_GPU();
    bn_manual_seed(24);
    bn_scope_begin();
    const int64_t shapes[3][2] = {{50, 999}, {20, 9000}, {4, 50304}};
    for (int i = 0; i < 3; i++) {
        int64_t R = shapes[i][0], V = shapes[i][1];
        bn_tensor *z = gpu(bn_to_dtype(bn_randn(BN_SHAPE(R, V), BN_F32), BN_BF16));
        bn_tensor *t = gpu(bn_randint(0, V, BN_SHAPE(R), BN_I64));
        bn_tensor *gr = bn_randn(BN_SHAPE(R), BN_F32);
        fwd_out a = run_fwd(z, t, true), b = run_fwd(z, t, true);
        bnt_assert_equal(a.lse, b.lse, "lse twice");
        bnt_assert_equal(a.zsum, b.zsum, "zsum twice");
        bnt_assert_equal(run_bwd(z, t, a.lse, gr, 0.1, BN_BF16), run_bwd(z, t, a.lse, gr, 0.1, BN_BF16),
                         "dz twice");
        /* zsum is optional and changes nothing else */
        fwd_out c = run_fwd(z, t, false);
        bnt_assert_equal(c.lse, a.lse, "lse without zsum");
        bnt_assert_equal(c.zt, a.zt, "zt without zsum");
    }
    bn_scope_end();
}

/* ---- bn_linear_cross_entropy on the GPU -------------------------------------------------------- */
static void lce_run(bn_dtype dt, bn_ce_opts o, bool on_gpu, bn_tensor **res)
{
    bn_manual_seed(25);
    int64_t N = 700, D = 64, V = 5000;
    bn_tensor *x = bn_to_dtype(bn_randn(BN_SHAPE(N, D), BN_F32), dt);
    bn_tensor *w = bn_to_dtype(bn_mul_scalar(bn_randn(BN_SHAPE(V, D), BN_F32), 0.2), dt);
    bn_tensor *b = bn_to_dtype(bn_randn(BN_SHAPE(V), BN_F32), dt);
    bn_tensor *t = bn_randint(0, V, BN_SHAPE(N), BN_I64);
    if (o.use_ignore_index) {
        int64_t *tp = bn_tensor_data_i64(t);
        for (int64_t i = 0; i < N; i += 5) tp[i] = o.ignore_index;
    }
    if (on_gpu) x = gpu(x), w = gpu(w), b = gpu(b), t = gpu(t);
    bn_tensor *in[3] = {x, w, b};
    for (int i = 0; i < 3; i++) cr_assert_eq(bn_set_requires_grad(in[i], true), BN_OK);
    bn_tensor *loss = bn_linear_cross_entropy(x, w, b, t, o);
    cr_assert_not_null(loss, "linear_cross_entropy: %s", bn_error_message());
    cr_assert_eq(bn_backward(loss), BN_OK, "%s", bn_error_message());
    res[0] = bn_to_dtype(cpu(loss), BN_F64);
    for (int i = 0; i < 3; i++) res[i + 1] = bn_to_dtype(cpu(bn_grad(in[i])), BN_F64);
}

Test(cuda_ce_rows, linear_cross_entropy_matches_cpu)
{
    NEED_GPU();
    const bn_ce_opts opts[2] = {{0},
                                {.label_smoothing = 0.1, .use_ignore_index = true,
                                 .ignore_index = -100}};
    static const char *const what[4] = {"loss", "dx", "dw", "db"};
    BNT_ASSERT_NO_LEAK({
        for (int k = 0; k < 2; k++)
            for (int d = 0; d < 2; d++) {
                bn_scope_begin();
                bn_dtype dt = d ? BN_BF16 : BN_F32;
                bn_tensor *g[4], *c[4];
                lce_run(dt, opts[k], true, g);
                lce_run(dt, opts[k], false, c);
                for (int i = 0; i < 4; i++) {
                    /* f32: the GPU's products against the CPU's; bf16: the GPU rounds the
                     * products and dz to bf16, the CPU computes in f32 */
                    double scale = bn_item(bn_max(bn_abs(c[i]), BN_ALL, false));
                    double tol = dt == BN_F32 ? 1e-4 : 2e-2;
                    char m[96];
                    snprintf(m, sizeof m, "linear_cross_entropy %s opts %d: %s (GPU vs CPU)",
                             bn_dtype_name(dt), k, what[i]);
                    bnt_assert_close(g[i], c[i], tol, tol * scale, m);
                }
                bn_scope_end();
            }
    });
}

/* ---- bad views --------------------------------------------------------------------------------- */
Test(cuda_ce_rows, bad_inputs)
{
    NEED_GPU();
    bn_scope_begin();
    bn_device dev = bn_cuda(0);
    const bn_backend_nn *nn = nn_of(dev);
    bn_tensor *z = gpu(bn_randn(BN_SHAPE(3, 5), BN_F32)), *zi = gpu(bn_zeros(BN_SHAPE(3, 5), BN_I32));
    bn_tensor *zT = bn_transpose(gpu(bn_randn(BN_SHAPE(5, 3), BN_F32)), 0, 1);
    bn_tensor *t = gpu(bn_zeros(BN_SHAPE(3), BN_I64)), *t32 = gpu(bn_zeros(BN_SHAPE(3), BN_I32));
    bn_tensor *v = gpu(bn_zeros(BN_SHAPE(3), BN_F32)), *v64 = gpu(bn_zeros(BN_SHAPE(3), BN_F64));
    bn_tensor *dz64 = gpu(bn_zeros(BN_SHAPE(3, 5), BN_F64));
    bn_tensor *dzT = bn_transpose(gpu(bn_zeros(BN_SHAPE(5, 3), BN_F32)), 0, 1);
    bn_tview Z = bn__tview(z), ZI = bn__tview(zi), ZT = bn__tview(zT), T = bn__tview(t);
    bn_tview T32 = bn__tview(t32), L = bn__tview(v), L64 = bn__tview(v64);
    bn_tview D64 = bn__tview(dz64), DT = bn__tview(dzT);
    BNT_ASSERT_NO_LEAK({
        cr_assert_eq(nn->ce_rows_forward(&ZI, &T, &L, &L, NULL), BN_ERR_UNSUPPORTED);
        bnt_assert_error(BN_ERR_UNSUPPORTED, "ce_rows_forward", "z", "i32", NULL);
        cr_assert_eq(nn->ce_rows_forward(&ZT, &T, &L, &L, NULL), BN_ERR_UNSUPPORTED);
        bnt_assert_error(BN_ERR_UNSUPPORTED, "ce_rows_forward", "last stride 1", NULL);
        cr_assert_eq(nn->ce_rows_forward(&Z, &T32, &L, &L, NULL), BN_ERR_UNSUPPORTED);
        bnt_assert_error(BN_ERR_UNSUPPORTED, "ce_rows_forward", "target", "i32", NULL);
        cr_assert_eq(nn->ce_rows_forward(&Z, &T, &L64, &L, NULL), BN_ERR_UNSUPPORTED);
        bnt_assert_error(BN_ERR_UNSUPPORTED, "ce_rows_forward", "lse", "f64", NULL);
        cr_assert_eq(nn->ce_rows_backward(&Z, &T, &L, &L64, 0.0, &DT), BN_ERR_UNSUPPORTED);
        bnt_assert_error(BN_ERR_UNSUPPORTED, "ce_rows_backward", "gr", "f64", NULL);
        cr_assert_eq(nn->ce_rows_backward(&Z, &T, &L, &L, 0.0, &DT), BN_ERR_UNSUPPORTED);
        bnt_assert_error(BN_ERR_UNSUPPORTED, "ce_rows_backward", "dz", "contiguous", NULL);
        cr_assert_eq(nn->ce_rows_backward(&Z, &T, &L, &L, 0.0, &D64), BN_ERR_UNSUPPORTED);
        bnt_assert_error(BN_ERR_UNSUPPORTED, "ce_rows_backward", "dz", "f64", NULL);
    });
    /* no rows: nothing to do */
    bn_tensor *z0 = gpu(bn_zeros(BN_SHAPE(0, 5), BN_BF16)), *t0 = gpu(bn_zeros(BN_SHAPE(0), BN_I64));
    bn_tensor *l0 = gpu(bn_zeros(BN_SHAPE(0), BN_F32));
    bn_tview Z0 = bn__tview(z0), T0 = bn__tview(t0), L0 = bn__tview(l0);
    cr_assert_eq(nn->ce_rows_forward(&Z0, &T0, &L0, &L0, &L0), BN_OK, "%s", bn_error_message());
    bn_tview D0 = bn__tview(z0);
    cr_assert_eq(nn->ce_rows_backward(&Z0, &T0, &L0, &L0, 0.1, &D0), BN_OK, "%s",
                 bn_error_message());
    bn_scope_end();
}
