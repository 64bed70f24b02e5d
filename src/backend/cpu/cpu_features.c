/* backend/cpu/cpu_features.c — run-time CPU feature detection, from which the CPU backend picks
 * its SIMD paths (DESIGN §6). x86: CPUID leaves 1 and 7 plus XGETBV, because a CPU that has
 * AVX-512 is no use when the OS does not save the zmm state. aarch64: NEON is part of the
 * base ISA; SVE comes from the kernel's AT_HWCAP. Nothing is cached here: no global state. */
#include "core/internal.h"

#include "born/info.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#elif defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#endif

#include <stddef.h>

/* Names as Linux spells them in /proc/cpuinfo, in the field order of bn_cpu_features. */
static const char *const feature_names[BN_CPU_FEATURE_COUNT] = {
    "sse4_2",   "avx",         "avx2",     "fma",         "f16c",     "avx512f", "avx512bw",
    "avx512vl", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile", "neon",    "sve",
};

static bool check_index(const char *fn, int i)
{
    if (i >= 0 && i < BN_CPU_FEATURE_COUNT) return true;
    bn__error(BN_ERR_ARG, "%s: feature index %d is out of range (expected 0..%d)", fn, i,
              BN_CPU_FEATURE_COUNT - 1);
    return false;
}

const char *bn_cpu_feature_name(int i)
{
    return check_index("bn_cpu_feature_name", i) ? feature_names[i] : NULL;
}

bool bn_cpu_feature_has(const bn_cpu_features *f, int i)
{
    if (!f) {
        bn__null_arg("bn_cpu_feature_has", "f");
        return false;
    }
    if (!check_index("bn_cpu_feature_has", i)) return false;
    const bool flags[BN_CPU_FEATURE_COUNT] = {
        f->sse42,    f->avx,         f->avx2,     f->fma,         f->f16c, f->avx512f, f->avx512bw,
        f->avx512vl, f->avx512_vnni, f->avx_vnni, f->avx512_bf16, f->amx,  f->neon,    f->sve,
    };
    return flags[i];
}

#if defined(__x86_64__) || defined(__i386__)

static bool bit(unsigned reg, int n) { return (reg >> n) & 1u; }

/* XCR0: which register states the OS saves on a context switch. Only valid when CPUID says
 * OSXSAVE; written as asm so no -mxsave is needed for the _xgetbv intrinsic. */
static uint64_t read_xcr0(void)
{
    unsigned lo, hi;
    __asm__ __volatile__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

#define XCR0_AVX_STATE 0x6u       /* XMM (bit 1) + YMM upper halves (bit 2) */
#define XCR0_AVX512_STATE 0xe0u   /* opmask (5), ZMM_Hi256 (6), Hi16_ZMM (7) */
#define XCR0_AMX_STATE 0x60000ull /* XTILECFG (17) + XTILEDATA (18) */

static void detect_x86(bn_cpu_features *f)
{
    unsigned a, b, c, d;
    unsigned max_leaf = __get_cpuid_max(0, NULL);
    if (max_leaf < 1) return;
    __cpuid(1, a, b, c, d);
    unsigned ecx1 = c;
    f->sse42 = bit(ecx1, 20);

    uint64_t xcr0 = bit(ecx1, 27) ? read_xcr0() : 0; /* OSXSAVE */
    bool os_avx = (xcr0 & XCR0_AVX_STATE) == XCR0_AVX_STATE;
    bool os_avx512 = os_avx && (xcr0 & XCR0_AVX512_STATE) == XCR0_AVX512_STATE;
    bool os_amx = (xcr0 & XCR0_AMX_STATE) == XCR0_AMX_STATE;

    /* FMA and F16C are VEX-encoded: they need the AVX state as much as AVX does */
    f->avx = os_avx && bit(ecx1, 28);
    f->fma = f->avx && bit(ecx1, 12);
    f->f16c = f->avx && bit(ecx1, 29);
    if (max_leaf < 7) return;

    __cpuid_count(7, 0, a, b, c, d);
    unsigned max_subleaf = a;
    f->avx2 = f->avx && bit(b, 5);
    f->avx512f = os_avx512 && bit(b, 16);
    f->avx512bw = f->avx512f && bit(b, 30);
    f->avx512vl = f->avx512f && bit(b, 31);
    f->avx512_vnni = f->avx512f && bit(c, 11);
    f->amx = os_amx && bit(d, 24);
    if (max_subleaf < 1) return;

    __cpuid_count(7, 1, a, b, c, d);
    f->avx_vnni = f->avx && bit(a, 4);
    f->avx512_bf16 = f->avx512f && bit(a, 5);
}

#elif defined(__aarch64__)

#ifndef HWCAP_SVE
#define HWCAP_SVE (1ul << 22)
#endif

static void detect_arm(bn_cpu_features *f)
{
    f->neon = true; /* Advanced SIMD is mandatory in AArch64 */
#if defined(__linux__)
    f->sve = (getauxval(AT_HWCAP) & HWCAP_SVE) != 0;
#endif
}

#endif

bn_cpu_features bn_cpu_features_detect(void)
{
    bn_cpu_features f = {0};
#if defined(__x86_64__) || defined(__i386__)
    detect_x86(&f);
#elif defined(__aarch64__)
    detect_arm(&f);
#endif
    return f;
}
