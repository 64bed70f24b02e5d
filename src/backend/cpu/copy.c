/* backend/cpu/copy.c — data movement kernels: strided copy with dtype conversion, fill, arange /
 * linspace, and Philox random fills. */
#include "backend/cpu/cpu_kernels.h"
#include "backend/cpu/iter.h"
#include "core/philox.h"

#include <math.h>
#include <string.h>

/* ---- copy --------------------------------------------------------------------------------- */
typedef struct copy_ctx {
    bn_dtype src, dst;
} copy_ctx;

/* operand 0 is dst, 1 is src */
static void copy_same(void *vctx, char *const *p, const int64_t *s, int64_t n)
{
    const copy_ctx *c = vctx;
    size_t es = bn_dtype_size(c->dst);
    if (s[0] == 1 && s[1] == 1) {
        memcpy(p[0], p[1], (size_t)n * es);
        return;
    }
    switch (es) {
#define COPY_STRIDED(T)                                                                            \
    {                                                                                              \
        T *d = (T *)p[0];                                                                          \
        const T *x = (const T *)p[1];                                                              \
        for (int64_t i = 0; i < n; i++) d[i * s[0]] = x[i * s[1]];                                 \
        return;                                                                                    \
    }
    case 1: COPY_STRIDED(uint8_t)
    case 2: COPY_STRIDED(uint16_t)
    case 4: COPY_STRIDED(uint32_t)
    case 8: COPY_STRIDED(uint64_t)
#undef COPY_STRIDED
    default: BN_ASSERT(0);
    }
}

static void copy_f32_to_f16(void *vctx, char *const *p, const int64_t *s, int64_t n)
{
    (void)vctx;
    uint16_t *d = (uint16_t *)p[0];
    const float *x = (const float *)p[1];
    for (int64_t i = 0; i < n; i++) d[i * s[0]] = bn_f32_to_f16(x[i * s[1]]);
}
static void copy_f32_to_bf16(void *vctx, char *const *p, const int64_t *s, int64_t n)
{
    (void)vctx;
    uint16_t *d = (uint16_t *)p[0];
    const float *x = (const float *)p[1];
    for (int64_t i = 0; i < n; i++) d[i * s[0]] = bn_f32_to_bf16(x[i * s[1]]);
}
static void copy_f16_to_f32(void *vctx, char *const *p, const int64_t *s, int64_t n)
{
    (void)vctx;
    float *d = (float *)p[0];
    const uint16_t *x = (const uint16_t *)p[1];
    for (int64_t i = 0; i < n; i++) d[i * s[0]] = bn_f16_to_f32(x[i * s[1]]);
}
static void copy_bf16_to_f32(void *vctx, char *const *p, const int64_t *s, int64_t n)
{
    (void)vctx;
    float *d = (float *)p[0];
    const uint16_t *x = (const uint16_t *)p[1];
    for (int64_t i = 0; i < n; i++) d[i * s[0]] = bn_bf16_to_f32(x[i * s[1]]);
}

/* Integer to integer keeps every bit that fits (wrapping like C's conversion for narrowing,
 * which is what PyTorch does); no trip through double. */
static int64_t load_int(const char *p, bn_dtype dt)
{
    switch (dt) {
    case BN_I8: return *(const int8_t *)p;
    case BN_U8: return *(const uint8_t *)p;
    case BN_I32: return *(const int32_t *)p;
    case BN_I64: return *(const int64_t *)p;
    case BN_BOOL: return *(const bool *)p;
    default: BN_ASSERT(0);
    }
}
static void store_int(char *p, bn_dtype dt, int64_t v)
{
    switch (dt) {
    case BN_I8: *(int8_t *)p = (int8_t)(uint8_t)(uint64_t)v; break;
    case BN_U8: *(uint8_t *)p = (uint8_t)(uint64_t)v; break;
    case BN_I32: *(int32_t *)p = (int32_t)(uint32_t)(uint64_t)v; break;
    case BN_I64: *(int64_t *)p = v; break;
    case BN_BOOL: *(bool *)p = v != 0; break;
    default: BN_ASSERT(0);
    }
}
static void copy_int_to_int(void *vctx, char *const *p, const int64_t *s, int64_t n)
{
    const copy_ctx *c = vctx;
    size_t ed = bn_dtype_size(c->dst), es = bn_dtype_size(c->src);
    for (int64_t i = 0; i < n; i++)
        store_int(p[0] + i * s[0] * (int64_t)ed, c->dst,
                  load_int(p[1] + i * s[1] * (int64_t)es, c->src));
}

/* Integer to f32: one rounding straight from the integer (through double would round twice
 * for |v| > 2^53). */
static void copy_int_to_f32(void *vctx, char *const *p, const int64_t *s, int64_t n)
{
    const copy_ctx *c = vctx;
    size_t es = bn_dtype_size(c->src);
    float *d = (float *)p[0];
    for (int64_t i = 0; i < n; i++)
        d[i * s[0]] = (float)load_int(p[1] + i * s[1] * (int64_t)es, c->src);
}

static void copy_generic(void *vctx, char *const *p, const int64_t *s, int64_t n)
{
    const copy_ctx *c = vctx;
    size_t ed = bn_dtype_size(c->dst), es = bn_dtype_size(c->src);
    for (int64_t i = 0; i < n; i++)
        bn__store_f64(p[0] + i * s[0] * (int64_t)ed, c->dst,
                      bn__load_f64(p[1] + i * s[1] * (int64_t)es, c->src));
}

static bool is_intlike(bn_dtype dt) { return bn_dtype_is_int(dt) || dt == BN_BOOL; }

bn_status bn_cpu_copy(const bn_tview *src, const bn_tview *dst)
{
    const bn_tview *ops[2] = {dst, src};
    bn_iter it;
    bn_iter_init(&it, 2, ops);
    copy_ctx c = {src->dtype, dst->dtype};
    bn_iter_fn fn = copy_generic;
    if (src->dtype == dst->dtype)
        fn = copy_same;
    else if (src->dtype == BN_F32 && dst->dtype == BN_F16)
        fn = copy_f32_to_f16;
    else if (src->dtype == BN_F32 && dst->dtype == BN_BF16)
        fn = copy_f32_to_bf16;
    else if (src->dtype == BN_F16 && dst->dtype == BN_F32)
        fn = copy_f16_to_f32;
    else if (src->dtype == BN_BF16 && dst->dtype == BN_F32)
        fn = copy_bf16_to_f32;
    else if (is_intlike(src->dtype) && is_intlike(dst->dtype))
        fn = copy_int_to_int;
    else if (is_intlike(src->dtype) && dst->dtype == BN_F32)
        fn = copy_int_to_f32;
    /* wide memcpy rows are bandwidth-bound: only parallel for big copies */
    bn_iter_run(&it, fn, &c, fn == copy_same ? 4 * BN_PAR_MIN_ELEMS : 0);
    return BN_OK;
}

/* ---- fill --------------------------------------------------------------------------------- */
typedef struct fill_ctx {
    unsigned char value[8];
    size_t es;
} fill_ctx;

static void fill_run(void *vctx, char *const *p, const int64_t *s, int64_t n)
{
    const fill_ctx *c = vctx;
    for (int64_t i = 0; i < n; i++) memcpy(p[0] + i * s[0] * (int64_t)c->es, c->value, c->es);
}

bn_status bn_cpu_fill(const bn_tview *dst, double v)
{
    const bn_tview *ops[1] = {dst};
    bn_iter it;
    bn_iter_init(&it, 1, ops);
    fill_ctx c = {.es = bn_dtype_size(dst->dtype)};
    bn__store_f64(c.value, dst->dtype, v);
    bn_iter_run(&it, fill_run, &c, 0);
    return BN_OK;
}

/* ---- arange / linspace: dst is contiguous 1-D ----------------------------------------------- */
bn_status bn_cpu_sequence(bn_sequence_op op, const bn_tview *dst, double start, double step,
                          double end)
{
    int64_t n = dst->ndim ? dst->shape[0] : 1;
    size_t es = bn_dtype_size(dst->dtype);
    char *p = dst->data;
    int64_t half = n / 2;
    for (int64_t i = 0; i < n; i++) {
        double v;
        if (op == BN_SEQ_LINSPACE && i >= half && n > 1)
            v = end - step * (double)(n - 1 - i); /* symmetric, as torch.linspace computes it */
        else
            v = start + step * (double)i;
        bn__store_f64(p + i * dst->strides[0] * (int64_t)es, dst->dtype, v);
    }
    return BN_OK;
}

/* ---- random: dst is contiguous -------------------------------------------------------------
 * f32/f16/bf16 (and integer) draws: element i takes word i%4 of block counter + i/4 (normals
 * pair words 0-1 and 2-3 through Box-Muller). f64 draws take two words per value: element i
 * uses block counter + i/2. ops/ reserved exactly those blocks. */
static double normal_from(double u1, double u2, int which)
{
    /* u1 in (0, 1]: avoid log(0) */
    double r = sqrt(-2.0 * log(u1));
    double t = 2.0 * M_PI * u2;
    return which ? r * sin(t) : r * cos(t);
}

bn_status bn_cpu_random(bn_random_op op, const bn_tview *dst, uint64_t seed, uint64_t counter,
                        double a, double b)
{
    int64_t n = 1;
    for (int d = 0; d < dst->ndim; d++) n *= dst->shape[d];
    size_t es = bn_dtype_size(dst->dtype);
    char *out = dst->data;
    bool wide = dst->dtype == BN_F64 || dst->dtype == BN_I64;
    int64_t per_block = wide ? 2 : 4;
    int64_t nblocks = (n + per_block - 1) / per_block;
#pragma omp parallel for schedule(static) if (n >= BN_PAR_MIN_ELEMS)
    for (int64_t blk = 0; blk < nblocks; blk++) {
        bn_philox_block r = bn_philox4x32_10(seed, counter + (uint64_t)blk);
        double vals[4];
        if (wide) {
            double u0 = bn_philox_u01_f64(r.v[0], r.v[1]), u1 = bn_philox_u01_f64(r.v[2], r.v[3]);
            if (op == BN_RANDOM_NORMAL) {
                vals[0] = a + b * normal_from(1.0 - u0, u1, 0);
                vals[1] = a + b * normal_from(1.0 - u0, u1, 1);
            } else {
                vals[0] = u0;
                vals[1] = u1;
            }
        } else {
            double u[4];
            for (int k = 0; k < 4; k++) u[k] = bn_philox_u01_f32(r.v[k]);
            if (op == BN_RANDOM_NORMAL) {
                vals[0] = a + b * normal_from(1.0 - u[0], u[1], 0);
                vals[1] = a + b * normal_from(1.0 - u[0], u[1], 1);
                vals[2] = a + b * normal_from(1.0 - u[2], u[3], 0);
                vals[3] = a + b * normal_from(1.0 - u[2], u[3], 1);
            } else {
                for (int k = 0; k < 4; k++) vals[k] = u[k];
            }
        }
        for (int64_t k = 0; k < per_block; k++) {
            int64_t i = blk * per_block + k;
            if (i >= n) break;
            double v = vals[k];
            if (op == BN_RANDOM_UNIFORM) {
                v = a + (b - a) * v;
                /* rounding to the output dtype may reach b: keep the interval half-open */
                if (bn_dtype_is_float(dst->dtype)) {
                    unsigned char tmp[8];
                    bn__store_f64(tmp, dst->dtype, v);
                    if (bn__load_f64(tmp, dst->dtype) >= b) v = a;
                }
            } else if (op == BN_RANDOM_INT) {
                double span = b - a;
                v = a + floor(v * span);
                if (v >= b) v = b - 1;
            }
            bn__store_f64(out + i * (int64_t)es, dst->dtype, v);
        }
    }
    return BN_OK;
}
