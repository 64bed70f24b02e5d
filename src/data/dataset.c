/* data/dataset.c — the in-memory data set: N rows of x and y held as two contiguous tensors,
 * row slices (views), row gathers (copies), seeded permutations and train/validation splits. */
#include "data/data_internal.h"
#include "core/philox.h"

#include <math.h>
#include <string.h>

static bn_dataset *dataset_wrap(bn_tensor *x, bn_tensor *y)
{
    bn_dataset *d = malloc(sizeof *d);
    if (!d) {
        bn_release(x);
        bn_release(y);
        return bn__error_null(BN_ERR_OOM, "bn_dataset_new: out of memory");
    }
    *d = (bn_dataset){.x = x, .y = y, .n = x->shape[0]};
    return d;
}

bn_dataset *bn_dataset_new(const bn_tensor *x, const bn_tensor *y)
{
    BN_CHECK_NULL("bn_dataset_new", x);
    BN_CHECK_NULL("bn_dataset_new", y);
    if (x->ndim < 1 || y->ndim < 1)
        return bn__error_null(BN_ERR_SHAPE,
                              "bn_dataset_new: x and y need a first (row) dim: x is %s, y is %s",
                              bn__tshape(x), bn__tshape(y));
    if (x->shape[0] != y->shape[0])
        return bn__error_null(BN_ERR_SHAPE,
                              "bn_dataset_new: x and y have different row counts: x is %s, y is "
                              "%s (%lld != %lld)",
                              bn__tshape(x), bn__tshape(y), (long long)x->shape[0],
                              (long long)y->shape[0]);
    if (x->storage->device.type != BN_DEVICE_CPU || y->storage->device.type != BN_DEVICE_CPU)
        return bn__error_null(BN_ERR_DEVICE, "bn_dataset_new: data sets live on the CPU");
    bn_tensor *xc = bn__contiguous(x);
    bn_tensor *yc = xc ? bn__contiguous(y) : NULL;
    if (!yc) {
        bn_release(xc);
        return NULL;
    }
    return dataset_wrap(xc, yc);
}

void bn_dataset_free(bn_dataset *d)
{
    if (!d) return;
    bn_release(d->x);
    bn_release(d->y);
    free(d);
}

int64_t bn_dataset_len(const bn_dataset *d) { return d ? d->n : -1; }

bn_tensor *bn_dataset_x(const bn_dataset *d)
{
    BN_CHECK_NULL("bn_dataset_x", d);
    bn_retain(d->x);
    return bn__out(d->x);
}

bn_tensor *bn_dataset_y(const bn_dataset *d)
{
    BN_CHECK_NULL("bn_dataset_y", d);
    bn_retain(d->y);
    return bn__out(d->y);
}

/* Rows [start, start + count) of t (N, ...) as a view. */
static bn_tensor *row_view(const bn_tensor *t, int64_t start, int64_t count)
{
    int64_t shape[BN_MAX_DIMS];
    memcpy(shape, t->shape, sizeof(int64_t) * (size_t)t->ndim);
    shape[0] = count;
    return bn__view(t, t->ndim, shape, t->strides, t->offset + start * t->strides[0]);
}

bn_dataset *bn_dataset_slice(const bn_dataset *d, int64_t start, int64_t count)
{
    BN_CHECK_NULL("bn_dataset_slice", d);
    if (start < 0 || count < 0 || start > d->n || count > d->n - start)
        return bn__error_null(BN_ERR_ARG,
                              "bn_dataset_slice: rows [%lld, %lld) are outside the data set's "
                              "%lld rows",
                              (long long)start, (long long)(start + count), (long long)d->n);
    bn_tensor *x = row_view(d->x, start, count);
    bn_tensor *y = x ? row_view(d->y, start, count) : NULL;
    if (!y) {
        bn_release(x);
        return NULL;
    }
    return dataset_wrap(x, y);
}

bn_tensor *bn__gather_rows(const bn_tensor *src, const int64_t *idx, int64_t count)
{
    int64_t shape[BN_MAX_DIMS];
    memcpy(shape, src->shape, sizeof(int64_t) * (size_t)src->ndim);
    shape[0] = count;
    bn_tensor *out = bn__empty(shape, src->ndim, src->dtype, src->storage->device);
    if (!out || count == 0) return out;
    size_t row = (size_t)(src->shape[0] ? bn__numel(src) / src->shape[0] : 0) *
                 bn_dtype_size(src->dtype);
    const char *from = bn__data(src);
    char *to = bn__data(out);
    for (int64_t i = 0; i < count; i++) memcpy(to + (size_t)i * row, from + (size_t)idx[i] * row, row);
    return out;
}

void bn__philox_permutation(int64_t *perm, int64_t n, uint64_t seed, uint64_t stream)
{
    for (int64_t i = 0; i < n; i++) perm[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
        bn_philox_block b = bn_philox4x32_10(seed, stream << 40 | (uint64_t)i);
        uint64_t r = (uint64_t)b.v[1] << 32 | b.v[0];
        int64_t j = (int64_t)(r % (uint64_t)(i + 1)); /* bias below 2^-23 for n < 2^40 */
        int64_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

/* A data set of d's rows idx[0..count) (copies). */
static bn_dataset *gather_dataset(const bn_dataset *d, const int64_t *idx, int64_t count)
{
    bn_tensor *x = bn__gather_rows(d->x, idx, count);
    bn_tensor *y = x ? bn__gather_rows(d->y, idx, count) : NULL;
    if (!y) {
        bn_release(x);
        return NULL;
    }
    return dataset_wrap(x, y);
}

bn_status bn_dataset_split(const bn_dataset *d, double val_fraction, uint64_t seed,
                           bn_dataset **train, bn_dataset **val)
{
    if (train) *train = NULL;
    if (val) *val = NULL;
    BN_CHECK_NULL_STATUS("bn_dataset_split", d);
    BN_CHECK_NULL_STATUS("bn_dataset_split", train);
    BN_CHECK_NULL_STATUS("bn_dataset_split", val);
    if (!(val_fraction >= 0 && val_fraction < 1))
        return bn__error(BN_ERR_ARG, "bn_dataset_split: val_fraction must be in [0, 1), got %g",
                         val_fraction);
    int64_t nval = (int64_t)llround((double)d->n * val_fraction);
    int64_t *perm = malloc(sizeof(int64_t) * (size_t)(d->n ? d->n : 1));
    if (!perm) return bn__error(BN_ERR_OOM, "bn_dataset_split: out of memory");
    /* stream 2^23 - 1 keeps the split's permutation apart from every epoch's order */
    bn__philox_permutation(perm, d->n, seed, ((uint64_t)1 << 23) - 1);
    *val = gather_dataset(d, perm, nval);
    *train = *val ? gather_dataset(d, perm + nval, d->n - nval) : NULL;
    free(perm);
    if (!*train) {
        bn_dataset_free(*val);
        *val = NULL;
        return bn_error_code();
    }
    return BN_OK;
}
