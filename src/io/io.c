/* io/io.c — what every file format shares: string metadata, bn_loaded, the choice of format by
 * extension (bn_save_tensors / bn_load_tensors), the crash-safe writer (temporary name, fsync,
 * rename), streaming a tensor's bytes through a bounded buffer, and the refcounted file mapping
 * that loaded tensors point into (zero-copy until written: MAP_PRIVATE). */
#define _GNU_SOURCE
#include "io/io_internal.h"

#include "born/ops.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "born's file formats are little-endian; a big-endian host needs byte swapping in io/"
#endif

/* ---- metadata ------------------------------------------------------------------------------ */
const char *bn_metadata_get(const bn_metadata *m, const char *key)
{
    if (!m || !key) return NULL;
    for (int i = 0; i < m->count; i++)
        if (strcmp(m->keys[i], key) == 0) return m->values[i];
    return NULL;
}

bn_status bn_metadata_set(bn_metadata *m, const char *key, const char *value)
{
    BN_CHECK_NULL_STATUS("bn_metadata_set", m);
    BN_CHECK_NULL_STATUS("bn_metadata_set", key);
    BN_CHECK_NULL_STATUS("bn_metadata_set", value);
    char *v = strdup(value);
    if (!v) return bn__error(BN_ERR_OOM, "bn_metadata_set: out of memory");
    for (int i = 0; i < m->count; i++) {
        if (strcmp(m->keys[i], key) == 0) {
            free(m->values[i]);
            m->values[i] = v;
            return BN_OK;
        }
    }
    char *k = strdup(key);
    char **ks = realloc(m->keys, sizeof(char *) * (size_t)(m->count + 1));
    if (ks) m->keys = ks;
    char **vs = ks ? realloc(m->values, sizeof(char *) * (size_t)(m->count + 1)) : NULL;
    if (vs) m->values = vs;
    if (!k || !ks || !vs) {
        free(k);
        free(v);
        return bn__error(BN_ERR_OOM, "bn_metadata_set: out of memory");
    }
    m->keys[m->count] = k;
    m->values[m->count] = v;
    m->count++;
    return BN_OK;
}

void bn_metadata_free(bn_metadata *m)
{
    if (!m) return;
    for (int i = 0; i < m->count; i++) {
        free(m->keys[i]);
        free(m->values[i]);
    }
    free(m->keys);
    free(m->values);
    *m = (bn_metadata){0};
}

void bn_loaded_free(bn_loaded *l)
{
    if (!l) return;
    bn_tensor_list_free(&l->tensors);
    bn_metadata_free(&l->metadata);
    free(l->config_json);
    *l = (bn_loaded){0};
}

/* ---- format by extension ------------------------------------------------------------------ */
bool bn__io_has_ext(const char *path, const char *ext)
{
    size_t n = strlen(path), e = strlen(ext);
    return n > e && strcmp(path + n - e, ext) == 0;
}

bn_status bn_save_tensors(const char *path, const bn_tensor_list *tensors, bn_save_opts o)
{
    BN_CHECK_NULL_STATUS("bn_save_tensors", path);
    BN_CHECK_NULL_STATUS("bn_save_tensors", tensors);
    if (bn__io_has_ext(path, ".born")) return bn_born_save(path, tensors, o);
    if (bn__io_has_ext(path, ".safetensors")) return bn_safetensors_save(path, tensors, o.metadata);
    return bn__error(BN_ERR_ARG,
                     "bn_save_tensors: path '%s' has an unknown extension "
                     "(expected .born or .safetensors)",
                     path);
}

bn_status bn_load_tensors(const char *path, bn_load_opts o, bn_loaded *out)
{
    BN_CHECK_NULL_STATUS("bn_load_tensors", path);
    BN_CHECK_NULL_STATUS("bn_load_tensors", out);
    if (bn__io_has_ext(path, ".born")) return bn_born_load(path, o, out);
    if (bn__io_has_ext(path, ".safetensors")) return bn_safetensors_load(path, o, out);
    *out = (bn_loaded){0};
    return bn__error(BN_ERR_ARG,
                     "bn_load_tensors: path '%s' has an unknown extension "
                     "(expected .born or .safetensors)",
                     path);
}

/* ---- small helpers ------------------------------------------------------------------------ */
bool bn__io_nbytes(const int64_t *shape, int ndim, size_t elem_size, uint64_t *out)
{
    uint64_t n = elem_size;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return false;
        if (shape[i] == 0)
            n = 0;
        else if (n > UINT64_MAX / (uint64_t)shape[i])
            return false;
        else
            n *= (uint64_t)shape[i];
    }
    /* a zero dim makes the product 0 whatever the other dims (they were still range-checked) */
    *out = n;
    return true;
}

bool bn__io_utf8_valid(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        int len;
        unsigned cp, min;
        if ((c & 0xE0) == 0xC0)
            len = 2, cp = c & 0x1F, min = 0x80;
        else if ((c & 0xF0) == 0xE0)
            len = 3, cp = c & 0x0F, min = 0x800;
        else if ((c & 0xF8) == 0xF0)
            len = 4, cp = c & 0x07, min = 0x10000;
        else
            return false;
        if (n - i < (size_t)len) return false;
        for (int k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
        i += (size_t)len;
    }
    return true;
}

void bn__io_hex(const unsigned char *d, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[d[i] >> 4];
        out[2 * i + 1] = digits[d[i] & 15];
    }
    out[2 * n] = '\0';
}

bool bn__io_list_push(bn_tensor_list *l, const char *name, bn_tensor *t)
{
    char *nm = strdup(name);
    char **ns = realloc(l->names, sizeof(char *) * (size_t)(l->count + 1));
    if (ns) l->names = ns;
    bn_tensor **ts = ns ? realloc(l->tensors, sizeof(bn_tensor *) * (size_t)(l->count + 1)) : NULL;
    if (ts) l->tensors = ts;
    if (!nm || !ns || !ts) {
        free(nm);
        return false;
    }
    l->names[l->count] = nm;
    l->tensors[l->count] = t;
    l->count++;
    return true;
}

/* ---- the crash-safe writer ---------------------------------------------------------------- */
bool bn__io_writer_open(bn__io_writer *w, const char *fn, const char *path)
{
    *w = (bn__io_writer){.fn = fn, .path = path, .fd = -1};
    size_t n = strlen(path) + sizeof ".tmp.XXXXXX";
    w->tmp_path = malloc(n);
    if (!w->tmp_path) return bn__error(BN_ERR_OOM, "%s: out of memory", fn), false;
    snprintf(w->tmp_path, n, "%s.tmp.XXXXXX", path);
    w->fd = mkostemp(w->tmp_path, O_CLOEXEC);
    if (w->fd < 0) {
        bn__error(BN_ERR_IO, "%s: cannot create '%s' (temporary for '%s'): %s", fn, w->tmp_path,
                  path, strerror(errno));
        free(w->tmp_path);
        w->tmp_path = NULL;
        return false;
    }
    /* mkstemp makes the file 0600; a model file gets the usual permissions (umask applies) */
    mode_t mask = umask(0);
    umask(mask);
    (void)fchmod(w->fd, 0666 & ~mask);
    return true;
}

static bool write_failed(bn__io_writer *w, const char *what)
{
    bn__error(BN_ERR_IO, "%s: %s '%s' failed: %s", w->fn, what, w->tmp_path, strerror(errno));
    return false;
}

bool bn__io_pwrite(bn__io_writer *w, const void *p, size_t n, uint64_t off)
{
    const char *c = p;
    while (n > 0) {
        size_t chunk = n < ((size_t)1 << 30) ? n : ((size_t)1 << 30);
        ssize_t r = pwrite(w->fd, c, chunk, (off_t)off);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return write_failed(w, "writing");
        c += r;
        off += (uint64_t)r;
        n -= (size_t)r;
    }
    return true;
}

bool bn__io_write(bn__io_writer *w, const void *p, size_t n)
{
    if (!bn__io_pwrite(w, p, n, w->pos)) return false;
    w->pos += n;
    return true;
}

bool bn__io_write_zeros(bn__io_writer *w, size_t n)
{
    static const char zeros[4096];
    while (n > 0) {
        size_t chunk = n < sizeof zeros ? n : sizeof zeros;
        if (!bn__io_write(w, zeros, chunk)) return false;
        n -= chunk;
    }
    return true;
}

static void fsync_dir_of(const char *path)
{
    char *copy = strdup(path);
    if (!copy) return;
    int dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd); /* best effort: some file systems refuse fsync on directories */
        close(dfd);
    }
    free(copy);
}

bool bn__io_writer_commit(bn__io_writer *w)
{
    if (fsync(w->fd) != 0) {
        write_failed(w, "fsync of");
        bn__io_writer_abort(w);
        return false;
    }
    int fd = w->fd;
    w->fd = -1;
    if (close(fd) != 0) {
        write_failed(w, "closing");
        bn__io_writer_abort(w);
        return false;
    }
    if (rename(w->tmp_path, w->path) != 0) {
        bn__error(BN_ERR_IO, "%s: cannot rename '%s' to '%s': %s", w->fn, w->tmp_path, w->path,
                  strerror(errno));
        bn__io_writer_abort(w);
        return false;
    }
    fsync_dir_of(w->path);
    free(w->tmp_path);
    w->tmp_path = NULL;
    return true;
}

void bn__io_writer_abort(bn__io_writer *w)
{
    if (w->fd >= 0) close(w->fd);
    w->fd = -1;
    if (w->tmp_path) unlink(w->tmp_path);
    free(w->tmp_path);
    w->tmp_path = NULL;
}

/* ---- streaming a tensor ------------------------------------------------------------------- */
enum { STREAM_CHUNK = 1 << 22, GATHER_BUF = 1 << 20 };

static bool write_hashed(bn__io_writer *w, const void *p, size_t n, EVP_MD_CTX *sha)
{
    if (sha && n && EVP_DigestUpdate(sha, p, n) != 1)
        return bn__error(BN_ERR_INTERNAL, "%s: SHA-256 update failed", w->fn), false;
    return bn__io_write(w, p, n);
}

/* Non-contiguous: walk the rows (all dims but the last) in row-major order with an odometer,
 * gathering each row's elements into a bounded buffer (a row of unit stride is one memcpy). */
static bool write_strided(bn__io_writer *w, const bn_tensor *t, EVP_MD_CTX *sha)
{
    size_t es = bn_dtype_size(t->dtype);
    int last = t->ndim - 1;
    int64_t len = t->shape[last], step = t->strides[last];
    int64_t rows = bn__numel(t) / len;
    char *buf = malloc(GATHER_BUF);
    if (!buf) return bn__error(BN_ERR_OOM, "%s: out of memory", w->fn), false;
    const char *base = (const char *)t->storage->data + (size_t)t->offset * es;
    int64_t idx[BN_MAX_DIMS] = {0};
    int64_t off = 0; /* element offset of the current row from base */
    size_t used = 0;
    bool ok = true;
    for (int64_t r = 0; r < rows && ok; r++) {
        for (int64_t j = 0; j < len && ok;) { /* the row, in pieces that fit the buffer */
            int64_t n = (int64_t)((GATHER_BUF - used) / es);
            if (n > len - j) n = len - j;
            const char *src = base + (off + j * step) * (int64_t)es;
            if (step == 1)
                memcpy(buf + used, src, (size_t)n * es);
            else
                for (int64_t k = 0; k < n; k++)
                    memcpy(buf + used + (size_t)k * es, src + k * step * (int64_t)es, es);
            used += (size_t)n * es;
            j += n;
            if (used + es > GATHER_BUF) {
                ok = write_hashed(w, buf, used, sha);
                used = 0;
            }
        }
        for (int d = last - 1; d >= 0; d--) { /* odometer step over the outer dims */
            off += t->strides[d];
            if (++idx[d] < t->shape[d]) break;
            off -= t->strides[d] * t->shape[d];
            idx[d] = 0;
        }
    }
    if (ok && used) ok = write_hashed(w, buf, used, sha);
    free(buf);
    return ok;
}

bool bn__io_write_tensor(bn__io_writer *w, const bn_tensor *t, EVP_MD_CTX *sha)
{
    if (bn__numel(t) == 0) return true;
    if (t->storage->device.type != BN_DEVICE_CPU) { /* through host memory, one tensor at a time */
        bn__scope_suspend();
        bn_tensor *h = bn_tensor_to(t, bn_cpu());
        bn__scope_resume();
        if (!h) return false;
        bool ok = bn__io_write_tensor(w, h, sha);
        bn_release(h);
        return ok;
    }
    if (!bn__is_contiguous(t)) return write_strided(w, t, sha);
    const char *p = bn__data(t);
    size_t n = (size_t)bn__numel(t) * bn_dtype_size(t->dtype);
    while (n > 0) {
        size_t chunk = n < STREAM_CHUNK ? n : STREAM_CHUNK;
        if (!write_hashed(w, p, chunk, sha)) return false;
        p += chunk;
        n -= chunk;
    }
    return true;
}

/* ---- the file mapping --------------------------------------------------------------------- */
static bn__io_map *read_whole(const char *fn, const char *path, int fd, size_t size)
{
    bn__io_map *m = calloc(1, sizeof *m);
    uint8_t *buf = bn__alloc_aligned(size ? size : 1);
    if (!m || !buf) {
        free(m);
        bn__free_aligned(buf);
        return bn__error_null(BN_ERR_OOM, "%s: out of memory reading '%s' (%zu bytes)", fn, path,
                              size);
    }
    size_t got = 0;
    while (got < size) {
        ssize_t r =
            pread(fd, buf + got, size - got < (1u << 30) ? size - got : (1u << 30), (off_t)got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            bn__free_aligned(buf);
            free(m);
            return bn__error_null(BN_ERR_IO, "%s: reading '%s' failed: %s", fn, path,
                                  r < 0 ? strerror(errno) : "file shrank while being read");
        }
        got += (size_t)r;
    }
    *m = (bn__io_map){.refcount = 1, .base = buf, .size = size, .mapped = false};
    return m;
}

bn__io_map *bn__io_map_open(const char *fn, const char *path, bool no_mmap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return bn__error_null(BN_ERR_IO, "%s: cannot open '%s': %s", fn, path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return bn__error_null(BN_ERR_IO, "%s: '%s' is not a regular file", fn, path);
    }
    size_t size = (size_t)st.st_size;
    bn__io_map *m = NULL;
    if (no_mmap || size == 0) {
        m = read_whole(fn, path, fd, size);
    } else {
        /* MAP_PRIVATE + PROT_WRITE: a write to a loaded tensor copies its page; the file never
         * changes */
        void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            bn__error(BN_ERR_IO, "%s: cannot map '%s': %s", fn, path, strerror(errno));
        } else if (!(m = calloc(1, sizeof *m))) {
            munmap(p, size);
            bn__error(BN_ERR_OOM, "%s: out of memory", fn);
        } else {
            *m = (bn__io_map){.refcount = 1, .base = p, .size = size, .mapped = true};
        }
    }
    close(fd);
    return m;
}

void bn__io_map_release(bn__io_map *m)
{
    if (!m || __atomic_sub_fetch(&m->refcount, 1, __ATOMIC_ACQ_REL) != 0) return;
    if (m->mapped)
        munmap(m->base, m->size);
    else
        bn__free_aligned(m->base);
    free(m);
}

static void map_tensor_free(void *data, void *ctx)
{
    (void)data;
    bn__io_map_release(ctx);
}

bn_tensor *bn__io_map_tensor(bn__io_map *m, uint64_t off, const int64_t *shape, int ndim,
                             bn_dtype dt)
{
    uint64_t nbytes = 0;
    BN_ASSERT(bn__io_nbytes(shape, ndim, bn_dtype_size(dt), &nbytes));
    if (nbytes == 0) return bn__empty(shape, ndim, dt, bn_cpu());
    BN_ASSERT(off <= m->size && nbytes <= m->size - off);
    __atomic_add_fetch(&m->refcount, 1, __ATOMIC_RELAXED);
    bn_tensor *t =
        bn__wrap(m->base + off, (size_t)nbytes, shape, ndim, dt, bn_cpu(), map_tensor_free, m);
    if (!t) bn__io_map_release(m);
    return t;
}
