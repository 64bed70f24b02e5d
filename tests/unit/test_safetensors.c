/* tests/unit/test_safetensors.c — the safetensors reader and writer (src/io/safetensors.c):
 * files written from PyTorch tensors read with exact values, born's files read back by an
 * independent reader (scripts/gen_safetensors.py --check, which also requires the reference
 * writer's exact layout), round trips of every dtype and shape, the header bytes born writes,
 * corrupted files (each a clear error, no leak) and bad arguments. The files in
 * tests/data/safetensors/ and the values in tests/data/safetensors.txt are made by
 * scripts/gen_safetensors.py (run with /usr/bin/python3 and Debian's torch). */
#include "bn_test.h"

#include "born/io.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ST(name) BORN_TEST_DATA_DIR "/safetensors/" name ".safetensors"
#define TORCH_ALL ST("torch_all")

static char tmpdir[64];

static void make_tmpdir(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/born-st-XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
}

static void remove_tmpdir(void)
{
    DIR *d = opendir(tmpdir);
    if (!d) return;
    struct dirent *e;
    char p[512];
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') {
            snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
            unlink(p);
        }
    closedir(d);
    rmdir(tmpdir);
}

TestSuite(safetensors, .init = make_tmpdir, .fini = remove_tmpdir);

static const char *tmp_path(const char *name)
{
    static char p[4][256];
    static int i;
    i = (i + 1) % 4;
    snprintf(p[i], sizeof p[i], "%s/%s", tmpdir, name);
    return p[i];
}

static unsigned char *read_all(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)size + 1);
    cr_assert_eq(fread(b, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    *n = (size_t)size;
    return b;
}

static int find(const bn_loaded *l, const char *name)
{
    for (int i = 0; i < l->tensors.count; i++)
        if (strcmp(l->tensors.names[i], name) == 0) return i;
    return -1;
}

/* Whether the element at p (of dtype dt) is a NaN: the fixture text cannot carry a NaN's
 * payload, so NaNs match any NaN. */
static bool is_nan_at(const unsigned char *p, bn_dtype dt)
{
    uint64_t v = 0;
    memcpy(&v, p, bn_dtype_size(dt));
    switch (dt) {
    case BN_F32: return (v & 0x7f800000u) == 0x7f800000u && (v & 0x7fffffu);
    case BN_F64:
        return (v & 0x7ff0000000000000ull) == 0x7ff0000000000000ull && (v & 0xfffffffffffffull);
    case BN_F16: return (v & 0x7c00u) == 0x7c00u && (v & 0x3ffu);
    case BN_BF16: return (v & 0x7f80u) == 0x7f80u && (v & 0x7fu);
    default: return false;
    }
}

/* Same dtype, shape and bytes (NaNs of any payload match). */
static void assert_same_bytes(bn_tensor *got, bn_tensor *want, const char *what)
{
    cr_assert_eq(bn_dtype_of(got), bn_dtype_of(want), "%s: dtype", what);
    cr_assert(bn_shape_equal(bn_shape_of(got), bn_shape_of(want)), "%s: shape", what);
    size_t n = bn_nbytes(got);
    cr_assert_eq(n, bn_nbytes(want));
    unsigned char *g = malloc(n + 1), *w = malloc(n + 1);
    cr_assert_eq(bn_copy_to_host(got, g, n), BN_OK);
    cr_assert_eq(bn_copy_to_host(want, w, n), BN_OK);
    size_t es = bn_dtype_size(bn_dtype_of(got));
    for (size_t i = 0; i < n; i += es)
        cr_assert(memcmp(g + i, w + i, es) == 0 ||
                      (is_nan_at(g + i, bn_dtype_of(got)) && is_nan_at(w + i, bn_dtype_of(got))),
                  "%s: element %zu differs", what, i / es);
    free(g);
    free(w);
}

/* The names torch_all.safetensors holds, in file order (the reference writer's: descending
 * dtype, then name). */
static const char *const torch_all_order[] = {
    "i64",  "f64", "empty", "f32", "f32_special", "layers.0.weight", "scalar", "i32",
    "bf16", "f16", "i8",    "u8",  "bool",
};
#define TORCH_ALL_N 13

static void check_torch_all(const bn_loaded *l)
{
    cr_assert_str_eq(l->format, "safetensors");
    cr_assert_eq(l->tensors.count, TORCH_ALL_N);
    for (int i = 0; i < TORCH_ALL_N; i++)
        cr_assert_str_eq(l->tensors.names[i], torch_all_order[i], "file order at %d", i);
    cr_assert_eq(l->metadata.count, 2);
    cr_assert_str_eq(bn_metadata_get(&l->metadata, "format"), "pt");
    cr_assert_str_eq(bn_metadata_get(&l->metadata, "note"), "caf\xc3\xa9 \"quoted\"\n");
    fx_file *fx = fx_open("safetensors.txt");
    for (int i = 0; i < TORCH_ALL_N; i++) {
        bn_tensor *want = fx_tensor(fx, "torch_all", torch_all_order[i]);
        assert_same_bytes(l->tensors.tensors[i], want, torch_all_order[i]);
        bn_release(want);
    }
    fx_close(fx);
}

/* ---- the independent Python reader ------------------------------------------------------------ */
/* The checker (scripts/gen_safetensors.py --check) needs only Python's standard library. */
static bool have_python(void) { return access("/usr/bin/python3", X_OK) == 0; }

/* Runs the independent reader on file (and compares it with same_as); 0 when it agrees. */
static int python_check(const char *file, const char *same_as)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/scripts/gen_safetensors.py --check '%s'%s%s%s",
             BORN_SOURCE_DIR, file, same_as ? " --same-as '" : "", same_as ? same_as : "",
             same_as ? "'" : "");
    if (strstr(file, "/bad_") || strstr(file, "ok_unaligned")) strcat(cmd, " 2>/dev/null");
    return system(cmd);
}

/* ---- files written from PyTorch --------------------------------------------------------------- */
Test(safetensors, reads_torch_written_file_with_exact_values)
{
    BNT_ASSERT_NO_LEAK({
        bn_loaded l;
        cr_assert_eq(bn_safetensors_load(TORCH_ALL, (bn_load_opts){0}, &l), BN_OK, "%s",
                     bn_error_message());
        check_torch_all(&l);
        bn_loaded_free(&l);
    });
}

Test(safetensors, reads_without_mmap_too)
{
    BNT_ASSERT_NO_LEAK({
        bn_loaded l;
        cr_assert_eq(bn_safetensors_load(TORCH_ALL, (bn_load_opts){.no_mmap = true}, &l), BN_OK,
                     "%s", bn_error_message());
        check_torch_all(&l);
        bn_loaded_free(&l);
    });
}

Test(safetensors, tensors_are_zero_copy_and_writes_leave_the_file_alone)
{
    BNT_ASSERT_NO_LEAK({
        bn_loaded l;
        cr_assert_eq(bn_safetensors_load(TORCH_ALL, (bn_load_opts){0}, &l), BN_OK);
        /* i64 is data bytes [0, 16) and f64 [16, 56): adjacent in the one mapping */
        unsigned char *i64 = bn_tensor_data(l.tensors.tensors[find(&l, "i64")]);
        unsigned char *f64 = bn_tensor_data(l.tensors.tensors[find(&l, "f64")]);
        cr_assert_eq(f64 - i64, 16);
        bn_tensor *w = l.tensors.tensors[find(&l, "layers.0.weight")];
        bn_tensor *keep = w;
        bn_retain(keep);
        bn_loaded_free(&l); /* the mapping lives on while a tensor holds it */
        cr_assert_float_eq(bn_get(keep, (int64_t[]){1, 2}), 5.0, 0);
        cr_assert_eq(bn_fill_(keep, 42.0), BN_OK);
        bn_release(keep);
        bn_loaded l2;
        cr_assert_eq(bn_safetensors_load(TORCH_ALL, (bn_load_opts){0}, &l2), BN_OK);
        cr_assert_float_eq(bn_get(l2.tensors.tensors[find(&l2, "layers.0.weight")],
                                  (int64_t[]){1, 2}),
                           5.0, 0);
        bn_loaded_free(&l2);
    });
}

Test(safetensors, copies_a_tensor_whose_data_is_unaligned)
{
    BNT_ASSERT_NO_LEAK({
        bn_loaded l;
        cr_assert_eq(bn_safetensors_load(ST("ok_unaligned"), (bn_load_opts){0}, &l), BN_OK, "%s",
                     bn_error_message());
        cr_assert_eq(l.tensors.count, 2);
        cr_assert_str_eq(l.tensors.names[0], "u");
        cr_assert_str_eq(l.tensors.names[1], "f");
        bnt_assert_values(l.tensors.tensors[0], (double[]){7}, 1, 0, "u");
        bnt_assert_values(l.tensors.tensors[1], (double[]){1.5, -2.0}, 2, 0, "f");
        cr_assert_eq((uintptr_t)bn_tensor_data(l.tensors.tensors[1]) % 4, 0);
        bn_loaded_free(&l);
    });
}

Test(safetensors, reads_a_file_with_no_tensors)
{
    BNT_ASSERT_NO_LEAK({
        bn_loaded l;
        cr_assert_eq(bn_safetensors_load(ST("empty"), (bn_load_opts){0}, &l), BN_OK);
        cr_assert_eq(l.tensors.count, 0);
        cr_assert_eq(l.metadata.count, 0);
        bn_loaded_free(&l);
    });
}

/* ---- writing ---------------------------------------------------------------------------------- */
static bn_tensor_list list_of(int n, const char *const *names, bn_tensor *const *ts)
{
    bn_tensor_list l = {.count = n, .names = (char **)names, .tensors = (bn_tensor **)ts};
    return l;
}

Test(safetensors, writes_the_reference_layout_byte_for_byte)
{
    BNT_ASSERT_NO_LEAK({
        bn_tensor *w = bn_from_data((float[]){1.0f, -2.0f}, BN_SHAPE(2), BN_F32);
        bn_tensor *b = bn_from_data((uint8_t[]){9}, BN_SHAPE(1), BN_U8);
        bn_tensor *a = bn_from_data((float[]){0.5f}, BN_SCALAR, BN_F32);
        const char *names[] = {"w", "b", "a"};
        bn_tensor_list l = list_of(3, names, (bn_tensor *[]){w, b, a});
        bn_metadata md = {0};
        bn_metadata_set(&md, "k", "v\"\n");
        const char *p = tmp_path("layout.safetensors");
        cr_assert_eq(bn_safetensors_save(p, &l, &md), BN_OK, "%s", bn_error_message());
        const char hdr[] = "{\"__metadata__\":{\"k\":\"v\\\"\\n\"},"
                           "\"a\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]},"
                           "\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]},"
                           "\"b\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[12,13]}}";
        size_t hlen = strlen(hdr), padded = (hlen + 7) / 8 * 8, n;
        unsigned char *f = read_all(p, &n);
        cr_assert_eq(n, 8 + padded + 13);
        uint64_t size = 0;
        for (int i = 0; i < 8; i++) size |= (uint64_t)f[i] << (8 * i);
        cr_assert_eq(size, padded);
        cr_assert(memcmp(f + 8, hdr, hlen) == 0, "header is %.*s", (int)padded, f + 8);
        for (size_t i = hlen; i < padded; i++) cr_assert_eq(f[8 + i], ' ');
        float a_v = 0.5f, w_v[2] = {1.0f, -2.0f};
        cr_assert(memcmp(f + 8 + padded, &a_v, 4) == 0);
        cr_assert(memcmp(f + 8 + padded + 4, w_v, 8) == 0);
        cr_assert_eq(f[8 + padded + 12], 9);
        free(f);
        bn_metadata_free(&md);
        bn_release(w);
        bn_release(b);
        bn_release(a);
    });
}

Test(safetensors, round_trips_every_dtype_and_shape)
{
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        const bn_shape shapes[] = {BN_SCALAR, BN_SHAPE(0), BN_SHAPE(2, 0, 3), BN_SHAPE(7),
                                   BN_SHAPE(2, 3, 4)};
        const char *names[BN_DTYPE_COUNT * 5];
        bn_tensor *ts[BN_DTYPE_COUNT * 5];
        char buf[BN_DTYPE_COUNT * 5][32];
        int n = 0;
        for (int d = 0; d < BN_DTYPE_COUNT; d++)
            for (int s = 0; s < 5; s++) {
                bn_tensor *x = bn_sub(bn_arange(0, (double)bn_shape_numel(shapes[s]), 1, BN_F64),
                                      bn_scalar(3, BN_F64));
                ts[n] = bn_to_dtype(bn_reshape(x, shapes[s]), (bn_dtype)d);
                snprintf(buf[n], sizeof buf[n], "%s.%d", bn_dtype_name((bn_dtype)d), s);
                names[n] = buf[n];
                n++;
            }
        bnt_assert_no_error("inputs");
        bn_tensor_list l = list_of(n, names, ts);
        const char *p = tmp_path("all.safetensors");
        cr_assert_eq(bn_safetensors_save(p, &l, NULL), BN_OK, "%s", bn_error_message());
        bn_loaded back;
        cr_assert_eq(bn_safetensors_load(p, (bn_load_opts){0}, &back), BN_OK, "%s",
                     bn_error_message());
        cr_assert_eq(back.tensors.count, n);
        for (int i = 0; i < n; i++) {
            int j = find(&back, names[i]);
            cr_assert_geq(j, 0, "%s missing", names[i]);
            assert_same_bytes(back.tensors.tensors[j], ts[i], names[i]);
        }
        bn_loaded_free(&back);
        if (have_python()) cr_assert_eq(python_check(p, NULL), 0);
        bn_scope_end();
    });
}

Test(safetensors, writes_views_in_row_major_order)
{
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_tensor *x = bn_reshape(bn_arange(0, 12, 1, BN_F32), BN_SHAPE(3, 4));
        bn_tensor *views[] = {bn_transpose(x, 0, 1), bn_slice(x, 1, 1, 4, 2),
                              bn_expand(bn_slice(x, 0, 0, 1, 1), BN_SHAPE(2, 4))};
        const char *names[] = {"t", "s", "e"};
        bn_tensor_list l = list_of(3, names, views);
        const char *p = tmp_path("views.safetensors");
        cr_assert_eq(bn_safetensors_save(p, &l, NULL), BN_OK, "%s", bn_error_message());
        bn_loaded back;
        cr_assert_eq(bn_safetensors_load(p, (bn_load_opts){0}, &back), BN_OK);
        for (int i = 0; i < 3; i++)
            bnt_assert_equal(back.tensors.tensors[find(&back, names[i])], views[i], names[i]);
        bn_loaded_free(&back);
        bn_scope_end();
    });
}

Test(safetensors, leaves_no_temporary_file_behind)
{
    bn_tensor *x = bn_ones(BN_SHAPE(3), BN_F32);
    const char *names[] = {"x"};
    bn_tensor_list l = list_of(1, names, &x);
    cr_assert_eq(bn_safetensors_save(tmp_path("a.safetensors"), &l, NULL), BN_OK);
    cr_assert_eq(bn_safetensors_save(tmp_path("a.safetensors"), &l, NULL), BN_OK); /* replaces */
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    int files = 0;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') {
            cr_assert_str_eq(e->d_name, "a.safetensors");
            files++;
        }
    closedir(d);
    cr_assert_eq(files, 1);
    bn_release(x);
}

Test(safetensors, saving_nothing_writes_what_the_reference_writes)
{
    bn_tensor_list l = {0};
    const char *p = tmp_path("none.safetensors");
    cr_assert_eq(bn_safetensors_save(p, &l, NULL), BN_OK);
    size_t n1, n2;
    unsigned char *a = read_all(p, &n1), *b = read_all(ST("empty"), &n2);
    cr_assert(n1 == n2 && memcmp(a, b, n1) == 0);
    free(a);
    free(b);
}

Test(safetensors, born_files_are_read_by_the_independent_python_reader)
{
    if (!have_python()) cr_skip("/usr/bin/python3 is not available for the independent reader");
    BNT_ASSERT_NO_LEAK({
        /* torch's file → born → file: the same tensors, laid out like the reference writer */
        bn_loaded l;
        cr_assert_eq(bn_safetensors_load(TORCH_ALL, (bn_load_opts){0}, &l), BN_OK);
        const char *p = tmp_path("again.safetensors");
        cr_assert_eq(bn_safetensors_save(p, &l.tensors, &l.metadata), BN_OK, "%s",
                     bn_error_message());
        bn_loaded_free(&l);
        cr_assert_eq(python_check(p, TORCH_ALL), 0);
        size_t n1, n2;
        unsigned char *a = read_all(p, &n1), *b = read_all(TORCH_ALL, &n2);
        cr_assert(n1 == n2 && memcmp(a, b, n1) == 0, "born's rewrite differs from torch's file");
        free(a);
        free(b);
    });
    /* the checker does reject: a broken file, and a valid one not laid out like the reference */
    cr_assert_neq(python_check(ST("bad_overlap"), NULL), 0);
    cr_assert_neq(python_check(ST("ok_unaligned"), NULL), 0);
}

Test(safetensors, born_views_and_odd_names_pass_the_python_check)
{
    if (!have_python()) cr_skip("/usr/bin/python3 is not available for the independent reader");
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_tensor *x = bn_reshape(bn_arange(0, 24, 1, BN_BF16), BN_SHAPE(2, 3, 4));
        bn_tensor *ts[] = {bn_transpose(x, 0, 2), bn_ones(BN_SHAPE(5), BN_BOOL),
                           bn_full(BN_SHAPE(2), -7, BN_I8), bn_zeros(BN_SHAPE(0, 2), BN_F64)};
        const char *names[] = {"a/b \"q\"\t", "\xc3\xa9t\xc3\xa9", "Z", ""};
        bn_tensor_list l = list_of(4, names, ts);
        bn_metadata md = {0};
        bn_metadata_set(&md, "z", "1");
        bn_metadata_set(&md, "a", "\x01\x1f\\");
        const char *p = tmp_path("odd.safetensors");
        cr_assert_eq(bn_safetensors_save(p, &l, &md), BN_OK, "%s", bn_error_message());
        cr_assert_eq(python_check(p, NULL), 0);
        bn_metadata_free(&md);
        bn_scope_end();
    });
}

/* ---- corrupted files -------------------------------------------------------------------------- */
static void assert_load_fails(const char *name, bn_status code, const char *msg)
{
    char path[512];
    snprintf(path, sizeof path, "%s/safetensors/%s.safetensors", BORN_TEST_DATA_DIR, name);
    for (int no_mmap = 0; no_mmap < 2; no_mmap++)
        BNT_ASSERT_NO_LEAK({
            bn_loaded l;
            memset(&l, 0x5a, sizeof l);
            cr_assert_eq(bn_safetensors_load(path, (bn_load_opts){.no_mmap = no_mmap}, &l), code,
                         "%s: %s", name, bn_error_message());
            cr_assert_eq(l.tensors.count, 0, "%s: out is cleared", name);
            cr_assert_null(l.tensors.tensors);
            cr_assert_eq(l.metadata.count, 0);
            bnt_assert_error(code, "bn_safetensors_load", name, msg, NULL);
        });
}

Test(safetensors, rejects_truncated_files)
{
    assert_load_fails("bad_truncated", BN_ERR_FORMAT, "past the end of the data");
    assert_load_fails("bad_short", BN_ERR_FORMAT, "too short");
    assert_load_fails("bad_header_past_eof", BN_ERR_FORMAT, "header size 4096 is past the end");
}

Test(safetensors, rejects_a_huge_header_size)
{
    assert_load_fails("bad_huge_header", BN_ERR_FORMAT, "over the 100000000-byte limit");
}

Test(safetensors, rejects_bad_header_text)
{
    assert_load_fails("bad_not_brace", BN_ERR_FORMAT, "does not start with '{'");
    assert_load_fails("bad_json", BN_ERR_FORMAT, "not valid JSON");
    assert_load_fails("bad_utf8", BN_ERR_FORMAT, "not valid UTF-8");
    assert_load_fails("bad_duplicate_name", BN_ERR_FORMAT, "duplicate");
    assert_load_fails("bad_metadata_not_string", BN_ERR_FORMAT, "metadata value of \"k\"");
}

Test(safetensors, rejects_bad_dtypes)
{
    assert_load_fails("unsup_dtype_f8", BN_ERR_UNSUPPORTED, "tensor 'a' has dtype F8_E4M3");
    assert_load_fails("bad_dtype_unknown", BN_ERR_FORMAT, "tensor 'a' has unknown dtype \"F33\"");
    assert_load_fails("unsup_too_many_dims", BN_ERR_UNSUPPORTED, "at most 8");
}

Test(safetensors, rejects_bad_offsets)
{
    assert_load_fails("bad_offsets_out_of_range", BN_ERR_FORMAT,
                      "tensor 'b': data_offsets [8, 16]");
    assert_load_fails("bad_overlap", BN_ERR_FORMAT, "an overlap");
    assert_load_fails("bad_hole", BN_ERR_FORMAT, "a hole");
    assert_load_fails("bad_trailing_bytes", BN_ERR_FORMAT,
                      "cover 12 bytes of data but the file holds 16");
    assert_load_fails("bad_negative_offset", BN_ERR_FORMAT, "not two non-negative integers");
}

Test(safetensors, rejects_shapes_that_disagree_with_the_byte_range)
{
    assert_load_fails("bad_shape_mismatch", BN_ERR_FORMAT, "F32 of shape [3] needs 12 bytes");
    assert_load_fails("bad_shape_overflow", BN_ERR_FORMAT, "needs over");
}

/* ---- bad arguments ---------------------------------------------------------------------------- */
Test(safetensors, load_rejects_bad_arguments)
{
    BNT_ASSERT_NO_LEAK({
        bn_loaded l;
        cr_assert_eq(bn_safetensors_load(NULL, (bn_load_opts){0}, &l), BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "bn_safetensors_load", "path", NULL);
        cr_assert_eq(bn_safetensors_load(TORCH_ALL, (bn_load_opts){0}, NULL), BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "bn_safetensors_load", "out", NULL);
        cr_assert_eq(bn_safetensors_load("/nonexistent/x.safetensors", (bn_load_opts){0}, &l),
                     BN_ERR_IO);
        bnt_assert_error(BN_ERR_IO, "bn_safetensors_load", "/nonexistent/x.safetensors", NULL);
        cr_assert_eq(bn_safetensors_load(BORN_TEST_DATA_DIR, (bn_load_opts){0}, &l), BN_ERR_IO);
        bnt_assert_error(BN_ERR_IO, "bn_safetensors_load", "not a regular file", NULL);
    });
}

Test(safetensors, save_rejects_bad_arguments)
{
    BNT_ASSERT_NO_LEAK({
        bn_tensor *x = bn_ones(BN_SHAPE(2), BN_F32);
        const char *p = tmp_path("bad.safetensors");
        const char *one[] = {"x"};
        bn_tensor_list l = list_of(1, one, &x);
        cr_assert_eq(bn_safetensors_save(NULL, &l, NULL), BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "bn_safetensors_save", "path", NULL);
        cr_assert_eq(bn_safetensors_save(p, NULL, NULL), BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "bn_safetensors_save", "tensors", NULL);
        bn_tensor_list err = {.count = -1};
        cr_assert_eq(bn_safetensors_save(p, &err, NULL), BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "bn_safetensors_save", "error list", NULL);

        const char *dup[] = {"x", "x"};
        bn_tensor_list d = list_of(2, dup, (bn_tensor *[]){x, x});
        cr_assert_eq(bn_safetensors_save(p, &d, NULL), BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "bn_safetensors_save", "'x' appears more than once", NULL);
        const char *meta[] = {"__metadata__"};
        bn_tensor_list m = list_of(1, meta, &x);
        cr_assert_eq(bn_safetensors_save(p, &m, NULL), BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "bn_safetensors_save", "__metadata__", NULL);
        const char *bad_utf8[] = {"\xff"};
        bn_tensor_list u = list_of(1, bad_utf8, &x);
        cr_assert_eq(bn_safetensors_save(p, &u, NULL), BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "bn_safetensors_save", "not valid UTF-8", NULL);
        bn_tensor_list nul = list_of(1, one, (bn_tensor *[]){NULL});
        cr_assert_eq(bn_safetensors_save(p, &nul, NULL), BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "bn_safetensors_save", "tensor 'x' is NULL", NULL);
        const char *nonames[] = {NULL};
        bn_tensor_list nn = list_of(1, nonames, &x);
        cr_assert_eq(bn_safetensors_save(p, &nn, NULL), BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "bn_safetensors_save", "names[0] is NULL", NULL);
        char *k[] = {"k"}, *v[] = {NULL};
        bn_metadata md = {.count = 1, .keys = k, .values = v};
        cr_assert_eq(bn_safetensors_save(p, &l, &md), BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "bn_safetensors_save", "metadata entry 0", NULL);
        char *k2[] = {"k", "k"}, *v2[] = {"1", "2"};
        bn_metadata md2 = {.count = 2, .keys = k2, .values = v2};
        cr_assert_eq(bn_safetensors_save(p, &l, &md2), BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "bn_safetensors_save", "metadata key \"k\" appears", NULL);
        cr_assert_eq(bn_safetensors_save("/nonexistent/dir/x.safetensors", &l, NULL), BN_ERR_IO);
        bnt_assert_error(BN_ERR_IO, "/nonexistent/dir/x.safetensors", NULL);
        cr_assert_eq(access(p, F_OK), -1, "nothing was written");
        bn_release(x);
    });
}

/* ---- large files and the by-extension entry points ------------------------------------------ */
Test(safetensors, maps_a_file_over_4_gib)
{
    /* a sparse file: a 5 GiB u8 tensor, then one f32 past the 4 GiB mark */
    const uint64_t big = 5ull << 30;
    char hdr[256];
    int h = snprintf(hdr, sizeof hdr,
                     "{\"big\":{\"dtype\":\"U8\",\"shape\":[%llu],\"data_offsets\":[0,%llu]},"
                     "\"tail\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[%llu,%llu]}}",
                     (unsigned long long)big, (unsigned long long)big, (unsigned long long)big,
                     (unsigned long long)big + 4);
    while (h % 8) hdr[h++] = ' ';
    const char *p = tmp_path("big.safetensors");
    FILE *f = fopen(p, "wb");
    cr_assert_not_null(f);
    uint64_t n = (uint64_t)h;
    unsigned char le[8];
    for (int i = 0; i < 8; i++) le[i] = (unsigned char)(n >> (8 * i));
    float tail = 2.5f;
    cr_assert_eq(fwrite(le, 1, 8, f), 8u);
    cr_assert_eq(fwrite(hdr, 1, (size_t)h, f), (size_t)h);
    cr_assert_eq(fseeko(f, (off_t)(8 + n + big), SEEK_SET), 0);
    cr_assert_eq(fwrite(&tail, 4, 1, f), 1u);
    fclose(f);
    BNT_ASSERT_NO_LEAK({
        bn_loaded l;
        cr_assert_eq(bn_safetensors_load(p, (bn_load_opts){0}, &l), BN_OK, "%s",
                     bn_error_message());
        cr_assert_eq(l.tensors.count, 2);
        cr_assert_eq(bn_numel(l.tensors.tensors[0]), (int64_t)big);
        cr_assert_eq(bn_get(l.tensors.tensors[0], (int64_t[]){(int64_t)big - 1}), 0.0);
        cr_assert_eq(bn_item(l.tensors.tensors[1]), 2.5);
        bn_loaded_free(&l);
    });
    unlink(p);
}

Test(safetensors, save_and_load_tensors_choose_safetensors_by_extension)
{
    BNT_ASSERT_NO_LEAK({
        bn_tensor *x = bn_full(BN_SHAPE(2, 2), 1.25, BN_F64);
        const char *names[] = {"x"};
        bn_tensor_list l = list_of(1, names, &x);
        bn_metadata md = {0};
        bn_metadata_set(&md, "who", "born");
        const char *p = tmp_path("ext.safetensors");
        cr_assert_eq(bn_save_tensors(p, &l, (bn_save_opts){.metadata = &md}), BN_OK, "%s",
                     bn_error_message());
        bn_loaded back;
        cr_assert_eq(bn_load_tensors(p, (bn_load_opts){0}, &back), BN_OK, "%s", bn_error_message());
        cr_assert_str_eq(back.format, "safetensors");
        cr_assert_str_eq(bn_metadata_get(&back.metadata, "who"), "born");
        bnt_assert_equal(back.tensors.tensors[0], x, "x");
        bn_loaded_free(&back);
        bn_metadata_free(&md);
        bn_release(x);
    });
}

Test(safetensors, saves_over_the_file_its_tensors_are_mapped_from)
{
    BNT_ASSERT_NO_LEAK({
        bn_tensor *x = bn_arange(0, 1000, 1, BN_F32);
        const char *names[] = {"x"};
        bn_tensor_list l = list_of(1, names, &x);
        const char *p = tmp_path("self.safetensors");
        cr_assert_eq(bn_safetensors_save(p, &l, NULL), BN_OK);
        bn_release(x);
        bn_loaded a;
        cr_assert_eq(bn_safetensors_load(p, (bn_load_opts){0}, &a), BN_OK);
        bn_scope_begin();
        bn_tensor *doubled = bn_mul(a.tensors.tensors[0], bn_scalar(2, BN_F32));
        cr_assert_eq(bn_copy_(a.tensors.tensors[0], doubled), BN_OK); /* a private page copy */
        bn_scope_end();
        /* written to a temporary and renamed: the mapping being read stays intact */
        cr_assert_eq(bn_safetensors_save(p, &a.tensors, NULL), BN_OK, "%s", bn_error_message());
        bn_loaded b;
        cr_assert_eq(bn_safetensors_load(p, (bn_load_opts){0}, &b), BN_OK);
        bnt_assert_equal(b.tensors.tensors[0], a.tensors.tensors[0], "x doubled");
        cr_assert_eq(bn_get(b.tensors.tensors[0], (int64_t[]){999}), 1998.0);
        bn_loaded_free(&a);
        bn_loaded_free(&b);
    });
}
