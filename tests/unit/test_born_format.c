/* tests/unit/test_born_format.c — the .born format (src/io/born_*.c, docs/FORMAT.md) and the
 * shared io helpers (src/io/io.c): round trips of every dtype and shape, metadata and config,
 * zero-copy mapped loading, the crash-safe writer, checksums, every kind of corrupted file, a
 * sparse file over 4 GiB, and bad arguments. The data are made here (round trips compare with
 * the tensors that were saved), so there is no fixture script; corrupted files are built byte by
 * byte with write_raw(). */
#include "bn_test.h"

#include "born/io.h"
#include "core/internal.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- helpers ------------------------------------------------------------------------------ */
static char dir[64];

static void make_dir(void)
{
    snprintf(dir, sizeof dir, "/tmp/born-test-io-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void remove_dir(void)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[512];
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

TestSuite(born_format, .init = make_dir, .fini = remove_dir);

static const char *path_of(const char *name)
{
    static char p[4][256];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
    return p[k];
}

static int count_files(void)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

static bn_status save(const char *path, int n, const char **names, bn_tensor **ts, bn_save_opts o)
{
    bn_tensor_list l = {.count = n, .names = (char **)names, .tensors = ts};
    return bn_born_save(path, &l, o);
}

static uint8_t *read_all(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(*n + 1);
    cr_assert_eq(fread(b, 1, *n, f), *n);
    fclose(f);
    return b;
}

static void write_all(const char *path, const void *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(b, 1, n, f), n);
    fclose(f);
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* A .born file by hand: the preamble for this header text and data length (major version
 * given), the header, space padding, then the data bytes (the rest of the data section is a
 * hole: zeros). */
static void write_raw(const char *path, const char *json, uint64_t data_len, int major,
                      const void *data, size_t dn)
{
    uint64_t hlen = strlen(json), doff = (64 + hlen + 63) / 64 * 64;
    uint8_t pre[64] = {0x89, 'B', 'O', 'R', 'N', '\r', '\n', 0x1a, (uint8_t)major, 0};
    put_u64(pre + 16, hlen);
    put_u64(pre + 24, doff);
    put_u64(pre + 32, data_len);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    cr_assert(fd >= 0);
    cr_assert_eq(pwrite(fd, pre, 64, 0), 64);
    cr_assert_eq(pwrite(fd, json, hlen, 64), (ssize_t)hlen);
    for (uint64_t i = 64 + hlen; i < doff; i++) cr_assert_eq(pwrite(fd, " ", 1, (off_t)i), 1);
    if (dn) cr_assert_eq(pwrite(fd, data, dn, (off_t)doff), (ssize_t)dn);
    cr_assert_eq(ftruncate(fd, (off_t)(doff + data_len)), 0);
    close(fd);
}

/* Loading path fails with code and a message naming the file and containing what. */
static void expect_load_error(const char *path, bn_load_opts o, bn_status code, const char *what)
{
    BNT_ASSERT_NO_LEAK({
        bn_loaded l;
        cr_assert_eq(bn_born_load(path, o, &l), code, "%s: %s", what, bn_error_message());
        bnt_assert_error(code, "bn_born_load", path, what, NULL);
        cr_assert_eq(l.tensors.count, 0);
        cr_assert_null(l.config_json);
    });
}

static bn_tensor *sample(bn_shape s, bn_dtype dt)
{
    bn_tensor *r = bn_randn(s, BN_F32);
    bn_tensor *x = bn_mul_scalar(r, dt == BN_BOOL ? 1.0 : 20.0);
    bn_tensor *y = bn_to_dtype(x, dt);
    bn_release(r);
    bn_release(x);
    return y;
}

/* ---- round trips -------------------------------------------------------------------------- */
Test(born_format, round_trips_every_dtype_and_shape)
{
    bn_manual_seed(3);
    const bn_shape shapes[4] = {BN_SHAPE(), BN_SHAPE(0, 3), BN_SHAPE(3, 5),
                                BN_SHAPE(2, 1, 2, 1, 2, 1, 2, 3)};
    enum { N = BN_DTYPE_COUNT * 4 };
    bn_tensor *ts[N];
    char names[N][32];
    const char *np[N];
    for (int i = 0; i < N; i++) {
        ts[i] = sample(shapes[i % 4], (bn_dtype)(i / 4));
        snprintf(names[i], sizeof names[i], "%s.%d", bn_dtype_name((bn_dtype)(i / 4)), i % 4);
        np[i] = names[i];
    }
    const char *p = path_of("all.born");
    cr_assert_eq(save(p, N, np, ts, (bn_save_opts){0}), BN_OK, "%s", bn_error_message());
    const bn_load_opts modes[3] = {{0}, {.no_mmap = true}, {.verify = true}};
    for (int m = 0; m < 3; m++) {
        BNT_ASSERT_NO_LEAK({
            bn_loaded l;
            cr_assert_eq(bn_born_load(p, modes[m], &l), BN_OK, "%s", bn_error_message());
            cr_assert_str_eq(l.format, "born");
            cr_assert_eq(l.tensors.count, N);
            for (int i = 0; i < N; i++) {
                cr_assert_str_eq(l.tensors.names[i], names[i]);
                bnt_assert_equal(l.tensors.tensors[i], ts[i], names[i]);
            }
            bn_loaded_free(&l);
        });
    }
    for (int i = 0; i < N; i++) bn_release(ts[i]);
}

Test(born_format, round_trips_non_contiguous_inputs)
{
    bn_scope_begin();
    bn_tensor *a = bn_arange(0, 12, 1, BN_F32);
    bn_tensor *a34 = bn_reshape(a, BN_SHAPE(3, 4));
    bn_tensor *t = bn_transpose(a34, 0, 1);
    bn_tensor *s = bn_slice(a34, 1, 0, 4, 2);
    bn_tensor *row = bn_reshape(bn_arange(0, 3, 1, BN_I64), BN_SHAPE(1, 3));
    bn_tensor *e = bn_expand(row, BN_SHAPE(4, 3));
    bn_tensor *h = bn_transpose(bn_to_dtype(a34, BN_F16), 0, 1);
    cr_assert(!bn_is_contiguous(t) && !bn_is_contiguous(s) && !bn_is_contiguous(e));
    const char *names[4] = {"t", "s", "e", "h"};
    bn_tensor *ts[4] = {t, s, e, h};
    const char *p = path_of("views.born");
    cr_assert_eq(save(p, 4, names, ts, (bn_save_opts){0}), BN_OK, "%s", bn_error_message());
    bn_loaded l;
    cr_assert_eq(bn_born_load(p, (bn_load_opts){.verify = true}, &l), BN_OK);
    for (int i = 0; i < 4; i++) {
        cr_assert(bn_is_contiguous(l.tensors.tensors[i]));
        bnt_assert_equal(l.tensors.tensors[i], bn_contiguous(ts[i]), names[i]);
    }
    bn_loaded_free(&l);
    bn_scope_end();
}

Test(born_format, round_trips_large_strided_tensors_through_the_bounded_buffer)
{
    bn_scope_begin();
    bn_tensor *a = bn_reshape(bn_arange(0, 1 << 20, 1, BN_F64), BN_SHAPE(1024, 1024));
    bn_tensor *ts[3] = {bn_transpose(a, 0, 1), /* 8 MiB: several buffer flushes */
                        bn_expand(bn_full(BN_SHAPE(1), 2.5, BN_F64), BN_SHAPE(400000)),
                        bn_slice(bn_arange(0, 1 << 20, 1, BN_I32), 0, 1, 1 << 20, 2)};
    const char *p = path_of("big.born"); /* rows longer than the buffer, strides 0 and 2 */
    cr_assert_eq(save(p, 3, (const char *[]){"t", "e", "s"}, ts, (bn_save_opts){0}), BN_OK);
    bn_loaded l;
    cr_assert_eq(bn_born_load(p, (bn_load_opts){.verify = true}, &l), BN_OK);
    for (int i = 0; i < 3; i++)
        bnt_assert_equal(l.tensors.tensors[i], bn_contiguous(ts[i]), l.tensors.names[i]);
    bn_loaded_free(&l);
    bn_scope_end();
}

Test(born_format, round_trips_metadata_config_and_an_empty_list)
{
    bn_metadata md = {0};
    cr_assert_eq(bn_metadata_set(&md, "author", "born"), BN_OK);
    cr_assert_eq(bn_metadata_set(&md, "note", "ünïcode \"quoted\"\n"), BN_OK);
    const char *p = path_of("meta.born");
    bn_save_opts o = {.metadata = &md, .config_json = "{\"layers\": [784, 10], \"act\": \"relu\"}"};
    bn_tensor_list empty = {0};
    cr_assert_eq(bn_born_save(p, &empty, o), BN_OK, "%s", bn_error_message());
    bn_loaded l;
    cr_assert_eq(bn_born_load(p, (bn_load_opts){.verify = true}, &l), BN_OK, "%s",
                 bn_error_message());
    cr_assert_eq(l.tensors.count, 0);
    cr_assert_eq(l.metadata.count, 2);
    cr_assert_str_eq(bn_metadata_get(&l.metadata, "author"), "born");
    cr_assert_str_eq(bn_metadata_get(&l.metadata, "note"), "ünïcode \"quoted\"\n");
    cr_assert_str_eq(l.config_json, "{\"layers\":[784,10],\"act\":\"relu\"}");
    bn_loaded_free(&l);
    bn_loaded_free(&l); /* twice is harmless */
    bn_metadata_free(&md);
}

Test(born_format, metadata_set_get_replace_and_free)
{
    bn_metadata m = {0};
    cr_assert_null(bn_metadata_get(&m, "k"));
    cr_assert_eq(bn_metadata_set(&m, "k", "v1"), BN_OK);
    cr_assert_eq(bn_metadata_set(&m, "k", "v2"), BN_OK);
    cr_assert_eq(bn_metadata_set(&m, "j", "w"), BN_OK);
    cr_assert_eq(m.count, 2);
    cr_assert_str_eq(bn_metadata_get(&m, "k"), "v2");
    cr_assert_eq(bn_metadata_set(&m, NULL, "x"), BN_ERR_ARG);
    bnt_assert_error(BN_ERR_ARG, "bn_metadata_set", "key", NULL);
    cr_assert_eq(bn_metadata_set(NULL, "a", "x"), BN_ERR_ARG);
    cr_assert_null(bn_metadata_get(NULL, "k"));
    bn_metadata_free(&m);
    cr_assert_eq(m.count, 0);
    bn_metadata_free(NULL);
    bn_loaded_free(NULL);
}

Test(born_format, load_tensors_and_save_tensors_choose_born_by_extension)
{
    bn_scope_begin();
    bn_tensor *x = bn_arange(0, 5, 1, BN_I32);
    bn_tensor_list l = {.count = 1, .names = (char *[]){"x"}, .tensors = &x};
    const char *p = path_of("ext.born");
    cr_assert_eq(bn_save_tensors(p, &l, (bn_save_opts){0}), BN_OK);
    bn_loaded out;
    cr_assert_eq(bn_load_tensors(p, (bn_load_opts){0}, &out), BN_OK);
    cr_assert_str_eq(out.format, "born");
    bnt_assert_equal(out.tensors.tensors[0], x, "x");
    bn_loaded_free(&out);
    bn_scope_end();
}

/* ---- mapping ------------------------------------------------------------------------------ */
Test(born_format, loaded_tensors_are_aligned_and_zero_copy_until_written)
{
    bn_scope_begin();
    bn_tensor *ts[3] = {bn_arange(0, 3, 1, BN_U8), bn_arange(0, 7, 1, BN_F32),
                        bn_arange(0, 5, 1, BN_F64)};
    const char *p = path_of("cow.born");
    cr_assert_eq(save(p, 3, (const char *[]){"a", "b", "c"}, ts, (bn_save_opts){0}), BN_OK);
    size_t n0;
    uint8_t *before = read_all(p, &n0);
    bn_loaded l;
    cr_assert_eq(bn_born_load(p, (bn_load_opts){0}, &l), BN_OK);
    for (int i = 0; i < 3; i++)
        cr_assert_eq((uintptr_t)bn_tensor_data(l.tensors.tensors[i]) % 64, 0, "tensor %d", i);
    float *b = bn_tensor_data_f32(l.tensors.tensors[1]);
    b[0] = 42.0f; /* copy-on-write: the file keeps its bytes */
    cr_assert_eq(bn_tensor_data_f32(l.tensors.tensors[1])[0], 42.0f);
    size_t n1;
    uint8_t *after = read_all(p, &n1);
    cr_assert_eq(n0, n1);
    cr_assert_eq(memcmp(before, after, n0), 0, "the file changed under a written tensor");
    bn_loaded again;
    cr_assert_eq(bn_born_load(p, (bn_load_opts){.verify = true}, &again), BN_OK);
    bnt_assert_equal(again.tensors.tensors[1], ts[1], "reloaded");
    bn_loaded_free(&again);
    bn_loaded_free(&l);
    free(before);
    free(after);
    bn_scope_end();
}

Test(born_format, tensors_outlive_the_loaded_struct)
{
    bn_scope_begin();
    bn_tensor *x = bn_arange(0, 100, 1, BN_I64);
    const char *p = path_of("keep.born");
    for (int m = 0; m < 2; m++) {
        cr_assert_eq(save(p, 1, (const char *[]){"x"}, &x, (bn_save_opts){0}), BN_OK);
        bn_loaded l;
        cr_assert_eq(bn_born_load(p, (bn_load_opts){.no_mmap = m == 1}, &l), BN_OK);
        bn_tensor *kept = l.tensors.tensors[0];
        bn_retain(kept);
        bn_loaded_free(&l);
        unlink(p); /* the mapping does not need the name */
        bnt_assert_equal(kept, x, "kept");
        bn_release(kept);
    }
    bn_scope_end();
}

/* ---- the writer --------------------------------------------------------------------------- */
Test(born_format, save_replaces_atomically_and_leaves_no_temporary)
{
    bn_scope_begin();
    bn_tensor *x = bn_arange(0, 4, 1, BN_F32), *y = bn_arange(0, 9, 1, BN_F32);
    const char *p = path_of("atomic.born");
    cr_assert_eq(save(p, 1, (const char *[]){"x"}, &x, (bn_save_opts){0}), BN_OK);
    cr_assert_eq(save(p, 1, (const char *[]){"y"}, &y, (bn_save_opts){0}), BN_OK);
    cr_assert_eq(count_files(), 1);
    BNT_ASSERT_NO_LEAK({
        cr_assert_eq(save(p, 1, (const char *[]){"z"}, &x, (bn_save_opts){.config_json = "[1"}),
                     BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "bn_born_save", "config_json", NULL);
    });
    cr_assert_eq(count_files(), 1, "a failed save left a temporary file");
    bn_loaded l;
    cr_assert_eq(bn_born_load(p, (bn_load_opts){.verify = true}, &l), BN_OK);
    cr_assert_str_eq(l.tensors.names[0], "y");
    bnt_assert_equal(l.tensors.tensors[0], y, "y");
    bn_loaded_free(&l);
    struct stat st;
    cr_assert_eq(stat(p, &st), 0);
    cr_assert(st.st_mode & S_IRGRP || st.st_mode & S_IRUSR);
    bn_scope_end();
}

/* ---- checksums ---------------------------------------------------------------------------- */
Test(born_format, verify_detects_a_flipped_data_byte)
{
    bn_scope_begin();
    bn_tensor *x = bn_arange(0, 64, 1, BN_F32);
    const char *p = path_of("flip.born");
    cr_assert_eq(save(p, 1, (const char *[]){"x"}, &x, (bn_save_opts){0}), BN_OK);
    size_t n;
    uint8_t *b = read_all(p, &n);
    b[n - 3] ^= 0x10;
    write_all(p, b, n);
    free(b);
    bn_loaded l;
    cr_assert_eq(bn_born_load(p, (bn_load_opts){0}, &l), BN_OK); /* unverified: loads */
    bn_loaded_free(&l);
    expect_load_error(p, (bn_load_opts){.verify = true}, BN_ERR_FORMAT, "checksum mismatch");
    expect_load_error(p, (bn_load_opts){.verify = true, .no_mmap = true}, BN_ERR_FORMAT,
                      "checksum mismatch");
    bn_scope_end();
}

Test(born_format, verify_of_a_file_without_checksum_is_an_error)
{
    bn_scope_begin();
    bn_tensor *x = bn_arange(0, 4, 1, BN_F32);
    const char *p = path_of("nosum.born");
    cr_assert_eq(save(p, 1, (const char *[]){"x"}, &x, (bn_save_opts){.no_checksum = true}), BN_OK);
    bn_loaded l;
    cr_assert_eq(bn_born_load(p, (bn_load_opts){0}, &l), BN_OK);
    bnt_assert_equal(l.tensors.tensors[0], x, "x");
    bn_loaded_free(&l);
    expect_load_error(p, (bn_load_opts){.verify = true}, BN_ERR_FORMAT, "no checksum");
    bn_scope_end();
}

/* ---- corrupted files ---------------------------------------------------------------------- */
Test(born_format, truncated_files_at_every_region_are_format_errors)
{
    bn_scope_begin();
    bn_tensor *ts[2] = {bn_arange(0, 10, 1, BN_F32), bn_arange(0, 30, 1, BN_F64)};
    const char *p = path_of("whole.born");
    cr_assert_eq(save(p, 2, (const char *[]){"a", "b"}, ts, (bn_save_opts){0}), BN_OK);
    size_t n;
    uint8_t *b = read_all(p, &n);
    const char *q = path_of("cut.born");
    for (size_t cut = 0; cut < n; cut++) { /* every length: preamble, header, padding, data */
        write_all(q, b, cut);
        expect_load_error(q, (bn_load_opts){0}, BN_ERR_FORMAT, "");
        expect_load_error(q, (bn_load_opts){.no_mmap = true}, BN_ERR_FORMAT, "");
    }
    b[n] = 0; /* one byte too many */
    write_all(q, b, n + 1);
    expect_load_error(q, (bn_load_opts){0}, BN_ERR_FORMAT, "does not end at the end");
    free(b);
    bn_scope_end();
}

#define T_A "{\"name\":\"a\",\"dtype\":\"f32\",\"shape\":[4],\"offset\":0,\"nbytes\":16}"

Test(born_format, a_hand_written_file_loads)
{
    const float v[4] = {1, 2, 3, 4};
    const char *p = path_of("hand.born");
    write_raw(p, "{\"tensors\":[" T_A "],\"future_field\":1}", 64, 1, v, sizeof v);
    bn_loaded l;
    cr_assert_eq(bn_born_load(p, (bn_load_opts){0}, &l), BN_OK, "%s", bn_error_message());
    const double want[4] = {1, 2, 3, 4};
    bnt_assert_values(l.tensors.tensors[0], want, 4, 0, "a");
    cr_assert_eq(l.metadata.count, 0);
    cr_assert_null(l.config_json);
    bn_loaded_free(&l);
}

Test(born_format, bad_magic_and_versions_are_refused)
{
    const char *p = path_of("bad.born");
    write_raw(p, "{\"tensors\":[]}", 0, 2, NULL, 0);
    expect_load_error(p, (bn_load_opts){0}, BN_ERR_FORMAT, "version 2.0");
    write_raw(p, "{\"tensors\":[]}", 0, 0, NULL, 0);
    expect_load_error(p, (bn_load_opts){0}, BN_ERR_FORMAT, "version 0.0");
    size_t n;
    write_raw(p, "{\"tensors\":[]}", 0, 1, NULL, 0);
    uint8_t *b = read_all(p, &n);
    b[1] = 'b';
    write_all(p, b, n);
    expect_load_error(p, (bn_load_opts){0}, BN_ERR_FORMAT, "bad magic");
    /* header length past the end of the file, and a huge one */
    b[1] = 'B';
    put_u64(b + 16, n);
    write_all(p, b, n);
    expect_load_error(p, (bn_load_opts){0}, BN_ERR_FORMAT, "runs past the end");
    put_u64(b + 16, UINT64_MAX);
    write_all(p, b, n);
    expect_load_error(p, (bn_load_opts){0}, BN_ERR_FORMAT, "header");
    put_u64(b + 16, 14);
    put_u64(b + 24, 65); /* unaligned data offset */
    write_all(p, b, n);
    expect_load_error(p, (bn_load_opts){0}, BN_ERR_FORMAT, "data offset 65");
    put_u64(b + 24, 128);
    put_u64(b + 32, UINT64_MAX - 64); /* data length: wraps if added carelessly */
    write_all(p, b, n);
    expect_load_error(p, (bn_load_opts){0}, BN_ERR_FORMAT, "does not end at the end");
    free(b);
}

Test(born_format, bad_headers_are_format_errors_naming_the_problem)
{
    static const struct {
        const char *json, *what;
    } cases[] = {
        {"{\"tensors\":[\xff]}", "not valid UTF-8"},
        {"{\"tensors\":[\xc0\xaf]}", "not valid UTF-8"}, /* overlong */
        {"{\"tensors\":[", "not valid JSON"},
        {"[1, 2]", "not an object with a \"tensors\" array"},
        {"{\"tensors\":{}}", "\"tensors\" array"},
        {"{\"tensors\":[],\"tensors\":[]}", "not valid JSON"},
        {"{\"tensors\":[1]}", "tensor entry 0"},
        {"{\"tensors\":[{\"name\":\"a\",\"dtype\":\"f32\",\"shape\":[4],\"offset\":0}]}",
         "tensor entry 0"},
        {"{\"tensors\":[{\"name\":\"a\",\"dtype\":\"f128\",\"shape\":[4],\"offset\":0,"
         "\"nbytes\":16}]}",
         "unknown dtype 'f128'"},
        {"{\"tensors\":[{\"name\":\"a\",\"dtype\":\"f32\",\"shape\":[-4],\"offset\":0,"
         "\"nbytes\":16}]}",
         "bad size in dim 0"},
        {"{\"tensors\":[{\"name\":\"a\",\"dtype\":\"f32\",\"shape\":[1,1,1,1,1,1,1,1,1],"
         "\"offset\":0,\"nbytes\":4}]}",
         "9 dims"},
        {"{\"tensors\":[{\"name\":\"a\",\"dtype\":\"f32\",\"shape\":[4],\"offset\":0,"
         "\"nbytes\":8}]}",
         "claims 8 bytes but f32 [4] is 16 bytes"},
        {"{\"tensors\":[{\"name\":\"a\",\"dtype\":\"f64\",\"shape\":[4294967296,4294967296],"
         "\"offset\":0,\"nbytes\":0}]}",
         "overflows"},
        {"{\"tensors\":[{\"name\":\"a\",\"dtype\":\"f32\",\"shape\":[1073741824],"
         "\"offset\":0,\"nbytes\":4294967296}]}",
         "inside the data section"},
        {"{\"tensors\":[{\"name\":\"a\",\"dtype\":\"f32\",\"shape\":[4],\"offset\":4,"
         "\"nbytes\":16}]}",
         "offset 4"},
        {"{\"tensors\":[{\"name\":\"a\",\"dtype\":\"f32\",\"shape\":[4],\"offset\":-64,"
         "\"nbytes\":16}]}",
         "offset -64"},
        {"{\"tensors\":[{\"name\":\"a\",\"dtype\":\"f32\",\"shape\":[4],\"offset\":64,"
         "\"nbytes\":16}]}",
         "inside the data section"},
        {"{\"tensors\":[" T_A "," T_A "]}", "'a' appears twice"},
        {"{\"tensors\":[" T_A ",{\"name\":\"b\",\"dtype\":\"u8\",\"shape\":[2],\"offset\":0,"
         "\"nbytes\":2}]}",
         "overlap"},
        {"{\"tensors\":[],\"metadata\":{\"k\":1}}", "metadata value of 'k'"},
        {"{\"tensors\":[],\"metadata\":[]}", "\"metadata\" is not an object"},
        {"{\"tensors\":[],\"config\":3}", "\"config\" is not an object"},
        {"{\"tensors\":[],\"data_sha256\":\"abc\"}", "64 hex digits"},
        {"{\"tensors\":[],\"data_sha256\":\"zz00000000000000000000000000000000000000000000000000"
         "000000000000\"}",
         "64 hex digits"},
    };
    const float v[16] = {0};
    const char *p = path_of("hdr.born");
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        write_raw(p, cases[i].json, 64, 1, v, sizeof v);
        expect_load_error(p, (bn_load_opts){0}, BN_ERR_FORMAT, cases[i].what);
    }
}

Test(born_format, empty_tensors_may_share_an_offset)
{
    const char *p = path_of("empty.born");
    write_raw(p,
              "{\"tensors\":[{\"name\":\"e\",\"dtype\":\"f32\",\"shape\":[0,5],\"offset\":0,"
              "\"nbytes\":0}," T_A "]}",
              64, 1, (const float[4]){1, 2, 3, 4}, 16);
    bn_loaded l;
    cr_assert_eq(bn_born_load(p, (bn_load_opts){0}, &l), BN_OK, "%s", bn_error_message());
    cr_assert_eq(bn_numel(l.tensors.tensors[0]), 0);
    cr_assert_eq(bn_dim(l.tensors.tensors[0], 1), 5);
    bn_loaded_free(&l);
}

/* ---- > 4 GiB ------------------------------------------------------------------------------ */
Test(born_format, a_sparse_file_over_4_gib_loads)
{
    const uint64_t off = (uint64_t)5 << 30; /* the tensor lies past 4 GiB */
    char json[256];
    snprintf(json, sizeof json,
             "{\"tensors\":[{\"name\":\"far\",\"dtype\":\"i64\",\"shape\":[3],\"offset\":%llu,"
             "\"nbytes\":24}]}",
             (unsigned long long)off);
    const char *p = path_of("sparse.born");
    write_raw(p, json, off + 64, 1, NULL, 0);
    const int64_t v[3] = {7, -8, INT64_MAX};
    int fd = open(p, O_WRONLY);
    uint64_t doff = (64 + strlen(json) + 63) / 64 * 64;
    cr_assert_eq(pwrite(fd, v, sizeof v, (off_t)(doff + off)), (ssize_t)sizeof v);
    close(fd);
    struct stat st;
    cr_assert_eq(stat(p, &st), 0);
    cr_assert_gt((uint64_t)st.st_size, (uint64_t)4 << 30);
    BNT_ASSERT_NO_LEAK({
        bn_loaded l;
        cr_assert_eq(bn_born_load(p, (bn_load_opts){0}, &l), BN_OK, "%s", bn_error_message());
        const int64_t *got = bn_tensor_data_i64(l.tensors.tensors[0]);
        cr_assert(got[0] == 7 && got[1] == -8 && got[2] == INT64_MAX);
        bn_loaded_free(&l);
    });
    unlink(p);
}

/* ---- bad arguments ------------------------------------------------------------------------ */
Test(born_format, bad_arguments_are_reported)
{
    bn_scope_begin();
    bn_tensor *x = bn_arange(0, 4, 1, BN_F32);
    bn_tensor_list l = {.count = 1, .names = (char *[]){"x"}, .tensors = &x};
    bn_loaded out;
    BNT_ASSERT_NO_LEAK({
        cr_assert_eq(bn_born_save(NULL, &l, (bn_save_opts){0}), BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "bn_born_save", "path", NULL);
        cr_assert_eq(bn_born_save(path_of("a.born"), NULL, (bn_save_opts){0}), BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "bn_born_save", "tensors", NULL);
        cr_assert_eq(bn_born_load(NULL, (bn_load_opts){0}, &out), BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "bn_born_load", "path", NULL);
        cr_assert_eq(bn_born_load(path_of("a.born"), (bn_load_opts){0}, NULL), BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "bn_born_load", "out", NULL);
        cr_assert_eq(bn_save_tensors(path_of("a.txt"), &l, (bn_save_opts){0}), BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "bn_save_tensors", "a.txt", "unknown extension", NULL);
        cr_assert_eq(bn_load_tensors(path_of("a.txt"), (bn_load_opts){0}, &out), BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "bn_load_tensors", "a.txt", NULL);
        cr_assert_eq(bn_save_tensors(NULL, &l, (bn_save_opts){0}), BN_ERR_ARG);
        cr_assert_eq(bn_load_tensors(path_of("a.born"), (bn_load_opts){0}, NULL), BN_ERR_ARG);

        cr_assert_eq(bn_born_load(path_of("missing.born"), (bn_load_opts){0}, &out), BN_ERR_IO);
        bnt_assert_error(BN_ERR_IO, "bn_born_load", "missing.born", "cannot open", NULL);
        cr_assert_eq(bn_born_load(dir, (bn_load_opts){0}, &out), BN_ERR_IO);
        bnt_assert_error(BN_ERR_IO, "not a regular file", NULL);
        cr_assert_eq(bn_born_save("/nonexistent-dir/x.born", &l, (bn_save_opts){0}), BN_ERR_IO);
        bnt_assert_error(BN_ERR_IO, "bn_born_save", "/nonexistent-dir/x.born", NULL);

        bn_tensor *two[2] = {x, x};
        bn_tensor_list dup = {.count = 2, .names = (char *[]){"w", "w"}, .tensors = two};
        cr_assert_eq(bn_born_save(path_of("d.born"), &dup, (bn_save_opts){0}), BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "bn_born_save", "'w' appears twice", NULL);
        bn_tensor *none[1] = {NULL};
        bn_tensor_list nul = {.count = 1, .names = (char *[]){"n"}, .tensors = none};
        cr_assert_eq(bn_born_save(path_of("d.born"), &nul, (bn_save_opts){0}), BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "bn_born_save", "entry 0", "NULL tensor", NULL);
        bn_tensor_list neg = {.count = -1};
        cr_assert_eq(bn_born_save(path_of("d.born"), &neg, (bn_save_opts){0}), BN_ERR_ARG);
        bn_tensor_list bad_utf8 = {.count = 1, .names = (char *[]){"\xff"}, .tensors = &x};
        cr_assert_eq(bn_born_save(path_of("d.born"), &bad_utf8, (bn_save_opts){0}), BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "bn_born_save", "UTF-8", NULL);
        cr_assert_eq(bn_born_save(path_of("d.born"), &l, (bn_save_opts){.config_json = "[1]"}),
                     BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "bn_born_save", "config_json", "not a JSON object", NULL);
    });
    cr_assert_eq(count_files(), 0);
    bn_scope_end();
}

/* ---- files written by an independent writer (scripts/gen_born_corpus.py) ------------------ */
static const char *corpus(const char *name)
{
    static char p[512];
    snprintf(p, sizeof p, "%s/born/%s", BORN_TEST_DATA_DIR, name);
    return p;
}

Test(born_format, reads_files_written_from_the_spec_in_python)
{
    BNT_ASSERT_NO_LEAK({
        bn_loaded l;
        cr_assert_eq(bn_born_load(corpus("valid_f32_2x3.born"), (bn_load_opts){.verify = true}, &l),
                     BN_OK, "%s", bn_error_message());
        const double w[6] = {1, 2, 3, 4, 5, 6};
        bnt_assert_values(l.tensors.tensors[0], w, 6, 0, "w");
        cr_assert_str_eq(bn_metadata_get(&l.metadata, "k"), "v");
        cr_assert_str_eq(l.config_json, "{\"arch\":\"mlp\"}");
        bn_loaded_free(&l);

        cr_assert_eq(bn_born_load(corpus("valid_mixed.born"), (bn_load_opts){.verify = true}, &l),
                     BN_OK, "%s", bn_error_message());
        cr_assert_eq(l.tensors.count, 8);
        const bn_dtype dts[8] = {BN_F64, BN_I64, BN_F16, BN_BF16, BN_BOOL, BN_U8, BN_I8, BN_I32};
        const double want[8][4] = {{3.5},        {1, -2, 3}, {0.5, -1}, {1, 2},
                                   {1, 0, 0, 1}, {0},        {-1, 1},   {7, 8}};
        const int64_t n[8] = {1, 3, 2, 2, 4, 0, 2, 2};
        for (int i = 0; i < 8; i++) {
            cr_assert_eq(bn_dtype_of(l.tensors.tensors[i]), dts[i], "tensor %d", i);
            bnt_assert_values(l.tensors.tensors[i], want[i], n[i], 0, l.tensors.names[i]);
        }
        cr_assert_eq(bn_ndim(l.tensors.tensors[0]), 0);
        cr_assert_eq(bn_ndim(l.tensors.tensors[6]), 8);
        bn_loaded_free(&l);

        cr_assert_eq(bn_born_load(corpus("valid_empty.born"), (bn_load_opts){.verify = true}, &l),
                     BN_OK);
        bn_loaded_free(&l);
        cr_assert_eq(bn_born_load(corpus("valid_no_checksum.born"), (bn_load_opts){0}, &l), BN_OK);
        bn_loaded_free(&l);
        cr_assert_eq(bn_born_load(corpus("bad_checksum.born"), (bn_load_opts){0}, &l), BN_OK);
        bn_loaded_free(&l);
    });
    expect_load_error(corpus("bad_checksum.born"), (bn_load_opts){.verify = true}, BN_ERR_FORMAT,
                      "checksum mismatch");
    expect_load_error(corpus("bad_truncated.born"), (bn_load_opts){0}, BN_ERR_FORMAT, "truncated");
    expect_load_error(corpus("bad_magic.born"), (bn_load_opts){0}, BN_ERR_FORMAT, "bad magic");
    expect_load_error(corpus("bad_version.born"), (bn_load_opts){0}, BN_ERR_FORMAT, "2.0");
    expect_load_error(corpus("bad_overlap.born"), (bn_load_opts){0}, BN_ERR_FORMAT, "overlap");
}

Test(born_format, saving_over_the_file_a_loaded_tensor_maps_keeps_it_intact)
{
    bn_scope_begin();
    bn_tensor *x = bn_arange(0, 1000, 1, BN_F32);
    const char *p = path_of("self.born");
    cr_assert_eq(save(p, 1, (const char *[]){"x"}, &x, (bn_save_opts){0}), BN_OK);
    bn_loaded l;
    cr_assert_eq(bn_born_load(p, (bn_load_opts){0}, &l), BN_OK);
    bn_tensor *y = bn_mul_scalar(l.tensors.tensors[0], 2.0);
    bn_tensor *ts[2] = {l.tensors.tensors[0], y}; /* x streams from the mapping of p itself */
    cr_assert_eq(save(p, 2, (const char *[]){"x", "y"}, ts, (bn_save_opts){0}), BN_OK);
    bnt_assert_equal(l.tensors.tensors[0], x, "the old mapping");
    bn_loaded again;
    cr_assert_eq(bn_born_load(p, (bn_load_opts){.verify = true}, &again), BN_OK);
    bnt_assert_equal(again.tensors.tensors[0], x, "x");
    bnt_assert_equal(again.tensors.tensors[1], y, "y");
    bn_loaded_free(&again);
    bn_loaded_free(&l);
    bn_scope_end();
}
