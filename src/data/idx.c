/* data/idx.c — the IDX reader (MNIST's format): a 4-byte magic {0, 0, type, ndim}, ndim
 * big-endian u32 dims, then the elements big-endian in row-major order. gzip'd files go through
 * zlib (which also reads plain files). Everything in the file is checked before it is believed:
 * the buffer grows with what was actually read, so a header claiming terabytes costs nothing,
 * and a short or overlong file is BN_ERR_FORMAT naming the file. */
#include "born/data.h"
#include "core/internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#if BORN_HAVE_ZLIB
#include <zlib.h>
#endif

#define IDX_FN "bn_idx_read"

/* ---- a byte source: zlib when we have it, stdio otherwise ---------------------------------- */
typedef struct idx_src {
#if BORN_HAVE_ZLIB
    gzFile gz;
#else
    FILE *f;
#endif
} idx_src;

#if !BORN_HAVE_ZLIB
static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}
#endif

static bool src_open(idx_src *s, const char *path)
{
#if BORN_HAVE_ZLIB
    s->gz = gzopen(path, "rb");
    if (!s->gz) {
        bn__error(BN_ERR_IO, IDX_FN ": cannot open '%s': %s", path, strerror(errno));
        return false;
    }
#else
    if (ends_with(path, ".gz")) {
        bn__error(BN_ERR_UNSUPPORTED,
                  IDX_FN ": '%s' is gzip'd and this born was built without zlib "
                  "(apt-get install zlib1g-dev, then rebuild), or gunzip it first",
                  path);
        return false;
    }
    s->f = fopen(path, "rb");
    if (!s->f) {
        bn__error(BN_ERR_IO, IDX_FN ": cannot open '%s': %s", path, strerror(errno));
        return false;
    }
#endif
    return true;
}

/* Reads up to n bytes; returns how many were read, or -1 on a read error (set, naming path). */
static int64_t src_read(idx_src *s, void *buf, size_t n, const char *path)
{
#if BORN_HAVE_ZLIB
    size_t done = 0;
    while (done < n) {
        size_t chunk = n - done > (1u << 30) ? (1u << 30) : n - done;
        int got = gzread(s->gz, (char *)buf + done, (unsigned)chunk);
        if (got < 0) {
            int zerr = 0;
            const char *msg = gzerror(s->gz, &zerr);
            bn__error(BN_ERR_FORMAT, IDX_FN ": '%s' is not a readable gzip file: %s", path, msg);
            return -1;
        }
        if (got == 0) break;
        done += (size_t)got;
    }
    return (int64_t)done;
#else
    size_t got = fread(buf, 1, n, s->f);
    if (got < n && ferror(s->f)) {
        bn__error(BN_ERR_IO, IDX_FN ": error reading '%s'", path);
        return -1;
    }
    return (int64_t)got;
#endif
}

static void src_close(idx_src *s)
{
#if BORN_HAVE_ZLIB
    gzclose(s->gz);
#else
    fclose(s->f);
#endif
}

/* ---- the header ------------------------------------------------------------------------------ */
typedef struct idx_header {
    int type_code; /* 0x08 u8, 0x09 i8, 0x0B i16, 0x0C i32, 0x0D f32, 0x0E f64 */
    int ndim;
    int64_t dims[BN_MAX_DIMS];
    size_t elem_size; /* in the file */
    uint64_t numel;
} idx_header;

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static size_t idx_elem_size(int code)
{
    switch (code) {
    case 0x08:
    case 0x09: return 1;
    case 0x0B: return 2;
    case 0x0C:
    case 0x0D: return 4;
    case 0x0E: return 8;
    default: return 0;
    }
}

static bool read_header(idx_src *s, const char *path, idx_header *h)
{
    unsigned char magic[4];
    int64_t got = src_read(s, magic, 4, path);
    if (got < 0) return false;
    if (got < 4 || magic[0] != 0 || magic[1] != 0) {
        bn__error(BN_ERR_FORMAT, IDX_FN ": '%s' is not an IDX file (bad magic number)", path);
        return false;
    }
    h->type_code = magic[2];
    h->ndim = magic[3];
    h->elem_size = idx_elem_size(h->type_code);
    if (!h->elem_size) {
        bn__error(BN_ERR_FORMAT, IDX_FN ": '%s' has unknown element type 0x%02x", path,
                  h->type_code);
        return false;
    }
    if (h->ndim < 1 || h->ndim > BN_MAX_DIMS) {
        bn__error(BN_ERR_FORMAT, IDX_FN ": '%s' claims %d dims (1 to %d supported)", path,
                  h->ndim, BN_MAX_DIMS);
        return false;
    }
    unsigned char raw[4 * BN_MAX_DIMS];
    got = src_read(s, raw, 4 * (size_t)h->ndim, path);
    if (got < 0) return false;
    if (got < 4 * h->ndim) {
        bn__error(BN_ERR_FORMAT, IDX_FN ": '%s' is truncated inside its header", path);
        return false;
    }
    /* The product of the dims (zeros counted as ones, so an empty tensor's strides stay
     * representable too) must stay below 2^40; dims are below 2^32, so checking before each
     * multiplication keeps it from overflowing. */
    uint64_t bound = 1;
    h->numel = 1;
    for (int i = 0; i < h->ndim; i++) {
        h->dims[i] = be32(raw + 4 * i);
        uint64_t d = h->dims[i] ? (uint64_t)h->dims[i] : 1;
        if (bound > ((uint64_t)1 << 40) / d) {
            bn__error(BN_ERR_FORMAT, IDX_FN ": '%s' claims dims %s: too large to be real", path,
                      bn__dims_str(h->dims, i + 1, (char[BN_SHAPE_STR_MAX]){0}, BN_SHAPE_STR_MAX));
            return false;
        }
        bound *= d;
        h->numel *= (uint64_t)h->dims[i];
    }
    return true;
}

/* ---- the body ------------------------------------------------------------------------------ */
/* Reads exactly `want` bytes into a buffer that grows with what arrives; checks that nothing
 * follows. Returns the malloc'd buffer or NULL (error set). */
static unsigned char *read_body(idx_src *s, const char *path, size_t want)
{
    size_t cap = want < (1u << 20) ? want : (1u << 20), have = 0;
    unsigned char *buf = malloc(cap ? cap : 1);
    if (!buf) return bn__error_null(BN_ERR_OOM, IDX_FN ": out of memory reading '%s'", path);
    while (have < want) {
        if (have == cap) {
            size_t ncap = cap * 2 < want ? cap * 2 : want;
            unsigned char *nb = realloc(buf, ncap);
            if (!nb) {
                free(buf);
                return bn__error_null(BN_ERR_OOM, IDX_FN ": out of memory reading '%s'", path);
            }
            buf = nb;
            cap = ncap;
        }
        int64_t got = src_read(s, buf + have, cap - have, path);
        if (got < 0) goto fail;
        if (got == 0) {
            bn__error(BN_ERR_FORMAT,
                      IDX_FN ": '%s' is truncated: its dims need %zu bytes of data, it has %zu",
                      path, want, have);
            goto fail;
        }
        have += (size_t)got;
    }
    unsigned char extra;
    int64_t more = src_read(s, &extra, 1, path);
    if (more < 0) goto fail;
    if (more > 0) {
        bn__error(BN_ERR_FORMAT,
                  IDX_FN ": '%s' is longer than its dims say (%zu bytes of data expected)", path,
                  want);
        goto fail;
    }
    return buf;
fail:
    free(buf);
    return NULL;
}

static void free_buffer(void *data, void *ctx)
{
    (void)ctx;
    free(data);
}

/* Converts the big-endian body in place (or, for i16, into a new i32 buffer). */
static unsigned char *to_host_order(unsigned char *buf, const idx_header *h, bn_dtype *dt)
{
    size_t n = (size_t)h->numel;
    switch (h->type_code) {
    case 0x08: *dt = BN_U8; return buf;
    case 0x09: *dt = BN_I8; return buf;
    case 0x0B: {
        int32_t *out = malloc(n ? n * sizeof(int32_t) : 1);
        if (out)
            for (size_t i = 0; i < n; i++)
                out[i] = (int16_t)(uint16_t)((unsigned)buf[2 * i] << 8 | buf[2 * i + 1]);
        free(buf);
        *dt = BN_I32;
        if (!out) bn__error(BN_ERR_OOM, IDX_FN ": out of memory");
        return (unsigned char *)out;
    }
    case 0x0C:
    case 0x0D:
        for (size_t i = 0; i < n; i++) {
            uint32_t v = be32(buf + 4 * i);
            memcpy(buf + 4 * i, &v, 4);
        }
        *dt = h->type_code == 0x0C ? BN_I32 : BN_F32;
        return buf;
    default: /* 0x0E */
        for (size_t i = 0; i < n; i++) {
            uint64_t v = (uint64_t)be32(buf + 8 * i) << 32 | be32(buf + 8 * i + 4);
            memcpy(buf + 8 * i, &v, 8);
        }
        *dt = BN_F64;
        return buf;
    }
}

bn_tensor *bn_idx_read(const char *path)
{
    BN_CHECK_NULL(IDX_FN, path);
    idx_src s;
    if (!src_open(&s, path)) return NULL;
    idx_header h;
    unsigned char *buf = NULL;
    if (read_header(&s, path, &h)) buf = read_body(&s, path, (size_t)h.numel * h.elem_size);
    src_close(&s);
    if (!buf) return NULL;
    bn_dtype dt;
    buf = to_host_order(buf, &h, &dt);
    if (!buf) return NULL;
    bn_tensor *t = bn__wrap(buf, (size_t)h.numel * bn_dtype_size(dt), h.dims, h.ndim, dt, bn_cpu(),
                            free_buffer, NULL);
    if (!t) free(buf);
    return bn__out(t);
}
