/* backend/cpu/matmul_micro_f64.c — the register-tiled f64 micro-kernels of the packed GEMM
 * (matmul_gemm.c), one per instruction set, chosen with the f32 ones (bn_gemm_isa):
 *
 *   portable: 6 x 4 tile in GNU C vector extensions (2 doubles a vector: SSE2 on x86-64), separate
 *             multiply and add, so its sums equal the plain reference loop's.
 *   avx2:     6 x 8 tile in AVX2 + FMA intrinsics (12 of the 16 ymm registers accumulate).
 *   avx512:   14 x 16 tile in AVX-512F intrinsics (28 of the 32 zmm registers accumulate, A is
 *             broadcast from memory).
 *   neon:     8 x 6 tile in Advanced SIMD intrinsics on aarch64 (24 of the 32 q registers
 *             accumulate; A's 8 values are four registers used lane by lane).
 *
 * The same loop as the f32 kernels: per k, load one row of the B panel, multiply it by each of
 * the MR values of the A panel and add into the tile. The fused kernels round once per
 * multiply-add and so give the same bits as each other. Thin products (one row or one column)
 * are not here: matmul.c keeps its row kernel for them. */
#include "backend/cpu/matmul_gemm.h"

#include <string.h>

/* Products and sums round separately in the portable kernel, even where the target has FMA. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define BN_GEMM_F64_X86 1
#include <immintrin.h>
#else
#define BN_GEMM_F64_X86 0
#endif

#if defined(__aarch64__) && defined(__ARM_NEON)
#define BN_GEMM_F64_NEON 1
#include <arm_neon.h>
#else
#define BN_GEMM_F64_NEON 0
#endif

/* ---- staging tile for edges and strided C --------------------------------------------------- */
/* tile is (mr_full, nr_full) row-major; c is (mr, nr) at c[i*rs_c + j*cs_c]. */
static void tile_from_c(double *tile, int nr_full, const double *c, int64_t rs_c, int64_t cs_c,
                        int mr, int nr, int mr_full)
{
    memset(tile, 0, sizeof(double) * (size_t)(mr_full * nr_full));
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++) tile[i * nr_full + j] = c[i * rs_c + j * cs_c];
}

static void tile_to_c(const double *tile, int nr_full, double *c, int64_t rs_c, int64_t cs_c,
                      int mr, int nr)
{
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++) c[i * rs_c + j * cs_c] = tile[i * nr_full + j];
}

/* ---- portable: 6 x 4 ------------------------------------------------------------------------ */
typedef double v2d __attribute__((vector_size(16)));

static inline v2d v2_load(const double *p)
{
    v2d v;
    memcpy(&v, p, sizeof v);
    return v;
}
static inline void v2_store(double *p, v2d v) { memcpy(p, &v, sizeof v); }
static inline v2d v2_splat(double x) { return (v2d){x, x}; }

enum { PORT_MR = 6, PORT_NR = 4 };

#define PORT_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5)

/* ap is (kc, 6), bp is (kc, 4), c is (mr, nr) */
static void micro_portable(int64_t kc, const double *ap, const double *bp, double *c, int64_t rs_c,
                           int64_t cs_c, int mr, int nr, bool accumulate)
{
    double tile[PORT_MR * PORT_NR];
    bool direct = mr == PORT_MR && nr == PORT_NR && cs_c == 1;
    double *dst = direct ? c : tile;
    int64_t ld = direct ? rs_c : PORT_NR;
#define DECL_ROW(i) v2d c##i##0, c##i##1;
    PORT_ROWS(DECL_ROW)
#undef DECL_ROW
    if (accumulate) {
        if (!direct) tile_from_c(tile, PORT_NR, c, rs_c, cs_c, mr, nr, PORT_MR);
#define LOAD_ROW(i) c##i##0 = v2_load(dst + (i)*ld), c##i##1 = v2_load(dst + (i)*ld + 2);
        PORT_ROWS(LOAD_ROW)
#undef LOAD_ROW
    } else {
#define ZERO_ROW(i) c##i##0 = c##i##1 = v2_splat(0.0);
        PORT_ROWS(ZERO_ROW)
#undef ZERO_ROW
    }
    for (int64_t k = 0; k < kc; k++) {
        v2d b0 = v2_load(bp), b1 = v2_load(bp + 2), a;
#define UPDATE_ROW(i) a = v2_splat(ap[i]), c##i##0 += a * b0, c##i##1 += a * b1;
        PORT_ROWS(UPDATE_ROW)
#undef UPDATE_ROW
        ap += PORT_MR;
        bp += PORT_NR;
    }
#define STORE_ROW(i) v2_store(dst + (i)*ld, c##i##0), v2_store(dst + (i)*ld + 2, c##i##1);
    PORT_ROWS(STORE_ROW)
#undef STORE_ROW
    if (!direct) tile_to_c(tile, PORT_NR, c, rs_c, cs_c, mr, nr);
}

static const bn_gemm_kernel_f64 kernel_portable = {
    .mr = PORT_MR, .nr = PORT_NR, .kc = 256, .mc = 144, .nc = 1024, .micro = micro_portable};

#if BN_GEMM_F64_X86
/* ---- avx2: 6 x 8 ---------------------------------------------------------------------------- */
#define BN_TARGET_AVX2 __attribute__((target("avx2,fma")))

enum { AVX2_MR = 6, AVX2_NR = 8 };

/* ap is (kc, 6), bp is (kc, 8), c is (mr, nr) */
BN_TARGET_AVX2 static void micro_avx2(int64_t kc, const double *ap, const double *bp, double *c,
                                      int64_t rs_c, int64_t cs_c, int mr, int nr, bool accumulate)
{
    double tile[AVX2_MR * AVX2_NR];
    bool direct = mr == AVX2_MR && nr == AVX2_NR && cs_c == 1;
    double *dst = direct ? c : tile;
    int64_t ld = direct ? rs_c : AVX2_NR;
#define DECL_ROW(i) __m256d c##i##0, c##i##1;
    PORT_ROWS(DECL_ROW)
#undef DECL_ROW
    if (accumulate) {
        if (!direct) tile_from_c(tile, AVX2_NR, c, rs_c, cs_c, mr, nr, AVX2_MR);
#define LOAD_ROW(i)                                                                                \
    c##i##0 = _mm256_loadu_pd(dst + (i)*ld), c##i##1 = _mm256_loadu_pd(dst + (i)*ld + 4);
        PORT_ROWS(LOAD_ROW)
#undef LOAD_ROW
    } else {
#define ZERO_ROW(i) c##i##0 = c##i##1 = _mm256_setzero_pd();
        PORT_ROWS(ZERO_ROW)
#undef ZERO_ROW
    }
    for (int64_t k = 0; k < kc; k++) {
        __m256d b0 = _mm256_loadu_pd(bp), b1 = _mm256_loadu_pd(bp + 4), a;
#define UPDATE_ROW(i)                                                                              \
    a = _mm256_broadcast_sd(ap + (i)), c##i##0 = _mm256_fmadd_pd(a, b0, c##i##0),                  \
    c##i##1 = _mm256_fmadd_pd(a, b1, c##i##1);
        PORT_ROWS(UPDATE_ROW)
#undef UPDATE_ROW
        ap += AVX2_MR;
        bp += AVX2_NR;
    }
#define STORE_ROW(i)                                                                               \
    _mm256_storeu_pd(dst + (i)*ld, c##i##0), _mm256_storeu_pd(dst + (i)*ld + 4, c##i##1);
    PORT_ROWS(STORE_ROW)
#undef STORE_ROW
    if (!direct) tile_to_c(tile, AVX2_NR, c, rs_c, cs_c, mr, nr);
}

static const bn_gemm_kernel_f64 kernel_avx2 = {
    .mr = AVX2_MR, .nr = AVX2_NR, .kc = 256, .mc = 144, .nc = 1024, .micro = micro_avx2};

/* ---- avx512: 14 x 16 ------------------------------------------------------------------------ */
#define BN_TARGET_AVX512 __attribute__((target("avx512f,avx2,fma")))

enum { AVX512_MR = 14, AVX512_NR = 16 };

#define AVX512_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13)

/* ap is (kc, 14), bp is (kc, 16), c is (mr, nr) */
BN_TARGET_AVX512 static void micro_avx512(int64_t kc, const double *ap, const double *bp, double *c,
                                          int64_t rs_c, int64_t cs_c, int mr, int nr,
                                          bool accumulate)
{
    double tile[AVX512_MR * AVX512_NR];
    bool direct = mr == AVX512_MR && nr == AVX512_NR && cs_c == 1;
    double *dst = direct ? c : tile;
    int64_t ld = direct ? rs_c : AVX512_NR;
#define DECL_ROW(i) __m512d c##i##0, c##i##1;
    AVX512_ROWS(DECL_ROW)
#undef DECL_ROW
    if (accumulate) {
        if (!direct) tile_from_c(tile, AVX512_NR, c, rs_c, cs_c, mr, nr, AVX512_MR);
#define LOAD_ROW(i)                                                                                \
    c##i##0 = _mm512_loadu_pd(dst + (i)*ld), c##i##1 = _mm512_loadu_pd(dst + (i)*ld + 8);
        AVX512_ROWS(LOAD_ROW)
#undef LOAD_ROW
    } else {
#define ZERO_ROW(i) c##i##0 = _mm512_setzero_pd(), c##i##1 = _mm512_setzero_pd();
        AVX512_ROWS(ZERO_ROW)
#undef ZERO_ROW
    }
#define UPDATE_ROW(i)                                                                              \
    a = _mm512_set1_pd(ap[i]), c##i##0 = _mm512_fmadd_pd(a, b0, c##i##0),                          \
    c##i##1 = _mm512_fmadd_pd(a, b1, c##i##1);
    int64_t k = 0;
    for (; k + 2 <= kc; k += 2) { /* two steps a trip: fewer loop branches */
        __m512d b0 = _mm512_loadu_pd(bp), b1 = _mm512_loadu_pd(bp + 8), a;
        _mm_prefetch((const char *)(ap + 8 * AVX512_MR), _MM_HINT_T0);
        AVX512_ROWS(UPDATE_ROW)
        ap += AVX512_MR;
        bp += AVX512_NR;
        b0 = _mm512_loadu_pd(bp), b1 = _mm512_loadu_pd(bp + 8);
        AVX512_ROWS(UPDATE_ROW)
        ap += AVX512_MR;
        bp += AVX512_NR;
    }
    for (; k < kc; k++) {
        __m512d b0 = _mm512_loadu_pd(bp), b1 = _mm512_loadu_pd(bp + 8), a;
        AVX512_ROWS(UPDATE_ROW)
        ap += AVX512_MR;
        bp += AVX512_NR;
    }
#undef UPDATE_ROW
#define STORE_ROW(i)                                                                               \
    _mm512_storeu_pd(dst + (i)*ld, c##i##0), _mm512_storeu_pd(dst + (i)*ld + 8, c##i##1);
    AVX512_ROWS(STORE_ROW)
#undef STORE_ROW
    if (!direct) tile_to_c(tile, AVX512_NR, c, rs_c, cs_c, mr, nr);
}

/* Blocks on Zen 5 (48 KiB L1d, 1 MiB L2): the KC x NR panel of B is 32 KiB, the KC x MR panel of
 * A 28 KiB, MC x KC of A 448 KiB of L2, KC x NC of B 2 MiB of L3. */
static const bn_gemm_kernel_f64 kernel_avx512 = {
    .mr = AVX512_MR, .nr = AVX512_NR, .kc = 256, .mc = 224, .nc = 1024, .micro = micro_avx512};
#endif

#if BN_GEMM_F64_NEON
/* ---- neon: 8 x 6 ---------------------------------------------------------------------------- */
enum { NEON_MR = 8, NEON_NR = 6 };

/* Rows 0..7 of the tile, three q registers of two doubles each; row i takes lane i % 2 of A
 * register i / 2. */
#define NEON_ROWS(X)                                                                               \
    X(0, a0, 0) X(1, a0, 1) X(2, a1, 0) X(3, a1, 1) X(4, a2, 0) X(5, a2, 1) X(6, a3, 0) X(7, a3, 1)

/* ap is (kc, 8), bp is (kc, 6), c is (mr, nr) */
static void micro_neon(int64_t kc, const double *ap, const double *bp, double *c, int64_t rs_c,
                       int64_t cs_c, int mr, int nr, bool accumulate)
{
    double tile[NEON_MR * NEON_NR];
    bool direct = mr == NEON_MR && nr == NEON_NR && cs_c == 1;
    double *dst = direct ? c : tile;
    int64_t ld = direct ? rs_c : NEON_NR;
#define DECL_ROW(i, ar, l) float64x2_t c##i##0, c##i##1, c##i##2;
    NEON_ROWS(DECL_ROW)
#undef DECL_ROW
    if (accumulate) {
        if (!direct) tile_from_c(tile, NEON_NR, c, rs_c, cs_c, mr, nr, NEON_MR);
#define LOAD_ROW(i, ar, l)                                                                         \
    c##i##0 = vld1q_f64(dst + (i)*ld), c##i##1 = vld1q_f64(dst + (i)*ld + 2),                      \
    c##i##2 = vld1q_f64(dst + (i)*ld + 4);
        NEON_ROWS(LOAD_ROW)
#undef LOAD_ROW
    } else {
#define ZERO_ROW(i, ar, l) c##i##0 = c##i##1 = c##i##2 = vdupq_n_f64(0.0);
        NEON_ROWS(ZERO_ROW)
#undef ZERO_ROW
    }
#define UPDATE_ROW(i, ar, l)                                                                       \
    c##i##0 = vfmaq_laneq_f64(c##i##0, b0, ar, l), c##i##1 = vfmaq_laneq_f64(c##i##1, b1, ar, l),  \
    c##i##2 = vfmaq_laneq_f64(c##i##2, b2, ar, l);
    for (int64_t k = 0; k < kc; k++) {
        float64x2_t b0 = vld1q_f64(bp), b1 = vld1q_f64(bp + 2), b2 = vld1q_f64(bp + 4);
        float64x2_t a0 = vld1q_f64(ap), a1 = vld1q_f64(ap + 2);
        float64x2_t a2 = vld1q_f64(ap + 4), a3 = vld1q_f64(ap + 6);
        NEON_ROWS(UPDATE_ROW)
        ap += NEON_MR;
        bp += NEON_NR;
    }
#undef UPDATE_ROW
#define STORE_ROW(i, ar, l)                                                                        \
    vst1q_f64(dst + (i)*ld, c##i##0), vst1q_f64(dst + (i)*ld + 2, c##i##1),                        \
        vst1q_f64(dst + (i)*ld + 4, c##i##2);
    NEON_ROWS(STORE_ROW)
#undef STORE_ROW
    if (!direct) tile_to_c(tile, NEON_NR, c, rs_c, cs_c, mr, nr);
}

/* Neoverse-N1 / Cortex-A76-class blocks as for f32 (matmul_micro.c): B panel 12 KiB and A panel
 * 16 KiB in L1, MC x KC of A 256 KiB of L2, KC x NC of B 3 MiB. Not measured on hardware yet. */
static const bn_gemm_kernel_f64 kernel_neon = {
    .mr = NEON_MR, .nr = NEON_NR, .kc = 256, .mc = 128, .nc = 1536, .micro = micro_neon};
#endif

/* ---- choice --------------------------------------------------------------------------------- */
const bn_gemm_kernel_f64 *bn_gemm_kernel_f64_for(bn_gemm_isa isa)
{
    if (!bn_gemm_isa_available(isa)) return NULL;
    switch (isa) {
#if BN_GEMM_F64_X86
    case BN_GEMM_AVX2: return &kernel_avx2;
    case BN_GEMM_AVX512: return &kernel_avx512;
#endif
#if BN_GEMM_F64_NEON
    case BN_GEMM_NEON: return &kernel_neon;
#endif
    default: return &kernel_portable;
    }
}
