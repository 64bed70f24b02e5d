/* core/error.c — the per-thread error slot (code + message) and the checking helpers that fill
 * it. Nothing here aborts except BN_ASSERT, which marks a bug in born itself. */
#include "core/internal.h"

#include <stdio.h>
#include <string.h>

#define BN_ERROR_MAX 1024

static _Thread_local bn_status tl_code = BN_OK;
static _Thread_local char tl_message[BN_ERROR_MAX];

const char *bn_status_name(bn_status s)
{
    switch (s) {
    case BN_OK: return "BN_OK";
    case BN_ERR_SHAPE: return "BN_ERR_SHAPE";
    case BN_ERR_DTYPE: return "BN_ERR_DTYPE";
    case BN_ERR_DEVICE: return "BN_ERR_DEVICE";
    case BN_ERR_ARG: return "BN_ERR_ARG";
    case BN_ERR_OOM: return "BN_ERR_OOM";
    case BN_ERR_IO: return "BN_ERR_IO";
    case BN_ERR_FORMAT: return "BN_ERR_FORMAT";
    case BN_ERR_UNSUPPORTED: return "BN_ERR_UNSUPPORTED";
    case BN_ERR_INTERNAL: return "BN_ERR_INTERNAL";
    }
    return "BN_ERR_?";
}

bn_status bn_error_code(void) { return tl_code; }
const char *bn_error_message(void) { return tl_code == BN_OK ? "" : tl_message; }
void bn_error_clear(void)
{
    tl_code = BN_OK;
    tl_message[0] = '\0';
}

static void set_error(bn_status code, const char *fmt, va_list ap)
{
    tl_code = code;
    vsnprintf(tl_message, sizeof tl_message, fmt, ap);
}

bn_status bn__error(bn_status code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_error(code, fmt, ap);
    va_end(ap);
    return code;
}

void *bn__error_null(bn_status code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_error(code, fmt, ap);
    va_end(ap);
    return NULL;
}

bn_status bn__null_arg_status(const char *fn, const char *arg)
{
    /* A NULL input that an earlier failure produced keeps that failure's error. */
    if (tl_code != BN_OK) return tl_code;
    return bn__error(BN_ERR_ARG, "%s: argument %s is NULL", fn, arg);
}

void *bn__null_arg(const char *fn, const char *arg)
{
    bn__null_arg_status(fn, arg);
    return NULL;
}

_Noreturn void bn__assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "born: internal error (a bug in born): %s at %s:%d\n", expr, file, line);
    fflush(stderr);
    abort();
}

const char *bn__dims_str(const int64_t *dims, int ndim, char *buf, size_t n)
{
    size_t used = 0;
    if (n == 0) return buf;
    buf[0] = '\0';
    used += (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < ndim && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, i ? ", %lld" : "%lld", (long long)dims[i]);
    if (used < n) snprintf(buf + used, n - used, "]");
    return buf;
}

static _Thread_local char tl_shape_ring[4][BN_SHAPE_STR_MAX];
static _Thread_local int tl_shape_next;

static char *ring_buf(void)
{
    char *b = tl_shape_ring[tl_shape_next];
    tl_shape_next = (tl_shape_next + 1) & 3;
    return b;
}

const char *bn__tshape(const bn_tensor *t)
{
    char *b = ring_buf();
    if (!t) {
        snprintf(b, BN_SHAPE_STR_MAX, "(null)");
        return b;
    }
    return bn__dims_str(t->shape, t->ndim, b, BN_SHAPE_STR_MAX);
}

const char *bn__sshape(bn_shape s)
{
    char *b = ring_buf();
    int nd = s.ndim < 0 ? 0 : (s.ndim > BN_MAX_DIMS ? BN_MAX_DIMS : s.ndim);
    return bn__dims_str(s.dims, nd, b, BN_SHAPE_STR_MAX);
}

bool bn__norm_dim(const char *fn, const char *arg, int dim, int ndim, int *out)
{
    int n = ndim == 0 ? 1 : ndim;
    if (dim < -n || dim >= n) {
        bn__error(BN_ERR_ARG, "%s: %s %d is out of range for a tensor of %d dims (expected %d..%d)",
                  fn, arg, dim, ndim, -n, n - 1);
        return false;
    }
    *out = dim < 0 ? dim + n : dim;
    return true;
}
