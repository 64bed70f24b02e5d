/* backend/cpu/optim.c — the CPU's optimizer updates (backend_optim.h): one fused, vectorisable
 * pass per rule over each parameter, its gradient and its state, for f32 and f64.
 *
 * Every loop follows PyTorch 1.13's _single_tensor_<name> step for step: the same operations in
 * the same order, scalars rounded to the element type as torch's kernels do (a + alpha*b and
 * a / s with alpha and s in the element type; addcdiv as a + (v*b)/c), so the results agree with
 * torch.optim to the last few bits. Loops take restrict pointers and hoist every flag, so the
 * compiler vectorises them without reordering a single operation; the branches on the flags are
 * pure selects, and the few that guard a load (momentum buffers, amsgrad) are specialised by
 * calling an inline body with constant flags.
 *
 * Threads: the parameters of one call are cut into chunks of at most OPTIM_CHUNK elements (never
 * across two tensors), which OpenMP threads take statically; small calls stay on the calling
 * thread. Elements are independent, so results do not depend on the thread count. */
#include "backend/backend_optim.h"
#include "backend/cpu/cpu_kernels.h"
#include "backend/cpu/elementwise_impl.h"

#include <math.h>
#include <string.h>

/* Chunk length in elements (64 KiB of f32 per array: the arrays of a chunk fit in L2) and the
 * call size from which threads join. Measured (Adam f32, vectorised, best of 400 steps on 2
 * cores): one thread takes ~1 ns per element, the OpenMP region under 1 us, so a second thread
 * pays off as soon as there is a second chunk: 32768 elements take 32 us on 1 thread and 16 us on
 * 2. Below that the call is one chunk and stays on the calling thread. */
#define OPTIM_CHUNK ((int64_t)16384)
#ifndef OPTIM_PAR_MIN /* -DOPTIM_PAR_MIN=… to measure another */
#define OPTIM_PAR_MIN ((int64_t)32768)
#endif

/* ---- SGD ----------------------------------------------------------------------------------- */
/* d = ±g + wd*p; buf = first ? d : buf*m + (1-damp)*d; p += -lr * (nesterov ? d + m*buf : buf) */
#define DEFINE_SGD(T)                                                                              \
    static inline void sgd_body_##T(T *restrict p, const T *restrict g, T *restrict buf,          \
                                    int64_t n, const bn_optim_hparams *h, bool first,             \
                                    bool has_buf)                                                  \
    {                                                                                              \
        const T wd = (T)h->weight_decay, m = (T)h->momentum, damp = (T)(1 - h->dampening);       \
        const T neg_lr = (T)-h->lr;                                                                \
        const bool maximize = h->maximize, l2 = h->weight_decay != 0, nesterov = h->nesterov;     \
        for (int64_t i = 0; i < n; i++) {                                                          \
            T d = maximize ? -g[i] : g[i];                                                         \
            if (l2) d = d + wd * p[i];                                                             \
            if (has_buf) {                                                                         \
                T b = first ? d : buf[i] * m + damp * d;                                           \
                buf[i] = b;                                                                        \
                d = nesterov ? d + m * b : b;                                                      \
            }                                                                                      \
            p[i] = p[i] + neg_lr * d;                                                              \
        }                                                                                          \
    }                                                                                              \
    static void sgd_##T(T *p, const T *g, T *buf, int64_t n, const bn_optim_hparams *h,          \
                        const double *coef)                                                        \
    {                                                                                              \
        bool first = coef[0] != 0;                                                                 \
        if (!buf) sgd_body_##T(p, g, NULL, n, h, false, false);                                    \
        else if (first) sgd_body_##T(p, g, buf, n, h, true, true);                                 \
        else sgd_body_##T(p, g, buf, n, h, false, true);                                           \
    }
DEFINE_SGD(float)
DEFINE_SGD(double)

/* ---- Adam / AdamW -------------------------------------------------------------------------- */
#define DEFINE_ADAM(T, SQRT)                                                                       \
    static inline void adam_body_##T(T *restrict p, const T *restrict g, T *restrict m,           \
                                     T *restrict v, T *restrict vmax, int64_t n,                   \
                                     const bn_optim_hparams *h, const double *coef, bool ams)     \
    {                                                                                              \
        const T b1 = (T)h->beta1, b2 = (T)h->beta2, a1 = (T)(1 - h->beta1);                       \
        const T a2 = (T)(1 - h->beta2), eps = (T)h->eps, l2 = (T)h->weight_decay;                 \
        const T decay = (T)h->decay, bc2s = (T)coef[1], neg_step = (T)-coef[0];                  \
        const bool maximize = h->maximize, use_decay = h->decay != 1;                              \
        const bool use_l2 = h->weight_decay != 0;                                                  \
        for (int64_t i = 0; i < n; i++) {                                                          \
            T gi = maximize ? -g[i] : g[i];                                                        \
            T pi = p[i];                                                                           \
            if (use_decay) pi = pi * decay;                                                        \
            if (use_l2) gi = gi + l2 * pi;                                                         \
            T mi = m[i] * b1;                                                                      \
            mi = mi + a1 * gi;                                                                     \
            T vi = v[i] * b2;                                                                      \
            vi = vi + a2 * gi * gi;                                                                \
            m[i] = mi;                                                                             \
            v[i] = vi;                                                                             \
            if (ams) {                                                                             \
                T mx = vmax[i];                                                                    \
                mx = mx >= vi ? mx : vi; /* a NaN in either replaces the maximum */                \
                vmax[i] = mx;                                                                      \
                vi = mx;                                                                           \
            }                                                                                      \
            T denom = SQRT(vi) / bc2s + eps;                                                       \
            p[i] = pi + neg_step * mi / denom;                                                     \
        }                                                                                          \
    }                                                                                              \
    static void adam_##T(T *p, const T *g, T *m, T *v, T *vmax, int64_t n,                        \
                         const bn_optim_hparams *h, const double *coef)                            \
    {                                                                                              \
        if (vmax) adam_body_##T(p, g, m, v, vmax, n, h, coef, true);                               \
        else adam_body_##T(p, g, m, v, NULL, n, h, coef, false);                                   \
    }
DEFINE_ADAM(float, sqrtf)
DEFINE_ADAM(double, sqrt)

/* ---- RMSprop ------------------------------------------------------------------------------- */
#define DEFINE_RMSPROP(T, SQRT)                                                                    \
    static inline void rmsprop_body_##T(T *restrict p, const T *restrict g, T *restrict sq,       \
                                        T *restrict buf, T *restrict gavg, int64_t n,              \
                                        const bn_optim_hparams *h, bool has_buf, bool centered)   \
    {                                                                                              \
        const T alpha = (T)h->alpha, a1 = (T)(1 - h->alpha), eps = (T)h->eps;                     \
        const T wd = (T)h->weight_decay, mom = (T)h->momentum, neg_lr = (T)-h->lr;                \
        const bool maximize = h->maximize, l2 = h->weight_decay != 0;                              \
        for (int64_t i = 0; i < n; i++) {                                                          \
            T gi = maximize ? -g[i] : g[i];                                                        \
            if (l2) gi = gi + wd * p[i];                                                           \
            T s = sq[i] * alpha;                                                                   \
            s = s + a1 * gi * gi;                                                                  \
            sq[i] = s;                                                                             \
            T avg;                                                                                 \
            if (centered) {                                                                        \
                T ga = gavg[i] * alpha;                                                            \
                ga = ga + a1 * gi;                                                                 \
                gavg[i] = ga;                                                                      \
                avg = SQRT(s + (T)-1 * ga * ga);                                                   \
            } else {                                                                               \
                avg = SQRT(s);                                                                     \
            }                                                                                      \
            avg = avg + eps;                                                                       \
            if (has_buf) {                                                                         \
                T b = buf[i] * mom;                                                                \
                b = b + gi / avg;                                                                  \
                buf[i] = b;                                                                        \
                p[i] = p[i] + neg_lr * b;                                                          \
            } else {                                                                               \
                p[i] = p[i] + neg_lr * gi / avg;                                                   \
            }                                                                                      \
        }                                                                                          \
    }                                                                                              \
    static void rmsprop_##T(T *p, const T *g, T *sq, T *buf, T *gavg, int64_t n,                  \
                            const bn_optim_hparams *h)                                             \
    {                                                                                              \
        if (buf && gavg) rmsprop_body_##T(p, g, sq, buf, gavg, n, h, true, true);                  \
        else if (buf) rmsprop_body_##T(p, g, sq, buf, NULL, n, h, true, false);                    \
        else if (gavg) rmsprop_body_##T(p, g, sq, NULL, gavg, n, h, false, true);                  \
        else rmsprop_body_##T(p, g, sq, NULL, NULL, n, h, false, false);                           \
    }
DEFINE_RMSPROP(float, sqrtf)
DEFINE_RMSPROP(double, sqrt)

/* ---- Adagrad: sum += g*g; p += -clr * g / (sqrt(sum) + eps) ---------------------------------- */
#define DEFINE_ADAGRAD(T, SQRT)                                                                    \
    static void adagrad_##T(T *restrict p, const T *restrict g, T *restrict sum, int64_t n,       \
                            const bn_optim_hparams *h, const double *coef)                         \
    {                                                                                              \
        const T wd = (T)h->weight_decay, eps = (T)h->eps, neg_clr = (T)-coef[0];                  \
        const bool maximize = h->maximize, l2 = h->weight_decay != 0;                              \
        for (int64_t i = 0; i < n; i++) {                                                          \
            T gi = maximize ? -g[i] : g[i];                                                        \
            if (l2) gi = gi + wd * p[i];                                                           \
            T s = sum[i] + (T)1 * gi * gi;                                                         \
            sum[i] = s;                                                                            \
            T std = SQRT(s) + eps;                                                                 \
            p[i] = p[i] + neg_clr * gi / std;                                                      \
        }                                                                                          \
    }
DEFINE_ADAGRAD(float, sqrtf)
DEFINE_ADAGRAD(double, sqrt)

/* ---- Adadelta ------------------------------------------------------------------------------ */
#define DEFINE_ADADELTA(T, SQRT)                                                                   \
    static void adadelta_##T(T *restrict p, const T *restrict g, T *restrict sq,                  \
                             T *restrict acc, int64_t n, const bn_optim_hparams *h)               \
    {                                                                                              \
        const T rho = (T)h->rho, r1 = (T)(1 - h->rho), eps = (T)h->eps;                           \
        const T wd = (T)h->weight_decay, neg_lr = (T)-h->lr;                                      \
        const bool maximize = h->maximize, l2 = h->weight_decay != 0;                              \
        for (int64_t i = 0; i < n; i++) {                                                          \
            T gi = maximize ? -g[i] : g[i];                                                        \
            if (l2) gi = gi + wd * p[i];                                                           \
            T s = sq[i] * rho;                                                                     \
            s = s + r1 * gi * gi;                                                                  \
            sq[i] = s;                                                                             \
            T std = SQRT(s + eps);                                                                 \
            T delta = SQRT(acc[i] + eps) / std * gi;                                               \
            T a = acc[i] * rho;                                                                    \
            acc[i] = a + r1 * delta * delta;                                                       \
            p[i] = p[i] + neg_lr * delta;                                                          \
        }                                                                                          \
    }
DEFINE_ADADELTA(float, sqrtf)
DEFINE_ADADELTA(double, sqrt)

/* ---- NAdam --------------------------------------------------------------------------------- */
#define DEFINE_NADAM(T, SQRT)                                                                      \
    static void nadam_##T(T *restrict p, const T *restrict g, T *restrict m, T *restrict v,       \
                          int64_t n, const bn_optim_hparams *h, const double *coef)                \
    {                                                                                              \
        const T b1 = (T)h->beta1, b2 = (T)h->beta2, a1 = (T)(1 - h->beta1);                       \
        const T a2 = (T)(1 - h->beta2), eps = (T)h->eps, wd = (T)h->weight_decay;                 \
        const T bc2 = (T)coef[0], cg = (T)coef[1], cm = (T)coef[2];                               \
        const bool l2 = h->weight_decay != 0;                                                      \
        for (int64_t i = 0; i < n; i++) {                                                          \
            T gi = g[i];                                                                           \
            if (l2) gi = gi + wd * p[i];                                                           \
            T mi = m[i] * b1;                                                                      \
            mi = mi + a1 * gi;                                                                     \
            T vi = v[i] * b2;                                                                      \
            vi = vi + a2 * gi * gi;                                                                \
            m[i] = mi;                                                                             \
            v[i] = vi;                                                                             \
            T denom = SQRT(vi / bc2) + eps;                                                        \
            T pi = p[i] + cg * gi / denom;                                                         \
            p[i] = pi + cm * mi / denom;                                                           \
        }                                                                                          \
    }
DEFINE_NADAM(float, sqrtf)
DEFINE_NADAM(double, sqrt)

/* ---- one range of one tensor ----------------------------------------------------------------- */
/* Element lo of an array of element size es, or NULL for a missing state. */
static void *at(const void *base, int64_t lo, size_t es)
{
    return base ? (char *)(uintptr_t)base + (size_t)lo * es : NULL;
}

#define RUN_RULE(T)                                                                                \
    do {                                                                                           \
        T *p = at(t->param, lo, sizeof(T));                                                        \
        const T *g = at(t->grad, lo, sizeof(T));                                                   \
        T *s0 = at(t->state[0], lo, sizeof(T)), *s1 = at(t->state[1], lo, sizeof(T));             \
        T *s2 = at(t->state[2], lo, sizeof(T));                                                    \
        switch (rule) {                                                                            \
        case BN_OPTIM_RULE_SGD: sgd_##T(p, g, s0, len, h, t->coef); break;                         \
        case BN_OPTIM_RULE_ADAM: adam_##T(p, g, s0, s1, s2, len, h, t->coef); break;               \
        case BN_OPTIM_RULE_RMSPROP: rmsprop_##T(p, g, s0, s1, s2, len, h); break;                  \
        case BN_OPTIM_RULE_ADAGRAD: adagrad_##T(p, g, s0, len, h, t->coef); break;                 \
        case BN_OPTIM_RULE_ADADELTA: adadelta_##T(p, g, s0, s1, len, h); break;                    \
        case BN_OPTIM_RULE_NADAM: nadam_##T(p, g, s0, s1, len, h, t->coef); break;                 \
        default: break;                                                                            \
        }                                                                                          \
    } while (0)

static void run_range(bn_optim_rule rule, bn_dtype dt, const bn_optim_hparams *h,
                      const bn_optim_tensor *t, int64_t lo, int64_t len)
{
    if (dt == BN_F32) RUN_RULE(float);
    else RUN_RULE(double);
}

/* The tensor holding chunk c: the last t with first[t] <= c (first is non-decreasing). */
static int tensor_of(const int64_t *first, int n, int64_t c)
{
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        int mid = lo + (hi - lo + 1) / 2;
        if (first[mid] <= c) lo = mid;
        else hi = mid - 1;
    }
    return lo;
}

static bn_status cpu_optim_update(bn_optim_rule rule, bn_dtype dt, const bn_optim_hparams *h,
                                  const bn_optim_tensor *ts, int n)
{
    if (dt != BN_F32 && dt != BN_F64)
        return bn__error(BN_ERR_UNSUPPORTED,
                         "cpu optimizer update: dtype %s is not supported (f32 or f64)",
                         bn_dtype_name(dt));
    if ((int)rule < 0 || rule >= BN_OPTIM_RULE_COUNT)
        return bn__error(BN_ERR_ARG, "cpu optimizer update: unknown rule %d", (int)rule);
    if (n <= 0) return BN_OK;
    int64_t stack_first[65];
    int64_t *first = n < 65 ? stack_first : malloc(sizeof(int64_t) * ((size_t)n + 1));
    if (!first) return bn__error(BN_ERR_OOM, "cpu optimizer update: out of memory (%d tensors)", n);
    int64_t chunks = 0, total = 0;
    for (int t = 0; t < n; t++) {
        first[t] = chunks;
        chunks += (ts[t].numel + OPTIM_CHUNK - 1) / OPTIM_CHUNK;
        total += ts[t].numel;
    }
    first[n] = chunks;
#pragma omp parallel for schedule(static) if (total >= OPTIM_PAR_MIN)
    for (int64_t c = 0; c < chunks; c++) {
        int t = tensor_of(first, n, c);
        int64_t lo = (c - first[t]) * OPTIM_CHUNK;
        int64_t len = ts[t].numel - lo < OPTIM_CHUNK ? ts[t].numel - lo : OPTIM_CHUNK;
        run_range(rule, dt, h, &ts[t], lo, len);
    }
    if (first != stack_first) free(first);
    return BN_OK;
}

/* ---- gradient clipping: grad_norm and scale_grads ----------------------------------------------
 * Both walk the arrays in the update's chunks (at most OPTIM_CHUNK elements, never across two
 * arrays), threaded the same way. grad_norm sums each chunk into its own f64 partial with
 * CLIP_LANES interleaved accumulators combined pairwise in a fixed order, then adds the partials in
 * chunk order on the calling thread: the same bits for any thread count. */
#define CLIP_LANES 8

enum { POW_ONE, POW_TWO, POW_INF, POW_GEN };

static int pow_kind(double p)
{
    return isinf(p) ? POW_INF : p == 1 ? POW_ONE : p == 2 ? POW_TWO : POW_GEN;
}

/* |x|^p (POW_INF: |x|), x already widened to f64 */
static inline double clip_term(double x, int kind, double p)
{
    double a = fabs(x);
    return kind == POW_TWO ? a * a : kind == POW_GEN ? pow(a, p) : a;
}

/* the max that keeps a NaN once one is seen */
static inline double nan_max(double m, double a) { return (a > m || a != a) ? a : m; }

static inline double f16_at(const uint16_t *h, int64_t i) { return bn_f16_to_f32(h[i]); }
static inline double bf16_at(const uint16_t *h, int64_t i)
{
    uint32_t u = (uint32_t)h[i] << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

#define DEFINE_CHUNK_NORM(NAME, T, LOAD)                                                           \
    static double NAME(const T *restrict x, int64_t n, int kind, double p)                         \
    {                                                                                              \
        double acc[CLIP_LANES] = {0};                                                              \
        int64_t i = 0;                                                                             \
        if (kind == POW_INF) {                                                                     \
            for (; i + CLIP_LANES <= n; i += CLIP_LANES)                                           \
                for (int k = 0; k < CLIP_LANES; k++)                                               \
                    acc[k] = nan_max(acc[k], fabs(LOAD(x, i + k)));                                \
            for (int k = 0; i < n; i++, k++) acc[k] = nan_max(acc[k], fabs(LOAD(x, i)));           \
            double m = 0;                                                                          \
            for (int k = 0; k < CLIP_LANES; k++) m = nan_max(m, acc[k]);                           \
            return m;                                                                              \
        }                                                                                          \
        for (; i + CLIP_LANES <= n; i += CLIP_LANES)                                               \
            for (int k = 0; k < CLIP_LANES; k++) acc[k] += clip_term(LOAD(x, i + k), kind, p);     \
        for (int k = 0; i < n; i++, k++) acc[k] += clip_term(LOAD(x, i), kind, p);                 \
        for (int w = CLIP_LANES / 2; w > 0; w /= 2)                                                \
            for (int k = 0; k < w; k++) acc[k] += acc[k + w];                                      \
        return acc[0];                                                                             \
    }
#define PLAIN_AT(x, i) ((double)(x)[i])
DEFINE_CHUNK_NORM(chunk_norm_f32, float, PLAIN_AT)
DEFINE_CHUNK_NORM(chunk_norm_f64, double, PLAIN_AT)
DEFINE_CHUNK_NORM(chunk_norm_f16, uint16_t, f16_at)
DEFINE_CHUNK_NORM(chunk_norm_bf16, uint16_t, bf16_at)

static bool clip_dtype_ok(const char *what, bn_dtype dt, bn_status *st)
{
    if (dt == BN_F32 || dt == BN_F64 || dt == BN_F16 || dt == BN_BF16) return true;
    *st = bn__error(BN_ERR_UNSUPPORTED, "cpu %s: dtype %s is not supported (f32, f64, f16, bf16)",
                    what, bn_dtype_name(dt));
    return false;
}

/* first[t] = array t's first chunk, first[n] = the chunk count; *total = the element count.
 * NULL (error set) when out of memory. */
static int64_t *chunk_starts(const char *what, const int64_t *numel, int n, int64_t *total)
{
    int64_t *first = malloc(sizeof(int64_t) * ((size_t)n + 1));
    if (!first) return bn__error_null(BN_ERR_OOM, "cpu %s: out of memory (%d arrays)", what, n);
    int64_t chunks = 0;
    *total = 0;
    for (int t = 0; t < n; t++) {
        first[t] = chunks;
        chunks += (numel[t] + OPTIM_CHUNK - 1) / OPTIM_CHUNK;
        *total += numel[t];
    }
    first[n] = chunks;
    return first;
}

static bn_status cpu_grad_norm(bn_dtype dt, const void *const *grads, const int64_t *numel, int n,
                               double p, void *out_f64)
{
    bn_status st = BN_OK;
    if (!clip_dtype_ok("grad_norm", dt, &st)) return st;
    double *out = out_f64;
    *out = 0;
    if (n <= 0) return BN_OK;
    int64_t total = 0;
    int64_t *first = chunk_starts("grad_norm", numel, n, &total);
    if (!first) return bn_error_code();
    int64_t chunks = first[n];
    double *part = malloc(sizeof(double) * (size_t)(chunks ? chunks : 1));
    if (!part) {
        free(first);
        return bn__error(BN_ERR_OOM, "cpu grad_norm: out of memory (%lld partial sums)",
                         (long long)chunks);
    }
    const int kind = pow_kind(p);
#pragma omp parallel for schedule(static) if (total >= OPTIM_PAR_MIN)
    for (int64_t c = 0; c < chunks; c++) {
        int t = tensor_of(first, n, c);
        int64_t lo = (c - first[t]) * OPTIM_CHUNK;
        int64_t len = numel[t] - lo < OPTIM_CHUNK ? numel[t] - lo : OPTIM_CHUNK;
        const char *base = grads[t];
        switch (dt) {
        case BN_F32: part[c] = chunk_norm_f32((const float *)base + lo, len, kind, p); break;
        case BN_F64: part[c] = chunk_norm_f64((const double *)base + lo, len, kind, p); break;
        case BN_F16: part[c] = chunk_norm_f16((const uint16_t *)base + lo, len, kind, p); break;
        default: part[c] = chunk_norm_bf16((const uint16_t *)base + lo, len, kind, p); break;
        }
    }
    double acc = 0;
    for (int64_t c = 0; c < chunks; c++)
        acc = kind == POW_INF ? nan_max(acc, part[c]) : acc + part[c];
    *out = acc;
    free(part);
    free(first);
    return BN_OK;
}

/* x[0 .. n) *= c (c already rounded to the element type); f16/bf16 through f32 */
static void scale_range(bn_dtype dt, void *base, int64_t lo, int64_t n, double c64, float c32)
{
    switch (dt) {
    case BN_F32: {
        float *restrict x = (float *)base + lo;
        for (int64_t i = 0; i < n; i++) x[i] = x[i] * c32;
        break;
    }
    case BN_F64: {
        double *restrict x = (double *)base + lo;
        for (int64_t i = 0; i < n; i++) x[i] = x[i] * c64;
        break;
    }
    case BN_F16: {
        uint16_t *restrict x = (uint16_t *)base + lo;
        for (int64_t i = 0; i < n; i++) x[i] = bn_f32_to_f16(bn_f16_to_f32(x[i]) * c32);
        break;
    }
    default: {
        uint16_t *restrict x = (uint16_t *)base + lo;
        for (int64_t i = 0; i < n; i++) x[i] = bn_ew_f32_to_bf16((float)bf16_at(x, i) * c32);
        break;
    }
    }
}

static bn_status cpu_scale_grads(bn_dtype dt, void *const *grads, const int64_t *numel, int n,
                                 const void *total_f64, double max_norm, double p)
{
    bn_status st = BN_OK;
    if (!clip_dtype_ok("scale_grads", dt, &st)) return st;
    if (n <= 0) return BN_OK;
    double total = *(const double *)total_f64;
    double norm = isinf(p) || p == 1 ? total : p == 2 ? sqrt(total) : pow(total, 1.0 / p);
    double coef = max_norm / (norm + 1e-6);
    if (!(coef < 1) && !isnan(coef)) return BN_OK;
    /* the coefficient in the element type, as bn_mul_scalar rounds its scalar */
    char cbuf[8];
    bn__store_f64(cbuf, dt, coef);
    double c64 = bn__load_f64(cbuf, dt);
    float c32 = (float)c64; /* exact for f32, f16 and bf16 */
    int64_t total_n = 0;
    int64_t *first = chunk_starts("scale_grads", numel, n, &total_n);
    if (!first) return bn_error_code();
    int64_t chunks = first[n];
#pragma omp parallel for schedule(static) if (total_n >= OPTIM_PAR_MIN)
    for (int64_t c = 0; c < chunks; c++) {
        int t = tensor_of(first, n, c);
        int64_t lo = (c - first[t]) * OPTIM_CHUNK;
        int64_t len = numel[t] - lo < OPTIM_CHUNK ? numel[t] - lo : OPTIM_CHUNK;
        scale_range(dt, grads[t], lo, len, c64, c32);
    }
    free(first);
    return BN_OK;
}

const bn_backend_optim bn_cpu_optim = {
    .update = cpu_optim_update,
    .grad_norm = cpu_grad_norm,
    .scale_grads = cpu_scale_grads,
};
