/* backend/cpu/vmath.c — the portable C variant of the vectorised f32 math (vmath_kernel.h with
 * one lane, FMAs through fmaf, so it rounds like the SIMD variants) and the run-time choice
 * among the variants: AVX-512F, then AVX2+FMA, then this one. */
#include "backend/cpu/vmath.h"

#include "born/info.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static inline int32_t vm_as_i(float f)
{
    int32_t i;
    memcpy(&i, &f, 4);
    return i;
}
static inline float vm_as_f(int32_t i)
{
    float f;
    memcpy(&f, &i, 4);
    return f;
}

#define VT
#define VN(f) f##_portable
#define W 1
#define VF float
#define VI int32_t
#define VM int
#define F(c) ((float)(c))
#define I(c) ((int32_t)(c))
#define ADD(a, b) ((a) + (b))
#define SUB(a, b) ((a) - (b))
#define MUL(a, b) ((a) * (b))
#define DIV(a, b) ((a) / (b))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define FMA(a, b, c) fmaf(a, b, c)
#define ROUND(a) nearbyintf(a)
#define LT(a, b) ((a) < (b))
#define GT(a, b) ((a) > (b))
#define EQ(a, b) ((a) == (b))
#define NE(a, b) ((a) != (b))
#define SEL(m, a, b) ((m) ? (a) : (b))
#define AND_M(m1, m2) ((m1) && (m2))
#define AS_I vm_as_i
#define AS_F vm_as_f
#define FBITS_AND(a, i) vm_as_f(vm_as_i(a) & (i))
#define FBITS_OR(a, b) vm_as_f(vm_as_i(a) | vm_as_i(b))
#define I_ADD(a, b) ((int32_t)((uint32_t)(a) + (uint32_t)(b)))
#define I_SUB(a, b) ((int32_t)((uint32_t)(a) - (uint32_t)(b)))
#define I_AND(a, b) ((a) & (b))
#define I_OR(a, b) ((a) | (b))
#define I_SRL(a, k) ((int32_t)((uint32_t)(a) >> (k)))
#define I_SRA(a, k) ((a) >> (k))
#define I_SHL(a, k) ((int32_t)((uint32_t)(a) << (k)))
#define I_TO_F(a) ((float)(a))
#define F_TO_I(a) ((int32_t)(a))
#define LOAD(p) (*(p))
#define STORE(p, v) (*(p) = (v))
#define HSUM_D(v) ((double)(v))

#include "backend/cpu/vmath_kernel.h"

const bn_vm_kernels bn_vm_portable = VM_KERNELS("portable");

const bn_vm_kernels *bn_vm_isa(const char *isa)
{
    if (!isa) return NULL;
    if (strcmp(isa, "portable") == 0) return &bn_vm_portable;
    bn_cpu_features f = bn_cpu_features_detect();
    if (strcmp(isa, "avx2") == 0) return f.avx2 && f.fma ? bn_vm_x86_avx2() : NULL;
    if (strcmp(isa, "avx512") == 0) return f.avx512f ? bn_vm_x86_avx512() : NULL;
    return NULL;
}

/* The portable variant only where fmaf is an instruction (__FP_FAST_FMAF: aarch64, or x86
 * built with -mfma); elsewhere its fmaf calls are slower than libm, and NULL sends callers to
 * their libm loops. */
static const bn_vm_kernels *vm_choose(void)
{
    const bn_vm_kernels *k = bn_vm_isa(getenv("BORN_VMATH_ISA"));
    if (!k) k = bn_vm_isa("avx512");
    if (!k) k = bn_vm_isa("avx2");
#ifdef __FP_FAST_FMAF
    if (!k) k = &bn_vm_portable;
#endif
    return k;
}

const bn_vm_kernels *bn_vm(void)
{
    static _Atomic(const bn_vm_kernels *) chosen = NULL;
    static atomic_bool done = false;
    if (atomic_load_explicit(&done, memory_order_acquire))
        return atomic_load_explicit(&chosen, memory_order_relaxed);
    const bn_vm_kernels *k = vm_choose();
    atomic_store_explicit(&chosen, k, memory_order_relaxed);
    atomic_store_explicit(&done, true, memory_order_release);
    return k;
}
