/* amp/autocast.c — autocast regions (born/amp.h): the per-thread stack of region dtypes, the
 * hooks ops call to cast their inputs (amp/amp_internal.h), and the per-region cache of weight
 * casts. Which ops call which hook is listed in born/amp.h; the hooks themselves know nothing
 * about ops. A cast is bn_to_dtype's copy with its ToCopyBackward node, so gradients return to
 * the source in its own dtype. */
#include "amp/amp_internal.h"
#include "autograd/autograd.h"
#include "autograd/grad_elementwise.h"

#define MAX_DEPTH 64
#define MAX_ARGS 8

/* Regions stack[0..depth) are open; those below base were opened before a suspension and do
 * not apply until it is resumed. */
static _Thread_local bn_dtype tl_stack[MAX_DEPTH];
static _Thread_local int tl_depth;
static _Thread_local int tl_base;

/* The cast cache: a few entries (one per weight in use), searched linearly. */
typedef struct cast_entry {
    bn_tensor *src;   /* retained, so its address cannot be reused while the entry lives */
    bn_tensor *cast;  /* retained */
    uint64_t version; /* src's storage version when cast */
} cast_entry;
static _Thread_local cast_entry *tl_cache;
static _Thread_local int tl_cache_len, tl_cache_cap;

static void cache_clear(void)
{
    for (int i = 0; i < tl_cache_len; i++) {
        bn_release(tl_cache[i].src);
        bn_release(tl_cache[i].cast);
    }
    free(tl_cache);
    tl_cache = NULL;
    tl_cache_len = tl_cache_cap = 0;
}

int bn__autocast_cache_size(void) { return tl_cache_len; }

/* ---- regions ---------------------------------------------------------------------------------- */
bn_status bn_autocast_begin(bn_dtype low)
{
    if (low != BN_BF16 && low != BN_F16)
        return bn__error(BN_ERR_DTYPE,
                         "bn_autocast_begin: low must be bf16 or f16, got %s (dtype %d)",
                         bn_dtype_name(low), (int)low);
    if (tl_depth == MAX_DEPTH)
        return bn__error(BN_ERR_ARG,
                         "bn_autocast_begin: %d regions are already open on this thread (the "
                         "most there may be); is a bn_autocast_end missing?",
                         MAX_DEPTH);
    tl_stack[tl_depth++] = low;
    return BN_OK;
}

bn_status bn_autocast_end(void)
{
    if (tl_depth == 0)
        return bn__error(BN_ERR_ARG, "bn_autocast_end: no bn_autocast_begin is open");
    if (tl_depth <= tl_base)
        return bn__error(BN_ERR_ARG,
                         "bn_autocast_end: the open region belongs to the caller of library code "
                         "that suspended autocast");
    if (--tl_depth == 0) cache_clear();
    return BN_OK;
}

bool bn__autocast_active(void) { return tl_depth > tl_base; }
bn_dtype bn_autocast_dtype(void) { return bn__autocast_active() ? tl_stack[tl_depth - 1] : BN_F32; }
bool bn_autocast_enabled(void) { return bn__autocast_active(); }
int bn_autocast_depth(void) { return tl_depth; }

int bn__autocast_suspend(void)
{
    int saved = tl_base;
    tl_base = tl_depth;
    return saved;
}

void bn__autocast_resume(int saved)
{
    BN_ASSERT(saved >= 0 && saved <= tl_base);
    tl_base = saved;
}

/* ---- casts ------------------------------------------------------------------------------------ */
/* Float tensors other than f64 are cast (torch's is_eligible); integers, bool and f64 never. */
static bool needs_cast(const bn_tensor *t, bn_dtype to)
{
    return t && bn_dtype_is_float(t->dtype) && t->dtype != BN_F64 && t->dtype != to;
}

static uint64_t version_of(const bn_tensor *t)
{
    return __atomic_load_n(&t->storage->version, __ATOMIC_RELAXED);
}

/* A cached cast is still t's: same data (version) and its node can carry another gradient. */
static bool entry_valid(const cast_entry *e, const bn_tensor *t)
{
    return e->version == version_of(t) && e->cast->grad_fn && !e->cast->grad_fn->released;
}

static void cache_put(const bn_tensor *t, bn_tensor *cast, int slot)
{
    if (slot < 0) {
        if (tl_cache_len == tl_cache_cap) {
            int ncap = tl_cache_cap ? 2 * tl_cache_cap : 16;
            cast_entry *n = realloc(tl_cache, sizeof *n * (size_t)ncap);
            if (!n) return; /* no room: the cast is simply not cached */
            tl_cache = n;
            tl_cache_cap = ncap;
        }
        slot = tl_cache_len++;
    } else {
        bn_release(tl_cache[slot].src);
        bn_release(tl_cache[slot].cast);
    }
    bn_retain((bn_tensor *)t);
    bn_retain(cast);
    tl_cache[slot] = (cast_entry){.src = (bn_tensor *)t, .cast = cast, .version = version_of(t)};
}

/* t in dtype `to` (a new reference), recorded for autograd. Like torch, only the
 * lower-precision casts of leaves that require grad (weights) are cached, and only while grad
 * mode is on (a cast made without a node could not pass gradients on later). */
static bn_tensor *cast_to(const bn_tensor *t, bn_dtype to)
{
    bool cacheable = to != BN_F32 && t->requires_grad && !t->grad_fn && bn_grad_enabled();
    int slot = -1;
    for (int i = 0; cacheable && i < tl_cache_len; i++) {
        cast_entry *e = &tl_cache[i];
        if (e->src != t || e->cast->dtype != to) continue;
        if (entry_valid(e, t)) {
            bn_retain(e->cast);
            return e->cast;
        }
        slot = i; /* stale: replaced below */
        break;
    }
    bn_tensor *out = bn__to_dtype(t, to);
    if (out) out = bn__grad_copy("ToCopyBackward", t, out);
    if (out && cacheable) cache_put(t, out, slot);
    return out;
}

static bool cast_args(bn_dtype to, bn_tensor **out, const bn_tensor *const *in, int n)
{
    BN_ASSERT(n >= 1 && n <= MAX_ARGS);
    bool any = false;
    for (int i = 0; i < n; i++) any = any || needs_cast(in[i], to);
    if (!any) return false;
    bool ok = true;
    for (int i = 0; i < n; i++) {
        if (needs_cast(in[i], to)) {
            out[i] = ok ? cast_to(in[i], to) : NULL;
            ok = ok && out[i];
        } else {
            out[i] = (bn_tensor *)in[i];
            bn_retain(out[i]);
        }
    }
    if (!ok)
        for (int i = 0; i < n; i++) {
            bn_release(out[i]);
            out[i] = NULL;
        }
    return true;
}

bool bn__autocast_low_args(bn_tensor **out, const bn_tensor *const *in, int n)
{
    return bn__autocast_active() && cast_args(tl_stack[tl_depth - 1], out, in, n);
}

bool bn__autocast_f32_args(bn_tensor **out, const bn_tensor *const *in, int n)
{
    return bn__autocast_active() && cast_args(BN_F32, out, in, n);
}

bn_tensor *bn__autocast_result(bn_tensor **out, int n, bn_tensor *r)
{
    for (int i = 0; i < n; i++) bn_release(out[i]);
    return r;
}

static bn_tensor *cast_one(const bn_tensor *t, bn_dtype to)
{
    if (!t) return NULL;
    if (bn__autocast_active() && needs_cast(t, to)) return cast_to(t, to);
    bn_retain((bn_tensor *)t);
    return (bn_tensor *)t;
}

bn_tensor *bn__autocast_input(const bn_tensor *t) { return cast_one(t, bn_autocast_dtype()); }
bn_tensor *bn__autocast_f32(const bn_tensor *t) { return cast_one(t, BN_F32); }
