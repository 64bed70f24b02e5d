/* io/safetensors.c — the safetensors format (https://github.com/huggingface/safetensors), read and
 * written exactly to its specification so files interoperate with the Hugging Face ecosystem:
 *
 *   [8 bytes]  N, the header size, unsigned little-endian
 *   [N bytes]  UTF-8 JSON object starting with '{' (may be padded with trailing spaces):
 *                "<name>": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, …
 *                "__metadata__": {"<key>": "<string>", …}            (optional)
 *   [rest]     the byte buffer: tensors little-endian, row-major; data_offsets are relative to
 *              its start and, like the reference implementation validates, cover it exactly
 *              (no holes, no overlaps, nothing left over).
 *
 * Writer: lays tensors out like the reference's serializer (descending dtype alignment — the
 * order of the reference's Dtype enum — then ascending name, byte-wise), compact JSON with
 * "__metadata__" first and fields in the order dtype, shape, data_offsets, the header padded
 * with spaces to a multiple of 8 bytes; so born writes the same bytes the reference would.
 * Written through a temporary file + rename (io_internal.h).
 * Reader: maps the file and validates everything before a byte of tensor data is used (header
 * size vs the 100 MB cap and the file size, UTF-8, JSON, dtype names, shapes vs byte ranges with
 * overflow checks, offsets inside the buffer, no holes or overlaps, unique names). Tensors are
 * zero-copy views of the mapping, except one whose data is not aligned to its element size,
 * which is copied. Tensors are listed in file (offset) order. */
#include "io/io_internal.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c assumes a little-endian host"
#endif

#define ST_MAX_HEADER 100000000ull /* the reference implementation's cap on N */

/* ---- dtypes ------------------------------------------------------------------------------- */
/* born's dtypes with their safetensors names and their rank in the reference's Dtype enum
 * (BOOL, F4, F6_E2M3, F6_E3M2, U8, I8, F8_E5M2, F8_E4M3, F8_E8M0, I16, U16, F16, BF16, I32,
 * U32, F32, C64, F64, I64, U64), which orders the writer's layout. */
static const struct {
    const char *name;
    bn_dtype dt;
    int rank;
} st_dtypes[] = {
    {"BOOL", BN_BOOL, 0}, {"U8", BN_U8, 4},      {"I8", BN_I8, 5},
    {"F16", BN_F16, 11},  {"BF16", BN_BF16, 12}, {"I32", BN_I32, 13},
    {"F32", BN_F32, 15},  {"F64", BN_F64, 17},   {"I64", BN_I64, 18},
};
#define ST_NDTYPES ((int)(sizeof st_dtypes / sizeof st_dtypes[0]))

/* Valid safetensors dtypes that born has no dtype for. */
static const char *const st_unsupported[] = {"F4",      "F6_E2M3", "F6_E3M2", "F8_E5M2",
                                             "F8_E4M3", "F8_E8M0", "I16",     "U16",
                                             "U32",     "C64",     "U64"};

static int st_index_of_dtype(bn_dtype dt)
{
    for (int i = 0; i < ST_NDTYPES; i++)
        if (st_dtypes[i].dt == dt) return i;
    return -1;
}

static int st_index_of_name(const char *name)
{
    for (int i = 0; i < ST_NDTYPES; i++)
        if (strcmp(st_dtypes[i].name, name) == 0) return i;
    return -1;
}

static bool st_is_unsupported(const char *name)
{
    for (size_t i = 0; i < sizeof st_unsupported / sizeof st_unsupported[0]; i++)
        if (strcmp(st_unsupported[i], name) == 0) return true;
    return false;
}

/* ---- a growable string for the header ----------------------------------------------------- */
typedef struct st_buf {
    char *p;
    size_t len, cap;
    bool oom;
} st_buf;

static void st_put(st_buf *b, const char *s, size_t n)
{
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void st_puts(st_buf *b, const char *s) { st_put(b, s, strlen(s)); }

static void st_putu(st_buf *b, uint64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)v);
    st_put(b, tmp, (size_t)n);
}

/* A JSON string the way serde_json writes it: '"' and '\\' escaped, control characters as
 * \b \t \n \f \r or \u00xx (lower-case hex), everything else (UTF-8 included) as is. */
static void st_put_json_string(st_buf *b, const char *s)
{
    st_put(b, "\"", 1);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        char esc[8];
        switch (*c) {
        case '"': st_put(b, "\\\"", 2); break;
        case '\\': st_put(b, "\\\\", 2); break;
        case '\b': st_put(b, "\\b", 2); break;
        case '\t': st_put(b, "\\t", 2); break;
        case '\n': st_put(b, "\\n", 2); break;
        case '\f': st_put(b, "\\f", 2); break;
        case '\r': st_put(b, "\\r", 2); break;
        default:
            if (*c < 0x20) {
                snprintf(esc, sizeof esc, "\\u%04x", *c);
                st_put(b, esc, 6);
            } else {
                st_put(b, (const char *)c, 1);
            }
        }
    }
    st_put(b, "\"", 1);
}

/* ---- writing ------------------------------------------------------------------------------ */
typedef struct st_out_entry {
    const char *name;
    const bn_tensor *t;
    int rank;
    const char *dtype;
    uint64_t nbytes;
} st_out_entry;

static int st_cmp_layout(const void *pa, const void *pb)
{
    const st_out_entry *a = pa, *b = pb;
    if (a->rank != b->rank) return a->rank > b->rank ? -1 : 1; /* descending dtype */
    return strcmp(a->name, b->name);                           /* then name, byte-wise */
}

static bool st_valid_string(const char *fn, const char *what, const char *s)
{
    if (!bn__io_utf8_valid(s, strlen(s))) {
        bn__error(BN_ERR_ARG, "%s: %s \"%.64s\" is not valid UTF-8", fn, what, s);
        return false;
    }
    return true;
}

/* Checks the list and fills e[] (one per tensor) with names, dtypes and sizes. */
static bool st_check_tensors(const char *fn, const bn_tensor_list *l, st_out_entry *e)
{
    for (int i = 0; i < l->count; i++) {
        const char *name = l->names ? l->names[i] : NULL;
        const bn_tensor *t = l->tensors ? l->tensors[i] : NULL;
        if (!name) return bn__error(BN_ERR_ARG, "%s: tensors->names[%d] is NULL", fn, i), false;
        if (!t) return bn__error(BN_ERR_ARG, "%s: tensor '%.64s' is NULL", fn, name), false;
        if (!st_valid_string(fn, "tensor name", name)) return false;
        if (strcmp(name, "__metadata__") == 0)
            return bn__error(BN_ERR_ARG, "%s: a tensor may not be named \"__metadata__\"", fn),
                   false;
        int d = st_index_of_dtype(t->dtype);
        if (d < 0)
            return bn__error(BN_ERR_DTYPE,
                             "%s: tensor '%.64s' has dtype %s, which safetensors "
                             "cannot store",
                             fn, name, bn_dtype_name(t->dtype)),
                   false;
        e[i] = (st_out_entry){.name = name,
                              .t = t,
                              .rank = st_dtypes[d].rank,
                              .dtype = st_dtypes[d].name};
        if (!bn__io_nbytes(t->shape, t->ndim, bn_dtype_size(t->dtype), &e[i].nbytes))
            return bn__error(BN_ERR_ARG, "%s: tensor '%.64s' of shape %s is too large", fn, name,
                             bn__tshape(t)),
                   false;
    }
    return true;
}

static int st_cmp_name(const void *pa, const void *pb)
{
    return strcmp(*(const char *const *)pa, *(const char *const *)pb);
}

/* Names must be unique (a JSON object cannot hold one twice). */
static bool st_check_unique(const char *fn, const st_out_entry *e, int n)
{
    const char **names = malloc((n > 0 ? (size_t)n : 1) * sizeof *names);
    if (!names) return bn__error(BN_ERR_OOM, "%s: out of memory", fn), false;
    for (int i = 0; i < n; i++) names[i] = e[i].name;
    qsort(names, (size_t)n, sizeof *names, st_cmp_name);
    for (int i = 1; i < n; i++)
        if (strcmp(names[i - 1], names[i]) == 0) {
            bn__error(BN_ERR_ARG, "%s: tensor name '%.64s' appears more than once", fn, names[i]);
            free(names);
            return false;
        }
    free(names);
    return true;
}

static bool st_check_metadata(const char *fn, const bn_metadata *m)
{
    if (!m) return true;
    if (m->count < 0 || (m->count > 0 && (!m->keys || !m->values)))
        return bn__error(BN_ERR_ARG, "%s: metadata is malformed (count %d)", fn, m->count), false;
    for (int i = 0; i < m->count; i++) {
        if (!m->keys[i] || !m->values[i])
            return bn__error(BN_ERR_ARG, "%s: metadata entry %d has a NULL key or value", fn, i),
                   false;
        if (!st_valid_string(fn, "metadata key", m->keys[i]) ||
            !st_valid_string(fn, "metadata value", m->values[i]))
            return false;
        for (int j = 0; j < i; j++)
            if (m->keys[j] && strcmp(m->keys[j], m->keys[i]) == 0)
                return bn__error(BN_ERR_ARG, "%s: metadata key \"%.64s\" appears more than once",
                                 fn, m->keys[i]),
                       false;
    }
    return true;
}

/* The header JSON of the entries (already in layout order), padded with spaces to 8 bytes. */
static bool st_build_header(const char *fn, const st_out_entry *e, int n, const bn_metadata *md,
                            st_buf *b)
{
    st_puts(b, "{");
    bool first = true;
    if (md && md->count > 0) {
        st_puts(b, "\"__metadata__\":{");
        for (int i = 0; i < md->count; i++) {
            if (i) st_puts(b, ",");
            st_put_json_string(b, md->keys[i]);
            st_puts(b, ":");
            st_put_json_string(b, md->values[i]);
        }
        st_puts(b, "}");
        first = false;
    }
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        if (!first) st_puts(b, ",");
        first = false;
        st_put_json_string(b, e[i].name);
        st_puts(b, ":{\"dtype\":\"");
        st_puts(b, e[i].dtype);
        st_puts(b, "\",\"shape\":[");
        for (int d = 0; d < e[i].t->ndim; d++) {
            if (d) st_puts(b, ",");
            st_putu(b, (uint64_t)e[i].t->shape[d]);
        }
        st_puts(b, "],\"data_offsets\":[");
        st_putu(b, off);
        st_puts(b, ",");
        st_putu(b, off + e[i].nbytes);
        st_puts(b, "]}");
        if (off + e[i].nbytes < off)
            return bn__error(BN_ERR_ARG, "%s: the tensors' total size overflows", fn), false;
        off += e[i].nbytes;
    }
    st_puts(b, "}");
    while (!b->oom && b->len % 8 != 0) st_puts(b, " ");
    if (b->oom) return bn__error(BN_ERR_OOM, "%s: out of memory building the header", fn), false;
    if (b->len > ST_MAX_HEADER)
        return bn__error(BN_ERR_ARG,
                         "%s: the header would be %zu bytes, over the %llu-byte limit "
                         "readers accept",
                         fn, b->len, ST_MAX_HEADER),
               false;
    return true;
}

static bool st_write_file(const char *fn, const char *path, const st_out_entry *e, int n,
                          const st_buf *hdr)
{
    bn__io_writer w;
    if (!bn__io_writer_open(&w, fn, path)) return false;
    uint8_t size_le[8];
    uint64_t len = hdr->len;
    for (int i = 0; i < 8; i++) size_le[i] = (uint8_t)(len >> (8 * i));
    bool ok = bn__io_write(&w, size_le, 8) && bn__io_write(&w, hdr->p, hdr->len);
    for (int i = 0; ok && i < n; i++) ok = bn__io_write_tensor(&w, e[i].t, NULL);
    if (ok) return bn__io_writer_commit(&w);
    bn__io_writer_abort(&w);
    return false;
}

bn_status bn_safetensors_save(const char *path, const bn_tensor_list *tensors,
                              const bn_metadata *metadata)
{
    static const char fn[] = "bn_safetensors_save";
    BN_CHECK_NULL_STATUS(fn, path);
    BN_CHECK_NULL_STATUS(fn, tensors);
    if (tensors->count < 0)
        return bn__error(BN_ERR_ARG, "%s: tensors is an error list (count %d)", fn, tensors->count);
    if (!st_check_metadata(fn, metadata)) return bn_error_code();
    int n = tensors->count;
    st_out_entry *e = calloc(n > 0 ? (size_t)n : 1, sizeof *e);
    if (!e) return bn__error(BN_ERR_OOM, "%s: out of memory", fn);
    st_buf hdr = {0};
    bn_status st = BN_OK;
    if (!st_check_tensors(fn, tensors, e) || !st_check_unique(fn, e, n)) {
        st = bn_error_code();
        goto done;
    }
    qsort(e, (size_t)n, sizeof *e, st_cmp_layout);
    if (!st_build_header(fn, e, n, metadata, &hdr) || !st_write_file(fn, path, e, n, &hdr))
        st = bn_error_code();
done:
    free(hdr.p);
    free(e);
    return st;
}

/* ---- reading ------------------------------------------------------------------------------ */
typedef struct st_in_entry {
    const char *name; /* borrowed from the JSON */
    bn_dtype dt;
    const char *dtype_name;
    int ndim;
    int64_t shape[BN_MAX_DIMS];
    uint64_t begin, end;
} st_in_entry;

typedef struct st_reader {
    const char *fn;
    const char *path;
    bn__io_map *map;
    uint64_t header_len; /* N */
    uint64_t data_len;   /* bytes after the header */
    json_t *root;
    st_in_entry *e;
    int n;
} st_reader;

/* Sets the error and gives false, for the validation chain below. */
#define ST_FAIL(code, ...) (bn__error((code), __VA_ARGS__), false)

static bool st_read_prefix(st_reader *r)
{
    const uint8_t *p = r->map->base;
    size_t size = r->map->size;
    if (size < 8)
        return ST_FAIL(BN_ERR_FORMAT,
                       "%s: '%s': the file is %zu bytes, too short for the "
                       "8-byte header size",
                       r->fn, r->path, size);
    uint64_t n = 0;
    for (int i = 0; i < 8; i++) n |= (uint64_t)p[i] << (8 * i);
    if (n > ST_MAX_HEADER)
        return ST_FAIL(BN_ERR_FORMAT, "%s: '%s': header size %llu is over the %llu-byte limit",
                       r->fn, r->path, (unsigned long long)n, ST_MAX_HEADER);
    if (n > size - 8)
        return ST_FAIL(BN_ERR_FORMAT,
                       "%s: '%s': header size %llu is past the end of the file "
                       "(%zu bytes after the size field)",
                       r->fn, r->path, (unsigned long long)n, size - 8);
    if (n == 0 || p[8] != '{')
        return ST_FAIL(BN_ERR_FORMAT, "%s: '%s': the header does not start with '{'", r->fn,
                       r->path);
    if (!bn__io_utf8_valid((const char *)p + 8, (size_t)n))
        return ST_FAIL(BN_ERR_FORMAT, "%s: '%s': the header is not valid UTF-8", r->fn, r->path);
    r->header_len = n;
    r->data_len = size - 8 - n;
    return true;
}

static bool st_parse_json(st_reader *r)
{
    json_error_t err;
    r->root = json_loadb((const char *)r->map->base + 8, (size_t)r->header_len,
                         JSON_REJECT_DUPLICATES, &err);
    if (!r->root)
        return ST_FAIL(BN_ERR_FORMAT,
                       "%s: '%s': the header is not valid JSON: %s (line %d, "
                       "column %d)",
                       r->fn, r->path, err.text, err.line, err.column);
    if (!json_is_object(r->root))
        return ST_FAIL(BN_ERR_FORMAT, "%s: '%s': the header is not a JSON object", r->fn, r->path);
    return true;
}

static bool st_read_metadata(st_reader *r, json_t *v, bn_metadata *out)
{
    if (json_is_null(v)) return true;
    if (!json_is_object(v))
        return ST_FAIL(BN_ERR_FORMAT, "%s: '%s': \"__metadata__\" is not an object", r->fn,
                       r->path);
    const char *k;
    json_t *s;
    json_object_foreach(v, k, s)
    {
        if (!json_is_string(s))
            return ST_FAIL(BN_ERR_FORMAT,
                           "%s: '%s': metadata value of \"%.64s\" is not a "
                           "string",
                           r->fn, r->path, k);
        if (bn_metadata_set(out, k, json_string_value(s)) != BN_OK) return false;
    }
    return true;
}

/* A JSON integer in [0, INT64_MAX]. */
static bool st_uint(json_t *v, uint64_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0) return false;
    *out = (uint64_t)json_integer_value(v);
    return true;
}

static bool st_read_dtype(st_reader *r, const char *name, json_t *v, st_in_entry *e)
{
    if (!json_is_string(v))
        return ST_FAIL(BN_ERR_FORMAT, "%s: '%s': tensor '%.64s' has no string \"dtype\"", r->fn,
                       r->path, name);
    const char *s = json_string_value(v);
    int d = st_index_of_name(s);
    if (d < 0 && st_is_unsupported(s))
        return ST_FAIL(BN_ERR_UNSUPPORTED,
                       "%s: '%s': tensor '%.64s' has dtype %s, which born "
                       "does not support",
                       r->fn, r->path, name, s);
    if (d < 0)
        return ST_FAIL(BN_ERR_FORMAT, "%s: '%s': tensor '%.64s' has unknown dtype \"%.32s\"", r->fn,
                       r->path, name, s);
    e->dt = st_dtypes[d].dt;
    e->dtype_name = st_dtypes[d].name;
    return true;
}

static bool st_read_shape(st_reader *r, const char *name, json_t *v, st_in_entry *e)
{
    if (!json_is_array(v))
        return ST_FAIL(BN_ERR_FORMAT, "%s: '%s': tensor '%.64s' has no \"shape\" array", r->fn,
                       r->path, name);
    size_t nd = json_array_size(v);
    if (nd > BN_MAX_DIMS)
        return ST_FAIL(BN_ERR_UNSUPPORTED,
                       "%s: '%s': tensor '%.64s' has %zu dims; born "
                       "supports at most %d",
                       r->fn, r->path, name, nd, BN_MAX_DIMS);
    e->ndim = (int)nd;
    for (size_t i = 0; i < nd; i++) {
        uint64_t d;
        if (!st_uint(json_array_get(v, i), &d))
            return ST_FAIL(BN_ERR_FORMAT,
                           "%s: '%s': tensor '%.64s': shape entry %zu is not a "
                           "non-negative integer",
                           r->fn, r->path, name, i);
        e->shape[i] = (int64_t)d;
    }
    return true;
}

static bool st_read_offsets(st_reader *r, const char *name, json_t *v, st_in_entry *e)
{
    if (!json_is_array(v) || json_array_size(v) != 2 || !st_uint(json_array_get(v, 0), &e->begin) ||
        !st_uint(json_array_get(v, 1), &e->end))
        return ST_FAIL(BN_ERR_FORMAT,
                       "%s: '%s': tensor '%.64s': \"data_offsets\" is not two "
                       "non-negative integers",
                       r->fn, r->path, name);
    char dims[BN_SHAPE_STR_MAX];
    if (e->begin > e->end)
        return ST_FAIL(BN_ERR_FORMAT,
                       "%s: '%s': tensor '%.64s': data_offsets [%llu, %llu] "
                       "end before they begin",
                       r->fn, r->path, name, (unsigned long long)e->begin,
                       (unsigned long long)e->end);
    if (e->end > r->data_len)
        return ST_FAIL(BN_ERR_FORMAT,
                       "%s: '%s': tensor '%.64s': data_offsets [%llu, %llu] are "
                       "past the end of the data (%llu bytes)",
                       r->fn, r->path, name, (unsigned long long)e->begin,
                       (unsigned long long)e->end, (unsigned long long)r->data_len);
    uint64_t nbytes;
    bool fits = bn__io_nbytes(e->shape, e->ndim, bn_dtype_size(e->dt), &nbytes);
    if (!fits || nbytes != e->end - e->begin)
        return ST_FAIL(BN_ERR_FORMAT,
                       "%s: '%s': tensor '%.64s': %s of shape %s needs %s%llu "
                       "bytes but data_offsets [%llu, %llu] hold %llu",
                       r->fn, r->path, name, e->dtype_name,
                       bn__dims_str(e->shape, e->ndim, dims, sizeof dims), fits ? "" : "over ",
                       (unsigned long long)(fits ? nbytes : UINT64_MAX),
                       (unsigned long long)e->begin, (unsigned long long)e->end,
                       (unsigned long long)(e->end - e->begin));
    return true;
}

static bool st_read_entry(st_reader *r, const char *name, json_t *v, st_in_entry *e)
{
    if (!json_is_object(v))
        return ST_FAIL(BN_ERR_FORMAT, "%s: '%s': tensor '%.64s' is not a JSON object", r->fn,
                       r->path, name);
    e->name = name;
    return st_read_dtype(r, name, json_object_get(v, "dtype"), e) &&
           st_read_shape(r, name, json_object_get(v, "shape"), e) &&
           st_read_offsets(r, name, json_object_get(v, "data_offsets"), e);
}

static int st_cmp_offsets(const void *pa, const void *pb)
{
    const st_in_entry *a = pa, *b = pb;
    if (a->begin != b->begin) return a->begin < b->begin ? -1 : 1;
    if (a->end != b->end) return a->end < b->end ? -1 : 1;
    return strcmp(a->name, b->name);
}

/* The reference's rule: sorted by offset, each tensor starts where the previous ended, the
 * first at 0, and the last ends at the end of the file. */
static bool st_check_layout(st_reader *r)
{
    qsort(r->e, (size_t)r->n, sizeof *r->e, st_cmp_offsets);
    uint64_t pos = 0;
    for (int i = 0; i < r->n; i++) {
        const st_in_entry *e = &r->e[i];
        if (e->begin != pos)
            return ST_FAIL(BN_ERR_FORMAT,
                           "%s: '%s': tensor '%.64s' starts at byte %llu of the "
                           "data but the previous tensor ends at %llu (%s)",
                           r->fn, r->path, e->name, (unsigned long long)e->begin,
                           (unsigned long long)pos, e->begin > pos ? "a hole" : "an overlap");
        pos = e->end;
    }
    if (pos != r->data_len)
        return ST_FAIL(BN_ERR_FORMAT,
                       "%s: '%s': the tensors cover %llu bytes of data but the "
                       "file holds %llu",
                       r->fn, r->path, (unsigned long long)pos, (unsigned long long)r->data_len);
    return true;
}

static bool st_read_entries(st_reader *r, bn_metadata *md)
{
    size_t count = json_object_size(r->root);
    r->e = calloc(count ? count : 1, sizeof *r->e);
    if (!r->e) return ST_FAIL(BN_ERR_OOM, "%s: out of memory", r->fn);
    const char *k;
    json_t *v;
    json_object_foreach(r->root, k, v)
    {
        if (strcmp(k, "__metadata__") == 0) {
            if (!st_read_metadata(r, v, md)) return false;
        } else if (!st_read_entry(r, k, v, &r->e[r->n++])) {
            return false;
        }
    }
    return st_check_layout(r);
}

/* A tensor over the mapping, or a copy when its data is not aligned to its element size. */
static bn_tensor *st_make_tensor(st_reader *r, const st_in_entry *e)
{
    uint64_t off = 8 + r->header_len + e->begin;
    size_t esize = bn_dtype_size(e->dt);
    if ((uintptr_t)(r->map->base + off) % esize == 0)
        return bn__io_map_tensor(r->map, off, e->shape, e->ndim, e->dt);
    bn_tensor *t = bn__empty(e->shape, e->ndim, e->dt, bn_cpu());
    if (t && e->end > e->begin) memcpy(bn__data(t), r->map->base + off, e->end - e->begin);
    return t;
}

static bool st_make_tensors(st_reader *r, bn_tensor_list *out)
{
    for (int i = 0; i < r->n; i++) {
        bn_tensor *t = st_make_tensor(r, &r->e[i]);
        if (!t) return false;
        if (!bn__io_list_push(out, r->e[i].name, t)) {
            bn_release(t);
            return ST_FAIL(BN_ERR_OOM, "%s: out of memory", r->fn);
        }
    }
    return true;
}

bn_status bn_safetensors_load(const char *path, bn_load_opts o, bn_loaded *out)
{
    static const char fn[] = "bn_safetensors_load";
    BN_CHECK_NULL_STATUS(fn, out);
    memset(out, 0, sizeof *out);
    BN_CHECK_NULL_STATUS(fn, path);
    st_reader r = {.fn = fn, .path = path};
    r.map = bn__io_map_open(fn, path, o.no_mmap);
    bool ok = r.map && st_read_prefix(&r) && st_parse_json(&r) &&
              st_read_entries(&r, &out->metadata) && st_make_tensors(&r, &out->tensors);
    bn_status st = ok ? BN_OK : bn_error_code();
    free(r.e);
    if (r.root) json_decref(r.root);
    if (r.map) bn__io_map_release(r.map);
    if (!ok) {
        bn_loaded_free(out);
        memset(out, 0, sizeof *out);
        if (st == BN_OK) st = bn__error(BN_ERR_INTERNAL, "%s: '%s': failed", fn, path);
        return st;
    }
    snprintf(out->format, sizeof out->format, "safetensors");
    return BN_OK;
}
