/* core/philox.h — Philox 4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3"),
 * a counter-based generator: block n of seed s is a pure function of (s, n), so any thread or
 * device can produce any part of a random tensor and the result never depends on how the work
 * was split. Host-only C here; the CUDA backend mirrors it. */
#ifndef BORN_CORE_PHILOX_H
#define BORN_CORE_PHILOX_H

#include <stdint.h>

typedef struct bn_philox_block {
    uint32_t v[4];
} bn_philox_block;

static inline bn_philox_block bn_philox4x32_10(uint64_t seed, uint64_t counter)
{
    uint32_t c0 = (uint32_t)counter, c1 = (uint32_t)(counter >> 32), c2 = 0, c3 = 0;
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int r = 0; r < 10; r++) {
        uint64_t p0 = (uint64_t)0xD2511F53u * c0;
        uint64_t p1 = (uint64_t)0xCD9E8D57u * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
        uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        c1 = (uint32_t)p1;
        c3 = (uint32_t)p0;
        c0 = n0;
        c2 = n2;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    return (bn_philox_block){{c0, c1, c2, c3}};
}

/* [0, 1) with 24 random bits (exact in float) or 53 (from two words, exact in double). */
static inline float bn_philox_u01_f32(uint32_t x) { return (float)(x >> 8) * 0x1p-24f; }
static inline double bn_philox_u01_f64(uint32_t lo, uint32_t hi)
{
    uint64_t v = ((uint64_t)hi << 32 | lo) >> 11;
    return (double)v * 0x1p-53;
}

#endif
