/* backend/cpu/matmul_micro.c — the register-tiled f32 micro-kernels of the packed GEMM, one per
 * instruction set, and the run-time choice between them.
 *
 *   portable: 6 x 8 tile in GNU C vector extensions (4 floats a vector: SSE2 on x86-64, NEON on
 *             arm64), separate multiply and add, so its sums equal the plain reference loop's.
 *   avx2:     6 x 16 tile in AVX2 + FMA intrinsics (12 of the 16 ymm registers accumulate),
 *             compiled with a target attribute and used only when the CPU reports AVX2 and FMA.
 *   avx512:   14 x 32 tile in AVX-512F intrinsics (28 of the 32 zmm registers accumulate, A is
 *             broadcast from memory), used only when the CPU and the OS support AVX-512F.
 *   neon:     8 x 12 tile in Advanced SIMD intrinsics on aarch64 (24 of the 32 q registers
 *             accumulate; A's 8 values are two registers used lane by lane with vfmaq_laneq),
 *             always available there: NEON is part of the AArch64 base ISA.
 *
 * Each kernel keeps the whole tile in registers for the K loop: per k it loads one row of the B
 * panel, broadcasts each of the MR values of the A panel and updates C[i, :] += a[i] * b. Edge
 * tiles and C with a column stride other than 1 go through a small staging tile. */
#include "backend/cpu/matmul_gemm.h"
#include "born/info.h"

#include <stdlib.h>
#include <string.h>

/* Products and sums round separately here, even where the target has FMA (-march=native):
 * gcc does not contract in ISO C mode, clang needs telling. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define BN_GEMM_HAVE_AVX2 1
#include <immintrin.h>
#else
#define BN_GEMM_HAVE_AVX2 0
#endif

#if defined(__aarch64__) && defined(__ARM_NEON)
#define BN_GEMM_HAVE_NEON 1
#include <arm_neon.h>
#else
#define BN_GEMM_HAVE_NEON 0
#endif

/* ---- staging tile for edges and strided C --------------------------------------------------- */
/* tile is (MR, nr_full) row-major; c is (mr, nr) at c[i*rs_c + j*cs_c]. */
static void tile_from_c(float *tile, int nr_full, const float *c, int64_t rs_c, int64_t cs_c,
                        int mr, int nr, int mr_full)
{
    memset(tile, 0, sizeof(float) * (size_t)(mr_full * nr_full));
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++) tile[i * nr_full + j] = c[i * rs_c + j * cs_c];
}

static void tile_to_c(const float *tile, int nr_full, float *c, int64_t rs_c, int64_t cs_c, int mr,
                      int nr)
{
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++) c[i * rs_c + j * cs_c] = tile[i * nr_full + j];
}

/* ---- thin products: one row or one column of C ---------------------------------------------
 * Written once as macros and instantiated per ISA with its multiply-add: MADD_SEPARATE rounds
 * the product and then the sum (the portable kernel's vector ops), MADD_FUSED rounds once (the
 * AVX2 kernel's FMA), so each ISA's thin kernels match its micro-kernel bit for bit. */
#define MADD_SEPARATE(x, y, s) ((s) + (x) * (y))
#define MADD_FUSED(x, y, s) __builtin_fmaf((x), (y), (s))
#define AXPY_CHUNK 4096 /* outputs accumulated at a time: 16 KiB stays in L1 */

/* K products in order: x is (K) at stride sx, y is (K) at stride sy */
#define DEFINE_DOT(NAME, ATTR, MADD)                                                               \
    ATTR static float NAME(int64_t K, const float *x, int64_t sx, const float *y, int64_t sy)      \
    {                                                                                              \
        float s = 0.0f;                                                                            \
        for (int64_t k = 0; k < K; k++) s = MADD(x[k * sx], y[k * sy], s);                         \
        return s;                                                                                  \
    }

/* n dot products with rows of y (n, K) at row stride ldy, eight at a time so that eight
 * independent sums hide the add latency. */
#define DEFINE_DOT_ROWS(NAME, ATTR, MADD, DOT)                                                     \
    ATTR static void NAME(int64_t n, int64_t K, const float *x, int64_t sx, const float *y,        \
                          int64_t ldy, float *c, int64_t sc)                                       \
    {                                                                                              \
        int64_t j = 0;                                                                             \
        for (; j + 8 <= n; j += 8) {                                                               \
            const float *y0 = y + j * ldy, *y1 = y0 + ldy, *y2 = y1 + ldy, *y3 = y2 + ldy;         \
            const float *y4 = y3 + ldy, *y5 = y4 + ldy, *y6 = y5 + ldy, *y7 = y6 + ldy;            \
            float s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;                  \
            for (int64_t k = 0; k < K; k++) {                                                      \
                float xv = x[k * sx];                                                              \
                s0 = MADD(xv, y0[k], s0), s1 = MADD(xv, y1[k], s1);                                \
                s2 = MADD(xv, y2[k], s2), s3 = MADD(xv, y3[k], s3);                                \
                s4 = MADD(xv, y4[k], s4), s5 = MADD(xv, y5[k], s5);                                \
                s6 = MADD(xv, y6[k], s6), s7 = MADD(xv, y7[k], s7);                                \
            }                                                                                      \
            c[j * sc] = s0, c[(j + 1) * sc] = s1, c[(j + 2) * sc] = s2, c[(j + 3) * sc] = s3;      \
            c[(j + 4) * sc] = s4, c[(j + 5) * sc] = s5, c[(j + 6) * sc] = s6;                      \
            c[(j + 7) * sc] = s7;                                                                  \
        }                                                                                          \
        for (; j < n; j++) c[j * sc] = DOT(K, x, sx, y + j * ldy, 1);                              \
    }

/* ---- portable: 6 x 8 ------------------------------------------------------------------------ */
typedef float v4f __attribute__((vector_size(16)));

static inline v4f v4_load(const float *p)
{
    v4f v;
    memcpy(&v, p, sizeof v);
    return v;
}
static inline void v4_store(float *p, v4f v) { memcpy(p, &v, sizeof v); }
static inline v4f v4_splat(float x) { return (v4f){x, x, x, x}; }

enum { PORT_MR = 6, PORT_NR = 8 };

/* ap is (kc, 6), bp is (kc, 8), c is (mr, nr) */
static void micro_portable(int64_t kc, const float *ap, const float *bp, float *c, int64_t rs_c,
                           int64_t cs_c, int mr, int nr, bool accumulate)
{
    float tile[PORT_MR * PORT_NR];
    bool direct = mr == PORT_MR && nr == PORT_NR && cs_c == 1;
    float *dst = direct ? c : tile;
    int64_t ld = direct ? rs_c : PORT_NR;
    v4f c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
    if (accumulate) {
        if (!direct) tile_from_c(tile, PORT_NR, c, rs_c, cs_c, mr, nr, PORT_MR);
#define LOAD_ROW(i) (c##i##0 = v4_load(dst + (i)*ld), c##i##1 = v4_load(dst + (i)*ld + 4))
        LOAD_ROW(0), LOAD_ROW(1), LOAD_ROW(2), LOAD_ROW(3), LOAD_ROW(4), LOAD_ROW(5);
#undef LOAD_ROW
    } else {
        c00 = c01 = c10 = c11 = c20 = c21 = c30 = c31 = c40 = c41 = c50 = c51 = v4_splat(0.0f);
    }
    for (int64_t k = 0; k < kc; k++) {
        v4f b0 = v4_load(bp), b1 = v4_load(bp + 4), a;
#define UPDATE_ROW(i) (a = v4_splat(ap[i]), c##i##0 += a * b0, c##i##1 += a * b1)
        UPDATE_ROW(0), UPDATE_ROW(1), UPDATE_ROW(2), UPDATE_ROW(3), UPDATE_ROW(4), UPDATE_ROW(5);
#undef UPDATE_ROW
        ap += PORT_MR;
        bp += PORT_NR;
    }
#define STORE_ROW(i) (v4_store(dst + (i)*ld, c##i##0), v4_store(dst + (i)*ld + 4, c##i##1))
    STORE_ROW(0), STORE_ROW(1), STORE_ROW(2), STORE_ROW(3), STORE_ROW(4), STORE_ROW(5);
#undef STORE_ROW
    if (!direct) tile_to_c(tile, PORT_NR, c, rs_c, cs_c, mr, nr);
}

DEFINE_DOT(dot_portable, , MADD_SEPARATE)
DEFINE_DOT_ROWS(dot_rows_portable, , MADD_SEPARATE, dot_portable)

/* c (n) = x (K) @ y (K, n), y's rows contiguous at stride ldy */
static void axpy_rows_portable(int64_t n, int64_t K, const float *x, int64_t sx, const float *y,
                               int64_t ldy, float *c)
{
    for (int64_t j0 = 0; j0 < n; j0 += AXPY_CHUNK) {
        int64_t nj = n - j0 < AXPY_CHUNK ? n - j0 : AXPY_CHUNK;
        float *cj = c + j0;
        memset(cj, 0, sizeof(float) * (size_t)nj);
        for (int64_t k = 0; k < K; k++) {
            float xv = x[k * sx];
            const float *yk = y + k * ldy + j0;
            v4f xs = v4_splat(xv);
            int64_t j = 0;
            for (; j + 4 <= nj; j += 4) v4_store(cj + j, v4_load(cj + j) + xs * v4_load(yk + j));
            for (; j < nj; j++) cj[j] = MADD_SEPARATE(xv, yk[j], cj[j]);
        }
    }
}

static const bn_gemm_kernel kernel_portable = {.mr = PORT_MR,
                                               .nr = PORT_NR,
                                               .kc = 256,
                                               .mc = 144,
                                               .nc = 2048,
                                               .micro = micro_portable,
                                               .dot = dot_portable,
                                               .dot_rows = dot_rows_portable,
                                               .axpy_rows = axpy_rows_portable};

/* ---- avx2: 6 x 16 --------------------------------------------------------------------------- */
#if BN_GEMM_HAVE_AVX2
#define BN_TARGET_AVX2 __attribute__((target("avx2,fma")))

enum { AVX2_MR = 6, AVX2_NR = 16 };

/* ap is (kc, 6), bp is (kc, 16), c is (mr, nr) */
BN_TARGET_AVX2 static void micro_avx2(int64_t kc, const float *ap, const float *bp, float *c,
                                      int64_t rs_c, int64_t cs_c, int mr, int nr, bool accumulate)
{
    float tile[AVX2_MR * AVX2_NR];
    bool direct = mr == AVX2_MR && nr == AVX2_NR && cs_c == 1;
    float *dst = direct ? c : tile;
    int64_t ld = direct ? rs_c : AVX2_NR;
    __m256 c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
    if (accumulate) {
        if (!direct) tile_from_c(tile, AVX2_NR, c, rs_c, cs_c, mr, nr, AVX2_MR);
#define LOAD_ROW(i)                                                                                \
    (c##i##0 = _mm256_loadu_ps(dst + (i)*ld), c##i##1 = _mm256_loadu_ps(dst + (i)*ld + 8))
        LOAD_ROW(0), LOAD_ROW(1), LOAD_ROW(2), LOAD_ROW(3), LOAD_ROW(4), LOAD_ROW(5);
#undef LOAD_ROW
    } else {
        c00 = c01 = c10 = c11 = c20 = c21 = c30 = c31 = c40 = c41 = c50 = c51 = _mm256_setzero_ps();
    }
    for (int64_t k = 0; k < kc; k++) {
        __m256 b0 = _mm256_loadu_ps(bp), b1 = _mm256_loadu_ps(bp + 8), a;
#define UPDATE_ROW(i)                                                                              \
    (a = _mm256_broadcast_ss(ap + (i)), c##i##0 = _mm256_fmadd_ps(a, b0, c##i##0),                 \
     c##i##1 = _mm256_fmadd_ps(a, b1, c##i##1))
        UPDATE_ROW(0), UPDATE_ROW(1), UPDATE_ROW(2), UPDATE_ROW(3), UPDATE_ROW(4), UPDATE_ROW(5);
#undef UPDATE_ROW
        ap += AVX2_MR;
        bp += AVX2_NR;
    }
#define STORE_ROW(i)                                                                               \
    (_mm256_storeu_ps(dst + (i)*ld, c##i##0), _mm256_storeu_ps(dst + (i)*ld + 8, c##i##1))
    STORE_ROW(0), STORE_ROW(1), STORE_ROW(2), STORE_ROW(3), STORE_ROW(4), STORE_ROW(5);
#undef STORE_ROW
    if (!direct) tile_to_c(tile, AVX2_NR, c, rs_c, cs_c, mr, nr);
}

DEFINE_DOT(dot_avx2, BN_TARGET_AVX2, MADD_FUSED)
DEFINE_DOT_ROWS(dot_rows_avx2, BN_TARGET_AVX2, MADD_FUSED, dot_avx2)

/* c (n) = x (K) @ y (K, n), y's rows contiguous at stride ldy */
BN_TARGET_AVX2 static void axpy_rows_avx2(int64_t n, int64_t K, const float *x, int64_t sx,
                                          const float *y, int64_t ldy, float *c)
{
    for (int64_t j0 = 0; j0 < n; j0 += AXPY_CHUNK) {
        int64_t nj = n - j0 < AXPY_CHUNK ? n - j0 : AXPY_CHUNK;
        float *cj = c + j0;
        memset(cj, 0, sizeof(float) * (size_t)nj);
        for (int64_t k = 0; k < K; k++) {
            float xv = x[k * sx];
            const float *yk = y + k * ldy + j0;
            __m256 xs = _mm256_set1_ps(xv);
            int64_t j = 0;
            for (; j + 8 <= nj; j += 8)
                _mm256_storeu_ps(cj + j, _mm256_fmadd_ps(xs, _mm256_loadu_ps(yk + j),
                                                         _mm256_loadu_ps(cj + j)));
            for (; j < nj; j++) cj[j] = MADD_FUSED(xv, yk[j], cj[j]);
        }
    }
}

static const bn_gemm_kernel kernel_avx2 = {.mr = AVX2_MR,
                                           .nr = AVX2_NR,
                                           .kc = 256,
                                           .mc = 144,
                                           .nc = 2048,
                                           .micro = micro_avx2,
                                           .dot = dot_avx2,
                                           .dot_rows = dot_rows_avx2,
                                           .axpy_rows = axpy_rows_avx2};

static bool cpu_has_avx2_fma(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
#endif

/* ---- avx512: 14 x 32 ------------------------------------------------------------------------ */
#if BN_GEMM_HAVE_AVX2
#define BN_TARGET_AVX512 __attribute__((target("avx512f,avx2,fma")))

enum { AVX512_MR = 14, AVX512_NR = 32 };

/* Rows 0..13 of the tile, two zmm each (columns 0-15 and 16-31). */
#define AVX512_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13)

/* ap is (kc, 14), bp is (kc, 32), c is (mr, nr) */
BN_TARGET_AVX512 static void micro_avx512(int64_t kc, const float *ap, const float *bp, float *c,
                                          int64_t rs_c, int64_t cs_c, int mr, int nr,
                                          bool accumulate)
{
    float tile[AVX512_MR * AVX512_NR];
    bool direct = mr == AVX512_MR && nr == AVX512_NR && cs_c == 1;
    float *dst = direct ? c : tile;
    int64_t ld = direct ? rs_c : AVX512_NR;
#define DECL_ROW(i) __m512 c##i##0, c##i##1;
    AVX512_ROWS(DECL_ROW)
#undef DECL_ROW
    if (accumulate) {
        if (!direct) tile_from_c(tile, AVX512_NR, c, rs_c, cs_c, mr, nr, AVX512_MR);
#define LOAD_ROW(i)                                                                                \
    c##i##0 = _mm512_loadu_ps(dst + (i)*ld), c##i##1 = _mm512_loadu_ps(dst + (i)*ld + 16);
        AVX512_ROWS(LOAD_ROW)
#undef LOAD_ROW
    } else {
#define ZERO_ROW(i) c##i##0 = _mm512_setzero_ps(), c##i##1 = _mm512_setzero_ps();
        AVX512_ROWS(ZERO_ROW)
#undef ZERO_ROW
    }
#define UPDATE_ROW(i)                                                                              \
    a = _mm512_set1_ps(ap[i]), c##i##0 = _mm512_fmadd_ps(a, b0, c##i##0),                          \
    c##i##1 = _mm512_fmadd_ps(a, b1, c##i##1);
    int64_t k = 0;
    for (; k + 2 <= kc; k += 2) { /* two steps a trip: fewer loop branches */
        __m512 b0 = _mm512_loadu_ps(bp), b1 = _mm512_loadu_ps(bp + 16), a;
        _mm_prefetch((const char *)(ap + 8 * AVX512_MR), _MM_HINT_T0);
        AVX512_ROWS(UPDATE_ROW)
        ap += AVX512_MR;
        bp += AVX512_NR;
        b0 = _mm512_loadu_ps(bp), b1 = _mm512_loadu_ps(bp + 16);
        AVX512_ROWS(UPDATE_ROW)
        ap += AVX512_MR;
        bp += AVX512_NR;
    }
    for (; k < kc; k++) {
        __m512 b0 = _mm512_loadu_ps(bp), b1 = _mm512_loadu_ps(bp + 16), a;
        AVX512_ROWS(UPDATE_ROW)
        ap += AVX512_MR;
        bp += AVX512_NR;
    }
#undef UPDATE_ROW
#define STORE_ROW(i)                                                                               \
    _mm512_storeu_ps(dst + (i)*ld, c##i##0), _mm512_storeu_ps(dst + (i)*ld + 16, c##i##1);
    AVX512_ROWS(STORE_ROW)
#undef STORE_ROW
    if (!direct) tile_to_c(tile, AVX512_NR, c, rs_c, cs_c, mr, nr);
}

DEFINE_DOT(dot_avx512, BN_TARGET_AVX512, MADD_FUSED)

/* r[0..15] (16 rows of 16) becomes its transpose: r[m] holds column m of the input. */
BN_TARGET_AVX512 static inline void transpose16(__m512 r[16])
{
    __m512 t[16], u[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    /* u[4i + c], 128-bit lane L: column 4L + c of rows 4i..4i+3 */
    for (int i = 0; i < 4; i++) {
        __m512d t0 = _mm512_castps_pd(t[4 * i]), t1 = _mm512_castps_pd(t[4 * i + 1]);
        __m512d t2 = _mm512_castps_pd(t[4 * i + 2]), t3 = _mm512_castps_pd(t[4 * i + 3]);
        u[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(t0, t2));
        u[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(t0, t2));
        u[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(t1, t3));
        u[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(t1, t3));
    }
    for (int c = 0; c < 4; c++) {
        __m512 v0 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x44);
        __m512 v1 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xee);
        __m512 w0 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x44);
        __m512 w1 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xee);
        r[c] = _mm512_shuffle_f32x4(v0, w0, 0x88);
        r[4 + c] = _mm512_shuffle_f32x4(v0, w0, 0xdd);
        r[8 + c] = _mm512_shuffle_f32x4(v1, w1, 0x88);
        r[12 + c] = _mm512_shuffle_f32x4(v1, w1, 0xdd);
    }
}

/* One 16 x 16 block of y (rows at stride ldy, 16 k from x) into acc: acc[i] gets the 16
 * products of row i in k order, one FMA each. */
BN_TARGET_AVX512 static inline __m512 dot16_block(const float *x, int64_t sx, const float *y,
                                                  int64_t ldy, __m512 acc)
{
    __m512 r[16];
    for (int i = 0; i < 16; i++) {
        _mm_prefetch((const char *)(y + i * ldy + 512), _MM_HINT_T1);
        r[i] = _mm512_loadu_ps(y + i * ldy);
    }
    transpose16(r);
    for (int m = 0; m < 16; m++) acc = _mm512_fmadd_ps(_mm512_set1_ps(x[m * sx]), r[m], acc);
    return acc;
}

/* acc[i] += y[i*ldy] * x0 for the 16 rows, as a vector */
BN_TARGET_AVX512 static inline __m512 dot16_step(float x0, const float *y, int64_t ldy, __m512 acc)
{
    float col[16];
    for (int i = 0; i < 16; i++) col[i] = y[i * ldy];
    return _mm512_fmadd_ps(_mm512_set1_ps(x0), _mm512_loadu_ps(col), acc);
}

BN_TARGET_AVX512 static void store16(__m512 acc, float *c, int64_t sc)
{
    float col[16];
    _mm512_storeu_ps(col, acc);
    for (int i = 0; i < 16; i++) c[i * sc] = col[i];
}

/* 32 dot products with rows of y (32, K) at row stride ldy into c[i*sc]: sixteen k at a time,
 * each 16 x 16 block of y transposed in registers so that one vector holds the sums of 16
 * rows (two such chains in flight); each row still adds its products in k order with one FMA
 * each (the same bits as dot_avx512), and y is read along its rows at full vector width. */
BN_TARGET_AVX512 static void dot32_avx512(int64_t K, const float *x, int64_t sx, const float *y,
                                          int64_t ldy, float *c, int64_t sc)
{
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    const float *y1 = y + 16 * ldy;
    int64_t k = 0;
    for (; k + 16 <= K; k += 16) {
        acc0 = dot16_block(x + k * sx, sx, y + k, ldy, acc0);
        acc1 = dot16_block(x + k * sx, sx, y1 + k, ldy, acc1);
    }
    for (; k < K; k++) {
        acc0 = dot16_step(x[k * sx], y + k, ldy, acc0);
        acc1 = dot16_step(x[k * sx], y1 + k, ldy, acc1);
    }
    store16(acc0, c, sc);
    store16(acc1, c + 16 * sc, sc);
}

/* n dot products with rows of y (n, K) at row stride ldy: 32 rows at a time, then one by one */
BN_TARGET_AVX512 static void dot_rows_avx512(int64_t n, int64_t K, const float *x, int64_t sx,
                                             const float *y, int64_t ldy, float *c, int64_t sc)
{
    int64_t j = 0;
    for (; j + 32 <= n; j += 32) dot32_avx512(K, x, sx, y + j * ldy, ldy, c + j * sc, sc);
    for (; j < n; j++) c[j * sc] = dot_avx512(K, x, sx, y + j * ldy, 1);
}

/* c (n) = x (K) @ y (K, n), y's rows contiguous at stride ldy: four rows of y a pass over the
 * chunk of c, which stays in registers for 64 columns at a time. */
BN_TARGET_AVX512 static void axpy_rows_avx512(int64_t n, int64_t K, const float *x, int64_t sx,
                                              const float *y, int64_t ldy, float *c)
{
    for (int64_t j0 = 0; j0 < n; j0 += AXPY_CHUNK) {
        int64_t nj = n - j0 < AXPY_CHUNK ? n - j0 : AXPY_CHUNK;
        float *cj = c + j0;
        memset(cj, 0, sizeof(float) * (size_t)nj);
        int64_t k = 0;
        for (; k + 4 <= K; k += 4) {
            float x0 = x[k * sx], x1 = x[(k + 1) * sx], x2 = x[(k + 2) * sx], x3 = x[(k + 3) * sx];
            __m512 v0 = _mm512_set1_ps(x0), v1 = _mm512_set1_ps(x1);
            __m512 v2 = _mm512_set1_ps(x2), v3 = _mm512_set1_ps(x3);
            const float *y0 = y + k * ldy + j0, *y1 = y0 + ldy, *y2 = y1 + ldy, *y3 = y2 + ldy;
            int64_t j = 0;
            for (; j + 16 <= nj; j += 16) {
                __m512 s = _mm512_loadu_ps(cj + j);
                s = _mm512_fmadd_ps(v0, _mm512_loadu_ps(y0 + j), s);
                s = _mm512_fmadd_ps(v1, _mm512_loadu_ps(y1 + j), s);
                s = _mm512_fmadd_ps(v2, _mm512_loadu_ps(y2 + j), s);
                s = _mm512_fmadd_ps(v3, _mm512_loadu_ps(y3 + j), s);
                _mm512_storeu_ps(cj + j, s);
            }
            for (; j < nj; j++) {
                float s = MADD_FUSED(x0, y0[j], cj[j]);
                s = MADD_FUSED(x1, y1[j], s);
                s = MADD_FUSED(x2, y2[j], s);
                cj[j] = MADD_FUSED(x3, y3[j], s);
            }
        }
        for (; k < K; k++) {
            float xv = x[k * sx];
            const float *yk = y + k * ldy + j0;
            __m512 xs = _mm512_set1_ps(xv);
            int64_t j = 0;
            for (; j + 16 <= nj; j += 16)
                _mm512_storeu_ps(cj + j, _mm512_fmadd_ps(xs, _mm512_loadu_ps(yk + j),
                                                         _mm512_loadu_ps(cj + j)));
            for (; j < nj; j++) cj[j] = MADD_FUSED(xv, yk[j], cj[j]);
        }
    }
}

/* Blocks measured on Zen 5 (48 KiB L1d, 1 MiB L2 per core): a deep KC = 512 halves the C tile
 * traffic of KC = 256 and was clearly faster, although the KC x NR panel of B (64 KiB) then
 * streams from L2 with the A panel (28 KiB) at 13 bytes a cycle; MC x KC of A is 448 KiB of L2;
 * KC x NC of B 4 MiB of the shared L3. */
static const bn_gemm_kernel kernel_avx512 = {.mr = AVX512_MR,
                                             .nr = AVX512_NR,
                                             .kc = 512,
                                             .mc = 224,
                                             .nc = 2048,
                                             .micro = micro_avx512,
                                             .dot = dot_avx512,
                                             .dot_rows = dot_rows_avx512,
                                             .axpy_rows = axpy_rows_avx512};

/* CPUID and XCR0 (the OS saves the zmm state), through the backend's feature detection. CPUID
 * traps to the hypervisor in a virtual machine (tens of microseconds), so the answer is kept:
 * 0 unknown, 1 no, 2 yes (a race only computes the same answer twice). */
static bool cpu_has_avx512f(void)
{
    static int known;
    int k = __atomic_load_n(&known, __ATOMIC_RELAXED);
    if (k == 0) {
        k = cpu_has_avx2_fma() && bn_cpu_features_detect().avx512f ? 2 : 1;
        __atomic_store_n(&known, k, __ATOMIC_RELAXED);
    }
    return k == 2;
}
#endif

/* ---- neon: 8 x 12 --------------------------------------------------------------------------- */
#if BN_GEMM_HAVE_NEON
enum { NEON_MR = 8, NEON_NR = 12 };

/* Rows 0..7 of the tile, three q registers each (columns 0-3, 4-7, 8-11); row i takes lane i % 4
 * of A register i / 4. */
#define NEON_ROWS(X)                                                                               \
    X(0, a0, 0) X(1, a0, 1) X(2, a0, 2) X(3, a0, 3) X(4, a1, 0) X(5, a1, 1) X(6, a1, 2) X(7, a1, 3)

/* ap is (kc, 8), bp is (kc, 12), c is (mr, nr) */
static void micro_neon(int64_t kc, const float *ap, const float *bp, float *c, int64_t rs_c,
                       int64_t cs_c, int mr, int nr, bool accumulate)
{
    float tile[NEON_MR * NEON_NR];
    bool direct = mr == NEON_MR && nr == NEON_NR && cs_c == 1;
    float *dst = direct ? c : tile;
    int64_t ld = direct ? rs_c : NEON_NR;
#define DECL_ROW(i, ar, l) float32x4_t c##i##0, c##i##1, c##i##2;
    NEON_ROWS(DECL_ROW)
#undef DECL_ROW
    if (accumulate) {
        if (!direct) tile_from_c(tile, NEON_NR, c, rs_c, cs_c, mr, nr, NEON_MR);
#define LOAD_ROW(i, ar, l)                                                                         \
    c##i##0 = vld1q_f32(dst + (i)*ld), c##i##1 = vld1q_f32(dst + (i)*ld + 4),                      \
    c##i##2 = vld1q_f32(dst + (i)*ld + 8);
        NEON_ROWS(LOAD_ROW)
#undef LOAD_ROW
    } else {
#define ZERO_ROW(i, ar, l) c##i##0 = c##i##1 = c##i##2 = vdupq_n_f32(0.0f);
        NEON_ROWS(ZERO_ROW)
#undef ZERO_ROW
    }
#define UPDATE_ROW(i, ar, l)                                                                       \
    c##i##0 = vfmaq_laneq_f32(c##i##0, b0, ar, l), c##i##1 = vfmaq_laneq_f32(c##i##1, b1, ar, l),  \
    c##i##2 = vfmaq_laneq_f32(c##i##2, b2, ar, l);
    for (int64_t k = 0; k < kc; k++) {
        float32x4_t b0 = vld1q_f32(bp), b1 = vld1q_f32(bp + 4), b2 = vld1q_f32(bp + 8);
        float32x4_t a0 = vld1q_f32(ap), a1 = vld1q_f32(ap + 4);
        NEON_ROWS(UPDATE_ROW)
        ap += NEON_MR;
        bp += NEON_NR;
    }
#undef UPDATE_ROW
#define STORE_ROW(i, ar, l)                                                                        \
    vst1q_f32(dst + (i)*ld, c##i##0), vst1q_f32(dst + (i)*ld + 4, c##i##1),                        \
        vst1q_f32(dst + (i)*ld + 8, c##i##2);
    NEON_ROWS(STORE_ROW)
#undef STORE_ROW
    if (!direct) tile_to_c(tile, NEON_NR, c, rs_c, cs_c, mr, nr);
}

DEFINE_DOT(dot_neon, , MADD_FUSED)
DEFINE_DOT_ROWS(dot_rows_neon, , MADD_FUSED, dot_neon)

/* c (n) = x (K) @ y (K, n), y's rows contiguous at stride ldy */
static void axpy_rows_neon(int64_t n, int64_t K, const float *x, int64_t sx, const float *y,
                           int64_t ldy, float *c)
{
    for (int64_t j0 = 0; j0 < n; j0 += AXPY_CHUNK) {
        int64_t nj = n - j0 < AXPY_CHUNK ? n - j0 : AXPY_CHUNK;
        float *cj = c + j0;
        memset(cj, 0, sizeof(float) * (size_t)nj);
        for (int64_t k = 0; k < K; k++) {
            float xv = x[k * sx];
            const float *yk = y + k * ldy + j0;
            float32x4_t xs = vdupq_n_f32(xv);
            int64_t j = 0;
            for (; j + 4 <= nj; j += 4)
                vst1q_f32(cj + j, vfmaq_f32(vld1q_f32(cj + j), xs, vld1q_f32(yk + j)));
            for (; j < nj; j++) cj[j] = MADD_FUSED(xv, yk[j], cj[j]);
        }
    }
}

/* Blocks for a Neoverse-N1 / Cortex-A76-class core (64 KiB L1d, 512 KiB-1 MiB L2, a few MiB of
 * shared L3 or system cache): the KC x NR panel of B (12 KiB) and the KC x MR panel of A (8 KiB)
 * stay in L1; MC x KC of A is 192 KiB of L2; KC x NC of B 3 MiB of L3. Not measured on
 * hardware yet (qemu-user runs the tests, not the timings). */
static const bn_gemm_kernel kernel_neon = {.mr = NEON_MR,
                                           .nr = NEON_NR,
                                           .kc = 256,
                                           .mc = 192,
                                           .nc = 3072,
                                           .micro = micro_neon,
                                           .dot = dot_neon,
                                           .dot_rows = dot_rows_neon,
                                           .axpy_rows = axpy_rows_neon};
#endif

/* ---- choice --------------------------------------------------------------------------------- */
const char *bn_gemm_isa_name(bn_gemm_isa isa)
{
    switch (isa) {
    case BN_GEMM_PORTABLE: return "portable";
    case BN_GEMM_AVX2: return "avx2";
    case BN_GEMM_AVX512: return "avx512";
    case BN_GEMM_NEON: return "neon";
    default: return "?";
    }
}

bool bn_gemm_isa_available(bn_gemm_isa isa)
{
    switch (isa) {
    case BN_GEMM_PORTABLE: return true;
#if BN_GEMM_HAVE_AVX2
    case BN_GEMM_AVX2: return cpu_has_avx2_fma();
    case BN_GEMM_AVX512: return cpu_has_avx512f();
#endif
#if BN_GEMM_HAVE_NEON
    case BN_GEMM_NEON: return true;
#endif
    default: return false;
    }
}

/* BORN_GEMM_ISA=portable|avx2|avx512|neon in the environment caps the choice (for comparisons and
 * for testing every path on one machine); the best available ISA up to that one is used. */
bn_gemm_isa bn_gemm_best_isa(void)
{
    int cap = BN_GEMM_ISA_COUNT - 1;
    const char *force = getenv("BORN_GEMM_ISA");
    for (int i = 0; force && i < BN_GEMM_ISA_COUNT; i++)
        if (strcmp(force, bn_gemm_isa_name((bn_gemm_isa)i)) == 0) cap = i;
    for (int i = cap; i > 0; i--)
        if (bn_gemm_isa_available((bn_gemm_isa)i)) return (bn_gemm_isa)i;
    return BN_GEMM_PORTABLE;
}

const bn_gemm_kernel *bn_gemm_kernel_for(bn_gemm_isa isa)
{
    if (!bn_gemm_isa_available(isa)) return NULL;
#if BN_GEMM_HAVE_AVX2
    if (isa == BN_GEMM_AVX2) return &kernel_avx2;
    if (isa == BN_GEMM_AVX512) return &kernel_avx512;
#endif
#if BN_GEMM_HAVE_NEON
    if (isa == BN_GEMM_NEON) return &kernel_neon;
#endif
    return &kernel_portable;
}
