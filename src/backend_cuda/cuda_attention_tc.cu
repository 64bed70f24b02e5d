/* backend_cuda/cuda_attention_tc.cu — bf16 / f16 flash attention on the tensor cores
 * (cuda_attention_tc.h), FlashAttention-2's schedule written with mma.sync m16n8k16 (f32
 * accumulators), ldmatrix from padded shared tiles and cp.async double buffering; compiled for
 * sm_80 and sm_90 (no wgmma: that needs sm_90a). Same semantics as the f32 kernels of
 * cuda_attention.cu, which stay the reference; this file is only their fast low-precision path.
 *
 * Shared tiles hold rows of D halves padded to LD = D + 8 (row pitch 144 or 272 bytes), so the
 * eight 16-byte rows one ldmatrix phase reads start 4 banks apart: no bank conflicts, and every
 * row start stays 16-byte aligned for cp.async.
 *
 * Fragment layouts (PTX ISA, mma.m16n8k16 with .bf16 / .f16; gr = lane / 4, qd = lane % 4):
 *   A (16 x 16, row major), four .b32 registers of two halves each:
 *     a0 (row gr, cols 2qd, 2qd+1), a1 (row gr+8, same cols), a2 (row gr, cols 2qd+8, +9),
 *     a3 (row gr+8, cols 2qd+8, +9);
 *   B (16 x 8, k x n), two registers: b0 (k 2qd, 2qd+1; n gr), b1 (k 2qd+8, +9; n gr);
 *   C (16 x 8) f32: c0, c1 (row gr, cols 2qd, 2qd+1), c2, c3 (row gr+8, same cols).
 * ldmatrix.x4 gives register r the 8 x 8 matrix whose row addresses lanes 8r..8r+7 supply: the
 * lane receives (row lane/4, cols 2(lane%4), +1) of it, or with .trans (rows 2(lane%4), +1; col
 * lane/4). So an A operand stored row-major comes from rows lane%16, col 8 (lane/16); a B operand
 * stored as [n][k] rows (K for S = Q K^T) from the non-transposed load, and one stored as [k][n]
 * rows (V for O = P V) from the transposed load; an accumulator tile of 16 x 16 becomes an A
 * operand in registers (c of n-tile 2kk → a0, a1; of n-tile 2kk+1 → a2, a3).
 *
 * Forward: one block of 4 warps per (batch * hq, BR = 64 MT query rows), the last query tiles
 * first (they see the most keys under the causal rule); each warp owns MT tiles of 16 query rows,
 * keeps Q in registers and the running max / sum / output in registers (online softmax in base 2,
 * scale * log2 e applied to the scores), and streams 64-key K and V tiles through two shared
 * buffers each (the next K tile loads during softmax and P V, the next V tile during Q K^T).
 * Backward: a preprocess kernel D_i = dO_i . O_i (and zeroes the f32 dq accumulator); the main
 * kernel, one block of NW warps per (batch, kv head, BK = 16 NW keys), keeps dK and dV of its keys
 * in registers (warp w owns keys 16w..16w+15) while it streams BQ-row tiles of Q and dO of every
 * query head of that kv head (double-buffered), recomputing P^T from the saved lse, and adds each
 * tile's dQ = dS K into the f32 accumulator with atomics; a last kernel scales and rounds dq. */
#include "backend_cuda/cuda_attention_tc.h"
#include "backend_cuda/cuda_common.cuh"

#include <limits.h>
#include <math.h>
#include <string.h>

#define TC_FULL_MASK 0xffffffffu
#define TC_SCRATCH_ALIGN 256

namespace {

constexpr float TC_LOG2E = 1.4426950408889634f;
constexpr float TC_LN2 = 0.6931471805599453f;

int tc_fwd_tiles = 0; /* bcu_attn_tc_set_variant: 0 = default */
int tc_bwd_warps = 0;

/* ---- arguments ------------------------------------------------------------------------------ */
/* A (batch, heads, rows, D) operand in raw 16-bit storage, column stride 1; vec: data and
 * batch / head / row strides 16-byte aligned (the 16-byte copy path). */
struct Op {
    uint16_t *p;
    int64_t sb, sh, sr;
    bool vec;
};

struct TcArgs {
    Op q, k, v, o, go, dq, dk, dv; /* o: the forward's output; go: dout */
    float *lse;                    /* (batch, hq, tq) */
    float *di;                     /* (batch, hq, tq) scratch: dO_i . O_i */
    float *dqacc;                  /* (batch, hq, tq, D) f32 scratch */
    int64_t batch, hq, hkv, G, tq, tk;
    float scale, scale_log2; /* scale, scale * log2(e) */
    bool causal;
    uint32_t drop_threshold; /* keep iff (philox word >> 8) >= this = ceil(p 2^24) */
    float drop_scale;        /* 1 / (1 - p) */
    uint64_t seed, counter;
};

__device__ __forceinline__ float neg_inf() { return __int_as_float((int)0xff800000u); }
__device__ __forceinline__ float pos_inf() { return __int_as_float(0x7f800000); }

/* ---- 16-bit element conversions ------------------------------------------------------------- */
template <bool BF> struct Cvt;
template <> struct Cvt<true> {
    static __device__ __forceinline__ uint32_t pack(float lo, float hi)
    {
        return (uint32_t)__bfloat16_as_ushort(__float2bfloat16_rn(lo)) |
               ((uint32_t)__bfloat16_as_ushort(__float2bfloat16_rn(hi)) << 16);
    }
    static __device__ __forceinline__ float to_f(uint16_t x)
    {
        return __uint_as_float((uint32_t)x << 16);
    }
};
template <> struct Cvt<false> {
    static __device__ __forceinline__ uint32_t pack(float lo, float hi)
    {
        return (uint32_t)__half_as_ushort(__float2half_rn(lo)) |
               ((uint32_t)__half_as_ushort(__float2half_rn(hi)) << 16);
    }
    static __device__ __forceinline__ float to_f(uint16_t x)
    {
        return __half2float(__ushort_as_half(x));
    }
};

/* ---- PTX wrappers (sm_80+; the plugin builds for 80 and 90) ---------------------------------- */
__device__ __forceinline__ unsigned smem_addr(const void *p)
{
    return (unsigned)__cvta_generic_to_shared(p);
}

/* 16 bytes global → shared, or 16 zero bytes when !ok (nothing is read then). */
__device__ __forceinline__ void cp_async16(void *dst, const void *src, bool ok)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
    __trap();
#else
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)),
                 "l"(src), "r"(ok ? 16 : 0)
                 : "memory");
#endif
}

__device__ __forceinline__ void cp_async_commit()
{
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
    asm volatile("cp.async.commit_group;\n" ::: "memory");
#endif
}

/* Waits until at most N of this thread's newest copy groups are in flight. */
template <int N> __device__ __forceinline__ void cp_async_wait()
{
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
#endif
}

__device__ __forceinline__ void ldsm_x4(uint32_t (&r)[4], const uint16_t *p)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
    __trap();
#else
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_addr(p))
                 : "memory");
#endif
}

__device__ __forceinline__ void ldsm_x4_trans(uint32_t (&r)[4], const uint16_t *p)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
    __trap();
#else
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_addr(p))
                 : "memory");
#endif
}

/* c (16 x 8, f32) += a (16 x 16) b (16 x 8, registers b0 b1) */
template <bool BF>
__device__ __forceinline__ void mma16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                         uint32_t b1)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
    __trap();
#else
    if (BF)
        asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, "
                     "{%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
                     : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    else
        asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, "
                     "{%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
                     : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#endif
}

/* *p += x, *(p + 1) += y (p 8-byte aligned); one vector atomic on sm_90. */
__device__ __forceinline__ void atomic_add2(float *p, float x, float y)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    atomicAdd(reinterpret_cast<float2 *>(p), make_float2(x, y));
#else
    atomicAdd(p, x);
    atomicAdd(p + 1, y);
#endif
}

/* ---- dropout: the contract's Philox numbering ------------------------------------------------ */
__device__ __forceinline__ uint32_t philox_pick(const BcuPhilox &r, unsigned w)
{
    return w == 0 ? r.v[0] : w == 1 ? r.v[1] : w == 2 ? r.v[2] : r.v[3];
}

/* Whether draw e (= ((b hq + h) tq + i) tk + j) keeps its weight. */
__device__ __forceinline__ bool drop_keep(const TcArgs &a, uint64_t e)
{
    const uint32_t x = philox_pick(bcu_philox4x32_10(a.seed, a.counter + e / 4), (unsigned)(e % 4));
    return (x >> 8) >= a.drop_threshold;
}

/* Draws e and e + 1, sharing one Philox block unless e % 4 == 3. */
__device__ __forceinline__ void drop_keep2(const TcArgs &a, uint64_t e, bool &k0, bool &k1)
{
    const unsigned w = (unsigned)(e % 4);
    const BcuPhilox r = bcu_philox4x32_10(a.seed, a.counter + e / 4);
    const uint32_t x0 = philox_pick(r, w);
    const uint32_t x1 = w == 3 ? bcu_philox4x32_10(a.seed, a.counter + e / 4 + 1).v[0]
                               : philox_pick(r, w + 1);
    k0 = (x0 >> 8) >= a.drop_threshold;
    k1 = (x1 >> 8) >= a.drop_threshold;
}

/* ---- shared tiles ----------------------------------------------------------------------------- */
/* s (ROWS, D) at row pitch D + 8 = g (nvalid, D) at row stride gst, zero rows after nvalid.
 * vec: 16-byte cp.async copies (the caller commits and waits); else element copies. */
template <int ROWS, int D, int NTHREADS>
__device__ __forceinline__ void load_tile(uint16_t *s, const uint16_t *g, int64_t gst, int nvalid,
                                          bool vec)
{
    constexpr int CPR = D / 8, LD = D + 8;
    if (vec) {
#pragma unroll
        for (int c = threadIdx.x; c < ROWS * CPR; c += NTHREADS) {
            const int r = c / CPR, ch = c % CPR;
            const bool ok = r < nvalid;
            cp_async16(s + r * LD + ch * 8, ok ? g + r * gst + ch * 8 : g, ok);
        }
    } else {
        for (int c = threadIdx.x; c < ROWS * D; c += NTHREADS) {
            const int r = c / D, col = c % D;
            s[r * LD + col] = r < nvalid ? g[r * gst + col] : (uint16_t)0;
        }
    }
}

/* g rows [0, nvalid) (row stride gst) = s rows (pitch D + 8), ROWS rows by the 32 lanes of one
 * warp. */
template <int ROWS, int D>
__device__ __forceinline__ void store_rows_warp(uint16_t *g, int64_t gst, const uint16_t *s,
                                                int nvalid, bool vec, int lane)
{
    constexpr int CPR = D / 8, LD = D + 8;
#pragma unroll
    for (int c = lane; c < ROWS * CPR; c += 32) {
        const int r = c / CPR, ch = c % CPR;
        if (r >= nvalid) continue;
        const uint16_t *src = s + r * LD + ch * 8;
        uint16_t *dst = g + r * gst + ch * 8;
        if (vec) {
            *(uint4 *)dst = *(const uint4 *)src;
        } else {
#pragma unroll
            for (int u = 0; u < 8; u++) dst[u] = src[u];
        }
    }
}

/* 8 consecutive 16-bit elements as four words (element 2u in the low half of word u): one
 * 16-byte access when vec (p 16-byte aligned), else element accesses. */
__device__ __forceinline__ uint4 load8(const uint16_t *p, bool vec)
{
    if (vec) return *(const uint4 *)p;
    uint4 w;
    w.x = (uint32_t)p[0] | ((uint32_t)p[1] << 16);
    w.y = (uint32_t)p[2] | ((uint32_t)p[3] << 16);
    w.z = (uint32_t)p[4] | ((uint32_t)p[5] << 16);
    w.w = (uint32_t)p[6] | ((uint32_t)p[7] << 16);
    return w;
}

__device__ __forceinline__ void store8(uint16_t *p, const uint4 &w, bool vec)
{
    if (vec) {
        *(uint4 *)p = w;
        return;
    }
    p[0] = (uint16_t)(w.x & 0xffffu), p[1] = (uint16_t)(w.x >> 16);
    p[2] = (uint16_t)(w.y & 0xffffu), p[3] = (uint16_t)(w.y >> 16);
    p[4] = (uint16_t)(w.z & 0xffffu), p[5] = (uint16_t)(w.z >> 16);
    p[6] = (uint16_t)(w.w & 0xffffu), p[7] = (uint16_t)(w.w >> 16);
}

/* ---- forward ---------------------------------------------------------------------------------- */
/* q (batch, hq, tq, D), k / v (batch, hkv, tk, D) → o (batch, hq, tq, D), lse (batch, hq, tq).
 * Block: 4 warps, BR = 64 MT query rows; grid batch * hq * ceil(tq / BR). */
template <int D, int MT, bool BF, bool DROP>
__global__ void __launch_bounds__(128) attn_tc_fwd(TcArgs a)
{
    constexpr int NW = 4, BR = 16 * MT * NW, BC = 64, LD = D + 8, KS = D / 16, NT = BC / 8,
                  OT = D / 8;
    extern __shared__ uint4 tc_smem[];
    uint16_t *Qs = (uint16_t *)tc_smem, *Ks = Qs + BR * LD, *Vs = Ks + 2 * BC * LD;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, gr = lane >> 2, qd = lane & 3;
    const int64_t nqb = (a.tq + BR - 1) / BR, blk = (int64_t)blockIdx.x;
    const int64_t bh = blk / nqb, qb = nqb - 1 - blk % nqb;
    const int64_t b = bh / a.hq, h = bh % a.hq, hk = h / a.G;
    const int64_t i0 = qb * BR, off = a.tk - a.tq;
    int64_t jend = a.tk; /* keys [0, jend) are visible to some row of the block */
    if (a.causal) jend = min(jend, i0 + BR + off);
    const int64_t ntiles = jend > 0 ? (jend + BC - 1) / BC : 0;
    const uint16_t *Kg = a.k.p + b * a.k.sb + hk * a.k.sh;
    const uint16_t *Vg = a.v.p + b * a.v.sb + hk * a.v.sh;

    load_tile<BR, D, 128>(Qs, a.q.p + b * a.q.sb + h * a.q.sh + i0 * a.q.sr, a.q.sr,
                          (int)min((int64_t)BR, a.tq - i0), a.q.vec);
    if (ntiles > 0) load_tile<BC, D, 128>(Ks, Kg, a.k.sr, (int)min((int64_t)BC, a.tk), a.k.vec);
    cp_async_commit();
    if (ntiles > 0) load_tile<BC, D, 128>(Vs, Vg, a.v.sr, (int)min((int64_t)BC, a.tk), a.v.vec);
    cp_async_commit();

    float o[MT][OT][4], m[MT][2], l[MT][2];
#pragma unroll
    for (int mt = 0; mt < MT; mt++) {
#pragma unroll
        for (int r = 0; r < 2; r++) m[mt][r] = neg_inf(), l[mt][r] = 0.f;
#pragma unroll
        for (int ot = 0; ot < OT; ot++)
#pragma unroll
            for (int e = 0; e < 4; e++) o[mt][ot][e] = 0.f;
    }
    uint32_t qf[MT][KS][4];
    const int row0 = warp * MT * 16; /* the warp's first row in the block */
    const int a_off = (lane & 15) * LD + (lane >> 4) * 8;
    const int b_off = ((lane & 7) + ((lane >> 4) << 3)) * LD + ((lane >> 3) & 1) * 8;
    const int bt_off = ((lane & 7) + (((lane >> 3) & 1) << 3)) * LD + (lane >> 4) * 8;
    const float sl2 = a.scale_log2;

    for (int64_t t = 0; t < ntiles; t++) {
        const int cur = (int)(t & 1);
        const int64_t j0 = t * BC;
        cp_async_wait<1>(); /* Q and this K tile (this V tile may still be in flight) */
        __syncthreads();
        if (t == 0) {
#pragma unroll
            for (int mt = 0; mt < MT; mt++)
#pragma unroll
                for (int ks = 0; ks < KS; ks++)
                    ldsm_x4(qf[mt][ks], Qs + (row0 + mt * 16) * LD + ks * 16 + a_off);
        }
        /* every warp is past tile t - 1's Q K^T: its K buffer takes tile t + 1 */
        if (t + 1 < ntiles)
            load_tile<BC, D, 128>(Ks + (cur ^ 1) * BC * LD, Kg + (j0 + BC) * a.k.sr, a.k.sr,
                                  (int)min((int64_t)BC, a.tk - j0 - BC), a.k.vec);
        cp_async_commit();
        const uint16_t *Kc = Ks + cur * BC * LD, *Vc = Vs + cur * BC * LD;

        /* S = Q K^T (16 MT rows x 64 keys per warp) */
        float s[MT][NT][4];
#pragma unroll
        for (int mt = 0; mt < MT; mt++)
#pragma unroll
            for (int nt = 0; nt < NT; nt++)
#pragma unroll
                for (int e = 0; e < 4; e++) s[mt][nt][e] = 0.f;
#pragma unroll
        for (int ks = 0; ks < KS; ks++)
#pragma unroll
            for (int np = 0; np < NT / 2; np++) {
                uint32_t kb[4];
                ldsm_x4(kb, Kc + np * 16 * LD + ks * 16 + b_off);
#pragma unroll
                for (int mt = 0; mt < MT; mt++) {
                    mma16816<BF>(s[mt][2 * np], qf[mt][ks], kb[0], kb[1]);
                    mma16816<BF>(s[mt][2 * np + 1], qf[mt][ks], kb[2], kb[3]);
                }
            }

        /* scores in base 2; hidden keys (ragged tail, causal) -inf */
#pragma unroll
        for (int mt = 0; mt < MT; mt++)
#pragma unroll
            for (int nt = 0; nt < NT; nt++)
#pragma unroll
                for (int e = 0; e < 4; e++) s[mt][nt][e] *= sl2;
        const int64_t klim64 = a.tk - j0, diag64 = i0 + off - j0;
        if (klim64 < BC || (a.causal && diag64 < BC - 1)) {
            /* key jl (of the tile) is visible to row il (of the block) iff jl < klim and, when
             * causal, jl <= il + diag; the clamps keep both tests exact */
            const int klim = (int)min(klim64, (int64_t)BC);
            const int diag = (int)max(min(diag64, (int64_t)BC), (int64_t)(-(BR + BC)));
#pragma unroll
            for (int mt = 0; mt < MT; mt++)
#pragma unroll
                for (int nt = 0; nt < NT; nt++)
#pragma unroll
                    for (int e = 0; e < 4; e++) {
                        const int il = row0 + mt * 16 + gr + (e >> 1) * 8;
                        const int jl = nt * 8 + qd * 2 + (e & 1);
                        if (jl >= klim || (a.causal && jl > il + diag)) s[mt][nt][e] = neg_inf();
                    }
        }

        /* online softmax: rows gr and gr + 8 of each 16-row tile; a row's 64 scores lie in the
         * 4 lanes of one quad */
#pragma unroll
        for (int mt = 0; mt < MT; mt++) {
            float mx[2] = {neg_inf(), neg_inf()};
#pragma unroll
            for (int nt = 0; nt < NT; nt++) {
                mx[0] = fmaxf(mx[0], fmaxf(s[mt][nt][0], s[mt][nt][1]));
                mx[1] = fmaxf(mx[1], fmaxf(s[mt][nt][2], s[mt][nt][3]));
            }
            float mu[2];
#pragma unroll
            for (int r = 0; r < 2; r++) {
                mx[r] = fmaxf(mx[r], __shfl_xor_sync(TC_FULL_MASK, mx[r], 1));
                mx[r] = fmaxf(mx[r], __shfl_xor_sync(TC_FULL_MASK, mx[r], 2));
                const float mnew = fmaxf(m[mt][r], mx[r]);
                /* no key seen yet: subtract 0 (every weight is exp2(-inf) = 0), never -inf */
                mu[r] = mnew == neg_inf() ? 0.f : mnew;
                const float alpha = exp2f(m[mt][r] - mu[r]);
                m[mt][r] = mnew;
                l[mt][r] *= alpha;
#pragma unroll
                for (int ot = 0; ot < OT; ot++) {
                    o[mt][ot][2 * r] *= alpha;
                    o[mt][ot][2 * r + 1] *= alpha;
                }
            }
#pragma unroll
            for (int nt = 0; nt < NT; nt++)
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    const float p = exp2f(s[mt][nt][e] - mu[e >> 1]);
                    l[mt][e >> 1] += p;
                    s[mt][nt][e] = p;
                }
        }
        if (DROP) { /* the sum above is of the undropped weights; P V uses the dropped ones */
            const uint64_t ebase = ((uint64_t)(b * a.hq + h) * (uint64_t)a.tq + (uint64_t)i0) *
                                       (uint64_t)a.tk +
                                   (uint64_t)j0;
#pragma unroll
            for (int mt = 0; mt < MT; mt++)
#pragma unroll
                for (int r = 0; r < 2; r++) {
                    const uint64_t erow =
                        ebase + (uint64_t)(row0 + mt * 16 + gr + 8 * r) * (uint64_t)a.tk;
#pragma unroll
                    for (int nt = 0; nt < NT; nt++) {
                        float &p0 = s[mt][nt][2 * r], &p1 = s[mt][nt][2 * r + 1];
                        if (p0 == 0.f && p1 == 0.f) continue;
                        bool k0, k1;
                        drop_keep2(a, erow + (uint64_t)(nt * 8 + qd * 2), k0, k1);
                        p0 = k0 ? p0 * a.drop_scale : 0.f;
                        p1 = k1 ? p1 * a.drop_scale : 0.f;
                    }
                }
        }

        cp_async_wait<1>(); /* this V tile (the next K tile may still be in flight) */
        __syncthreads();
        /* O += P V: P (rounded to the input dtype) straight from the accumulators */
#pragma unroll
        for (int kk = 0; kk < BC / 16; kk++) {
            uint32_t pa[MT][4];
#pragma unroll
            for (int mt = 0; mt < MT; mt++) {
                pa[mt][0] = Cvt<BF>::pack(s[mt][2 * kk][0], s[mt][2 * kk][1]);
                pa[mt][1] = Cvt<BF>::pack(s[mt][2 * kk][2], s[mt][2 * kk][3]);
                pa[mt][2] = Cvt<BF>::pack(s[mt][2 * kk + 1][0], s[mt][2 * kk + 1][1]);
                pa[mt][3] = Cvt<BF>::pack(s[mt][2 * kk + 1][2], s[mt][2 * kk + 1][3]);
            }
#pragma unroll
            for (int dp = 0; dp < D / 16; dp++) {
                uint32_t vb[4];
                ldsm_x4_trans(vb, Vc + kk * 16 * LD + dp * 16 + bt_off);
#pragma unroll
                for (int mt = 0; mt < MT; mt++) {
                    mma16816<BF>(o[mt][2 * dp], pa[mt], vb[0], vb[1]);
                    mma16816<BF>(o[mt][2 * dp + 1], pa[mt], vb[2], vb[3]);
                }
            }
        }
        /* every warp is past tile t - 1's P V: its V buffer takes tile t + 1 */
        if (t + 1 < ntiles)
            load_tile<BC, D, 128>(Vs + (cur ^ 1) * BC * LD, Vg + (j0 + BC) * a.v.sr, a.v.sr,
                                  (int)min((int64_t)BC, a.tk - j0 - BC), a.v.vec);
        cp_async_commit();
    }

    /* epilogue: the warp's rows of Qs (read only by this warp, and only at t = 0) stage the
     * output for 16-byte stores */
    cp_async_wait<0>();
    __syncthreads();
    float *L = a.lse + (b * a.hq + h) * a.tq;
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int r = 0; r < 2; r++) {
            float lt = l[mt][r];
            lt += __shfl_xor_sync(TC_FULL_MASK, lt, 1);
            lt += __shfl_xor_sync(TC_FULL_MASK, lt, 2);
            const int il = row0 + mt * 16 + gr + 8 * r;
            const bool seen = lt > 0.f; /* false: the row sees no key → out 0, lse -inf */
            const float inv = seen ? 1.f / lt : 0.f;
            if (qd == 0 && i0 + il < a.tq) L[i0 + il] = seen ? m[mt][r] * TC_LN2 + logf(lt) : neg_inf();
#pragma unroll
            for (int ot = 0; ot < OT; ot++)
                *(uint32_t *)(Qs + il * LD + ot * 8 + qd * 2) =
                    Cvt<BF>::pack(o[mt][ot][2 * r] * inv, o[mt][ot][2 * r + 1] * inv);
        }
    __syncwarp();
    const int64_t rows_left = a.tq - i0 - row0;
    store_rows_warp<MT * 16, D>(a.o.p + b * a.o.sb + h * a.o.sh + (i0 + row0) * a.o.sr, a.o.sr,
                                Qs + row0 * LD, (int)max((int64_t)0, min(rows_left, (int64_t)MT * 16)),
                                a.o.vec, lane);
}

/* ---- backward --------------------------------------------------------------------------------- */
/* di (batch hq tq) = sum_c o[.., c] go[.., c] (f32), and dqacc (batch hq tq, D) = 0. D / 8
 * threads per row, 8 columns each. */
template <int D, bool BF> __global__ void __launch_bounds__(256) attn_tc_bwd_pre(TcArgs a)
{
    constexpr int TPR = D / 8, RPB = 256 / TPR;
    const int64_t rows = a.batch * a.hq * a.tq;
    const int ch = (int)threadIdx.x % TPR;
    /* the loop bound is the same for the whole block, so every lane reaches the shuffles */
    for (int64_t r0 = (int64_t)blockIdx.x * RPB; r0 < rows; r0 += (int64_t)gridDim.x * RPB) {
        const int64_t row = r0 + (int64_t)threadIdx.x / TPR;
        float sum = 0.f;
        if (row < rows) {
            const int64_t i = row % a.tq, bh = row / a.tq, b = bh / a.hq, h = bh % a.hq;
            const uint16_t *op = a.o.p + b * a.o.sb + h * a.o.sh + i * a.o.sr + ch * 8;
            const uint16_t *gp = a.go.p + b * a.go.sb + h * a.go.sh + i * a.go.sr + ch * 8;
            const uint4 ov = load8(op, a.o.vec), gv = load8(gp, a.go.vec);
            const uint32_t ow[4] = {ov.x, ov.y, ov.z, ov.w}, gw[4] = {gv.x, gv.y, gv.z, gv.w};
#pragma unroll
            for (int u = 0; u < 4; u++) {
                sum = fmaf(Cvt<BF>::to_f((uint16_t)(ow[u] & 0xffffu)),
                           Cvt<BF>::to_f((uint16_t)(gw[u] & 0xffffu)), sum);
                sum = fmaf(Cvt<BF>::to_f((uint16_t)(ow[u] >> 16)),
                           Cvt<BF>::to_f((uint16_t)(gw[u] >> 16)), sum);
            }
            float4 *acc = (float4 *)(a.dqacc + row * D + ch * 8);
            acc[0] = make_float4(0.f, 0.f, 0.f, 0.f);
            acc[1] = make_float4(0.f, 0.f, 0.f, 0.f);
        }
#pragma unroll
        for (int x = TPR / 2; x > 0; x >>= 1) sum += __shfl_xor_sync(TC_FULL_MASK, sum, x);
        if (row < rows && ch == 0) a.di[row] = sum;
    }
}

/* dq (batch, hq, tq, D) = scale * dqacc, rounded to the dtype; 8 columns a thread. */
template <int D, bool BF> __global__ void __launch_bounds__(256) attn_tc_bwd_dq(TcArgs a)
{
    constexpr int CPR = D / 8;
    const int64_t n = a.batch * a.hq * a.tq * CPR;
    const float sc = a.scale;
    for (int64_t c = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; c < n;
         c += (int64_t)gridDim.x * blockDim.x) {
        const int64_t row = c / CPR;
        const int ch = (int)(c % CPR);
        const int64_t i = row % a.tq, bh = row / a.tq, b = bh / a.hq, h = bh % a.hq;
        const float4 *src = (const float4 *)(a.dqacc + row * D + ch * 8);
        const float4 x0 = src[0], x1 = src[1];
        uint4 w;
        w.x = Cvt<BF>::pack(x0.x * sc, x0.y * sc);
        w.y = Cvt<BF>::pack(x0.z * sc, x0.w * sc);
        w.z = Cvt<BF>::pack(x1.x * sc, x1.y * sc);
        w.w = Cvt<BF>::pack(x1.z * sc, x1.w * sc);
        store8(a.dq.p + b * a.dq.sb + h * a.dq.sh + i * a.dq.sr + ch * 8, w, a.dq.vec);
    }
}

/* The main backward kernel: block (batch, kv head hk, BK = 16 NW keys from j0), NW warps; grid
 * batch * hkv * ceil(tk / BK). dk, dv (batch, hkv, tk, D) written; dqacc accumulated. */
template <int D, int NW, int BQ, bool BF, bool DROP>
__global__ void __launch_bounds__(NW * 32) attn_tc_bwd(TcArgs a)
{
    constexpr int NTH = NW * 32, BK = 16 * NW, LD = D + 8, LDS = BQ + 8, KS = D / 16, QT = BQ / 8,
                  DT = D / 8;
    constexpr int QW = BQ / 16, DSPLIT = NW / QW, DW = D / DSPLIT, DWT = DW / 8;
    constexpr bool KVREG = D <= 64; /* K and V A-fragments stay in registers */
    static_assert(NW % QW == 0 && D % DSPLIT == 0 && DW % 16 == 0, "dQ warp split");
    static_assert(NTH >= BQ, "one thread per query row loads lse / D");
    extern __shared__ uint4 tc_smem[];
    uint16_t *Ks = (uint16_t *)tc_smem, *Vs = Ks + BK * LD, *Qs = Vs + BK * LD,
             *Gs = Qs + 2 * BQ * LD, *Ss = Gs + 2 * BQ * LD;
    float *Ls = (float *)(Ss + BK * LDS), *Ds = Ls + 2 * BQ;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, gr = lane >> 2, qd = lane & 3;
    const int64_t nkb = (a.tk + BK - 1) / BK, blk = (int64_t)blockIdx.x;
    const int64_t kb = blk % nkb, bhk = blk / nkb, b = bhk / a.hkv, hk = bhk % a.hkv;
    const int64_t j0 = kb * BK, off = a.tk - a.tq;
    const int bk = (int)min((int64_t)BK, a.tk - j0);
    /* causal: query rows before j0 - off see none of these keys */
    const int64_t istart = a.causal ? max((int64_t)0, j0 - off) : 0;
    const int64_t qb0 = istart / BQ, nq = istart < a.tq ? (a.tq + BQ - 1) / BQ - qb0 : 0;
    const int64_t nsteps = a.G * nq; /* (query head of the group, query tile) pairs */

    load_tile<BK, D, NTH>(Ks, a.k.p + b * a.k.sb + hk * a.k.sh + j0 * a.k.sr, a.k.sr, bk, a.k.vec);
    load_tile<BK, D, NTH>(Vs, a.v.p + b * a.v.sb + hk * a.v.sh + j0 * a.v.sr, a.v.sr, bk, a.v.vec);
    cp_async_commit();

    /* Q, dO, lse (base 2; +inf for rows past tq or that see no key, so their weights are 0) and
     * D_i of step st into buffer buf */
    auto issue = [&](int64_t st, int buf) {
        const int64_t h = hk * a.G + st / nq, i0 = (qb0 + st % nq) * BQ;
        const int nv = (int)min((int64_t)BQ, a.tq - i0);
        load_tile<BQ, D, NTH>(Qs + buf * BQ * LD, a.q.p + b * a.q.sb + h * a.q.sh + i0 * a.q.sr,
                              a.q.sr, nv, a.q.vec);
        load_tile<BQ, D, NTH>(Gs + buf * BQ * LD,
                              a.go.p + b * a.go.sb + h * a.go.sh + i0 * a.go.sr, a.go.sr, nv,
                              a.go.vec);
        if (tid < BQ) {
            float l2 = pos_inf(), dd = 0.f;
            if (tid < nv) {
                const int64_t row = (b * a.hq + h) * a.tq + i0 + tid;
                const float lv = a.lse[row];
                l2 = lv == neg_inf() ? pos_inf() : lv * TC_LOG2E;
                dd = a.di[row];
            }
            Ls[buf * BQ + tid] = l2;
            Ds[buf * BQ + tid] = dd;
        }
    };
    if (nsteps > 0) issue(0, 0);
    cp_async_commit();

    float dk[DT][4], dv[DT][4];
#pragma unroll
    for (int dt = 0; dt < DT; dt++)
#pragma unroll
        for (int e = 0; e < 4; e++) dk[dt][e] = dv[dt][e] = 0.f;
    uint32_t kf[KS][4], vf[KS][4];
    const int wk = warp * 16; /* the warp's key rows in the block */
    const int a_off = (lane & 15) * LD + (lane >> 4) * 8;
    const int b_off = ((lane & 7) + ((lane >> 4) << 3)) * LD + ((lane >> 3) & 1) * 8;
    const int bt_off = ((lane & 7) + (((lane >> 3) & 1) << 3)) * LD + (lane >> 4) * 8;
    /* A operand dS (query x key) from Ss, stored as dS^T [key][query]: transposed load */
    const int st_off = ((lane & 7) + ((lane >> 4) << 3)) * LDS + ((lane >> 3) & 1) * 8;
    const int qw = warp % QW, dpart = warp / QW; /* the warp's dQ rows and columns */
    const float sl2 = a.scale_log2;

    for (int64_t st = 0; st < nsteps; st++) {
        const int buf = (int)(st & 1);
        const int64_t h = hk * a.G + st / nq, i0 = (qb0 + st % nq) * BQ;
        /* every warp is past step st - 1 (the barrier closing it): its buffers take step st + 1 */
        if (st + 1 < nsteps) issue(st + 1, buf ^ 1);
        cp_async_commit();
        cp_async_wait<1>(); /* K, V and step st's tiles */
        __syncthreads();
        if (KVREG && st == 0) {
#pragma unroll
            for (int ks = 0; ks < KS; ks++) {
                ldsm_x4(kf[ks], Ks + wk * LD + ks * 16 + a_off);
                ldsm_x4(vf[ks], Vs + wk * LD + ks * 16 + a_off);
            }
        }
        const uint16_t *Qc = Qs + buf * BQ * LD, *Gc = Gs + buf * BQ * LD;
        const float *Lc = Ls + buf * BQ, *Dc = Ds + buf * BQ;

        /* S^T = K Q^T and dP^T = V dO^T: 16 keys x BQ queries per warp */
        float sp[QT][4], dp[QT][4];
#pragma unroll
        for (int nt = 0; nt < QT; nt++)
#pragma unroll
            for (int e = 0; e < 4; e++) sp[nt][e] = dp[nt][e] = 0.f;
#pragma unroll
        for (int ks = 0; ks < KS; ks++) {
            uint32_t ka[4], va[4];
            if (KVREG) {
#pragma unroll
                for (int u = 0; u < 4; u++) ka[u] = kf[ks][u], va[u] = vf[ks][u];
            } else {
                ldsm_x4(ka, Ks + wk * LD + ks * 16 + a_off);
                ldsm_x4(va, Vs + wk * LD + ks * 16 + a_off);
            }
#pragma unroll
            for (int np = 0; np < QT / 2; np++) {
                uint32_t qb[4], gb[4];
                ldsm_x4(qb, Qc + np * 16 * LD + ks * 16 + b_off);
                mma16816<BF>(sp[2 * np], ka, qb[0], qb[1]);
                mma16816<BF>(sp[2 * np + 1], ka, qb[2], qb[3]);
                ldsm_x4(gb, Gc + np * 16 * LD + ks * 16 + b_off);
                mma16816<BF>(dp[2 * np], va, gb[0], gb[1]);
                mma16816<BF>(dp[2 * np + 1], va, gb[2], gb[3]);
            }
        }

        /* P^T from the saved lse, dS^T = P^T (dP^T - D); hidden (key, query) pairs get 0.
         * Element (nt, e): key wk + gr + 8 (e / 2), query nt * 8 + 2 qd + e % 2. */
        const int64_t klim64 = a.tk - j0, diag64 = i0 + off - j0;
        const bool masked = klim64 < BK || (a.causal && diag64 < BK - 1);
        const int klim = (int)min(klim64, (int64_t)BK);
        const int diag = (int)max(min(diag64, (int64_t)BK), (int64_t)(-(BK + BQ)));
        const uint64_t ebase =
            DROP ? ((uint64_t)(b * a.hq + h) * (uint64_t)a.tq + (uint64_t)i0) * (uint64_t)a.tk +
                       (uint64_t)j0
                 : 0;
#pragma unroll
        for (int nt = 0; nt < QT; nt++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const int jl = wk + gr + (e >> 1) * 8, il = nt * 8 + qd * 2 + (e & 1);
                float p = exp2f(sp[nt][e] * sl2 - Lc[il]);
                if (masked && (jl >= klim || (a.causal && jl > il + diag))) p = 0.f;
                float dpv = dp[nt][e], pw = p;
                if (DROP && p != 0.f) {
                    const float kd =
                        drop_keep(a, ebase + (uint64_t)il * (uint64_t)a.tk + (uint64_t)jl)
                            ? a.drop_scale
                            : 0.f;
                    dpv *= kd;
                    pw = p * kd;
                }
                dp[nt][e] = p * (dpv - Dc[il]);
                sp[nt][e] = pw;
            }

        /* dV += P^T dO, dK += dS^T Q (A operands from the accumulators, B by transposed loads
         * of the [query][dim] tiles); dS^T goes to Ss for dQ */
#pragma unroll
        for (int kk = 0; kk < BQ / 16; kk++) {
            uint32_t pa[4], sa[4];
            pa[0] = Cvt<BF>::pack(sp[2 * kk][0], sp[2 * kk][1]);
            pa[1] = Cvt<BF>::pack(sp[2 * kk][2], sp[2 * kk][3]);
            pa[2] = Cvt<BF>::pack(sp[2 * kk + 1][0], sp[2 * kk + 1][1]);
            pa[3] = Cvt<BF>::pack(sp[2 * kk + 1][2], sp[2 * kk + 1][3]);
            sa[0] = Cvt<BF>::pack(dp[2 * kk][0], dp[2 * kk][1]);
            sa[1] = Cvt<BF>::pack(dp[2 * kk][2], dp[2 * kk][3]);
            sa[2] = Cvt<BF>::pack(dp[2 * kk + 1][0], dp[2 * kk + 1][1]);
            sa[3] = Cvt<BF>::pack(dp[2 * kk + 1][2], dp[2 * kk + 1][3]);
            *(uint32_t *)(Ss + (wk + gr) * LDS + kk * 16 + qd * 2) = sa[0];
            *(uint32_t *)(Ss + (wk + gr + 8) * LDS + kk * 16 + qd * 2) = sa[1];
            *(uint32_t *)(Ss + (wk + gr) * LDS + kk * 16 + 8 + qd * 2) = sa[2];
            *(uint32_t *)(Ss + (wk + gr + 8) * LDS + kk * 16 + 8 + qd * 2) = sa[3];
#pragma unroll
            for (int dd = 0; dd < D / 16; dd++) {
                uint32_t gb[4], qb[4];
                ldsm_x4_trans(gb, Gc + kk * 16 * LD + dd * 16 + bt_off);
                mma16816<BF>(dv[2 * dd], pa, gb[0], gb[1]);
                mma16816<BF>(dv[2 * dd + 1], pa, gb[2], gb[3]);
                ldsm_x4_trans(qb, Qc + kk * 16 * LD + dd * 16 + bt_off);
                mma16816<BF>(dk[2 * dd], sa, qb[0], qb[1]);
                mma16816<BF>(dk[2 * dd + 1], sa, qb[2], qb[3]);
            }
        }
        __syncthreads(); /* Ss complete */

        /* dQ (BQ x D) += dS (BQ x BK) K (BK x D): warp (qw, dpart) owns query rows 16 qw.. and
         * columns DW dpart.. */
        {
            float dq[DWT][4];
#pragma unroll
            for (int dt = 0; dt < DWT; dt++)
#pragma unroll
                for (int e = 0; e < 4; e++) dq[dt][e] = 0.f;
#pragma unroll
            for (int kk = 0; kk < BK / 16; kk++) {
                uint32_t sa[4];
                ldsm_x4_trans(sa, Ss + kk * 16 * LDS + qw * 16 + st_off);
#pragma unroll
                for (int dd = 0; dd < DW / 16; dd++) {
                    uint32_t kb[4];
                    ldsm_x4_trans(kb, Ks + kk * 16 * LD + dpart * DW + dd * 16 + bt_off);
                    mma16816<BF>(dq[2 * dd], sa, kb[0], kb[1]);
                    mma16816<BF>(dq[2 * dd + 1], sa, kb[2], kb[3]);
                }
            }
            float *dqrow = a.dqacc + ((b * a.hq + h) * a.tq + i0) * D + dpart * DW + qd * 2;
#pragma unroll
            for (int r = 0; r < 2; r++) {
                const int il = qw * 16 + gr + 8 * r;
                if (i0 + il >= a.tq) continue;
#pragma unroll
                for (int dt = 0; dt < DWT; dt++)
                    atomic_add2(dqrow + (int64_t)il * D + dt * 8, dq[dt][2 * r], dq[dt][2 * r + 1]);
            }
        }
        __syncthreads(); /* Ss and this step's buffers are free */
    }

    /* epilogue: the warp's rows of Ks / Vs stage dK (times scale) and dV */
    cp_async_wait<0>();
    __syncthreads();
#pragma unroll
    for (int dt = 0; dt < DT; dt++)
#pragma unroll
        for (int r = 0; r < 2; r++) {
            const int row = wk + gr + 8 * r;
            *(uint32_t *)(Ks + row * LD + dt * 8 + qd * 2) =
                Cvt<BF>::pack(dk[dt][2 * r] * a.scale, dk[dt][2 * r + 1] * a.scale);
            *(uint32_t *)(Vs + row * LD + dt * 8 + qd * 2) =
                Cvt<BF>::pack(dv[dt][2 * r], dv[dt][2 * r + 1]);
        }
    __syncwarp();
    const int nvalid = max(0, min(16, bk - wk));
    store_rows_warp<16, D>(a.dk.p + b * a.dk.sb + hk * a.dk.sh + (j0 + wk) * a.dk.sr, a.dk.sr,
                           Ks + wk * LD, nvalid, a.dk.vec, lane);
    store_rows_warp<16, D>(a.dv.p + b * a.dv.sb + hk * a.dv.sh + (j0 + wk) * a.dv.sr, a.dv.sr,
                           Vs + wk * LD, nvalid, a.dv.vec, lane);
}

/* ---- host side -------------------------------------------------------------------------------- */
size_t align_up(size_t n)
{
    return (n + TC_SCRATCH_ALIGN - 1) / TC_SCRATCH_ALIGN * TC_SCRATCH_ALIGN;
}

/* nullptr when the tensor-core path takes the problem, else why not */
const char *tc_reason(int dtype, const bcu_attn_geom *g, bool has_mask)
{
    if (dtype != BCU_BF16 && dtype != BCU_F16) return "the tensor-core kernel takes bf16 or f16";
    if (has_mask) return "the tensor-core kernel takes no mask (causal only)";
    if (g->d != g->dv) return "the tensor-core kernel needs D == Dv";
    if (g->d != 64 && g->d != 128) return "the tensor-core kernel takes head dims 64 and 128";
    if (g->batch < 0 || g->hq < 0 || g->tq < 0 || g->tk < 0) return "negative sizes";
    if (g->hkv < 1 || g->hq % g->hkv != 0) return "query heads are not a multiple of kv heads";
    if (!(g->dropout_p < 1.0) || g->dropout_p != g->dropout_p)
        return "the tensor-core kernel takes dropout_p < 1";
    int dev = 0, major = 0;
    if (cudaGetDevice(&dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess) {
        cudaGetLastError();
        return "no current CUDA device";
    }
    if (major < 8) return "the tensor-core kernel needs compute capability 8.0 or newer";
    return nullptr;
}

/* The view as an Op after checking its shape (n0, n1, n2, d) and last stride 1. */
int op_of(const char *fn, const char *name, const bcu_view *t, int dtype, int64_t n0, int64_t n1,
          int64_t n2, int64_t d, Op *op)
{
    if (!t || (!t->data && n0 * n1 * n2 * d != 0))
        return unsupported("%s: %s is missing", fn, name);
    if (t->ndim != 4 || t->shape[0] != n0 || t->shape[1] != n1 || t->shape[2] != n2 ||
        t->shape[3] != d)
        return unsupported("%s: %s must be (%lld, %lld, %lld, %lld)", fn, name, (long long)n0,
                           (long long)n1, (long long)n2, (long long)d);
    if (t->dtype != dtype)
        return unsupported("%s: %s is %s, expected %s", fn, name, bcu_dtype_name(t->dtype),
                           bcu_dtype_name(dtype));
    if (d > 1 && t->strides[3] != 1)
        return unsupported("%s: %s has last stride %lld, the kernel needs 1", fn, name,
                           (long long)t->strides[3]);
    op->p = (uint16_t *)t->data;
    op->sb = t->strides[0], op->sh = t->strides[1], op->sr = t->strides[2];
    op->vec = (uintptr_t)t->data % 16 == 0;
    for (int k = 0; k < 3; k++)
        if (t->shape[k] != 1 && t->strides[k] % 8 != 0) op->vec = false;
    return BCU_OK;
}

int check_geom(const char *fn, int dtype, const bcu_attn_geom *g)
{
    const char *why = tc_reason(dtype, g, false);
    if (why) return unsupported("%s: %s (dtype %s, D %lld, Dv %lld)", fn, why,
                                bcu_dtype_name(dtype), (long long)g->d, (long long)g->dv);
    return BCU_OK;
}

TcArgs args_of(const bcu_attn_geom *g)
{
    TcArgs a;
    memset(&a, 0, sizeof a);
    a.batch = g->batch, a.hq = g->hq, a.hkv = g->hkv, a.G = g->hq / g->hkv;
    a.tq = g->tq, a.tk = g->tk;
    a.scale = (float)g->scale;
    a.scale_log2 = (float)(g->scale * 1.4426950408889634);
    a.causal = g->causal;
    if (g->dropout_p > 0) {
        a.drop_threshold = (uint32_t)ceil(g->dropout_p * 16777216.0);
        a.drop_scale = (float)(1.0 / (1.0 - g->dropout_p));
    }
    a.seed = g->seed, a.counter = g->counter;
    return a;
}

int sm_count()
{
    int dev = 0, n = 0;
    if (cudaGetDevice(&dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess || n < 1) {
        cudaGetLastError();
        return 1;
    }
    return n;
}

typedef void (*tc_kernel)(TcArgs);

int launch(tc_kernel kern, int64_t blocks, int threads, size_t smem, bcu_stream s,
           const TcArgs &a, const char *what)
{
    if (blocks <= 0) return BCU_OK;
    if (blocks > INT_MAX)
        return unsupported("%s: %lld thread blocks are more than one launch takes", what,
                           (long long)blocks);
    if (smem > 48 * 1024) {
        cudaError_t e = cudaFuncSetAttribute((const void *)kern,
                                             cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
        if (e != cudaSuccess) {
            cudaGetLastError();
            unsupported("%s: cudaFuncSetAttribute(%zu bytes of shared memory) failed: %s", what,
                        smem, cudaGetErrorString(e));
            return BCU_ERR_INTERNAL;
        }
    }
    kern<<<(unsigned)blocks, threads, smem, s>>>(a);
    return launch_status(what);
}

template <int D, int MT, bool BF, bool DROP> int forward_launch(bcu_stream s, const TcArgs &a)
{
    constexpr int BR = 64 * MT, LD = D + 8;
    const size_t smem = sizeof(uint16_t) * (size_t)(BR + 4 * 64) * LD;
    return launch(attn_tc_fwd<D, MT, BF, DROP>, a.batch * a.hq * ((a.tq + BR - 1) / BR), 128,
                  smem, s, a, "attention (tensor cores)");
}

template <int D, bool BF> int forward_d(bcu_stream s, const TcArgs &a)
{
    if (a.drop_threshold > 0) return forward_launch<D, 1, BF, true>(s, a);
    if constexpr (D == 64) { /* 128-row blocks unless the rows are few */
        if (tc_fwd_tiles == 2 || (tc_fwd_tiles == 0 && a.tq > 64))
            return forward_launch<64, 2, BF, false>(s, a);
    }
    return forward_launch<D, 1, BF, false>(s, a);
}

template <int D, int NW, int BQ, bool BF, bool DROP>
int backward_main(bcu_stream s, const TcArgs &a)
{
    constexpr int BK = 16 * NW, LD = D + 8, LDS = BQ + 8;
    const size_t smem = sizeof(uint16_t) * ((size_t)(2 * BK + 4 * BQ) * LD + (size_t)BK * LDS) +
                        sizeof(float) * 4 * BQ;
    return launch(attn_tc_bwd<D, NW, BQ, BF, DROP>, a.batch * a.hkv * ((a.tk + BK - 1) / BK),
                  NW * 32, smem, s, a, "attention backward (tensor cores)");
}

template <int D, bool BF> int backward_d(bcu_stream s, const TcArgs &a)
{
    const int64_t rows = a.batch * a.hq * a.tq;
    if (rows > 0) {
        constexpr int RPB = 256 / (D / 8);
        int64_t blocks = (rows + RPB - 1) / RPB;
        if (blocks > 65535 * 8) blocks = 65535 * 8;
        attn_tc_bwd_pre<D, BF><<<(unsigned)blocks, 256, 0, s>>>(a);
        int rc = launch_status("attention backward D_i (tensor cores)");
        if (rc) return rc;
    }
    if (a.tk > 0) {
        int rc;
        if (a.drop_threshold > 0) {
            rc = backward_main<D, 4, D == 64 ? 64 : 32, BF, true>(s, a);
        } else if constexpr (D == 64) {
            /* 128-key blocks (half the dq atomics) unless that leaves SMs idle */
            const bool wide = tc_bwd_warps == 8 ||
                              (tc_bwd_warps == 0 &&
                               a.batch * a.hkv * ((a.tk + 127) / 128) >= (int64_t)sm_count());
            rc = wide ? backward_main<64, 8, 64, BF, false>(s, a)
                      : backward_main<64, 4, 64, BF, false>(s, a);
        } else {
            rc = backward_main<D, 4, 32, BF, false>(s, a);
        }
        if (rc) return rc;
    }
    if (rows > 0) {
        const int64_t n = rows * (D / 8);
        int64_t blocks = (n + 255) / 256;
        if (blocks > 65535 * 8) blocks = 65535 * 8;
        attn_tc_bwd_dq<D, BF><<<(unsigned)blocks, 256, 0, s>>>(a);
        return launch_status("attention backward dq (tensor cores)");
    }
    return BCU_OK;
}

} // namespace

/* ---- entry points ----------------------------------------------------------------------------- */
extern "C" int bcu_attn_tc_supported(int dtype, const bcu_attn_geom *g, int has_mask)
{
    return g && !tc_reason(dtype, g, has_mask != 0) ? 1 : 0;
}

extern "C" void bcu_attn_tc_set_variant(int fwd_tiles, int bwd_warps)
{
    tc_fwd_tiles = fwd_tiles;
    tc_bwd_warps = bwd_warps;
}

extern "C" int bcu_attn_tc_forward(bcu_stream s, const bcu_view *q, const bcu_view *k,
                                   const bcu_view *v, const bcu_view *out, const bcu_view *lse,
                                   const bcu_attn_geom *g)
{
    static const char fn[] = "attention (tensor cores)";
    if (!g || !q) return unsupported("%s: missing geometry or q", fn);
    const int dt = q->dtype;
    int rc = check_geom(fn, dt, g);
    if (rc) return rc;
    TcArgs a = args_of(g);
    if ((rc = op_of(fn, "q", q, dt, g->batch, g->hq, g->tq, g->d, &a.q)) ||
        (rc = op_of(fn, "k", k, dt, g->batch, g->hkv, g->tk, g->d, &a.k)) ||
        (rc = op_of(fn, "v", v, dt, g->batch, g->hkv, g->tk, g->d, &a.v)) ||
        (rc = op_of(fn, "out", out, dt, g->batch, g->hq, g->tq, g->d, &a.o)))
        return rc;
    if (!lse || lse->dtype != BCU_F32 || (!lse->data && g->batch * g->hq * g->tq != 0))
        return unsupported("%s: lse must be an f32 (batch, hq, tq) tensor", fn);
    a.lse = (float *)lse->data;
    if (g->batch * g->hq * g->tq == 0) return BCU_OK;
    const bool bf = dt == BCU_BF16;
    if (g->d == 64) return bf ? forward_d<64, true>(s, a) : forward_d<64, false>(s, a);
    return bf ? forward_d<128, true>(s, a) : forward_d<128, false>(s, a);
}

extern "C" size_t bcu_attn_tc_backward_scratch(int dtype, const bcu_attn_geom *g)
{
    (void)dtype;
    if (!g || g->batch < 0 || g->hq < 0 || g->tq < 0 || g->d < 0) return 0;
    const size_t rows = (size_t)(g->batch * g->hq * g->tq);
    if (rows == 0) return 0;
    return align_up(sizeof(float) * rows) + align_up(sizeof(float) * rows * (size_t)g->d);
}

extern "C" int bcu_attn_tc_backward(bcu_stream s, const bcu_view *q, const bcu_view *k,
                                    const bcu_view *v, const bcu_view *out, const bcu_view *dout,
                                    const bcu_view *lse, const bcu_view *dq, const bcu_view *dk,
                                    const bcu_view *dv, const bcu_attn_geom *g, void *scratch,
                                    size_t scratch_bytes)
{
    static const char fn[] = "attention backward (tensor cores)";
    if (!g || !q) return unsupported("%s: missing geometry or q", fn);
    const int dt = q->dtype;
    int rc = check_geom(fn, dt, g);
    if (rc) return rc;
    TcArgs a = args_of(g);
    if ((rc = op_of(fn, "q", q, dt, g->batch, g->hq, g->tq, g->d, &a.q)) ||
        (rc = op_of(fn, "k", k, dt, g->batch, g->hkv, g->tk, g->d, &a.k)) ||
        (rc = op_of(fn, "v", v, dt, g->batch, g->hkv, g->tk, g->d, &a.v)) ||
        (rc = op_of(fn, "out", out, dt, g->batch, g->hq, g->tq, g->d, &a.o)) ||
        (rc = op_of(fn, "dout", dout, dt, g->batch, g->hq, g->tq, g->d, &a.go)) ||
        (rc = op_of(fn, "dq", dq, dt, g->batch, g->hq, g->tq, g->d, &a.dq)) ||
        (rc = op_of(fn, "dk", dk, dt, g->batch, g->hkv, g->tk, g->d, &a.dk)) ||
        (rc = op_of(fn, "dv", dv, dt, g->batch, g->hkv, g->tk, g->d, &a.dv)))
        return rc;
    const size_t rows = (size_t)(g->batch * g->hq * g->tq);
    if (!lse || lse->dtype != BCU_F32 || (!lse->data && rows != 0))
        return unsupported("%s: lse must be an f32 (batch, hq, tq) tensor", fn);
    a.lse = (float *)lse->data;
    const size_t need = bcu_attn_tc_backward_scratch(dt, g);
    if (scratch_bytes < need || (need > 0 && (!scratch || (uintptr_t)scratch % 16 != 0))) {
        unsupported("%s: %zu bytes of scratch at %p, %zu (16-byte aligned) needed", fn,
                    scratch_bytes, scratch, need);
        return BCU_ERR_INTERNAL;
    }
    if (g->batch * g->hkv == 0) return BCU_OK;
    if (need > 0) {
        a.di = (float *)scratch;
        a.dqacc = (float *)((char *)scratch + align_up(sizeof(float) * rows));
    }
    const bool bf = dt == BCU_BF16;
    if (g->d == 64) return bf ? backward_d<64, true>(s, a) : backward_d<64, false>(s, a);
    return bf ? backward_d<128, true>(s, a) : backward_d<128, false>(s, a);
}
