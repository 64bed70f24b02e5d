/* backend/cpu/reduce_io.c — strided loads/stores into double/int64 scratch and the dim lists
 * that the reduction, scan and softmax kernels walk (see reduce_io.h). */
#include "backend/cpu/reduce_io.h"

/* ---- loads ---------------------------------------------------------------------------------- */
/* The contiguous branch lets the compiler vectorise the conversion. */
#define LOAD_RUN(T, CONV)                                                                          \
    do {                                                                                           \
        const T *s = (const T *)p;                                                                 \
        if (stride == 1)                                                                           \
            for (int64_t i = 0; i < n; i++) buf[i] = CONV(s[i]);                                   \
        else                                                                                       \
            for (int64_t i = 0; i < n; i++) buf[i] = CONV(s[i * stride]);                          \
    } while (0)
#define AS_IS(v) (v)
#define BOOL_AS_INT(v) ((v) ? 1 : 0)

void bn_red_load_f64(const char *p, bn_dtype dt, int64_t stride, int64_t n, double *buf)
{
    switch (dt) {
    case BN_F32: LOAD_RUN(float, (double)); break;
    case BN_F64: LOAD_RUN(double, AS_IS); break;
    case BN_F16: LOAD_RUN(uint16_t, (double)bn_f16_to_f32); break;
    case BN_BF16: LOAD_RUN(uint16_t, (double)bn_bf16_to_f32); break;
    case BN_I8: LOAD_RUN(int8_t, (double)); break;
    case BN_U8: LOAD_RUN(uint8_t, (double)); break;
    case BN_I32: LOAD_RUN(int32_t, (double)); break;
    case BN_I64: LOAD_RUN(int64_t, (double)); break;
    case BN_BOOL: LOAD_RUN(bool, BOOL_AS_INT); break;
    default: BN_ASSERT(0 && "invalid dtype");
    }
}

void bn_red_load_i64(const char *p, bn_dtype dt, int64_t stride, int64_t n, int64_t *buf)
{
    switch (dt) {
    case BN_I8: LOAD_RUN(int8_t, (int64_t)); break;
    case BN_U8: LOAD_RUN(uint8_t, (int64_t)); break;
    case BN_I32: LOAD_RUN(int32_t, (int64_t)); break;
    case BN_I64: LOAD_RUN(int64_t, AS_IS); break;
    case BN_BOOL: LOAD_RUN(bool, BOOL_AS_INT); break;
    default: BN_ASSERT(0 && "integer dtype expected");
    }
}
#undef LOAD_RUN

/* ---- stores --------------------------------------------------------------------------------- */
#define STORE_RUN(T, CONV)                                                                         \
    do {                                                                                           \
        T *d = (T *)p;                                                                             \
        if (stride == 1)                                                                           \
            for (int64_t i = 0; i < n; i++) d[i] = CONV(buf[i]);                                   \
        else                                                                                       \
            for (int64_t i = 0; i < n; i++) d[i * stride] = CONV(buf[i]);                          \
    } while (0)

void bn_red_store_f64(char *p, bn_dtype dt, int64_t stride, int64_t n, const double *buf)
{
    switch (dt) {
    case BN_F32: STORE_RUN(float, (float)); break;
    case BN_F64: STORE_RUN(double, AS_IS); break;
    case BN_F16: STORE_RUN(uint16_t, bn_f64_to_f16); break;
    case BN_BF16: STORE_RUN(uint16_t, bn_f64_to_bf16); break;
    default: {
        /* integers: saturating conversion as in bn__store_f64 */
        size_t es = bn_dtype_size(dt);
        for (int64_t i = 0; i < n; i++) bn__store_f64(p + i * stride * (int64_t)es, dt, buf[i]);
    }
    }
}

#define WRAP_I8(v) ((int8_t)(uint8_t)(uint64_t)(v))
#define WRAP_U8(v) ((uint8_t)(uint64_t)(v))
#define WRAP_I32(v) ((int32_t)(uint32_t)(uint64_t)(v))
#define NONZERO(v) ((v) != 0)

void bn_red_store_i64(char *p, bn_dtype dt, int64_t stride, int64_t n, const int64_t *buf)
{
    switch (dt) {
    case BN_I8: STORE_RUN(int8_t, WRAP_I8); break;
    case BN_U8: STORE_RUN(uint8_t, WRAP_U8); break;
    case BN_I32: STORE_RUN(int32_t, WRAP_I32); break;
    case BN_I64: STORE_RUN(int64_t, AS_IS); break;
    case BN_BOOL: STORE_RUN(bool, NONZERO); break;
    default: {
        size_t es = bn_dtype_size(dt);
        for (int64_t i = 0; i < n; i++)
            bn__store_f64(p + i * stride * (int64_t)es, dt, (double)buf[i]);
    }
    }
}
#undef STORE_RUN

/* ---- dim lists ------------------------------------------------------------------------------ */
void bn_red_dims_add(bn_red_dims *d, int64_t size, int64_t xs, int64_t os)
{
    if (size == 1) return;
    BN_ASSERT(d->n < BN_MAX_DIMS);
    d->size[d->n] = size;
    d->xs[d->n] = xs;
    d->os[d->n] = os;
    d->n++;
}

void bn_red_dims_simplify(bn_red_dims *d)
{
    /* stable insertion sort, decreasing x stride */
    for (int i = 1; i < d->n; i++) {
        int64_t size = d->size[i], xs = d->xs[i], os = d->os[i];
        int j = i;
        for (; j > 0 && d->xs[j - 1] < xs; j--) {
            d->size[j] = d->size[j - 1];
            d->xs[j] = d->xs[j - 1];
            d->os[j] = d->os[j - 1];
        }
        d->size[j] = size;
        d->xs[j] = xs;
        d->os[j] = os;
    }
    if (d->n == 0) return;
    int m = 0;
    for (int i = 1; i < d->n; i++) {
        bool merge = d->xs[m] == d->xs[i] * d->size[i] && d->os[m] == d->os[i] * d->size[i];
        if (merge) {
            d->size[m] *= d->size[i];
            d->xs[m] = d->xs[i];
            d->os[m] = d->os[i];
        } else {
            m++;
            d->size[m] = d->size[i];
            d->xs[m] = d->xs[i];
            d->os[m] = d->os[i];
        }
    }
    d->n = m + 1;
}

int64_t bn_red_dims_numel(const bn_red_dims *d)
{
    int64_t n = 1;
    for (int i = 0; i < d->n; i++) n *= d->size[i];
    return n;
}

void bn_red_dims_offsets(const bn_red_dims *d, int64_t i, int64_t *xoff, int64_t *ooff)
{
    int64_t xo = 0, oo = 0;
    for (int k = d->n - 1; k >= 0; k--) {
        int64_t idx = i % d->size[k];
        i /= d->size[k];
        xo += idx * d->xs[k];
        oo += idx * d->os[k];
    }
    *xoff = xo;
    *ooff = oo;
}

void bn_red_lines_init(bn_red_lines *l, const bn_tview *x, const bn_tview *out, int dim)
{
    l->other.n = 0;
    l->count = 1;
    for (int d = 0; d < x->ndim; d++) {
        if (d == dim) continue;
        l->count *= x->shape[d];
        bn_red_dims_add(&l->other, x->shape[d], x->strides[d], out->strides[d]);
    }
    bn_red_dims_simplify(&l->other);
    l->len = x->ndim ? x->shape[dim] : 1;
    l->xs = x->ndim ? x->strides[dim] : 1;
    l->os = x->ndim ? out->strides[dim] : 1;
    int last = l->other.n - 1;
    bool adjacent = last >= 0 && l->other.xs[last] == 1 && l->other.os[last] == 1;
    l->tiled = last >= 0 && l->len > 1 && (adjacent || l->len <= BN_RED_SHORT);
    l->inner = l->tiled ? l->other.size[last] : 1;
    l->inner_xs = l->tiled ? l->other.xs[last] : 1;
    l->inner_os = l->tiled ? l->other.os[last] : 1;
}
