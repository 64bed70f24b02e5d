/* backend/cpu/vmath.h — vectorised f32 math for the CPU element-wise kernels (issue 4):
 * exp, log, tanh, sigmoid, erf, gelu, gelu_tanh, silu, softplus, elu over contiguous arrays,
 * and the two passes of softmax (max, exp-and-sum). Private to the CPU backend.
 *
 * One algorithm (vmath_kernel.h) is compiled three times: AVX-512F, AVX2+FMA (vmath_x86.c)
 * and portable C (vmath.c, FMAs through fmaf). bn_vm() picks the best the CPU has, once, from
 * bn_cpu_features_detect(). Within one variant an element's result does not depend on where it
 * sits: the last partial vector goes through a padded buffer and the same vector code, so the
 * thread split and the array length never change a value.
 *
 * Accuracy against a double libm reference (tests/unit/test_vmath.c sweeps 10M bit patterns,
 * every f32 near each threshold and branch point, and the special values; asserted bound, then
 * the worst seen): exp 1 (0.96) ulp, log 1 (0.75), tanh 2 (1.25), sigmoid 3 (2.3), erf 3 (2.4),
 * softplus 4 (2.7), elu 2 (0.84), silu 4, gelu_tanh 4, gelu 16 (13: near x = -1.4, where
 * 1 + erf(x / sqrt 2) cancels; elsewhere <= 4). Ulps of the f32 result, denormal results in
 * denormal ulps; silu and gelu_tanh results in the denormals are within 128 x 2^-149, and
 * gelu_tanh for very negative x within 4e-5 relative (its f32 argument k carries ~1e-7
 * relative error, which e^{2k} multiplies by |2k|). Edges match libm: exp(89) = inf,
 * exp(-104) = 0, tanh(+-large) = +-1, sigmoid(+-large) = 1 / 0 with no NaN, NaN in gives NaN
 * out. f16/bf16 callers keep libm (unary.c says why). */
#ifndef BORN_CPU_VMATH_H
#define BORN_CPU_VMATH_H

#include <stdint.h>

typedef enum bn_vm_op {
    BN_VM_EXP,
    BN_VM_LOG,
    BN_VM_TANH,
    BN_VM_SIGMOID,
    BN_VM_ERF,
    BN_VM_GELU,      /* x/2 (1 + erf(x / sqrt 2)) */
    BN_VM_GELU_TANH, /* x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) */
    BN_VM_SILU,      /* x sigmoid(x) */
    BN_VM_SOFTPLUS, /* a = beta, b = threshold: x if beta x > threshold, else log1p(exp(beta x)) / beta */
    BN_VM_ELU, /* a = alpha: x if x > 0, else alpha (exp(x) - 1) */
    BN_VM_OP_COUNT
} bn_vm_op;

/* y[i] = op(x[i]) for i < n (x and y are contiguous f32; they may be the same array). */
typedef void (*bn_vm_map_fn)(const float *x, float *y, int64_t n, float a, float b);

typedef struct bn_vm_kernels {
    const char *isa; /* "avx512", "avx2" or "portable" */
    bn_vm_map_fn map[BN_VM_OP_COUNT];
    /* the largest of x[0..n) (n >= 1; -inf for all -inf). NaN need not propagate here: the
     * exp-and-sum pass turns it into a NaN sum. */
    float (*max)(const float *x, int64_t n);
    /* y[i] = exp(x[i] - m) (y may be NULL: only the sum), returns the sum of those values,
     * accumulated in f32 lanes per block of 1024 and in double across blocks. */
    double (*exp_sum)(const float *x, float *y, int64_t n, float m);
} bn_vm_kernels;

/* The best kernels for this CPU (detected once, thread-safe), or NULL when only the portable
 * variant would run and fmaf is not an instruction here (x86 without AVX2+FMA): callers then
 * keep their libm loops. BORN_VMATH_ISA=portable|avx2|avx512 in the environment forces one
 * (if the CPU has it). */
const bn_vm_kernels *bn_vm(void);
/* The kernels of one variant by name, or NULL when this CPU or build lacks it. */
const bn_vm_kernels *bn_vm_isa(const char *isa);

/* The variants (vmath.c, vmath_x86.c); NULL when not compiled in. */
extern const bn_vm_kernels bn_vm_portable;
const bn_vm_kernels *bn_vm_x86_avx2(void);
const bn_vm_kernels *bn_vm_x86_avx512(void);

#endif
