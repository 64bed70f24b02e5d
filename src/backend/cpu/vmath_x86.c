/* backend/cpu/vmath_x86.c — the AVX-512F and AVX2+FMA variants of the vectorised f32 math
 * (vmath_kernel.h compiled with __attribute__((target(...))), so the rest of the build needs
 * no -mavx flags); vmath.c picks one at run time. Empty on other architectures. */
#include "backend/cpu/vmath.h"

#include <math.h>
#include <stddef.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

/* ---- AVX-512F: 16 lanes, masks in k registers ----------------------------------------------- */
#define VT __attribute__((target("avx512f")))
#define VN(f) f##_avx512
#define W 16
#define VF __m512
#define VI __m512i
#define VM __mmask16
#define F(c) _mm512_set1_ps(c)
#define I(c) _mm512_set1_epi32(c)
#define ADD _mm512_add_ps
#define SUB _mm512_sub_ps
#define MUL _mm512_mul_ps
#define DIV _mm512_div_ps
#define MIN _mm512_min_ps
#define MAX _mm512_max_ps
#define FMA _mm512_fmadd_ps
#define ROUND(a) _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define LT(a, b) _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ)
#define GT(a, b) _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ)
#define EQ(a, b) _mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ)
#define NE(a, b) _mm512_cmp_ps_mask(a, b, _CMP_NEQ_UQ)
#define SEL(m, a, b) _mm512_mask_blend_ps(m, b, a)
#define AND_M(m1, m2) ((__mmask16)((m1) & (m2)))
#define AS_I _mm512_castps_si512
#define AS_F _mm512_castsi512_ps
#define FBITS_AND(a, i) AS_F(_mm512_and_si512(AS_I(a), i))
#define FBITS_OR(a, b) AS_F(_mm512_or_si512(AS_I(a), AS_I(b)))
#define I_ADD _mm512_add_epi32
#define I_SUB _mm512_sub_epi32
#define I_AND _mm512_and_si512
#define I_OR _mm512_or_si512
#define I_SRL _mm512_srli_epi32
#define I_SRA _mm512_srai_epi32
#define I_SHL _mm512_slli_epi32
#define I_TO_F _mm512_cvtepi32_ps
#define F_TO_I _mm512_cvtps_epi32
#define LOAD _mm512_loadu_ps
#define STORE _mm512_storeu_ps

VT static inline double hsum_d_avx512(__m512 v)
{
    float l[16];
    _mm512_storeu_ps(l, v);
    double s = 0;
    for (int j = 0; j < 16; j++) s += l[j];
    return s;
}
#define HSUM_D hsum_d_avx512

#include "backend/cpu/vmath_kernel.h"

static const bn_vm_kernels kernels_avx512 = VM_KERNELS("avx512");

#undef VT
#undef VN
#undef W
#undef VF
#undef VI
#undef VM
#undef F
#undef I
#undef ADD
#undef SUB
#undef MUL
#undef DIV
#undef MIN
#undef MAX
#undef FMA
#undef ROUND
#undef LT
#undef GT
#undef EQ
#undef NE
#undef SEL
#undef AND_M
#undef AS_I
#undef AS_F
#undef FBITS_AND
#undef FBITS_OR
#undef I_ADD
#undef I_SUB
#undef I_AND
#undef I_OR
#undef I_SRL
#undef I_SRA
#undef I_SHL
#undef I_TO_F
#undef F_TO_I
#undef LOAD
#undef STORE
#undef HSUM_D
#undef VM_EXP_POLY
#undef VM_DEFINE_MAP
#undef VM_SUM_BLOCK
#undef VM_KERNELS

/* ---- AVX2 + FMA: 8 lanes, masks are all-ones lanes ------------------------------------------ */
#define VT __attribute__((target("avx2,fma")))
#define VN(f) f##_avx2
#define W 8
#define VF __m256
#define VI __m256i
#define VM __m256
#define F(c) _mm256_set1_ps(c)
#define I(c) _mm256_set1_epi32(c)
#define ADD _mm256_add_ps
#define SUB _mm256_sub_ps
#define MUL _mm256_mul_ps
#define DIV _mm256_div_ps
#define MIN _mm256_min_ps
#define MAX _mm256_max_ps
#define FMA _mm256_fmadd_ps
#define ROUND(a) _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define LT(a, b) _mm256_cmp_ps(a, b, _CMP_LT_OQ)
#define GT(a, b) _mm256_cmp_ps(a, b, _CMP_GT_OQ)
#define EQ(a, b) _mm256_cmp_ps(a, b, _CMP_EQ_OQ)
#define NE(a, b) _mm256_cmp_ps(a, b, _CMP_NEQ_UQ)
#define SEL(m, a, b) _mm256_blendv_ps(b, a, m)
#define AND_M _mm256_and_ps
#define AS_I _mm256_castps_si256
#define AS_F _mm256_castsi256_ps
#define FBITS_AND(a, i) AS_F(_mm256_and_si256(AS_I(a), i))
#define FBITS_OR(a, b) _mm256_or_ps(a, b)
#define I_ADD _mm256_add_epi32
#define I_SUB _mm256_sub_epi32
#define I_AND _mm256_and_si256
#define I_OR _mm256_or_si256
#define I_SRL _mm256_srli_epi32
#define I_SRA _mm256_srai_epi32
#define I_SHL _mm256_slli_epi32
#define I_TO_F _mm256_cvtepi32_ps
#define F_TO_I _mm256_cvtps_epi32
#define LOAD _mm256_loadu_ps
#define STORE _mm256_storeu_ps

VT static inline double hsum_d_avx2(__m256 v)
{
    float l[8];
    _mm256_storeu_ps(l, v);
    double s = 0;
    for (int j = 0; j < 8; j++) s += l[j];
    return s;
}
#define HSUM_D hsum_d_avx2

#include "backend/cpu/vmath_kernel.h"

static const bn_vm_kernels kernels_avx2 = VM_KERNELS("avx2");

const bn_vm_kernels *bn_vm_x86_avx2(void) { return &kernels_avx2; }
const bn_vm_kernels *bn_vm_x86_avx512(void) { return &kernels_avx512; }

#else

const bn_vm_kernels *bn_vm_x86_avx2(void) { return NULL; }
const bn_vm_kernels *bn_vm_x86_avx512(void) { return NULL; }

#endif
