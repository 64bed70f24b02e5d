/* core/dtype.c — dtype names, sizes, PyTorch's promotion rules, and exact IEEE conversions to
 * and from half (f16) and bfloat16 (round to nearest even; NaN, infinities and subnormals). */
#include "core/internal.h"

#include <math.h>
#include <string.h>

static const struct {
    const char *name;
    size_t size;
} dtype_info[BN_DTYPE_COUNT] = {
    [BN_F32] = {"f32", 4}, [BN_F64] = {"f64", 8}, [BN_F16] = {"f16", 2}, [BN_BF16] = {"bf16", 2},
    [BN_I8] = {"i8", 1},   [BN_U8] = {"u8", 1},   [BN_I32] = {"i32", 4}, [BN_I64] = {"i64", 8},
    [BN_BOOL] = {"bool", 1},
};

bool bn__dtype_valid(bn_dtype dt) { return (unsigned)dt < BN_DTYPE_COUNT; }
const char *bn_dtype_name(bn_dtype dt) { return bn__dtype_valid(dt) ? dtype_info[dt].name : "?"; }
size_t bn_dtype_size(bn_dtype dt) { return bn__dtype_valid(dt) ? dtype_info[dt].size : 0; }
bool bn_dtype_is_float(bn_dtype dt)
{
    return dt == BN_F32 || dt == BN_F64 || dt == BN_F16 || dt == BN_BF16;
}
bool bn_dtype_is_int(bn_dtype dt)
{
    return dt == BN_I8 || dt == BN_U8 || dt == BN_I32 || dt == BN_I64;
}

static int category(bn_dtype dt) { return dt == BN_BOOL ? 0 : bn_dtype_is_int(dt) ? 1 : 2; }

bn_dtype bn_promote_types(bn_dtype a, bn_dtype b)
{
    if (!bn__dtype_valid(a) || !bn__dtype_valid(b)) return BN_DTYPE_COUNT;
    if (a == b) return a;
    int ca = category(a), cb = category(b);
    if (ca != cb) return ca > cb ? a : b;
    if (ca == 2) {
        if ((a == BN_F16 && b == BN_BF16) || (a == BN_BF16 && b == BN_F16)) return BN_F32;
        return dtype_info[a].size >= dtype_info[b].size ? a : b;
    }
    /* integers: u8 with i8 needs i16, which born lacks: i32 is the next that holds both */
    if ((a == BN_U8 && b == BN_I8) || (a == BN_I8 && b == BN_U8)) return BN_I32;
    return dtype_info[a].size >= dtype_info[b].size ? a : b;
}

/* torch.result_type for two tensors: tensors with dims decide, and a 0-d tensor only raises the
 * result when it brings a higher category (a 0-d f64 does not widen an f16 tensor, but a 0-d
 * float does make an integer tensor float). */
bn_dtype bn__result_type(const bn_tensor *a, const bn_tensor *b)
{
    bool za = a->ndim == 0, zb = b->ndim == 0;
    if (za == zb) return bn_promote_types(a->dtype, b->dtype);
    bn_dtype dim = za ? b->dtype : a->dtype, zero = za ? a->dtype : b->dtype;
    if (category(zero) > category(dim)) return bn_promote_types(dim, zero);
    return dim;
}

bn_dtype bn__float_result(bn_dtype dt) { return bn_dtype_is_float(dt) ? dt : BN_F32; }

bn_dtype bn__promote_scalar(bn_dtype dt, double s)
{
    bool integral = isfinite(s) && s == trunc(s);
    if (bn_dtype_is_float(dt)) return dt;
    if (dt == BN_BOOL) return integral ? BN_I64 : BN_F32;
    return integral ? dt : BN_F32;
}

/* ---- half and bfloat16 --------------------------------------------------------------------
 * One rounding routine serves both: a binary format with `mant` fraction bits and exponent bias
 * `bias` (f16: 10, 15; bf16: 7, 127). Rounding straight from double avoids double rounding. */
static uint16_t round_to_small_float(double d, int mant, int bias)
{
    const int max_exp_field = (bias << 1) + 1; /* all ones: inf/NaN */
    uint16_t sign = signbit(d) ? (uint16_t)(1u << 15) : 0;
    if (isnan(d)) return (uint16_t)(sign | (max_exp_field << mant) | (1u << (mant - 1)));
    double a = fabs(d);
    if (isinf(a)) return (uint16_t)(sign | (max_exp_field << mant));
    if (a == 0.0) return sign;
    int e2;
    frexp(a, &e2);      /* a = m * 2^e2, m in [0.5, 1) */
    int E = e2 - 1;     /* a = f * 2^E, f in [1, 2) */
    if (E < 1 - bias) { /* subnormal: units of 2^(1 - bias - mant) */
        double q = nearbyint(ldexp(a, bias - 1 + mant));
        /* q == 2^mant rolls into the smallest normal, which the bit layout gives for free */
        return (uint16_t)(sign | (uint16_t)q);
    }
    double q = nearbyint(ldexp(a, mant - E)) - ldexp(1.0, mant); /* fraction in units */
    if (q >= ldexp(1.0, mant)) {
        q = 0;
        E++;
    }
    if (E + bias >= max_exp_field) return (uint16_t)(sign | (max_exp_field << mant));
    return (uint16_t)(sign | ((unsigned)(E + bias) << mant) | (unsigned)q);
}

static double small_float_to_double(uint16_t h, int mant, int bias)
{
    const unsigned max_exp_field = (unsigned)(bias << 1) + 1;
    unsigned exp = (h >> mant) & max_exp_field;
    unsigned frac = h & ((1u << mant) - 1);
    double s = (h & 0x8000) ? -1.0 : 1.0;
    if (exp == max_exp_field) return frac ? (s < 0 ? -NAN : NAN) : s * INFINITY;
    if (exp == 0) return s * ldexp((double)frac, 1 - bias - mant);
    return s * ldexp((double)(frac | (1u << mant)), (int)exp - bias - mant);
}

uint16_t bn_f64_to_f16(double d) { return round_to_small_float(d, 10, 15); }
uint16_t bn_f64_to_bf16(double d) { return round_to_small_float(d, 7, 127); }
float bn_f16_to_f32(uint16_t h) { return (float)small_float_to_double(h, 10, 15); }

uint16_t bn_f32_to_f16(float f)
{
    /* Fast path: normal results, no ties on the boundary of overflow. Checked against the
     * exhaustive reference in tests/unit/test_dtype.c. */
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000u;
    uint32_t abs = u & 0x7fffffffu;
    if (abs >= 0x38800000u && abs < 0x477ff000u) { /* 2^-14 <= |f| < 65520 - half ulp window */
        uint32_t mant = abs & 0x7fffffu;
        uint32_t exp = (abs >> 23) - 127 + 15;
        uint32_t h = (exp << 10) | (mant >> 13);
        uint32_t rest = mant & 0x1fffu;
        if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) h++;
        return (uint16_t)(sign | h);
    }
    return round_to_small_float((double)f, 10, 15);
}

float bn_bf16_to_f32(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t bn_f32_to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

/* ---- element access as double, for slow paths ------------------------------------------- */
double bn__load_f64(const void *p, bn_dtype dt)
{
    switch (dt) {
    case BN_F32: return *(const float *)p;
    case BN_F64: return *(const double *)p;
    case BN_F16: return bn_f16_to_f32(*(const uint16_t *)p);
    case BN_BF16: return bn_bf16_to_f32(*(const uint16_t *)p);
    case BN_I8: return *(const int8_t *)p;
    case BN_U8: return *(const uint8_t *)p;
    case BN_I32: return *(const int32_t *)p;
    case BN_I64: return (double)*(const int64_t *)p;
    case BN_BOOL: return *(const bool *)p ? 1.0 : 0.0;
    default: BN_ASSERT(0 && "invalid dtype");
    }
}

/* Float to integer: truncation toward zero, NaN to 0, saturating at the type's range (C makes
 * out-of-range conversions undefined; PyTorch leaves them unspecified). */
static double saturate(double v, double lo, double hi)
{
    if (isnan(v)) return 0;
    v = trunc(v);
    return v < lo ? lo : v > hi ? hi : v;
}

void bn__store_f64(void *p, bn_dtype dt, double v)
{
    switch (dt) {
    case BN_F32: *(float *)p = (float)v; break;
    case BN_F64: *(double *)p = v; break;
    case BN_F16: *(uint16_t *)p = bn_f64_to_f16(v); break;
    case BN_BF16: *(uint16_t *)p = bn_f64_to_bf16(v); break;
    case BN_I8: *(int8_t *)p = (int8_t)saturate(v, INT8_MIN, INT8_MAX); break;
    case BN_U8: *(uint8_t *)p = (uint8_t)saturate(v, 0, UINT8_MAX); break;
    case BN_I32: *(int32_t *)p = (int32_t)saturate(v, INT32_MIN, INT32_MAX); break;
    case BN_I64: {
        /* 2^63 is not representable in int64; saturate just below it */
        double t = saturate(v, -9223372036854775808.0, 9223372036854774784.0);
        *(int64_t *)p = (int64_t)t;
        break;
    }
    case BN_BOOL: *(bool *)p = v != 0.0; break;
    default: BN_ASSERT(0 && "invalid dtype");
    }
}
