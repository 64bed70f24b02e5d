/* bench/gpu/attn_tc_check.cu — standalone check and benchmark of the tensor-core flash attention
 * (src/backend_cuda/cuda_attention_tc.cu), without libborn:
 *
 *   nvcc -O3 -std=c++17 -arch=sm_90 -I src bench/gpu/attn_tc_check.cu \
 *        src/backend_cuda/cuda_attention_tc.cu src/backend_cuda/cuda_common.cu \
 *        -o /tmp/attn_tc_check
 *   /tmp/attn_tc_check          # checks, then timings
 *   /tmp/attn_tc_check check    # checks only (exit status 1 on any FAIL)
 *   /tmp/attn_tc_check bench    # timings only
 *
 * (a) Correctness: random bf16 / f16 q, k, v, dout on the device; the kernels' out, lse, dq, dk,
 *     dv against a plain reference computed on the GPU by naive kernels that materialise the
 *     (tq, tk) scores (one thread per score, per output element; double sums), on f32 copies of
 *     the same 16-bit values. Outputs are poisoned with NaN before each run, so an element the
 *     kernels forget to write fails. Per case: max |err| / max |ref| of out, dq, dk, dv and max
 *     |err| of lse (rows that see no key must give -inf in both).
 * (b) Timing: cudaEvent medians of 20 runs after warm-up, one JSON line per shape and mode.
 *
 * The plugin's error helpers (cuda_common.cu) are not linked here; this file defines the two the
 * kernels' host code calls, unsupported() and launch_status(), and bcu_dtype_name(). */
#include "backend_cuda/cuda_attention_tc.h"
#include "backend_cuda/cuda_common.cuh"

#include <algorithm>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vector>


#define CK(call)                                                                                   \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        if (e_ != cudaSuccess) {                                                                   \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(e_)); \
            exit(2);                                                                               \
        }                                                                                          \
    } while (0)

static unsigned grid_of(int64_t n)
{
    int64_t b = (n + 255) / 256;
    if (b < 1) b = 1;
    if (b > 65535 * 8) b = 65535 * 8;
    return (unsigned)b;
}

#define LOOP(i, n)                                                                                 \
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n);                      \
         i += (int64_t)gridDim.x * blockDim.x)

/* ---- 16-bit values -------------------------------------------------------------------------- */
__device__ float half_to_f(uint16_t x, bool bf)
{
    return bf ? __uint_as_float((uint32_t)x << 16) : __half2float(__ushort_as_half(x));
}

__device__ uint16_t f_to_half(float x, bool bf)
{
    return bf ? __bfloat16_as_ushort(__float2bfloat16_rn(x)) : __half_as_ushort(__float2half_rn(x));
}

/* buf[i] = amp * uniform(-1, 1) rounded to the dtype, from Philox block i of seed */
__global__ void fill_random(uint16_t *buf, int64_t n, uint64_t seed, float amp, bool bf)
{
    LOOP(i, n)
    {
        const uint32_t x = bcu_philox4x32_10(seed, (uint64_t)i).v[0];
        const float u = (float)(x >> 8) * 0x1p-24f * 2.f - 1.f;
        buf[i] = f_to_half(amp * u, bf);
    }
}

__global__ void fill_u16(uint16_t *buf, int64_t n, uint16_t v)
{
    LOOP(i, n) buf[i] = v;
}

__global__ void fill_f32(float *buf, int64_t n, float v)
{
    LOOP(i, n) buf[i] = v;
}

/* A (n0, n1, n2, d) 16-bit tensor in one of three layouts. */
enum { LAYOUT_BHTD, LAYOUT_BTHD, LAYOUT_PADDED };

struct Tensor {
    uint16_t *buf = nullptr;
    int64_t alloc = 0; /* elements */
    bcu_view view;
};

static Tensor make_tensor(int dtype, int64_t n0, int64_t n1, int64_t n2, int64_t d, int layout)
{
    Tensor t;
    memset(&t.view, 0, sizeof t.view);
    t.view.dtype = dtype;
    t.view.ndim = 4;
    t.view.shape[0] = n0, t.view.shape[1] = n1, t.view.shape[2] = n2, t.view.shape[3] = d;
    t.view.strides[3] = 1;
    if (layout == LAYOUT_BTHD) { /* (n0, n2, n1, d) memory, the (B, T, H, D) of a qkv linear */
        t.view.strides[2] = n1 * d, t.view.strides[1] = d, t.view.strides[0] = n2 * n1 * d;
        t.alloc = n0 * n1 * n2 * d;
    } else {
        const int64_t pitch = layout == LAYOUT_PADDED ? d + 3 : d; /* rows not 16-byte aligned */
        t.view.strides[2] = pitch, t.view.strides[1] = n2 * pitch, t.view.strides[0] = n1 * n2 * pitch;
        t.alloc = n0 * n1 * n2 * pitch;
    }
    CK(cudaMalloc(&t.buf, (size_t)std::max<int64_t>(t.alloc, 1) * 2));
    t.view.data = t.buf;
    return t;
}

static void free_tensor(Tensor &t)
{
    if (t.buf) CK(cudaFree(t.buf));
    t.buf = nullptr;
}

/* dst (n0, n1, n2, d) contiguous f32 = the view's values */
__global__ void gather_f32(float *dst, const uint16_t *src, int64_t n1, int64_t n2, int64_t d,
                           int64_t s0, int64_t s1, int64_t s2, int64_t n, bool bf)
{
    LOOP(x, n)
    {
        const int64_t c = x % d, i2 = (x / d) % n2, i1 = (x / d / n2) % n1, i0 = x / d / n2 / n1;
        dst[x] = half_to_f(src[i0 * s0 + i1 * s1 + i2 * s2 + c], bf);
    }
}

static std::vector<float> to_host_f32(const Tensor &t, float *scratch_dev)
{
    const bcu_view &v = t.view;
    const int64_t n = v.shape[0] * v.shape[1] * v.shape[2] * v.shape[3];
    std::vector<float> h((size_t)n);
    if (n == 0) return h;
    gather_f32<<<grid_of(n), 256>>>(scratch_dev, t.buf, v.shape[1], v.shape[2], v.shape[3],
                                    v.strides[0], v.strides[1], v.strides[2], n,
                                    v.dtype == BCU_BF16);
    CK(cudaGetLastError());
    CK(cudaMemcpy(h.data(), scratch_dev, (size_t)n * 4, cudaMemcpyDeviceToHost));
    return h;
}

/* ---- the naive reference ---------------------------------------------------------------------- */
struct RefGeom {
    int64_t B, hq, hkv, G, tq, tk, D;
    double scale, p;
    bool causal;
    uint64_t seed, counter;
};

__device__ bool ref_visible(const RefGeom &g, int64_t i, int64_t j)
{
    return !g.causal || j <= i + (g.tk - g.tq);
}

/* the dropout multiplier of weight (b, h, i, j), straight from the contract's wording */
__device__ double ref_drop(const RefGeom &g, int64_t b, int64_t h, int64_t i, int64_t j)
{
    if (g.p <= 0) return 1.0;
    const uint64_t e = (uint64_t)(((b * g.hq + h) * g.tq + i) * g.tk + j);
    const BcuPhilox r = bcu_philox4x32_10(g.seed, g.counter + e / 4);
    const uint32_t x = r.v[e % 4];
    const float u = (float)(x >> 8) * 0x1p-24f;
    return (double)u < g.p ? 0.0 : 1.0 / (1.0 - g.p);
}

/* S (B hq, tq, tk) = scale q k^T, -inf where hidden */
__global__ void ref_scores(const float *Q, const float *K, float *S, RefGeom g)
{
    LOOP(x, g.B * g.hq * g.tq * g.tk)
    {
        const int64_t j = x % g.tk, i = (x / g.tk) % g.tq, bh = x / g.tk / g.tq;
        const int64_t b = bh / g.hq, h = bh % g.hq, hk = h / g.G;
        if (!ref_visible(g, i, j)) {
            S[x] = -INFINITY;
            continue;
        }
        const float *q = Q + (bh * g.tq + i) * g.D, *k = K + ((b * g.hkv + hk) * g.tk + j) * g.D;
        double acc = 0;
        for (int64_t c = 0; c < g.D; c++) acc += (double)q[c] * (double)k[c];
        S[x] = (float)(acc * g.scale);
    }
}

/* one thread per row: S → P = softmax (0 for a row that sees nothing), lse */
__global__ void ref_softmax(float *S, float *lse, RefGeom g)
{
    LOOP(row, g.B * g.hq * g.tq)
    {
        float *s = S + row * g.tk;
        double m = -INFINITY;
        for (int64_t j = 0; j < g.tk; j++) m = fmax(m, (double)s[j]);
        if (m == -INFINITY) {
            lse[row] = -INFINITY;
            for (int64_t j = 0; j < g.tk; j++) s[j] = 0.f;
            continue;
        }
        double sum = 0;
        for (int64_t j = 0; j < g.tk; j++) sum += exp((double)s[j] - m);
        const double L = m + log(sum);
        lse[row] = (float)L;
        for (int64_t j = 0; j < g.tk; j++) s[j] = (float)exp((double)s[j] - L);
    }
}

/* O (B hq, tq, D) = dropout(P) V */
__global__ void ref_out(const float *P, const float *V, float *O, RefGeom g)
{
    LOOP(x, g.B * g.hq * g.tq * g.D)
    {
        const int64_t c = x % g.D, i = (x / g.D) % g.tq, bh = x / g.D / g.tq;
        const int64_t b = bh / g.hq, h = bh % g.hq, hk = h / g.G;
        double acc = 0;
        for (int64_t j = 0; j < g.tk; j++)
            acc += (double)P[(bh * g.tq + i) * g.tk + j] * ref_drop(g, b, h, i, j) *
                   (double)V[((b * g.hkv + hk) * g.tk + j) * g.D + c];
        O[x] = (float)acc;
    }
}

/* dP (B hq, tq, tk) = dropout mask * (dO v^T) — the gradient of the loss wrt P */
__global__ void ref_dp(const float *dO, const float *V, float *dP, RefGeom g)
{
    LOOP(x, g.B * g.hq * g.tq * g.tk)
    {
        const int64_t j = x % g.tk, i = (x / g.tk) % g.tq, bh = x / g.tk / g.tq;
        const int64_t b = bh / g.hq, h = bh % g.hq, hk = h / g.G;
        const float *go = dO + (bh * g.tq + i) * g.D, *v = V + ((b * g.hkv + hk) * g.tk + j) * g.D;
        double acc = 0;
        for (int64_t c = 0; c < g.D; c++) acc += (double)go[c] * (double)v[c];
        dP[x] = (float)(acc * ref_drop(g, b, h, i, j));
    }
}

/* dP → dS = P (dP - sum_j P dP), one thread per row */
__global__ void ref_ds(const float *P, float *dP, RefGeom g)
{
    LOOP(row, g.B * g.hq * g.tq)
    {
        const float *p = P + row * g.tk;
        float *d = dP + row * g.tk;
        double s = 0;
        for (int64_t j = 0; j < g.tk; j++) s += (double)p[j] * (double)d[j];
        for (int64_t j = 0; j < g.tk; j++) d[j] = (float)((double)p[j] * ((double)d[j] - s));
    }
}

/* dQ (B hq, tq, D) = scale dS K */
__global__ void ref_dq(const float *dS, const float *K, float *dQ, RefGeom g)
{
    LOOP(x, g.B * g.hq * g.tq * g.D)
    {
        const int64_t c = x % g.D, i = (x / g.D) % g.tq, bh = x / g.D / g.tq;
        const int64_t b = bh / g.hq, h = bh % g.hq, hk = h / g.G;
        double acc = 0;
        for (int64_t j = 0; j < g.tk; j++)
            acc += (double)dS[(bh * g.tq + i) * g.tk + j] *
                   (double)K[((b * g.hkv + hk) * g.tk + j) * g.D + c];
        dQ[x] = (float)(acc * g.scale);
    }
}

/* dK (B hkv, tk, D) = scale sum over the group's heads of dS^T Q; dV likewise of dropout(P)^T dO */
__global__ void ref_dkdv(const float *P, const float *dS, const float *Q, const float *dO,
                         float *dK, float *dV, RefGeom g)
{
    LOOP(x, g.B * g.hkv * g.tk * g.D)
    {
        const int64_t c = x % g.D, j = (x / g.D) % g.tk, bhk = x / g.D / g.tk;
        const int64_t b = bhk / g.hkv, hk = bhk % g.hkv;
        double ak = 0, av = 0;
        for (int64_t gg = 0; gg < g.G; gg++) {
            const int64_t h = hk * g.G + gg, bh = b * g.hq + h;
            for (int64_t i = 0; i < g.tq; i++) {
                const int64_t e = (bh * g.tq + i) * g.tk + j;
                ak += (double)dS[e] * (double)Q[(bh * g.tq + i) * g.D + c];
                av += (double)P[e] * ref_drop(g, b, h, i, j) * (double)dO[(bh * g.tq + i) * g.D + c];
            }
        }
        dK[x] = (float)(ak * g.scale);
        dV[x] = (float)av;
    }
}

/* ---- one check case ---------------------------------------------------------------------------- */
struct Case {
    int64_t B, hq, hkv, tq, tk, D;
    bool causal;
    int dtype;
    double p;
    int layout; /* of q, k, v, out, dout (dq, dk, dv: contiguous, or padded with LAYOUT_PADDED) */
};

struct Err {
    double max_abs = 0, ref_max = 0;
    bool nan = false, inf_mismatch = false;
    double rel() const { return max_abs / (ref_max > 0 ? ref_max : 1.0); }
};

static Err compare(const std::vector<float> &got, const std::vector<float> &ref)
{
    Err e;
    for (size_t x = 0; x < ref.size(); x++) {
        const double r = ref[x], v = got[x];
        if (v != v) {
            e.nan = true;
            continue;
        }
        if (std::isinf(r) || std::isinf(v)) {
            if (r != v) e.inf_mismatch = true;
            continue;
        }
        e.ref_max = std::max(e.ref_max, fabs(r));
        e.max_abs = std::max(e.max_abs, fabs(v - r));
    }
    return e;
}

static int run_case(const Case &cs, int variant_fwd, int variant_bwd, uint64_t seed)
{
    const bool bf = cs.dtype == BCU_BF16;
    const int64_t G = cs.hq / cs.hkv;
    bcu_attn_geom g;
    memset(&g, 0, sizeof g);
    g.batch = cs.B, g.hq = cs.hq, g.hkv = cs.hkv, g.tq = cs.tq, g.tk = cs.tk, g.d = cs.D,
    g.dv = cs.D;
    g.scale = 1.0 / sqrt((double)cs.D);
    g.causal = cs.causal;
    g.dropout_p = cs.p;
    g.seed = 0x5eed0000ull + seed, g.counter = 1000 + seed;
    char name[200];
    snprintf(name, sizeof name,
             "%s B%lld hq%lld hkv%lld tq%lld tk%lld D%lld %s p%.2f layout%d var(%d,%d)",
             bf ? "bf16" : "f16", (long long)cs.B, (long long)cs.hq, (long long)cs.hkv,
             (long long)cs.tq, (long long)cs.tk, (long long)cs.D, cs.causal ? "causal" : "full",
             cs.p, cs.layout, variant_fwd, variant_bwd);
    if (!bcu_attn_tc_supported(cs.dtype, &g, 0)) {
        printf("FAIL %s: bcu_attn_tc_supported says 0\n", name);
        return 1;
    }
    bcu_attn_tc_set_variant(variant_fwd, variant_bwd);

    Tensor q = make_tensor(cs.dtype, cs.B, cs.hq, cs.tq, cs.D, cs.layout);
    Tensor k = make_tensor(cs.dtype, cs.B, cs.hkv, cs.tk, cs.D, cs.layout);
    Tensor v = make_tensor(cs.dtype, cs.B, cs.hkv, cs.tk, cs.D, cs.layout);
    Tensor o = make_tensor(cs.dtype, cs.B, cs.hq, cs.tq, cs.D, cs.layout);
    Tensor go = make_tensor(cs.dtype, cs.B, cs.hq, cs.tq, cs.D, cs.layout);
    const int glayout = cs.layout == LAYOUT_PADDED ? LAYOUT_PADDED : LAYOUT_BHTD;
    Tensor dq = make_tensor(cs.dtype, cs.B, cs.hq, cs.tq, cs.D, glayout);
    Tensor dk = make_tensor(cs.dtype, cs.B, cs.hkv, cs.tk, cs.D, glayout);
    Tensor dv = make_tensor(cs.dtype, cs.B, cs.hkv, cs.tk, cs.D, glayout);
    fill_random<<<grid_of(q.alloc), 256>>>(q.buf, q.alloc, seed * 8 + 1, 1.5f, bf);
    fill_random<<<grid_of(k.alloc), 256>>>(k.buf, k.alloc, seed * 8 + 2, 1.5f, bf);
    fill_random<<<grid_of(v.alloc), 256>>>(v.buf, v.alloc, seed * 8 + 3, 1.0f, bf);
    fill_random<<<grid_of(go.alloc), 256>>>(go.buf, go.alloc, seed * 8 + 4, 1.0f, bf);
    /* poison: 0xffff is NaN in bf16 and f16 */
    fill_u16<<<grid_of(o.alloc), 256>>>(o.buf, o.alloc, 0xffff);
    fill_u16<<<grid_of(dq.alloc), 256>>>(dq.buf, dq.alloc, 0xffff);
    fill_u16<<<grid_of(dk.alloc), 256>>>(dk.buf, dk.alloc, 0xffff);
    fill_u16<<<grid_of(dv.alloc), 256>>>(dv.buf, dv.alloc, 0xffff);
    CK(cudaGetLastError());
    const int64_t rows = cs.B * cs.hq * cs.tq;
    float *lse = nullptr;
    CK(cudaMalloc(&lse, (size_t)std::max<int64_t>(rows, 1) * 4));
    fill_f32<<<grid_of(rows), 256>>>(lse, rows, NAN);
    bcu_view lv;
    memset(&lv, 0, sizeof lv);
    lv.data = lse, lv.dtype = BCU_F32, lv.ndim = 3;
    lv.shape[0] = cs.B, lv.shape[1] = cs.hq, lv.shape[2] = cs.tq;
    lv.strides[2] = 1, lv.strides[1] = cs.tq, lv.strides[0] = cs.hq * cs.tq;
    const size_t sbytes = bcu_attn_tc_backward_scratch(cs.dtype, &g);
    void *scratch = nullptr;
    if (sbytes) CK(cudaMalloc(&scratch, sbytes));

    int rc = bcu_attn_tc_forward(nullptr, &q.view, &k.view, &v.view, &o.view, &lv, &g);
    if (rc) {
        printf("FAIL %s: forward returned %d: %s\n", name, rc, bcu_last_message());
        return 1;
    }
    rc = bcu_attn_tc_backward(nullptr, &q.view, &k.view, &v.view, &o.view, &go.view, &lv,
                              &dq.view, &dk.view, &dv.view, &g, scratch, sbytes);
    if (rc) {
        printf("FAIL %s: backward returned %d: %s\n", name, rc, bcu_last_message());
        return 1;
    }
    CK(cudaDeviceSynchronize());

    /* the reference, on f32 copies of the same values */
    RefGeom rg = {cs.B, cs.hq, cs.hkv, G, cs.tq, cs.tk, cs.D, g.scale, cs.p, cs.causal, g.seed,
                  g.counter};
    const int64_t nq = rows * cs.D, nk = cs.B * cs.hkv * cs.tk * cs.D, ns = rows * cs.tk;
    float *Qf, *Kf, *Vf, *dOf, *P, *dS, *Or, *Lr, *dQr, *dKr, *dVr, *tmp;
    CK(cudaMalloc(&Qf, (size_t)std::max<int64_t>(nq, 1) * 4));
    CK(cudaMalloc(&dOf, (size_t)std::max<int64_t>(nq, 1) * 4));
    CK(cudaMalloc(&Or, (size_t)std::max<int64_t>(nq, 1) * 4));
    CK(cudaMalloc(&dQr, (size_t)std::max<int64_t>(nq, 1) * 4));
    CK(cudaMalloc(&Kf, (size_t)std::max<int64_t>(nk, 1) * 4));
    CK(cudaMalloc(&Vf, (size_t)std::max<int64_t>(nk, 1) * 4));
    CK(cudaMalloc(&dKr, (size_t)std::max<int64_t>(nk, 1) * 4));
    CK(cudaMalloc(&dVr, (size_t)std::max<int64_t>(nk, 1) * 4));
    CK(cudaMalloc(&P, (size_t)std::max<int64_t>(ns, 1) * 4));
    CK(cudaMalloc(&dS, (size_t)std::max<int64_t>(ns, 1) * 4));
    CK(cudaMalloc(&Lr, (size_t)std::max<int64_t>(rows, 1) * 4));
    CK(cudaMalloc(&tmp, (size_t)std::max<int64_t>(std::max(nq, nk), 1) * 4));
    auto gather = [&](float *dst, const Tensor &t) {
        const bcu_view &w = t.view;
        const int64_t n = w.shape[0] * w.shape[1] * w.shape[2] * w.shape[3];
        if (n > 0)
            gather_f32<<<grid_of(n), 256>>>(dst, t.buf, w.shape[1], w.shape[2], w.shape[3],
                                            w.strides[0], w.strides[1], w.strides[2], n, bf);
    };
    gather(Qf, q), gather(Kf, k), gather(Vf, v), gather(dOf, go);
    ref_scores<<<grid_of(ns), 256>>>(Qf, Kf, P, rg);
    ref_softmax<<<grid_of(rows), 256>>>(P, Lr, rg);
    ref_out<<<grid_of(nq), 256>>>(P, Vf, Or, rg);
    ref_dp<<<grid_of(ns), 256>>>(dOf, Vf, dS, rg);
    ref_ds<<<grid_of(rows), 256>>>(P, dS, rg);
    ref_dq<<<grid_of(nq), 256>>>(dS, Kf, dQr, rg);
    ref_dkdv<<<grid_of(nk), 256>>>(P, dS, Qf, dOf, dKr, dVr, rg);
    CK(cudaGetLastError());
    CK(cudaDeviceSynchronize());

    auto host = [](const float *d, int64_t n) {
        std::vector<float> h((size_t)n);
        if (n > 0) CK(cudaMemcpy(h.data(), d, (size_t)n * 4, cudaMemcpyDeviceToHost));
        return h;
    };
    std::vector<float> lse_got = host(lse, rows), lse_ref = host(Lr, rows);
    Err eo = compare(to_host_f32(o, tmp), host(Or, nq));
    Err el = compare(lse_got, lse_ref);
    Err eq = compare(to_host_f32(dq, tmp), host(dQr, nq));
    Err ek = compare(to_host_f32(dk, tmp), host(dKr, nk));
    Err ev = compare(to_host_f32(dv, tmp), host(dVr, nk));
    /* lse: absolute error, against the scale of the values (lse is a log) */
    double lse_scale = 1.0;
    for (float x : lse_ref)
        if (!std::isinf(x)) lse_scale = std::max(lse_scale, (double)fabsf(x));
    const double tol_out = 1e-2, tol_grad = 2e-2, tol_lse = 1e-3;
    const bool ok = !eo.nan && !el.nan && !eq.nan && !ek.nan && !ev.nan && !eo.inf_mismatch &&
                    !el.inf_mismatch && !eq.inf_mismatch && !ek.inf_mismatch &&
                    !ev.inf_mismatch && eo.rel() <= tol_out && el.max_abs / lse_scale <= tol_lse &&
                    eq.rel() <= tol_grad && ek.rel() <= tol_grad && ev.rel() <= tol_grad;
    printf("%s %s: out %.2e (max %.2e)  lse %.2e  dq %.2e (max %.2e)  dk %.2e (max %.2e)  "
           "dv %.2e (max %.2e)%s%s\n",
           ok ? "PASS" : "FAIL", name, eo.rel(), eo.max_abs, el.max_abs, eq.rel(), eq.max_abs,
           ek.rel(), ek.max_abs, ev.rel(), ev.max_abs,
           eo.nan || el.nan || eq.nan || ek.nan || ev.nan ? "  [NaN/unwritten]" : "",
           eo.inf_mismatch || el.inf_mismatch || eq.inf_mismatch || ek.inf_mismatch ||
                   ev.inf_mismatch
               ? "  [inf mismatch]"
               : "");
    for (float *x : {Qf, Kf, Vf, dOf, P, dS, Or, Lr, dQr, dKr, dVr, tmp}) CK(cudaFree(x));
    CK(cudaFree(lse));
    if (scratch) CK(cudaFree(scratch));
    for (Tensor *t : {&q, &k, &v, &o, &go, &dq, &dk, &dv}) free_tensor(*t);
    return ok ? 0 : 1;
}

static int run_checks(void)
{
    const int BF = BCU_BF16, HF = BCU_F16;
    const Case cases[] = {
        /* B hq hkv tq tk D causal dtype p layout */
        {2, 4, 4, 128, 128, 64, false, BF, 0, LAYOUT_BHTD},
        {2, 4, 4, 128, 128, 64, true, BF, 0, LAYOUT_BHTD},
        {1, 2, 2, 1, 1, 64, false, BF, 0, LAYOUT_BHTD},
        {1, 2, 2, 1, 1, 128, true, BF, 0, LAYOUT_BHTD},
        {1, 2, 2, 17, 17, 64, true, BF, 0, LAYOUT_BHTD},
        {2, 3, 3, 100, 100, 128, true, BF, 0, LAYOUT_BHTD},
        {1, 2, 2, 1000, 1000, 64, true, BF, 0, LAYOUT_BHTD},
        {1, 2, 2, 1000, 1000, 128, false, BF, 0, LAYOUT_BHTD},
        {2, 8, 2, 100, 300, 64, true, BF, 0, LAYOUT_BHTD},  /* GQA, KV-cache style tq < tk */
        {1, 8, 1, 77, 200, 128, false, BF, 0, LAYOUT_BHTD}, /* MQA */
        {1, 8, 1, 130, 260, 64, true, BF, 0, LAYOUT_BHTD},  /* MQA causal */
        {1, 4, 2, 300, 100, 64, true, BF, 0, LAYOUT_BHTD},  /* tq > tk: rows that see no key */
        {1, 2, 2, 200, 33, 128, false, BF, 0, LAYOUT_BHTD},
        {1, 2, 1, 150, 70, 128, true, BF, 0, LAYOUT_BHTD},
        {3, 8, 2, 1, 517, 64, true, BF, 0, LAYOUT_BHTD}, /* decoding one token */
        {4, 2, 2, 64, 64, 128, true, BF, 0, LAYOUT_BHTD},
        {2, 4, 4, 256, 256, 64, true, HF, 0, LAYOUT_BHTD},
        {1, 6, 3, 130, 130, 128, false, HF, 0, LAYOUT_BHTD},
        {1, 4, 4, 33, 95, 64, true, HF, 0, LAYOUT_BHTD},
        {2, 4, 4, 200, 200, 64, true, BF, 0, LAYOUT_BTHD}, /* (B, T, H, D) strides */
        {1, 4, 2, 129, 131, 128, true, BF, 0, LAYOUT_BTHD},
        {1, 2, 2, 65, 70, 64, false, BF, 0, LAYOUT_PADDED}, /* rows not 16-byte aligned */
        {1, 2, 1, 90, 40, 128, true, HF, 0, LAYOUT_PADDED},
        {2, 4, 2, 150, 150, 64, true, BF, 0.1, LAYOUT_BHTD}, /* dropout */
        {1, 2, 2, 100, 90, 128, false, BF, 0.3, LAYOUT_BHTD},
        {1, 2, 1, 33, 37, 64, false, HF, 0.2, LAYOUT_BHTD}, /* odd tk: draws straddle blocks */
        {1, 3, 3, 70, 50, 128, true, BF, 0.5, LAYOUT_BTHD},
    };
    const int variants[][2] = {{0, 0}, {1, 4}};
    int fails = 0, n = 0;
    uint64_t seed = 1;
    for (const Case &c : cases)
        for (const auto &vr : variants) {
            if (c.D != 64 && vr[0] != 0) continue; /* the variants differ only at D 64 */
            fails += run_case(c, vr[0], vr[1], seed++);
            n++;
        }
    bcu_attn_tc_set_variant(0, 0);
    printf("%d of %d cases passed\n", n - fails, n);
    return fails;
}

/* ---- timings ---------------------------------------------------------------------------------- */
static float median(std::vector<float> v)
{
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

static void bench_shape(int64_t B, int64_t H, int64_t T, int64_t D, bool causal, int vf, int vb)
{
    const int dt = BCU_BF16;
    bcu_attn_geom g;
    memset(&g, 0, sizeof g);
    g.batch = B, g.hq = H, g.hkv = H, g.tq = T, g.tk = T, g.d = D, g.dv = D;
    g.scale = 1.0 / sqrt((double)D);
    g.causal = causal;
    bcu_attn_tc_set_variant(vf, vb);
    Tensor q = make_tensor(dt, B, H, T, D, LAYOUT_BHTD), k = make_tensor(dt, B, H, T, D, LAYOUT_BHTD),
           v = make_tensor(dt, B, H, T, D, LAYOUT_BHTD), o = make_tensor(dt, B, H, T, D, LAYOUT_BHTD),
           go = make_tensor(dt, B, H, T, D, LAYOUT_BHTD), dq = make_tensor(dt, B, H, T, D, LAYOUT_BHTD),
           dk = make_tensor(dt, B, H, T, D, LAYOUT_BHTD), dv = make_tensor(dt, B, H, T, D, LAYOUT_BHTD);
    uint64_t s = 99;
    for (Tensor *t : {&q, &k, &v, &go})
        fill_random<<<grid_of(t->alloc), 256>>>(t->buf, t->alloc, s++, 1.0f, true);
    float *lse;
    CK(cudaMalloc(&lse, (size_t)(B * H * T) * 4));
    bcu_view lv;
    memset(&lv, 0, sizeof lv);
    lv.data = lse, lv.dtype = BCU_F32, lv.ndim = 3;
    lv.shape[0] = B, lv.shape[1] = H, lv.shape[2] = T;
    lv.strides[2] = 1, lv.strides[1] = T, lv.strides[0] = H * T;
    const size_t sbytes = bcu_attn_tc_backward_scratch(dt, &g);
    void *scratch;
    CK(cudaMalloc(&scratch, sbytes));
    cudaEvent_t e0, e1;
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    auto fwd = [&]() {
        int rc = bcu_attn_tc_forward(nullptr, &q.view, &k.view, &v.view, &o.view, &lv, &g);
        if (rc) {
            fprintf(stderr, "forward: %s\n", bcu_last_message());
            exit(2);
        }
    };
    auto bwd = [&]() {
        int rc = bcu_attn_tc_backward(nullptr, &q.view, &k.view, &v.view, &o.view, &go.view, &lv,
                                      &dq.view, &dk.view, &dv.view, &g, scratch, sbytes);
        if (rc) {
            fprintf(stderr, "backward: %s\n", bcu_last_message());
            exit(2);
        }
    };
    auto time_it = [&](bool with_bwd) {
        for (int w = 0; w < 3; w++) {
            fwd();
            if (with_bwd) bwd();
        }
        CK(cudaDeviceSynchronize());
        std::vector<float> ms;
        for (int r = 0; r < 20; r++) {
            CK(cudaEventRecord(e0));
            fwd();
            if (with_bwd) bwd();
            CK(cudaEventRecord(e1));
            CK(cudaEventSynchronize(e1));
            float t;
            CK(cudaEventElapsedTime(&t, e0, e1));
            ms.push_back(t);
        }
        return median(ms);
    };
    const float f = time_it(false), fb = time_it(true);
    const double flops = 4.0 * B * H * T * T * D * (causal ? 0.5 : 1.0);
    printf("{\"shape\":[%lld,%lld,%lld,%lld],\"causal\":%s,\"fwd_ms\":%.4f,\"fwdbwd_ms\":%.4f,"
           "\"fwd_tflops\":%.1f,\"fwdbwd_tflops\":%.1f,\"variant\":[%d,%d]}\n",
           (long long)B, (long long)H, (long long)T, (long long)D, causal ? "true" : "false", f, fb,
           flops / (f * 1e-3) / 1e12, 3.5 * flops / (fb * 1e-3) / 1e12, vf, vb);
    fflush(stdout);
    CK(cudaEventDestroy(e0));
    CK(cudaEventDestroy(e1));
    CK(cudaFree(lse));
    CK(cudaFree(scratch));
    for (Tensor *t : {&q, &k, &v, &o, &go, &dq, &dk, &dv}) free_tensor(*t);
    bcu_attn_tc_set_variant(0, 0);
}

static void run_bench(void)
{
    const int64_t shapes[][4] = {{8, 12, 1024, 64}, {1, 12, 4096, 64}, {1, 12, 4096, 128}};
    for (const auto &s : shapes)
        for (int c = 1; c >= 0; c--) {
            bench_shape(s[0], s[1], s[2], s[3], c != 0, 0, 0); /* the default tiles */
            if (s[3] == 64) { /* the other forward / backward tiles at D 64 */
                bench_shape(s[0], s[1], s[2], s[3], c != 0, 1, 4);
                bench_shape(s[0], s[1], s[2], s[3], c != 0, 2, 4);
                bench_shape(s[0], s[1], s[2], s[3], c != 0, 1, 8);
            }
        }
}

int main(int argc, char **argv)
{
    const bool check = argc < 2 || strcmp(argv[1], "check") == 0;
    const bool bench = argc < 2 || strcmp(argv[1], "bench") == 0;
    cudaDeviceProp prop;
    CK(cudaGetDeviceProperties(&prop, 0));
    printf("device: %s (sm_%d%d, %d SMs)\n", prop.name, prop.major, prop.minor,
           prop.multiProcessorCount);
    int fails = 0;
    if (check) fails = run_checks();
    if (bench) run_bench();
    return fails ? 1 : 0;
}
