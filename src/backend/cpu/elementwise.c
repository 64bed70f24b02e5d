/* backend/cpu/elementwise.c — the CPU `where` slot: out = cond ? a : b on broadcast operands.
 * A pure selection, so it works on element sizes (1, 2, 4, 8 bytes), not dtypes. The unary and
 * binary element-wise kernels live in unary.c and binary.c. */
#include "backend/cpu/cpu_kernels.h"
#include "backend/cpu/iter.h"

/* operands: 0 out, 1 cond (bool), 2 a, 3 b; every one (n) with its stride s[k]. With out and
 * cond contiguous and a, b each contiguous or one broadcast value (stride 0: masked_fill's and
 * relu-like selects), the choice is a mask (all ones where cond holds) and two ANDs: no branch,
 * and the loop vectorises. Elements are handled as unsigned integers of their size. */
#define WHERE_SELECT(T, X, Y)                                                                      \
    for (int64_t i = 0; i < n; i++) {                                                              \
        T m_ = (T)((T)0 - (T)(c[i] != 0));                                                         \
        o[i] = (T)(((X)&m_) | ((Y) & (T)~m_));                                                     \
    }

#define WHERE_KERNEL(NAME, T)                                                                      \
    static void NAME(void *ctx, char *const *p, const int64_t *s, int64_t n)                       \
    {                                                                                              \
        (void)ctx;                                                                                 \
        T *restrict o = (T *)p[0];                                                                 \
        const bool *c = (const bool *)p[1];                                                        \
        const T *a = (const T *)p[2], *b = (const T *)p[3];                                        \
        if (s[0] == 1 && s[1] == 1 && (s[2] == 0 || s[2] == 1) && (s[3] == 0 || s[3] == 1)) {      \
            if (s[2] == 1 && s[3] == 1) {                                                          \
                WHERE_SELECT(T, a[i], b[i])                                                        \
            } else if (s[2] == 0 && s[3] == 1) {                                                   \
                const T av = a[0];                                                                 \
                WHERE_SELECT(T, av, b[i])                                                          \
            } else if (s[2] == 1) {                                                                \
                const T bv = b[0];                                                                 \
                WHERE_SELECT(T, a[i], bv)                                                          \
            } else {                                                                               \
                const T av = a[0], bv = b[0];                                                      \
                WHERE_SELECT(T, av, bv)                                                            \
            }                                                                                      \
        } else {                                                                                   \
            for (int64_t i = 0; i < n; i++) o[i * s[0]] = c[i * s[1]] ? a[i * s[2]] : b[i * s[3]]; \
        }                                                                                          \
    }

WHERE_KERNEL(where_1, uint8_t)
WHERE_KERNEL(where_2, uint16_t)
WHERE_KERNEL(where_4, uint32_t)
WHERE_KERNEL(where_8, uint64_t)

bn_status bn_cpu_where(const bn_tview *cond, const bn_tview *a, const bn_tview *b,
                       const bn_tview *out)
{
    if (cond->dtype != BN_BOOL || a->dtype != out->dtype || b->dtype != out->dtype)
        return bn__error(BN_ERR_UNSUPPORTED, "cpu where: cond %s, a %s, b %s, out %s",
                         bn_dtype_name(cond->dtype), bn_dtype_name(a->dtype),
                         bn_dtype_name(b->dtype), bn_dtype_name(out->dtype));
    const bn_tview *ops[4] = {out, cond, a, b};
    bn_iter it;
    bn_iter_init(&it, 4, ops);
    bn_iter_fn fn = NULL;
    switch (bn_dtype_size(out->dtype)) {
    case 1: fn = where_1; break;
    case 2: fn = where_2; break;
    case 4: fn = where_4; break;
    case 8: fn = where_8; break;
    default:
        return bn__error(BN_ERR_UNSUPPORTED, "cpu where: no kernel for %s",
                         bn_dtype_name(out->dtype));
    }
    bn_iter_run(&it, fn, NULL, 0);
    return BN_OK;
}
