/* backend_cuda/cuda_optim.cu — multi-tensor optimizer updates (backend_optim.h) on the GPU: SGD,
 * Adam/AdamW, RMSprop, Adagrad, Adadelta and NAdam, f32 math for f32 parameters and f64 for f64.
 *
 * One launch updates a batch of up to BCU_OPTIM_TENSORS_PER_LAUNCH tensors. Each tensor is cut
 * into chunks of OPT_CHUNK elements; block b takes chunks b, b + gridDim.x, …, finds the tensor a
 * chunk belongs to from the batch's prefix counts, and its threads walk the chunk with OPT_ILP
 * independent elements in flight each (loads first, then math, then stores). The batch (addresses,
 * sizes, per-tensor scalars) travels by value in the kernel's parameters, so nothing is allocated
 * or copied per call and the host never waits.
 *
 * Every scalar is rounded to the element type on the host exactly as backend/cpu/optim.c rounds
 * it, and every operation is an explicitly rounded intrinsic (__fadd_rn, __fmul_rn, __fdiv_rn,
 * __fsqrt_rn and their f64 forms), so the compiler contracts nothing into a fused multiply-add:
 * each element goes through the CPU's operations in the CPU's order, and the results equal the
 * CPU backend's bit for bit. Elements are independent: no reduction, no atomics.
 *
 * Gradient clipping's multi-tensor norm and scale (at the end of the file) batch their arrays
 * the same way; the norm's reduction is deterministic (fixed-order partials, no atomics). */
#include "backend_cuda/cuda_common.cuh"
#include "backend_cuda/cuda_optim.h"

#define OPT_THREADS 256
#define OPT_ILP 4
#define OPT_CHUNK ((int64_t)8192) /* elements per chunk: 8 passes of OPT_THREADS * OPT_ILP */
#define OPT_MAX_GRID 1048576
#define OPT_NT BCU_OPTIM_TENSORS_PER_LAUNCH

/* bn_optim_rule */
enum { RULE_SGD, RULE_ADAM, RULE_RMSPROP, RULE_ADAGRAD, RULE_ADADELTA, RULE_NADAM, RULE_COUNT };

/* ---- correctly rounded arithmetic, never contracted -------------------------------------------- */
__device__ __forceinline__ float add_(float a, float b) { return __fadd_rn(a, b); }
__device__ __forceinline__ float mul_(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ float div_(float a, float b) { return __fdiv_rn(a, b); }
__device__ __forceinline__ float sqrt_(float a) { return __fsqrt_rn(a); }
__device__ __forceinline__ double add_(double a, double b) { return __dadd_rn(a, b); }
__device__ __forceinline__ double mul_(double a, double b) { return __dmul_rn(a, b); }
__device__ __forceinline__ double div_(double a, double b) { return __ddiv_rn(a, b); }
__device__ __forceinline__ double sqrt_(double a) { return __dsqrt_rn(a); }

/* The call's hyper-parameters, rounded to T on the host as the CPU kernels round them. */
template <class T> struct OptConst {
    T neg_lr, wd, mom, damp;    /* SGD, RMSprop, Adadelta: -lr; L2; momentum; 1 - dampening */
    T b1, b2, a1, a2;           /* Adam, NAdam: beta1, beta2, 1 - beta1, 1 - beta2 */
    T alpha, one_m_alpha;       /* RMSprop */
    T rho, one_m_rho;           /* Adadelta */
    T eps, decay;               /* decay: Adam's p *= decay */
    bool maximize, nesterov, use_l2, use_decay;
};

/* One launch's tensors. first_chunk[t] is tensor t's first chunk; first_chunk[n] the total. */
template <class T> struct OptBatch {
    T *p[OPT_NT];
    const T *g[OPT_NT];
    T *s0[OPT_NT], *s1[OPT_NT], *s2[OPT_NT];
    int64_t numel[OPT_NT];
    int64_t first_chunk[OPT_NT + 1];
    T c[OPT_NT][3]; /* per-tensor scalars in T (see make_coefs) */
    int n;
};

static_assert(sizeof(OptBatch<double>) + sizeof(OptConst<double>) <= 4096,
              "an optimizer launch's parameters must fit in 4 KB");

/* ---- the rules: one element, registers in and out (backend/cpu/optim.c, operation for
 * operation) ---------------------------------------------------------------------------------- */
/* c[0] != 0: the first step (buf = d). s0 = momentum_buffer when has_s0. */
template <class T>
__device__ __forceinline__ void sgd_step(T &p, T g, T &buf, const OptConst<T> &k, const T *c,
                                         bool has_buf)
{
    T d = k.maximize ? -g : g;
    if (k.use_l2) d = add_(d, mul_(k.wd, p));
    if (has_buf) {
        T b = c[0] != (T)0 ? d : add_(mul_(buf, k.mom), mul_(k.damp, d));
        buf = b;
        d = k.nesterov ? add_(d, mul_(k.mom, b)) : b;
    }
    p = add_(p, mul_(k.neg_lr, d));
}

/* c[0] = -step_size, c[1] = sqrt(1 - beta2^t). s0 exp_avg, s1 exp_avg_sq, s2 max_exp_avg_sq. */
template <class T>
__device__ __forceinline__ void adam_step(T &p, T g, T &m, T &v, T &vmax, const OptConst<T> &k,
                                          const T *c, bool ams)
{
    T gi = k.maximize ? -g : g;
    T pi = p;
    if (k.use_decay) pi = mul_(pi, k.decay);
    if (k.use_l2) gi = add_(gi, mul_(k.wd, pi));
    T mi = mul_(m, k.b1);
    mi = add_(mi, mul_(k.a1, gi));
    T vi = mul_(v, k.b2);
    vi = add_(vi, mul_(mul_(k.a2, gi), gi));
    m = mi;
    v = vi;
    if (ams) {
        T mx = vmax;
        mx = mx >= vi ? mx : vi; /* a NaN in either replaces the maximum */
        vmax = mx;
        vi = mx;
    }
    T denom = add_(div_(sqrt_(vi), c[1]), k.eps);
    p = add_(pi, div_(mul_(c[0], mi), denom));
}

/* s0 square_avg, s1 momentum_buffer (has_buf), s2 grad_avg (centered). */
template <class T>
__device__ __forceinline__ void rmsprop_step(T &p, T g, T &sq, T &buf, T &gavg,
                                             const OptConst<T> &k, bool has_buf, bool centered)
{
    T gi = k.maximize ? -g : g;
    if (k.use_l2) gi = add_(gi, mul_(k.wd, p));
    T s = mul_(sq, k.alpha);
    s = add_(s, mul_(mul_(k.one_m_alpha, gi), gi));
    sq = s;
    T avg;
    if (centered) {
        T ga = mul_(gavg, k.alpha);
        ga = add_(ga, mul_(k.one_m_alpha, gi));
        gavg = ga;
        avg = sqrt_(add_(s, mul_(mul_((T)-1, ga), ga)));
    } else {
        avg = sqrt_(s);
    }
    avg = add_(avg, k.eps);
    if (has_buf) {
        T b = mul_(buf, k.mom);
        b = add_(b, div_(gi, avg));
        buf = b;
        p = add_(p, mul_(k.neg_lr, b));
    } else {
        p = add_(p, div_(mul_(k.neg_lr, gi), avg));
    }
}

/* c[0] = -clr. s0 sum. */
template <class T>
__device__ __forceinline__ void adagrad_step(T &p, T g, T &sum, const OptConst<T> &k, const T *c)
{
    T gi = k.maximize ? -g : g;
    if (k.use_l2) gi = add_(gi, mul_(k.wd, p));
    T s = add_(sum, mul_(mul_((T)1, gi), gi));
    sum = s;
    T std = add_(sqrt_(s), k.eps);
    p = add_(p, div_(mul_(c[0], gi), std));
}

/* s0 square_avg, s1 acc_delta. */
template <class T>
__device__ __forceinline__ void adadelta_step(T &p, T g, T &sq, T &acc, const OptConst<T> &k)
{
    T gi = k.maximize ? -g : g;
    if (k.use_l2) gi = add_(gi, mul_(k.wd, p));
    T s = mul_(sq, k.rho);
    s = add_(s, mul_(mul_(k.one_m_rho, gi), gi));
    sq = s;
    T std = sqrt_(add_(s, k.eps));
    T delta = mul_(div_(sqrt_(add_(acc, k.eps)), std), gi);
    T a = mul_(acc, k.rho);
    acc = add_(a, mul_(mul_(k.one_m_rho, delta), delta));
    p = add_(p, mul_(k.neg_lr, delta));
}

/* c[0] = 1 - beta2^t, c[1] = coef_g, c[2] = coef_m. s0 exp_avg, s1 exp_avg_sq. */
template <class T>
__device__ __forceinline__ void nadam_step(T &p, T g, T &m, T &v, const OptConst<T> &k,
                                           const T *c)
{
    T gi = g;
    if (k.use_l2) gi = add_(gi, mul_(k.wd, p));
    T mi = mul_(m, k.b1);
    mi = add_(mi, mul_(k.a1, gi));
    T vi = mul_(v, k.b2);
    vi = add_(vi, mul_(mul_(k.a2, gi), gi));
    m = mi;
    v = vi;
    T denom = add_(sqrt_(div_(vi, c[0])), k.eps);
    T pi = add_(p, div_(mul_(c[1], gi), denom));
    p = add_(pi, div_(mul_(c[2], mi), denom));
}

/* ---- the kernel ---------------------------------------------------------------------------- */
template <class T, int RULE>
__global__ void __launch_bounds__(OPT_THREADS) optim_kernel(const OptBatch<T> b, const OptConst<T> k)
{
    const int64_t total = b.first_chunk[b.n];
    for (int64_t chunk = blockIdx.x; chunk < total; chunk += gridDim.x) {
        int t = 0;
        while (t + 1 < b.n && b.first_chunk[t + 1] <= chunk) t++;
        const int64_t lo = (chunk - b.first_chunk[t]) * OPT_CHUNK;
        const int64_t hi = lo + OPT_CHUNK < b.numel[t] ? lo + OPT_CHUNK : b.numel[t];
        T *__restrict__ p = b.p[t];
        const T *__restrict__ g = b.g[t];
        T *__restrict__ s0 = b.s0[t];
        T *__restrict__ s1 = b.s1[t];
        T *__restrict__ s2 = b.s2[t];
        const bool h0 = s0 != nullptr, h1 = s1 != nullptr, h2 = s2 != nullptr;
        const T c[3] = {b.c[t][0], b.c[t][1], b.c[t][2]};
        for (int64_t base = lo; base < hi; base += (int64_t)OPT_THREADS * OPT_ILP) {
            T rp[OPT_ILP], rg[OPT_ILP], r0[OPT_ILP], r1[OPT_ILP], r2[OPT_ILP];
#pragma unroll
            for (int j = 0; j < OPT_ILP; j++) {
                int64_t i = base + threadIdx.x + (int64_t)j * OPT_THREADS;
                rp[j] = rg[j] = r0[j] = r1[j] = r2[j] = (T)0;
                if (i < hi) {
                    rp[j] = p[i];
                    rg[j] = g[i];
                    if (h0) r0[j] = s0[i];
                    if (h1) r1[j] = s1[i];
                    if (h2) r2[j] = s2[i];
                }
            }
#pragma unroll
            for (int j = 0; j < OPT_ILP; j++) {
                switch (RULE) {
                case RULE_SGD: sgd_step(rp[j], rg[j], r0[j], k, c, h0); break;
                case RULE_ADAM: adam_step(rp[j], rg[j], r0[j], r1[j], r2[j], k, c, h2); break;
                case RULE_RMSPROP: rmsprop_step(rp[j], rg[j], r0[j], r1[j], r2[j], k, h1, h2); break;
                case RULE_ADAGRAD: adagrad_step(rp[j], rg[j], r0[j], k, c); break;
                case RULE_ADADELTA: adadelta_step(rp[j], rg[j], r0[j], r1[j], k); break;
                default: nadam_step(rp[j], rg[j], r0[j], r1[j], k, c); break;
                }
            }
#pragma unroll
            for (int j = 0; j < OPT_ILP; j++) {
                int64_t i = base + threadIdx.x + (int64_t)j * OPT_THREADS;
                if (i < hi) {
                    p[i] = rp[j];
                    if (h0) s0[i] = r0[j];
                    if (h1) s1[i] = r1[j];
                    if (h2) s2[i] = r2[j];
                }
            }
        }
    }
}

/* ---- host side ------------------------------------------------------------------------------- */
template <class T> static OptConst<T> make_const(const bcu_optim_hparams *h)
{
    OptConst<T> k;
    k.neg_lr = (T)-h->lr;
    k.wd = (T)h->weight_decay;
    k.mom = (T)h->momentum;
    k.damp = (T)(1 - h->dampening);
    k.b1 = (T)h->beta1;
    k.b2 = (T)h->beta2;
    k.a1 = (T)(1 - h->beta1);
    k.a2 = (T)(1 - h->beta2);
    k.alpha = (T)h->alpha;
    k.one_m_alpha = (T)(1 - h->alpha);
    k.rho = (T)h->rho;
    k.one_m_rho = (T)(1 - h->rho);
    k.eps = (T)h->eps;
    k.decay = (T)h->decay;
    k.maximize = h->maximize;
    k.nesterov = h->nesterov;
    k.use_l2 = h->weight_decay != 0;
    k.use_decay = h->decay != 1;
    return k;
}

/* Tensor t's per-step scalars in T, rounded as the CPU kernels round them. */
template <class T> static void make_coefs(int rule, const bcu_optim_tensor *t, T *c)
{
    c[0] = c[1] = c[2] = (T)0;
    switch (rule) {
    case RULE_SGD: c[0] = t->coef[0] != 0 ? (T)1 : (T)0; break;
    case RULE_ADAM:
        c[0] = (T)-t->coef[0];
        c[1] = (T)t->coef[1];
        break;
    case RULE_ADAGRAD: c[0] = (T)-t->coef[0]; break;
    case RULE_NADAM:
        c[0] = (T)t->coef[0];
        c[1] = (T)t->coef[1];
        c[2] = (T)t->coef[2];
        break;
    default: break;
    }
}

template <class T>
static int launch(bcu_stream s, int rule, const OptBatch<T> &b, const OptConst<T> &k)
{
    int64_t chunks = b.first_chunk[b.n];
    if (chunks == 0) return 0;
    unsigned grid = (unsigned)(chunks < OPT_MAX_GRID ? chunks : OPT_MAX_GRID);
    switch (rule) {
    case RULE_SGD: optim_kernel<T, RULE_SGD><<<grid, OPT_THREADS, 0, s>>>(b, k); break;
    case RULE_ADAM: optim_kernel<T, RULE_ADAM><<<grid, OPT_THREADS, 0, s>>>(b, k); break;
    case RULE_RMSPROP: optim_kernel<T, RULE_RMSPROP><<<grid, OPT_THREADS, 0, s>>>(b, k); break;
    case RULE_ADAGRAD: optim_kernel<T, RULE_ADAGRAD><<<grid, OPT_THREADS, 0, s>>>(b, k); break;
    case RULE_ADADELTA: optim_kernel<T, RULE_ADADELTA><<<grid, OPT_THREADS, 0, s>>>(b, k); break;
    default: optim_kernel<T, RULE_NADAM><<<grid, OPT_THREADS, 0, s>>>(b, k); break;
    }
    return launch_status("optimizer update");
}

template <class T>
static int update_all(bcu_stream s, int rule, const bcu_optim_hparams *h,
                      const bcu_optim_tensor *ts, int n)
{
    const OptConst<T> k = make_const<T>(h);
    OptBatch<T> b;
    b.n = 0;
    int64_t chunks = 0;
    for (int i = 0; i < n; i++) {
        const bcu_optim_tensor *t = &ts[i];
        if (t->numel <= 0) continue;
        int j = b.n++;
        b.p[j] = (T *)t->param;
        b.g[j] = (const T *)t->grad;
        b.s0[j] = (T *)t->state[0];
        b.s1[j] = (T *)t->state[1];
        b.s2[j] = (T *)t->state[2];
        b.numel[j] = t->numel;
        b.first_chunk[j] = chunks;
        make_coefs<T>(rule, t, b.c[j]);
        chunks += (t->numel + OPT_CHUNK - 1) / OPT_CHUNK;
        if (b.n == OPT_NT || i == n - 1) {
            b.first_chunk[b.n] = chunks;
            int rc = launch<T>(s, rule, b, k);
            if (rc) return rc;
            b.n = 0;
            chunks = 0;
        }
    }
    if (b.n > 0) { /* the last tensors were followed by empty ones */
        b.first_chunk[b.n] = chunks;
        return launch<T>(s, rule, b, k);
    }
    return 0;
}

extern "C" int bcu_optim_update(bcu_stream s, int rule, int dtype, const bcu_optim_hparams *h,
                                const bcu_optim_tensor *ts, int n)
{
    if (rule < 0 || rule >= RULE_COUNT) return unsupported("optimizer update: unknown rule %d", rule);
    if (n <= 0) return 0;
    if (dtype == BCU_F32) return update_all<float>(s, rule, h, ts, n);
    if (dtype == BCU_F64) return update_all<double>(s, rule, h, ts, n);
    return unsupported("optimizer update: dtype %s is not supported (f32 or f64)",
                       bcu_dtype_name(dtype));
}

/* ---- gradient clipping (backend_optim.h's grad_norm and scale_grads) -------------------------
 * grad_norm: one launch per batch of up to BCU_CLIP_TENSORS_PER_LAUNCH arrays, cut into chunks of
 * BCU_CLIP_CHUNK elements; block b takes chunks b, b + gridDim.x, …; each chunk's |g|^p (f64) is
 * summed by the block's threads (thread t: elements t, t + CLIP_THREADS, … in order) and a fixed
 * shared-memory tree, into its own slot of the scratch array (slot = the chunk's index over the
 * whole call). One block then combines the slots in the same fixed way into *out. No atomics:
 * the result depends only on the arrays' sizes and values, never on timing or the grid size.
 * scale_grads: the same batches; every block reads the total, derives the coefficient and either
 * returns (nothing to clip) or scales its chunks in place. */
#define CLIP_THREADS 256
#define CLIP_NT BCU_CLIP_TENSORS_PER_LAUNCH
#define CLIP_CHUNK ((int64_t)BCU_CLIP_CHUNK)

enum { POW_ONE, POW_TWO, POW_INF, POW_GEN };

template <class T> struct ClipBatch {
    T *g[CLIP_NT];
    int64_t numel[CLIP_NT];
    int64_t first_chunk[CLIP_NT + 1]; /* first_chunk[n]: the batch's chunk count */
    int64_t part_base;                /* the slot of the batch's first chunk */
    int n;
};

static_assert(sizeof(ClipBatch<double>) + 64 <= 4096,
              "a clipping launch's parameters must fit in 4 KB");

/* the max that keeps a NaN once one is seen */
__device__ __forceinline__ double nan_max(double m, double a) { return (a > m || a != a) ? a : m; }

template <int KIND> __device__ __forceinline__ double clip_term(double x, double p)
{
    double a = fabs(x);
    if (KIND == POW_TWO) return __dmul_rn(a, a);
    if (KIND == POW_GEN) return pow(a, p);
    return a;
}

template <int KIND> __device__ __forceinline__ double clip_combine(double acc, double v)
{
    return KIND == POW_INF ? nan_max(acc, v) : __dadd_rn(acc, v);
}

/* The chunk holding c: the last t with first[t] <= c (first is non-decreasing). */
__device__ __forceinline__ int clip_tensor_of(const int64_t *first, int n, int64_t c)
{
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        int mid = lo + (hi - lo + 1) / 2;
        if (first[mid] <= c)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

/* The block's values v (one per thread) combined in a fixed tree; the result in thread 0. */
template <int KIND> __device__ __forceinline__ double clip_block_reduce(double v, double *sh)
{
    sh[threadIdx.x] = v;
    __syncthreads();
    for (int w = CLIP_THREADS / 2; w > 0; w /= 2) {
        if ((int)threadIdx.x < w)
            sh[threadIdx.x] = clip_combine<KIND>(sh[threadIdx.x], sh[threadIdx.x + w]);
        __syncthreads();
    }
    return sh[0];
}

template <class T, int KIND>
__global__ void __launch_bounds__(CLIP_THREADS)
    clip_norm_kernel(const ClipBatch<T> b, double p, double *part)
{
    __shared__ double sh[CLIP_THREADS];
    const int64_t total = b.first_chunk[b.n];
    for (int64_t chunk = blockIdx.x; chunk < total; chunk += gridDim.x) {
        const int t = clip_tensor_of(b.first_chunk, b.n, chunk);
        const int64_t lo = (chunk - b.first_chunk[t]) * CLIP_CHUNK;
        const int64_t hi = lo + CLIP_CHUNK < b.numel[t] ? lo + CLIP_CHUNK : b.numel[t];
        const T *__restrict__ g = b.g[t];
        double acc = 0;
        for (int64_t i = lo + threadIdx.x; i < hi; i += CLIP_THREADS)
            acc = clip_combine<KIND>(acc, clip_term<KIND>(Tr<T>::to_d(g[i]), p));
        double r = clip_block_reduce<KIND>(acc, sh);
        if (threadIdx.x == 0) part[b.part_base + chunk] = r;
        __syncthreads(); /* sh is reused by the next chunk */
    }
}

/* *out = the nparts slots combined: thread t takes slots t, t + CLIP_THREADS, … in order, then
 * the fixed tree. */
template <int KIND>
__global__ void __launch_bounds__(CLIP_THREADS)
    clip_final_kernel(const double *part, int64_t nparts, double *out)
{
    __shared__ double sh[CLIP_THREADS];
    double acc = 0;
    for (int64_t i = threadIdx.x; i < nparts; i += CLIP_THREADS)
        acc = clip_combine<KIND>(acc, part[i]);
    double r = clip_block_reduce<KIND>(acc, sh);
    if (threadIdx.x == 0) *out = r;
}

template <class T>
__global__ void __launch_bounds__(CLIP_THREADS)
    clip_scale_kernel(const ClipBatch<T> b, const double *total_p, double max_norm, double p)
{
    typedef typename Tr<T>::C C;
    const double total = *total_p;
    const double norm = isinf(p) || p == 1 ? total : p == 2 ? sqrt(total) : pow(total, 1.0 / p);
    const double coef = __ddiv_rn(max_norm, __dadd_rn(norm, 1e-6));
    if (!(coef < 1) && !isnan(coef)) return; /* nothing to clip (the same in every block) */
    /* the coefficient rounded to T first, as bn_mul_scalar rounds its scalar */
    const C c = Tr<T>::load(Tr<T>::from_d(coef));
    const int64_t chunks = b.first_chunk[b.n];
    for (int64_t chunk = blockIdx.x; chunk < chunks; chunk += gridDim.x) {
        const int t = clip_tensor_of(b.first_chunk, b.n, chunk);
        const int64_t lo = (chunk - b.first_chunk[t]) * CLIP_CHUNK;
        const int64_t hi = lo + CLIP_CHUNK < b.numel[t] ? lo + CLIP_CHUNK : b.numel[t];
        T *__restrict__ g = b.g[t];
        for (int64_t i = lo + threadIdx.x; i < hi; i += CLIP_THREADS)
            g[i] = Tr<T>::store(mul_(Tr<T>::load(g[i]), c));
    }
}

extern "C" int64_t bcu_clip_partials(const int64_t *numel, int n)
{
    int64_t chunks = 0;
    for (int i = 0; i < n; i++)
        if (numel[i] > 0) chunks += (numel[i] + CLIP_CHUNK - 1) / CLIP_CHUNK;
    return chunks;
}

/* Runs launch(batch) over every batch of the non-empty arrays; 0 or the first error. */
template <class T, class F>
static int clip_batches(void *const *grads, const int64_t *numel, int n, F launch)
{
    ClipBatch<T> b;
    b.n = 0;
    b.part_base = 0;
    int64_t chunks = 0;
    for (int i = 0; i < n; i++) {
        if (numel[i] <= 0) continue;
        int j = b.n++;
        b.g[j] = (T *)grads[i];
        b.numel[j] = numel[i];
        b.first_chunk[j] = chunks;
        chunks += (numel[i] + CLIP_CHUNK - 1) / CLIP_CHUNK;
        if (b.n == CLIP_NT) {
            b.first_chunk[b.n] = chunks;
            int rc = launch(b);
            if (rc) return rc;
            b.part_base += chunks;
            b.n = 0;
            chunks = 0;
        }
    }
    if (b.n > 0) {
        b.first_chunk[b.n] = chunks;
        return launch(b);
    }
    return 0;
}

static unsigned clip_grid(int64_t chunks)
{
    return (unsigned)(chunks < OPT_MAX_GRID ? chunks : OPT_MAX_GRID);
}

template <class T, int KIND>
static int clip_norm_all(bcu_stream s, const void *const *grads, const int64_t *numel, int n,
                         double p, double *part, double *out)
{
    int rc = clip_batches<T>((void *const *)grads, numel, n, [&](const ClipBatch<T> &b) {
        clip_norm_kernel<T, KIND>
            <<<clip_grid(b.first_chunk[b.n]), CLIP_THREADS, 0, s>>>(b, p, part);
        return launch_status("gradient norm");
    });
    if (rc) return rc;
    clip_final_kernel<KIND><<<1, CLIP_THREADS, 0, s>>>(part, bcu_clip_partials(numel, n), out);
    return launch_status("gradient norm");
}

template <class T>
static int clip_norm_dispatch(bcu_stream s, const void *const *grads, const int64_t *numel, int n,
                              double p, double *part, double *out)
{
    if (isinf(p)) return clip_norm_all<T, POW_INF>(s, grads, numel, n, p, part, out);
    if (p == 1) return clip_norm_all<T, POW_ONE>(s, grads, numel, n, p, part, out);
    if (p == 2) return clip_norm_all<T, POW_TWO>(s, grads, numel, n, p, part, out);
    return clip_norm_all<T, POW_GEN>(s, grads, numel, n, p, part, out);
}

extern "C" int bcu_clip_grad_norm(bcu_stream s, int dtype, const void *const *grads,
                                  const int64_t *numel, int n, double p, double *scratch, void *out)
{
    if (n < 0) n = 0;
    int rc = -1;
    DISPATCH_FLOAT(dtype, T,
                   rc = clip_norm_dispatch<T>(s, grads, numel, n, p, scratch, (double *)out);)
    if (rc < 0)
        return unsupported("gradient norm: dtype %s is not supported (f32, f64, f16, bf16)",
                           bcu_dtype_name(dtype));
    return rc;
}

template <class T>
static int clip_scale_all(bcu_stream s, void *const *grads, const int64_t *numel, int n,
                          const double *total, double max_norm, double p)
{
    return clip_batches<T>(grads, numel, n, [&](const ClipBatch<T> &b) {
        unsigned grid = clip_grid(b.first_chunk[b.n]);
        clip_scale_kernel<T><<<grid, CLIP_THREADS, 0, s>>>(b, total, max_norm, p);
        return launch_status("gradient scaling");
    });
}

extern "C" int bcu_clip_scale(bcu_stream s, int dtype, void *const *grads, const int64_t *numel,
                              int n, const void *total, double max_norm, double p)
{
    if (n < 0) n = 0;
    int rc = -1;
    const double *t = (const double *)total;
    DISPATCH_FLOAT(dtype, T, rc = clip_scale_all<T>(s, grads, numel, n, t, max_norm, p);)
    if (rc < 0)
        return unsupported("gradient scaling: dtype %s is not supported (f32, f64, f16, bf16)",
                           bcu_dtype_name(dtype));
    return rc;
}
