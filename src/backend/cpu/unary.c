/* backend/cpu/unary.c — the CPU `unary` slot: element-wise math on one tensor.
 *
 * f32 and f64 have one kernel each (the same code, instantiated by FLOAT_UNARY_KERNEL); every
 * contiguous case is a plain loop the compiler can vectorise. f16/bf16 go through f32 blocks
 * (elementwise_impl.h). Integer kernels cover the ops that keep an integer dtype (neg, abs,
 * sign, relu, clamp, floor/ceil/round as the identity); ops/ casts integer inputs of the
 * fraction-producing ops to f32 before they get here.
 *
 * f32 exp, log, tanh, sigmoid, erf, gelu, gelu_tanh, silu, softplus and elu run on the
 * vectorised math of vmath.h: contiguous runs directly, strided ones through a contiguous
 * block, so every element gets the same algorithm whatever its layout or the thread split.
 * f64 keeps libm, and so do f16/bf16 (their f32 blocks): rounding a few-ulp f32 result to 16
 * bits could land on the other side of a halfway point from libm's. */
#include "backend/cpu/cpu_kernels.h"
#include "backend/cpu/elementwise_impl.h"
#include "backend/cpu/iter.h"
#include "backend/cpu/vmath.h"

#include <math.h>

/* y[i] = expr for i < n, where expr reads the element as `v`. x and y never overlap (y is a
 * fresh output). */
#define MAP1(TX, TY, expr)                                                                         \
    do {                                                                                           \
        const TX *restrict xs_ = (const TX *)px;                                                   \
        TY *restrict ys_ = (TY *)py;                                                               \
        if (sx == 1 && sy == 1) {                                                                  \
            for (int64_t i = 0; i < n; i++) {                                                      \
                TX v = xs_[i];                                                                     \
                ys_[i] = (expr);                                                                   \
            }                                                                                      \
        } else {                                                                                   \
            for (int64_t i = 0; i < n; i++) {                                                      \
                TX v = xs_[i * sx];                                                                \
                ys_[i * sy] = (expr);                                                              \
            }                                                                                      \
        }                                                                                          \
    } while (0)

/* Math function names per float type: F32M(exp) is expf, F64M(exp) is exp. */
#define F32M(fn) fn##f
#define F64M(fn) fn

/* sqrt(2/pi) and the cubic coefficient of the tanh form of GELU (as torch's approximate='tanh') */
#define GELU_TANH_BETA 0.7978845608028654
#define GELU_TANH_KAPPA 0.044715

/* x is (n) with stride sx, y is (n) with stride sy, both of type T. Clamp bounds are already
 * ordered (lo <= hi) and not NaN (bn_cpu_unary handles those). */
#define FLOAT_UNARY_KERNEL(NAME, T, M)                                                             \
    static void NAME(bn_unary_op op, const char *px, int64_t sx, char *py, int64_t sy, int64_t n,  \
                     const bn_unary_params *p)                                                     \
    {                                                                                              \
        const T alpha = (T)p->alpha, beta = (T)p->beta, lo = (T)p->lo, hi = (T)p->hi;              \
        switch (op) {                                                                              \
        case BN_UNARY_NEG: MAP1(T, T, -v); break;                                                  \
        case BN_UNARY_ABS: MAP1(T, T, M(fabs)(v)); break;                                          \
        case BN_UNARY_EXP: MAP1(T, T, M(exp)(v)); break;                                           \
        case BN_UNARY_LOG: MAP1(T, T, M(log)(v)); break;                                           \
        case BN_UNARY_LOG1P: MAP1(T, T, M(log1p)(v)); break;                                       \
        case BN_UNARY_SQRT: MAP1(T, T, M(sqrt)(v)); break;                                         \
        case BN_UNARY_RSQRT: MAP1(T, T, (T)1 / M(sqrt)(v)); break;                                 \
        case BN_UNARY_SIN: MAP1(T, T, M(sin)(v)); break;                                           \
        case BN_UNARY_COS: MAP1(T, T, M(cos)(v)); break;                                           \
        case BN_UNARY_TANH: MAP1(T, T, M(tanh)(v)); break;                                         \
        /* exp(-v) overflows to inf for very negative v, giving exactly 0: no NaN */               \
        case BN_UNARY_SIGMOID: MAP1(T, T, (T)1 / ((T)1 + M(exp)(-v))); break;                      \
        case BN_UNARY_RELU: MAP1(T, T, v < 0 ? (T)0 : v); break; /* NaN stays NaN */               \
        case BN_UNARY_LEAKY_RELU: MAP1(T, T, v > 0 ? v : v * alpha); break;                        \
        case BN_UNARY_ELU: MAP1(T, T, v > 0 ? v : alpha * M(expm1)(v)); break;                     \
        case BN_UNARY_GELU: MAP1(T, T, (T)0.5 * v * ((T)1 + M(erf)(v * (T)M_SQRT1_2))); break;     \
        case BN_UNARY_GELU_TANH:                                                                   \
            MAP1(T, T,                                                                             \
                 (T)0.5 * v *                                                                      \
                     ((T)1 + M(tanh)((T)GELU_TANH_BETA * (v + (T)GELU_TANH_KAPPA * v * v * v))));  \
            break;                                                                                 \
        case BN_UNARY_SILU: MAP1(T, T, v / ((T)1 + M(exp)(-v))); break;                            \
        /* alpha is beta and beta the threshold (backend.h) */                                     \
        case BN_UNARY_SOFTPLUS:                                                                    \
            MAP1(T, T, v *alpha > beta ? v : M(log1p)(M(exp)(v * alpha)) / alpha);                 \
            break;                                                                                 \
        case BN_UNARY_ERF: MAP1(T, T, M(erf)(v)); break;                                           \
        case BN_UNARY_FLOOR: MAP1(T, T, M(floor)(v)); break;                                       \
        case BN_UNARY_CEIL: MAP1(T, T, M(ceil)(v)); break;                                         \
        case BN_UNARY_ROUND: MAP1(T, T, M(nearbyint)(v)); break;       /* half to even */          \
        case BN_UNARY_SIGN: MAP1(T, T, (T)((0 < v) - (v < 0))); break; /* sign(NaN) = 0 */         \
        case BN_UNARY_CLAMP:                                                                       \
            if (p->has_lo && p->has_hi)                                                            \
                MAP1(T, T, v<lo ? lo : v> hi ? hi : v);                                            \
            else if (p->has_lo)                                                                    \
                MAP1(T, T, v < lo ? lo : v);                                                       \
            else                                                                                   \
                MAP1(T, T, v > hi ? hi : v);                                                       \
            break;                                                                                 \
        case BN_UNARY_LOGICAL_NOT: MAP1(T, bool, v == 0); break;                                   \
        case BN_UNARY_COUNT: BN_ASSERT(0);                                                         \
        }                                                                                          \
    }

FLOAT_UNARY_KERNEL(unary_f32, float, F32M)
FLOAT_UNARY_KERNEL(unary_f64, double, F64M)

/* Sign tests through int64, so one kernel body serves signed and unsigned types. */
static inline bool is_negative(int64_t v) { return v < 0; }
static inline int int_sign(int64_t v) { return (v > 0) - (v < 0); }

/* Integer dtype T with unsigned twin UT; x and y are (n) with strides sx, sy. Elements are read
 * as int64 for the sign tests (so unsigned types need no special case); neg/abs wrap like
 * PyTorch (neg of -128 in i8 is -128). Clamp bounds are already saturated to T's range. */
#define INT_UNARY_KERNEL(NAME, T, UT)                                                              \
    static void NAME(bn_unary_op op, const char *px, int64_t sx, char *py, int64_t sy, int64_t n,  \
                     const bn_unary_params *p)                                                     \
    {                                                                                              \
        const T lo = (T)p->lo, hi = (T)p->hi;                                                      \
        switch (op) {                                                                              \
        case BN_UNARY_NEG: MAP1(T, T, (T)(UT)(0u - (UT)v)); break;                                 \
        case BN_UNARY_ABS: MAP1(T, T, is_negative(v) ? (T)(UT)(0u - (UT)v) : v); break;            \
        case BN_UNARY_RELU: MAP1(T, T, is_negative(v) ? (T)0 : v); break;                          \
        case BN_UNARY_SIGN: MAP1(T, T, (T)int_sign(v)); break;                                     \
        case BN_UNARY_FLOOR:                                                                       \
        case BN_UNARY_CEIL:                                                                        \
        case BN_UNARY_ROUND: MAP1(T, T, v); break;                                                 \
        case BN_UNARY_CLAMP:                                                                       \
            if (p->has_lo && p->has_hi)                                                            \
                MAP1(T, T, v<lo ? lo : v> hi ? hi : v);                                            \
            else if (p->has_lo)                                                                    \
                MAP1(T, T, v < lo ? lo : v);                                                       \
            else                                                                                   \
                MAP1(T, T, v > hi ? hi : v);                                                       \
            break;                                                                                 \
        case BN_UNARY_LOGICAL_NOT: MAP1(T, bool, v == 0); break;                                   \
        default: BN_ASSERT(0 && "unsupported integer unary op");                                   \
        }                                                                                          \
    }

INT_UNARY_KERNEL(unary_i8, int8_t, uint8_t)
INT_UNARY_KERNEL(unary_u8, uint8_t, uint8_t)
INT_UNARY_KERNEL(unary_i32, int32_t, uint32_t)
INT_UNARY_KERNEL(unary_i64, int64_t, uint64_t)
INT_UNARY_KERNEL(unary_bool, bool, uint8_t)

typedef void (*unary_fn)(bn_unary_op op, const char *px, int64_t sx, char *py, int64_t sy,
                         int64_t n, const bn_unary_params *p);

typedef struct unary_ctx {
    bn_unary_op op;
    bn_dtype dt; /* x's dtype */
    unary_fn fn; /* the kernel for dt (for f16/bf16: the f32 one) */
    const bn_unary_params *p;
} unary_ctx;

/* The vmath op computing unary op for f32, or -1 when it has none. */
static int vm_op_for(bn_unary_op op)
{
    switch (op) {
    case BN_UNARY_EXP: return BN_VM_EXP;
    case BN_UNARY_LOG: return BN_VM_LOG;
    case BN_UNARY_TANH: return BN_VM_TANH;
    case BN_UNARY_SIGMOID: return BN_VM_SIGMOID;
    case BN_UNARY_ERF: return BN_VM_ERF;
    case BN_UNARY_GELU: return BN_VM_GELU;
    case BN_UNARY_GELU_TANH: return BN_VM_GELU_TANH;
    case BN_UNARY_SILU: return BN_VM_SILU;
    case BN_UNARY_SOFTPLUS: return BN_VM_SOFTPLUS;
    case BN_UNARY_ELU: return BN_VM_ELU;
    default: return -1;
    }
}

/* x and y are (n) f32, contiguous: the vmath kernel when op has one, else unary_f32 */
static void unary_f32_contig(bn_unary_op op, const float *x, float *y, int64_t n,
                             const bn_unary_params *p)
{
    int v = vm_op_for(op);
    if (v < 0) {
        unary_f32(op, (const char *)x, 1, (char *)y, 1, n, p);
        return;
    }
    bn_vm()->map[v](x, y, n, (float)p->alpha, (float)p->beta);
}

/* f32 with strides sx, sy: contiguous runs directly, strided ones through a block */
static void unary_f32_vm(bn_unary_op op, const char *px, int64_t sx, char *py, int64_t sy,
                         int64_t n, const bn_unary_params *p)
{
    if (sx == 1 && sy == 1) {
        unary_f32_contig(op, (const float *)px, (float *)py, n, p);
        return;
    }
    const float *x = (const float *)px;
    float *y = (float *)py;
    float xb[BN_EW_BLOCK], yb[BN_EW_BLOCK];
    for (int64_t i0 = 0; i0 < n; i0 += BN_EW_BLOCK) {
        int64_t m = n - i0 < BN_EW_BLOCK ? n - i0 : BN_EW_BLOCK;
        for (int64_t i = 0; i < m; i++) xb[i] = x[(i0 + i) * sx];
        unary_f32_contig(op, xb, yb, m, p);
        for (int64_t i = 0; i < m; i++) y[(i0 + i) * sy] = yb[i];
    }
}

/* operand 0 is out, 1 is x */
static void unary_run(void *vctx, char *const *p, const int64_t *s, int64_t n)
{
    const unary_ctx *c = vctx;
    c->fn(c->op, p[1], s[1], p[0], s[0], n, c->p);
}

/* f16/bf16: through f32 blocks, rounded once on the way out */
static void unary_run_half(void *vctx, char *const *p, const int64_t *s, int64_t n)
{
    const unary_ctx *c = vctx;
    float xb[BN_EW_BLOCK], yb[BN_EW_BLOCK];
    for (int64_t i0 = 0; i0 < n; i0 += BN_EW_BLOCK) {
        int64_t m = n - i0 < BN_EW_BLOCK ? n - i0 : BN_EW_BLOCK;
        bn_ew_load_half(p[1] + i0 * s[1] * 2, s[1], c->dt, xb, m);
        unary_f32(c->op, (const char *)xb, 1, (char *)yb, 1, m, c->p);
        bn_ew_store_half(p[0] + i0 * s[0] * 2, s[0], c->dt, yb, m);
    }
}

/* logical_not of f16/bf16 straight from the bits: zero is +-0, everything else (NaN too) is
 * true */
static void logical_not_half(void *vctx, char *const *p, const int64_t *s, int64_t n)
{
    (void)vctx;
    const uint16_t *x = (const uint16_t *)p[1];
    bool *y = (bool *)p[0];
    for (int64_t i = 0; i < n; i++) y[i * s[0]] = (x[i * s[1]] & 0x7fffu) == 0;
}

static bool is_float_only(bn_unary_op op)
{
    switch (op) {
    case BN_UNARY_NEG:
    case BN_UNARY_ABS:
    case BN_UNARY_RELU:
    case BN_UNARY_SIGN:
    case BN_UNARY_FLOOR:
    case BN_UNARY_CEIL:
    case BN_UNARY_ROUND:
    case BN_UNARY_CLAMP:
    case BN_UNARY_LOGICAL_NOT: return false;
    default: return true;
    }
}

static bool is_costly(bn_unary_op op)
{
    return is_float_only(op) && op != BN_UNARY_RELU && op != BN_UNARY_LEAKY_RELU;
}

static bool supported(bn_unary_op op, bn_dtype dt)
{
    if (bn_dtype_is_float(dt)) return true;
    if (is_float_only(op)) return false;
    if (dt == BN_BOOL)
        return op == BN_UNARY_SIGN || op == BN_UNARY_LOGICAL_NOT || op == BN_UNARY_FLOOR ||
               op == BN_UNARY_CEIL || op == BN_UNARY_ROUND;
    return true;
}

static unary_fn kernel_for(bn_dtype dt)
{
    switch (dt) {
    case BN_F32:
    case BN_F16:
    case BN_BF16: return unary_f32;
    case BN_F64: return unary_f64;
    case BN_I8: return unary_i8;
    case BN_U8: return unary_u8;
    case BN_I32: return unary_i32;
    case BN_I64: return unary_i64;
    case BN_BOOL: return unary_bool;
    default: return NULL;
    }
}

/* Integer clamp bounds: saturated to dt's range, which clamps exactly (a bound below every value
 * of dt never binds). */
static double saturate_to(bn_dtype dt, double v)
{
    double lo, hi;
    switch (dt) {
    case BN_I8: lo = INT8_MIN, hi = INT8_MAX; break;
    case BN_U8: lo = 0, hi = UINT8_MAX; break;
    case BN_I32: lo = INT32_MIN, hi = INT32_MAX; break;
    case BN_I64: lo = -9223372036854775808.0, hi = 9223372036854774784.0; break;
    default: return v;
    }
    return v < lo ? lo : v > hi ? hi : v;
}

/* out is x's shape; every element NaN (a NaN clamp bound makes every result NaN, as torch) */
static bn_status fill_nan(const bn_tview *out) { return bn_cpu_fill(out, NAN); }

bn_status bn_cpu_unary(bn_unary_op op, const bn_tview *x, const bn_tview *out,
                       const bn_unary_params *p)
{
    if ((unsigned)op >= BN_UNARY_COUNT || !supported(op, x->dtype))
        return bn__error(BN_ERR_UNSUPPORTED, "cpu unary: op %d has no kernel for %s", (int)op,
                         bn_dtype_name(x->dtype));
    bn_unary_params q = p ? *p : (bn_unary_params){0};
    if (op == BN_UNARY_CLAMP) {
        if (bn_dtype_is_float(x->dtype) && ((q.has_lo && isnan(q.lo)) || (q.has_hi && isnan(q.hi))))
            return fill_nan(out);
        /* min(max(x, lo), hi): with lo > hi every result is hi */
        if (q.has_lo && q.has_hi && q.lo > q.hi) q.lo = q.hi;
        if (!bn_dtype_is_float(x->dtype)) {
            q.lo = saturate_to(x->dtype, q.lo);
            q.hi = saturate_to(x->dtype, q.hi);
        }
    }
    const bn_tview *ops[2] = {out, x};
    bn_iter it;
    bn_iter_init(&it, 2, ops);
    unary_ctx c = {op, x->dtype, kernel_for(x->dtype), &q};
    if (x->dtype == BN_F32 && vm_op_for(op) >= 0 && bn_vm()) c.fn = unary_f32_vm;
    bn_iter_fn run = unary_run;
    if (bn_ew_is_half(x->dtype))
        run = op == BN_UNARY_LOGICAL_NOT ? logical_not_half : unary_run_half;
    bn_iter_run(&it, run, &c, is_costly(op) ? BN_EW_PAR_MIN_COSTLY : 0);
    return BN_OK;
}
