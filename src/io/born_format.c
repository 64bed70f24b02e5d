/* io/born_format.c — writes the .born format (docs/FORMAT.md): a 64-byte preamble, the JSON
 * header, then the 64-byte aligned data section streamed tensor by tensor (no second copy of the
 * model in memory) with its SHA-256 computed on the way. The header's checksum is a fixed-width
 * hex string, so the header is written first with a placeholder and patched in place at the end.
 * The file is written under a temporary name and renamed. */
#define _GNU_SOURCE /* qsort_r */
#include "io/io_internal.h"

#include <jansson.h>
#include <string.h>

#define SHA_PLACEHOLDER "0000000000000000000000000000000000000000000000000000000000000000"

static uint64_t align_up(uint64_t x)
{
    return (x + BN__BORN_ALIGN - 1) / BN__BORN_ALIGN * BN__BORN_ALIGN;
}

static void put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

bool bn__io_sha256(const char *fn, const void *p, size_t n, unsigned char out[32])
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    unsigned int len = 0;
    bool ok = c && EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1;
    const char *b = p;
    while (ok && n > 0) { /* chunks keep the pages just faulted in cache-warm */
        size_t chunk = n < ((size_t)1 << 24) ? n : ((size_t)1 << 24);
        ok = EVP_DigestUpdate(c, b, chunk) == 1;
        b += chunk;
        n -= chunk;
    }
    ok = ok && EVP_DigestFinal_ex(c, out, &len) == 1 && len == 32;
    EVP_MD_CTX_free(c);
    if (!ok) bn__error(BN_ERR_INTERNAL, "%s: SHA-256 (libcrypto) failed", fn);
    return ok;
}

/* ---- checking the arguments --------------------------------------------------------------- */
static int cmp_name_index(const void *a, const void *b, void *names)
{
    char *const *n = names;
    int x = *(const int *)a, y = *(const int *)b;
    int c = strcmp(n[x], n[y]);
    return c ? c : (x > y) - (x < y);
}

/* Distinct names, found by sorting indices (O(n log n): models may have many tensors). */
static bool check_unique(const bn_tensor_list *l)
{
    if (l->count < 2) return true;
    int *idx = malloc(sizeof(int) * (size_t)l->count);
    if (!idx) return bn__error(BN_ERR_OOM, "bn_born_save: out of memory"), false;
    for (int i = 0; i < l->count; i++) idx[i] = i;
    qsort_r(idx, (size_t)l->count, sizeof *idx, cmp_name_index, l->names);
    bool ok = true;
    for (int i = 1; i < l->count && ok; i++)
        if (strcmp(l->names[idx[i - 1]], l->names[idx[i]]) == 0)
            ok = (bn__error(BN_ERR_ARG,
                            "bn_born_save: tensor name '%s' appears twice (entries %d and %d)",
                            l->names[idx[i]], idx[i - 1], idx[i]),
                  false);
    free(idx);
    return ok;
}

static bool check_list(const bn_tensor_list *l)
{
    if (l->count < 0 || (l->count > 0 && (!l->names || !l->tensors)))
        return bn__error(BN_ERR_ARG, "bn_born_save: tensors has count %d but no arrays", l->count),
               false;
    for (int i = 0; i < l->count; i++) {
        if (!l->names[i] || !l->tensors[i])
            return bn__error(BN_ERR_ARG, "bn_born_save: tensors entry %d has a NULL %s", i,
                             l->names[i] ? "tensor" : "name"),
                   false;
        if (!bn__io_utf8_valid(l->names[i], strlen(l->names[i])))
            return bn__error(BN_ERR_ARG, "bn_born_save: tensor name %d is not valid UTF-8", i),
                   false;
    }
    return check_unique(l);
}

/* ---- the header --------------------------------------------------------------------------- */
static json_t *tensor_entry(const char *name, const bn_tensor *t, uint64_t offset, uint64_t nbytes)
{
    json_t *shape = json_array();
    for (int d = 0; d < t->ndim; d++) json_array_append_new(shape, json_integer(t->shape[d]));
    return json_pack("{s:s, s:s, s:o, s:I, s:I}", "name", name, "dtype", bn_dtype_name(t->dtype),
                     "shape", shape, "offset", (json_int_t)offset, "nbytes", (json_int_t)nbytes);
}

static json_t *metadata_object(const bn_metadata *m)
{
    json_t *o = json_object();
    for (int i = 0; m && o && i < m->count; i++) {
        json_t *v = m->keys[i] && m->values[i] ? json_string(m->values[i]) : NULL;
        if (!v || json_object_set_new(o, m->keys[i], v) != 0) {
            json_decref(o);
            return bn__error_null(BN_ERR_ARG,
                                  "bn_born_save: metadata entry %d is NULL or not valid UTF-8", i);
        }
    }
    return o;
}

/* The header JSON text (malloc'd), tensors laid out one after another at 64-byte boundaries;
 * *data_len gets the data section's size. */
static char *header_text(const bn_tensor_list *l, bn_save_opts o, const char *sha_hex,
                         uint64_t *data_len)
{
    json_t *root = json_object(), *tensors = json_array();
    json_object_set_new(root, "tensors", tensors);
    uint64_t cursor = 0;
    for (int i = 0; i < l->count; i++) {
        const bn_tensor *t = l->tensors[i];
        uint64_t nbytes = (uint64_t)bn__numel(t) * bn_dtype_size(t->dtype);
        json_array_append_new(tensors, tensor_entry(l->names[i], t, cursor, nbytes));
        cursor = align_up(cursor + nbytes);
    }
    *data_len = cursor;
    json_t *meta = metadata_object(o.metadata);
    if (!meta) {
        json_decref(root);
        return NULL;
    }
    json_object_set_new(root, "metadata", meta);
    if (o.config_json) {
        json_error_t err;
        json_t *cfg = json_loads(o.config_json, JSON_REJECT_DUPLICATES, &err);
        if (!cfg || !json_is_object(cfg)) {
            json_decref(cfg);
            json_decref(root);
            return bn__error_null(BN_ERR_ARG, "bn_born_save: config_json is not a JSON object (%s)",
                                  cfg ? "another JSON value" : err.text);
        }
        json_object_set_new(root, "config", cfg);
    }
    json_object_set_new(root, "data_sha256", sha_hex ? json_string(sha_hex) : json_null());
    char *text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
    json_decref(root);
    if (!text) bn__error(BN_ERR_OOM, "bn_born_save: out of memory building the header");
    return text;
}

static void preamble(uint8_t p[BN__BORN_PREAMBLE], uint64_t header_len, uint64_t data_offset,
                     uint64_t data_len)
{
    memset(p, 0, BN__BORN_PREAMBLE);
    memcpy(p, BN__BORN_MAGIC, 8);
    put_u16(p + 8, BN__BORN_MAJOR);
    put_u16(p + 10, BN__BORN_MINOR);
    put_u64(p + 16, header_len);
    put_u64(p + 24, data_offset);
    put_u64(p + 32, data_len);
}

/* ---- writing ------------------------------------------------------------------------------ */
/* Streams the data section: each tensor at its aligned offset, zero padding between, all of it
 * through sha (or not, sha NULL). */
static bool write_data(bn__io_writer *w, const bn_tensor_list *l, EVP_MD_CTX *sha)
{
    static const uint8_t zeros[BN__BORN_ALIGN];
    uint64_t start = w->pos;
    for (int i = 0; i < l->count; i++) {
        if (!bn__io_write_tensor(w, l->tensors[i], sha)) return false;
        size_t pad = (size_t)(align_up(w->pos - start) - (w->pos - start));
        if (pad && sha && EVP_DigestUpdate(sha, zeros, pad) != 1)
            return bn__error(BN_ERR_INTERNAL, "bn_born_save: SHA-256 update failed"), false;
        if (!bn__io_write(w, zeros, pad)) return false;
    }
    return true;
}

static bool write_file(bn__io_writer *w, const bn_tensor_list *l, bn_save_opts o)
{
    uint64_t data_len = 0;
    char *text = header_text(l, o, o.no_checksum ? NULL : SHA_PLACEHOLDER, &data_len);
    if (!text) return false;
    uint64_t hlen = strlen(text), data_offset = align_up(BN__BORN_PREAMBLE + hlen);
    uint8_t pre[BN__BORN_PREAMBLE];
    preamble(pre, hlen, data_offset, data_len);
    bool ok = bn__io_write(w, pre, sizeof pre) && bn__io_write(w, text, hlen);
    static const char spaces[BN__BORN_ALIGN] = "                                "
                                               "                                ";
    ok = ok && bn__io_write(w, spaces, (size_t)(data_offset - BN__BORN_PREAMBLE - hlen));
    EVP_MD_CTX *sha = NULL;
    if (ok && !o.no_checksum) {
        sha = EVP_MD_CTX_new();
        if (!sha || EVP_DigestInit_ex(sha, EVP_sha256(), NULL) != 1)
            ok = (bn__error(BN_ERR_INTERNAL, "bn_born_save: SHA-256 (libcrypto) failed"), false);
    }
    ok = ok && write_data(w, l, sha);
    if (ok && sha) { /* patch the real checksum over the placeholder: same length */
        unsigned char d[32];
        unsigned int dl = 0;
        char hex[65];
        ok = EVP_DigestFinal_ex(sha, d, &dl) == 1;
        bn__io_hex(d, 32, hex);
        char *real = ok ? header_text(l, o, hex, &data_len) : NULL;
        ok = real != NULL;
        BN_ASSERT(!ok || strlen(real) == hlen);
        ok = ok && bn__io_pwrite(w, real, hlen, BN__BORN_PREAMBLE);
        free(real);
    }
    EVP_MD_CTX_free(sha);
    free(text);
    return ok;
}

bn_status bn_born_save(const char *path, const bn_tensor_list *tensors, bn_save_opts o)
{
    BN_CHECK_NULL_STATUS("bn_born_save", path);
    BN_CHECK_NULL_STATUS("bn_born_save", tensors);
    if (!check_list(tensors)) return bn_error_code();
    bn__io_writer w;
    if (!bn__io_writer_open(&w, "bn_born_save", path)) return bn_error_code();
    if (!write_file(&w, tensors, o) || !bn__io_writer_commit(&w)) {
        bn_status s = bn_error_code();
        bn__io_writer_abort(&w);
        return s;
    }
    return BN_OK;
}
