/* io/born_read.c — reads the .born format (docs/FORMAT.md). Before any byte of the data section
 * is used, everything is validated: the magic, the version (a newer major is refused), the
 * header length and data section against the file's size, the header as UTF-8 JSON (size
 * capped), every tensor's dtype, shape, byte size (overflow-checked) and range inside the data
 * section, distinct names and no two tensors overlapping. The checksum is verified on request.
 * Tensors point into a MAP_PRIVATE mapping of the file: zero-copy until written. */
#include "io/io_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static unsigned get_u16(const uint8_t *p) { return (unsigned)p[0] | ((unsigned)p[1] << 8); }

#define BAD(...) (bn__error(BN_ERR_FORMAT, __VA_ARGS__), false)

/* ---- the preamble ------------------------------------------------------------------------- */
static bool parse_preamble(const char *fn, const char *path, const uint8_t *p, uint64_t file_size,
                           bn__born_header *h)
{
    if (file_size < BN__BORN_PREAMBLE)
        return BAD("%s: '%s' is too short for a .born file (%llu bytes; the preamble alone is %d)",
                   fn, path, (unsigned long long)file_size, BN__BORN_PREAMBLE);
    if (memcmp(p, BN__BORN_MAGIC, 8) != 0)
        return BAD("%s: '%s' is not a .born file (bad magic)", fn, path);
    h->major = (int)get_u16(p + 8);
    h->minor = (int)get_u16(p + 10);
    if (h->major != BN__BORN_MAJOR)
        return BAD("%s: '%s' has format version %d.%d; this reader reads version %d.x", fn, path,
                   h->major, h->minor, BN__BORN_MAJOR);
    h->header_len = get_u64(p + 16);
    h->data_offset = get_u64(p + 24);
    h->data_len = get_u64(p + 32);
    h->file_size = file_size;
    if (h->header_len > BN__BORN_HEADER_MAX)
        return BAD("%s: '%s' claims a %llu-byte header (the limit is %llu)", fn, path,
                   (unsigned long long)h->header_len, (unsigned long long)BN__BORN_HEADER_MAX);
    if (h->header_len > file_size - BN__BORN_PREAMBLE)
        return BAD("%s: '%s': header length %llu runs past the end of the file (%llu bytes)", fn,
                   path, (unsigned long long)h->header_len, (unsigned long long)file_size);
    if (h->data_offset % BN__BORN_ALIGN != 0 || h->data_offset < BN__BORN_PREAMBLE + h->header_len)
        return BAD("%s: '%s': data offset %llu is not a multiple of %d after the header (ends at "
                   "%llu)",
                   fn, path, (unsigned long long)h->data_offset, BN__BORN_ALIGN,
                   (unsigned long long)(BN__BORN_PREAMBLE + h->header_len));
    if (h->data_offset > file_size || h->data_len != file_size - h->data_offset)
        return BAD("%s: '%s': the data section (offset %llu, %llu bytes) does not end at the end "
                   "of the file (%llu bytes): truncated or extended",
                   fn, path, (unsigned long long)h->data_offset, (unsigned long long)h->data_len,
                   (unsigned long long)file_size);
    return true;
}

/* ---- the JSON header ---------------------------------------------------------------------- */
static bool dtype_from_name(const char *s, bn_dtype *out)
{
    for (int d = 0; d < BN_DTYPE_COUNT; d++) {
        if (strcmp(s, bn_dtype_name((bn_dtype)d)) == 0) {
            *out = (bn_dtype)d;
            return true;
        }
    }
    return false;
}

static bool parse_entry(const char *fn, const char *path, int i, json_t *e, uint64_t data_len,
                        bn__born_entry *out)
{
    json_t *name = json_object_get(e, "name"), *dtype = json_object_get(e, "dtype");
    json_t *shape = json_object_get(e, "shape"), *offset = json_object_get(e, "offset");
    json_t *nbytes = json_object_get(e, "nbytes");
    if (!json_is_object(e) || !json_is_string(name) || !json_is_string(dtype) ||
        !json_is_array(shape) || !json_is_integer(offset) || !json_is_integer(nbytes))
        return BAD("%s: '%s': tensor entry %d lacks a string name/dtype, an array shape or an "
                   "integer offset/nbytes",
                   fn, path, i);
    const char *nm = json_string_value(name);
    if (!dtype_from_name(json_string_value(dtype), &out->dtype))
        return BAD("%s: '%s': tensor '%s' has unknown dtype '%s'", fn, path, nm,
                   json_string_value(dtype));
    if (json_array_size(shape) > BN_MAX_DIMS)
        return BAD("%s: '%s': tensor '%s' has %zu dims (at most %d)", fn, path, nm,
                   json_array_size(shape), BN_MAX_DIMS);
    out->ndim = (int)json_array_size(shape);
    for (int d = 0; d < out->ndim; d++) {
        json_t *v = json_array_get(shape, (size_t)d);
        if (!json_is_integer(v) || json_integer_value(v) < 0)
            return BAD("%s: '%s': tensor '%s' has a bad size in dim %d", fn, path, nm, d);
        out->shape[d] = json_integer_value(v);
    }
    uint64_t want = 0;
    if (!bn__io_nbytes(out->shape, out->ndim, bn_dtype_size(out->dtype), &want) ||
        want > (uint64_t)INT64_MAX)
        return BAD("%s: '%s': tensor '%s' has a shape whose byte size overflows", fn, path, nm);
    json_int_t off = json_integer_value(offset), nb = json_integer_value(nbytes);
    if (nb < 0 || (uint64_t)nb != want)
        return BAD("%s: '%s': tensor '%s' claims %lld bytes but %s %s is %llu bytes", fn, path, nm,
                   (long long)nb, bn_dtype_name(out->dtype),
                   bn__dims_str(out->shape, out->ndim, (char[BN_SHAPE_STR_MAX]){0},
                                BN_SHAPE_STR_MAX),
                   (unsigned long long)want);
    if (off < 0 || off % BN__BORN_ALIGN != 0 || (uint64_t)off > data_len ||
        want > data_len - (uint64_t)off)
        return BAD("%s: '%s': tensor '%s' at offset %lld (%llu bytes) is not a %d-aligned range "
                   "inside the data section (%llu bytes)",
                   fn, path, nm, (long long)off, (unsigned long long)want, BN__BORN_ALIGN,
                   (unsigned long long)data_len);
    out->offset = (uint64_t)off;
    out->nbytes = want;
    out->name = strdup(nm);
    if (!out->name) return bn__error(BN_ERR_OOM, "%s: out of memory", fn), false;
    return true;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp((*(const bn__born_entry *const *)a)->name,
                  (*(const bn__born_entry *const *)b)->name);
}

static int cmp_offset(const void *a, const void *b)
{
    uint64_t x = (*(const bn__born_entry *const *)a)->offset;
    uint64_t y = (*(const bn__born_entry *const *)b)->offset;
    return (x > y) - (x < y);
}

/* Distinct names; no two non-empty tensors sharing a byte (sorted views of the entries). */
static bool check_layout(const char *fn, const char *path, bn__born_header *h)
{
    if (h->count < 2) return true;
    bn__born_entry **v = malloc(sizeof *v * (size_t)h->count);
    if (!v) return bn__error(BN_ERR_OOM, "%s: out of memory", fn), false;
    for (int i = 0; i < h->count; i++) v[i] = &h->entries[i];
    bool ok = true;
    qsort(v, (size_t)h->count, sizeof *v, cmp_name);
    for (int i = 1; i < h->count && ok; i++)
        if (strcmp(v[i - 1]->name, v[i]->name) == 0)
            ok = BAD("%s: '%s': tensor name '%s' appears twice", fn, path, v[i]->name);
    int n = 0;
    for (int i = 0; i < h->count; i++)
        if (h->entries[i].nbytes) v[n++] = &h->entries[i];
    qsort(v, (size_t)n, sizeof *v, cmp_offset);
    for (int i = 1; i < n && ok; i++)
        if (v[i - 1]->offset + v[i - 1]->nbytes > v[i]->offset)
            ok = BAD("%s: '%s': tensors '%s' and '%s' overlap in the data section", fn, path,
                     v[i - 1]->name, v[i]->name);
    free(v);
    return ok;
}

static bool parse_metadata(const char *fn, const char *path, json_t *m, bn_metadata *out)
{
    if (!m || json_is_null(m)) return true;
    if (!json_is_object(m)) return BAD("%s: '%s': \"metadata\" is not an object", fn, path);
    const char *k;
    json_t *v;
    json_object_foreach(m, k, v)
    {
        if (!json_is_string(v))
            return BAD("%s: '%s': metadata value of '%s' is not a string", fn, path, k);
        if (bn_metadata_set(out, k, json_string_value(v)) != BN_OK) return false;
    }
    return true;
}

static bool parse_sha(const char *fn, const char *path, json_t *s, bn__born_header *h)
{
    if (!s || json_is_null(s)) return true;
    const char *hex = json_string_value(s);
    if (!hex || strlen(hex) != 64)
        return BAD("%s: '%s': \"data_sha256\" is not 64 hex digits", fn, path);
    for (int i = 0; i < 32; i++) {
        unsigned v = 0;
        for (int k = 0; k < 2; k++) {
            char c = hex[2 * i + k];
            unsigned d = c >= '0' && c <= '9'   ? (unsigned)(c - '0')
                         : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
                         : c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10)
                                                : 16u;
            if (d == 16) return BAD("%s: '%s': \"data_sha256\" is not 64 hex digits", fn, path);
            v = v * 16 + d;
        }
        h->sha256[i] = (unsigned char)v;
    }
    h->has_sha256 = true;
    return true;
}

static bool parse_json(const char *fn, const char *path, const char *text, bn__born_header *h)
{
    if (!bn__io_utf8_valid(text, (size_t)h->header_len))
        return BAD("%s: '%s': the header is not valid UTF-8", fn, path);
    json_error_t err;
    json_t *root = json_loadb(text, (size_t)h->header_len, JSON_REJECT_DUPLICATES, &err);
    if (!root)
        return BAD("%s: '%s': the header is not valid JSON (%s at byte %d)", fn, path, err.text,
                   err.position);
    json_t *tensors = json_object_get(root, "tensors");
    bool ok = json_is_object(root) && json_is_array(tensors);
    if (!ok) (void)BAD("%s: '%s': the header is not an object with a \"tensors\" array", fn, path);
    size_t n = ok ? json_array_size(tensors) : 0;
    if (ok && n > (size_t)INT32_MAX) ok = BAD("%s: '%s': too many tensors (%zu)", fn, path, n);
    if (ok && n && !(h->entries = calloc(n, sizeof *h->entries)))
        ok = (bn__error(BN_ERR_OOM, "%s: out of memory", fn), false);
    for (size_t i = 0; ok && i < n; i++) {
        ok = parse_entry(fn, path, (int)i, json_array_get(tensors, i), h->data_len, &h->entries[i]);
        if (ok) h->count++;
    }
    ok = ok && check_layout(fn, path, h);
    ok = ok && parse_metadata(fn, path, json_object_get(root, "metadata"), &h->metadata);
    ok = ok && parse_sha(fn, path, json_object_get(root, "data_sha256"), h);
    json_t *cfg = ok ? json_object_get(root, "config") : NULL;
    if (cfg && !json_is_null(cfg)) {
        if (!json_is_object(cfg))
            ok = BAD("%s: '%s': \"config\" is not an object", fn, path);
        else if (!(h->config_json = json_dumps(cfg, JSON_COMPACT | JSON_PRESERVE_ORDER)))
            ok = (bn__error(BN_ERR_OOM, "%s: out of memory", fn), false);
    }
    json_decref(root);
    return ok;
}

bool bn__born_parse(const char *fn, const char *path, const uint8_t *buf, size_t size,
                    uint64_t file_size, bn__born_header *h)
{
    *h = (bn__born_header){0};
    bool ok = parse_preamble(fn, path, buf, file_size, h);
    BN_ASSERT(!ok || size >= BN__BORN_PREAMBLE + h->header_len);
    ok = ok && parse_json(fn, path, (const char *)buf + BN__BORN_PREAMBLE, h);
    if (!ok) bn__born_header_free(h);
    return ok;
}

void bn__born_header_free(bn__born_header *h)
{
    if (!h) return;
    for (int i = 0; i < h->count; i++) free(h->entries[i].name);
    free(h->entries);
    bn_metadata_free(&h->metadata);
    free(h->config_json);
    *h = (bn__born_header){0};
}

/* ---- header only -------------------------------------------------------------------------- */
static bool read_at(const char *fn, const char *path, int fd, void *buf, size_t n, uint64_t off)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, (char *)buf + got, n - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0)
            return bn__error(BN_ERR_IO, "%s: reading '%s' failed: %s", fn, path,
                             r < 0 ? strerror(errno) : "unexpected end of file"),
                   false;
        got += (size_t)r;
    }
    return true;
}

bool bn__born_read_header(const char *fn, const char *path, bn__born_header *h)
{
    *h = (bn__born_header){0};
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return bn__error(BN_ERR_IO, "%s: cannot open '%s': %s", fn, path, strerror(errno)), false;
    struct stat st;
    uint8_t pre[BN__BORN_PREAMBLE] = {0};
    char *text = NULL;
    bool ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
    if (!ok) bn__error(BN_ERR_IO, "%s: '%s' is not a regular file", fn, path);
    uint64_t fsize = ok ? (uint64_t)st.st_size : 0;
    ok = ok && read_at(fn, path, fd, pre, fsize < sizeof pre ? (size_t)fsize : sizeof pre, 0);
    ok = ok && parse_preamble(fn, path, pre, fsize, h);
    if (ok && !(text = malloc((size_t)h->header_len + 1)))
        ok = (bn__error(BN_ERR_OOM, "%s: out of memory", fn), false);
    ok = ok && read_at(fn, path, fd, text, (size_t)h->header_len, BN__BORN_PREAMBLE);
    ok = ok && parse_json(fn, path, text, h);
    free(text);
    close(fd);
    if (!ok) bn__born_header_free(h);
    return ok;
}

/* ---- loading ------------------------------------------------------------------------------ */
static bool verify(const char *path, const bn__io_map *m, const bn__born_header *h)
{
    if (!h->has_sha256)
        return BAD("bn_born_load: '%s' has no checksum to verify (saved with no_checksum)", path);
    if (m->mapped) madvise(m->base, m->size, MADV_SEQUENTIAL);
    unsigned char d[32];
    bool ok = bn__io_sha256("bn_born_load", m->base + h->data_offset, (size_t)h->data_len, d);
    if (m->mapped) madvise(m->base, m->size, MADV_NORMAL); /* tensors are used in any order */
    if (!ok) return false;
    if (memcmp(d, h->sha256, 32) != 0) {
        char want[65], got[65];
        bn__io_hex(h->sha256, 32, want);
        bn__io_hex(d, 32, got);
        return BAD("bn_born_load: '%s': checksum mismatch: the header says %s, the data section "
                   "hashes to %s (the file is corrupted)",
                   path, want, got);
    }
    return true;
}

static bool make_tensors(bn__io_map *m, const bn__born_header *h, bn_tensor_list *out)
{
    for (int i = 0; i < h->count; i++) {
        const bn__born_entry *e = &h->entries[i];
        bn_tensor *t =
            bn__io_map_tensor(m, h->data_offset + e->offset, e->shape, e->ndim, e->dtype);
        if (!t) return false;
        if (!bn__io_list_push(out, e->name, t)) {
            bn_release(t);
            return bn__error(BN_ERR_OOM, "bn_born_load: out of memory"), false;
        }
    }
    return true;
}

bn_status bn_born_load(const char *path, bn_load_opts o, bn_loaded *out)
{
    BN_CHECK_NULL_STATUS("bn_born_load", out);
    *out = (bn_loaded){0};
    BN_CHECK_NULL_STATUS("bn_born_load", path);
    bn__io_map *m = bn__io_map_open("bn_born_load", path, o.no_mmap);
    if (!m) return bn_error_code();
    bn__born_header h;
    bool ok = bn__born_parse("bn_born_load", path, m->base, m->size, m->size, &h);
    ok = ok && (!o.verify || verify(path, m, &h));
    ok = ok && make_tensors(m, &h, &out->tensors);
    if (ok) {
        out->metadata = h.metadata;
        h.metadata = (bn_metadata){0};
        out->config_json = h.config_json;
        h.config_json = NULL;
        snprintf(out->format, sizeof out->format, "born");
    }
    bn__born_header_free(&h);
    bn__io_map_release(m); /* the tensors hold their own references */
    if (!ok) {
        bn_status s = bn_error_code();
        bn_loaded_free(out);
        return s;
    }
    return BN_OK;
}
