/* backend/cpu/iter.h — strided iteration over up to 4 operands that share one shape (operand 0
 * is usually the output; broadcast inputs carry 0 strides). Dims are coalesced first, so a
 * contiguous tensor of any shape becomes one long row; work is then cut into rows (and long rows
 * into chunks) that OpenMP threads take statically, so every element is visited exactly once
 * and element-wise results do not depend on the thread count. */
#ifndef BORN_CPU_ITER_H
#define BORN_CPU_ITER_H

#include "backend/backend.h"

#define BN_ITER_MAX_OPS 4
/* Below this many elements the work runs on the calling thread (measured: an OpenMP region
 * costs a few microseconds here, about what 32k simple element operations take). */
#define BN_PAR_MIN_ELEMS 32768

typedef struct bn_iter {
    int nops;
    int ndim; /* >= 1 after init; the last dim is the inner loop */
    int64_t shape[BN_MAX_DIMS];
    int64_t strides[BN_ITER_MAX_OPS][BN_MAX_DIMS];
    char *data[BN_ITER_MAX_OPS];
    size_t esize[BN_ITER_MAX_OPS];
    int64_t numel;
} bn_iter;

/* ops[0]'s shape is the iteration shape; every operand has that shape (strides may be 0). */
void bn_iter_init(bn_iter *it, int nops, const bn_tview *const *ops);

/* Called for a run of n elements: p[k] points at operand k's first element and s[k] is its
 * stride in elements along the run. */
typedef void (*bn_iter_fn)(void *ctx, char *const *p, const int64_t *s, int64_t n);

/* Visits every element once, in parallel when numel >= min_parallel (0: BN_PAR_MIN_ELEMS). */
void bn_iter_run(const bn_iter *it, bn_iter_fn fn, void *ctx, int64_t min_parallel);

/* Number of threads OpenMP would use (1 when built without OpenMP). */
int bn_cpu_threads(void);

#endif
