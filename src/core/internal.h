/* core/internal.h — the private shape of tensors and storage, and the helpers every layer above
 * core/ uses: errors, scope registration, views, allocation. Not installed. */
#ifndef BORN_CORE_INTERNAL_H
#define BORN_CORE_INTERNAL_H

#include "born/ops.h"
#include "born/tensor.h"

#include <stdarg.h>
#include <stdlib.h>

/* ---- storage: one refcounted buffer on one device ---------------------------------------- */
typedef struct bn_storage {
    int64_t refcount; /* atomic */
    bn_device device;
    void *data;
    size_t nbytes;
    void (*free_fn)(void *data, void *ctx); /* NULL: the device backend's free */
    void *free_ctx;
    uint64_t version; /* bumped by every in-place write; autograd checks saved tensors with it */
} bn_storage;

struct bn_node; /* autograd graph node (autograd/) */

/* ---- tensor: dtype + layout + storage reference (+ autograd fields) ---------------------- */
struct bn_tensor {
    int64_t refcount; /* atomic */
    bn_dtype dtype;
    int ndim;
    int64_t shape[BN_MAX_DIMS];
    int64_t strides[BN_MAX_DIMS]; /* in elements; may be 0 (broadcast) */
    int64_t offset;               /* in elements, from storage->data */
    bn_storage *storage;
    /* autograd (autograd/engine.c) */
    bool requires_grad;
    bool retains_grad;       /* a non-leaf that keeps its gradient (bn_retain_grad) */
    struct bn_tensor *grad;  /* accumulated gradient, or NULL */
    struct bn_node *grad_fn; /* the node that produced this tensor, or NULL for a leaf */
};

/* Autograd hooks the core needs (autograd/engine.c). */
void bn__node_release(struct bn_node *n);
void bn__node_forget_output(struct bn_node *n, const struct bn_tensor *t);
/* In-place writes bump the storage's version, so autograd can tell a saved tensor changed. */
void bn__bump_version(struct bn_tensor *t);
/* Refuses an in-place write to a tensor that requires grad while grad mode is on (it would
 * corrupt the graph), naming fn. */
bool bn__check_inplace(const char *fn, const struct bn_tensor *t);

/* ---- errors ------------------------------------------------------------------------------- */
/* Sets the per-thread error (printf-style message) and returns code / NULL. */
bn_status bn__error(bn_status code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void *bn__error_null(bn_status code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* For a NULL argument: keeps an existing error (propagation); otherwise reports
 * "<fn>: argument <arg> is NULL". Returns NULL. */
void *bn__null_arg(const char *fn, const char *arg);
bn_status bn__null_arg_status(const char *fn, const char *arg);
/* Writes "[2, 3]" into buf; returns buf. */
const char *bn__dims_str(const int64_t *dims, int ndim, char *buf, size_t n);
#define BN_SHAPE_STR_MAX 192
/* Convenience: a thread-local ring of 4 buffers, for formatting a few shapes in one message. */
const char *bn__tshape(const bn_tensor *t);
const char *bn__sshape(bn_shape s);

/* Internal invariant: a bug in born, never bad user input. */
#define BN_ASSERT(cond)                                                                            \
    do {                                                                                           \
        if (!(cond)) bn__assert_fail(#cond, __FILE__, __LINE__);                                   \
    } while (0)
_Noreturn void bn__assert_fail(const char *expr, const char *file, int line);

/* Argument checks used at the top of public functions. */
#define BN_CHECK_NULL(fn, t)                                                                       \
    do {                                                                                           \
        if (!(t)) return bn__null_arg(fn, #t);                                                     \
    } while (0)
#define BN_CHECK_NULL_STATUS(fn, t)                                                                \
    do {                                                                                           \
        if (!(t)) return bn__null_arg_status(fn, #t);                                              \
    } while (0)

/* Normalises a possibly negative dim against ndim (ndim 0 accepts -1 and 0, like torch).
 * Returns false and sets BN_ERR_ARG naming fn and arg when out of range. */
bool bn__norm_dim(const char *fn, const char *arg, int dim, int ndim, int *out);

/* ---- scopes ------------------------------------------------------------------------------- */
/* Every public function that returns a new tensor passes it through bn__out(): the innermost
 * open scope takes it, unless registration is suspended (library code calling public ops
 * brackets that with bn__scope_suspend/resume and releases its temporaries itself). A scope
 * opened while suspended registers normally. */
bn_tensor *bn__out(bn_tensor *t);
void bn__scope_suspend(void);
void bn__scope_resume(void);

/* ---- tensors ------------------------------------------------------------------------------ */
/* A new contiguous tensor with uninitialised data on device d. Not registered with a scope. */
bn_tensor *bn__empty(const int64_t *shape, int ndim, bn_dtype dt, bn_device d);
bn_tensor *bn__empty_like(const bn_tensor *t); /* same shape, dtype, device; contiguous */
/* A view sharing base's storage. Not registered. */
bn_tensor *bn__view(const bn_tensor *base, int ndim, const int64_t *shape, const int64_t *strides,
                    int64_t offset);
void bn__contiguous_strides(const int64_t *shape, int ndim, int64_t *strides);
bool bn__is_contiguous(const bn_tensor *t);
int64_t bn__numel(const bn_tensor *t);
/* Pointer to element 0 (storage data + offset * element size). CPU only. */
void *bn__data(const bn_tensor *t);
/* Wraps a buffer that the caller allocated; free_fn(data, ctx) runs when the last reference
 * goes (free_fn NULL: never freed, e.g. a static or mmapped buffer owned elsewhere). */
bn_tensor *bn__wrap(void *data, size_t nbytes, const int64_t *shape, int ndim, bn_dtype dt,
                    bn_device d, void (*free_fn)(void *, void *), void *ctx);

/* Tensor headers currently alive (for leak checks in tests). */
int64_t bn__live_tensors(void);

/* Internal (non-registering) versions of the public conversions, for library code. */
bn_tensor *bn__contiguous(const bn_tensor *t);
bn_tensor *bn__to_dtype(const bn_tensor *t, bn_dtype dt);
/* relu's backward in one pass: g where x > 0, else 0 (a NaN x passes g); records no gradient
 * (ops/elementwise_binary.c). Registered with the scope. */
bn_tensor *bn__relu_grad(const bn_tensor *g, const bn_tensor *x);
/* g * f'(x) in one pass for op = BN_BINARY_{RELU,GELU,GELU_TANH,SILU}_GRAD (backend.h); records
 * no gradient. Registered with the scope. */
bn_tensor *bn__act_grad(int op, const bn_tensor *g, const bn_tensor *x);
/* Attention of packed rows (ops/attention.c): qkv (B, T, (hq + 2 hkv) hd) holds each row's hq
 * query heads, then hkv key heads, then hkv value heads (one fused projection's output); the
 * result is (B, T, hq hd), the heads merged, as bn_attention of the parts would give. The fused
 * kernels read the parts in place and the backward writes one gradient of qkv's shape. opts as
 * bn_attention's (the mask broadcasts to (B, hq, T, T)). */
struct bn_attention_opts;
bn_tensor *bn__attention_packed(const bn_tensor *qkv, int64_t hq, int64_t hkv,
                                const struct bn_attention_opts *opts);
bn_tensor *bn__expand(const bn_tensor *t, const int64_t *shape, int ndim); /* broadcast view */
bn_tensor *bn__reshape(const bn_tensor *t, const int64_t *shape, int ndim);
bn_tensor *bn__full(const int64_t *shape, int ndim, double v, bn_dtype dt, bn_device d);
/* Broadcast shape of a and b into out (PyTorch rules); false + BN_ERR_SHAPE naming fn. */
bool bn__broadcast_shapes(const char *fn, const int64_t *a, int na, const int64_t *b, int nb,
                          int64_t *out, int *nout);
/* Checks that all the given tensors live on one device; names fn. */
bool bn__same_device(const char *fn, const bn_tensor *a, const bn_tensor *b);

/* Dtype helpers. */
bool bn__dtype_valid(bn_dtype dt);
/* dtype for a "fraction-producing" op given input dtype: float stays, int/bool -> f32. */
bn_dtype bn__float_result(bn_dtype dt);
/* torch.result_type of two tensors: 0-d tensors only raise the category (see dtype.c). */
bn_dtype bn__result_type(const bn_tensor *a, const bn_tensor *b);
/* Result dtype of tensor (dtype dt) op python scalar s, PyTorch style. */
bn_dtype bn__promote_scalar(bn_dtype dt, double s);

/* Element read/write as double, for slow paths, printing and tests. */
double bn__load_f64(const void *p, bn_dtype dt);
void bn__store_f64(void *p, bn_dtype dt, double v);

/* Per-thread generator: returns the counter base for n Philox blocks and advances it. */
void bn__rng_take(uint64_t nblocks, uint64_t *seed, uint64_t *counter);
/* CUDA graph captures (backend/plugin.c): while the thread captures, bn__rng_take notes that
 * random numbers were drawn (a replay would repeat them); bn__rng_capture_end returns whether any
 * were. */
void bn__rng_capture_begin(void);
bool bn__rng_capture_end(void);
/* True while the calling thread captures a CUDA graph: checks that would read a value back to
 * the host (a class index out of range, ...) must then poison their result with NaN instead,
 * since no value exists until a replay. */
bool bn__capturing(void);

/* Aligned host allocation (64 bytes); free with bn__free_aligned. */
void *bn__alloc_aligned(size_t nbytes);
void bn__free_aligned(void *p);

#endif
