/* backend/cpu/matmul_reference.c — the plain matmul the fast kernels are tested against: one
 * element at a time, K products added in order into the accumulator type of the dtype (f32 for
 * f32/f16/bf16, f64, wrapping 64-bit integers), any strides. Single-threaded and slow on
 * purpose; nothing in the library calls it. */
#include "backend/cpu/matmul_gemm.h"

/* Products and sums round separately here, even where the target has FMA (-march=native):
 * gcc does not contract in ISO C mode, clang needs telling. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

static const char *at(const bn_tview *v, const int64_t *idx, int64_t i, int64_t j)
{
    int nd = v->ndim;
    int64_t off = i * v->strides[nd - 2] + j * v->strides[nd - 1];
    for (int d = 0; d < nd - 2; d++) off += idx[d] * v->strides[d];
    return (const char *)v->data + off * (int64_t)bn_dtype_size(v->dtype);
}

static float load_f32(const char *p, bn_dtype dt)
{
    switch (dt) {
    case BN_F32: return *(const float *)p;
    case BN_F16: return bn_f16_to_f32(*(const uint16_t *)p);
    case BN_BF16: return bn_bf16_to_f32(*(const uint16_t *)p);
    default: BN_ASSERT(0);
    }
}

static uint64_t load_u64(const char *p, bn_dtype dt)
{
    switch (dt) {
    case BN_I8: return (uint64_t)(int64_t)(*(const int8_t *)p);
    case BN_U8: return *(const uint8_t *)p;
    case BN_I32: return (uint64_t)(int64_t)(*(const int32_t *)p);
    case BN_I64: return (uint64_t)(*(const int64_t *)p);
    default: BN_ASSERT(0);
    }
}

/* out[idx..., i, j] = sum over k of a[idx..., i, k] * b[idx..., k, j] */
static void one_element(const bn_tview *a, const bn_tview *b, const bn_tview *out,
                        const int64_t *idx, int64_t i, int64_t j)
{
    int64_t K = a->shape[a->ndim - 1];
    char *o = (char *)at(out, idx, i, j);
    switch (out->dtype) {
    case BN_F32:
    case BN_F16:
    case BN_BF16: {
        float s = 0.0f;
        for (int64_t k = 0; k < K; k++)
            s += load_f32(at(a, idx, i, k), a->dtype) * load_f32(at(b, idx, k, j), b->dtype);
        if (out->dtype == BN_F32)
            *(float *)o = s;
        else if (out->dtype == BN_F16)
            *(uint16_t *)o = bn_f32_to_f16(s);
        else
            *(uint16_t *)o = bn_f32_to_bf16(s);
        break;
    }
    case BN_F64: {
        double s = 0.0;
        for (int64_t k = 0; k < K; k++)
            s += *(const double *)at(a, idx, i, k) * *(const double *)at(b, idx, k, j);
        *(double *)o = s;
        break;
    }
    default: {
        uint64_t s = 0;
        for (int64_t k = 0; k < K; k++)
            s += load_u64(at(a, idx, i, k), a->dtype) * load_u64(at(b, idx, k, j), b->dtype);
        switch (out->dtype) {
        case BN_I8: *(int8_t *)o = (int8_t)(uint8_t)s; break;
        case BN_U8: *(uint8_t *)o = (uint8_t)s; break;
        case BN_I32: *(int32_t *)o = (int32_t)(uint32_t)s; break;
        default: *(int64_t *)o = (int64_t)s; break;
        }
    }
    }
}

bn_status bn_cpu_matmul_reference(const bn_tview *a, const bn_tview *b, const bn_tview *out)
{
    int nd = out->ndim;
    if (out->dtype == BN_BOOL || !bn__dtype_valid(out->dtype))
        return bn__error(BN_ERR_UNSUPPORTED, "bn_cpu_matmul_reference: dtype %s is not supported",
                         bn_dtype_name(out->dtype));
    int64_t nbatch = 1, idx[BN_MAX_DIMS] = {0};
    for (int d = 0; d < nd - 2; d++) nbatch *= out->shape[d];
    for (int64_t bi = 0; bi < nbatch; bi++) {
        for (int64_t r = bi, d = nd - 3; d >= 0; d--) {
            idx[d] = r % out->shape[d];
            r /= out->shape[d];
        }
        for (int64_t i = 0; i < out->shape[nd - 2]; i++)
            for (int64_t j = 0; j < out->shape[nd - 1]; j++) one_element(a, b, out, idx, i, j);
    }
    return BN_OK;
}
