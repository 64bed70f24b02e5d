/* backend/backend.h — the internal interface every device backend implements (DESIGN §6).
 *
 * ops/ validates arguments, infers the result's shape and dtype, allocates it and then calls one
 * kernel family here. Kernels trust their arguments (shapes agree, dtypes are supported by the
 * op, indices were range-checked where ops/ can do so cheaply) and return BN_ERR_UNSUPPORTED for
 * a dtype or op they lack — never a silent fallback to another device. A kernel that finds bad
 * data it alone can see (an out-of-range index inside an index tensor) returns BN_ERR_ARG with a
 * message through bn__error. */
#ifndef BORN_BACKEND_H
#define BORN_BACKEND_H

#include "core/internal.h"

/* A tensor as a kernel sees it: element pointer, dtype, shape and strides (in elements). */
typedef struct bn_tview {
    void *data; /* element 0, already offset */
    bn_dtype dtype;
    int ndim;
    int64_t shape[BN_MAX_DIMS];
    int64_t strides[BN_MAX_DIMS];
} bn_tview;

bn_tview bn__tview(const bn_tensor *t);

typedef enum bn_unary_op {
    BN_UNARY_NEG,
    BN_UNARY_ABS,
    BN_UNARY_EXP,
    BN_UNARY_LOG,
    BN_UNARY_LOG1P,
    BN_UNARY_SQRT,
    BN_UNARY_RSQRT,
    BN_UNARY_SIN,
    BN_UNARY_COS,
    BN_UNARY_TANH,
    BN_UNARY_SIGMOID,
    BN_UNARY_RELU,
    BN_UNARY_LEAKY_RELU, /* p.alpha = negative slope */
    BN_UNARY_ELU,        /* p.alpha */
    BN_UNARY_GELU,
    BN_UNARY_GELU_TANH,
    BN_UNARY_SILU,
    BN_UNARY_SOFTPLUS, /* p.alpha = beta, p.beta = threshold */
    BN_UNARY_ERF,
    BN_UNARY_FLOOR,
    BN_UNARY_CEIL,
    BN_UNARY_ROUND,
    BN_UNARY_SIGN,
    BN_UNARY_CLAMP, /* p.lo/p.hi with has_lo/has_hi */
    BN_UNARY_LOGICAL_NOT, /* out is bool */
    BN_UNARY_COUNT
} bn_unary_op;

typedef struct bn_unary_params {
    double alpha, beta;
    double lo, hi;
    bool has_lo, has_hi;
} bn_unary_params;

typedef enum bn_binary_op {
    BN_BINARY_ADD,
    BN_BINARY_SUB,
    BN_BINARY_MUL,
    BN_BINARY_DIV,
    BN_BINARY_POW,
    BN_BINARY_MAXIMUM,
    BN_BINARY_MINIMUM,
    BN_BINARY_REMAINDER,
    /* out = b <= 0 ? 0 : a — relu's backward in one pass (a the gradient, b relu's input; a NaN
     * b passes a, like torch's threshold_backward); float dtypes only */
    BN_BINARY_RELU_GRAD,
    /* out = a * f'(b) for f = gelu (erf form), gelu (tanh form), silu: those activations'
     * backward in one pass (a the gradient, b the activation's input); float dtypes only */
    BN_BINARY_GELU_GRAD,
    BN_BINARY_GELU_TANH_GRAD,
    BN_BINARY_SILU_GRAD,
    BN_BINARY_EQ, /* comparisons and logicals write a bool out */
    BN_BINARY_NE,
    BN_BINARY_LT,
    BN_BINARY_LE,
    BN_BINARY_GT,
    BN_BINARY_GE,
    BN_BINARY_AND,
    BN_BINARY_OR,
    BN_BINARY_XOR,
    BN_BINARY_COUNT
} bn_binary_op;

typedef enum bn_reduce_op {
    BN_REDUCE_SUM,
    BN_REDUCE_MEAN,
    BN_REDUCE_PROD,
    BN_REDUCE_MAX,
    BN_REDUCE_MIN,
    BN_REDUCE_ARGMAX, /* out i64 */
    BN_REDUCE_ARGMIN,
    BN_REDUCE_VAR, /* p.correction */
    BN_REDUCE_STD,
    BN_REDUCE_LOGSUMEXP,
    BN_REDUCE_ALL, /* out bool */
    BN_REDUCE_ANY,
    BN_REDUCE_COUNT
} bn_reduce_op;

typedef struct bn_reduce_params {
    int correction;
} bn_reduce_params;

typedef enum bn_sequence_op {
    BN_SEQ_ARANGE,  /* out[i] = start + i * step */
    BN_SEQ_LINSPACE /* torch.linspace: start + i*step for the first half, end - (n-1-i)*step after */
} bn_sequence_op;

typedef enum bn_random_op {
    BN_RANDOM_UNIFORM, /* [a, b) */
    BN_RANDOM_NORMAL,  /* mean a, std b */
    BN_RANDOM_INT      /* integers in [a, b) */
} bn_random_op;

typedef enum bn_scatter_op { BN_SCATTER_SET, BN_SCATTER_ADD } bn_scatter_op;

typedef struct bn_backend {
    const char *name;
    bn_device_type type;

    /* ---- memory ---- */
    void *(*alloc)(size_t nbytes); /* 64-byte aligned; NULL on failure (ops/ reports OOM) */
    void (*free)(void *p);
    /* Copies between host memory and this device (for the CPU backend: memcpy). */
    bn_status (*copy_to_host)(void *dst, const void *src, size_t nbytes);
    bn_status (*copy_from_host)(void *dst, const void *src, size_t nbytes);
    void (*synchronize)(void); /* (optional) NULL for synchronous backends */

    /* ---- data movement ---- */
    /* dst[i] = cast(src[i]) for every index of dst's shape (src has the same shape; a stride
     * may be 0). Any dtype pair. */
    bn_status (*copy)(const bn_tview *src, const bn_tview *dst);
    bn_status (*fill)(const bn_tview *dst, double v);
    bn_status (*sequence)(bn_sequence_op op, const bn_tview *dst, double start, double step,
                          double end);
    /* Counter-based: element i draws from Philox block (counter + i/4 for uniform). */
    bn_status (*random)(bn_random_op op, const bn_tview *dst, uint64_t seed, uint64_t counter,
                        double a, double b);

    /* ---- element-wise ---- */
    /* x and out have the same shape; x's dtype is out's dtype, except LOGICAL_NOT (out bool). */
    bn_status (*unary)(bn_unary_op op, const bn_tview *x, const bn_tview *out,
                       const bn_unary_params *p);
    /* a and b are broadcast to out's shape (0 strides) and share one dtype; out has that dtype,
     * or bool for comparisons and logicals. */
    bn_status (*binary)(bn_binary_op op, const bn_tview *a, const bn_tview *b, const bn_tview *out);
    /* cond (bool), a, b broadcast to out's shape; a, b and out share one dtype. */
    bn_status (*where)(const bn_tview *cond, const bn_tview *a, const bn_tview *b,
                       const bn_tview *out);

    /* ---- reductions ---- */
    /* Reduces x over the dims flagged in reduce_mask (bit d = dim d). out has x's ndim with the
     * reduced dims of size 1 (ops/ reshapes afterwards for keepdim=false). For ARGMAX/ARGMIN
     * exactly one bit is set. */
    bn_status (*reduce)(bn_reduce_op op, const bn_tview *x, const bn_tview *out,
                        uint32_t reduce_mask, const bn_reduce_params *p);
    bn_status (*cumsum)(const bn_tview *x, const bn_tview *out, int dim);
    /* softmax or log_softmax along dim; x and out same shape and dtype (float). */
    bn_status (*softmax)(const bn_tview *x, const bn_tview *out, int dim, bool log);

    /* ---- linear algebra ---- */
    /* a is (..., M, K), b is (..., K, N), out is (..., M, N); all three have the same ndim >= 2,
     * batch dims already broadcast (0 strides allowed); one dtype. */
    bn_status (*matmul)(const bn_tview *a, const bn_tview *b, const bn_tview *out);
    /* Optional (NULL: none): a linear layer with its bias added by the product itself (a GEMM
     * epilogue). x (M, K) and w (N, K) with rows of stride-1 elements, bias (N) contiguous, out
     * (M, N) row-major; one float dtype. out = x w^T + bias, the bias added to the f32
     * accumulator before the one rounding to out's dtype. Returns BN_ERR_UNSUPPORTED without
     * setting an error when the backend has no kernel for the problem (the caller then runs
     * matmul and an add); other codes are errors. */
    bn_status (*linear_bias)(const bn_tview *x, const bn_tview *w, const bn_tview *bias,
                             const bn_tview *out);

    /* ---- indexing ---- */
    /* out = x with dim indexed by index (1-D i64 or i32). */
    bn_status (*index_select)(const bn_tview *x, int dim, const bn_tview *index,
                              const bn_tview *out);
    /* out[i][j][k] = x[index[i][j][k]][j][k] (dim 0), index has out's shape. */
    bn_status (*gather)(const bn_tview *x, int dim, const bn_tview *index, const bn_tview *out);
    /* In place on out (already a copy of the input): out[index[i][j]][j] (=|+=) src[i][j]. */
    bn_status (*scatter)(bn_scatter_op op, const bn_tview *out, int dim, const bn_tview *index,
                         const bn_tview *src);
    /* Stable sort along dim; values and/or indices (i64) may be NULL. */
    bn_status (*sort)(const bn_tview *x, int dim, bool descending, const bn_tview *values,
                      const bn_tview *indices);
    /* The k largest/smallest along dim, sorted; values/indices have size k along dim. */
    bn_status (*topk)(const bn_tview *x, int64_t k, int dim, bool largest, const bn_tview *values,
                      const bn_tview *indices);
    /* out = x with elements above (tril) or below (triu) the diagonal zeroed, over the last two
     * dims. */
    bn_status (*tri)(const bn_tview *x, const bn_tview *out, int64_t diagonal, bool upper);

    /* ---- neural-network kernel families, each a table of its own ---- */
    const struct bn_backend_conv *conv; /* convolution and pooling (backend_conv.h) */
    const struct bn_backend_nn *nn;     /* norms, dropout, embedding (backend_nn.h) */
    const struct bn_backend_optim *optim; /* optimizer updates (backend_optim.h); NULL: none */
    const struct bn_backend_attn *attn;   /* attention and positional encodings
                                             (backend_attn.h); NULL: none */
} bn_backend;

/* The backend for a device; NULL with BN_ERR_DEVICE (naming fn) when it is not available. */
const bn_backend *bn__backend(const char *fn, bn_device d);
const bn_backend *bn__cpu_backend(void);

#endif
