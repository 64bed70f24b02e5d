/* tests/unit/test_dtype.c — dtype conversions: half / bfloat16 rounding in core/dtype.c against an
 * independent slow reference (exhaustive where 65536 patterns allow, 1M random values elsewhere)
 * and against PyTorch; bn_promote_types against torch.promote_types; bn_to_dtype between every
 * pair of dtypes against torch's .to().
 * Fixtures: tests/data/dtype.txt, made by scripts/gen_dtype.py (/usr/bin/python3).
 *
 * Where born differs from torch on purpose (each checked below, not skipped silently):
 *   - u8 with i8 promotes to i32 in born (torch: int16, which born does not have);
 *   - f64 -> f16 / bf16 rounds once in born; torch rounds to f32 first, then again;
 *   - float -> integer where C++ leaves the result undefined (NaN, inf, a truncated value out of
 *     the target's range): born saturates (NaN -> 0); torch's result is whatever the CPU
 *     instruction gives, so those elements are not compared with torch. */
#include "bn_test.h"

#include "core/internal.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- an independent reference for 16-bit floats ------------------------------------------------
 * A format with `mant` fraction bits and exponent bias `bias` (f16: 10, 15; bf16: 7, 127). The
 * positive patterns 0 .. inf_bits are increasing in value; the inf pattern is given the value
 * 2^(emax+1) that the next binade would start at, so ordinary round-to-nearest-even onto this
 * table overflows to inf exactly where IEEE says it does. */
typedef struct small_format {
    int mant, bias;
    uint16_t inf_bits;
    double *value; /* value[b] for b = 0 .. inf_bits */
} small_format;

static double decode_ieee(uint32_t bits, int mant, int bias)
{
    uint32_t e = bits >> mant, f = bits & ((1u << mant) - 1);
    if (e == 0) return ldexp((double)f, 1 - bias - mant);
    return ldexp((double)(f + (1u << mant)), (int)e - bias - mant);
}

static small_format format_make(int mant, int bias)
{
    small_format fmt = {mant, bias, (uint16_t)((2 * bias + 1) << mant), NULL};
    fmt.value = malloc(sizeof(double) * ((size_t)fmt.inf_bits + 1));
    cr_assert_not_null(fmt.value);
    for (uint32_t b = 0; b <= fmt.inf_bits; b++) fmt.value[b] = decode_ieee(b, mant, bias);
    return fmt;
}

static bool is_nan_bits(uint16_t h, const small_format *fmt)
{
    return (h & 0x7fffu) > fmt->inf_bits;
}

/* The value of a pattern: NaN, ±inf, or the table value with its sign. */
static double ref_to_double(uint16_t h, const small_format *fmt)
{
    if (is_nan_bits(h, fmt)) return NAN;
    uint16_t a = h & 0x7fffu;
    double v = a == fmt->inf_bits ? INFINITY : fmt->value[a];
    return (h & 0x8000u) ? -v : v;
}

/* Round to nearest, ties to the even pattern, by searching the table (no bit tricks). NaN gives
 * the inf pattern with a set fraction bit; callers compare NaN-ness only. */
static uint16_t ref_round(double d, const small_format *fmt)
{
    if (isnan(d)) return (uint16_t)(fmt->inf_bits | 1u);
    uint16_t sign = signbit(d) ? 0x8000u : 0;
    double a = fabs(d);
    if (a >= fmt->value[fmt->inf_bits]) return sign | fmt->inf_bits;
    uint32_t lo = 0, hi = fmt->inf_bits; /* value[lo] <= a < value[hi] */
    while (hi - lo > 1) {
        uint32_t mid = (lo + hi) / 2;
        if (fmt->value[mid] <= a)
            lo = mid;
        else
            hi = mid;
    }
    /* both differences are exact (Sterbenz: value[lo] <= a < value[hi] <= 2 value[lo]) */
    double below = a - fmt->value[lo], above = fmt->value[hi] - a;
    uint32_t pick = below < above ? lo : above < below ? hi : (lo & 1u) ? hi : lo;
    return (uint16_t)(sign | pick);
}

static float float_of_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static uint32_t bits_of_float(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
static double double_of_bits(uint64_t u)
{
    double d;
    memcpy(&d, &u, 8);
    return d;
}

/* splitmix64: a fixed-seed generator for the random sweeps */
static uint64_t next_random(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

typedef uint16_t (*round_f32_fn)(float);
typedef uint16_t (*round_f64_fn)(double);

/* Compares a conversion result with the reference: equal bits, or both NaN. */
static bool same_result(uint16_t got, uint16_t want, const small_format *fmt)
{
    if (is_nan_bits(want, fmt)) return is_nan_bits(got, fmt);
    return got == want;
}

/* ---- (a) 16-bit -> f32, every pattern ---------------------------------------------------------- */
static void check_all_patterns_widen(float (*widen)(uint16_t), int mant, int bias, const char *what)
{
    small_format fmt = format_make(mant, bias);
    for (uint32_t h = 0; h < 65536; h++) {
        float got = widen((uint16_t)h);
        double want = ref_to_double((uint16_t)h, &fmt);
        if (isnan(want)) {
            cr_assert(isnan(got), "%s 0x%04x: want NaN, got %a", what, h, (double)got);
            cr_assert_eq(!!signbit(got), !!(h & 0x8000u), "%s 0x%04x: NaN lost its sign", what, h);
        } else {
            cr_assert_eq((double)got, want, "%s 0x%04x: want %a, got %a", what, h, want,
                         (double)got);
            cr_assert_eq(!!signbit(got), !!(h & 0x8000u), "%s 0x%04x: wrong sign", what, h);
        }
    }
    free(fmt.value);
}

Test(dtype, f16_to_f32_matches_ieee_for_all_65536_patterns)
{
    check_all_patterns_widen(bn_f16_to_f32, 10, 15, "bn_f16_to_f32");
}

Test(dtype, bf16_to_f32_matches_ieee_for_all_65536_patterns)
{
    check_all_patterns_widen(bn_bf16_to_f32, 7, 127, "bn_bf16_to_f32");
}

/* ---- (b) f32 -> 16-bit ---------------------------------------------------------------------------- */
static void check_round_trip(round_f32_fn narrow, float (*widen)(uint16_t), int mant, int bias,
                             const char *what)
{
    small_format fmt = format_make(mant, bias);
    for (uint32_t h = 0; h < 65536; h++) {
        uint16_t back = narrow(widen((uint16_t)h));
        cr_assert(same_result(back, (uint16_t)h, &fmt), "%s(0x%04x as f32) gave 0x%04x", what, h,
                  back);
    }
    free(fmt.value);
}

Test(dtype, f32_to_f16_round_trips_every_f16)
{
    check_round_trip(bn_f32_to_f16, bn_f16_to_f32, 10, 15, "bn_f32_to_f16");
}

Test(dtype, f32_to_bf16_round_trips_every_bf16)
{
    check_round_trip(bn_f32_to_bf16, bn_bf16_to_f32, 7, 127, "bn_f32_to_bf16");
}

/* For every pair of adjacent finite values (lo, hi) — the top pair being (max, inf) — the midpoint
 * goes to the even pattern, the float just below it to lo and the float just above to hi. The
 * midpoints are exact in f32 (one bit more than the 16-bit format holds). */
static void check_halfway_cases(round_f32_fn narrow, int mant, int bias, const char *what)
{
    small_format fmt = format_make(mant, bias);
    for (uint32_t lo = 0; lo < fmt.inf_bits; lo++) {
        uint32_t hi = lo + 1;
        float mid = (float)((fmt.value[lo] + fmt.value[hi]) / 2);
        cr_assert_eq((double)mid, (fmt.value[lo] + fmt.value[hi]) / 2, "midpoint not exact");
        uint16_t even = (uint16_t)((lo & 1u) ? hi : lo);
        for (int s = 0; s < 2; s++) {
            uint16_t sign = s ? 0x8000u : 0;
            float m = s ? -mid : mid;
            float toward_zero = nextafterf(m, 0.0f), away = nextafterf(m, s ? -INFINITY : INFINITY);
            cr_assert_eq(narrow(m), sign | even, "%s(%a) = 0x%04x, want 0x%04x (tie to even)", what,
                         (double)m, narrow(m), sign | even);
            cr_assert_eq(narrow(toward_zero), sign | lo, "%s(%a) = 0x%04x, want 0x%04x", what,
                         (double)toward_zero, narrow(toward_zero), sign | lo);
            cr_assert_eq(narrow(away), sign | hi, "%s(%a) = 0x%04x, want 0x%04x", what,
                         (double)away, narrow(away), sign | hi);
        }
    }
    free(fmt.value);
}

Test(dtype, f32_to_f16_rounds_every_halfway_case_to_even)
{
    check_halfway_cases(bn_f32_to_f16, 10, 15, "bn_f32_to_f16");
}

Test(dtype, f32_to_bf16_rounds_every_halfway_case_to_even)
{
    check_halfway_cases(bn_f32_to_bf16, 7, 127, "bn_f32_to_bf16");
}

Test(dtype, f32_to_f16_named_boundaries)
{
    const struct {
        float f;
        uint16_t want;
    } cases[] = {
        {65504.0f, 0x7bff},  /* largest f16 */
        {65519.99f, 0x7bff}, /* just below the overflow midpoint */
        {65520.0f, 0x7c00},  /* the midpoint ties to even: inf */
        {-65520.0f, 0xfc00},
        {1e10f, 0x7c00},
        {0x1p-24f, 0x0001},        /* smallest subnormal */
        {0x1p-25f, 0x0000},        /* halfway to 0: ties to even, 0 */
        {-0x1p-25f, 0x8000},       /* keeps the sign */
        {0x1.000002p-25f, 0x0001}, /* just above halfway */
        {0x1.8p-25f, 0x0001},
        {0x1p-26f, 0x0000},
        {0x1p-14f, 0x0400},       /* smallest normal */
        {0x1.ffffep-15f, 0x0400}, /* rounds up into the normals */
        {0x1.ffcp-15f, 0x0400},   /* the subnormal/normal midpoint: even */
        {0x1.ff4p-15f, 0x03fe},   /* between 0x3fe and 0x3ff: even */
        {1.0f, 0x3c00},
        {0x1.002p0f, 0x3c00}, /* 1 + 2^-11: ties to even */
        {0x1.006p0f, 0x3c02}, /* 1 + 3 * 2^-11: ties to even (up) */
        {0.0f, 0x0000},
        {-0.0f, 0x8000},
        {INFINITY, 0x7c00},
        {-INFINITY, 0xfc00},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        cr_assert_eq(bn_f32_to_f16(cases[i].f), cases[i].want,
                     "bn_f32_to_f16(%a) = 0x%04x, want 0x%04x", (double)cases[i].f,
                     bn_f32_to_f16(cases[i].f), cases[i].want);
    small_format f16 = format_make(10, 15), bf16 = format_make(7, 127);
    const uint32_t nans[] = {0x7fc00000u, 0xffc00000u, 0x7f800001u, 0x7fffffffu, 0xff800001u};
    for (size_t i = 0; i < sizeof nans / sizeof nans[0]; i++) {
        float n = float_of_bits(nans[i]);
        cr_assert(is_nan_bits(bn_f32_to_f16(n), &f16), "NaN 0x%08x -> f16 0x%04x", nans[i],
                  bn_f32_to_f16(n));
        cr_assert(is_nan_bits(bn_f32_to_bf16(n), &bf16), "NaN 0x%08x -> bf16 0x%04x", nans[i],
                  bn_f32_to_bf16(n));
        cr_assert(is_nan_bits(bn_f64_to_f16(n), &f16));
        cr_assert(is_nan_bits(bn_f64_to_bf16(n), &bf16));
    }
    free(f16.value);
    free(bf16.value);
}

Test(dtype, f32_to_bf16_named_boundaries)
{
    const struct {
        float f;
        uint16_t want;
    } cases[] = {
        {0x1.fep127f, 0x7f7f},     /* largest bf16 */
        {0x1.ffp127f, 0x7f80},     /* overflow midpoint: even is inf */
        {0x1.fefffep127f, 0x7f7f}, /* just below it */
        {FLT_MAX, 0x7f80},
        {0x1p-133f, 0x0001},             /* smallest bf16 subnormal */
        {0x1p-134f, 0x0000},             /* halfway to 0 */
        {0x1p-134f + 0x1p-149f, 0x0001}, /* just above (an f32 subnormal) */
        {0x1.01p0f, 0x3f80},             /* 1 + 2^-8: ties to even */
        {0x1.03p0f, 0x3f82},             /* 1 + 3 * 2^-8: ties to even (up) */
        {-0.0f, 0x8000},
        {-INFINITY, 0xff80},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        cr_assert_eq(bn_f32_to_bf16(cases[i].f), cases[i].want,
                     "bn_f32_to_bf16(%a) = 0x%04x, want 0x%04x", (double)cases[i].f,
                     bn_f32_to_bf16(cases[i].f), cases[i].want);
}

/* 1M random f32 patterns; with in_range, the exponent is drawn from [lo_exp, hi_exp] (below -126:
 * f32 subnormals) so most land in the 16-bit format's own range instead of overflowing or
 * underflowing, and every fourth value is an exact tie between two 16-bit values, every fourth
 * after it one f32 ulp past a tie. */
static void check_random_f32(round_f32_fn narrow, int mant, int bias, bool in_range, int lo_exp,
                             int hi_exp, const char *what)
{
    small_format fmt = format_make(mant, bias);
    uint64_t state = 0x5eed0000u + (uint64_t)mant * 2 + in_range;
    int failures = 0;
    for (int i = 0; i < 1000000; i++) {
        uint32_t u = (uint32_t)next_random(&state);
        if (in_range) {
            int e = lo_exp + (int)(next_random(&state) % (uint64_t)(hi_exp - lo_exp + 1));
            u = (u & 0x807fffffu) | ((uint32_t)(e + 127 > 0 ? e + 127 : 0) << 23);
            uint32_t tie = 1u << (23 - mant - 1);
            if (i % 4 == 0) u = (u & ~(2 * tie - 1)) | tie;
            if (i % 4 == 1) u = ((u & ~(2 * tie - 1)) | tie) + 1;
        }
        float f = float_of_bits(u);
        uint16_t got = narrow(f), want = ref_round(f, &fmt);
        if (!same_result(got, want, &fmt) && failures++ < 5)
            cr_log_error("%s(%a = 0x%08x) = 0x%04x, want 0x%04x", what, (double)f, u, got, want);
    }
    free(fmt.value);
    cr_assert_eq(failures, 0, "%s: %d of 1M random values differ from the reference", what,
                 failures);
}

Test(dtype, f32_to_f16_matches_reference_on_1m_random_bit_patterns)
{
    check_random_f32(bn_f32_to_f16, 10, 15, false, 0, 0, "bn_f32_to_f16");
    check_random_f32(bn_f32_to_f16, 10, 15, true, -27, 16, "bn_f32_to_f16");
}

Test(dtype, f32_to_bf16_matches_reference_on_1m_random_bit_patterns)
{
    check_random_f32(bn_f32_to_bf16, 7, 127, false, 0, 0, "bn_f32_to_bf16");
    check_random_f32(bn_f32_to_bf16, 7, 127, true, -134, 127, "bn_f32_to_bf16");
}

/* f64 -> 16-bit rounds once, straight from the double: 1M random values with exponents in
 * [lo_exp, hi_exp], every fourth an exact tie in the normal range, every fourth after it one
 * double ulp past a tie (where rounding through f32 first goes wrong). */
static void check_random_f64(round_f64_fn narrow, int mant, int bias, int lo_exp, int hi_exp,
                             const char *what)
{
    small_format fmt = format_make(mant, bias);
    uint64_t state = 0xd0b1e000u + (uint64_t)mant;
    int failures = 0;
    for (int i = 0; i < 1000000; i++) {
        uint64_t u = next_random(&state);
        int e = lo_exp + (int)(next_random(&state) % (uint64_t)(hi_exp - lo_exp + 1));
        u = (u & 0x800fffffffffffffull) | ((uint64_t)(e + 1023) << 52);
        uint64_t tie = 1ull << (52 - mant - 1);
        if (i % 4 == 0) u = (u & ~(2 * tie - 1)) | tie;
        if (i % 4 == 1) u = ((u & ~(2 * tie - 1)) | tie) + 1;
        double d = double_of_bits(u);
        uint16_t got = narrow(d), want = ref_round(d, &fmt);
        if (!same_result(got, want, &fmt) && failures++ < 5)
            cr_log_error("%s(%a) = 0x%04x, want 0x%04x", what, d, got, want);
    }
    free(fmt.value);
    cr_assert_eq(failures, 0, "%s: %d of 1M random values differ from the reference", what,
                 failures);
}

Test(dtype, f64_to_f16_rounds_once_on_1m_random_values)
{
    check_random_f64(bn_f64_to_f16, 10, 15, -27, 16, "bn_f64_to_f16");
    /* the case that rounding through f32 gets wrong: just above a tie */
    cr_assert_eq(bn_f64_to_f16(1 + 0x1p-11 + 0x1p-40), 0x3c01);
    cr_assert_eq(bn_f64_to_f16(0x1p-25 + 0x1p-60), 0x0001);
    cr_assert_eq(bn_f64_to_f16(65519.999999), 0x7bff);
    cr_assert_eq(bn_f64_to_f16(-0.0), 0x8000);
    cr_assert_eq(bn_f64_to_f16(1e300), 0x7c00);
    cr_assert_eq(bn_f64_to_f16(-1e-300), 0x8000);
}

Test(dtype, f64_to_bf16_rounds_once_on_1m_random_values)
{
    check_random_f64(bn_f64_to_bf16, 7, 127, -136, 128, "bn_f64_to_bf16");
    cr_assert_eq(bn_f64_to_bf16(1 + 0x1p-8 + 0x1p-40), 0x3f81);
    cr_assert_eq(bn_f64_to_bf16(1e300), 0x7f80);
    cr_assert_eq(bn_f64_to_bf16(-1e-300), 0x8000);
}

/* ---- against torch ------------------------------------------------------------------------------ */
static const int64_t *i64_data(bn_tensor *t)
{
    const int64_t *p = bn_tensor_data_i64(t);
    cr_assert_not_null(p, "fixture tensor is not contiguous i64");
    return p;
}

Test(dtype, f32_to_half_matches_torch)
{
    fx_file *f = fx_open("dtype.txt");
    bn_tensor *bits = fx_tensor(f, "f32_to_half", "f32_bits");
    bn_tensor *h = fx_tensor(f, "f32_to_half", "f16_bits");
    bn_tensor *b = fx_tensor(f, "f32_to_half", "bf16_bits");
    small_format f16 = format_make(10, 15), bf16 = format_make(7, 127);
    int64_t n = bn_numel(bits);
    cr_assert_gt(n, 2000);
    for (int64_t i = 0; i < n; i++) {
        float x = float_of_bits((uint32_t)i64_data(bits)[i]);
        uint16_t th = (uint16_t)i64_data(h)[i], tb = (uint16_t)i64_data(b)[i];
        cr_assert(same_result(bn_f32_to_f16(x), th, &f16), "f16 of %a: born 0x%04x torch 0x%04x",
                  (double)x, bn_f32_to_f16(x), th);
        cr_assert(same_result(bn_f32_to_bf16(x), tb, &bf16), "bf16 of %a: born 0x%04x torch 0x%04x",
                  (double)x, bn_f32_to_bf16(x), tb);
    }
    free(f16.value);
    free(bf16.value);
    bn_release(bits);
    bn_release(h);
    bn_release(b);
    fx_close(f);
}

Test(dtype, half_to_f32_matches_torch)
{
    fx_file *f = fx_open("dtype.txt");
    bn_tensor *h = fx_tensor(f, "half_to_f32", "half_bits");
    bn_tensor *f16 = fx_tensor(f, "half_to_f32", "f16_f32_bits");
    bn_tensor *bf16 = fx_tensor(f, "half_to_f32", "bf16_f32_bits");
    for (int64_t i = 0; i < bn_numel(h); i++) {
        uint16_t x = (uint16_t)i64_data(h)[i];
        float want16 = float_of_bits((uint32_t)i64_data(f16)[i]);
        float wantb = float_of_bits((uint32_t)i64_data(bf16)[i]);
        float got16 = bn_f16_to_f32(x), gotb = bn_bf16_to_f32(x);
        if (isnan(want16))
            cr_assert(isnan(got16));
        else
            cr_assert_eq(bits_of_float(got16), bits_of_float(want16), "f16 0x%04x", x);
        if (isnan(wantb))
            cr_assert(isnan(gotb));
        else
            cr_assert_eq(bits_of_float(gotb), bits_of_float(wantb), "bf16 0x%04x", x);
    }
    bn_release(h);
    bn_release(f16);
    bn_release(bf16);
    fx_close(f);
}

/* torch converts f64 to f16 / bf16 through f32 (two roundings); born rounds once. Every element
 * must be one or the other: born equal to the one-rounding reference, and torch either equal to
 * born or to the two-rounding path. */
static int check_f64_against_torch(bn_tensor *d_bits, bn_tensor *torch_bits, round_f64_fn once,
                                   round_f32_fn narrow32, const small_format *fmt, const char *what)
{
    int double_rounded = 0;
    for (int64_t i = 0; i < bn_numel(d_bits); i++) {
        double d = double_of_bits((uint64_t)i64_data(d_bits)[i]);
        uint16_t t = (uint16_t)i64_data(torch_bits)[i], born = once(d);
        cr_assert(same_result(born, ref_round(d, fmt), fmt), "%s(%a) = 0x%04x", what, d, born);
        if (same_result(born, t, fmt)) continue;
        cr_assert(same_result(narrow32((float)d), t, fmt),
                  "%s(%a): born 0x%04x, torch 0x%04x is not torch's f32-first rounding either",
                  what, d, born, t);
        double_rounded++;
    }
    return double_rounded;
}

Test(dtype, f64_to_half_matches_torch_except_its_double_rounding)
{
    fx_file *f = fx_open("dtype.txt");
    bn_tensor *d = fx_tensor(f, "f64_to_half", "f64_bits");
    bn_tensor *h = fx_tensor(f, "f64_to_half", "f16_bits");
    bn_tensor *b = fx_tensor(f, "f64_to_half", "bf16_bits");
    small_format f16 = format_make(10, 15), bf16 = format_make(7, 127);
    int n16 = check_f64_against_torch(d, h, bn_f64_to_f16, bn_f32_to_f16, &f16, "bn_f64_to_f16");
    int nb = check_f64_against_torch(d, b, bn_f64_to_bf16, bn_f32_to_bf16, &bf16, "bn_f64_to_bf16");
    /* the fixture holds one value made to show it for each format */
    cr_assert_geq(n16, 1);
    cr_assert_geq(nb, 1);
    free(f16.value);
    free(bf16.value);
    bn_release(d);
    bn_release(h);
    bn_release(b);
    fx_close(f);
}

/* ---- (c) promotion ------------------------------------------------------------------------------- */
Test(dtype, promote_types_matches_torch_for_all_pairs)
{
    fx_file *f = fx_open("dtype.txt");
    bn_tensor *table = fx_tensor(f, "promote", "table");
    const int64_t *want = i64_data(table);
    for (int a = 0; a < BN_DTYPE_COUNT; a++)
        for (int b = 0; b < BN_DTYPE_COUNT; b++) {
            int64_t w = want[a * BN_DTYPE_COUNT + b];
            /* torch's int16 for u8 with i8: born has no i16 and takes i32 */
            bn_dtype expect = w < 0 ? BN_I32 : (bn_dtype)w;
            if (w < 0)
                cr_assert((a == BN_U8 && b == BN_I8) || (a == BN_I8 && b == BN_U8),
                          "torch gave a dtype born lacks for %s with %s",
                          bn_dtype_name((bn_dtype)a), bn_dtype_name((bn_dtype)b));
            cr_assert_eq(bn_promote_types((bn_dtype)a, (bn_dtype)b), expect,
                         "bn_promote_types(%s, %s) = %s, want %s", bn_dtype_name((bn_dtype)a),
                         bn_dtype_name((bn_dtype)b),
                         bn_dtype_name(bn_promote_types((bn_dtype)a, (bn_dtype)b)),
                         bn_dtype_name(expect));
        }
    bn_release(table);
    fx_close(f);
}

Test(dtype, promote_types_of_an_invalid_dtype_is_dtype_count)
{
    cr_assert_eq(bn_promote_types(BN_DTYPE_COUNT, BN_F32), BN_DTYPE_COUNT);
    cr_assert_eq(bn_promote_types(BN_F32, (bn_dtype)-1), BN_DTYPE_COUNT);
}

Test(dtype, names_sizes_and_kinds)
{
    static const char *names[] = {"f32", "f64", "f16", "bf16", "i8", "u8", "i32", "i64", "bool"};
    static const size_t sizes[] = {4, 8, 2, 2, 1, 1, 4, 8, 1};
    for (int i = 0; i < BN_DTYPE_COUNT; i++) {
        cr_assert_str_eq(bn_dtype_name((bn_dtype)i), names[i]);
        cr_assert_eq(bn_dtype_size((bn_dtype)i), sizes[i]);
        cr_assert_eq(bn_dtype_is_float((bn_dtype)i), i <= BN_BF16);
        cr_assert_eq(bn_dtype_is_int((bn_dtype)i), i >= BN_I8 && i <= BN_I64);
    }
    cr_assert_str_eq(bn_dtype_name(BN_DTYPE_COUNT), "?");
    cr_assert_eq(bn_dtype_size((bn_dtype)-1), 0);
    cr_assert(!bn_dtype_is_float(BN_DTYPE_COUNT));
    cr_assert(!bn_dtype_is_int(BN_DTYPE_COUNT));
}

/* ---- (d) bn_to_dtype between every pair ------------------------------------------------------------ */
static const char *const dtype_names[] = {"f32", "f64", "f16", "bf16", "i8",
                                          "u8",  "i32", "i64", "bool"};

/* Element i of a contiguous CPU tensor. */
static const char *elem_ptr(bn_tensor *t, int64_t i)
{
    return (const char *)bn_tensor_data(t) + i * (int64_t)bn_dtype_size(bn_dtype_of(t));
}

/* got[i] == want[j] exactly: integers as integers (i64 without a trip through double), floats
 * with NaN matching NaN and the sign of zero kept. */
static bool same_element(bn_tensor *got, int64_t i, bn_tensor *want, int64_t j)
{
    bn_dtype dt = bn_dtype_of(got);
    if (dt == BN_I64)
        return *(const int64_t *)elem_ptr(got, i) == *(const int64_t *)elem_ptr(want, j);
    double g = bn__load_f64(elem_ptr(got, i), dt), w = bn__load_f64(elem_ptr(want, j), dt);
    if (isnan(w)) return isnan(g);
    return g == w && signbit(g) == signbit(w);
}

/* x converted to dst matches torch's result `want` at every element where `defined` is true;
 * every `step`-th element of want is compared (x is then a strided view). */
static void check_conversion(bn_tensor *x, bn_dtype dst, bn_tensor *want, bn_tensor *defined,
                             int64_t step, const char *src_name)
{
    bn_tensor *y = bn_to_dtype(x, dst);
    cr_assert_not_null(y, "bn_to_dtype %s -> %s: %s", src_name, dtype_names[dst],
                       bn_error_message());
    cr_assert_eq(bn_dtype_of(y), dst);
    cr_assert_eq(bn_numel(y), bn_numel(x));
    bn_tensor *yc = bn_contiguous(y);
    const bool *def = bn_tensor_data_bool(defined);
    for (int64_t i = 0; i < bn_numel(x); i++) {
        if (!def[i * step]) continue;
        cr_assert(same_element(yc, i, want, i * step),
                  "%s -> %s element %lld: born %.17g, torch %.17g", src_name, dtype_names[dst],
                  (long long)(i * step), bn__load_f64(elem_ptr(yc, i), dst),
                  bn__load_f64(elem_ptr(want, i * step), dst));
    }
}

Test(dtype, to_dtype_matches_torch_for_every_pair)
{
    fx_file *f = fx_open("dtype.txt");
    BNT_ASSERT_NO_LEAK({
        for (int s = 0; s < BN_DTYPE_COUNT; s++) {
            char case_name[32];
            snprintf(case_name, sizeof case_name, "to_%s", dtype_names[s]);
            bn_tensor *x = fx_tensor(f, case_name, "x");
            cr_assert_eq(bn_dtype_of(x), (bn_dtype)s);
            for (int d = 0; d < BN_DTYPE_COUNT; d++) {
                char mask_name[32];
                snprintf(mask_name, sizeof mask_name, "%s_defined", dtype_names[d]);
                bn_tensor *want = fx_tensor(f, case_name, dtype_names[d]);
                bn_tensor *defined = fx_tensor(f, case_name, mask_name);
                bn_scope_begin();
                check_conversion(x, (bn_dtype)d, want, defined, 1, dtype_names[s]);
                /* the same from a strided view: every other element */
                bn_tensor *xs = bn_slice(x, 0, 0, bn_dim(x, 0), 2);
                cr_assert(!bn_is_contiguous(xs));
                check_conversion(xs, (bn_dtype)d, want, defined, 2, dtype_names[s]);
                bn_scope_end();
                bn_release(want);
                bn_release(defined);
            }
            bn_release(x);
        }
    });
    fx_close(f);
}

/* Where torch is undefined, born's choice: truncate, NaN -> 0, saturate at the target's range. */
Test(dtype, float_to_int_saturates_where_torch_is_undefined)
{
    const double v[] = {NAN, INFINITY, -INFINITY, 300.7, -300.2, -1.5, 3e9, -3e9, 1e20, -1e20};
    const struct {
        bn_dtype dt;
        double want[10];
    } cases[] = {
        {BN_I8, {0, 127, -128, 127, -128, -1, 127, -128, 127, -128}},
        {BN_U8, {0, 255, 0, 255, 0, 0, 255, 0, 255, 0}},
        {BN_I32,
         {0, 2147483647.0, -2147483648.0, 300, -300, -1, 2147483647.0, -2147483648.0, 2147483647.0,
          -2147483648.0}},
    };
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        for (int src = 0; src < 4; src++) { /* every float dtype */
            bn_tensor *x = bn_to_dtype(bn_from_data(v, BN_SHAPE(10), BN_F64), (bn_dtype)src);
            for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
                bn_tensor *y = bn_to_dtype(x, cases[c].dt);
                for (int i = 0; i < 10; i++) {
                    /* a value f16 cannot hold became inf first */
                    double xi = bn_get(x, (int64_t[]){i});
                    double want = isinf(xi) && !isinf(v[i]) ? cases[c].want[xi > 0 ? 1 : 2]
                                                            : cases[c].want[i];
                    cr_assert_eq(bn_get(y, (int64_t[]){i}), want, "%s -> %s of %g",
                                 bn_dtype_name((bn_dtype)src), bn_dtype_name(cases[c].dt), v[i]);
                }
            }
            bn_tensor *y64 = bn_to_dtype(x, BN_I64);
            const int64_t *p = bn_tensor_data_i64(bn_contiguous(y64));
            cr_assert_eq(p[0], 0);
            cr_assert_eq(p[1], INT64_MAX - 1023, "+inf saturates at the last double below 2^63");
            cr_assert_eq(p[2], INT64_MIN);
        }
        bn_scope_end();
    });
}

/* born converts i64 to f32 through double: two roundings, so 2^60 + 2^36 + 1 (above the f32
 * midpoint 2^60 + 2^36) becomes the tie 2^60 + 2^36 in double and then 2^60, where torch (and
 * one correct rounding) gives 2^60 + 2^37. Disabled until src/backend/cpu/copy.c converts
 * integers to f32 directly ((float)int64); see the report that added it. */
Test(dtype, to_dtype_i64_to_f32_rounds_once)
{
    int64_t v[] = {(1ll << 60) + (1ll << 36) + 1, -((1ll << 60) + (1ll << 36) + 1)};
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_tensor *y = bn_to_dtype(bn_from_data(v, BN_SHAPE(2), BN_I64), BN_F32);
        const float *p = bn_tensor_data_f32(y);
        cr_assert_eq(p[0], 0x1.000002p60f);
        cr_assert_eq(p[1], -0x1.000002p60f);
        bn_scope_end();
    });
}

/* ---- bad input ------------------------------------------------------------------------------------ */
Test(dtype, to_dtype_null_is_an_arg_error)
{
    bn_error_clear();
    BNT_ASSERT_NO_LEAK(cr_assert_null(bn_to_dtype(NULL, BN_F32)));
    bnt_assert_error(BN_ERR_ARG, "bn_to_dtype", "t", NULL);
}

Test(dtype, to_dtype_invalid_dtype_is_a_dtype_error)
{
    bn_error_clear();
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_tensor *x = bn_zeros(BN_SHAPE(2), BN_F32);
        cr_assert_null(bn_to_dtype(x, BN_DTYPE_COUNT));
        bnt_assert_error(BN_ERR_DTYPE, "bn_to_dtype", "dt", "9", NULL);
        cr_assert_null(bn_to_dtype(x, (bn_dtype)-1));
        bnt_assert_error(BN_ERR_DTYPE, "bn_to_dtype", "dt", "-1", NULL);
        bn_scope_end();
    });
}

Test(dtype, to_dtype_same_dtype_shares_storage)
{
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_tensor *x = bn_ones(BN_SHAPE(3), BN_I32);
        bn_tensor *y = bn_to_dtype(x, BN_I32);
        cr_assert_eq(bn_tensor_data(x), bn_tensor_data(y));
        bn_scope_end();
    });
}
