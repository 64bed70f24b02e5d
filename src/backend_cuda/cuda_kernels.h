/* backend_cuda/cuda_kernels.h — the C interface between the plugin's glue (cuda_backend.c, plain
 * C) and its CUDA kernels (cuda_*.cu). bcu_view mirrors bn_tview field for field (the glue checks
 * this at compile time) so the .cu files need none of libborn's headers. Every function queues
 * work on `stream` and returns 0, or a bn_status value (BN_ERR_UNSUPPORTED = 8 for a dtype/op
 * it lacks) with a message in bcu_last_message(). */
#ifndef BORN_CUDA_KERNELS_H
#define BORN_CUDA_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BCU_MAX_DIMS 8

typedef struct bcu_view {
    void *data;
    int dtype; /* bn_dtype: f32 f64 f16 bf16 i8 u8 i32 i64 bool */
    int ndim;
    int64_t shape[BCU_MAX_DIMS];
    int64_t strides[BCU_MAX_DIMS];
} bcu_view;

typedef struct bcu_unary_params {
    double alpha, beta, lo, hi;
    bool has_lo, has_hi;
} bcu_unary_params;

typedef struct CUstream_st *bcu_stream;

const char *bcu_last_message(void);
const char *bcu_dtype_name(int dtype); /* "f32", …, "?" */

/* dst[i] = cast(src[i]); same shapes */
int bcu_copy(bcu_stream s, const bcu_view *src, const bcu_view *dst);
int bcu_fill(bcu_stream s, const bcu_view *dst, double v);
/* op 0 arange, 1 linspace */
int bcu_sequence(bcu_stream s, int op, const bcu_view *dst, double start, double step, double end);
/* op 0 uniform, 1 normal, 2 int; dst contiguous */
int bcu_random(bcu_stream s, int op, const bcu_view *dst, uint64_t seed, uint64_t counter, double a,
               double b);
int bcu_unary(bcu_stream s, int op, const bcu_view *x, const bcu_view *out,
              const bcu_unary_params *p);
int bcu_binary(bcu_stream s, int op, const bcu_view *a, const bcu_view *b, const bcu_view *out);
int bcu_where(bcu_stream s, const bcu_view *cond, const bcu_view *a, const bcu_view *b,
              const bcu_view *out);
/* scratch (bcu_reduce_scratch bytes, device memory; NULL when that is 0) lets a reduction of
 * few outputs over many elements split each output over many blocks (two stages, fixed order). */
size_t bcu_reduce_scratch(int op, const bcu_view *x, const bcu_view *out, uint32_t mask);
int bcu_reduce(bcu_stream s, int op, const bcu_view *x, const bcu_view *out, uint32_t mask,
               int correction, void *scratch, size_t scratch_bytes);
int bcu_cumsum(bcu_stream s, const bcu_view *x, const bcu_view *out, int dim);
int bcu_softmax(bcu_stream s, const bcu_view *x, const bcu_view *out, int dim, bool log);

#ifdef __cplusplus
}
#endif

#endif
