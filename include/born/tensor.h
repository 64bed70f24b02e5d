/* born/tensor.h — tensors: types, lifecycle, scopes, errors, creation, inspection, printing.
 *
 * Conventions (DESIGN §4): every bn_tensor* the API returns is a new reference; outside a
 * scope the caller releases it with bn_release(). Functions never take ownership of their
 * arguments. Failures return NULL (or a non-zero bn_status) and leave a per-thread error whose
 * message names the function, the argument and the values. An op given a NULL input returns
 * NULL and keeps the first error, so a chain can be checked once at its end. */
#ifndef BORN_TENSOR_H
#define BORN_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define BN_API __declspec(dllexport)
#elif defined(__GNUC__)
#define BN_API __attribute__((visibility("default")))
#else
#define BN_API
#endif

#define BN_VERSION_MAJOR 0
#define BN_VERSION_MINOR 1
#define BN_VERSION_PATCH 0
#define BN_VERSION_STRING "0.1.0"

/* ---- status codes ---------------------------------------------------------------------- */
typedef enum bn_status {
    BN_OK = 0,
    BN_ERR_SHAPE,       /* shapes do not fit the operation */
    BN_ERR_DTYPE,       /* dtype not supported by the operation, or mismatched */
    BN_ERR_DEVICE,      /* tensors on different devices, or a device that is not available */
    BN_ERR_ARG,         /* a bad argument: NULL, dim out of range, negative size, … */
    BN_ERR_OOM,         /* allocation failed */
    BN_ERR_IO,          /* file or stream failure */
    BN_ERR_FORMAT,      /* malformed input data */
    BN_ERR_UNSUPPORTED, /* the backend has no kernel for this */
    BN_ERR_INTERNAL     /* a bug in born */
} bn_status;

BN_API const char *bn_status_name(bn_status s); /* "BN_ERR_SHAPE", … */

/* ---- dtypes ---------------------------------------------------------------------------- */
typedef enum bn_dtype {
    BN_F32 = 0,
    BN_F64,
    BN_F16,
    BN_BF16,
    BN_I8,
    BN_U8,
    BN_I32,
    BN_I64,
    BN_BOOL,
    BN_DTYPE_COUNT
} bn_dtype;

BN_API const char *bn_dtype_name(bn_dtype dt); /* "f32", … ("?" for an invalid value) */
BN_API size_t bn_dtype_size(bn_dtype dt);      /* bytes per element, 0 for an invalid value */
BN_API bool bn_dtype_is_float(bn_dtype dt);    /* f32 f64 f16 bf16 */
BN_API bool bn_dtype_is_int(bn_dtype dt);      /* i8 u8 i32 i64 (not bool) */
/* PyTorch's promotion of two tensor dtypes (bool < integers < floats; i8 with u8 gives i32,
 * since born has no i16; f16 with bf16 gives f32). */
BN_API bn_dtype bn_promote_types(bn_dtype a, bn_dtype b);

/* IEEE half / bfloat16 conversion, round to nearest even, NaN/inf/subnormals exact. */
BN_API uint16_t bn_f32_to_f16(float f);
BN_API float bn_f16_to_f32(uint16_t h);
BN_API uint16_t bn_f32_to_bf16(float f);
BN_API float bn_bf16_to_f32(uint16_t h);
BN_API uint16_t bn_f64_to_f16(double d); /* rounds once, straight from double */
BN_API uint16_t bn_f64_to_bf16(double d);

/* ---- shapes ---------------------------------------------------------------------------- */
#define BN_MAX_DIMS 8
typedef struct bn_shape {
    int ndim;
    int64_t dims[BN_MAX_DIMS];
} bn_shape;

/* BN_SHAPE(2, 3) builds a bn_shape value; BN_SCALAR is the 0-d shape. */
#define BN_SHAPE(...)                                                                              \
    ((bn_shape){.ndim = (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)),               \
                .dims = {__VA_ARGS__}})
#define BN_SCALAR ((bn_shape){.ndim = 0, .dims = {0}})
/* Reduce over every dimension. */
#define BN_ALL (-1000)

BN_API bn_shape bn_shape_make(int ndim, const int64_t *dims);
BN_API int64_t bn_shape_numel(bn_shape s);
BN_API bool bn_shape_equal(bn_shape a, bn_shape b);

/* ---- devices --------------------------------------------------------------------------- */
typedef enum bn_device_type { BN_DEVICE_CPU = 0, BN_DEVICE_CUDA, BN_DEVICE_VULKAN } bn_device_type;
typedef struct bn_device {
    bn_device_type type;
    int index;
} bn_device;
BN_API bn_device bn_cpu(void);
BN_API bn_device bn_cuda(int index);
BN_API bn_device bn_vulkan(int index);
BN_API bool bn_device_available(bn_device d);

/* ---- tensors, lifecycle, scopes -------------------------------------------------------- */
typedef struct bn_tensor bn_tensor;

BN_API void bn_retain(bn_tensor *t);  /* NULL is ignored */
BN_API void bn_release(bn_tensor *t); /* NULL is ignored */

/* A scope owns every tensor the API returns while it is open. Scopes nest and are per thread. */
BN_API void bn_scope_begin(void);
BN_API void bn_scope_end(void);
/* Hands t from the innermost scope to the enclosing one (or to the caller if none). */
BN_API bn_tensor *bn_scope_keep(bn_tensor *t);
BN_API int bn_scope_depth(void);

/* ---- errors (per thread) --------------------------------------------------------------- */
BN_API bn_status bn_error_code(void);
BN_API const char *bn_error_message(void); /* "" when no error */
BN_API void bn_error_clear(void);

/* ---- random numbers (Philox 4x32-10, per thread generator) ----------------------------- */
BN_API void bn_manual_seed(uint64_t seed);
typedef struct bn_rng_state {
    uint64_t seed;
    uint64_t offset; /* Philox counters consumed so far */
} bn_rng_state;
BN_API bn_rng_state bn_rng_get_state(void);
BN_API void bn_rng_set_state(bn_rng_state s);

/* ---- creation (all copy their input; new references) ----------------------------------- */
BN_API bn_tensor *bn_empty(bn_shape s, bn_dtype dt); /* uninitialised */
BN_API bn_tensor *bn_zeros(bn_shape s, bn_dtype dt);
BN_API bn_tensor *bn_ones(bn_shape s, bn_dtype dt);
BN_API bn_tensor *bn_full(bn_shape s, double v, bn_dtype dt);
BN_API bn_tensor *bn_zeros_like(const bn_tensor *t);
BN_API bn_tensor *bn_ones_like(const bn_tensor *t);
BN_API bn_tensor *bn_full_like(const bn_tensor *t, double v);
/* [start, end) in steps of step, like torch.arange (length ceil((end-start)/step)). */
BN_API bn_tensor *bn_arange(double start, double end, double step, bn_dtype dt);
/* steps values from start to end inclusive, like torch.linspace. */
BN_API bn_tensor *bn_linspace(double start, double end, int64_t steps, bn_dtype dt);
BN_API bn_tensor *bn_eye(int64_t n, int64_t m, bn_dtype dt); /* n x m, ones on the diagonal */
BN_API bn_tensor *bn_rand(bn_shape s, bn_dtype dt);          /* uniform [0, 1) */
BN_API bn_tensor *bn_randn(bn_shape s, bn_dtype dt);         /* standard normal */
BN_API bn_tensor *bn_randint(int64_t low, int64_t high, bn_shape s, bn_dtype dt); /* [low, high) */
BN_API bn_tensor *bn_from_data(const void *data, bn_shape s, bn_dtype dt);
/* A 0-d tensor holding v. */
BN_API bn_tensor *bn_scalar(double v, bn_dtype dt);

/* ---- inspection and data --------------------------------------------------------------- */
BN_API int bn_ndim(const bn_tensor *t);            /* -1 for NULL */
BN_API int64_t bn_dim(const bn_tensor *t, int i);  /* negative i counts from the end; -1 on error */
BN_API int64_t bn_numel(const bn_tensor *t);       /* -1 for NULL */
BN_API bn_dtype bn_dtype_of(const bn_tensor *t);   /* BN_DTYPE_COUNT for NULL */
BN_API bn_shape bn_shape_of(const bn_tensor *t);   /* ndim -1 for NULL */
BN_API int64_t bn_stride(const bn_tensor *t, int i); /* in elements */
BN_API bn_device bn_device_of(const bn_tensor *t);
BN_API bool bn_is_contiguous(const bn_tensor *t);
BN_API size_t bn_nbytes(const bn_tensor *t); /* numel * element size */

/* Typed data access: a pointer to the first element when t is contiguous, of that dtype and on
 * the CPU; otherwise NULL with an error. */
BN_API float *bn_tensor_data_f32(bn_tensor *t);
BN_API double *bn_tensor_data_f64(bn_tensor *t);
BN_API uint16_t *bn_tensor_data_f16(bn_tensor *t);
BN_API uint16_t *bn_tensor_data_bf16(bn_tensor *t);
BN_API int8_t *bn_tensor_data_i8(bn_tensor *t);
BN_API uint8_t *bn_tensor_data_u8(bn_tensor *t);
BN_API int32_t *bn_tensor_data_i32(bn_tensor *t);
BN_API int64_t *bn_tensor_data_i64(bn_tensor *t);
BN_API bool *bn_tensor_data_bool(bn_tensor *t);
/* Any dtype: NULL unless contiguous on the CPU. */
BN_API void *bn_tensor_data(bn_tensor *t);

/* Copies the elements (in logical row-major order, any strides) into dst; bytes must equal
 * bn_nbytes(t). */
BN_API bn_status bn_copy_to_host(const bn_tensor *t, void *dst, size_t bytes);
/* Element at a multi-index (ndim entries; negative indices count from the end) as double. */
BN_API double bn_get(const bn_tensor *t, const int64_t *index);
BN_API bn_status bn_set(bn_tensor *t, const int64_t *index, double v);
/* The value of a one-element tensor; NaN with an error otherwise. */
BN_API double bn_item(const bn_tensor *t);

/* ---- printing, like PyTorch ------------------------------------------------------------ */
/* "tensor([[1., 2.],\n        [3., 4.]])" with PyTorch's formatting rules (4 digits after the
 * point, scientific notation when the range asks for it, summarised with "..." above 1000
 * elements, dtype suffix when it is not the default). Caller frees the string with free(). */
BN_API char *bn_to_string(const bn_tensor *t);
BN_API bn_status bn_print(const bn_tensor *t); /* to stdout, with a newline */
BN_API bn_status bn_fprint(FILE *f, const bn_tensor *t);

#ifdef __cplusplus
}
#endif
#endif
