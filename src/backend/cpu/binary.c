/* backend/cpu/binary.c — the CPU `binary` slot: element-wise arithmetic, comparisons and logical
 * ops on two broadcast operands of one dtype.
 *
 * Each dtype has one kernel (floats instantiated by FLOAT_BINARY_KERNEL, integers by
 * INT_BINARY_KERNEL) with contiguous fast paths for the three layouts broadcasting produces most:
 * both operands contiguous, b a broadcast scalar, a a broadcast scalar. f16/bf16 go through f32
 * blocks (elementwise_impl.h). Integer arithmetic wraps; integer remainder by zero is reported
 * as an error, since PyTorch raises there too. */
#include "backend/cpu/cpu_kernels.h"
#include "backend/cpu/elementwise_impl.h"
#include "backend/cpu/iter.h"

#include <math.h>
#include <stdatomic.h>

/* o[i] = expr for i < n, where expr reads a's element as `u` and b's as `v`. The output never
 * overlaps an input (it is a fresh tensor); a and b may be the same memory (both read-only). */
#define MAP2(T, TO, expr)                                                                          \
    do {                                                                                           \
        const T *as_ = (const T *)pa;                                                              \
        const T *bs_ = (const T *)pb;                                                              \
        TO *restrict os_ = (TO *)po;                                                               \
        if (so == 1 && sa == 1 && sb == 1) {                                                       \
            for (int64_t i = 0; i < n; i++) {                                                      \
                T u = as_[i], v = bs_[i];                                                          \
                os_[i] = (expr);                                                                   \
            }                                                                                      \
        } else if (so == 1 && sa == 1 && sb == 0) {                                                \
            const T v = bs_[0];                                                                    \
            for (int64_t i = 0; i < n; i++) {                                                      \
                T u = as_[i];                                                                      \
                os_[i] = (expr);                                                                   \
            }                                                                                      \
        } else if (so == 1 && sa == 0 && sb == 1) {                                                \
            const T u = as_[0];                                                                    \
            for (int64_t i = 0; i < n; i++) {                                                      \
                T v = bs_[i];                                                                      \
                os_[i] = (expr);                                                                   \
            }                                                                                      \
        } else {                                                                                   \
            for (int64_t i = 0; i < n; i++) {                                                      \
                T u = as_[i * sa], v = bs_[i * sb];                                                \
                os_[i * so] = (expr);                                                              \
            }                                                                                      \
        }                                                                                          \
    } while (0)

/* Python's %: the result takes the divisor's sign (torch.remainder). */
static inline float rem_f32(float a, float b)
{
    float m = fmodf(a, b);
    if (m != 0 && ((b < 0) != (m < 0))) m += b;
    return m;
}
static inline double rem_f64(double a, double b)
{
    double m = fmod(a, b);
    if (m != 0 && ((b < 0) != (m < 0))) m += b;
    return m;
}
/* maximum/minimum propagate NaN from either side, like torch.maximum */
static inline float max_f32(float a, float b) { return (a > b || a != a) ? a : b; }
static inline float min_f32(float a, float b) { return (a < b || a != a) ? a : b; }
static inline double max_f64(double a, double b) { return (a > b || a != a) ? a : b; }
static inline double min_f64(double a, double b) { return (a < b || a != a) ? a : b; }

/* The activations' derivatives (autograd/grad_elementwise_unary.c has the same formulas composed
 * of ops): gelu' = Phi(x) + x phi(x); gelu_tanh' = (1 + t)/2 + x/2 (1 - t^2) k (1 + 3 c x^2)
 * with t = tanh(k (x + c x^3)); silu' = s (1 + x (1 - s)) with s = sigmoid(x). */
#define ACT_GRADS(T, SFX, M)                                                                       \
    static inline T gelu_grad_##SFX(T x)                                                           \
    {                                                                                              \
        T cdf = (T)0.5 * ((T)1 + M(erf)(x * (T)0.70710678118654752440));                           \
        return cdf + x * M(exp)((T)-0.5 * x * x) * (T)0.39894228040143267794;                      \
    }                                                                                              \
    static inline T gelu_tanh_grad_##SFX(T x)                                                      \
    {                                                                                              \
        T x2 = x * x;                                                                              \
        T t = M(tanh)((T)0.79788456080286535588 * x * ((T)1 + (T)0.044715 * x2));                  \
        T dinner = (T)0.79788456080286535588 * ((T)1 + (T)(3 * 0.044715) * x2);                    \
        return (T)0.5 * ((T)1 + t) + (T)0.5 * x * ((T)1 - t * t) * dinner;                         \
    }                                                                                              \
    static inline T silu_grad_##SFX(T x)                                                           \
    {                                                                                              \
        T s = (T)1 / ((T)1 + M(exp)(-x));                                                          \
        return s * ((T)1 + x * ((T)1 - s));                                                        \
    }

#define F32M(fn) fn##f
#define F64M(fn) fn

/* a, b, out are (n) with strides sa, sb, so; a and b of type T; out T or bool. */
#define FLOAT_BINARY_KERNEL(NAME, T, M, SFX)                                                       \
    static void NAME(bn_binary_op op, const char *pa, int64_t sa, const char *pb, int64_t sb,      \
                     char *po, int64_t so, int64_t n, atomic_int *div_zero)                        \
    {                                                                                              \
        (void)div_zero;                                                                            \
        switch (op) {                                                                              \
        case BN_BINARY_ADD: MAP2(T, T, u + v); break;                                              \
        case BN_BINARY_SUB: MAP2(T, T, u - v); break;                                              \
        case BN_BINARY_MUL: MAP2(T, T, u *v); break;                                               \
        case BN_BINARY_DIV: MAP2(T, T, u / v); break;                                              \
        case BN_BINARY_POW: MAP2(T, T, M(pow)(u, v)); break;                                       \
        case BN_BINARY_MAXIMUM: MAP2(T, T, max_##SFX(u, v)); break;                                \
        case BN_BINARY_MINIMUM: MAP2(T, T, min_##SFX(u, v)); break;                                \
        case BN_BINARY_REMAINDER: MAP2(T, T, rem_##SFX(u, v)); break;                              \
        case BN_BINARY_RELU_GRAD: MAP2(T, T, v <= 0 ? (T)0 : u); break;                            \
        case BN_BINARY_GELU_GRAD: MAP2(T, T, u *gelu_grad_##SFX(v)); break;                        \
        case BN_BINARY_GELU_TANH_GRAD: MAP2(T, T, u *gelu_tanh_grad_##SFX(v)); break;              \
        case BN_BINARY_SILU_GRAD: MAP2(T, T, u *silu_grad_##SFX(v)); break;                        \
        case BN_BINARY_EQ: MAP2(T, bool, u == v); break;                                           \
        case BN_BINARY_NE: MAP2(T, bool, u != v); break;                                           \
        case BN_BINARY_LT: MAP2(T, bool, u < v); break;                                            \
        case BN_BINARY_LE: MAP2(T, bool, u <= v); break;                                           \
        case BN_BINARY_GT: MAP2(T, bool, u > v); break;                                            \
        case BN_BINARY_GE: MAP2(T, bool, u >= v); break;                                           \
        case BN_BINARY_AND: MAP2(T, bool, u != 0 && v != 0); break;                                \
        case BN_BINARY_OR: MAP2(T, bool, u != 0 || v != 0); break;                                 \
        case BN_BINARY_XOR: MAP2(T, bool, (u != 0) != (v != 0)); break;                            \
        case BN_BINARY_COUNT: BN_ASSERT(0);                                                        \
        }                                                                                          \
    }

ACT_GRADS(float, f32, F32M)
ACT_GRADS(double, f64, F64M)

FLOAT_BINARY_KERNEL(binary_f32, float, F32M, f32)
FLOAT_BINARY_KERNEL(binary_f64, double, F64M, f64)

/* Remainder with the divisor's sign; a zero divisor gives 0 and raises the flag. -1 is taken
 * apart because INT_MIN % -1 traps on x86. */
static inline int64_t int_rem(int64_t a, int64_t b, bool *zero)
{
    if (b == 0) {
        *zero = true;
        return 0;
    }
    if (b == -1) return 0;
    int64_t r = a % b;
    if (r != 0 && ((r < 0) != (b < 0))) r += b;
    return r;
}

/* Comparisons and logical ops of two T operands, writing bool: shared by integers and bool. */
#define COMPARE_LOGICAL_CASES(T)                                                                   \
    case BN_BINARY_EQ: MAP2(T, bool, u == v); break;                                               \
    case BN_BINARY_NE: MAP2(T, bool, u != v); break;                                               \
    case BN_BINARY_LT: MAP2(T, bool, u < v); break;                                                \
    case BN_BINARY_LE: MAP2(T, bool, u <= v); break;                                               \
    case BN_BINARY_GT: MAP2(T, bool, u > v); break;                                                \
    case BN_BINARY_GE: MAP2(T, bool, u >= v); break;                                               \
    case BN_BINARY_AND: MAP2(T, bool, u != 0 && v != 0); break;                                    \
    case BN_BINARY_OR: MAP2(T, bool, u != 0 || v != 0); break;                                     \
    case BN_BINARY_XOR: MAP2(T, bool, (u != 0) != (v != 0)); break;

/* Integer dtype T with unsigned twin UT: + - * wrap through UT; pow wraps through 64 bits. */
#define INT_BINARY_KERNEL(NAME, T, UT)                                                             \
    static void NAME(bn_binary_op op, const char *pa, int64_t sa, const char *pb, int64_t sb,      \
                     char *po, int64_t so, int64_t n, atomic_int *div_zero)                        \
    {                                                                                              \
        switch (op) {                                                                              \
        case BN_BINARY_ADD: MAP2(T, T, (T)(UT)((UT)u + (UT)v)); break;                             \
        case BN_BINARY_SUB: MAP2(T, T, (T)(UT)((UT)u - (UT)v)); break;                             \
        case BN_BINARY_MUL: MAP2(T, T, (T)(UT)((UT)u * (UT)v)); break;                             \
        case BN_BINARY_POW: MAP2(T, T, (T)bn_ew_ipow((int64_t)u, (int64_t)v)); break;              \
        case BN_BINARY_MAXIMUM: MAP2(T, T, u > v ? u : v); break;                                  \
        case BN_BINARY_MINIMUM: MAP2(T, T, u < v ? u : v); break;                                  \
        case BN_BINARY_REMAINDER: {                                                                \
            bool zero = false;                                                                     \
            MAP2(T, T, (T)int_rem((int64_t)u, (int64_t)v, &zero));                                 \
            if (zero) atomic_store_explicit(div_zero, 1, memory_order_relaxed);                    \
            break;                                                                                 \
        }                                                                                          \
            COMPARE_LOGICAL_CASES(T)                                                               \
        default: BN_ASSERT(0 && "unsupported integer binary op");                                  \
        }                                                                                          \
    }

INT_BINARY_KERNEL(binary_i8, int8_t, uint8_t)
INT_BINARY_KERNEL(binary_u8, uint8_t, uint8_t)
INT_BINARY_KERNEL(binary_i32, int32_t, uint32_t)
INT_BINARY_KERNEL(binary_i64, int64_t, uint64_t)

/* bool: comparisons and logical ops; bn_cpu_binary maps + and maximum to "or", * and minimum to
 * "and" (what torch computes for bool), and ops/ refuses - pow and remainder */
static void binary_bool(bn_binary_op op, const char *pa, int64_t sa, const char *pb, int64_t sb,
                        char *po, int64_t so, int64_t n, atomic_int *div_zero)
{
    (void)div_zero;
    switch (op) {
        COMPARE_LOGICAL_CASES(bool)
    default: BN_ASSERT(0 && "unsupported bool binary op");
    }
}

typedef void (*binary_fn)(bn_binary_op op, const char *pa, int64_t sa, const char *pb, int64_t sb,
                          char *po, int64_t so, int64_t n, atomic_int *div_zero);

typedef struct binary_ctx {
    bn_binary_op op;
    bn_dtype dt; /* the operands' dtype */
    binary_fn fn;
    atomic_int div_zero;
} binary_ctx;

static bool writes_bool(bn_binary_op op) { return op >= BN_BINARY_EQ; }

/* operand 0 is out, 1 is a, 2 is b */
static void binary_run(void *vctx, char *const *p, const int64_t *s, int64_t n)
{
    binary_ctx *c = vctx;
    c->fn(c->op, p[1], s[1], p[2], s[2], p[0], s[0], n, &c->div_zero);
}

/* f16/bf16: both operands through f32 blocks; a float result is rounded once, a bool result is
 * written straight to out */
static void binary_run_half(void *vctx, char *const *p, const int64_t *s, int64_t n)
{
    binary_ctx *c = vctx;
    float ab[BN_EW_BLOCK], bb[BN_EW_BLOCK], ob[BN_EW_BLOCK];
    bool to_bool = writes_bool(c->op);
    for (int64_t i0 = 0; i0 < n; i0 += BN_EW_BLOCK) {
        int64_t m = n - i0 < BN_EW_BLOCK ? n - i0 : BN_EW_BLOCK;
        bn_ew_load_half(p[1] + i0 * s[1] * 2, s[1], c->dt, ab, m);
        bn_ew_load_half(p[2] + i0 * s[2] * 2, s[2], c->dt, bb, m);
        if (to_bool) {
            binary_f32(c->op, (const char *)ab, 1, (const char *)bb, 1, p[0] + i0 * s[0], s[0], m,
                       NULL);
        } else {
            binary_f32(c->op, (const char *)ab, 1, (const char *)bb, 1, (char *)ob, 1, m, NULL);
            bn_ew_store_half(p[0] + i0 * s[0] * 2, s[0], c->dt, ob, m);
        }
    }
}

static bool supported(bn_binary_op op, bn_dtype dt)
{
    if (bn_dtype_is_float(dt)) return true;
    if (op >= BN_BINARY_RELU_GRAD && op <= BN_BINARY_SILU_GRAD) return false;
    if (op == BN_BINARY_DIV) return false; /* ops/ divides integers in f32 */
    if (dt == BN_BOOL)
        return op != BN_BINARY_SUB && op != BN_BINARY_POW && op != BN_BINARY_REMAINDER;
    return bn_dtype_is_int(dt);
}

static binary_fn kernel_for(bn_dtype dt)
{
    switch (dt) {
    case BN_F32:
    case BN_F16:
    case BN_BF16: return binary_f32;
    case BN_F64: return binary_f64;
    case BN_I8: return binary_i8;
    case BN_U8: return binary_u8;
    case BN_I32: return binary_i32;
    case BN_I64: return binary_i64;
    case BN_BOOL: return binary_bool;
    default: return NULL;
    }
}

bn_status bn_cpu_binary(bn_binary_op op, const bn_tview *a, const bn_tview *b, const bn_tview *out)
{
    if ((unsigned)op >= BN_BINARY_COUNT || !supported(op, a->dtype))
        return bn__error(BN_ERR_UNSUPPORTED, "cpu binary: op %d has no kernel for %s", (int)op,
                         bn_dtype_name(a->dtype));
    if (a->dtype == BN_BOOL) {
        if (op == BN_BINARY_ADD || op == BN_BINARY_MAXIMUM) op = BN_BINARY_OR;
        if (op == BN_BINARY_MUL || op == BN_BINARY_MINIMUM) op = BN_BINARY_AND;
    }
    const bn_tview *ops[3] = {out, a, b};
    bn_iter it;
    bn_iter_init(&it, 3, ops);
    binary_ctx c = {.op = op, .dt = a->dtype, .fn = kernel_for(a->dtype)};
    atomic_init(&c.div_zero, 0);
    bool costly = op == BN_BINARY_POW || bn_ew_is_half(a->dtype) ||
                  (op == BN_BINARY_REMAINDER && bn_dtype_is_float(a->dtype));
    bn_iter_run(&it, bn_ew_is_half(a->dtype) ? binary_run_half : binary_run, &c,
                costly ? BN_EW_PAR_MIN_COSTLY : 0);
    if (atomic_load(&c.div_zero))
        return bn__error(BN_ERR_ARG, "bn_remainder: integer division by zero (b has a zero "
                                     "element)");
    return BN_OK;
}
