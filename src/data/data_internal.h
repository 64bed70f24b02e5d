/* data/data_internal.h — what the data files share: the data set's layout and the row gather
 * the loader and the split use. Not installed. */
#ifndef BORN_DATA_INTERNAL_H
#define BORN_DATA_INTERNAL_H

#include "born/data.h"
#include "core/internal.h"

/* x (N, ...) and y (N, ...), both contiguous CPU tensors the data set holds a reference to. */
struct bn_dataset {
    bn_tensor *x, *y;
    int64_t n;
};

/* A new contiguous tensor (not registered) of src's rows idx[0..count): src (N, ...) is
 * contiguous on the CPU → (count, ...). */
bn_tensor *bn__gather_rows(const bn_tensor *src, const int64_t *idx, int64_t count);

/* The Philox permutation of 0..n-1 for (seed, stream): a Fisher-Yates shuffle whose i-th swap
 * draws from Philox block (seed, stream << 40 | i), so it depends on nothing else. */
void bn__philox_permutation(int64_t *perm, int64_t n, uint64_t seed, uint64_t stream);

#endif
