/* backend/cpu/ce_rows.c — the cross-entropy row kernels of bn_linear_cross_entropy's chunks
 * (backend_nn.h: ce_rows_forward, ce_rows_backward), one pass over each row of logits z (R, V)
 * instead of the composed logsumexp / gather / sum (forward) and exp / sub / scatter / mul
 * (backward) passes.
 *
 * f64 rows are computed in double with exp. f32, f16 and bf16 rows are computed in f32: f16 and
 * bf16 rows are first widened into a per-thread f32 row buffer; the max, the exp-and-sum and the
 * element-wise exp run on the vectorised math of vmath.h (libm expf where bn_vm() is NULL). The
 * sum of exponentials is accumulated as vmath.h's exp_sum does (f32 lanes per block, double
 * across blocks), the row sum of z in eight double lanes added in a fixed order, and the
 * log-sum-exp is formed in double and rounded once. Threads split the rows; a row's arithmetic
 * never depends on the thread count or on R. */
#include "backend/cpu/ce_rows.h"

#include "backend/cpu/cpu_kernels.h"
#include "backend/cpu/elementwise_impl.h"
#include "backend/cpu/iter.h"
#include "backend/cpu/vmath.h"

#include <math.h>
#include <stdlib.h>

static bool is_float(bn_dtype dt)
{
    return dt == BN_F32 || dt == BN_F64 || dt == BN_F16 || dt == BN_BF16;
}

/* z's compute dtype */
static bn_dtype cdt_of(bn_dtype dt) { return dt == BN_F64 ? BN_F64 : BN_F32; }

/* Checks what the kernels rely on (dtypes, shapes, strides, target range): the callers in ops/
 * guarantee it, but a bad view must give an error, never a bad read. */
static bn_status check_args(const char *fn, const bn_tview *z, const bn_tview *target,
                            const bn_tview *const *vecs, const char *const *names, int nvecs)
{
    if (!is_float(z->dtype))
        return bn__error(BN_ERR_UNSUPPORTED, "%s: z must be f32, f64, f16 or bf16, not %s", fn,
                         bn_dtype_name(z->dtype));
    if (z->ndim != 2 || (z->shape[1] > 1 && z->strides[1] != 1))
        return bn__error(BN_ERR_SHAPE, "%s: z must be (R, V) with last stride 1 (ndim %d)", fn,
                         z->ndim);
    int64_t R = z->shape[0], V = z->shape[1];
    if (target->dtype != BN_I64 || target->ndim != 1 || target->shape[0] != R)
        return bn__error(BN_ERR_UNSUPPORTED, "%s: target must be (R) = [%lld] i64, not %s", fn,
                         (long long)R, bn_dtype_name(target->dtype));
    bn_dtype cdt = cdt_of(z->dtype);
    for (int i = 0; i < nvecs; i++) {
        const bn_tview *v = vecs[i];
        if (!v) continue;
        if (v->dtype != cdt || v->ndim != 1 || v->shape[0] != R || (R > 1 && v->strides[0] != 1))
            return bn__error(BN_ERR_UNSUPPORTED,
                             "%s: %s must be (R) = [%lld] contiguous %s for %s z, not %s", fn,
                             names[i], (long long)R, bn_dtype_name(cdt), bn_dtype_name(z->dtype),
                             bn_dtype_name(v->dtype));
    }
    const int64_t *t = target->data;
    for (int64_t r = 0; r < R; r++) {
        int64_t c = t[r * target->strides[0]];
        if (c < 0 || c >= V)
            return bn__error(BN_ERR_ARG, "%s: target %lld (row %lld) is out of range for %lld "
                                         "classes",
                             fn, (long long)c, (long long)r, (long long)V);
    }
    return BN_OK;
}

static int64_t target_at(const bn_tview *t, int64_t r)
{
    return ((const int64_t *)t->data)[r * t->strides[0]];
}

/* sum of x[0..n) in double, eight lanes added in a fixed order */
static double sum_f32(const float *x, int64_t n)
{
    double l[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t k = 0;
    for (; k + 8 <= n; k += 8)
        for (int q = 0; q < 8; q++) l[q] += (double)x[k + q];
    for (; k < n; k++) l[k & 7] += (double)x[k];
    return ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
}

static double sum_f64(const double *x, int64_t n)
{
    double l[4] = {0, 0, 0, 0};
    int64_t k = 0;
    for (; k + 4 <= n; k += 4)
        for (int q = 0; q < 4; q++) l[q] += x[k + q];
    for (; k < n; k++) l[k & 3] += x[k];
    return (l[0] + l[1]) + (l[2] + l[3]);
}

/* The max as vmath.h's max returns it (NaN need not propagate: the sum of exps turns it into a
 * NaN); -inf for a row of -inf. */
static float max_f32(const bn_vm_kernels *vm, const float *x, int64_t n)
{
    if (vm) return vm->max(x, n);
    float m = -INFINITY;
    for (int64_t k = 0; k < n; k++) m = x[k] > m ? x[k] : m;
    return m;
}

static double exp_sum_f32(const bn_vm_kernels *vm, const float *x, int64_t n, float c)
{
    if (vm) return vm->exp_sum(x, NULL, n, c);
    double s = 0;
    for (int64_t k = 0; k < n; k++) s += (double)expf(x[k] - c);
    return s;
}

/* One row of f32 (z widened if needed): lse, zt, zsum. */
static void fwd_row_f32(const bn_vm_kernels *vm, const float *z, int64_t V, int64_t t, float *lse,
                        float *zt, float *zsum)
{
    float m = max_f32(vm, z, V);
    if (m == INFINITY) { /* torch's logsumexp: +inf, or NaN when a NaN is there too */
        bool nan = false;
        for (int64_t k = 0; k < V; k++) nan |= z[k] != z[k];
        *lse = nan ? NAN : INFINITY;
    } else { /* an all -inf row is not shifted (its sum is 0: lse -inf); NaN gives NaN */
        float c = m == -INFINITY ? 0.0f : m;
        *lse = (float)((double)c + log(exp_sum_f32(vm, z, V, c)));
    }
    *zt = z[t];
    if (zsum) *zsum = (float)sum_f32(z, V);
}

static void fwd_row_f64(const double *z, int64_t V, int64_t t, double *lse, double *zt,
                        double *zsum)
{
    double m = -INFINITY;
    bool nan = false;
    for (int64_t k = 0; k < V; k++) {
        m = z[k] > m ? z[k] : m;
        nan |= z[k] != z[k];
    }
    double c = isinf(m) ? 0.0 : m, s = 0;
    for (int64_t k = 0; k < V; k++) s += exp(z[k] - c);
    *lse = nan ? NAN : c + log(s);
    *zt = z[t];
    if (zsum) *zsum = sum_f64(z, V);
}

/* Runs over rows with one f32 row buffer per thread when need_buf; false when a buffer could not
 * be allocated. */
typedef struct ce_plan {
    const bn_tview *z, *target, *lse, *zt, *zsum, *gr, *dz;
    double smoothing;
    const bn_vm_kernels *vm;
} ce_plan;

static void fwd_row(const ce_plan *p, int64_t r, float *buf)
{
    const bn_tview *z = p->z;
    int64_t V = z->shape[1], t = target_at(p->target, r);
    size_t es = bn_dtype_size(z->dtype);
    const char *zr = (const char *)z->data + (size_t)(r * z->strides[0]) * es;
    if (z->dtype == BN_F64) {
        fwd_row_f64((const double *)zr, V, t, (double *)p->lse->data + r,
                    (double *)p->zt->data + r, p->zsum ? (double *)p->zsum->data + r : NULL);
        return;
    }
    const float *row = (const float *)zr;
    if (z->dtype != BN_F32) {
        bn_ew_load_half(zr, 1, z->dtype, buf, V);
        row = buf;
    }
    fwd_row_f32(p->vm, row, V, t, (float *)p->lse->data + r, (float *)p->zt->data + r,
                p->zsum ? (float *)p->zsum->data + r : NULL);
}

static void bwd_row(const ce_plan *p, int64_t r, float *buf)
{
    const bn_tview *z = p->z, *dz = p->dz;
    int64_t V = z->shape[1], t = target_at(p->target, r);
    size_t es = bn_dtype_size(z->dtype);
    const char *zr = (const char *)z->data + (size_t)(r * z->strides[0]) * es;
    if (z->dtype == BN_F64) {
        const double *x = (const double *)zr;
        double l = ((const double *)p->lse->data)[r], g = ((const double *)p->gr->data)[r];
        double a = p->smoothing / (double)V, hit = 1 - p->smoothing;
        double *o = (double *)dz->data + r * V; /* f64 z: f64 dz */
        for (int64_t k = 0; k < V; k++) {
            double v = exp(x[k] - l) - a;
            if (k == t) v -= hit;
            o[k] = v * g;
        }
        return;
    }
    float l = ((const float *)p->lse->data)[r], g = ((const float *)p->gr->data)[r];
    float a = (float)(p->smoothing / (double)V), hit = (float)(1 - p->smoothing);
    const float *x = (const float *)zr;
    if (z->dtype != BN_F32) {
        bn_ew_load_half(zr, 1, z->dtype, buf, V);
        x = buf;
    }
    float *d = dz->dtype == BN_F32 ? (float *)dz->data + r * V : buf;
    for (int64_t k = 0; k < V; k++) d[k] = x[k] - l;
    if (p->vm)
        p->vm->map[BN_VM_EXP](d, d, V, 0.0f, 0.0f);
    else
        for (int64_t k = 0; k < V; k++) d[k] = expf(d[k]);
    float et = d[t];
    for (int64_t k = 0; k < V; k++) d[k] = (d[k] - a) * g;
    d[t] = ((et - a) - hit) * g;
    if (dz->dtype != BN_F32) /* z's f16 / bf16: one rounding */
        bn_ew_store_half((char *)dz->data + (size_t)(r * V) * 2, 1, dz->dtype, d, V);
}

static bn_status run_rows(const ce_plan *p, const char *fn, bool backward)
{
    const bn_tview *z = p->z;
    int64_t R = z->shape[0], V = z->shape[1];
    bool need_buf = z->dtype != BN_F64 && (z->dtype != BN_F32 || (backward && p->dz->dtype !=
                                                                              BN_F32));
    bool parallel = R > 1 && R * V >= BN_PAR_MIN_ELEMS / 4 && bn_cpu_threads() > 1;
    int ok = 1;
#pragma omp parallel if (parallel) reduction(&& : ok)
    {
        float *buf = need_buf ? malloc((size_t)V * sizeof(float)) : NULL;
        if (need_buf && !buf) ok = 0;
#pragma omp for schedule(static)
        for (int64_t r = 0; r < R; r++) {
            if (need_buf && !buf) continue;
            if (backward)
                bwd_row(p, r, buf);
            else
                fwd_row(p, r, buf);
        }
        free(buf);
    }
    if (!ok)
        return bn__error(BN_ERR_OOM, "%s: out of memory for a row buffer of %lld floats", fn,
                         (long long)V);
    return BN_OK;
}

bn_status bn_cpu_ce_rows_forward(const bn_tview *z, const bn_tview *target, const bn_tview *lse,
                                 const bn_tview *zt, const bn_tview *zsum)
{
    const char *fn = "ce_rows_forward";
    const bn_tview *vecs[3] = {lse, zt, zsum};
    const char *names[3] = {"lse", "zt", "zsum"};
    bn_status st = check_args(fn, z, target, vecs, names, 3);
    if (st != BN_OK) return st;
    if (z->shape[0] == 0) return BN_OK;
    if (z->shape[1] == 0)
        return bn__error(BN_ERR_SHAPE, "%s: z has no classes (V = 0) for %lld rows", fn,
                         (long long)z->shape[0]);
    ce_plan p = {.z = z, .target = target, .lse = lse, .zt = zt, .zsum = zsum, .vm = bn_vm()};
    return run_rows(&p, fn, false);
}

bn_status bn_cpu_ce_rows_backward(const bn_tview *z, const bn_tview *target, const bn_tview *lse,
                                  const bn_tview *gr, double smoothing, const bn_tview *dz)
{
    const char *fn = "ce_rows_backward";
    const bn_tview *vecs[2] = {lse, gr};
    const char *names[2] = {"lse", "gr"};
    bn_status st = check_args(fn, z, target, vecs, names, 2);
    if (st != BN_OK) return st;
    bn_dtype cdt = cdt_of(z->dtype);
    if ((dz->dtype != z->dtype && dz->dtype != cdt) || dz->ndim != 2 ||
        dz->shape[0] != z->shape[0] || dz->shape[1] != z->shape[1] ||
        (dz->shape[0] > 1 && dz->shape[1] > 0 && dz->strides[0] != dz->shape[1]) ||
        (dz->shape[1] > 1 && dz->strides[1] != 1))
        return bn__error(BN_ERR_UNSUPPORTED,
                         "%s: dz must be a contiguous (R, V) = [%lld, %lld] of %s or %s, not %s "
                         "(ndim %d)",
                         fn, (long long)z->shape[0], (long long)z->shape[1],
                         bn_dtype_name(z->dtype), bn_dtype_name(cdt), bn_dtype_name(dz->dtype),
                         dz->ndim);
    if (z->shape[0] == 0 || z->shape[1] == 0) return BN_OK;
    ce_plan p = {.z = z, .target = target, .lse = lse, .gr = gr, .dz = dz,
                 .smoothing = smoothing, .vm = bn_vm()};
    return run_rows(&p, fn, true);
}
