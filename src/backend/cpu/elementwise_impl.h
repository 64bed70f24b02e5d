/* backend/cpu/elementwise_impl.h — helpers shared by the CPU element-wise kernels (unary.c,
 * binary.c, elementwise.c). Private to the CPU backend.
 *
 * f16 and bf16 are computed in f32: a run of elements is converted into an f32 block, the f32
 * kernel runs on the block, and the results are rounded once on the way back. Integer kernels
 * wrap on overflow (two's complement, like PyTorch) by doing the arithmetic in the unsigned type
 * of the same width, so no signed overflow (undefined in C) ever happens. */
#ifndef BORN_CPU_ELEMENTWISE_IMPL_H
#define BORN_CPU_ELEMENTWISE_IMPL_H

#include "backend/backend.h"

#include <string.h>

/* Elements per f32 block for f16/bf16 (two or three blocks live on the stack). */
#define BN_EW_BLOCK 256

/* Transcendental ops cost ~10x a simple one: they go parallel on fewer elements. */
#define BN_EW_PAR_MIN_COSTLY (BN_PAR_MIN_ELEMS / 8)

static inline bool bn_ew_is_half(bn_dtype dt) { return dt == BN_F16 || dt == BN_BF16; }

/* bfloat16 <-> f32, inlined here since the loops below run them per element (bit-identical to
 * bn_bf16_to_f32 / bn_f32_to_bf16: round to nearest even, NaN kept quiet). */
static inline float bn_ew_bf16_to_f32(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static inline uint16_t bn_ew_f32_to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

/* dst[i] = (float)src[i * s] for i < n; src holds f16 or bf16. s may be 0. */
static inline void bn_ew_load_half(const char *src, int64_t s, bn_dtype dt, float *dst, int64_t n)
{
    const uint16_t *h = (const uint16_t *)src;
    if (s == 0) {
        float v = dt == BN_F16 ? bn_f16_to_f32(h[0]) : bn_ew_bf16_to_f32(h[0]);
        for (int64_t i = 0; i < n; i++) dst[i] = v;
    } else if (dt == BN_F16) {
        for (int64_t i = 0; i < n; i++) dst[i] = bn_f16_to_f32(h[i * s]);
    } else {
        for (int64_t i = 0; i < n; i++) dst[i] = bn_ew_bf16_to_f32(h[i * s]);
    }
}

/* dst[i * s] = round(src[i]) for i < n; dst holds f16 or bf16. */
static inline void bn_ew_store_half(char *dst, int64_t s, bn_dtype dt, const float *src, int64_t n)
{
    uint16_t *h = (uint16_t *)dst;
    if (dt == BN_F16)
        for (int64_t i = 0; i < n; i++) h[i * s] = bn_f32_to_f16(src[i]);
    else
        for (int64_t i = 0; i < n; i++) h[i * s] = bn_ew_f32_to_bf16(src[i]);
}

/* a ** e in wrapping 64-bit arithmetic (callers narrow the result to their width, which keeps
 * it exact modulo 2^width). A negative exponent follows PyTorch's integer pow: 1 for base 1,
 * +-1 for base -1, 0 otherwise. */
static inline int64_t bn_ew_ipow(int64_t a, int64_t e)
{
    if (e < 0) {
        if (a == 1) return 1;
        if (a == -1) return (e & 1) ? -1 : 1;
        return 0;
    }
    uint64_t result = 1, base = (uint64_t)a;
    while (e) {
        if (e & 1) result *= base;
        base *= base;
        e >>= 1;
    }
    return (int64_t)result;
}

#endif
