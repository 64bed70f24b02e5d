/* backend/cpu/matmul_gemm.c — the packed, cache-blocked GEMM behind matmul: in f32 for f32, f16
 * and bf16, in f64 for f64 (DESIGN §6), in the classic three-level layout:
 *
 *   for jc in N by NC:            a KC x NC block of B is packed once and shared by all threads
 *     for pc in K by KC:          (B block in L3, one KC x NR panel of it in L1)
 *       pack B[pc.., jc..] into NR-column panels
 *       for each (M block, N chunk) task, split over threads:
 *         pack A[ic.., pc..] into MR-row panels  (thread-private, MC x KC, in L2)
 *         for jr, ir: micro-kernel on one MR x NR tile of C
 *
 * Packing reads any strides (a transposed operand is read along its unit stride, never copied
 * whole) and converts f16 / bf16 to f32 on the way. C is accumulated in f32 (f64) through the K
 * blocks; the caller rounds once to f16 / bf16. Threads split M (and N when M is too short),
 * never K, so every thread count gives the same bits. The block sizes (KC, MC, NC) come with each
 * ISA's micro-kernel (matmul_micro.c, matmul_micro_f64.c), sized for its register tile and the
 * caches. One blocked loop serves both precisions: the plan carries the element size and the
 * micro-kernel of its precision. */
#include "backend/cpu/matmul_gemm.h"
#include "born/info.h"

#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__GNUC__) && defined(__x86_64__)
#define BN_GEMM_HAVE_F16C 1
#include <immintrin.h>
#else
#define BN_GEMM_HAVE_F16C 0
#endif

/* Below this many multiply-adds one thread does the whole product (an OpenMP region costs a few
 * microseconds, about what 100k multiply-adds take). */
#define GEMM_PAR_MIN_MACS ((int64_t)1 << 17)

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t abs64(int64_t a) { return a < 0 ? -a : a; }

/* ---- packing -------------------------------------------------------------------------------- */
/* Element i of a buffer of es-byte elements. */
static void *elem_at(void *p, int64_t i, size_t es) { return (char *)p + i * (int64_t)es; }

/* f16 and bf16 to f32, exact for every value, inlined so that the conversion loops vectorise
 * (the library's bn_f16_to_f32 is a general, slower routine in another file). f16: the exponent
 * and mantissa moved into place are the value times 2^-112 as an f32 (subnormals included), so
 * one exact multiplication rebiases them; infinities and NaNs keep their payload. */
static inline float f16_to_f32(uint16_t h)
{
    uint32_t em = h & 0x7fffu, bits = em << 13;
    float f;
    memcpy(&f, &bits, sizeof f);
    f *= 0x1p112f;
    memcpy(&bits, &f, sizeof f);
    if (em >= 0x7c00u) bits = 0x7f800000u | ((em & 0x3ffu) << 13);
    bits |= (uint32_t)(h & 0x8000u) << 16;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static inline float bf16_to_f32(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

#if BN_GEMM_HAVE_F16C
/* F16C (vcvtph2ps, on every x86-64 CPU with AVX2): 8 conversions an instruction; AVX: the 8x8
 * transposes of pack_b_cols_avx. The answers of CPUID are kept: 0 unknown, else 1 + f16c + 2 avx. */
static int cpu_bits(void)
{
    static int known;
    int k = __atomic_load_n(&known, __ATOMIC_RELAXED);
    if (k == 0) {
        bn_cpu_features f = bn_cpu_features_detect();
        k = 1 + (f.f16c ? 1 : 0) + (f.avx ? 2 : 0);
        __atomic_store_n(&known, k, __ATOMIC_RELAXED);
    }
    return k - 1;
}
static bool cpu_has_f16c(void) { return (cpu_bits() & 1) != 0; }
static bool cpu_has_avx(void) { return (cpu_bits() & 2) != 0; }

/* panel[k*nr + c] = b0[c*cs + k] for c < cols, k < kc: a (kc, nr) panel of B from columns that
 * are contiguous along k, 8 columns by 8 rows at a time through an in-register transpose (the
 * scalar loop writes one float per nr-float row, a store per element). */
__attribute__((target("avx"))) static void pack_b_cols_avx(float *panel, int nr, const float *b0,
                                                           int64_t cs, int cols, int64_t kc)
{
    int c = 0;
    for (; c + 8 <= cols; c += 8) {
        const float *s = b0 + c * cs;
        int64_t k = 0;
        for (; k + 8 <= kc; k += 8) {
            __m256 r0 = _mm256_loadu_ps(s + k), r1 = _mm256_loadu_ps(s + cs + k);
            __m256 r2 = _mm256_loadu_ps(s + 2 * cs + k), r3 = _mm256_loadu_ps(s + 3 * cs + k);
            __m256 r4 = _mm256_loadu_ps(s + 4 * cs + k), r5 = _mm256_loadu_ps(s + 5 * cs + k);
            __m256 r6 = _mm256_loadu_ps(s + 6 * cs + k), r7 = _mm256_loadu_ps(s + 7 * cs + k);
            __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
            __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
            __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
            __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
            __m256 u0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
            __m256 u1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
            __m256 u2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
            __m256 u3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
            __m256 u4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0));
            __m256 u5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
            __m256 u6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0));
            __m256 u7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
            float *d = panel + k * nr + c;
            _mm256_storeu_ps(d, _mm256_permute2f128_ps(u0, u4, 0x20));
            _mm256_storeu_ps(d + nr, _mm256_permute2f128_ps(u1, u5, 0x20));
            _mm256_storeu_ps(d + 2 * nr, _mm256_permute2f128_ps(u2, u6, 0x20));
            _mm256_storeu_ps(d + 3 * nr, _mm256_permute2f128_ps(u3, u7, 0x20));
            _mm256_storeu_ps(d + 4 * nr, _mm256_permute2f128_ps(u0, u4, 0x31));
            _mm256_storeu_ps(d + 5 * nr, _mm256_permute2f128_ps(u1, u5, 0x31));
            _mm256_storeu_ps(d + 6 * nr, _mm256_permute2f128_ps(u2, u6, 0x31));
            _mm256_storeu_ps(d + 7 * nr, _mm256_permute2f128_ps(u3, u7, 0x31));
        }
        for (; k < kc; k++)
            for (int j = 0; j < 8; j++) panel[k * nr + c + j] = s[j * cs + k];
    }
    for (; c < cols; c++)
        for (int64_t k = 0; k < kc; k++) panel[k * nr + c] = b0[c * cs + k];
}

/* d[i*ds] = f16 s[i] for i < n (s contiguous) */
__attribute__((target("avx,f16c"))) static void f16_run_f16c(float *d, int64_t ds,
                                                             const uint16_t *s, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(s + i)));
        if (ds == 1) {
            _mm256_storeu_ps(d + i, v);
        } else {
            float t[8];
            _mm256_storeu_ps(t, v);
            for (int j = 0; j < 8; j++) d[(i + j) * ds] = t[j];
        }
    }
    for (; i < n; i++) d[i * ds] = f16_to_f32(s[i]);
}
#endif

/* dst[i*ds] = src[i*ss] for i < n, into dtype `to`: f32 from f32, f16 or bf16; f64 from f64. */
static void convert_run(void *dst, bn_dtype to, int64_t ds, const void *src, bn_dtype dt,
                        int64_t ss, int64_t n)
{
    if (to == BN_F64) {
        BN_ASSERT(dt == BN_F64);
        double *d = dst;
        const double *s = src;
        if (ds == 1 && ss == 1) {
            memcpy(d, s, sizeof(double) * (size_t)n);
        } else {
            for (int64_t i = 0; i < n; i++) d[i * ds] = s[i * ss];
        }
        return;
    }
    float *d = dst;
    switch (dt) {
    case BN_F32: {
        const float *s = src;
        if (ds == 1 && ss == 1) {
            memcpy(d, s, sizeof(float) * (size_t)n);
        } else {
            for (int64_t i = 0; i < n; i++) d[i * ds] = s[i * ss];
        }
        break;
    }
    case BN_F16: {
        const uint16_t *s = src;
#if BN_GEMM_HAVE_F16C
        if (ss == 1 && cpu_has_f16c()) {
            f16_run_f16c(d, ds, s, n);
            break;
        }
#endif
        for (int64_t i = 0; i < n; i++) d[i * ds] = f16_to_f32(s[i * ss]);
        break;
    }
    case BN_BF16: {
        const uint16_t *s = src;
        for (int64_t i = 0; i < n; i++) d[i * ds] = bf16_to_f32(s[i * ss]);
        break;
    }
    default: BN_ASSERT(0);
    }
}

static const void *mat_at(const bn_gemm_mat *m, int64_t i, int64_t j)
{
    return (const char *)m->data + (i * m->rs + j * m->cs) * (int64_t)bn_dtype_size(m->dtype);
}

/* Packs rows [i0, i0+rows) x cols [k0, k0+kc) of a into one panel (kc, mr) of dtype `to`,
 * rows <= mr, zero-padding rows past `rows`. Reads along whichever of a's strides is smaller. */
static void pack_a_panel(const bn_gemm_mat *a, int64_t i0, int rows, int64_t k0, int64_t kc, int mr,
                         bn_dtype to, void *panel)
{
    size_t es = bn_dtype_size(to);
    if (abs64(a->cs) <= abs64(a->rs)) {
        for (int r = 0; r < rows; r++)
            convert_run(elem_at(panel, r, es), to, mr, mat_at(a, i0 + r, k0), a->dtype, a->cs, kc);
    } else {
        for (int64_t k = 0; k < kc; k++)
            convert_run(elem_at(panel, k * mr, es), to, 1, mat_at(a, i0, k0 + k), a->dtype, a->rs,
                        rows);
    }
    if (rows < mr) /* all-zero bytes are 0.0 in f32 and f64 */
        for (int64_t k = 0; k < kc; k++)
            memset(elem_at(panel, k * mr + rows, es), 0, (size_t)(mr - rows) * es);
}

/* Packs rows [k0, k0+kc) x cols [j0, j0+cols) of b into one panel (kc, nr) of dtype `to`,
 * cols <= nr, zero-padding columns past `cols`. */
static void pack_b_panel(const bn_gemm_mat *b, int64_t k0, int64_t kc, int64_t j0, int cols, int nr,
                         bn_dtype to, void *panel)
{
    size_t es = bn_dtype_size(to);
    if (abs64(b->cs) <= abs64(b->rs)) {
        for (int64_t k = 0; k < kc; k++)
            convert_run(elem_at(panel, k * nr, es), to, 1, mat_at(b, k0 + k, j0), b->dtype, b->cs,
                        cols);
    } else {
#if BN_GEMM_HAVE_F16C
        if (to == BN_F32 && b->dtype == BN_F32 && b->rs == 1 && cpu_has_avx()) {
            pack_b_cols_avx(panel, nr, mat_at(b, k0, j0), b->cs, cols, kc);
        } else
#endif
        {
            for (int c = 0; c < cols; c++)
                convert_run(elem_at(panel, c, es), to, nr, mat_at(b, k0, j0 + c), b->dtype, b->rs,
                            kc);
        }
    }
    if (cols < nr)
        for (int64_t k = 0; k < kc; k++)
            memset(elem_at(panel, k * nr + cols, es), 0, (size_t)(nr - cols) * es);
}

/* Packs panels [p0, p1) of the KC x NC block of b at (k0, j0): panel p is columns
 * [j0 + p*nr, ...) of width min(nr, nc - p*nr), into bpack + (p - p0)*ps elements
 * (ps >= kc*nr). When b's rows are contiguous and need no conversion they are read one row at a
 * time across all the panels (a long sequential run the hardware prefetchers follow), not one
 * panel at a time (a 128-byte piece per row, a whole row apart). */
/* The full panels [p0, full_end) of pack_b_panels, row by row, with panel rows of BYTES bytes:
 * a constant for each micro-kernel's nr, so that each copy is a few vector moves, not a call. */
#define PACK_B_ROWS(BYTES)                                                                         \
    for (int64_t k = 0; k < kc; k++) {                                                             \
        const char *row = (const char *)mat_at(b, k0 + k, j0) + p0 * (int64_t)(BYTES);             \
        char *dst = (char *)bpack + k * (int64_t)(BYTES);                                          \
        for (int64_t p = p0; p < full_end; p++, row += (BYTES), dst += ps * (int64_t)es)           \
            memcpy(dst, row, (BYTES));                                                             \
    }

static void pack_b_panels(const bn_gemm_mat *b, int64_t k0, int64_t kc, int64_t j0, int64_t p0,
                          int64_t p1, int64_t nc, int nr, bn_dtype to, void *bpack, int64_t ps)
{
    size_t es = bn_dtype_size(to);
    if (b->cs != 1 || b->dtype != to || p0 == p1) {
        for (int64_t p = p0; p < p1; p++)
            pack_b_panel(b, k0, kc, j0 + p * nr, (int)min64(nr, nc - p * nr), nr, to,
                         elem_at(bpack, (p - p0) * ps, es));
        return;
    }
    int64_t full_end = min64(p1, nc / nr); /* panels before it have all nr columns */
    if (full_end > p0) {
        const size_t bytes = es * (size_t)nr; /* one panel row: 32, 64 or 128 bytes */
        switch (bytes) {
        case 32: PACK_B_ROWS(32); break;
        case 48: PACK_B_ROWS(48); break;
        case 64: PACK_B_ROWS(64); break;
        case 96: PACK_B_ROWS(96); break;
        case 128: PACK_B_ROWS(128); break;
        default: PACK_B_ROWS(bytes); break;
        }
    }
#undef PACK_B_ROWS
    for (int64_t p = full_end > p0 ? full_end : p0; p < p1; p++) /* the edge panel */
        pack_b_panel(b, k0, kc, j0 + p * nr, (int)min64(nr, nc - p * nr), nr, to,
                     elem_at(bpack, (p - p0) * ps, es));
}

/* ---- the packing workspace ------------------------------------------------------------------
 * The packed blocks take a few MiB (KC x NC of B, MC x KC of A per thread). A fresh allocation of
 * that size per product is a fresh mmap whose pages fault in on every call (a few hundred
 * microseconds at 1024^3, about a tenth of the product), so the last block given back is kept
 * for the next product: one pointer, swapped atomically, so concurrent products (a batch split
 * over threads) each get a block of their own. The block starts with its size; the caller's
 * part begins 64 bytes in. At most one block stays allocated (it stays reachable, not leaked). */
static char *cached_workspace;

enum { WORKSPACE_HEADER = 64 };

static void *workspace_take(size_t nbytes)
{
    char *base = __atomic_exchange_n(&cached_workspace, (char *)NULL, __ATOMIC_ACQ_REL);
    size_t have = 0;
    if (base) memcpy(&have, base, sizeof have);
    if (base && have < nbytes) {
        bn__free_aligned(base);
        base = NULL;
    }
    if (!base) {
        base = bn__alloc_aligned(nbytes + WORKSPACE_HEADER);
        if (!base) return NULL;
        memcpy(base, &nbytes, sizeof nbytes);
    }
    return base + WORKSPACE_HEADER;
}

static void workspace_give(void *work)
{
    char *base = (char *)work - WORKSPACE_HEADER;
    char *old = __atomic_exchange_n(&cached_workspace, base, __ATOMIC_ACQ_REL);
    if (old) bn__free_aligned(old);
}

/* ---- the blocked loops ---------------------------------------------------------------------- */
typedef struct gemm_plan {
    int mr, nr;                   /* register tile */
    int64_t KC, MC, NC;           /* cache blocks */
    bn_gemm_micro_fn micro;       /* f32 products, or NULL */
    bn_gemm_micro_f64_fn micro64; /* f64 products, or NULL */
    bn_dtype to;                  /* f32 or f64: what the packed panels and C hold */
    size_t es;                    /* bytes of one element of those */
    int64_t M, N, K;
    bn_gemm_mat a, b;
    void *c;
    int64_t rs_c, cs_c;
    int64_t mpanels;     /* MR-row panels of A: ceil(M / MR) */
    int64_t nmb;         /* M blocks, of mpanels / nmb panels (rounded down or up) each */
    int64_t mc;          /* rows of the largest M block (a multiple of MR) */
    int64_t kc_max;      /* min(K, KC) */
    int64_t npanels_max; /* NR-column panels of B in the widest N block: ceil(min(N, NC) / NR) */
    char *bpack;         /* npanels_max + threads panels of KC x NR, shared */
    char *apack;         /* one MC x KC buffer per thread */
} gemm_plan;

/* [*begin, *end) of n items for thread tid of nt, in contiguous static chunks. */
static void split_range(int64_t n, int tid, int nt, int64_t *begin, int64_t *end)
{
    *begin = n * tid / nt;
    *end = n * (tid + 1) / nt;
}

/* Only called with more than one thread; a no-op is fine when the team turned out to be one. */
static void team_barrier(int nt)
{
    if (nt > 1) {
#pragma omp barrier
    }
}

/* The micro-kernel of the plan's precision on the tile of C at element offset coff. */
static void run_micro(const gemm_plan *pl, int64_t kc, const char *ap, const char *bp, int64_t coff,
                      int mr, int nr, bool accumulate)
{
    if (pl->micro64)
        pl->micro64(kc, (const double *)ap, (const double *)bp, (double *)pl->c + coff, pl->rs_c,
                    pl->cs_c, mr, nr, accumulate);
    else
        pl->micro(kc, (const float *)ap, (const float *)bp, (float *)pl->c + coff, pl->rs_c,
                  pl->cs_c, mr, nr, accumulate);
}

/* One thread's share of the product: tid of a team of nt that runs this function together. */
static void gemm_body(const gemm_plan *pl, int tid, int nt)
{
    const int mr = pl->mr, nr = pl->nr;
    const int64_t es = (int64_t)pl->es;
    char *ap = pl->apack + (int64_t)tid * pl->mc * pl->kc_max * es;
    const int64_t KC = pl->KC, NC = pl->NC;
    /* One M block (a short M): each thread computes with exactly the B panels it packed (the
     * two splits below agree) and keeps them in slots of its own, so no thread waits for or
     * overwrites another: no barriers. */
    const bool own_panels = pl->nmb == 1;
    const int64_t ps = pl->kc_max * nr; /* elements from one packed B panel to the next */
    /* own_panels: thread tid's slots are [tid*ppt, (tid+1)*ppt), and nt*ppt < npanels_max + nt
     * (nt is the team's real size, which may be below the threads asked for) */
    const int64_t ppt = ceil_div(pl->npanels_max, nt);
    for (int64_t jc = 0; jc < pl->N; jc += NC) {
        int64_t nc = min64(NC, pl->N - jc);
        int64_t npanels = ceil_div(nc, nr);
        /* When M gives fewer blocks than threads, N is cut too. */
        int64_t njc = pl->nmb < nt ? min64(ceil_div(nt, pl->nmb), npanels) : 1;
        int64_t ntasks = pl->nmb * njc;
        for (int64_t pc = 0; pc < pl->K; pc += KC) {
            int64_t kc = min64(KC, pl->K - pc);
            int64_t b0, b1;
            split_range(npanels, tid, nt, &b0, &b1);
            /* own_panels: thread tid's panels go to its own slots [tid*ppt, ...) */
            int64_t slot0 = own_panels ? tid * ppt : b0;
            pack_b_panels(&pl->b, pc, kc, jc, b0, b1, nc, nr, pl->to, pl->bpack + slot0 * ps * es,
                          ps);
            if (!own_panels) team_barrier(nt);
            int64_t t0, t1, packed_block = -1;
            split_range(ntasks, tid, nt, &t0, &t1);
            for (int64_t t = t0; t < t1; t++) {
                int64_t ib = t / njc, chunk = t % njc;
                int64_t i0 = pl->mpanels * ib / pl->nmb * mr;
                int64_t mcur = min64(pl->mpanels * (ib + 1) / pl->nmb * mr, pl->M) - i0;
                int64_t npa = ceil_div(mcur, mr);
                if (ib != packed_block) {
                    for (int64_t q = 0; q < npa; q++)
                        pack_a_panel(&pl->a, i0 + q * mr, (int)min64(mr, mcur - q * mr), pc, kc, mr,
                                     pl->to, ap + q * kc * mr * es);
                    packed_block = ib;
                }
                int64_t p0 = chunk * npanels / njc, p1 = (chunk + 1) * npanels / njc;
                for (int64_t p = p0; p < p1; p++) {
                    int64_t j = jc + p * nr;
                    int cols = (int)min64(nr, pl->N - j);
                    for (int64_t q = 0; q < npa; q++) {
                        int64_t i = i0 + q * mr;
                        run_micro(pl, kc, ap + q * kc * mr * es,
                                  pl->bpack + (p - b0 + slot0) * ps * es,
                                  i * pl->rs_c + j * pl->cs_c, (int)min64(mr, mcur - q * mr), cols,
                                  pc > 0);
                    }
                }
            }
            if (!own_panels) team_barrier(nt); /* bpack is rewritten by the next K block */
        }
    }
}

/* Runs body on nt threads (or on the calling thread when nt is 1: no OpenMP region at all, so
 * it is safe inside a caller's parallel loop). */
static void run_team(void (*body)(const gemm_plan *, int, int), const gemm_plan *pl, int nt)
{
    if (nt == 1) {
        body(pl, 0, 1);
        return;
    }
#pragma omp parallel num_threads(nt)
    {
#ifdef _OPENMP
        body(pl, omp_get_thread_num(), omp_get_num_threads());
#else
        body(pl, 0, 1);
#endif
    }
}

/* Fraction of a tiled (mr, nr) grid over (m, n) that holds real elements. */
static double tile_use(int64_t m, int64_t n, int mr, int nr)
{
    return ((double)m / (double)(ceil_div(m, mr) * mr)) *
           ((double)n / (double)(ceil_div(n, nr) * nr));
}

/* Blocks the product of pl (kernel, operands and C filled in) for `threads` threads, takes the
 * packing workspace and runs the team. */
static bn_status gemm_packed(gemm_plan *pl, int threads)
{
    int nt = threads < 1 ? 1 : threads;
    if ((double)pl->M * (double)pl->N * (double)pl->K < (double)GEMM_PAR_MIN_MACS) nt = 1;
    /* M blocks of near-equal panel counts; a multiple of the thread count when M gives at least
     * one block a thread, else fewer blocks and N is cut too (gemm_body) */
    pl->mpanels = ceil_div(pl->M, pl->mr);
    pl->nmb = ceil_div(pl->M, pl->MC);
    if (nt > 1 && pl->nmb >= nt) pl->nmb = ceil_div(pl->nmb, nt) * nt;
    if (pl->nmb > pl->mpanels) pl->nmb = pl->mpanels;
    pl->mc = ceil_div(pl->mpanels, pl->nmb) * pl->mr;
    pl->kc_max = min64(pl->K, pl->KC);
    pl->npanels_max = ceil_div(min64(pl->N, pl->NC), pl->nr);
    /* B's panels first, rounded up to 64 bytes so that A's buffers start on a cache line */
    int64_t bbytes =
        ceil_div((pl->npanels_max + nt) * pl->kc_max * pl->nr * (int64_t)pl->es, 64) * 64;
    char *work = workspace_take((size_t)(bbytes + nt * pl->mc * pl->kc_max * (int64_t)pl->es));
    if (!work) return BN_ERR_OOM;
    pl->bpack = work;
    pl->apack = work + bbytes;
    run_team(gemm_body, pl, nt);
    workspace_give(work);
    return BN_OK;
}

/* ---- one row of C, without packing ---------------------------------------------------------- */
/* c (N) at stride cs_c = x (K) at stride sx @ y (K, N) f32, whose rows (y->cs == 1) or columns
 * (y->rs == 1) are contiguous. Threads split N. */
static bn_status gemm_row(const bn_gemm_kernel *kern, int64_t N, int64_t K, const float *x,
                          int64_t sx, const bn_gemm_mat *y, float *c, int64_t cs_c, int threads)
{
    int nt = N * K >= GEMM_PAR_MIN_MACS && N >= 16 ? threads : 1;
    const float *yd = y->data;
    bool by_rows = y->cs == 1 && N > 1; /* else y->rs == 1: dot products down the columns */
    float *acc = by_rows && cs_c != 1 ? bn__alloc_aligned(sizeof(float) * (size_t)N) : c;
    if (!acc) return BN_ERR_OOM;
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (int t = 0; t < nt; t++) {
        int64_t j0 = N * t / nt / 8 * 8, j1 = t == nt - 1 ? N : N * (t + 1) / nt / 8 * 8;
        if (j0 >= j1) continue;
        if (by_rows)
            kern->axpy_rows(j1 - j0, K, x, sx, yd + j0, y->rs, acc + j0);
        else
            kern->dot_rows(j1 - j0, K, x, sx, yd + j0 * y->cs, y->cs, c + j0 * cs_c, cs_c);
    }
    if (acc != c) {
        for (int64_t j = 0; j < N; j++) c[j * cs_c] = acc[j];
        bn__free_aligned(acc);
    }
    return BN_OK;
}

static void zero_c(float *c, int64_t M, int64_t N, int64_t rs_c, int64_t cs_c)
{
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) c[i * rs_c + j * cs_c] = 0.0f;
}

bn_status bn_gemm_f32(const bn_gemm_kernel *kern, int64_t M, int64_t N, int64_t K, bn_gemm_mat a,
                      bn_gemm_mat b, float *c, int64_t rs_c, int64_t cs_c, int threads)
{
    if (M == 0 || N == 0) return BN_OK;
    if (K == 0) {
        zero_c(c, M, N, rs_c, cs_c);
        return BN_OK;
    }
    bool f32 = a.dtype == BN_F32 && b.dtype == BN_F32;
    if (f32 && M == 1 && N == 1) {
        c[0] = kern->dot(K, a.data, a.cs, b.data, b.rs);
        return BN_OK;
    }
    if (f32 && N == 1 && (a.rs == 1 || a.cs == 1)) { /* C^T = b^T a^T: one row */
        bn_gemm_mat at = {a.data, a.dtype, a.cs, a.rs};
        return gemm_row(kern, M, K, b.data, b.rs, &at, c, rs_c, threads);
    }
    if (f32 && M == 1 && (b.rs == 1 || b.cs == 1))
        return gemm_row(kern, N, K, a.data, a.cs, &b, c, cs_c, threads);
    /* C^T = B^T A^T when that wastes clearly less of the register tile (a thin C, e.g. one
     * column). Each element still sums its K products in order: the bits do not change. */
    if (tile_use(N, M, kern->mr, kern->nr) > 1.25 * tile_use(M, N, kern->mr, kern->nr)) {
        bn_gemm_mat at = {a.data, a.dtype, a.cs, a.rs}, bt = {b.data, b.dtype, b.cs, b.rs};
        return bn_gemm_f32(kern, N, M, K, bt, at, c, cs_c, rs_c, threads);
    }
    gemm_plan pl = {.mr = kern->mr,
                    .nr = kern->nr,
                    .KC = kern->kc,
                    .MC = kern->mc,
                    .NC = kern->nc,
                    .micro = kern->micro,
                    .to = BN_F32,
                    .es = sizeof(float),
                    .M = M,
                    .N = N,
                    .K = K,
                    .a = a,
                    .b = b,
                    .c = c,
                    .rs_c = rs_c,
                    .cs_c = cs_c};
    return gemm_packed(&pl, threads);
}

bn_status bn_gemm_f64(const bn_gemm_kernel_f64 *kern, int64_t M, int64_t N, int64_t K,
                      bn_gemm_mat a, bn_gemm_mat b, double *c, int64_t rs_c, int64_t cs_c,
                      int threads)
{
    BN_ASSERT(a.dtype == BN_F64 && b.dtype == BN_F64);
    if (M == 0 || N == 0) return BN_OK;
    if (K == 0) {
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) c[i * rs_c + j * cs_c] = 0.0;
        return BN_OK;
    }
    if (tile_use(N, M, kern->mr, kern->nr) > 1.25 * tile_use(M, N, kern->mr, kern->nr)) {
        bn_gemm_mat at = {a.data, a.dtype, a.cs, a.rs}, bt = {b.data, b.dtype, b.cs, b.rs};
        return bn_gemm_f64(kern, N, M, K, bt, at, c, cs_c, rs_c, threads);
    }
    gemm_plan pl = {.mr = kern->mr,
                    .nr = kern->nr,
                    .KC = kern->kc,
                    .MC = kern->mc,
                    .NC = kern->nc,
                    .micro64 = kern->micro,
                    .to = BN_F64,
                    .es = sizeof(double),
                    .M = M,
                    .N = N,
                    .K = K,
                    .a = a,
                    .b = b,
                    .c = c,
                    .rs_c = rs_c,
                    .cs_c = cs_c};
    return gemm_packed(&pl, threads);
}
