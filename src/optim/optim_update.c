/* optim/optim_update.c — the per-parameter update of each optimizer: one fused loop over the
 * parameter, its gradient and its state, for float32 and float64.
 *
 * Each loop follows PyTorch 1.13's _single_tensor_<name> step for step: the same operations in
 * the same order, scalars rounded to the element type as torch's kernels do (a + alpha*b and
 * a / s with alpha and s in the element type; addcdiv as a + (v*b)/c), so the
 * results agree with torch.optim to the last few bits. Every array is (n,) contiguous. */
#include "optim/optim_internal.h"

#include "backend/cpu/iter.h"

#include <math.h>

#define PAR_FOR _Pragma("omp parallel for schedule(static) if (n >= BN_PAR_MIN_ELEMS)")

/* ---- SGD: d = ±g + wd*p; buf = buf*m + (1-damp)*d (first step: buf = d); p -= lr*(nesterov ? d
 * + m*buf : buf) */
#define DEFINE_SGD(T)                                                                              \
    static void sgd_##T(T *p, const T *g, T *buf, int64_t n, const optim_hyper *h, bool first)    \
    {                                                                                              \
        const T wd = (T)h->weight_decay, m = (T)h->momentum, damp = (T)(1 - h->dampening);       \
        const T neg_lr = (T)-h->lr;                                                                \
        PAR_FOR                                                                                    \
        for (int64_t i = 0; i < n; i++) {                                                          \
            T d = h->maximize ? -g[i] : g[i];                                                      \
            if (h->weight_decay != 0) d = d + wd * p[i];                                           \
            if (buf) {                                                                             \
                T b = first ? d : buf[i] * m + damp * d;                                           \
                buf[i] = b;                                                                        \
                d = h->nesterov ? d + m * b : b;                                                   \
            }                                                                                      \
            p[i] = p[i] + neg_lr * d;                                                              \
        }                                                                                          \
    }
DEFINE_SGD(float)
DEFINE_SGD(double)

/* ---- Adam / AdamW ---------------------------------------------------------------------------- */
typedef struct adam_k {
    double decay;       /* AdamW: p *= decay first */
    double l2;          /* Adam: g += l2 * p */
    double step_size;   /* lr / (1 - beta1^t) */
    double bc2_sqrt;    /* sqrt(1 - beta2^t) */
} adam_k;

#define DEFINE_ADAM(T, SQRT)                                                                       \
    static void adam_##T(T *p, const T *g, T *m, T *v, T *vmax, int64_t n, const optim_hyper *h, \
                         const adam_k *k)                                                          \
    {                                                                                              \
        const T b1 = (T)h->beta1, b2 = (T)h->beta2, a1 = (T)(1 - h->beta1);                       \
        const T a2 = (T)(1 - h->beta2), eps = (T)h->eps, l2 = (T)k->l2, decay = (T)k->decay;      \
        const T bc2s = (T)k->bc2_sqrt, neg_step = (T)-k->step_size;                     \
        PAR_FOR                                                                                    \
        for (int64_t i = 0; i < n; i++) {                                                          \
            T gi = h->maximize ? -g[i] : g[i];                                                     \
            T pi = p[i];                                                                           \
            if (k->decay != 1) pi = pi * decay;                                                    \
            if (k->l2 != 0) gi = gi + l2 * pi;                                                     \
            T mi = m[i] * b1;                                                                      \
            mi = mi + a1 * gi;                                                                     \
            T vi = v[i] * b2;                                                                      \
            vi = vi + a2 * gi * gi;                                                                \
            m[i] = mi;                                                                             \
            v[i] = vi;                                                                             \
            if (vmax) {                                                                            \
                if (!(vmax[i] >= vi)) vmax[i] = vi;                                                \
                vi = vmax[i];                                                                      \
            }                                                                                      \
            T denom = SQRT(vi) / bc2s + eps;                                                    \
            p[i] = pi + neg_step * mi / denom;                                                   \
        }                                                                                          \
    }
DEFINE_ADAM(float, sqrtf)
DEFINE_ADAM(double, sqrt)

/* ---- RMSprop --------------------------------------------------------------------------------- */
#define DEFINE_RMSPROP(T, SQRT)                                                                    \
    static void rmsprop_##T(T *p, const T *g, T *sq, T *buf, T *gavg, int64_t n,                  \
                            const optim_hyper *h)                                                  \
    {                                                                                              \
        const T alpha = (T)h->alpha, a1 = (T)(1 - h->alpha), eps = (T)h->eps;                     \
        const T wd = (T)h->weight_decay, mom = (T)h->momentum, neg_lr = (T)-h->lr;                \
        PAR_FOR                                                                                    \
        for (int64_t i = 0; i < n; i++) {                                                          \
            T gi = h->maximize ? -g[i] : g[i];                                                     \
            if (h->weight_decay != 0) gi = gi + wd * p[i];                                         \
            T s = sq[i] * alpha;                                                                   \
            s = s + a1 * gi * gi;                                                                  \
            sq[i] = s;                                                                             \
            T avg;                                                                                 \
            if (gavg) {                                                                            \
                T ga = gavg[i] * alpha;                                                            \
                ga = ga + a1 * gi;                                                                 \
                gavg[i] = ga;                                                                      \
                avg = SQRT(s + (T)-1 * ga * ga);                                                   \
            } else {                                                                               \
                avg = SQRT(s);                                                                     \
            }                                                                                      \
            avg = avg + eps;                                                                       \
            if (buf) {                                                                             \
                T b = buf[i] * mom;                                                                \
                b = b + gi / avg;                                                                  \
                buf[i] = b;                                                                        \
                p[i] = p[i] + neg_lr * b;                                                          \
            } else {                                                                               \
                p[i] = p[i] + neg_lr * gi / avg;                                                 \
            }                                                                                      \
        }                                                                                          \
    }
DEFINE_RMSPROP(float, sqrtf)
DEFINE_RMSPROP(double, sqrt)

/* ---- Adagrad: sum += g*g; p -= clr * g / (sqrt(sum) + eps), clr = lr / (1 + (t-1)*lr_decay) */
#define DEFINE_ADAGRAD(T, SQRT)                                                                    \
    static void adagrad_##T(T *p, const T *g, T *sum, int64_t n, const optim_hyper *h,            \
                            double clr)                                                            \
    {                                                                                              \
        const T wd = (T)h->weight_decay, eps = (T)h->eps, neg_clr = (T)-clr;                      \
        PAR_FOR                                                                                    \
        for (int64_t i = 0; i < n; i++) {                                                          \
            T gi = h->maximize ? -g[i] : g[i];                                                     \
            if (h->weight_decay != 0) gi = gi + wd * p[i];                                         \
            T s = sum[i] + (T)1 * gi * gi;                                                         \
            sum[i] = s;                                                                            \
            T std = SQRT(s) + eps;                                                                 \
            p[i] = p[i] + neg_clr * gi / std;                                                    \
        }                                                                                          \
    }
DEFINE_ADAGRAD(float, sqrtf)
DEFINE_ADAGRAD(double, sqrt)

/* ---- Adadelta -------------------------------------------------------------------------------- */
#define DEFINE_ADADELTA(T, SQRT)                                                                   \
    static void adadelta_##T(T *p, const T *g, T *sq, T *acc, int64_t n, const optim_hyper *h)    \
    {                                                                                              \
        const T rho = (T)h->rho, r1 = (T)(1 - h->rho), eps = (T)h->eps;                           \
        const T wd = (T)h->weight_decay, neg_lr = (T)-h->lr;                                      \
        PAR_FOR                                                                                    \
        for (int64_t i = 0; i < n; i++) {                                                          \
            T gi = h->maximize ? -g[i] : g[i];                                                     \
            if (h->weight_decay != 0) gi = gi + wd * p[i];                                         \
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

/* ---- NAdam ----------------------------------------------------------------------------------- */
typedef struct nadam_k {
    double bc2;      /* 1 - beta2^t */
    double coef_g;   /* -lr * (1 - mu) / (1 - mu_product) */
    double coef_m;   /* -lr * mu_next / (1 - mu_product_next) */
} nadam_k;

#define DEFINE_NADAM(T, SQRT)                                                                      \
    static void nadam_##T(T *p, const T *g, T *m, T *v, int64_t n, const optim_hyper *h,          \
                          const nadam_k *k)                                                        \
    {                                                                                              \
        const T b1 = (T)h->beta1, b2 = (T)h->beta2, a1 = (T)(1 - h->beta1);                       \
        const T a2 = (T)(1 - h->beta2), eps = (T)h->eps, wd = (T)h->weight_decay;                 \
        const T bc2 = (T)k->bc2, cg = (T)k->coef_g, cm = (T)k->coef_m;                    \
        PAR_FOR                                                                                    \
        for (int64_t i = 0; i < n; i++) {                                                          \
            T gi = g[i];                                                                           \
            if (h->weight_decay != 0) gi = gi + wd * p[i];                                         \
            T mi = m[i] * b1;                                                                      \
            mi = mi + a1 * gi;                                                                     \
            T vi = v[i] * b2;                                                                      \
            vi = vi + a2 * gi * gi;                                                                \
            m[i] = mi;                                                                             \
            v[i] = vi;                                                                             \
            T denom = SQRT(vi / bc2) + eps;                                                    \
            T pi = p[i] + cg * gi / denom;                                                       \
            p[i] = pi + cm * mi / denom;                                                         \
        }                                                                                          \
    }
DEFINE_NADAM(float, sqrtf)
DEFINE_NADAM(double, sqrt)

/* The state tensor s of parameter i as T*, or NULL when the optimizer keeps fewer. */
static void *state_ptr(bn_optim *o, int i, int s)
{
    return s < o->nstate ? bn__data(o->state[i * o->nstate + s]) : NULL;
}

/* Dispatches the float or double version of an update. */
#define DISPATCH(dt, name, ...)                                                                    \
    do {                                                                                           \
        if ((dt) == BN_F32) name##_float(__VA_ARGS__);                                             \
        else name##_double(__VA_ARGS__);                                                           \
    } while (0)

/* torch keeps state['mu_product'] as a float32 tensor: every product rounds to float. */
static double nadam_coefs(bn_optim *o, int i, double t, nadam_k *k)
{
    const optim_hyper *h = &o->h;
    double mu = h->beta1 * (1. - 0.5 * pow(0.96, t * h->momentum_decay));
    double mu_next = h->beta1 * (1. - 0.5 * pow(0.96, (t + 1) * h->momentum_decay));
    /* a float32 tensor times a Python float: the float is rounded to float32 first */
    float prod = (float)o->mu_product[i] * (float)mu;
    o->mu_product[i] = prod;
    /* torch 1.13 multiplies mu in a second time here (a bug fixed later); parity keeps it */
    float prod_next = prod * (float)mu * (float)mu_next;
    k->bc2 = 1.0 - pow(h->beta2, t);
    k->coef_g = -h->lr * (1. - mu) / (1. - (double)prod);
    k->coef_m = -h->lr * mu_next / (1. - (double)prod_next);
    return mu;
}

void bn__optim_update(bn_optim *o, int i, const bn_tensor *grad)
{
    bn_tensor *param = o->params[i];
    bn_dtype dt = param->dtype;
    void *p = bn__data(param);
    const void *g = bn__data(grad);
    int64_t n = bn__numel(param);
    const optim_hyper *h = &o->h;
    double t = (double)o->param_steps[i];
    switch (o->kind) {
    case OPTIM_SGD:
        DISPATCH(dt, sgd, p, g, state_ptr(o, i, 0), n, h, o->param_steps[i] == 1);
        break;
    case OPTIM_ADAM:
    case OPTIM_ADAMW: {
        bool w = o->kind == OPTIM_ADAMW;
        adam_k k = {.decay = w ? 1 - h->lr * h->weight_decay : 1,
                    .l2 = w ? 0 : h->weight_decay,
                    .step_size = h->lr / (1 - pow(h->beta1, t)),
                    .bc2_sqrt = sqrt(1 - pow(h->beta2, t))};
        DISPATCH(dt, adam, p, g, state_ptr(o, i, 0), state_ptr(o, i, 1),
                 h->amsgrad ? state_ptr(o, i, 2) : NULL, n, h, &k);
        break;
    }
    case OPTIM_RMSPROP: {
        int s = 1;
        void *buf = h->momentum > 0 ? state_ptr(o, i, s++) : NULL;
        void *gavg = h->centered ? state_ptr(o, i, s) : NULL;
        DISPATCH(dt, rmsprop, p, g, state_ptr(o, i, 0), buf, gavg, n, h);
        break;
    }
    case OPTIM_ADAGRAD:
        DISPATCH(dt, adagrad, p, g, state_ptr(o, i, 0), n, h,
                 h->lr / (1 + (t - 1) * h->lr_decay));
        break;
    case OPTIM_ADADELTA:
        DISPATCH(dt, adadelta, p, g, state_ptr(o, i, 0), state_ptr(o, i, 1), n, h);
        break;
    case OPTIM_NADAM: {
        nadam_k k;
        nadam_coefs(o, i, t, &k);
        DISPATCH(dt, nadam, p, g, state_ptr(o, i, 0), state_ptr(o, i, 1), n, h, &k);
        break;
    }
    case OPTIM_LBFGS: BN_ASSERT(!"L-BFGS updates through bn_optim_lbfgs_step"); break;
    }
}
