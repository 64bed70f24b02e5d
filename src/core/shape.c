/* core/shape.c — shape values, contiguous strides and NumPy/PyTorch broadcasting. */
#include "core/internal.h"

#include <string.h>

bn_shape bn_shape_make(int ndim, const int64_t *dims)
{
    bn_shape s = {0};
    if (ndim < 0 || ndim > BN_MAX_DIMS || (ndim > 0 && !dims)) {
        bn__error(BN_ERR_ARG, "bn_shape_make: ndim %d is out of range 0..%d (or dims is NULL)",
                  ndim, BN_MAX_DIMS);
        s.ndim = -1;
        return s;
    }
    s.ndim = ndim;
    if (ndim) memcpy(s.dims, dims, sizeof(int64_t) * (size_t)ndim);
    return s;
}

int64_t bn_shape_numel(bn_shape s)
{
    if (s.ndim < 0 || s.ndim > BN_MAX_DIMS) return -1;
    int64_t n = 1;
    for (int i = 0; i < s.ndim; i++) n *= s.dims[i];
    return n;
}

bool bn_shape_equal(bn_shape a, bn_shape b)
{
    if (a.ndim != b.ndim || a.ndim < 0 || a.ndim > BN_MAX_DIMS) return false;
    for (int i = 0; i < a.ndim; i++)
        if (a.dims[i] != b.dims[i]) return false;
    return true;
}

void bn__contiguous_strides(const int64_t *shape, int ndim, int64_t *strides)
{
    int64_t s = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        strides[i] = s;
        s *= shape[i] > 1 ? shape[i] : 1;
    }
}

bool bn__broadcast_shapes(const char *fn, const int64_t *a, int na, const int64_t *b, int nb,
                          int64_t *out, int *nout)
{
    int n = na > nb ? na : nb;
    for (int i = 0; i < n; i++) {
        int ia = na - n + i, ib = nb - n + i;
        int64_t da = ia >= 0 ? a[ia] : 1, db = ib >= 0 ? b[ib] : 1;
        if (da != db && da != 1 && db != 1) {
            char sa[BN_SHAPE_STR_MAX], sb[BN_SHAPE_STR_MAX];
            bn__error(BN_ERR_SHAPE,
                      "%s: shapes %s and %s cannot be broadcast (dim %d: %lld vs %lld)", fn,
                      bn__dims_str(a, na, sa, sizeof sa), bn__dims_str(b, nb, sb, sizeof sb),
                      i - n, (long long)da, (long long)db);
            return false;
        }
        out[i] = da == 1 ? db : da;
    }
    *nout = n;
    return true;
}
