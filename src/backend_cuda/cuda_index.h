/* backend_cuda/cuda_index.h — the CUDA indexing kernels: index_select, gather, scatter (set /
 * add), sort, topk and tril/triu.
 *
 * Two layers, like the rest of the plugin: the bcu_index_* entry points (cuda_index.cu) take
 * bcu_view and queue work on a stream; the bcu_be_* functions (cuda_index_glue.c) have the exact
 * bn_backend slot signatures, take scratch memory from the caching allocator, and read back the
 * bad-index flag when an index tensor held a value out of range (the one host synchronisation,
 * which the contract needs: the error names the value).
 *
 * The bad-index flag is two u64 of device memory: [0] the smallest flat position of a bad index
 * (~0 when none), [1] its value; each entry point that takes one initialises it on the stream.
 * A NULL flag skips the check (bad indices are then skipped, never written through). */
#ifndef BORN_CUDA_INDEX_H
#define BORN_CUDA_INDEX_H

#include "backend_cuda/cuda_kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

/* out (A, M, B) = x (A, N, B) at index (M) along dim; index is 1-D or 0-d, i64 or i32. */
int bcu_index_select(bcu_stream s, const bcu_view *x, int dim, const bcu_view *index,
                     const bcu_view *out, uint64_t *flag);
/* out[..i..] = x[..index[..i..]..] along dim; index has out's shape. */
int bcu_index_gather(bcu_stream s, const bcu_view *x, int dim, const bcu_view *index,
                     const bcu_view *out, uint64_t *flag);

/* Scratch bytes bcu_index_scatter needs for these operands (0: none). */
size_t bcu_index_scatter_scratch(int op, const bcu_view *out, int dim, const bcu_view *index);
/* In place: out[..index[..i..]..] (= when op is 0, += when 1) src[..i..] along dim. Duplicates
 * resolve in index order, as on the CPU: set keeps the last, add sums in order. */
int bcu_index_scatter(bcu_stream s, int op, const bcu_view *out, int dim, const bcu_view *index,
                      const bcu_view *src, void *scratch, size_t scratch_bytes, uint64_t *flag);

/* Scratch bytes bcu_index_sort needs to write the first k of every sorted line of x (0: none). */
size_t bcu_index_sort_scratch(const bcu_view *x, int dim, int64_t k);
/* Stable sort of x along dim (descending when flip), writing the first k entries of each line
 * to values and/or indices (i64; either may be NULL). Sort is k = x's size along dim. */
int bcu_index_sort(bcu_stream s, const bcu_view *x, int dim, int64_t k, bool descending,
                   const bcu_view *values, const bcu_view *indices, void *scratch,
                   size_t scratch_bytes);

/* out = x with the elements above (tril) or below (triu) the diagonal of the last two dims
 * zeroed. */
int bcu_index_tri(bcu_stream s, const bcu_view *x, const bcu_view *out, int64_t diagonal,
                  bool upper);

#ifdef __cplusplus
}
#endif

/* The bn_backend slots (cuda_index_glue.c); plain C, they need libborn's backend header. */
#ifndef __CUDACC__
#include "backend/backend.h"

bn_status bcu_be_index_select(const bn_tview *x, int dim, const bn_tview *index,
                              const bn_tview *out);
bn_status bcu_be_gather(const bn_tview *x, int dim, const bn_tview *index, const bn_tview *out);
bn_status bcu_be_scatter(bn_scatter_op op, const bn_tview *out, int dim, const bn_tview *index,
                         const bn_tview *src);
bn_status bcu_be_sort(const bn_tview *x, int dim, bool descending, const bn_tview *values,
                      const bn_tview *indices);
bn_status bcu_be_topk(const bn_tview *x, int64_t k, int dim, bool largest, const bn_tview *values,
                      const bn_tview *indices);
bn_status bcu_be_tri(const bn_tview *x, const bn_tview *out, int64_t diagonal, bool upper);
#endif

#endif
