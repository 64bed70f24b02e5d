/* io/io_internal.h — private helpers shared by the file formats (.born in born_*.c, safetensors):
 * the crash-safe writer (temporary file + fsync + rename), streaming a tensor's bytes to a file
 * through a bounded buffer (with an optional running SHA-256), and the refcounted read-only file
 * mapping whose tensors are zero-copy until written. Not installed. */
#ifndef BORN_IO_INTERNAL_H
#define BORN_IO_INTERNAL_H

#include "born/io.h"
#include "core/internal.h"

#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>

/* ---- writing ------------------------------------------------------------------------------ */
/* A file being written under a temporary name in the target's directory ("<path>.tmp.XXXXXX").
 * fn is the public function named in errors. */
typedef struct bn__io_writer {
    const char *fn;
    const char *path; /* the final name (borrowed) */
    char *tmp_path;   /* malloc'd */
    int fd;
    uint64_t pos; /* bytes written so far by bn__io_write */
} bn__io_writer;

/* Creates the temporary file; false + BN_ERR_IO naming the path. */
bool bn__io_writer_open(bn__io_writer *w, const char *fn, const char *path);
/* Appends n bytes at w->pos (looping over short writes); false + BN_ERR_IO. */
bool bn__io_write(bn__io_writer *w, const void *p, size_t n);
/* Appends n zero bytes (padding). */
bool bn__io_write_zeros(bn__io_writer *w, size_t n);
/* Writes n bytes at an absolute offset without moving w->pos (patching a header). */
bool bn__io_pwrite(bn__io_writer *w, const void *p, size_t n, uint64_t off);
/* fsync, close, rename over path, fsync the directory. On failure the temporary is removed. */
bool bn__io_writer_commit(bn__io_writer *w);
/* Closes and removes the temporary file (any error already set is kept). Safe to call twice. */
void bn__io_writer_abort(bn__io_writer *w);

/* Appends t's elements in row-major order, little-endian, whatever its strides: contiguous CPU
 * tensors straight from their memory, others through a bounded buffer (never a full copy).
 * sha (or NULL) is updated with the same bytes. */
bool bn__io_write_tensor(bn__io_writer *w, const bn_tensor *t, EVP_MD_CTX *sha);

/* ---- reading ------------------------------------------------------------------------------ */
/* A whole file in memory: mmap'ed MAP_PRIVATE (writes to a tensor copy the page, the file never
 * changes) or, with no_mmap, read into an aligned buffer. Refcounted: every tensor made by
 * bn__io_map_tensor holds a reference, so the mapping lives as long as any of them. */
typedef struct bn__io_map {
    int64_t refcount; /* atomic */
    uint8_t *base;
    size_t size;
    bool mapped; /* munmap vs bn__free_aligned */
} bn__io_map;

/* Opens path whole; NULL + BN_ERR_IO naming fn and path (missing file, a directory, …). */
bn__io_map *bn__io_map_open(const char *fn, const char *path, bool no_mmap);
void bn__io_map_release(bn__io_map *m);
/* A contiguous tensor over m->base[off, off + numel * size) (the caller has checked the range);
 * holds a reference on m. Empty tensors get their own (empty) storage. Not registered. */
bn_tensor *bn__io_map_tensor(bn__io_map *m, uint64_t off, const int64_t *shape, int ndim,
                             bn_dtype dt);

/* ---- small shared helpers ----------------------------------------------------------------- */
/* numel * elem_size of shape with overflow checks; false when it does not fit in uint64. */
bool bn__io_nbytes(const int64_t *shape, int ndim, size_t elem_size, uint64_t *out);
/* Whether s[0, n) is valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF). */
bool bn__io_utf8_valid(const char *s, size_t n);
/* Lower-case hex of a 32-byte digest into out[65]. */
void bn__io_hex(const unsigned char *d, size_t n, char *out);
/* Appends (name, t) to l, copying the name and taking t's reference; false on OOM. */
bool bn__io_list_push(bn_tensor_list *l, const char *name, bn_tensor *t);
/* Whether path ends with ext (".born"). */
bool bn__io_has_ext(const char *path, const char *ext);

/* ---- .born (born_format.c writes, born_read.c reads; docs/FORMAT.md) ---------------------- */
#define BN__BORN_MAGIC                                                                             \
    "\x89"                                                                                         \
    "BORN\r\n\x1a"
#define BN__BORN_MAJOR 1
#define BN__BORN_MINOR 0
enum {
    BN__BORN_PREAMBLE = 64, /* magic, version, flags, header length, data offset, data length */
    BN__BORN_ALIGN = 64,    /* the data section and every tensor in it */
};
#define BN__BORN_HEADER_MAX ((uint64_t)256 << 20) /* JSON header size cap: 256 MiB */

/* One tensor entry of a validated header. */
typedef struct bn__born_entry {
    char *name;
    bn_dtype dtype;
    int ndim;
    int64_t shape[BN_MAX_DIMS];
    uint64_t offset; /* from the start of the data section */
    uint64_t nbytes;
} bn__born_entry;

/* A .born header, every field validated against the file's size (nothing of the data section
 * is read). */
typedef struct bn__born_header {
    int major, minor;
    uint64_t header_len, data_offset, data_len, file_size;
    int count;
    bn__born_entry *entries; /* file order */
    bn_metadata metadata;
    char *config_json; /* or NULL */
    bool has_sha256;
    unsigned char sha256[32];
} bn__born_header;

/* Reads and validates only the preamble and the JSON header of path (pread, no mapping): what
 * `born inspect` needs. false + BN_ERR_IO / BN_ERR_FORMAT naming fn and the file. */
bool bn__born_read_header(const char *fn, const char *path, bn__born_header *h);
void bn__born_header_free(bn__born_header *h);
/* Validates the preamble and header held in buf[0, size) (a whole file or at least its header);
 * file_size is the file's full size. Shared by the reader and bn__born_read_header. */
bool bn__born_parse(const char *fn, const char *path, const uint8_t *buf, size_t size,
                    uint64_t file_size, bn__born_header *h);
/* SHA-256 of n bytes at p into out[32]; false + BN_ERR_INTERNAL if libcrypto fails. */
bool bn__io_sha256(const char *fn, const void *p, size_t n, unsigned char out[32]);

#endif
