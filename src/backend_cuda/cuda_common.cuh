/* backend_cuda/cuda_common.cuh — what the plugin's CUDA kernels share: operand geometry (shape
 * and per-operand strides, walked by a flat index), dtype traits (load/store through double or
 * int64, compute type per dtype), dtype dispatch, launch helpers and the error message. */
#ifndef BORN_CUDA_COMMON_CUH
#define BORN_CUDA_COMMON_CUH

#include "backend_cuda/cuda_kernels.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

enum { BCU_F32, BCU_F64, BCU_F16, BCU_BF16, BCU_I8, BCU_U8, BCU_I32, BCU_I64, BCU_BOOL };
enum { BCU_OK = 0, BCU_ERR_UNSUPPORTED = 8, BCU_ERR_INTERNAL = 9 };
#define BCU_OPS 4
#define BCU_THREADS 256

/* Formats the message bcu_last_message() returns and gives BCU_ERR_UNSUPPORTED. */
int unsupported(const char *fmt, ...);
/* 0, or BCU_ERR_INTERNAL naming `what` when the last launch failed. */
int launch_status(const char *what);
size_t dtype_size(int dtype);

/* Division by a divisor fixed for the launch. 32-bit: the round-up multiply-high method (a
 * magic number and a shift chosen on the host, exact for n, d < 2^31: 3 instructions instead of
 * a division); 64-bit: plain division. split(f, n, &q) gives q = n / d and returns n % d. */
template <class I> struct FastDiv;
template <> struct FastDiv<uint32_t> {
    uint32_t d, magic;
    unsigned shift;
    static FastDiv make(int64_t div)
    {
        FastDiv f;
        f.d = (uint32_t)div;
        f.shift = 0;
        while (f.shift < 31 && ((uint64_t)1 << f.shift) < (uint64_t)div) f.shift++;
        uint64_t m = ((uint64_t)1 << 32) * (((uint64_t)1 << f.shift) - (uint64_t)div) /
                         (uint64_t)div +
                     1;
        f.magic = (uint32_t)m;
        return f;
    }
    __device__ uint32_t quo(uint32_t n) const { return (__umulhi(n, magic) + n) >> shift; }
};
template <> struct FastDiv<int64_t> {
    int64_t d;
    static FastDiv make(int64_t div)
    {
        FastDiv f;
        f.d = div;
        return f;
    }
    __device__ int64_t quo(int64_t n) const { return n / d; }
};

template <class I> __device__ inline I split(const FastDiv<I> &f, I n, I *q)
{
    I qq = f.quo(n);
    *q = qq;
    return n - qq * f.d;
}

/* out's shape with each operand's strides (operand 0 is out); n elements. */
struct Geo {
    int ndim, nops;
    bool contig; /* every operand contiguous in out's shape: offset = flat index */
    bool i32;    /* n and every operand's offsets below 2^31: 32-bit index arithmetic */
    int64_t n;
    int64_t shape[BCU_MAX_DIMS];
    int64_t st[BCU_OPS][BCU_MAX_DIMS];
    FastDiv<uint32_t> div[BCU_MAX_DIMS]; /* shape[d] as a fast divisor, when i32 */
};

Geo make_geo(const bcu_view *const *ops, int nops);
/* Sets g.i32 and g.div from g's shape and strides (make_geo and geo_pack call it). */
void geo_index_width(Geo &g);

/* Every loop over the operands runs to BCU_OPS (unused operands have zero strides), so it
 * unrolls and off[] stays in registers. The general walk, any ndim. */
__device__ inline void geo_offsets(const Geo &g, int64_t i, int64_t *off)
{
    if (g.contig) {
#pragma unroll
        for (int k = 0; k < BCU_OPS; k++) off[k] = i;
        return;
    }
#pragma unroll
    for (int k = 0; k < BCU_OPS; k++) off[k] = 0;
    for (int d = g.ndim - 1; d >= 0; d--) {
        int64_t idx = i % g.shape[d];
        i /= g.shape[d];
#pragma unroll
        for (int k = 0; k < BCU_OPS; k++) off[k] += idx * g.st[k][d];
    }
}

/* The walk specialised on the merged rank: ND = 0 contiguous, 1..4 a 32-bit walk over exactly
 * ND dims (every loop unrolled, so the shape, strides and divisors are read straight from the
 * kernel's parameters: no local-memory copy of g, no division instruction), ND = -1 the general
 * walk. geo_launch picks ND from g. */
template <int ND> __device__ inline void geo_at(const Geo &g, int64_t i, int64_t *off)
{
    if constexpr (ND == 0) {
#pragma unroll
        for (int k = 0; k < BCU_OPS; k++) off[k] = i;
    } else if constexpr (ND < 0) {
        geo_offsets(g, i, off);
    } else {
        uint32_t r = (uint32_t)i;
        int32_t o32[BCU_OPS] = {0, 0, 0, 0};
#pragma unroll
        for (int d = ND - 1; d > 0; d--) {
            uint32_t q;
            uint32_t idx = split(g.div[d], r, &q);
            r = q;
#pragma unroll
            for (int k = 0; k < BCU_OPS; k++) o32[k] += (int32_t)idx * (int32_t)g.st[k][d];
        }
#pragma unroll
        for (int k = 0; k < BCU_OPS; k++) off[k] = o32[k] + (int32_t)r * (int32_t)g.st[k][0];
    }
}

template <int N> struct GeoRank {
    static const int value = N;
};

/* Calls f(GeoRank<ND>()) with the ND geo_at<ND> needs for g (see there). */
template <class F> inline void geo_launch(const Geo &g, F &&f)
{
    if (g.contig || g.ndim == 0) return f(GeoRank<0>());
    if (!g.i32 || g.ndim > 4) return f(GeoRank<-1>());
    switch (g.ndim) {
    case 1: return f(GeoRank<1>());
    case 2: return f(GeoRank<2>());
    case 3: return f(GeoRank<3>());
    default: return f(GeoRank<4>());
    }
}

/* V elements of T loaded or stored as one access (16 bytes for V * sizeof(T) = 16). */
template <int V, class T> struct alignas(V * sizeof(T)) Pack {
    T v[V];
};

/* Whether p sits on a b-byte boundary. */
static inline bool aligned_to(const void *p, size_t b) { return ((uintptr_t)p & (b - 1)) == 0; }

/* g with its innermost dim read V elements at a time: true (and *out, in units of V elements)
 * when every operand steps through that dim with stride 1, its length and every operand's other
 * strides are multiples of V, and each operand's data (ptrs[k], elements of esize bytes) sits on
 * a V * esize boundary. For non-contiguous g only (contiguous operands have their own kernels).
 * A permuted copy whose rows stay contiguous, or a bias added along rows, then moves 16-byte
 * packs. */
bool geo_pack(const Geo &g, const void *const *ptrs, size_t esize, int V, Geo *out);

#define GRID_LOOP(i, n)                                                                            \
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n);                      \
         i += (int64_t)blockDim.x * gridDim.x)

static inline unsigned grid_for(int64_t n)
{
    int64_t b = (n + BCU_THREADS - 1) / BCU_THREADS;
    if (b < 1) b = 1;
    if (b > 65535 * 8) b = 65535 * 8;
    return (unsigned)b;
}

/* ---- dtype traits: C = compute type for arithmetic ---- */
struct bcu_bool {
    uint8_t v;
};

template <class T> struct Tr;
#define SAT(v, lo, hi) ((v) != (v) ? 0 : (v) <= (lo) ? (lo) : (v) >= (hi) ? (hi) : (v))
template <> struct Tr<float> {
    typedef float C;
    static const bool integral = false;
    __host__ __device__ static double to_d(float x) { return x; }
    __host__ __device__ static int64_t to_i(float x) { return (int64_t)x; }
    __host__ __device__ static float from_d(double v) { return (float)v; }
    __host__ __device__ static float from_i(int64_t v) { return (float)v; }
    __device__ static C load(float x) { return x; }
    __device__ static float store(C v) { return v; }
};
template <> struct Tr<double> {
    typedef double C;
    static const bool integral = false;
    __host__ __device__ static double to_d(double x) { return x; }
    __host__ __device__ static int64_t to_i(double x) { return (int64_t)x; }
    __host__ __device__ static double from_d(double v) { return v; }
    __host__ __device__ static double from_i(int64_t v) { return (double)v; }
    __device__ static C load(double x) { return x; }
    __device__ static double store(C v) { return v; }
};
template <> struct Tr<__half> {
    typedef float C;
    static const bool integral = false;
    __device__ static double to_d(__half x) { return __half2float(x); }
    __device__ static int64_t to_i(__half x) { return (int64_t)__half2float(x); }
    __device__ static __half from_d(double v) { return __double2half(v); }
    __device__ static __half from_i(int64_t v) { return __double2half((double)v); }
    __device__ static C load(__half x) { return __half2float(x); }
    __device__ static __half store(C v) { return __float2half_rn(v); }
};
template <> struct Tr<__nv_bfloat16> {
    typedef float C;
    static const bool integral = false;
    __device__ static double to_d(__nv_bfloat16 x) { return __bfloat162float(x); }
    __device__ static int64_t to_i(__nv_bfloat16 x) { return (int64_t)__bfloat162float(x); }
    __device__ static __nv_bfloat16 from_d(double v) { return __double2bfloat16(v); }
    __device__ static __nv_bfloat16 from_i(int64_t v) { return __double2bfloat16((double)v); }
    __device__ static C load(__nv_bfloat16 x) { return __bfloat162float(x); }
    __device__ static __nv_bfloat16 store(C v) { return __float2bfloat16_rn(v); }
};
#define INT_TRAITS(T, LO, HI)                                                                      \
    template <> struct Tr<T> {                                                                     \
        typedef int64_t C;                                                                         \
        static const bool integral = true;                                                         \
        __host__ __device__ static double to_d(T x) { return (double)x; }                          \
        __host__ __device__ static int64_t to_i(T x) { return (int64_t)x; }                        \
        __host__ __device__ static T from_d(double v)                                              \
        {                                                                                          \
            return (T)SAT(v, (double)LO, (double)HI);                                              \
        }                                                                                          \
        __host__ __device__ static T from_i(int64_t v) { return (T)v; }                            \
        __device__ static C load(T x) { return (int64_t)x; }                                       \
        __device__ static T store(C v) { return (T)v; }                                            \
    };
INT_TRAITS(int8_t, INT8_MIN, INT8_MAX)
INT_TRAITS(uint8_t, 0, UINT8_MAX)
INT_TRAITS(int32_t, INT32_MIN, INT32_MAX)
#undef INT_TRAITS
template <> struct Tr<int64_t> {
    typedef int64_t C;
    static const bool integral = true;
    __host__ __device__ static double to_d(int64_t x) { return (double)x; }
    __host__ __device__ static int64_t to_i(int64_t x) { return x; }
    __host__ __device__ static int64_t from_d(double v)
    {
        return v != v                        ? 0
               : v >= 9223372036854775807.0  ? INT64_MAX
               : v <= -9223372036854775808.0 ? INT64_MIN
                                             : (int64_t)v;
    }
    __host__ __device__ static int64_t from_i(int64_t v) { return v; }
    __device__ static C load(int64_t x) { return x; }
    __device__ static int64_t store(C v) { return v; }
};
template <> struct Tr<bcu_bool> {
    typedef int64_t C;
    static const bool integral = true;
    __host__ __device__ static double to_d(bcu_bool x) { return x.v ? 1.0 : 0.0; }
    __host__ __device__ static int64_t to_i(bcu_bool x) { return x.v ? 1 : 0; }
    __host__ __device__ static bcu_bool from_d(double v)
    {
        bcu_bool b = {(uint8_t)(v != 0.0)};
        return b;
    }
    __host__ __device__ static bcu_bool from_i(int64_t v)
    {
        bcu_bool b = {(uint8_t)(v != 0)};
        return b;
    }
    __device__ static C load(bcu_bool x) { return x.v ? 1 : 0; }
    __device__ static bcu_bool store(C v)
    {
        bcu_bool b = {(uint8_t)(v != 0)};
        return b;
    }
};
#undef SAT

#define DT_CASE(code, T, ...)                                                                      \
    case code: {                                                                                   \
        typedef T T_;                                                                              \
        __VA_ARGS__                                                                                \
    } break;
/* Runs the block with NAME typedef'd to dtype dt's storage type. */
#define DISPATCH_ALL(dt, NAME, ...)                                                                \
    switch (dt) {                                                                                  \
    case BCU_F32: {                                                                                \
        typedef float NAME;                                                                        \
        __VA_ARGS__                                                                                \
    } break;                                                                                       \
    case BCU_F64: {                                                                                \
        typedef double NAME;                                                                       \
        __VA_ARGS__                                                                                \
    } break;                                                                                       \
    case BCU_F16: {                                                                                \
        typedef __half NAME;                                                                       \
        __VA_ARGS__                                                                                \
    } break;                                                                                       \
    case BCU_BF16: {                                                                               \
        typedef __nv_bfloat16 NAME;                                                                \
        __VA_ARGS__                                                                                \
    } break;                                                                                       \
    case BCU_I8: {                                                                                 \
        typedef int8_t NAME;                                                                       \
        __VA_ARGS__                                                                                \
    } break;                                                                                       \
    case BCU_U8: {                                                                                 \
        typedef uint8_t NAME;                                                                      \
        __VA_ARGS__                                                                                \
    } break;                                                                                       \
    case BCU_I32: {                                                                                \
        typedef int32_t NAME;                                                                      \
        __VA_ARGS__                                                                                \
    } break;                                                                                       \
    case BCU_I64: {                                                                                \
        typedef int64_t NAME;                                                                      \
        __VA_ARGS__                                                                                \
    } break;                                                                                       \
    case BCU_BOOL: {                                                                               \
        typedef bcu_bool NAME;                                                                     \
        __VA_ARGS__                                                                                \
    } break;                                                                                       \
    default: break;                                                                                \
    }
#define DISPATCH_FLOAT(dt, NAME, ...)                                                              \
    switch (dt) {                                                                                  \
    case BCU_F32: {                                                                                \
        typedef float NAME;                                                                        \
        __VA_ARGS__                                                                                \
    } break;                                                                                       \
    case BCU_F64: {                                                                                \
        typedef double NAME;                                                                       \
        __VA_ARGS__                                                                                \
    } break;                                                                                       \
    case BCU_F16: {                                                                                \
        typedef __half NAME;                                                                       \
        __VA_ARGS__                                                                                \
    } break;                                                                                       \
    case BCU_BF16: {                                                                               \
        typedef __nv_bfloat16 NAME;                                                                \
        __VA_ARGS__                                                                                \
    } break;                                                                                       \
    default: break;                                                                                \
    }

/* Philox 4x32-10 (core/philox.h's generator, the CPU's numbers): the four words of block
 * `counter` under `seed`. Every random kernel of the plugin draws through it. */
struct BcuPhilox {
    uint32_t v[4];
};

__device__ inline BcuPhilox bcu_philox4x32_10(uint64_t seed, uint64_t counter)
{
    uint32_t c0 = (uint32_t)counter, c1 = (uint32_t)(counter >> 32), c2 = 0, c3 = 0;
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
#pragma unroll
    for (int r = 0; r < 10; r++) {
        uint32_t hi0 = __umulhi(0xD2511F53u, c0), lo0 = 0xD2511F53u * c0;
        uint32_t hi1 = __umulhi(0xCD9E8D57u, c2), lo1 = 0xCD9E8D57u * c2;
        uint32_t n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
        c1 = lo1;
        c3 = lo0;
        c0 = n0;
        c2 = n2;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    BcuPhilox b = {{c0, c1, c2, c3}};
    return b;
}

#endif
