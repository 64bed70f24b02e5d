/* backend/cpu/attention.c — the CPU's fused attention family (backend_attn.h).
 *
 * Forward: one task per (batch, query head, block of BR query rows); the task walks the key
 * blocks of BC keys with an online softmax (running max m and sum l per row, the output
 * accumulator rescaled when m grows), so its extra memory is a few BR x BC tiles, whatever T.
 * Backward: one task per (batch, kv head): for each key block it recomputes the weights of the
 * G query heads that read it from the saved log-sum-exp, and accumulates dv, dk (rows of this
 * key block) and dq (rows of its own query heads) — no two tasks write the same row, so there are
 * no atomics and the result does not depend on the thread count. Tasks are spread with OpenMP.
 *
 * Block products (S = Q K^T, P V, dO V^T, P^T dO, dS K, dS^T Q) go through small packed panels
 * and the GEMM micro-kernel of matmul_micro.c (AVX-512 / AVX2 / portable, chosen like matmul's)
 * in f32; f64 (for the float64 gradient checks) uses plain loops. exp runs through vmath's
 * vectorised exp-and-sum in f32. The body is written once in attention_impl.h. */
#include "backend/backend_attn.h"
#include "backend/cpu/cpu_kernels.h"
#include "backend/cpu/matmul_gemm.h"
#include "backend/cpu/transformer_kernels.h"
#include "backend/cpu/vmath.h"
#include "core/philox.h"

#include <math.h>
#include <string.h>

/* below this many multiply-adds a call stays on the calling thread */
#define BN_ATTN_PAR_MIN_WORK (1 << 20)

typedef struct attn_args {
    const bn_tview *q, *k, *v, *mask, *out, *dout, *lse, *dq, *dk, *dv;
    const bn_attn_geom *g;
} attn_args;

typedef struct attn_blocks {
    int64_t br, bc; /* query rows and keys per block */
    const bn_gemm_kernel *kern; /* f32 only */
} attn_blocks;

/* per-thread packing buffers for the f32 block GEMM */
typedef struct gemm_ws {
    const bn_gemm_kernel *kern;
    float *ap, *bp;
} gemm_ws;

/* per-thread tiles; element size of the compute dtype */
typedef struct attn_scratch {
    int64_t br, bc;
    void *s_, *dp_, *pd_, *acc_, *m_, *l_, *di_;
    uint8_t *keep;
    /* typed views of the same buffers (set by the type's code) */
    void *s, *dp, *pd, *acc, *m, *l, *di;
} attn_scratch;

static void scratch_free(attn_scratch *sc, gemm_ws *ws)
{
    bn__free_aligned(sc->s_);
    bn__free_aligned(sc->dp_);
    bn__free_aligned(sc->pd_);
    bn__free_aligned(sc->acc_);
    bn__free_aligned(sc->m_);
    bn__free_aligned(sc->l_);
    bn__free_aligned(sc->di_);
    bn__free_aligned(sc->keep);
    bn__free_aligned(ws->ap);
    bn__free_aligned(ws->bp);
}

static int64_t max3(int64_t a, int64_t b, int64_t c)
{
    int64_t m = a > b ? a : b;
    return m > c ? m : c;
}

static bool scratch_alloc(attn_scratch *sc, gemm_ws *ws, const attn_blocks *mk,
                          const bn_attn_geom *g, size_t es, bool backward)
{
    memset(sc, 0, sizeof *sc);
    memset(ws, 0, sizeof *ws);
    sc->br = mk->br, sc->bc = mk->bc;
    size_t tile = (size_t)(mk->br * mk->bc) * es;
    sc->s_ = bn__alloc_aligned(tile);
    sc->m_ = bn__alloc_aligned((size_t)mk->br * es);
    sc->l_ = bn__alloc_aligned((size_t)mk->br * es);
    sc->keep = bn__alloc_aligned((size_t)mk->bc);
    bool ok = sc->s_ && sc->m_ && sc->l_ && sc->keep;
    if (backward) {
        sc->dp_ = bn__alloc_aligned(tile);
        sc->pd_ = bn__alloc_aligned(tile);
        sc->di_ = bn__alloc_aligned((size_t)((g->hq / g->hkv) * g->tq + 1) * es);
        ok = ok && sc->dp_ && sc->pd_ && sc->di_;
    } else {
        sc->acc_ = bn__alloc_aligned((size_t)(mk->br * g->dv + 1) * es);
        ok = ok && sc->acc_;
    }
    if (mk->kern) {
        int64_t kmax = max3(g->d, g->dv, mk->br > mk->bc ? mk->br : mk->bc);
        int64_t nmax = max3(g->d, g->dv, mk->bc);
        ws->kern = mk->kern;
        ws->ap = bn__alloc_aligned(sizeof(float) * (size_t)(mk->kern->mr * (kmax + 1)));
        ws->bp = bn__alloc_aligned(sizeof(float) *
                                   (size_t)((nmax + mk->kern->nr) * (kmax + 1)));
        ok = ok && ws->ap && ws->bp;
    }
    sc->s = sc->s_, sc->dp = sc->dp_, sc->pd = sc->pd_, sc->acc = sc->acc_;
    sc->m = sc->m_, sc->l = sc->l_, sc->di = sc->di_;
    return ok;
}

/* The element offset of batch b's (h = 0, i = 0, j = 0) in the mask view (ndim L + 3), whose
 * leading L dims multiply to the batch. */
static int64_t mask_base(const bn_tview *m, int64_t b)
{
    int64_t off = 0;
    for (int d = m->ndim - 4; d >= 0; d--) {
        off += (b % m->shape[d]) * m->strides[d];
        b /= m->shape[d];
    }
    return off;
}

/* keep[c] for draws e0 .. e0 + n - 1: u >= p, like the dropout kernel (backend_nn.h). */
static void dropout_keep(const bn_attn_geom *g, uint64_t e0, int64_t n, uint8_t *keep)
{
    uint64_t e = e0;
    int64_t c = 0;
    while (c < n) {
        bn_philox_block r = bn_philox4x32_10(g->seed, g->counter + e / 4);
        for (unsigned w = (unsigned)(e % 4); w < 4 && c < n; w++, c++, e++)
            keep[c] = (double)bn_philox_u01_f32(r.v[w]) >= g->dropout_p;
    }
}

/* ---- block GEMMs --------------------------------------------------------------------------- */
/* c (M, N) at c[i*ldc + j] = (c +) a (M, K) b (K, N), a(i, k) at a[i*rsa + k*csa], b likewise:
 * packed into MR / NR panels and run through the micro-kernel. */
static void gemm_f32(const gemm_ws *ws, int64_t M, int64_t N, int64_t K, const float *a,
                     int64_t rsa, int64_t csa, const float *b, int64_t rsb, int64_t csb, float *c,
                     int64_t ldc, bool acc)
{
    if (M == 0 || N == 0) return;
    if (K == 0) {
        if (!acc)
            for (int64_t i = 0; i < M; i++) memset(c + i * ldc, 0, sizeof(float) * (size_t)N);
        return;
    }
    const bn_gemm_kernel *kern = ws->kern;
    const int mr = kern->mr, nr = kern->nr;
    float *bp = ws->bp, *ap = ws->ap;
    int64_t nq = (N + nr - 1) / nr;
    for (int64_t q = 0; q < nq; q++) {
        int64_t n0 = q * nr, nn = N - n0 < nr ? N - n0 : nr;
        float *dst = bp + q * K * nr;
        if (csb == 1) {
            for (int64_t k = 0; k < K; k++) {
                const float *src = b + k * rsb + n0;
                int64_t j = 0;
                for (; j < nn; j++) dst[k * nr + j] = src[j];
                for (; j < nr; j++) dst[k * nr + j] = 0;
            }
        } else {
            for (int64_t j = 0; j < nr; j++) {
                if (j < nn) {
                    const float *src = b + (n0 + j) * csb;
                    for (int64_t k = 0; k < K; k++) dst[k * nr + j] = src[k * rsb];
                } else {
                    for (int64_t k = 0; k < K; k++) dst[k * nr + j] = 0;
                }
            }
        }
    }
    for (int64_t p = 0; p < M; p += mr) {
        int64_t mm = M - p < mr ? M - p : mr;
        if (csa == 1) {
            for (int64_t r = 0; r < mr; r++) {
                if (r < mm) {
                    const float *src = a + (p + r) * rsa;
                    for (int64_t k = 0; k < K; k++) ap[k * mr + r] = src[k];
                } else {
                    for (int64_t k = 0; k < K; k++) ap[k * mr + r] = 0;
                }
            }
        } else {
            for (int64_t k = 0; k < K; k++) {
                const float *src = a + p * rsa + k * csa;
                int64_t r = 0;
                for (; r < mm; r++) ap[k * mr + r] = src[r * rsa];
                for (; r < mr; r++) ap[k * mr + r] = 0;
            }
        }
        for (int64_t q = 0; q < nq; q++) {
            int64_t n0 = q * nr, nn = N - n0 < nr ? N - n0 : nr;
            kern->micro(K, ap, bp + q * K * nr, c + p * ldc + n0, ldc, 1, (int)mm, (int)nn, acc);
        }
    }
}

static void gemm_f64(const gemm_ws *ws, int64_t M, int64_t N, int64_t K, const double *a,
                     int64_t rsa, int64_t csa, const double *b, int64_t rsb, int64_t csb,
                     double *c, int64_t ldc, bool acc)
{
    (void)ws;
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double s = acc ? c[i * ldc + j] : 0.0;
            for (int64_t k = 0; k < K; k++) s += a[i * rsa + k * csa] * b[k * rsb + j * csb];
            c[i * ldc + j] = s;
        }
}

/* x[i] = exp(x[i] - m) in place; returns the sum */
static double exp_shift_f32(float *x, int64_t n, float m)
{
    const bn_vm_kernels *vm = bn_vm();
    if (vm) return vm->exp_sum(x, x, n, m);
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += x[i] = expf(x[i] - m);
    return s;
}

static double exp_shift_f64(double *x, int64_t n, double m)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += x[i] = exp(x[i] - m);
    return s;
}

#define REAL float
#define SFX f32
#define GEMM gemm_f32
#define EXP expf
#define LOG logf
#define EXP_SHIFT exp_shift_f32
#include "backend/cpu/attention_impl.h"
#undef REAL
#undef SFX
#undef GEMM
#undef EXP
#undef LOG
#undef EXP_SHIFT

#define REAL double
#define SFX f64
#define GEMM gemm_f64
#define EXP exp
#define LOG log
#define EXP_SHIFT exp_shift_f64
#include "backend/cpu/attention_impl.h"
#undef REAL
#undef SFX
#undef GEMM
#undef EXP
#undef LOG
#undef EXP_SHIFT

/* ---- the table ------------------------------------------------------------------------------ */
static bn_status check_dtypes(const char *fn, const bn_tview *q, const bn_tview *mask)
{
    if (q->dtype != BN_F32 && q->dtype != BN_F64)
        return bn__error(BN_ERR_UNSUPPORTED, "%s: the CPU kernel computes in f32 or f64, not %s",
                         fn, bn_dtype_name(q->dtype));
    if (mask && mask->dtype != BN_BOOL && mask->dtype != q->dtype)
        return bn__error(BN_ERR_UNSUPPORTED, "%s: mask must be bool or %s, not %s", fn,
                         bn_dtype_name(q->dtype), bn_dtype_name(mask->dtype));
    return BN_OK;
}

static attn_blocks blocks_for(bn_dtype dt)
{
    attn_blocks mk = {.br = 64, .bc = 64, .kern = NULL};
    if (dt == BN_F32) mk.kern = bn_gemm_kernel_for(bn_gemm_best_isa());
    return mk;
}

static bn_status cpu_attn_forward(const bn_tview *q, const bn_tview *k, const bn_tview *v,
                                  const bn_tview *mask, const bn_tview *out, const bn_tview *lse,
                                  const bn_attn_geom *g)
{
    bn_status st = check_dtypes("attention", q, mask);
    if (st != BN_OK) return st;
    if (g->batch * g->hq * g->tq == 0) return BN_OK;
    attn_args a = {.q = q, .k = k, .v = v, .mask = mask, .out = out, .lse = lse, .g = g};
    attn_blocks mk = blocks_for(q->dtype);
    st = q->dtype == BN_F32 ? forward_f32(&a, &mk) : forward_f64(&a, &mk);
    if (st != BN_OK) return bn__error(st, "attention: out of memory for the block tiles");
    return BN_OK;
}

static bn_status cpu_attn_backward(const bn_tview *q, const bn_tview *k, const bn_tview *v,
                                   const bn_tview *mask, const bn_tview *out,
                                   const bn_tview *dout, const bn_tview *lse, const bn_tview *dq,
                                   const bn_tview *dk, const bn_tview *dv, const bn_attn_geom *g)
{
    bn_status st = check_dtypes("attention backward", q, mask);
    if (st != BN_OK) return st;
    if (g->batch * g->hkv == 0) return BN_OK;
    attn_args a = {.q = q, .k = k, .v = v, .mask = mask, .out = out, .dout = dout, .lse = lse,
                   .dq = dq, .dk = dk, .dv = dv, .g = g};
    attn_blocks mk = blocks_for(q->dtype);
    st = q->dtype == BN_F32 ? backward_f32(&a, &mk) : backward_f64(&a, &mk);
    if (st != BN_OK) return bn__error(st, "attention backward: out of memory for the block tiles");
    return BN_OK;
}

const bn_backend_attn bn_cpu_attn = {
    .forward = cpu_attn_forward,
    .backward = cpu_attn_backward,
    .glu_forward = bn_cpu_glu_forward, /* transformer.c */
    .glu_backward = bn_cpu_glu_backward,
    .rope = bn_cpu_rope,
};
