/* backend/cpu/transformer.c — the CPU's fused element-wise transformer kernels (issue 7): gated
 * activations (SwiGLU, GeGLU, ReGLU, sigmoid GLU) forward and backward, and rotary position
 * embeddings. Each reads its input once and writes its output once; the composed versions in
 * ops/ (narrow, activation, mul, cat) make four to six passes and as many temporaries.
 *
 * Exactness: for f32 and f64 every result equals the composed version's bit for bit, because
 * each element goes through the same operations in the same order:
 *   - the activation is the unary kernel's (unary.c): vmath.h's vectorised map for f32 (libm's
 *     formula when this CPU has no vmath), libm for f64;
 *   - the derivative follows autograd/grad_elementwise_unary.c's rule step by step (the same
 *     scalar constants rounded to the dtype, the same transcendental calls), each step rounded
 *     to the dtype as a separate op would round it;
 *   - rope's pair (a c - b s, a s + b c) is ops/positional.c's composed product.
 * f16/bf16 load into f32 blocks, run the f32 code and round once on the way out (the composed
 * version rounds after every op, so there the fused result is the more accurate one).
 * Rows are spread over OpenMP threads with a static schedule; no element's arithmetic depends on
 * the split. */
#include "backend/cpu/transformer_kernels.h"
#include "backend/cpu/elementwise_impl.h"
#include "backend/cpu/iter.h"
#include "backend/cpu/vmath.h"
#include "born/transformer.h"

#include <math.h>

/* f32 elements per block of the gated activations' temporaries (on the stack) */
#define GLU_BLOCK 256

/* constants of grad_elementwise_unary.c's rules and unary.c's kernels */
#define SQRT_2 1.41421356237309504880
#define INV_SQRT_2PI 0.39894228040143267794
#define GELU_TANH_BETA 0.7978845608028654 /* sqrt(2 / pi) */
#define GELU_TANH_KAPPA 0.044715

/* ---- f32 building blocks -------------------------------------------------------------------- */
/* y[i] = op(x[i]) for i < n: vmath's map when the CPU has it (as unary.c), else unary.c's libm
 * formula of the op. */
static void vmap(const bn_vm_kernels *vm, bn_vm_op op, const float *x, float *y, int64_t n)
{
    if (vm) {
        vm->map[op](x, y, n, 0.0f, 0.0f);
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        switch (op) {
        case BN_VM_EXP: y[i] = expf(v); break;
        case BN_VM_TANH: y[i] = tanhf(v); break;
        case BN_VM_SIGMOID: y[i] = 1.0f / (1.0f + expf(-v)); break;
        case BN_VM_ERF: y[i] = erff(v); break;
        case BN_VM_GELU: y[i] = 0.5f * v * (1.0f + erff(v * (float)M_SQRT1_2)); break;
        case BN_VM_GELU_TANH:
            y[i] = 0.5f * v *
                   (1.0f + tanhf((float)GELU_TANH_BETA * (v + (float)GELU_TANH_KAPPA * v * v * v)));
            break;
        case BN_VM_SILU: y[i] = v / (1.0f + expf(-v)); break;
        default: BN_ASSERT(0 && "vmap: op without a libm twin here");
        }
    }
}

/* act(a) into y (n <= GLU_BLOCK) */
static void glu_act_f32(const bn_vm_kernels *vm, int kind, const float *a, float *y, int64_t n)
{
    switch (kind) {
    case BN_GLU_SWIGLU: vmap(vm, BN_VM_SILU, a, y, n); break;
    case BN_GLU_GEGLU: vmap(vm, BN_VM_GELU, a, y, n); break;
    case BN_GLU_GEGLU_TANH: vmap(vm, BN_VM_GELU_TANH, a, y, n); break;
    case BN_GLU_REGLU:
        for (int64_t i = 0; i < n; i++) y[i] = a[i] < 0 ? 0.0f : a[i]; /* NaN stays NaN */
        break;
    default: vmap(vm, BN_VM_SIGMOID, a, y, n); break;
    }
}

/* out = act(a) * b over n <= GLU_BLOCK contiguous elements */
static void glu_fwd_block_f32(const bn_vm_kernels *vm, int kind, const float *a, const float *b,
                              float *out, int64_t n)
{
    float act[GLU_BLOCK];
    glu_act_f32(vm, kind, a, act, n);
    for (int64_t i = 0; i < n; i++) out[i] = act[i] * b[i];
}

/* da = g b act'(a), db = g act(a) over n <= GLU_BLOCK elements, each step rounded to f32 like
 * the composed rule's ops (see the file comment). */
static void glu_bwd_block_f32(const bn_vm_kernels *vm, int kind, const float *a, const float *b,
                              const float *g, float *da, float *db, int64_t n)
{
    float act[GLU_BLOCK], t1[GLU_BLOCK], t2[GLU_BLOCK];
    glu_act_f32(vm, kind, a, act, n);
    for (int64_t i = 0; i < n; i++) db[i] = g[i] * act[i];
    switch (kind) {
    case BN_GLU_SWIGLU: /* s (1 + a (1 - s)), s = sigmoid(a) */
        vmap(vm, BN_VM_SIGMOID, a, t1, n);
        for (int64_t i = 0; i < n; i++) {
            float s = t1[i], u = a[i] * (1.0f - s);
            u = u + 1.0f;
            u = s * u;
            da[i] = (g[i] * b[i]) * u;
        }
        break;
    case BN_GLU_GEGLU: /* Phi(a) + a phi(a) */
        for (int64_t i = 0; i < n; i++) {
            t1[i] = a[i] / (float)SQRT_2;
            float sq = a[i] * a[i];
            t2[i] = sq * -0.5f;
        }
        vmap(vm, BN_VM_ERF, t1, t1, n);
        vmap(vm, BN_VM_EXP, t2, t2, n);
        for (int64_t i = 0; i < n; i++) {
            float cdf = t1[i] + 1.0f;
            cdf = cdf * 0.5f;
            float pdf = t2[i] * (float)INV_SQRT_2PI;
            float xp = a[i] * pdf;
            da[i] = (g[i] * b[i]) * (cdf + xp);
        }
        break;
    case BN_GLU_GEGLU_TANH: /* (1 + t)/2 + a/2 (1 - t^2) k (1 + 3 c a^2) */
        for (int64_t i = 0; i < n; i++) {
            float x2 = a[i] * a[i];
            float inner = x2 * (float)GELU_TANH_KAPPA;
            inner = inner + 1.0f;
            inner = a[i] * inner;
            t1[i] = inner * (float)GELU_TANH_BETA;
        }
        vmap(vm, BN_VM_TANH, t1, t1, n);
        for (int64_t i = 0; i < n; i++) {
            float t = t1[i], x2 = a[i] * a[i];
            float left = t + 1.0f;
            left = left * 0.5f;
            float dinner = x2 * (float)(3 * GELU_TANH_KAPPA);
            dinner = dinner + 1.0f;
            dinner = dinner * (float)GELU_TANH_BETA;
            float tt = t * t;
            float om = 1.0f - tt;
            float right = om * dinner;
            float half_a = a[i] * 0.5f;
            right = half_a * right;
            da[i] = (g[i] * b[i]) * (left + right);
        }
        break;
    case BN_GLU_REGLU: /* g b where a > 0 (NaN passes), else 0 */
        for (int64_t i = 0; i < n; i++) da[i] = a[i] <= 0 ? 0.0f : g[i] * b[i];
        break;
    default: /* sigmoid: y (1 - y) */
        for (int64_t i = 0; i < n; i++) {
            float y = act[i], om = 1.0f - y;
            da[i] = (g[i] * b[i]) * (y * om);
        }
        break;
    }
}

/* ---- f64: libm, the same steps -------------------------------------------------------------- */
static double glu_act_f64(int kind, double v)
{
    switch (kind) {
    case BN_GLU_SWIGLU: return v / (1.0 + exp(-v));
    case BN_GLU_GEGLU: return 0.5 * v * (1.0 + erf(v * M_SQRT1_2));
    case BN_GLU_GEGLU_TANH:
        return 0.5 * v * (1.0 + tanh(GELU_TANH_BETA * (v + GELU_TANH_KAPPA * v * v * v)));
    case BN_GLU_REGLU: return v < 0 ? 0.0 : v;
    default: return 1.0 / (1.0 + exp(-v));
    }
}

/* act'(v) as the composed rule computes it */
static double glu_dact_f64(int kind, double v)
{
    switch (kind) {
    case BN_GLU_SWIGLU: {
        double s = 1.0 / (1.0 + exp(-v)), u = v * (1.0 - s);
        u = u + 1.0;
        return s * u;
    }
    case BN_GLU_GEGLU: {
        double cdf = erf(v / SQRT_2) + 1.0;
        cdf = cdf * 0.5;
        double sq = v * v;
        double pdf = exp(sq * -0.5) * INV_SQRT_2PI;
        return cdf + v * pdf;
    }
    case BN_GLU_GEGLU_TANH: {
        double x2 = v * v;
        double inner = x2 * GELU_TANH_KAPPA;
        inner = inner + 1.0;
        inner = v * inner;
        double t = tanh(inner * GELU_TANH_BETA);
        double left = (t + 1.0) * 0.5;
        double dinner = x2 * (3 * GELU_TANH_KAPPA);
        dinner = (dinner + 1.0) * GELU_TANH_BETA;
        double tt = t * t;
        double right = (1.0 - tt) * dinner;
        double half_v = v * 0.5;
        return left + half_v * right;
    }
    default: {
        double y = 1.0 / (1.0 + exp(-v)), om = 1.0 - y;
        return y * om;
    }
    }
}

/* ---- gated activations ---------------------------------------------------------------------- */
typedef struct glu_job {
    int kind;
    const bn_tview *x, *dout, *out; /* out: the forward's out or the backward's dx */
    int64_t rows, F;
    bool backward;
} glu_job;

/* One row of a f16/bf16 problem: blocks of a, b (and g) loaded to f32, rounded once. */
static void glu_row_half(const bn_vm_kernels *vm, const glu_job *j, int64_t r)
{
    bn_dtype dt = j->x->dtype;
    const char *xr = (const char *)j->x->data + r * j->x->strides[0] * 2;
    float a[GLU_BLOCK], b[GLU_BLOCK], g[GLU_BLOCK], da[GLU_BLOCK], db[GLU_BLOCK];
    for (int64_t c0 = 0; c0 < j->F; c0 += GLU_BLOCK) {
        int64_t m = j->F - c0 < GLU_BLOCK ? j->F - c0 : GLU_BLOCK;
        bn_ew_load_half(xr + c0 * 2, 1, dt, a, m);
        bn_ew_load_half(xr + (j->F + c0) * 2, 1, dt, b, m);
        if (!j->backward) {
            glu_fwd_block_f32(vm, j->kind, a, b, da, m);
            bn_ew_store_half((char *)j->out->data + (r * j->F + c0) * 2, 1, dt, da, m);
            continue;
        }
        const char *gr = (const char *)j->dout->data + r * j->dout->strides[0] * 2;
        bn_ew_load_half(gr + c0 * 2, 1, dt, g, m);
        glu_bwd_block_f32(vm, j->kind, a, b, g, da, db, m);
        char *dr = (char *)j->out->data + r * 2 * j->F * 2;
        bn_ew_store_half(dr + c0 * 2, 1, dt, da, m);
        bn_ew_store_half(dr + (j->F + c0) * 2, 1, dt, db, m);
    }
}

static void glu_row(const bn_vm_kernels *vm, const glu_job *j, int64_t r)
{
    int64_t F = j->F;
    switch (j->x->dtype) {
    case BN_F32: {
        const float *x = (const float *)j->x->data + r * j->x->strides[0];
        for (int64_t c0 = 0; c0 < F; c0 += GLU_BLOCK) {
            int64_t m = F - c0 < GLU_BLOCK ? F - c0 : GLU_BLOCK;
            if (!j->backward) {
                glu_fwd_block_f32(vm, j->kind, x + c0, x + F + c0,
                                  (float *)j->out->data + r * F + c0, m);
            } else {
                const float *g = (const float *)j->dout->data + r * j->dout->strides[0];
                float *d = (float *)j->out->data + r * 2 * F;
                glu_bwd_block_f32(vm, j->kind, x + c0, x + F + c0, g + c0, d + c0, d + F + c0, m);
            }
        }
        break;
    }
    case BN_F64: {
        const double *x = (const double *)j->x->data + r * j->x->strides[0];
        if (!j->backward) {
            double *o = (double *)j->out->data + r * F;
            for (int64_t c = 0; c < F; c++) o[c] = glu_act_f64(j->kind, x[c]) * x[F + c];
            break;
        }
        const double *g = (const double *)j->dout->data + r * j->dout->strides[0];
        double *d = (double *)j->out->data + r * 2 * F;
        for (int64_t c = 0; c < F; c++) {
            double a = x[c], b = x[F + c];
            d[F + c] = g[c] * glu_act_f64(j->kind, a);
            if (j->kind == BN_GLU_REGLU) d[c] = a <= 0 ? 0.0 : g[c] * b;
            else d[c] = (g[c] * b) * glu_dact_f64(j->kind, a);
        }
        break;
    }
    default: glu_row_half(vm, j, r); break;
    }
}

static bn_status glu_run(const char *fn, const glu_job *j)
{
    bn_dtype dt = j->x->dtype;
    if (dt != BN_F32 && dt != BN_F64 && !bn_ew_is_half(dt))
        return bn__error(BN_ERR_UNSUPPORTED, "%s: no kernel for %s", fn, bn_dtype_name(dt));
    if ((unsigned)j->kind > BN_GLU_SIGMOID)
        return bn__error(BN_ERR_ARG, "%s: kind %d is not a bn_glu_kind", fn, j->kind);
    const bn_vm_kernels *vm = bn_vm();
    int64_t rows = j->rows;
    /* transcendental per element: parallel from fewer elements than a plain copy */
    bool par = rows > 1 && rows * j->F >= BN_EW_PAR_MIN_COSTLY;
#pragma omp parallel for schedule(static) if (par)
    for (int64_t r = 0; r < rows; r++) glu_row(vm, j, r);
    return BN_OK;
}

bn_status bn_cpu_glu_forward(int kind, const bn_tview *x, const bn_tview *out)
{
    glu_job j = {.kind = kind, .x = x, .out = out, .rows = x->shape[0], .F = x->shape[1] / 2};
    return glu_run("cpu glu_forward", &j);
}

bn_status bn_cpu_glu_backward(int kind, const bn_tview *x, const bn_tview *dout,
                              const bn_tview *dx)
{
    glu_job j = {.kind = kind, .x = x, .dout = dout, .out = dx, .rows = x->shape[0],
                 .F = x->shape[1] / 2, .backward = true};
    return glu_run("cpu glu_backward", &j);
}

/* ---- rotary embeddings ---------------------------------------------------------------------- */
/* Element access of the three storage kinds, all computed in CT (float for f32/f16/bf16). */
static inline float ld_f32(const void *p, int64_t i) { return ((const float *)p)[i]; }
static inline void st_f32(void *p, int64_t i, float v) { ((float *)p)[i] = v; }
static inline double ld_f64(const void *p, int64_t i) { return ((const double *)p)[i]; }
static inline void st_f64(void *p, int64_t i, double v) { ((double *)p)[i] = v; }
static inline float ld_f16(const void *p, int64_t i)
{
    return bn_f16_to_f32(((const uint16_t *)p)[i]);
}
static inline void st_f16(void *p, int64_t i, float v) { ((uint16_t *)p)[i] = bn_f32_to_f16(v); }
static inline float ld_bf16(const void *p, int64_t i)
{
    return bn_ew_bf16_to_f32(((const uint16_t *)p)[i]);
}
static inline void st_bf16(void *p, int64_t i, float v)
{
    ((uint16_t *)p)[i] = bn_ew_f32_to_bf16(v);
}

/* One row of D features at x (stride 1) into o: c, s are this row's half = rd / 2 table
 * entries; sg = -1 rotates by -angle. The products and the difference/sum are rounded like
 * the composed version's separate ops. */
#define ROPE_ROW(NAME, CT, LD, ST)                                                                 \
    static void NAME(const void *x, void *o, const CT *c, const CT *s, int64_t D, int64_t rd,     \
                     bool interleaved, CT sg)                                                      \
    {                                                                                              \
        int64_t half = rd / 2;                                                                     \
        int64_t ia = 0, ib = half, step = 1;                                                       \
        if (interleaved) ia = 0, ib = 1, step = 2;                                                 \
        for (int64_t i = 0; i < half; i++) {                                                       \
            int64_t pa = ia + i * step, pb = ib + i * step;                                        \
            CT a = LD(x, pa), b = LD(x, pb), ci = c[i], si = sg * s[i];                            \
            CT ac = a * ci, bs = b * si, as = a * si, bc = b * ci;                                 \
            ST(o, pa, ac - bs);                                                                    \
            ST(o, pb, as + bc);                                                                    \
        }                                                                                          \
        for (int64_t k = rd; k < D; k++) ST(o, k, LD(x, k));                                       \
    }

ROPE_ROW(rope_row_f32, float, ld_f32, st_f32)
ROPE_ROW(rope_row_f64, double, ld_f64, st_f64)
ROPE_ROW(rope_row_f16, float, ld_f16, st_f16)
ROPE_ROW(rope_row_bf16, float, ld_bf16, st_bf16)

bn_status bn_cpu_rope(const bn_tview *x, const bn_tview *cos, const bn_tview *sin,
                      const bn_tview *out, const bn_rope_geom *g)
{
    bn_dtype dt = x->dtype, cdt = dt == BN_F64 ? BN_F64 : BN_F32;
    if (dt != BN_F32 && dt != BN_F64 && !bn_ew_is_half(dt))
        return bn__error(BN_ERR_UNSUPPORTED, "cpu rope: no kernel for %s", bn_dtype_name(dt));
    if (cos->dtype != cdt || sin->dtype != cdt)
        return bn__error(BN_ERR_UNSUPPORTED, "cpu rope: the tables must be %s for %s x, not %s",
                         bn_dtype_name(cdt), bn_dtype_name(dt), bn_dtype_name(cos->dtype));
    int64_t nb = x->shape[0], nh = x->shape[1], T = x->shape[2], D = x->shape[3];
    int64_t half = g->rd / 2, trows = cos->shape[0], rows = nb * nh * T;
    size_t es = bn_dtype_size(dt), ces = bn_dtype_size(cdt);
    bool par = rows > 1 && rows * D >= BN_PAR_MIN_ELEMS;
#pragma omp parallel for schedule(static) if (par)
    for (int64_t r = 0; r < rows; r++) {
        int64_t t = r % T, h = (r / T) % nh, b = r / (T * nh);
        int64_t toff = ((trows == 1 ? 0 : b) * T + t) * half;
        const char *xr = (const char *)x->data +
                         (b * x->strides[0] + h * x->strides[1] + t * x->strides[2]) * (int64_t)es;
        char *orow = (char *)out->data + r * D * (int64_t)es;
        const char *cp = (const char *)cos->data + toff * (int64_t)ces;
        const char *sp = (const char *)sin->data + toff * (int64_t)ces;
        switch (dt) {
        case BN_F32:
            rope_row_f32(xr, orow, (const float *)cp, (const float *)sp, D, g->rd, g->interleaved,
                         g->inverse ? -1.0f : 1.0f);
            break;
        case BN_F64:
            rope_row_f64(xr, orow, (const double *)cp, (const double *)sp, D, g->rd,
                         g->interleaved, g->inverse ? -1.0 : 1.0);
            break;
        case BN_F16:
            rope_row_f16(xr, orow, (const float *)cp, (const float *)sp, D, g->rd, g->interleaved,
                         g->inverse ? -1.0f : 1.0f);
            break;
        default:
            rope_row_bf16(xr, orow, (const float *)cp, (const float *)sp, D, g->rd,
                          g->interleaved, g->inverse ? -1.0f : 1.0f);
            break;
        }
    }
    return BN_OK;
}
