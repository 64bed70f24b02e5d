/* core/tensor.c — storage and tensor objects: allocation, reference counting, views, inspection
 * and typed data access. Creation ops live in ops/creation.c, conversions in ops/copy.c. */
#include "backend/backend.h"

#include <math.h>
#include <string.h>

/* ---- devices ------------------------------------------------------------------------------ */
bn_device bn_cpu(void) { return (bn_device){BN_DEVICE_CPU, 0}; }
bn_device bn_cuda(int index) { return (bn_device){BN_DEVICE_CUDA, index}; }
bn_device bn_vulkan(int index) { return (bn_device){BN_DEVICE_VULKAN, index}; }

/* ---- storage ------------------------------------------------------------------------------ */
static void storage_release(bn_storage *s)
{
    if (__atomic_sub_fetch(&s->refcount, 1, __ATOMIC_ACQ_REL) != 0) return;
    if (s->free_fn) {
        s->free_fn(s->data, s->free_ctx);
    } else if (s->data) {
        const bn_backend *be = bn__backend("bn_release", s->device);
        BN_ASSERT(be);
        be->free(s->data);
    }
    free(s);
}

/* Tensor headers alive in the process: tests compare it before and after to catch leaks. */
static int64_t live_tensors;
int64_t bn__live_tensors(void) { return __atomic_load_n(&live_tensors, __ATOMIC_RELAXED); }

static bn_tensor *tensor_alloc(bn_dtype dt, int ndim, const int64_t *shape)
{
    bn_tensor *t = calloc(1, sizeof *t);
    if (!t) return bn__error_null(BN_ERR_OOM, "out of memory allocating a tensor header");
    __atomic_add_fetch(&live_tensors, 1, __ATOMIC_RELAXED);
    t->refcount = 1;
    t->dtype = dt;
    t->ndim = ndim;
    if (ndim) memcpy(t->shape, shape, sizeof(int64_t) * (size_t)ndim);
    return t;
}

bn_tensor *bn__empty(const int64_t *shape, int ndim, bn_dtype dt, bn_device d)
{
    BN_ASSERT(ndim >= 0 && ndim <= BN_MAX_DIMS && bn__dtype_valid(dt));
    const bn_backend *be = bn__backend("bn_empty", d);
    if (!be) return NULL;
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        BN_ASSERT(shape[i] >= 0);
        if (shape[i] && n > INT64_MAX / 16 / shape[i])
            return bn__error_null(BN_ERR_OOM, "bn_empty: shape %s is too large",
                                  bn__dims_str(shape, ndim, (char[BN_SHAPE_STR_MAX]){0},
                                               BN_SHAPE_STR_MAX));
        n *= shape[i];
    }
    size_t nbytes = (size_t)n * bn_dtype_size(dt);
    bn_storage *s = calloc(1, sizeof *s);
    if (!s) return bn__error_null(BN_ERR_OOM, "bn_empty: out of memory");
    s->refcount = 1;
    s->device = d;
    s->nbytes = nbytes;
    s->data = be->alloc(nbytes ? nbytes : 1);
    if (!s->data) {
        free(s);
        return bn__error_null(BN_ERR_OOM, "bn_empty: out of memory allocating %zu bytes for %s %s",
                              nbytes, bn_dtype_name(dt),
                              bn__dims_str(shape, ndim, (char[BN_SHAPE_STR_MAX]){0},
                                           BN_SHAPE_STR_MAX));
    }
    bn_tensor *t = tensor_alloc(dt, ndim, shape);
    if (!t) {
        storage_release(s);
        return NULL;
    }
    t->storage = s;
    bn__contiguous_strides(t->shape, ndim, t->strides);
    return t;
}

bn_tensor *bn__empty_like(const bn_tensor *t)
{
    return bn__empty(t->shape, t->ndim, t->dtype, t->storage->device);
}

static void free_nothing(void *data, void *ctx)
{
    (void)data;
    (void)ctx;
}

bn_tensor *bn__wrap(void *data, size_t nbytes, const int64_t *shape, int ndim, bn_dtype dt,
                    bn_device d, void (*free_fn)(void *, void *), void *ctx)
{
    bn_storage *s = calloc(1, sizeof *s);
    if (!s) return bn__error_null(BN_ERR_OOM, "out of memory wrapping a buffer");
    /* free_fn NULL: the buffer belongs to someone else and is never freed here */
    *s = (bn_storage){.refcount = 1, .device = d, .data = data, .nbytes = nbytes,
                      .free_fn = free_fn ? free_fn : free_nothing, .free_ctx = ctx};
    bn_tensor *t = tensor_alloc(dt, ndim, shape);
    if (!t) {
        free(s);
        return NULL;
    }
    t->storage = s;
    bn__contiguous_strides(t->shape, ndim, t->strides);
    return t;
}

bn_tensor *bn__view(const bn_tensor *base, int ndim, const int64_t *shape, const int64_t *strides,
                    int64_t offset)
{
    BN_ASSERT(ndim >= 0 && ndim <= BN_MAX_DIMS);
    bn_tensor *t = tensor_alloc(base->dtype, ndim, shape);
    if (!t) return NULL;
    if (ndim) memcpy(t->strides, strides, sizeof(int64_t) * (size_t)ndim);
    t->offset = offset;
    t->storage = base->storage;
    __atomic_add_fetch(&t->storage->refcount, 1, __ATOMIC_RELAXED);
    return t;
}

void bn_retain(bn_tensor *t)
{
    if (t) __atomic_add_fetch(&t->refcount, 1, __ATOMIC_RELAXED);
}

void bn_release(bn_tensor *t)
{
    if (!t) return;
    if (__atomic_sub_fetch(&t->refcount, 1, __ATOMIC_ACQ_REL) != 0) return;
    bn_release(t->grad);
    if (t->grad_fn) {
        bn__node_forget_output(t->grad_fn, t);
        bn__node_release(t->grad_fn);
    }
    storage_release(t->storage);
    __atomic_sub_fetch(&live_tensors, 1, __ATOMIC_RELAXED);
    free(t);
}

/* ---- inspection --------------------------------------------------------------------------- */
int64_t bn__numel(const bn_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

bool bn__is_contiguous(const bn_tensor *t)
{
    int64_t s = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->shape[i] == 0) return true;
        if (t->shape[i] != 1 && t->strides[i] != s) return false;
        s *= t->shape[i];
    }
    return true;
}

void *bn__data(const bn_tensor *t)
{
    return (char *)t->storage->data + t->offset * (int64_t)bn_dtype_size(t->dtype);
}

bn_tview bn__tview(const bn_tensor *t)
{
    bn_tview v;
    v.data = bn__data(t);
    v.dtype = t->dtype;
    v.ndim = t->ndim;
    for (int i = 0; i < BN_MAX_DIMS; i++) {
        v.shape[i] = i < t->ndim ? t->shape[i] : 1;
        v.strides[i] = i < t->ndim ? t->strides[i] : 0;
    }
    return v;
}

int bn_ndim(const bn_tensor *t)
{
    if (!t) {
        bn__null_arg("bn_ndim", "t");
        return -1;
    }
    return t->ndim;
}

int64_t bn_dim(const bn_tensor *t, int i)
{
    int d;
    if (!t) {
        bn__null_arg("bn_dim", "t");
        return -1;
    }
    if (t->ndim == 0) {
        bn__error(BN_ERR_ARG, "bn_dim: a 0-d tensor has no dim %d", i);
        return -1;
    }
    if (!bn__norm_dim("bn_dim", "i", i, t->ndim, &d)) return -1;
    return t->shape[d];
}

int64_t bn_stride(const bn_tensor *t, int i)
{
    int d;
    if (!t) {
        bn__null_arg("bn_stride", "t");
        return -1;
    }
    if (t->ndim == 0) {
        bn__error(BN_ERR_ARG, "bn_stride: a 0-d tensor has no dim %d", i);
        return -1;
    }
    if (!bn__norm_dim("bn_stride", "i", i, t->ndim, &d)) return -1;
    return t->strides[d];
}

int64_t bn_numel(const bn_tensor *t)
{
    if (!t) {
        bn__null_arg("bn_numel", "t");
        return -1;
    }
    return bn__numel(t);
}

bn_dtype bn_dtype_of(const bn_tensor *t)
{
    if (!t) {
        bn__null_arg("bn_dtype_of", "t");
        return BN_DTYPE_COUNT;
    }
    return t->dtype;
}

bn_shape bn_shape_of(const bn_tensor *t)
{
    bn_shape s = {0};
    if (!t) {
        bn__null_arg("bn_shape_of", "t");
        s.ndim = -1;
        return s;
    }
    s.ndim = t->ndim;
    memcpy(s.dims, t->shape, sizeof(int64_t) * (size_t)t->ndim);
    return s;
}

bn_device bn_device_of(const bn_tensor *t)
{
    if (!t) {
        bn__null_arg("bn_device_of", "t");
        return bn_cpu();
    }
    return t->storage->device;
}

bool bn_is_contiguous(const bn_tensor *t)
{
    if (!t) {
        bn__null_arg("bn_is_contiguous", "t");
        return false;
    }
    return bn__is_contiguous(t);
}

size_t bn_nbytes(const bn_tensor *t)
{
    if (!t) {
        bn__null_arg("bn_nbytes", "t");
        return 0;
    }
    return (size_t)bn__numel(t) * bn_dtype_size(t->dtype);
}

/* ---- typed data access ------------------------------------------------------------------- */
static void *typed_data(bn_tensor *t, bn_dtype want, const char *fn)
{
    if (!t) return bn__null_arg(fn, "t");
    if (want != BN_DTYPE_COUNT && t->dtype != want)
        return bn__error_null(BN_ERR_DTYPE, "%s: tensor is %s, not %s", fn,
                              bn_dtype_name(t->dtype), bn_dtype_name(want));
    if (t->storage->device.type != BN_DEVICE_CPU)
        return bn__error_null(BN_ERR_DEVICE,
                              "%s: tensor is not on the CPU (copy it with bn_tensor_to first)", fn);
    if (!bn__is_contiguous(t))
        return bn__error_null(BN_ERR_ARG,
                              "%s: tensor %s is not contiguous (use bn_contiguous first)", fn,
                              bn__tshape(t));
    return bn__data(t);
}

float *bn_tensor_data_f32(bn_tensor *t) { return typed_data(t, BN_F32, "bn_tensor_data_f32"); }
double *bn_tensor_data_f64(bn_tensor *t) { return typed_data(t, BN_F64, "bn_tensor_data_f64"); }
uint16_t *bn_tensor_data_f16(bn_tensor *t) { return typed_data(t, BN_F16, "bn_tensor_data_f16"); }
uint16_t *bn_tensor_data_bf16(bn_tensor *t)
{
    return typed_data(t, BN_BF16, "bn_tensor_data_bf16");
}
int8_t *bn_tensor_data_i8(bn_tensor *t) { return typed_data(t, BN_I8, "bn_tensor_data_i8"); }
uint8_t *bn_tensor_data_u8(bn_tensor *t) { return typed_data(t, BN_U8, "bn_tensor_data_u8"); }
int32_t *bn_tensor_data_i32(bn_tensor *t) { return typed_data(t, BN_I32, "bn_tensor_data_i32"); }
int64_t *bn_tensor_data_i64(bn_tensor *t) { return typed_data(t, BN_I64, "bn_tensor_data_i64"); }
bool *bn_tensor_data_bool(bn_tensor *t) { return typed_data(t, BN_BOOL, "bn_tensor_data_bool"); }
void *bn_tensor_data(bn_tensor *t) { return typed_data(t, BN_DTYPE_COUNT, "bn_tensor_data"); }

bn_status bn_copy_to_host(const bn_tensor *t, void *dst, size_t bytes)
{
    BN_CHECK_NULL_STATUS("bn_copy_to_host", t);
    BN_CHECK_NULL_STATUS("bn_copy_to_host", dst);
    size_t need = (size_t)bn__numel(t) * bn_dtype_size(t->dtype);
    if (bytes != need)
        return bn__error(BN_ERR_ARG, "bn_copy_to_host: bytes is %zu but tensor %s %s needs %zu",
                         bytes, bn_dtype_name(t->dtype), bn__tshape(t), need);
    if (need == 0) return BN_OK;
    const bn_backend *be = bn__backend("bn_copy_to_host", t->storage->device);
    if (!be) return bn_error_code();
    bn_tensor *c = bn__contiguous(t);
    if (!c) return bn_error_code();
    bn_status st = be->copy_to_host(dst, bn__data(c), need);
    bn_release(c);
    return st;
}

/* Resolves a multi-index to an element offset; names fn on failure. */
static bool element_offset(const char *fn, const bn_tensor *t, const int64_t *index, int64_t *off)
{
    int64_t o = t->offset;
    for (int i = 0; i < t->ndim; i++) {
        int64_t k = index[i];
        if (k < -t->shape[i] || k >= t->shape[i]) {
            bn__error(BN_ERR_ARG, "%s: index %lld is out of range for dim %d of size %lld (shape %s)",
                      fn, (long long)k, i, (long long)t->shape[i], bn__tshape(t));
            return false;
        }
        o += (k < 0 ? k + t->shape[i] : k) * t->strides[i];
    }
    *off = o;
    return true;
}

double bn_get(const bn_tensor *t, const int64_t *index)
{
    int64_t off;
    if (!t) return bn__null_arg("bn_get", "t"), NAN;
    if (!index && t->ndim > 0) return bn__null_arg("bn_get", "index"), NAN;
    if (!element_offset("bn_get", t, index, &off)) return NAN;
    size_t es = bn_dtype_size(t->dtype);
    unsigned char buf[8];
    const bn_backend *be = bn__backend("bn_get", t->storage->device);
    if (!be) return NAN;
    if (be->copy_to_host(buf, (char *)t->storage->data + off * (int64_t)es, es) != BN_OK)
        return NAN;
    return bn__load_f64(buf, t->dtype);
}

void bn__bump_version(bn_tensor *t) { __atomic_add_fetch(&t->storage->version, 1, __ATOMIC_RELAXED); }

bn_status bn_set(bn_tensor *t, const int64_t *index, double v)
{
    int64_t off;
    BN_CHECK_NULL_STATUS("bn_set", t);
    if (!bn__check_inplace("bn_set", t)) return bn_error_code();
    bn__bump_version(t);
    if (!index && t->ndim > 0) return bn__null_arg_status("bn_set", "index");
    if (!element_offset("bn_set", t, index, &off)) return bn_error_code();
    size_t es = bn_dtype_size(t->dtype);
    unsigned char buf[8];
    bn__store_f64(buf, t->dtype, v);
    const bn_backend *be = bn__backend("bn_set", t->storage->device);
    if (!be) return bn_error_code();
    return be->copy_from_host((char *)t->storage->data + off * (int64_t)es, buf, es);
}

double bn_item(const bn_tensor *t)
{
    if (!t) return bn__null_arg("bn_item", "t"), NAN;
    if (bn__numel(t) != 1) {
        bn__error(BN_ERR_SHAPE, "bn_item: tensor %s has %lld elements, expected exactly 1",
                  bn__tshape(t), (long long)bn__numel(t));
        return NAN;
    }
    int64_t zeros[BN_MAX_DIMS] = {0};
    return bn_get(t, zeros);
}
