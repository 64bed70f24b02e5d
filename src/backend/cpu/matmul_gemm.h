/* backend/cpu/matmul_gemm.h — the pieces of the CPU matmul family, shared by matmul*.c and the
 * tests:
 *   - the packed, cache-blocked GEMM (matmul_gemm.c): in f32 for f32, f16 and bf16 (converted
 *     while packing), and in f64 for f64,
 *   - its register-tiled micro-kernels, one per instruction set (matmul_micro.c for f32,
 *     matmul_micro_f64.c for f64),
 *   - bn_cpu_matmul_isa, the backend slot with the instruction set chosen by the caller, so the
 *     tests can run the portable, AVX2 and AVX-512 (or NEON) paths on the same machine,
 *   - a plain reference kernel the fast ones are checked against (matmul_reference.c).
 *
 * Summation order: every kernel here adds the K products of one output element in order
 * k = 0, 1, …, K-1 into one f32 (or f64 / 64-bit integer) accumulator. Blocking over K continues
 * from the partial sum stored in C, and threads split M and N, never K, so a result depends
 * neither on the block sizes nor on the thread count. The portable paths give the same bits as
 * the reference; the AVX2, AVX-512 and NEON paths fuse each multiply-add (one rounding instead of
 * two), and give the same bits as each other. */
#ifndef BORN_CPU_MATMUL_GEMM_H
#define BORN_CPU_MATMUL_GEMM_H

#include "backend/backend.h"

/* ---- instruction sets ----------------------------------------------------------------------- */
typedef enum bn_gemm_isa {
    BN_GEMM_PORTABLE, /* C with GNU vector extensions: SSE2 on x86-64, NEON on arm64 */
    BN_GEMM_AVX2,     /* AVX2 + FMA intrinsics, x86-64 only, chosen at run time */
    BN_GEMM_AVX512,   /* AVX-512F intrinsics, x86-64 only, chosen at run time */
    BN_GEMM_NEON, /* Advanced SIMD intrinsics with fused multiply-add, aarch64 only (baseline) */
    BN_GEMM_ISA_COUNT
} bn_gemm_isa;

const char *bn_gemm_isa_name(bn_gemm_isa isa); /* "portable", "avx2", "avx512", "neon" */
bool bn_gemm_isa_available(bn_gemm_isa isa);   /* compiled in and supported by this CPU */
/* The best available ISA, or the one BORN_GEMM_ISA=portable|avx2|avx512|neon names in the
 * environment (when that one is not available: the best available below it). */
bn_gemm_isa bn_gemm_best_isa(void);

/* A micro-kernel computes one MR x NR tile of C from packed panels:
 *   ap is (kc, MR) — column k of an MR-row block of A, zero-padded past the valid rows,
 *   bp is (kc, NR) — row k of an NR-column block of B, zero-padded past the valid columns,
 *   c  is (mr, nr) at c[i*rs_c + j*cs_c], mr <= MR and nr <= NR the valid part of the tile.
 * accumulate: start from the values in c (a later K block); else start from zero. */
typedef void (*bn_gemm_micro_fn)(int64_t kc, const float *ap, const float *bp, float *c,
                                 int64_t rs_c, int64_t cs_c, int mr, int nr, bool accumulate);

typedef struct bn_gemm_kernel {
    int mr, nr;     /* register tile */
    int kc, mc, nc; /* cache blocks: a KC x NR panel of B stays in L1, an MC x KC block of A in
                     * L2, a KC x NC block of B in L3 (mc a multiple of mr, nc of nr) */
    bn_gemm_micro_fn micro;
    /* Thin products (one row or one column of C), without packing; x is (K) at x[k*sx]:
     *   dot:       returns sum over k of x[k*sx] * y[k*sy]
     *   dot_rows:  c[j*sc] = sum over k of x[k*sx] * y[j*ldy + k] for j < n (y's rows along K
     *              are contiguous: a transposed B, or A for a one-column C)
     *   axpy_rows: c[j] = sum over k of x[k*sx] * y[k*ldy + j] for j < n (y's rows along N are
     *              contiguous; c is contiguous)
     * All add the products in k order with this ISA's rounding, so they give the same bits as
     * the micro-kernel. */
    float (*dot)(int64_t K, const float *x, int64_t sx, const float *y, int64_t sy);
    void (*dot_rows)(int64_t n, int64_t K, const float *x, int64_t sx, const float *y, int64_t ldy,
                     float *c, int64_t sc);
    void (*axpy_rows)(int64_t n, int64_t K, const float *x, int64_t sx, const float *y, int64_t ldy,
                      float *c);
} bn_gemm_kernel;

#define BN_GEMM_MAX_MR 14
#define BN_GEMM_MAX_NR 32

/* NULL when the ISA is not available. */
const bn_gemm_kernel *bn_gemm_kernel_for(bn_gemm_isa isa);

/* The f64 micro-kernel: the same contract as bn_gemm_micro_fn, in doubles. */
typedef void (*bn_gemm_micro_f64_fn)(int64_t kc, const double *ap, const double *bp, double *c,
                                     int64_t rs_c, int64_t cs_c, int mr, int nr, bool accumulate);

/* The f64 kernel of one ISA: register tile, cache blocks (as in bn_gemm_kernel) and the
 * micro-kernel. Thin f64 products (one row or one column) stay with matmul.c's row kernel. */
typedef struct bn_gemm_kernel_f64 {
    int mr, nr;
    int kc, mc, nc;
    bn_gemm_micro_f64_fn micro;
} bn_gemm_kernel_f64;

/* NULL when the ISA is not available (matmul_micro_f64.c). */
const bn_gemm_kernel_f64 *bn_gemm_kernel_f64_for(bn_gemm_isa isa);

/* ---- the f32 GEMM --------------------------------------------------------------------------- */
/* One matrix operand as the packing routines read it: element (i, j) is at
 * data + (i*rs + j*cs) elements, of dtype f32, f16 or bf16 (converted to f32 while packing) for
 * bn_gemm_f32, f64 for bn_gemm_f64. */
typedef struct bn_gemm_mat {
    const void *data;
    bn_dtype dtype;
    int64_t rs, cs;
} bn_gemm_mat;

/* c = a @ b: a is (M, K), b is (K, N), c is (M, N) f32 at c[i*rs_c + j*cs_c]. Any strides,
 * transposed operands included, are read through packing (no full copy). threads: how many
 * OpenMP threads may split M and N (1: run on the calling thread). Returns BN_OK, or BN_ERR_OOM
 * without setting the error message (the caller may be a worker thread). */
bn_status bn_gemm_f32(const bn_gemm_kernel *kern, int64_t M, int64_t N, int64_t K, bn_gemm_mat a,
                      bn_gemm_mat b, float *c, int64_t rs_c, int64_t cs_c, int threads);

/* The same in f64: a and b are f64, c is (M, N) f64. Every shape goes through packing (no thin
 * paths); same return values. */
bn_status bn_gemm_f64(const bn_gemm_kernel_f64 *kern, int64_t M, int64_t N, int64_t K,
                      bn_gemm_mat a, bn_gemm_mat b, double *c, int64_t rs_c, int64_t cs_c,
                      int threads);

/* ---- the backend slot with a chosen ISA ----------------------------------------------------- */
/* What bn_cpu_matmul does, with the f32/f16/bf16/f64 micro-kernels of isa (which must be
 * available). a is (..., M, K), b is (..., K, N), out is (..., M, N); see backend.h. */
bn_status bn_cpu_matmul_isa(bn_gemm_isa isa, const bn_tview *a, const bn_tview *b,
                            const bn_tview *out);

/* ---- reference ------------------------------------------------------------------------------ */
/* The obviously-correct triple loop, same contract as the backend slot, same accumulator types
 * (f32 for f32/f16/bf16, f64 for f64, wrapping 64-bit integers for i8/u8/i32/i64) and the same
 * k order; single-threaded and slow. For tests. */
bn_status bn_cpu_matmul_reference(const bn_tview *a, const bn_tview *b, const bn_tview *out);

#endif
