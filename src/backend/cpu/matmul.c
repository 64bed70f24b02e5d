/* backend/cpu/matmul.c — the CPU backend's matmul slot: walks the (broadcast) batch dims and
 * sends each (M, K) @ (K, N) product to the kernel for its dtype:
 *   f32, f16, bf16   the packed f32 GEMM of matmul_gemm.c (f16/bf16 accumulate in f32 and are
 *                    rounded once at the end),
 *   f64              the packed f64 GEMM of matmul_gemm.c; a row kernel accumulating in f64 when
 *                    C is one row or one column,
 *   i8 u8 i32 i64    a row kernel accumulating in wrapping 64-bit integers, stored back with
 *                    the same wrap-around PyTorch gives.
 * Many small matrices run one per thread; a large one splits its rows (and columns) over the
 * threads. Either way each element's K products are added in order, so the result does not
 * depend on the thread count. */
#include "backend/cpu/cpu_kernels.h"
#include "backend/cpu/iter.h"
#include "backend/cpu/matmul_gemm.h"

#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* Below this many multiply-adds a product (or a batch of them) runs on one thread. */
#define MATMUL_PAR_MIN_MACS ((int64_t)1 << 17)
/* A matrix with fewer multiply-adds than this is done whole by one thread when there are at
 * least two in the batch. */
#define MATMUL_SMALL_MACS ((int64_t)1 << 20)

/* The shape of one call: batch dims (broadcast in a and b by 0 strides) and M, N, K. */
typedef struct mm_problem {
    const bn_tview *a, *b, *out;
    int nbd; /* batch dims */
    int64_t nbatch, M, N, K;
} mm_problem;

/* Element offsets of batch number idx (row-major over out's batch dims) in v. */
static int64_t batch_offset(const mm_problem *pr, const bn_tview *v, int64_t idx)
{
    int64_t off = 0;
    for (int d = pr->nbd - 1; d >= 0; d--) {
        int64_t n = pr->out->shape[d];
        off += (idx % n) * v->strides[d];
        idx /= n;
    }
    return off;
}

static void *elem_ptr(const bn_tview *v, int64_t off)
{
    return (char *)v->data + off * (int64_t)bn_dtype_size(v->dtype);
}

static bn_status out_of_memory(const mm_problem *pr)
{
    return bn__error(BN_ERR_OOM,
                     "bn_matmul: out of memory for the work buffers of a [%lld, %lld] @ "
                     "[%lld, %lld] product",
                     (long long)pr->M, (long long)pr->K, (long long)pr->K, (long long)pr->N);
}

/* ---- f32, f16, bf16, f64: the packed GEMM -------------------------------------------------- */
typedef struct mm_kernels {
    const bn_gemm_kernel *f32;
    const bn_gemm_kernel_f64 *f64;
} mm_kernels;

/* Batch number idx: the GEMM straight into out when out is f32 or f64, else into an f32
 * workspace that is rounded once into out. */
static bn_status gemm_batch(const mm_problem *pr, const mm_kernels *kern, int64_t idx, int threads)
{
    const bn_tview *a = pr->a, *b = pr->b, *o = pr->out;
    int nd = o->ndim;
    bn_gemm_mat am = {elem_ptr(a, batch_offset(pr, a, idx)), a->dtype, a->strides[nd - 2],
                      a->strides[nd - 1]};
    bn_gemm_mat bm = {elem_ptr(b, batch_offset(pr, b, idx)), b->dtype, b->strides[nd - 2],
                      b->strides[nd - 1]};
    void *op = elem_ptr(o, batch_offset(pr, o, idx));
    int64_t rs = o->strides[nd - 2], cs = o->strides[nd - 1];
    if (o->dtype == BN_F64)
        return bn_gemm_f64(kern->f64, pr->M, pr->N, pr->K, am, bm, op, rs, cs, threads);
    if (o->dtype == BN_F32)
        return bn_gemm_f32(kern->f32, pr->M, pr->N, pr->K, am, bm, op, rs, cs, threads);

    float *ws = bn__alloc_aligned(sizeof(float) * (size_t)(pr->M * pr->N));
    if (!ws) return BN_ERR_OOM;
    bn_status st = bn_gemm_f32(kern->f32, pr->M, pr->N, pr->K, am, bm, ws, pr->N, 1, threads);
    uint16_t *h = op;
    for (int64_t i = 0; i < pr->M && st == BN_OK; i++)
        for (int64_t j = 0; j < pr->N; j++) {
            float v = ws[i * pr->N + j];
            h[i * rs + j * cs] = o->dtype == BN_F16 ? bn_f32_to_f16(v) : bn_f32_to_bf16(v);
        }
    bn__free_aligned(ws);
    return st;
}

static bn_status matmul_gemm(const mm_problem *pr, bn_gemm_isa isa)
{
    mm_kernels kern = {bn_gemm_kernel_for(isa), bn_gemm_kernel_f64_for(isa)};
    if (!kern.f32 || !kern.f64)
        return bn__error(BN_ERR_UNSUPPORTED,
                         "bn_cpu_matmul: the %s kernels are not available "
                         "on this CPU",
                         bn_gemm_isa_name(isa));
    int threads = bn_cpu_threads();
    int64_t macs = pr->M * pr->N * pr->K;
    bool per_batch = threads > 1 && pr->nbatch > 1 && macs * pr->nbatch >= MATMUL_PAR_MIN_MACS &&
                     (macs < MATMUL_SMALL_MACS || pr->nbatch >= 4 * (int64_t)threads);
    if (!per_batch) {
        for (int64_t i = 0; i < pr->nbatch; i++)
            if (gemm_batch(pr, &kern, i, threads) != BN_OK) return out_of_memory(pr);
        return BN_OK;
    }
    int failed = 0;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < pr->nbatch; i++) {
        if (gemm_batch(pr, &kern, i, 1) != BN_OK) {
#pragma omp atomic write
            failed = 1;
        }
    }
    return failed ? out_of_memory(pr) : BN_OK;
}

/* ---- f64, one row or one column of C -------------------------------------------------------- */
/* out row i (N, stride cs_o) = a row i (K, stride cs_a) @ b (K, N) with contiguous rows at
 * stride ldb, through acc (N). */
static void row_f64(const double *a, int64_t cs_a, const double *b, int64_t ldb, int64_t K,
                    int64_t N, double *acc, double *o, int64_t cs_o)
{
    for (int64_t j = 0; j < N; j++) acc[j] = 0.0;
    for (int64_t k = 0; k < K; k++) {
        double av = a[k * cs_a];
        const double *bk = b + k * ldb;
        for (int64_t j = 0; j < N; j++) acc[j] += av * bk[j];
    }
    for (int64_t j = 0; j < N; j++) o[j * cs_o] = acc[j];
}

static bn_status matmul_f64(const mm_problem *pr)
{
    const bn_tview *a = pr->a, *b = pr->b, *o = pr->out;
    int nd = o->ndim, threads = bn_cpu_threads();
    int64_t M = pr->M, N = pr->N, K = pr->K;
    bool par = threads > 1 && M > 1 && M * N * K >= MATMUL_PAR_MIN_MACS;
    int nacc = par ? threads : 1;
    bool b_rows = b->strides[nd - 1] == 1 || N == 1; /* b's rows are contiguous: read in place */
    double *bbuf = b_rows ? NULL : bn__alloc_aligned(sizeof(double) * (size_t)(K * N));
    double *acc = bn__alloc_aligned(sizeof(double) * (size_t)(nacc * N));
    if ((!b_rows && !bbuf) || !acc) {
        bn__free_aligned(bbuf);
        bn__free_aligned(acc);
        return out_of_memory(pr);
    }
    const double *last_b = NULL;
    for (int64_t bi = 0; bi < pr->nbatch; bi++) {
        const double *ab = elem_ptr(a, batch_offset(pr, a, bi));
        const double *bb = elem_ptr(b, batch_offset(pr, b, bi)), *brows = bb;
        double *ob = elem_ptr(o, batch_offset(pr, o, bi));
        int64_t ldb = b->strides[nd - 2];
        if (!b_rows) { /* a contiguous (K, N) copy of b; a broadcast b is copied once */
            if (bb != last_b)
                for (int64_t k = 0; k < K; k++)
                    for (int64_t j = 0; j < N; j++)
                        bbuf[k * N + j] = bb[k * b->strides[nd - 2] + j * b->strides[nd - 1]];
            last_b = bb;
            brows = bbuf;
            ldb = N;
        }
#pragma omp parallel for schedule(static) num_threads(nacc) if (par)
        for (int64_t i = 0; i < M; i++) {
#ifdef _OPENMP
            double *my_acc = acc + (int64_t)omp_get_thread_num() * N;
#else
            double *my_acc = acc;
#endif
            row_f64(ab + i * a->strides[nd - 2], a->strides[nd - 1], brows, ldb, K, N, my_acc,
                    ob + i * o->strides[nd - 2], o->strides[nd - 1]);
        }
    }
    bn__free_aligned(bbuf);
    bn__free_aligned(acc);
    return BN_OK;
}

/* ---- integers ------------------------------------------------------------------------------- */
/* Unsigned 64-bit arithmetic wraps where signed overflow would be undefined; the low bits, which
 * are all a narrower dtype keeps, are the same. */
static uint64_t load_int(const void *p, bn_dtype dt)
{
    switch (dt) {
    case BN_I8: return (uint64_t)(int64_t)(*(const int8_t *)p);
    case BN_U8: return *(const uint8_t *)p;
    case BN_I32: return (uint64_t)(int64_t)(*(const int32_t *)p);
    case BN_I64: return (uint64_t)(*(const int64_t *)p);
    default: BN_ASSERT(0);
    }
}

static void store_int(void *p, bn_dtype dt, uint64_t v)
{
    switch (dt) {
    case BN_I8: *(int8_t *)p = (int8_t)(uint8_t)v; break;
    case BN_U8: *(uint8_t *)p = (uint8_t)v; break;
    case BN_I32: *(int32_t *)p = (int32_t)(uint32_t)v; break;
    case BN_I64: *(int64_t *)p = (int64_t)v; break;
    default: BN_ASSERT(0);
    }
}

/* out row (N) = a row (K) @ b (K, N) contiguous u64, through acc (N). */
static void row_int(const char *a, int64_t cs_a, const uint64_t *b, int64_t K, int64_t N,
                    uint64_t *acc, char *o, int64_t cs_o, bn_dtype dt)
{
    int64_t es = (int64_t)bn_dtype_size(dt);
    for (int64_t j = 0; j < N; j++) acc[j] = 0;
    for (int64_t k = 0; k < K; k++) {
        uint64_t av = load_int(a + k * cs_a * es, dt);
        const uint64_t *bk = b + k * N;
        for (int64_t j = 0; j < N; j++) acc[j] += av * bk[j];
    }
    for (int64_t j = 0; j < N; j++) store_int(o + j * cs_o * es, dt, acc[j]);
}

static bn_status matmul_int(const mm_problem *pr)
{
    const bn_tview *a = pr->a, *b = pr->b, *o = pr->out;
    int nd = o->ndim, threads = bn_cpu_threads();
    int64_t M = pr->M, N = pr->N, K = pr->K, es = (int64_t)bn_dtype_size(o->dtype);
    bool par = threads > 1 && M > 1 && M * N * K >= MATMUL_PAR_MIN_MACS;
    int nacc = par ? threads : 1;
    uint64_t *bbuf = bn__alloc_aligned(sizeof(uint64_t) * (size_t)(K * N));
    uint64_t *acc = bn__alloc_aligned(sizeof(uint64_t) * (size_t)(nacc * N));
    if (!bbuf || !acc) {
        bn__free_aligned(bbuf);
        bn__free_aligned(acc);
        return out_of_memory(pr);
    }
    const char *last_b = NULL;
    for (int64_t bi = 0; bi < pr->nbatch; bi++) {
        const char *ab = elem_ptr(a, batch_offset(pr, a, bi));
        const char *bb = elem_ptr(b, batch_offset(pr, b, bi));
        char *ob = elem_ptr(o, batch_offset(pr, o, bi));
        if (bb != last_b) {
            for (int64_t k = 0; k < K; k++)
                for (int64_t j = 0; j < N; j++)
                    bbuf[k * N + j] =
                        load_int(bb + (k * b->strides[nd - 2] + j * b->strides[nd - 1]) * es,
                                 b->dtype);
            last_b = bb;
        }
#pragma omp parallel for schedule(static) num_threads(nacc) if (par)
        for (int64_t i = 0; i < M; i++) {
#ifdef _OPENMP
            uint64_t *my_acc = acc + (int64_t)omp_get_thread_num() * N;
#else
            uint64_t *my_acc = acc;
#endif
            row_int(ab + i * a->strides[nd - 2] * es, a->strides[nd - 1], bbuf, K, N, my_acc,
                    ob + i * o->strides[nd - 2] * es, o->strides[nd - 1], o->dtype);
        }
    }
    bn__free_aligned(bbuf);
    bn__free_aligned(acc);
    return BN_OK;
}

/* ---- the slot ------------------------------------------------------------------------------- */
bn_status bn_cpu_matmul_isa(bn_gemm_isa isa, const bn_tview *a, const bn_tview *b,
                            const bn_tview *out)
{
    int nd = out->ndim;
    BN_ASSERT(nd >= 2 && a->ndim == nd && b->ndim == nd);
    mm_problem pr = {
        a, b, out, nd - 2, 1, out->shape[nd - 2], out->shape[nd - 1], a->shape[nd - 1]};
    for (int d = 0; d < pr.nbd; d++) pr.nbatch *= out->shape[d];
    if (pr.nbatch == 0 || pr.M == 0 || pr.N == 0) return BN_OK;
    if (pr.K == 0) return bn_cpu_fill(out, 0.0);
    switch (out->dtype) {
    case BN_F32:
    case BN_F16:
    case BN_BF16: return matmul_gemm(&pr, isa);
    case BN_F64: /* a thin C streams B once through the row kernel; else the packed GEMM */
        return pr.M == 1 || pr.N == 1 ? matmul_f64(&pr) : matmul_gemm(&pr, isa);
    case BN_I8:
    case BN_U8:
    case BN_I32:
    case BN_I64: return matmul_int(&pr);
    default:
        return bn__error(BN_ERR_UNSUPPORTED, "bn_cpu_matmul: dtype %s is not supported",
                         bn_dtype_name(out->dtype));
    }
}

bn_status bn_cpu_matmul(const bn_tview *a, const bn_tview *b, const bn_tview *out)
{
    return bn_cpu_matmul_isa(bn_gemm_best_isa(), a, b, out);
}
