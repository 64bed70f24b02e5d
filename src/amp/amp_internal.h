/* amp/amp_internal.h — the hooks through which ops take part in autocast (born/amp.h).
 *
 * A low-precision op starts, after its NULL checks, with one line
 *
 *     BN_AUTOCAST_LOW(bn_conv2d(ac[0], ac[1], ac[2], o), x, w, b);
 *
 * (BN_AUTOCAST_F32 for an op that needs range), which is short for
 *
 *     bn_tensor *ac[3];
 *     if (bn__autocast_low_args(ac, (const bn_tensor *[]){x, w, b}, 3))
 *         return bn__autocast_result(ac, 3, bn_conv2d(ac[0], ac[1], ac[2], o));
 *
 * Inside a region, when an input needs a cast, the op calls itself again on the cast inputs
 * (which need none, so the second call runs the op's ordinary code) and returns that result;
 * outside a region, or when nothing needs a cast, the check costs one thread-local read and the
 * op goes on unchanged. */
#ifndef BORN_AMP_INTERNAL_H
#define BORN_AMP_INTERNAL_H

#include "born/amp.h"
#include "core/internal.h"

/* True when a region is open on this thread and autocast is not suspended. */
bool bn__autocast_active(void);

/* For a low-precision op: fills out[0..n) with new references to the inputs in[0..n) (NULL
 * allowed): a float input other than f64 that is not in the region's dtype becomes its cast
 * (differentiable; cached for leaves that require grad), any other input is retained as it is.
 * Returns false (out untouched, nothing to release) when autocast is off or no input needs a
 * cast. When a cast fails, every out[i] is NULL and the error is set, so the op's call on
 * out[0] fails with that error (in[0] must be a required input). 1 <= n <= 8. */
bool bn__autocast_low_args(bn_tensor **out, const bn_tensor *const *in, int n);
/* The same for an op computed in f32: f16 and bf16 inputs become f32. */
bool bn__autocast_f32_args(bn_tensor **out, const bn_tensor *const *in, int n);
/* Releases out[0..n) and returns r: the tail of the pattern above. */
bn_tensor *bn__autocast_result(bn_tensor **out, int n, bn_tensor *r);

/* The pattern above in one line, for ops that pass their tensor inputs on unchanged:
 *     BN_AUTOCAST_LOW(bn_linear(ac[0], ac[1], ac[2]), x, w, b);
 *     BN_AUTOCAST_F32(bn_softmax(ac[0], dim), t);
 * declares ac[] (one entry per input listed after the call), and when a cast is needed returns
 * call — which reads the cast inputs from ac[] — from the enclosing function. */
#define BN_AUTOCAST_LOW(call, ...) BN__AUTOCAST(bn__autocast_low_args, call, __VA_ARGS__)
#define BN_AUTOCAST_F32(call, ...) BN__AUTOCAST(bn__autocast_f32_args, call, __VA_ARGS__)
#define BN__AUTOCAST(hook, call, ...)                                                              \
    do {                                                                                           \
        bn_tensor *ac[sizeof((const bn_tensor *[]){__VA_ARGS__}) / sizeof(const bn_tensor *)];    \
        if (hook(ac, (const bn_tensor *[]){__VA_ARGS__}, (int)(sizeof ac / sizeof ac[0])))         \
            return bn__autocast_result(ac, (int)(sizeof ac / sizeof ac[0]), call);                 \
    } while (0)

/* Single-tensor forms: t cast to the region's dtype (bn__autocast_input) or to f32
 * (bn__autocast_f32) when autocast is active and t is eligible, else t retained. A new reference
 * either way (not registered with a scope); NULL for a NULL t or a failed cast. */
bn_tensor *bn__autocast_input(const bn_tensor *t);
bn_tensor *bn__autocast_f32(const bn_tensor *t);

/* Library code that must run in its own dtypes inside a user's region (the backward engine's
 * rules, a checkpoint's recompute) brackets itself with these: suspend returns the previous
 * state, resume restores it. */
int bn__autocast_suspend(void);
void bn__autocast_resume(int saved);

/* Cached casts alive on this thread (for tests). */
int bn__autocast_cache_size(void);

#endif
