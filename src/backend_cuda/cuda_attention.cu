/* backend_cuda/cuda_attention.cu — fused scaled dot-product attention on the GPU (backend_attn.h),
 * the same numbers as the CPU's online-softmax kernel (src/backend/cpu/attention.c) up to the
 * order of the sums: causal rule aligned bottom-right, bool / additive masks read through their
 * (broadcast) strides, grouped-query heads, fully masked rows giving 0 output, 0 gradients and
 * lse -inf, and dropout drawing exactly the CPU's Philox numbers (draw e = ((b hq + h) tq + i) tk
 * + j: word e % 4 of block counter + e / 4, kept when u >= p).
 *
 * f32 (FlashAttention-2's schedule, FP32 FMA — no TF32 — so it meets rel 1e-5 against the CPU):
 *  - forward: one block of 256 threads per (batch * head, BR query rows); K and V tiles of BC keys
 *    stream through shared memory (cp.async, the next K tile loads during softmax and P V, the
 *    next V tile during Q K^T); the online softmax's running max and sum live in registers, so
 *    do the output rows. Thread (ty, tx) of a 16 x 16 grid owns query rows ty*RM.. and key
 *    columns tx + 16 c of each score tile (the key rows it reads are LD = D + 4 floats apart, so
 *    its float4 reads hit distinct banks), and output columns c*64 + tx*4.. of the P V product.
 *  - backward: D_i = dO_i . O_i first; then one block per (batch * kv head, BC keys) keeps dK and
 *    dV of its keys in registers while it streams the query tiles of every query head of that kv
 *    head in order (recomputing P from the saved lse; the next dO and Q tiles load while dK and
 *    dV accumulate), and one block per (batch * head, BR query rows) computes dQ by a second pass
 *    over the key tiles (the next V and K tiles load during dS K). No atomics: every output
 *    element has one writer and a fixed summation order, so results do not change from run to
 *    run. When grouped heads leave too few key blocks to fill the GPU, each query head gets its
 *    own block writing a partial dK / dV into scratch, summed over the group in head order
 *    afterwards.
 *  - causal tiles that see no key are skipped; head dims up to 256 (D and Dv may differ) run in
 *    the 64, 128 or 256-wide instantiation with the unused columns zero-padded.
 * f64 (used by gradient checks; simple and exact rather than fast): one warp per query row
 * (forward, dQ) or per key row (dK, dV), the dot products as warp sums. */
#include "backend_cuda/cuda_attention.h"
#include "backend_cuda/cuda_common.cuh"

#include <limits.h>
#include <string.h>

#define ATT_THREADS 256
#define ATT_WARPS (ATT_THREADS / 32)
#define ATT_SCRATCH_ALIGN 256
#define ATT_FULL_MASK 0xffffffffu

namespace {

/* ---- arguments ------------------------------------------------------------------------------ */
/* A 4-D (batch, heads, rows, cols) operand whose column stride is 1. */
struct View4 {
    void *p;
    int64_t sb, sh, sr;
};

/* The mask view (B..., hq, tq, tk): kind 0 none, 1 bool, 2 the compute dtype (added). */
struct AttnMask {
    const void *data;
    int kind;
    int nlead;
    int64_t lshape[BCU_MAX_DIMS], lstride[BCU_MAX_DIMS];
    int64_t sh, si, sj;
};

struct AttnArgs {
    View4 q, k, v, o, go, gq, gk, gv; /* gq, gk, gv: dq, dk, dv */
    void *lse;     /* (batch, hq, tq) */
    void *di;      /* (batch, hq, tq) scratch: dO_i . O_i */
    void *pk, *pv; /* partial dk (batch hq, tk, d) and dv (batch hq, tk, dv), or NULL */
    AttnMask mask;
    int64_t batch, hq, hkv, G, tq, tk, d, dv;
    double scale, p;
    bool causal;
    uint64_t seed, counter;
};

template <class T> __device__ inline T ninf();
template <> __device__ inline float ninf<float>() { return __int_as_float((int)0xff800000u); }
template <> __device__ inline double ninf<double>()
{
    return __longlong_as_double((long long)0xfff0000000000000ull);
}

__device__ inline double exp_of(double x) { return exp(x); }
__device__ inline double log_of(double x) { return log(x); }

/* ---- dropout: Philox 4x32-10 as core/philox.h ------------------------------------------------ */
__device__ inline uint32_t philox_word(uint64_t seed, uint64_t counter, unsigned w)
{
    return bcu_philox4x32_10(seed, counter).v[w];
}

/* Whether weight (b, h, i, j) survives dropout (i < tq, j < tk). */
__device__ inline bool attn_keep(const AttnArgs &a, int64_t b, int64_t h, int64_t i, int64_t j)
{
    uint64_t e = (uint64_t)(((b * a.hq + h) * a.tq + i) * a.tk + j);
    uint32_t x = philox_word(a.seed, a.counter + e / 4, (unsigned)(e % 4));
    float u = (float)(x >> 8) * 0x1p-24f;
    return (double)u >= a.p;
}

/* ---- scores --------------------------------------------------------------------------------- */
/* The mask element offset of (b, h, i = 0, j = 0). */
__device__ inline int64_t mask_base(const AttnMask &m, int64_t b, int64_t h)
{
    int64_t off = 0;
    for (int d = m.nlead - 1; d >= 0; d--) {
        off += (b % m.lshape[d]) * m.lstride[d];
        b /= m.lshape[d];
    }
    return off + h * m.sh;
}

/* Score (i, j) from the dot product s, in the CPU's order: times scale, the mask, the causal
 * rule; -inf where the key is hidden. Needs i < tq and j < tk. */
template <class T>
__device__ inline T score_of(const AttnArgs &a, int64_t mbase, int64_t i, int64_t j, T s)
{
    T x = s * (T)a.scale;
    if (a.mask.kind) {
        int64_t o = mbase + i * a.mask.si + j * a.mask.sj;
        if (a.mask.kind == 1)
            x = ((const uint8_t *)a.mask.data)[o] ? x : ninf<T>();
        else
            x += ((const T *)a.mask.data)[o];
    }
    if (a.causal && j > i + (a.tk - a.tq)) x = ninf<T>();
    return x;
}

/* ---- shared-memory tiles -------------------------------------------------------------------- */
__device__ inline void cp_async16(float *dst, const float *src, bool ok)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    unsigned d = (unsigned)__cvta_generic_to_shared(dst);
    int n = ok ? 16 : 0; /* 0: the 16 bytes are zero-filled, nothing is read */
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(d), "l"(src), "r"(n)
                 : "memory");
#else
    *(float4 *)dst = ok ? *(const float4 *)src : make_float4(0.f, 0.f, 0.f, 0.f);
#endif
}

__device__ inline void cp_async_commit()
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("cp.async.commit_group;\n" ::: "memory");
#endif
}

/* Waits until at most N of this thread's newest copy groups are still in flight. */
template <int N> __device__ inline void cp_async_wait()
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
#endif
}

/* s (ROWS, DM) at row stride LD = g (nr, nc) at row stride gst, zero elsewhere. VEC: 16-byte
 * copies in flight (the caller commits and waits), which needs g and gst 16-byte aligned and
 * nc a multiple of 4; otherwise plain element copies. */
template <bool VEC, int ROWS, int DM, int LD>
__device__ inline void load_tile(float *s, const float *g, int64_t gst, int nr, int nc)
{
    if (VEC) {
        constexpr int CH = DM / 4;
        for (int t = threadIdx.x; t < ROWS * CH; t += ATT_THREADS) {
            int r = t / CH, c = (t - r * CH) * 4;
            bool ok = r < nr && c < nc;
            cp_async16(s + r * LD + c, ok ? g + (int64_t)r * gst + c : g, ok);
        }
    } else {
        for (int t = threadIdx.x; t < ROWS * DM; t += ATT_THREADS) {
            int r = t / DM, c = t - r * DM;
            s[r * LD + c] = r < nr && c < nc ? g[(int64_t)r * gst + c] : 0.0f;
        }
    }
}

/* acc[r][c] += sum_{k < kend} A[r lda + k] B[16 c ldb + k]   (kend a multiple of 4; A's rows are
 * the thread's own, B's rows tx + 16 c are already offset by tx) */
template <int RM, int CN>
__device__ inline void gemm_nt(float (&acc)[RM][CN], const float *A, int lda, const float *B,
                               int ldb, int kend)
{
#pragma unroll 2
    for (int k = 0; k < kend; k += 4) {
        float4 a[RM], b[CN];
#pragma unroll
        for (int r = 0; r < RM; r++) a[r] = *(const float4 *)(A + r * lda + k);
#pragma unroll
        for (int c = 0; c < CN; c++) b[c] = *(const float4 *)(B + c * 16 * ldb + k);
#pragma unroll
        for (int r = 0; r < RM; r++)
#pragma unroll
            for (int c = 0; c < CN; c++) {
                float x = acc[r][c];
                x = fmaf(a[r].x, b[c].x, x);
                x = fmaf(a[r].y, b[c].y, x);
                x = fmaf(a[r].z, b[c].z, x);
                x = fmaf(a[r].w, b[c].w, x);
                acc[r][c] = x;
            }
    }
}

__device__ inline float lane_of(const float4 &v, int k)
{
    return k == 0 ? v.x : k == 1 ? v.y : k == 2 ? v.z : v.w;
}

/* acc[r][4 cc + u] += sum_{j < JN} P[r ldp + j] V[j ldv + 64 cc + 4 tx + u]  (the thread's output
 * columns are 64 cc + 4 tx .. + 3 for cc < CO / 4) */
template <int RM, int CO, int JN>
__device__ inline void gemm_nn(float (&acc)[RM][CO], const float *P, int ldp, const float *V,
                               int ldv, int tx)
{
    const float *Vt = V + tx * 4;
#pragma unroll 2
    for (int j = 0; j < JN; j += 4) {
        float4 p[RM];
#pragma unroll
        for (int r = 0; r < RM; r++) p[r] = *(const float4 *)(P + r * ldp + j);
#pragma unroll
        for (int jj = 0; jj < 4; jj++) {
#pragma unroll
            for (int cc = 0; cc < CO / 4; cc++) {
                float4 v = *(const float4 *)(Vt + (j + jj) * ldv + cc * 64);
#pragma unroll
                for (int r = 0; r < RM; r++) {
                    float pr = lane_of(p[r], jj);
                    acc[r][cc * 4 + 0] = fmaf(pr, v.x, acc[r][cc * 4 + 0]);
                    acc[r][cc * 4 + 1] = fmaf(pr, v.y, acc[r][cc * 4 + 1]);
                    acc[r][cc * 4 + 2] = fmaf(pr, v.z, acc[r][cc * 4 + 2]);
                    acc[r][cc * 4 + 3] = fmaf(pr, v.w, acc[r][cc * 4 + 3]);
                }
            }
        }
    }
}

/* max / sum over the 16 lanes that share a row (tx = lane % 16) */
__device__ inline float row16_max(float x)
{
#pragma unroll
    for (int o = 8; o > 0; o >>= 1) x = fmaxf(x, __shfl_xor_sync(ATT_FULL_MASK, x, o, 16));
    return x;
}
__device__ inline float row16_sum(float x)
{
#pragma unroll
    for (int o = 8; o > 0; o >>= 1) x += __shfl_xor_sync(ATT_FULL_MASK, x, o, 16);
    return x;
}

/* ---- f32 forward ----------------------------------------------------------------------------- */
/* q (batch, hq, tq, d), k (batch, hkv, tk, d), v (batch, hkv, tk, dv) → o (batch, hq, tq, dv),
 * lse (batch, hq, tq). Block: (batch * hq) x ceil(tq / BR), the last query tiles first (they
 * have the most keys under the causal rule). */
template <int DM, int BR, int BC, bool VEC>
__global__ void __launch_bounds__(ATT_THREADS, 2) attn_fwd_f32(AttnArgs a)
{
    constexpr int RM = BR / 16, CN = BC / 16, CO = DM / 16, LD = DM + 4, LP = BC + 4;
    extern __shared__ float4 attn_smem[];
    float *Qs = (float *)attn_smem, *Ks = Qs + BR * LD, *Vs = Ks + BC * LD, *Ps = Vs + BC * LD;
    const int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
    const int64_t nqb = (a.tq + BR - 1) / BR, blk = (int64_t)blockIdx.x;
    const int64_t bh = blk / nqb, qb = nqb - 1 - blk % nqb;
    const int64_t b = bh / a.hq, h = bh % a.hq, hk = h / a.G;
    const int64_t i0 = qb * BR, off = a.tk - a.tq;
    const int br = (int)min((int64_t)BR, a.tq - i0);
    int64_t jend = a.tk;
    if (a.causal) jend = min(jend, i0 + br + off);
    const int64_t ntiles = jend > 0 ? (jend + BC - 1) / BC : 0;
    const int d = (int)a.d, dv = (int)a.dv, kend = (d + 3) & ~3;
    const float *Q = (const float *)a.q.p + b * a.q.sb + h * a.q.sh + i0 * a.q.sr;
    const float *K = (const float *)a.k.p + b * a.k.sb + hk * a.k.sh;
    const float *V = (const float *)a.v.p + b * a.v.sb + hk * a.v.sh;
    const int64_t mbase = a.mask.kind ? mask_base(a.mask, b, h) : 0;
    const float kscale = (float)(1.0 / (1.0 - a.p));

    load_tile<VEC, BR, DM, LD>(Qs, Q, a.q.sr, br, d);
    if (ntiles > 0) load_tile<VEC, BC, DM, LD>(Ks, K, a.k.sr, (int)min((int64_t)BC, a.tk), d);
    cp_async_commit();
    if (ntiles > 0) load_tile<VEC, BC, DM, LD>(Vs, V, a.v.sr, (int)min((int64_t)BC, a.tk), dv);
    cp_async_commit();

    float acc[RM][CO], m[RM], l[RM];
#pragma unroll
    for (int r = 0; r < RM; r++) {
        m[r] = ninf<float>();
        l[r] = 0.f;
#pragma unroll
        for (int c = 0; c < CO; c++) acc[r][c] = 0.f;
    }
    for (int64_t t = 0; t < ntiles; t++) {
        const int64_t j0 = t * BC;
        const int bc = (int)min((int64_t)BC, a.tk - j0);
        cp_async_wait<1>(); /* Q and this K tile */
        __syncthreads();
        float s[RM][CN];
#pragma unroll
        for (int r = 0; r < RM; r++)
#pragma unroll
            for (int c = 0; c < CN; c++) s[r][c] = 0.f;
        gemm_nt<RM, CN>(s, Qs + ty * RM * LD, LD, Ks + tx * LD, LD, kend);
        __syncthreads(); /* Ks is free: the next K tile loads during softmax and P V */
        if (t + 1 < ntiles) {
            const int64_t jn = j0 + BC;
            load_tile<VEC, BC, DM, LD>(Ks, K + jn * a.k.sr, a.k.sr,
                                       (int)min((int64_t)BC, a.tk - jn), d);
        }
        cp_async_commit();
#pragma unroll
        for (int r = 0; r < RM; r++) {
            const int64_t i = i0 + ty * RM + r;
            float mx = ninf<float>();
#pragma unroll
            for (int c = 0; c < CN; c++) {
                const int jl = tx + 16 * c;
                float x = jl < bc && i < a.tq ? score_of<float>(a, mbase, i, j0 + jl, s[r][c])
                                              : ninf<float>();
                s[r][c] = x;
                mx = fmaxf(mx, x);
            }
            mx = row16_max(mx);
            /* no branch around the shuffles: the two rows of a warp may differ */
            const float mnew = fmaxf(m[r], mx);
            const bool dead = mnew == ninf<float>(); /* nothing visible yet: l, acc stay 0 */
            const float alpha = dead || m[r] == ninf<float>() ? 0.f : expf(m[r] - mnew);
            float sum = 0.f;
#pragma unroll
            for (int c = 0; c < CN; c++) {
                s[r][c] = dead ? 0.f : expf(s[r][c] - mnew);
                sum += s[r][c];
            }
            sum = row16_sum(sum);
            if (!dead) {
                l[r] = l[r] * alpha + sum;
                m[r] = mnew;
#pragma unroll
                for (int c = 0; c < CO; c++) acc[r][c] *= alpha;
            }
        }
        if (a.p > 0) {
#pragma unroll
            for (int r = 0; r < RM; r++) {
                const int64_t i = i0 + ty * RM + r;
#pragma unroll
                for (int c = 0; c < CN; c++) {
                    const int jl = tx + 16 * c;
                    if (jl < bc && i < a.tq)
                        s[r][c] = attn_keep(a, b, h, i, j0 + jl) ? s[r][c] * kscale : 0.f;
                }
            }
        }
#pragma unroll
        for (int r = 0; r < RM; r++)
#pragma unroll
            for (int c = 0; c < CN; c++) Ps[(ty * RM + r) * LP + tx + 16 * c] = s[r][c];
        cp_async_wait<1>(); /* this V tile (the next K tile may still be in flight) */
        __syncthreads();
        gemm_nn<RM, CO, BC>(acc, Ps + ty * RM * LP, LP, Vs, LD, tx);
        __syncthreads(); /* Vs and Ps are free */
        if (t + 1 < ntiles) {
            const int64_t jn = j0 + BC;
            load_tile<VEC, BC, DM, LD>(Vs, V + jn * a.v.sr, a.v.sr,
                                       (int)min((int64_t)BC, a.tk - jn), dv);
        }
        cp_async_commit();
    }
    cp_async_wait<0>();
    float *O = (float *)a.o.p + b * a.o.sb + h * a.o.sh;
    float *L = (float *)a.lse + (b * a.hq + h) * a.tq;
#pragma unroll
    for (int r = 0; r < RM; r++) {
        const int64_t i = i0 + ty * RM + r;
        if (i >= a.tq) continue;
        const bool none = l[r] == 0.f;
        const float inv = none ? 0.f : 1.f / l[r];
        if (tx == 0) L[i] = none ? ninf<float>() : m[r] + logf(l[r]);
        float *orow = O + i * a.o.sr;
#pragma unroll
        for (int cc = 0; cc < CO / 4; cc++)
#pragma unroll
            for (int u = 0; u < 4; u++) {
                const int col = cc * 64 + tx * 4 + u;
                if (col < dv) orow[col] = none ? 0.f : acc[r][cc * 4 + u] * inv;
            }
    }
}

/* ---- backward: D_i ---------------------------------------------------------------------------- */
/* di (batch, hq, tq) = sum_c o[.., c] go[.., c], summed in double like the CPU; one warp a row. */
template <class T> __global__ void attn_di(AttnArgs a)
{
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int64_t rows = a.batch * a.hq * a.tq;
    for (int64_t row = (int64_t)blockIdx.x * ATT_WARPS + warp; row < rows;
         row += (int64_t)gridDim.x * ATT_WARPS) {
        const int64_t i = row % a.tq, bh = row / a.tq, b = bh / a.hq, h = bh % a.hq;
        const T *o = (const T *)a.o.p + b * a.o.sb + h * a.o.sh + i * a.o.sr;
        const T *go = (const T *)a.go.p + b * a.go.sb + h * a.go.sh + i * a.go.sr;
        double s = 0;
        for (int64_t c = lane; c < a.dv; c += 32) s += (double)o[c] * (double)go[c];
#pragma unroll
        for (int x = 16; x > 0; x >>= 1) s += __shfl_xor_sync(ATT_FULL_MASK, s, x);
        if (lane == 0) ((T *)a.di)[row] = (T)s;
    }
}

/* ---- f32 backward: dK, dV -------------------------------------------------------------------- */
/* One block per (batch, kv head hk, BC keys) with every query head of hk in order — or, with
 * partial sums (a.pk), per (batch, query head h, BC keys) writing that head's share. Thread
 * (ty, tx) owns key rows ty*RK.. and query columns tx + 16 c of the transposed score tile. */
template <int DM, int BR, int BC, bool VEC>
__global__ void __launch_bounds__(ATT_THREADS, 2) attn_bwd_dkdv_f32(AttnArgs a)
{
    constexpr int RK = BC / 16, CQ = BR / 16, CO = DM / 16, LD = DM + 4, LW = BR + 4;
    extern __shared__ float4 attn_smem[];
    float *Ks = (float *)attn_smem, *Vs = Ks + BC * LD, *Qs = Vs + BC * LD, *Gs = Qs + BR * LD;
    float *Ws = Gs + BR * LD, *Ss = Ws + BC * LW, *Ls = Ss + BC * LW, *Ds = Ls + BR;
    const int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
    const int64_t nkb = (a.tk + BC - 1) / BC, blk = (int64_t)blockIdx.x;
    const int64_t kb = blk % nkb, idx = blk / nkb;
    const bool partial = a.pk != nullptr;
    int64_t b, hk, hfirst, hcount;
    if (partial) {
        b = idx / a.hq, hfirst = idx % a.hq, hk = hfirst / a.G, hcount = 1;
    } else {
        b = idx / a.hkv, hk = idx % a.hkv, hfirst = hk * a.G, hcount = a.G;
    }
    const int64_t j0 = kb * BC, off = a.tk - a.tq;
    const int bc = (int)min((int64_t)BC, a.tk - j0);
    const int d = (int)a.d, dv = (int)a.dv, kend = (d + 3) & ~3, kendv = (dv + 3) & ~3;
    const float scale = (float)a.scale, kscale = (float)(1.0 / (1.0 - a.p));
    load_tile<VEC, BC, DM, LD>(Ks, (const float *)a.k.p + b * a.k.sb + hk * a.k.sh + j0 * a.k.sr,
                               a.k.sr, bc, d);
    load_tile<VEC, BC, DM, LD>(Vs, (const float *)a.v.p + b * a.v.sb + hk * a.v.sh + j0 * a.v.sr,
                               a.v.sr, bc, dv);
    cp_async_commit();
    float dk[RK][CO], dva[RK][CO];
#pragma unroll
    for (int r = 0; r < RK; r++)
#pragma unroll
        for (int c = 0; c < CO; c++) dk[r][c] = dva[r][c] = 0.f;
    /* causal: query rows before j0 - off see none of these keys */
    const int64_t istart = a.causal && j0 - off > 0 ? j0 - off : 0;
    for (int64_t hh = 0; hh < hcount; hh++) {
        const int64_t h = hfirst + hh;
        const int64_t mbase = a.mask.kind ? mask_base(a.mask, b, h) : 0;
        const float *Q = (const float *)a.q.p + b * a.q.sb + h * a.q.sh;
        const float *GO = (const float *)a.go.p + b * a.go.sb + h * a.go.sh;
        const float *Lrow = (const float *)a.lse + (b * a.hq + h) * a.tq;
        const float *Drow = (const float *)a.di + (b * a.hq + h) * a.tq;
        bool pre = false; /* this query tile's Q, dO, lse and D_i are loading already */
        for (int64_t i0 = istart; i0 < a.tq; i0 += BR) {
            const int br = (int)min((int64_t)BR, a.tq - i0);
            if (!pre) {
                load_tile<VEC, BR, DM, LD>(Qs, Q + i0 * a.q.sr, a.q.sr, br, d);
                load_tile<VEC, BR, DM, LD>(Gs, GO + i0 * a.go.sr, a.go.sr, br, dv);
                cp_async_commit();
                if (tid < BR) {
                    Ls[tid] = tid < br ? Lrow[i0 + tid] : ninf<float>();
                    Ds[tid] = tid < br ? Drow[i0 + tid] : 0.f;
                }
            }
            cp_async_wait<0>();
            __syncthreads();
            float st[RK][CQ], dpt[RK][CQ];
#pragma unroll
            for (int r = 0; r < RK; r++)
#pragma unroll
                for (int c = 0; c < CQ; c++) st[r][c] = dpt[r][c] = 0.f;
            gemm_nt<RK, CQ>(st, Ks + ty * RK * LD, LD, Qs + tx * LD, LD, kend);
            gemm_nt<RK, CQ>(dpt, Vs + ty * RK * LD, LD, Gs + tx * LD, LD, kendv);
#pragma unroll
            for (int r = 0; r < RK; r++) {
                const int jl = ty * RK + r;
#pragma unroll
                for (int c = 0; c < CQ; c++) {
                    const int il = tx + 16 * c;
                    const bool in = jl < bc && il < br;
                    const float Li = Ls[il];
                    float p = 0.f, dp = dpt[r][c];
                    if (in && Li != ninf<float>())
                        p = expf(score_of<float>(a, mbase, i0 + il, j0 + jl, st[r][c]) - Li);
                    float pw = p;
                    if (a.p > 0 && in) {
                        const float pd = attn_keep(a, b, h, i0 + il, j0 + jl) ? kscale : 0.f;
                        dp *= pd;
                        pw = pd * p;
                    }
                    Ws[jl * LW + il] = pw;
                    Ss[jl * LW + il] = p * (dp - Ds[il]) * scale;
                }
            }
            __syncthreads();
            gemm_nn<RK, CO, BR>(dva, Ws + ty * RK * LW, LW, Gs, LD, tx); /* dV += PW^T dO */
            __syncthreads(); /* Gs, Ls, Ds are free: the next dO tile loads during dS^T Q */
            const int64_t in0 = i0 + BR;
            const bool more = in0 < a.tq;
            const int brn = more ? (int)min((int64_t)BR, a.tq - in0) : 0;
            if (more) {
                load_tile<VEC, BR, DM, LD>(Gs, GO + in0 * a.go.sr, a.go.sr, brn, dv);
                if (tid < BR) {
                    Ls[tid] = tid < brn ? Lrow[in0 + tid] : ninf<float>();
                    Ds[tid] = tid < brn ? Drow[in0 + tid] : 0.f;
                }
            }
            cp_async_commit();
            gemm_nn<RK, CO, BR>(dk, Ss + ty * RK * LW, LW, Qs, LD, tx); /* dK += dS^T Q */
            __syncthreads(); /* Qs, Ws, Ss are free */
            if (more) load_tile<VEC, BR, DM, LD>(Qs, Q + in0 * a.q.sr, a.q.sr, brn, d);
            cp_async_commit();
            pre = more;
        }
    }
    cp_async_wait<0>();
#pragma unroll
    for (int r = 0; r < RK; r++) {
        const int jl = ty * RK + r;
        if (jl >= bc) continue;
        const int64_t j = j0 + jl;
        float *ok, *ov;
        if (partial) {
            ok = (float *)a.pk + ((b * a.hq + hfirst) * a.tk + j) * a.d;
            ov = (float *)a.pv + ((b * a.hq + hfirst) * a.tk + j) * a.dv;
        } else {
            ok = (float *)a.gk.p + b * a.gk.sb + hk * a.gk.sh + j * a.gk.sr;
            ov = (float *)a.gv.p + b * a.gv.sb + hk * a.gv.sh + j * a.gv.sr;
        }
#pragma unroll
        for (int cc = 0; cc < CO / 4; cc++)
#pragma unroll
            for (int u = 0; u < 4; u++) {
                const int col = cc * 64 + tx * 4 + u;
                if (col < d) ok[col] = dk[r][cc * 4 + u];
                if (col < dv) ov[col] = dva[r][cc * 4 + u];
            }
    }
}

/* ---- f32 backward: dQ ------------------------------------------------------------------------- */
/* One block per (batch * hq, BR query rows); thread (ty, tx) owns query rows ty*RQ.. and key
 * columns tx + 16 c; dQ rows accumulate in registers over the key tiles in order. */
template <int DM, int BR, int BC, bool VEC>
__global__ void __launch_bounds__(ATT_THREADS, 2) attn_bwd_dq_f32(AttnArgs a)
{
    constexpr int RQ = BR / 16, CK = BC / 16, CO = DM / 16, LD = DM + 4, LS = BC + 4;
    extern __shared__ float4 attn_smem[];
    float *Qs = (float *)attn_smem, *Gs = Qs + BR * LD, *Ks = Gs + BR * LD, *Vs = Ks + BC * LD;
    float *Ss = Vs + BC * LD, *Ls = Ss + BR * LS, *Ds = Ls + BR;
    const int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
    const int64_t nqb = (a.tq + BR - 1) / BR, blk = (int64_t)blockIdx.x;
    const int64_t bh = blk / nqb, qb = nqb - 1 - blk % nqb;
    const int64_t b = bh / a.hq, h = bh % a.hq, hk = h / a.G;
    const int64_t i0 = qb * BR, off = a.tk - a.tq;
    const int br = (int)min((int64_t)BR, a.tq - i0);
    int64_t jend = a.tk;
    if (a.causal) jend = min(jend, i0 + br + off);
    const int d = (int)a.d, dv = (int)a.dv, kend = (d + 3) & ~3, kendv = (dv + 3) & ~3;
    const float scale = (float)a.scale, kscale = (float)(1.0 / (1.0 - a.p));
    const float *K = (const float *)a.k.p + b * a.k.sb + hk * a.k.sh;
    const float *V = (const float *)a.v.p + b * a.v.sb + hk * a.v.sh;
    const int64_t mbase = a.mask.kind ? mask_base(a.mask, b, h) : 0;
    load_tile<VEC, BR, DM, LD>(Qs, (const float *)a.q.p + b * a.q.sb + h * a.q.sh + i0 * a.q.sr,
                               a.q.sr, br, d);
    load_tile<VEC, BR, DM, LD>(Gs,
                               (const float *)a.go.p + b * a.go.sb + h * a.go.sh + i0 * a.go.sr,
                               a.go.sr, br, dv);
    cp_async_commit();
    if (tid < BR) {
        const int64_t row = (b * a.hq + h) * a.tq + i0 + tid;
        Ls[tid] = tid < br ? ((const float *)a.lse)[row] : ninf<float>();
        Ds[tid] = tid < br ? ((const float *)a.di)[row] : 0.f;
    }
    float dq[RQ][CO];
#pragma unroll
    for (int r = 0; r < RQ; r++)
#pragma unroll
        for (int c = 0; c < CO; c++) dq[r][c] = 0.f;
    if (jend > 0) { /* the first K and V tiles; the loop prefetches the next ones */
        const int bc0 = (int)min((int64_t)BC, a.tk);
        load_tile<VEC, BC, DM, LD>(Ks, K, a.k.sr, bc0, d);
        load_tile<VEC, BC, DM, LD>(Vs, V, a.v.sr, bc0, dv);
    }
    cp_async_commit();
    for (int64_t j0 = 0; j0 < jend; j0 += BC) {
        const int bc = (int)min((int64_t)BC, a.tk - j0);
        const int64_t jn = j0 + BC;
        const bool more = jn < jend;
        cp_async_wait<0>(); /* this K and V tile (and, the first time, Q and dO) */
        __syncthreads();
        float s[RQ][CK], dp[RQ][CK];
#pragma unroll
        for (int r = 0; r < RQ; r++)
#pragma unroll
            for (int c = 0; c < CK; c++) s[r][c] = dp[r][c] = 0.f;
        gemm_nt<RQ, CK>(s, Qs + ty * RQ * LD, LD, Ks + tx * LD, LD, kend);
        gemm_nt<RQ, CK>(dp, Gs + ty * RQ * LD, LD, Vs + tx * LD, LD, kendv);
#pragma unroll
        for (int r = 0; r < RQ; r++) {
            const int il = ty * RQ + r;
            const float Li = Ls[il], Di = Ds[il];
#pragma unroll
            for (int c = 0; c < CK; c++) {
                const int jl = tx + 16 * c;
                const bool in = jl < bc && il < br;
                float p = 0.f, dpv = dp[r][c];
                if (in && Li != ninf<float>())
                    p = expf(score_of<float>(a, mbase, i0 + il, j0 + jl, s[r][c]) - Li);
                if (a.p > 0 && in) dpv *= attn_keep(a, b, h, i0 + il, j0 + jl) ? kscale : 0.f;
                Ss[il * LS + jl] = p * (dpv - Di) * scale;
            }
        }
        __syncthreads(); /* Vs is free: the next V tile loads during dS K */
        if (more)
            load_tile<VEC, BC, DM, LD>(Vs, V + jn * a.v.sr, a.v.sr,
                                       (int)min((int64_t)BC, a.tk - jn), dv);
        cp_async_commit();
        gemm_nn<RQ, CO, BC>(dq, Ss + ty * RQ * LS, LS, Ks, LD, tx); /* dQ += dS K */
        __syncthreads(); /* Ks and Ss are free */
        if (more)
            load_tile<VEC, BC, DM, LD>(Ks, K + jn * a.k.sr, a.k.sr,
                                       (int)min((int64_t)BC, a.tk - jn), d);
        cp_async_commit();
    }
    cp_async_wait<0>();
    float *DQ = (float *)a.gq.p + b * a.gq.sb + h * a.gq.sh;
#pragma unroll
    for (int r = 0; r < RQ; r++) {
        const int64_t i = i0 + ty * RQ + r;
        if (i >= a.tq) continue;
        float *row = DQ + i * a.gq.sr;
#pragma unroll
        for (int cc = 0; cc < CO / 4; cc++)
#pragma unroll
            for (int u = 0; u < 4; u++) {
                const int col = cc * 64 + tx * 4 + u;
                if (col < d) row[col] = dq[r][cc * 4 + u];
            }
    }
}

/* dst (batch, hkv, tk, cols) = the sum over g < G, in order, of part (batch, hkv * G + g, tk,
 * cols) (contiguous). */
template <class T>
__global__ void attn_sum_heads(const T *part, View4 dst, int64_t batch, int64_t hkv, int64_t G,
                               int64_t tk, int64_t cols)
{
    const int64_t n = batch * hkv * tk * cols;
    GRID_LOOP(x, n)
    {
        const int64_t c = x % cols, r = x / cols, j = r % tk, bk = r / tk;
        const int64_t b = bk / hkv, hk = bk % hkv;
        const T *src = part + ((b * hkv * G + hk * G) * tk + j) * cols + c;
        T s = 0;
        for (int64_t g = 0; g < G; g++) s += src[g * tk * cols];
        ((T *)dst.p)[b * dst.sb + hk * dst.sh + j * dst.sr + c] = s;
    }
}

/* ---- f64: one warp per row -------------------------------------------------------------------- */
#define WARP_COLS (BCU_ATTN_MAX_HEAD_DIM / 32) /* columns per lane */

template <class T> __device__ inline T warp_sum(T v)
{
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(ATT_FULL_MASK, v, o);
    return v; /* the butterfly gives every lane the same bits */
}

/* dot of the lane's registers x (columns lane + 32 u) with row y (n columns) */
template <class T> __device__ inline T warp_dot(const T (&x)[WARP_COLS], const T *y, int64_t n)
{
    const int lane = threadIdx.x & 31;
    T s = 0;
#pragma unroll
    for (int u = 0; u < WARP_COLS; u++) {
        const int64_t c = lane + 32 * u;
        if (c < n) s += x[u] * y[c];
    }
    return warp_sum(s);
}

template <class T> __device__ inline void warp_load(T (&x)[WARP_COLS], const T *y, int64_t n)
{
    const int lane = threadIdx.x & 31;
#pragma unroll
    for (int u = 0; u < WARP_COLS; u++) {
        const int64_t c = lane + 32 * u;
        x[u] = c < n ? y[c] : (T)0;
    }
}

template <class T> __device__ inline void warp_store(T *y, const T (&x)[WARP_COLS], int64_t n)
{
    const int lane = threadIdx.x & 31;
#pragma unroll
    for (int u = 0; u < WARP_COLS; u++) {
        const int64_t c = lane + 32 * u;
        if (c < n) y[c] = x[u];
    }
}

/* forward, one warp per query row (b, h, i), keys one at a time with an online softmax */
template <class T> __global__ void attn_fwd_warp(AttnArgs a)
{
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int64_t rows = a.batch * a.hq * a.tq, off = a.tk - a.tq;
    const T kscale = (T)(1.0 / (1.0 - a.p));
    for (int64_t row = (int64_t)blockIdx.x * ATT_WARPS + warp; row < rows;
         row += (int64_t)gridDim.x * ATT_WARPS) {
        const int64_t i = row % a.tq, bh = row / a.tq, b = bh / a.hq, h = bh % a.hq;
        const int64_t hk = h / a.G;
        const T *K = (const T *)a.k.p + b * a.k.sb + hk * a.k.sh;
        const T *V = (const T *)a.v.p + b * a.v.sb + hk * a.v.sh;
        const int64_t mbase = a.mask.kind ? mask_base(a.mask, b, h) : 0;
        T q[WARP_COLS], acc[WARP_COLS];
        warp_load(q, (const T *)a.q.p + b * a.q.sb + h * a.q.sh + i * a.q.sr, a.d);
#pragma unroll
        for (int u = 0; u < WARP_COLS; u++) acc[u] = 0;
        T m = ninf<T>(), l = 0;
        int64_t jend = a.tk;
        if (a.causal) jend = min(jend, i + off + 1);
        for (int64_t j = 0; j < jend; j++) {
            const T x = score_of<T>(a, mbase, i, j, warp_dot(q, K + j * a.k.sr, a.d));
            if (x == ninf<T>()) continue;
            const T mnew = x > m ? x : m;
            const T alpha = m == ninf<T>() ? (T)0 : exp_of(m - mnew), e = exp_of(x - mnew);
            l = l * alpha + e;
            m = mnew;
            T pd = e;
            if (a.p > 0) pd = attn_keep(a, b, h, i, j) ? e * kscale : (T)0;
            const T *vr = V + j * a.v.sr;
#pragma unroll
            for (int u = 0; u < WARP_COLS; u++) {
                const int64_t c = lane + 32 * u;
                if (c < a.dv) acc[u] = acc[u] * alpha + pd * vr[c];
            }
        }
        const bool none = l == 0;
        const T inv = none ? (T)0 : (T)1 / l;
#pragma unroll
        for (int u = 0; u < WARP_COLS; u++) acc[u] = none ? (T)0 : acc[u] * inv;
        warp_store((T *)a.o.p + b * a.o.sb + h * a.o.sh + i * a.o.sr, acc, a.dv);
        if (lane == 0) ((T *)a.lse)[row] = none ? ninf<T>() : m + log_of(l);
    }
}

/* dK, dV, one warp per key row (b, hk, j): the query heads of hk in order, then their rows */
template <class T> __global__ void attn_bwd_dkdv_warp(AttnArgs a)
{
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int64_t rows = a.batch * a.hkv * a.tk, off = a.tk - a.tq;
    const T kscale = (T)(1.0 / (1.0 - a.p)), scale = (T)a.scale;
    for (int64_t row = (int64_t)blockIdx.x * ATT_WARPS + warp; row < rows;
         row += (int64_t)gridDim.x * ATT_WARPS) {
        const int64_t j = row % a.tk, bk = row / a.tk, b = bk / a.hkv, hk = bk % a.hkv;
        T kr[WARP_COLS], vr[WARP_COLS], dk[WARP_COLS], dv[WARP_COLS];
        warp_load(kr, (const T *)a.k.p + b * a.k.sb + hk * a.k.sh + j * a.k.sr, a.d);
        warp_load(vr, (const T *)a.v.p + b * a.v.sb + hk * a.v.sh + j * a.v.sr, a.dv);
#pragma unroll
        for (int u = 0; u < WARP_COLS; u++) dk[u] = dv[u] = 0;
        const int64_t istart = a.causal && j - off > 0 ? j - off : 0;
        for (int64_t g = 0; g < a.G; g++) {
            const int64_t h = hk * a.G + g;
            const int64_t mbase = a.mask.kind ? mask_base(a.mask, b, h) : 0;
            const T *L = (const T *)a.lse + (b * a.hq + h) * a.tq;
            const T *D = (const T *)a.di + (b * a.hq + h) * a.tq;
            for (int64_t i = istart; i < a.tq; i++) {
                if (L[i] == ninf<T>()) continue;
                const T *qrow = (const T *)a.q.p + b * a.q.sb + h * a.q.sh + i * a.q.sr;
                const T *grow = (const T *)a.go.p + b * a.go.sb + h * a.go.sh + i * a.go.sr;
                const T x = score_of<T>(a, mbase, i, j, warp_dot(kr, qrow, a.d));
                if (x == ninf<T>()) continue;
                const T p = exp_of(x - L[i]);
                T dp = warp_dot(vr, grow, a.dv), pw = p;
                if (a.p > 0) {
                    const T pd = attn_keep(a, b, h, i, j) ? kscale : (T)0;
                    dp *= pd;
                    pw = pd * p;
                }
                const T ds = p * (dp - D[i]) * scale;
#pragma unroll
                for (int u = 0; u < WARP_COLS; u++) {
                    const int64_t c = lane + 32 * u;
                    if (c < a.dv) dv[u] += pw * grow[c];
                    if (c < a.d) dk[u] += ds * qrow[c];
                }
            }
        }
        warp_store((T *)a.gk.p + b * a.gk.sb + hk * a.gk.sh + j * a.gk.sr, dk, a.d);
        warp_store((T *)a.gv.p + b * a.gv.sb + hk * a.gv.sh + j * a.gv.sr, dv, a.dv);
    }
}

/* dQ, one warp per query row (b, h, i) */
template <class T> __global__ void attn_bwd_dq_warp(AttnArgs a)
{
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int64_t rows = a.batch * a.hq * a.tq, off = a.tk - a.tq;
    const T kscale = (T)(1.0 / (1.0 - a.p)), scale = (T)a.scale;
    for (int64_t row = (int64_t)blockIdx.x * ATT_WARPS + warp; row < rows;
         row += (int64_t)gridDim.x * ATT_WARPS) {
        const int64_t i = row % a.tq, bh = row / a.tq, b = bh / a.hq, h = bh % a.hq;
        const int64_t hk = h / a.G;
        const T *K = (const T *)a.k.p + b * a.k.sb + hk * a.k.sh;
        const T *V = (const T *)a.v.p + b * a.v.sb + hk * a.v.sh;
        const int64_t mbase = a.mask.kind ? mask_base(a.mask, b, h) : 0;
        const T L = ((const T *)a.lse)[row], D = ((const T *)a.di)[row];
        T q[WARP_COLS], go[WARP_COLS], dq[WARP_COLS];
        warp_load(q, (const T *)a.q.p + b * a.q.sb + h * a.q.sh + i * a.q.sr, a.d);
        warp_load(go, (const T *)a.go.p + b * a.go.sb + h * a.go.sh + i * a.go.sr, a.dv);
#pragma unroll
        for (int u = 0; u < WARP_COLS; u++) dq[u] = 0;
        int64_t jend = L == ninf<T>() ? 0 : a.tk;
        if (a.causal) jend = min(jend, i + off + 1);
        for (int64_t j = 0; j < jend; j++) {
            const T *krow = K + j * a.k.sr;
            const T x = score_of<T>(a, mbase, i, j, warp_dot(q, krow, a.d));
            if (x == ninf<T>()) continue;
            const T p = exp_of(x - L);
            T dp = warp_dot(go, V + j * a.v.sr, a.dv);
            if (a.p > 0) dp *= attn_keep(a, b, h, i, j) ? kscale : (T)0;
            const T ds = p * (dp - D) * scale;
#pragma unroll
            for (int u = 0; u < WARP_COLS; u++) {
                const int64_t c = lane + 32 * u;
                if (c < a.d) dq[u] += ds * krow[c];
            }
        }
        warp_store((T *)a.gq.p + b * a.gq.sb + h * a.gq.sh + i * a.gq.sr, dq, a.d);
    }
}

/* ---- host side ------------------------------------------------------------------------------- */
int cuda_failed(const char *what, cudaError_t e)
{
    cudaGetLastError();
    unsupported("%s failed: %s", what, cudaGetErrorString(e)); /* formats the message */
    return BCU_ERR_INTERNAL;
}

size_t align_up(size_t n) { return (n + ATT_SCRATCH_ALIGN - 1) / ATT_SCRATCH_ALIGN * ATT_SCRATCH_ALIGN; }

View4 view4(const bcu_view *t)
{
    View4 v;
    v.p = t ? t->data : nullptr;
    v.sb = t ? t->strides[0] : 0;
    v.sh = t ? t->strides[1] : 0;
    v.sr = t ? t->strides[2] : 0;
    return v;
}

/* 16-byte aligned data and batch / head / row strides (dims of size 1 excepted) */
bool vec_ok(const bcu_view *t)
{
    if ((uintptr_t)t->data % 16 != 0) return false;
    for (int d = 0; d < 3; d++)
        if (t->shape[d] != 1 && t->strides[d] % 4 != 0) return false;
    return true;
}

int check(const char *op, const bcu_view *q, const bcu_view *mask, const bcu_attn_geom *g)
{
    if (q->dtype != BCU_F32 && q->dtype != BCU_F64)
        return unsupported("%s: the CUDA kernel computes in f32 or f64, not %s", op,
                           bcu_dtype_name(q->dtype));
    if (mask && mask->dtype != BCU_BOOL && mask->dtype != q->dtype)
        return unsupported("%s: mask must be bool or %s, not %s", op, bcu_dtype_name(q->dtype),
                           bcu_dtype_name(mask->dtype));
    if (mask && mask->ndim < 3)
        return unsupported("%s: mask view has %d dims, expected (B..., hq, tq, tk)", op,
                           mask->ndim);
    if (g->d > BCU_ATTN_MAX_HEAD_DIM || g->dv > BCU_ATTN_MAX_HEAD_DIM)
        return unsupported("%s: head dims D %lld and Dv %lld: the CUDA kernel handles up to %d",
                           op, (long long)g->d, (long long)g->dv, BCU_ATTN_MAX_HEAD_DIM);
    if (g->hkv < 1 || g->hq % g->hkv != 0)
        return unsupported("%s: %lld query heads are not a multiple of %lld kv heads", op,
                           (long long)g->hq, (long long)g->hkv);
    return BCU_OK;
}

AttnArgs args_of(const bcu_view *q, const bcu_view *k, const bcu_view *v, const bcu_view *mask,
                 const bcu_attn_geom *g)
{
    AttnArgs a;
    memset(&a, 0, sizeof a);
    a.q = view4(q), a.k = view4(k), a.v = view4(v);
    if (mask) {
        int L = mask->ndim - 3;
        a.mask.data = mask->data;
        a.mask.kind = mask->dtype == BCU_BOOL ? 1 : 2;
        a.mask.nlead = L;
        for (int d = 0; d < L; d++) {
            a.mask.lshape[d] = mask->shape[d];
            a.mask.lstride[d] = mask->strides[d];
        }
        a.mask.sh = mask->strides[L], a.mask.si = mask->strides[L + 1];
        a.mask.sj = mask->strides[L + 2];
    }
    a.batch = g->batch, a.hq = g->hq, a.hkv = g->hkv, a.G = g->hq / g->hkv;
    a.tq = g->tq, a.tk = g->tk, a.d = g->d, a.dv = g->dv;
    a.scale = g->scale, a.causal = g->causal;
    a.p = g->dropout_p > 0 ? g->dropout_p : 0;
    a.seed = g->seed, a.counter = g->counter;
    return a;
}

int head_width(const bcu_attn_geom *g)
{
    int64_t m = g->d > g->dv ? g->d : g->dv;
    return m <= 64 ? 64 : m <= 128 ? 128 : 256;
}

unsigned warp_grid(int64_t rows)
{
    int64_t b = (rows + ATT_WARPS - 1) / ATT_WARPS;
    if (b < 1) b = 1;
    if (b > 65535 * 8) b = 65535 * 8;
    return (unsigned)b;
}

typedef void (*attn_kernel)(AttnArgs);

/* Launches kern over `blocks` blocks with smem bytes of dynamic shared memory. */
int launch(attn_kernel kern, int64_t blocks, size_t smem, bcu_stream s, const AttnArgs &a,
           const char *what)
{
    if (blocks <= 0) return BCU_OK;
    if (blocks > INT_MAX)
        return unsupported("%s: %lld thread blocks are more than one launch takes", what,
                           (long long)blocks);
    cudaError_t e = cudaFuncSetAttribute((const void *)kern,
                                         cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
    if (e != cudaSuccess) return cuda_failed("attention: cudaFuncSetAttribute", e);
    kern<<<(unsigned)blocks, ATT_THREADS, smem, s>>>(a);
    return launch_status(what);
}

/* The f32 tile shapes per head width DM: forward and dQ (BR query rows, BC keys), dK/dV. */
template <int DM> struct Tiles;
template <> struct Tiles<64> {
    enum { FBR = 64, FBC = 64, KBR = 64, KBC = 64, QBR = 64, QBC = 64 };
};
template <> struct Tiles<128> {
    enum { FBR = 64, FBC = 32, KBR = 32, KBC = 64, QBR = 64, QBC = 32 };
};
template <> struct Tiles<256> {
    enum { FBR = 32, FBC = 32, KBR = 32, KBC = 32, QBR = 32, QBC = 32 };
};

template <int DM> int forward_f32(bcu_stream s, const AttnArgs &a, bool vec)
{
    constexpr int BR = Tiles<DM>::FBR, BC = Tiles<DM>::FBC, LD = DM + 4;
    const size_t smem = sizeof(float) * ((size_t)BR * LD + 2 * (size_t)BC * LD + BR * (BC + 4));
    const int64_t blocks = a.batch * a.hq * ((a.tq + BR - 1) / BR);
    attn_kernel k = vec ? attn_fwd_f32<DM, BR, BC, true> : attn_fwd_f32<DM, BR, BC, false>;
    return launch(k, blocks, smem, s, a, "attention");
}

template <int DM> int64_t dkdv_key_block() { return Tiles<DM>::KBC; }

template <int DM> int backward_f32(bcu_stream s, const AttnArgs &a, bool vec)
{
    constexpr int KBR = Tiles<DM>::KBR, KBC = Tiles<DM>::KBC, LD = DM + 4;
    constexpr int QBR = Tiles<DM>::QBR, QBC = Tiles<DM>::QBC;
    if (a.tk > 0) {
        const size_t smem = sizeof(float) * (2 * (size_t)KBC * LD + 2 * (size_t)KBR * LD +
                                             2 * (size_t)KBC * (KBR + 4) + 2 * KBR);
        const int64_t heads = a.pk ? a.batch * a.hq : a.batch * a.hkv;
        attn_kernel k = vec ? attn_bwd_dkdv_f32<DM, KBR, KBC, true>
                            : attn_bwd_dkdv_f32<DM, KBR, KBC, false>;
        int rc = launch(k, heads * ((a.tk + KBC - 1) / KBC), smem, s, a, "attention backward dk");
        if (rc) return rc;
        if (a.pk) {
            int64_t nk = a.batch * a.hkv * a.tk * a.d, nv = a.batch * a.hkv * a.tk * a.dv;
            if (nk > 0)
                attn_sum_heads<float><<<grid_for(nk), BCU_THREADS, 0, s>>>(
                    (const float *)a.pk, a.gk, a.batch, a.hkv, a.G, a.tk, a.d);
            if (nv > 0)
                attn_sum_heads<float><<<grid_for(nv), BCU_THREADS, 0, s>>>(
                    (const float *)a.pv, a.gv, a.batch, a.hkv, a.G, a.tk, a.dv);
            rc = launch_status("attention backward head sums");
            if (rc) return rc;
        }
    }
    if (a.tq > 0) {
        const size_t smem = sizeof(float) * (2 * (size_t)QBR * LD + 2 * (size_t)QBC * LD +
                                             (size_t)QBR * (QBC + 4) + 2 * QBR);
        attn_kernel k = vec ? attn_bwd_dq_f32<DM, QBR, QBC, true>
                            : attn_bwd_dq_f32<DM, QBR, QBC, false>;
        return launch(k, a.batch * a.hq * ((a.tq + QBR - 1) / QBR), smem, s, a,
                      "attention backward dq");
    }
    return BCU_OK;
}

int sm_count(void)
{
    int dev = 0, n = 0;
    if (cudaGetDevice(&dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess || n < 1) {
        cudaGetLastError();
        return 1;
    }
    return n;
}

/* Grouped heads whose (batch, kv head, key block) tasks would leave the GPU half idle get one
 * block per query head and a summing pass instead. */
bool use_partial(int dtype, const bcu_attn_geom *g)
{
    if (dtype != BCU_F32 || g->hkv < 1 || g->hq / g->hkv <= 1 || g->tk == 0) return false;
    int dm = head_width(g);
    int64_t kbc = dm == 64 ? dkdv_key_block<64>() : dm == 128 ? dkdv_key_block<128>()
                                                               : dkdv_key_block<256>();
    int64_t tasks = g->batch * g->hkv * ((g->tk + kbc - 1) / kbc);
    return tasks < 2 * (int64_t)sm_count();
}

} // namespace

/* ---- entry points ----------------------------------------------------------------------------- */
extern "C" int bcu_attn_forward(bcu_stream s, const bcu_view *q, const bcu_view *k,
                                const bcu_view *v, const bcu_view *mask, const bcu_view *out,
                                const bcu_view *lse, const bcu_attn_geom *g)
{
    int rc = check("attention", q, mask, g);
    if (rc) return rc;
    if (g->batch * g->hq * g->tq == 0) return BCU_OK;
    AttnArgs a = args_of(q, k, v, mask, g);
    a.o = view4(out);
    a.lse = lse->data;
    if (q->dtype == BCU_F64) {
        attn_fwd_warp<double><<<warp_grid(a.batch * a.hq * a.tq), ATT_THREADS, 0, s>>>(a);
        return launch_status("attention");
    }
    bool vec = a.d % 4 == 0 && a.dv % 4 == 0 && vec_ok(q) && vec_ok(k) && vec_ok(v);
    switch (head_width(g)) {
    case 64: return forward_f32<64>(s, a, vec);
    case 128: return forward_f32<128>(s, a, vec);
    default: return forward_f32<256>(s, a, vec);
    }
}

extern "C" size_t bcu_attn_backward_scratch(int dtype, const bcu_attn_geom *g)
{
    size_t es = dtype == BCU_F64 ? 8 : 4;
    size_t n = align_up(es * (size_t)(g->batch * g->hq * g->tq));
    if (use_partial(dtype, g))
        n += align_up(es * (size_t)(g->batch * g->hq * g->tk * g->d)) +
             align_up(es * (size_t)(g->batch * g->hq * g->tk * g->dv));
    return n;
}

extern "C" int bcu_attn_backward(bcu_stream s, const bcu_view *q, const bcu_view *k,
                                 const bcu_view *v, const bcu_view *mask, const bcu_view *out,
                                 const bcu_view *dout, const bcu_view *lse, const bcu_view *dq,
                                 const bcu_view *dk, const bcu_view *dv, const bcu_attn_geom *g,
                                 void *scratch, size_t scratch_bytes)
{
    int rc = check("attention backward", q, mask, g);
    if (rc) return rc;
    if (g->batch * g->hkv == 0) return BCU_OK;
    AttnArgs a = args_of(q, k, v, mask, g);
    a.o = view4(out), a.go = view4(dout);
    a.gq = view4(dq), a.gk = view4(dk), a.gv = view4(dv);
    a.lse = lse->data;
    const size_t es = q->dtype == BCU_F64 ? 8 : 4;
    const size_t di_bytes = align_up(es * (size_t)(a.batch * a.hq * a.tq));
    const bool partial = use_partial(q->dtype, g);
    if (scratch_bytes < bcu_attn_backward_scratch(q->dtype, g) || (!scratch && di_bytes > 0)) {
        unsupported("attention backward: %zu bytes of scratch, %zu needed", scratch_bytes,
                    bcu_attn_backward_scratch(q->dtype, g));
        return BCU_ERR_INTERNAL;
    }
    a.di = scratch;
    if (partial) {
        a.pk = (char *)scratch + di_bytes;
        a.pv = (char *)a.pk + align_up(es * (size_t)(a.batch * a.hq * a.tk * a.d));
    }
    const int64_t qrows = a.batch * a.hq * a.tq;
    if (qrows > 0) {
        if (q->dtype == BCU_F64)
            attn_di<double><<<warp_grid(qrows), ATT_THREADS, 0, s>>>(a);
        else
            attn_di<float><<<warp_grid(qrows), ATT_THREADS, 0, s>>>(a);
        rc = launch_status("attention backward di");
        if (rc) return rc;
    }
    if (q->dtype == BCU_F64) {
        const int64_t krows = a.batch * a.hkv * a.tk;
        if (krows > 0) attn_bwd_dkdv_warp<double><<<warp_grid(krows), ATT_THREADS, 0, s>>>(a);
        if (qrows > 0) attn_bwd_dq_warp<double><<<warp_grid(qrows), ATT_THREADS, 0, s>>>(a);
        return launch_status("attention backward");
    }
    bool vec = a.d % 4 == 0 && a.dv % 4 == 0 && vec_ok(q) && vec_ok(k) && vec_ok(v) &&
               vec_ok(dout);
    switch (head_width(g)) {
    case 64: return backward_f32<64>(s, a, vec);
    case 128: return backward_f32<128>(s, a, vec);
    default: return backward_f32<256>(s, a, vec);
    }
}
