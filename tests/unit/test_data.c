/* tests/unit/test_data.c — data loading: the IDX reader on tiny files (every element type,
 * gzip'd and not, and broken files: truncated, bad magic, lying dims, trailing bytes), the
 * MNIST loader on a tiny MNIST-shaped set, CSV tables and their errors, data sets (slices,
 * splits) and the loader (order, determinism, drop_last, prefetch, no leaks). The IDX files are
 * made by scripts/gen_idx_fixture.py (tests/data/idx/); expected values are the generator's. */
#include "bn_test.h"

#include "born/data.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define IDX(name) BORN_TEST_DATA_DIR "/idx/" name
#define TINY BORN_TEST_DATA_DIR "/idx/tiny"

/* ---- IDX -------------------------------------------------------------------------------------- */
static void check_u8_3x2x2(const char *path)
{
    BNT_ASSERT_NO_LEAK({
        bn_tensor *t = bn_idx_read(path);
        cr_assert_not_null(t, "%s", bn_error_message());
        cr_assert_eq(bn_dtype_of(t), BN_U8);
        cr_assert(bn_shape_equal(bn_shape_of(t), BN_SHAPE(3, 2, 2)));
        double want[12];
        for (int i = 0; i < 12; i++) want[i] = 20 * i;
        bnt_assert_values(t, want, 12, 0, path);
        bn_release(t);
    });
}

Test(idx, reads_plain_and_gzipped_u8) { check_u8_3x2x2(IDX("u8_3x2x2.idx")); check_u8_3x2x2(IDX("u8_3x2x2.idx.gz")); }

Test(idx, reads_every_element_type_big_endian)
{
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_tensor *i8 = bn_idx_read(IDX("i8_4.idx"));
        bn_tensor *i16 = bn_idx_read(IDX("i16_2x2.idx"));
        bn_tensor *i32 = bn_idx_read(IDX("i32_3.idx"));
        bn_tensor *f32 = bn_idx_read(IDX("f32_2x3.idx"));
        bn_tensor *f64 = bn_idx_read(IDX("f64_2.idx"));
        bnt_assert_no_error("idx reads");
        cr_assert_eq(bn_dtype_of(i8), BN_I8);
        cr_assert_eq(bn_dtype_of(i16), BN_I32);
        cr_assert_eq(bn_dtype_of(i32), BN_I32);
        cr_assert_eq(bn_dtype_of(f32), BN_F32);
        cr_assert_eq(bn_dtype_of(f64), BN_F64);
        cr_assert(bn_shape_equal(bn_shape_of(f32), BN_SHAPE(2, 3)));
        bnt_assert_values(i8, (double[]){-128, -1, 0, 127}, 4, 0, "i8");
        bnt_assert_values(i16, (double[]){-32768, -2, 3, 32767}, 4, 0, "i16");
        bnt_assert_values(i32, (double[]){-2147483648.0, 7, 2147483647.0}, 3, 0, "i32");
        bnt_assert_values(f32, (double[]){0.5, -1.25, 3.0, (float)1e-3, -0.0, 65504.0}, 6, 0, "f32");
        bnt_assert_values(f64, (double[]){3.141592653589793, -2.5e300}, 2, 0, "f64");
        bn_scope_end();
    });
}

static void check_idx_error(const char *path, bn_status code, const char *what)
{
    BNT_ASSERT_NO_LEAK({
        cr_assert_null(bn_idx_read(path), "%s should fail", path);
        bnt_assert_error(code, "bn_idx_read", what, NULL);
    });
}

Test(idx, truncated_files_are_format_errors)
{
    check_idx_error(IDX("truncated.idx"), BN_ERR_FORMAT, "truncated");
    check_idx_error(IDX("truncated.idx.gz"), BN_ERR_FORMAT, "truncated");
    check_idx_error(IDX("header_only.idx"), BN_ERR_FORMAT, "truncated inside its header");
    check_idx_error(IDX("huge_truncated.idx.gz"), BN_ERR_FORMAT, "47040000 bytes");
}

Test(idx, bad_headers_are_format_errors)
{
    check_idx_error(IDX("bad_magic.idx"), BN_ERR_FORMAT, "bad magic");
    check_idx_error(IDX("bad_type.idx"), BN_ERR_FORMAT, "unknown element type 0x07");
    check_idx_error(IDX("zero_dims.idx"), BN_ERR_FORMAT, "claims 0 dims");
    check_idx_error(IDX("huge_dims.idx"), BN_ERR_FORMAT, "too large");
    check_idx_error(IDX("empty_huge_dims.idx"), BN_ERR_FORMAT, "too large");
    check_idx_error(IDX("too_long.idx"), BN_ERR_FORMAT, "longer than its dims say");
    check_idx_error(IDX("not_gzip.idx.gz"), BN_ERR_FORMAT, "not_gzip.idx.gz");
}

Test(idx, missing_file_and_null_path)
{
    check_idx_error(IDX("no_such_file.idx"), BN_ERR_IO, "cannot open");
    BNT_ASSERT_NO_LEAK({
        cr_assert_null(bn_idx_read(NULL));
        bnt_assert_error(BN_ERR_ARG, "bn_idx_read", "path", NULL);
    });
}

/* ---- MNIST ----------------------------------------------------------------------------------- */
Test(mnist, loads_a_directory_as_f32_images_and_i64_labels)
{
    BNT_ASSERT_NO_LEAK({
        bn_dataset *d = bn_mnist_load(TINY, (bn_mnist_opts){0});
        cr_assert_not_null(d, "%s", bn_error_message());
        cr_assert_eq(bn_dataset_len(d), 320);
        bn_scope_begin();
        bn_tensor *x = bn_dataset_x(d), *y = bn_dataset_y(d);
        cr_assert(bn_shape_equal(bn_shape_of(x), BN_SHAPE(320, 1, 28, 28)));
        cr_assert_eq(bn_dtype_of(x), BN_F32);
        cr_assert_eq(bn_dtype_of(y), BN_I64);
        cr_assert_eq(bn_item(bn_max(x, BN_ALL, false)) <= 1.0, true);
        cr_assert_geq(bn_item(bn_min(x, BN_ALL, false)), 0.0);
        for (int i = 0; i < 20; i++) cr_assert_eq(bn_get(y, (int64_t[]){i}), i % 10);
        /* class 0 lights rows 0-6, columns 0-6 with values 200..255 */
        double v = bn_get(x, (int64_t[]){0, 0, 3, 3});
        cr_assert(v >= 200.0 / 255 - 1e-6 && v <= 1.0, "pixel %g", v);
        bn_scope_end();
        bn_dataset_free(d);
    });
}

Test(mnist, normalize_matches_torchvision_arithmetic)
{
    BNT_ASSERT_NO_LEAK({
        bn_dataset *raw = bn_mnist_load(TINY, (bn_mnist_opts){.test = true});
        bn_dataset *nrm = bn_mnist_load(TINY, (bn_mnist_opts){.test = true, .normalize = true});
        cr_assert_not_null(nrm, "%s", bn_error_message());
        cr_assert_eq(bn_dataset_len(nrm), 80);
        bn_scope_begin();
        bn_tensor *a = bn_dataset_x(raw), *b = bn_dataset_x(nrm);
        const float *pa = bn_tensor_data_f32(a), *pb = bn_tensor_data_f32(b);
        for (int i = 0; i < 784 * 3; i++)
            cr_assert_eq(pb[i], (pa[i] - 0.2860f) / 0.3530f, "element %d", i);
        bn_scope_end();
        bn_dataset_free(raw);
        bn_dataset_free(nrm);
    });
}

Test(mnist, missing_data_set_says_how_to_get_it)
{
    BNT_ASSERT_NO_LEAK({
        setenv("BORN_DATA", "/nonexistent-born-data", 1);
        bn_dataset *d = bn_mnist_load("mnist", (bn_mnist_opts){0});
        if (!d) bnt_assert_error(BN_ERR_IO, "bn_mnist_load", "'mnist' not found",
                                 "/nonexistent-born-data/mnist", "--data DIR", NULL);
        bn_dataset_free(d);
        cr_assert_null(bn_mnist_load("/nonexistent-dir", (bn_mnist_opts){0}));
        bnt_assert_error(BN_ERR_IO, "bn_mnist_load", "/nonexistent-dir", "neither", NULL);
        cr_assert_null(bn_mnist_load(BORN_TEST_DATA_DIR, (bn_mnist_opts){0}));
        bnt_assert_error(BN_ERR_IO, "has no train-images-idx3-ubyte", NULL);
        cr_assert_null(bn_mnist_load(NULL, (bn_mnist_opts){0}));
        bnt_assert_error(BN_ERR_ARG, "bn_mnist_load", "name", NULL);
    });
}

Test(mnist, fashion_mnist_hint_names_the_debian_package)
{
    char dir[4096];
    if (bn_mnist_find("fashion-mnist", dir, sizeof dir)) {
        /* installed: BORN_DATA pointing nowhere still falls back to /usr/share/datasets */
        setenv("BORN_DATA", "/nonexistent-born-data", 1);
        cr_assert(bn_mnist_find("fashion-mnist", dir, sizeof dir));
        cr_assert_str_eq(dir, "/usr/share/datasets/fashion-mnist");
        return;
    }
    cr_assert_null(bn_mnist_load("fashion-mnist", (bn_mnist_opts){0}));
    bnt_assert_error(BN_ERR_IO, "apt-get install dataset-fashion-mnist", "scripts/deps.sh data",
                     NULL);
}

Test(mnist, born_data_env_is_searched_first)
{
    char dir[4096], tmp[] = "/tmp/born-data-test-XXXXXX", link[64];
    cr_assert_not_null(mkdtemp(tmp));
    snprintf(link, sizeof link, "%s/mnist", tmp);
    cr_assert_eq(symlink(TINY, link), 0);
    setenv("BORN_DATA", tmp, 1); /* $BORN_DATA/mnist */
    cr_assert(bn_mnist_find("mnist", dir, sizeof dir));
    cr_assert_str_eq(dir, link);
    setenv("BORN_DATA", TINY, 1); /* $BORN_DATA itself */
    cr_assert(bn_mnist_find("mnist", dir, sizeof dir));
    cr_assert_str_eq(dir, TINY);
    setenv("BORN_DATA", BORN_TEST_DATA_DIR "/idx", 1); /* holds no MNIST files: skipped */
    bool found = bn_mnist_find("mnist", dir, sizeof dir);
    cr_assert(!found || strcmp(dir, BORN_TEST_DATA_DIR "/idx") != 0);
    unlink(link);
    rmdir(tmp);
}

/* ---- CSV ------------------------------------------------------------------------------------ */
static char *write_temp(const char *text)
{
    static char path[64];
    snprintf(path, sizeof path, "/tmp/born-csv-test-XXXXXX");
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    size_t n = strlen(text);
    cr_assert_eq(write(fd, text, n), (ssize_t)n);
    close(fd);
    return path;
}

Test(csv, classification_by_name_takes_the_target_out_of_x)
{
    char *path = write_temp("a, label ,b\r\n1.5,2,-3\n\n 4e2 ,0,\"5\"\n");
    BNT_ASSERT_NO_LEAK({
        bn_dataset *d = bn_csv_load(path, (bn_csv_opts){.target = "label"});
        cr_assert_not_null(d, "%s", bn_error_message());
        bn_scope_begin();
        bn_tensor *x = bn_dataset_x(d), *y = bn_dataset_y(d);
        cr_assert(bn_shape_equal(bn_shape_of(x), BN_SHAPE(2, 2)));
        cr_assert_eq(bn_dtype_of(y), BN_I64);
        bnt_assert_values(x, (double[]){1.5, -3, 400, 5}, 4, 0, "x");
        bnt_assert_values(y, (double[]){2, 0}, 2, 0, "y");
        bn_scope_end();
        bn_dataset_free(d);
    });
    unlink(path);
}

Test(csv, regression_by_index_and_default_last_column)
{
    char *path = write_temp("x1;x2;y\n1;2;0.25\n3;4;-1.5\n5;6;7\n");
    BNT_ASSERT_NO_LEAK({
        bn_dataset *d = bn_csv_load(path, (bn_csv_opts){.regression = true, .delimiter = ';'});
        cr_assert_not_null(d, "%s", bn_error_message());
        bn_dataset *e = bn_csv_load(path, (bn_csv_opts){.regression = true, .delimiter = ';',
                                                        .target = "0"});
        cr_assert_not_null(e, "%s", bn_error_message());
        bn_scope_begin();
        bn_tensor *y = bn_dataset_y(d);
        cr_assert(bn_shape_equal(bn_shape_of(y), BN_SHAPE(3, 1)));
        cr_assert_eq(bn_dtype_of(y), BN_F32);
        bnt_assert_values(y, (double[]){0.25, -1.5, 7}, 3, 0, "y");
        bnt_assert_values(bn_dataset_x(e), (double[]){2, 0.25, 4, -1.5, 6, 7}, 6, 0, "x by index");
        bnt_assert_values(bn_dataset_y(e), (double[]){1, 3, 5}, 3, 0, "y by index");
        bn_scope_end();
        bn_dataset_free(d);
        bn_dataset_free(e);
    });
    unlink(path);
}

static void check_csv_error(const char *text, bn_csv_opts o, bn_status code, const char *a,
                            const char *b)
{
    char *path = write_temp(text);
    BNT_ASSERT_NO_LEAK({
        cr_assert_null(bn_csv_load(path, o), "should fail: %s", text);
        bnt_assert_error(code, "bn_csv_load", a, b, NULL);
    });
    unlink(path);
}

Test(csv, bad_cells_name_line_and_column)
{
    check_csv_error("a,b,c\n1,2,3\n4,x5,6\n", (bn_csv_opts){0}, BN_ERR_FORMAT,
                    "line 3 column 2", "'x5' is not a number");
    check_csv_error("a,b,c\n1,,3\n", (bn_csv_opts){0}, BN_ERR_FORMAT, "line 2 column 2",
                    "is not a number");
    check_csv_error("a,b,c\n1,2\n", (bn_csv_opts){0}, BN_ERR_FORMAT, "line 2 has 2 cells",
                    "the header has 3");
    check_csv_error("a,b,c\n1,2,3,4\n", (bn_csv_opts){0}, BN_ERR_FORMAT, "line 2 has more than 3",
                    "header has 3");
    check_csv_error("a,b,c\n1,2,1.5\n", (bn_csv_opts){0}, BN_ERR_FORMAT, "line 2 column 3",
                    "not a non-negative integer");
    check_csv_error("a,b,c\n1,2,-1\n", (bn_csv_opts){0}, BN_ERR_FORMAT, "'-1'",
                    "not a non-negative integer");
    check_csv_error("", (bn_csv_opts){0}, BN_ERR_FORMAT, "is empty", "header");
    check_csv_error("only\n1\n", (bn_csv_opts){0}, BN_ERR_FORMAT, "at least two columns",
                    "has 1");
    check_csv_error("a,b\n1,2\n", (bn_csv_opts){.target = "c"}, BN_ERR_ARG, "no column 'c'",
                    "[-2, 2)");
    check_csv_error("a,b\n1,2\n", (bn_csv_opts){.target = "2"}, BN_ERR_ARG, "no column '2'", "2");
}

Test(csv, missing_file_and_null_path)
{
    BNT_ASSERT_NO_LEAK({
        cr_assert_null(bn_csv_load("/nonexistent/x.csv", (bn_csv_opts){0}));
        bnt_assert_error(BN_ERR_IO, "bn_csv_load", "/nonexistent/x.csv", NULL);
        cr_assert_null(bn_csv_load(NULL, (bn_csv_opts){0}));
        bnt_assert_error(BN_ERR_ARG, "bn_csv_load", "path", NULL);
    });
}

/* ---- data sets ------------------------------------------------------------------------------ */
/* x (n, 2) with row i = [i, -i]; y (n) = i */
static bn_dataset *counting_dataset(int64_t n)
{
    bn_scope_begin();
    bn_tensor *y = bn_arange(0, (double)n, 1, BN_I64);
    bn_tensor *col = bn_unsqueeze(bn_to_dtype(y, BN_F32), 1);
    bn_tensor *x = bn_cat((bn_tensor *[]){col, bn_neg(col)}, 2, 1);
    bn_dataset *d = bn_dataset_new(x, y);
    bn_scope_end();
    cr_assert_not_null(d, "%s", bn_error_message());
    return d;
}

Test(dataset, new_checks_rows_and_holds_contiguous_copies_of_views)
{
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_tensor *x = bn_transpose(bn_arange(0, 6, 1, BN_F32), 0, 0);
        bn_tensor *xt = bn_transpose(bn_reshape(bn_arange(0, 6, 1, BN_F32), BN_SHAPE(2, 3)), 0, 1);
        bn_tensor *y = bn_arange(0, 3, 1, BN_I64);
        bn_dataset *d = bn_dataset_new(xt, y);
        cr_assert_not_null(d, "%s", bn_error_message());
        bnt_assert_values(bn_dataset_x(d), (double[]){0, 3, 1, 4, 2, 5}, 6, 0, "x");
        bn_dataset_free(d);
        cr_assert_null(bn_dataset_new(x, bn_arange(0, 5, 1, BN_I64)));
        bnt_assert_error(BN_ERR_SHAPE, "bn_dataset_new", "[6]", "[5]", "6 != 5", NULL);
        cr_assert_null(bn_dataset_new(bn_scalar(1, BN_F32), y));
        bnt_assert_error(BN_ERR_SHAPE, "bn_dataset_new", "x is []", NULL);
        cr_assert_null(bn_dataset_new(NULL, y));
        bnt_assert_error(BN_ERR_ARG, "bn_dataset_new", "x", NULL);
        bn_scope_end();
    });
}

Test(dataset, slice_is_a_view_of_rows)
{
    BNT_ASSERT_NO_LEAK({
        bn_dataset *d = counting_dataset(10);
        bn_dataset *s = bn_dataset_slice(d, 3, 4);
        cr_assert_not_null(s);
        bn_dataset_free(d);
        bn_scope_begin();
        bnt_assert_values(bn_dataset_y(s), (double[]){3, 4, 5, 6}, 4, 0, "y");
        bnt_assert_values(bn_dataset_x(s), (double[]){3, -3, 4, -4, 5, -5, 6, -6}, 8, 0, "x");
        bn_scope_end();
        bn_dataset_free(s);
        d = counting_dataset(10);
        cr_assert_null(bn_dataset_slice(d, 8, 3));
        bnt_assert_error(BN_ERR_ARG, "bn_dataset_slice", "[8, 11)", "10 rows", NULL);
        bn_dataset *e = bn_dataset_slice(d, 10, 0);
        cr_assert_eq(bn_dataset_len(e), 0);
        bn_dataset_free(e);
        bn_dataset_free(d);
        cr_assert_eq(bn_dataset_len(NULL), -1);
    });
}

Test(dataset, split_is_seeded_disjoint_and_complete)
{
    BNT_ASSERT_NO_LEAK({
        bn_dataset *d = counting_dataset(50);
        bn_dataset *tr, *va, *tr2, *va2;
        cr_assert_eq(bn_dataset_split(d, 0.2, 7, &tr, &va), BN_OK);
        cr_assert_eq(bn_dataset_split(d, 0.2, 7, &tr2, &va2), BN_OK);
        cr_assert_eq(bn_dataset_len(tr), 40);
        cr_assert_eq(bn_dataset_len(va), 10);
        bn_scope_begin();
        bnt_assert_equal(bn_dataset_y(va), bn_dataset_y(va2), "same seed, same split");
        bool seen[50] = {0};
        const int64_t *a = bn_tensor_data_i64(bn_dataset_y(tr));
        const int64_t *b = bn_tensor_data_i64(bn_dataset_y(va));
        const float *xa = bn_tensor_data_f32(bn_dataset_x(tr));
        for (int i = 0; i < 40; i++) {
            seen[a[i]] = true;
            cr_assert_eq(xa[2 * i], (float)a[i], "x rows follow y rows");
        }
        for (int i = 0; i < 10; i++) seen[b[i]] = true;
        for (int i = 0; i < 50; i++) cr_assert(seen[i], "row %d missing", i);
        bool sorted = true;
        for (int i = 1; i < 10; i++) sorted &= b[i] > b[i - 1];
        cr_assert_not(sorted, "validation rows are a shuffled pick");
        bn_scope_end();
        bn_dataset_free(tr);
        bn_dataset_free(va);
        bn_dataset_free(tr2);
        bn_dataset_free(va2);
        cr_assert_neq(bn_dataset_split(d, 1.0, 7, &tr, &va), BN_OK);
        cr_assert_null(tr);
        bnt_assert_error(BN_ERR_ARG, "bn_dataset_split", "val_fraction", "got 1", NULL);
        cr_assert_neq(bn_dataset_split(NULL, 0.5, 7, &tr, &va), BN_OK);
        bnt_assert_error(BN_ERR_ARG, "bn_dataset_split", "d", NULL);
        bn_dataset_free(d);
    });
}

/* ---- loader --------------------------------------------------------------------------------- */
/* Runs one epoch; writes the y values seen, in order, into seen (n of them) and the batch sizes
 * into sizes. Returns the number of batches. */
static int run_epoch(bn_loader *l, int64_t *seen, int64_t *sizes)
{
    int nb = 0, k = 0;
    bn_tensor *x, *y;
    for (;;) {
        bn_scope_begin();
        bool more = bn_loader_next(l, &x, &y);
        if (more) {
            cr_assert_eq(bn_dim(x, 0), bn_dim(y, 0));
            cr_assert(bn_is_contiguous(x));
            const int64_t *py = bn_tensor_data_i64(y);
            const float *px = bn_tensor_data_f32(x);
            for (int64_t i = 0; i < bn_dim(y, 0); i++) {
                cr_assert_eq(px[2 * i + 1], -(float)py[i], "x row matches its label");
                seen[k++] = py[i];
            }
            sizes[nb++] = bn_dim(y, 0);
        }
        bn_scope_end();
        if (!more) break;
    }
    bnt_assert_no_error("epoch end");
    return nb;
}

Test(loader, sequential_batches_with_and_without_drop_last)
{
    BNT_ASSERT_NO_LEAK({
        bn_dataset *d = counting_dataset(10);
        int64_t seen[10], sizes[10];
        bn_loader *l = bn_loader_new(d, (bn_loader_opts){.batch_size = 4});
        cr_assert_eq(bn_loader_num_batches(l), 3);
        cr_assert_eq(run_epoch(l, seen, sizes), 3);
        for (int i = 0; i < 10; i++) cr_assert_eq(seen[i], i);
        cr_assert_eq(sizes[2], 2);
        bn_loader_free(l);
        l = bn_loader_new(d, (bn_loader_opts){.batch_size = 4, .drop_last = true});
        cr_assert_eq(bn_loader_num_batches(l), 2);
        cr_assert_eq(run_epoch(l, seen, sizes), 2);
        cr_assert_eq(sizes[1], 4);
        /* the next call starts the next epoch */
        cr_assert_eq(run_epoch(l, seen, sizes), 2);
        bn_loader_free(l);
        bn_dataset_free(d);
    });
}

Test(loader, shuffle_is_a_seeded_permutation_per_epoch)
{
    BNT_ASSERT_NO_LEAK({
        bn_dataset *d = counting_dataset(37);
        int64_t a[37], b[37], c[37], sz[37];
        bn_loader *l1 = bn_loader_new(d, (bn_loader_opts){.batch_size = 5, .shuffle = true, .seed = 3});
        bn_loader *l2 = bn_loader_new(d, (bn_loader_opts){.batch_size = 8, .shuffle = true, .seed = 3,
                                                          .prefetch = true});
        bn_dataset_free(d); /* the loaders hold the data */
        run_epoch(l1, a, sz);
        run_epoch(l2, b, sz);
        cr_assert_eq(memcmp(a, b, sizeof a), 0, "order depends on seed and epoch only");
        bool seen[37] = {0}, identity = true;
        for (int i = 0; i < 37; i++) {
            seen[a[i]] = true;
            identity &= a[i] == i;
        }
        for (int i = 0; i < 37; i++) cr_assert(seen[i]);
        cr_assert_not(identity);
        run_epoch(l1, c, sz);
        cr_assert_neq(memcmp(a, c, sizeof a), 0, "a new epoch, a new order");
        cr_assert_eq(bn_loader_start_epoch(l1, 0), BN_OK);
        run_epoch(l1, c, sz);
        cr_assert_eq(memcmp(a, c, sizeof a), 0, "epoch 0 again, the same order");
        cr_assert_eq(memcmp(bn_loader_order(l1), a, sizeof a), 0);
        bn_loader_free(l1);
        bn_loader_free(l2);
    });
}

Test(loader, prefetch_gives_the_same_batches_and_joins_cleanly)
{
    BNT_ASSERT_NO_LEAK({
        bn_dataset *d = counting_dataset(103);
        int64_t a[103], b[103], sa[103], sb[103];
        for (int round = 0; round < 3; round++) {
            bn_loader *p = bn_loader_new(d, (bn_loader_opts){.batch_size = 10, .shuffle = true,
                                                             .seed = 11, .prefetch = true});
            bn_loader *s = bn_loader_new(d, (bn_loader_opts){.batch_size = 10, .shuffle = true,
                                                             .seed = 11});
            cr_assert_eq(run_epoch(p, a, sa), 11);
            run_epoch(s, b, sb);
            cr_assert_eq(memcmp(a, b, sizeof a), 0);
            cr_assert_eq(memcmp(sa, sb, sizeof(int64_t) * 11), 0);
            /* free in the middle of an epoch, with a batch prepared and not taken */
            bn_tensor *x, *y;
            bn_scope_begin();
            cr_assert(bn_loader_next(p, &x, &y));
            bn_scope_end();
            bn_loader_free(p);
            bn_loader_free(s);
        }
        bn_dataset_free(d);
    });
}

Test(loader, empty_data_set_and_bad_arguments)
{
    BNT_ASSERT_NO_LEAK({
        bn_dataset *d = counting_dataset(10);
        bn_dataset *e = bn_dataset_slice(d, 0, 0);
        bn_loader *l = bn_loader_new(e, (bn_loader_opts){.batch_size = 4, .prefetch = true});
        bn_tensor *x, *y;
        cr_assert_eq(bn_loader_num_batches(l), 0);
        cr_assert_not(bn_loader_next(l, &x, &y));
        cr_assert_null(x);
        bnt_assert_no_error("empty epoch");
        bn_loader_free(l);
        cr_assert_null(bn_loader_new(d, (bn_loader_opts){.batch_size = -2}));
        bnt_assert_error(BN_ERR_ARG, "bn_loader_new", "batch_size", "-2", NULL);
        cr_assert_null(bn_loader_new(NULL, (bn_loader_opts){0}));
        bnt_assert_error(BN_ERR_ARG, "bn_loader_new", "d", NULL);
        l = bn_loader_new(d, (bn_loader_opts){0});
        cr_assert_eq(bn_loader_num_batches(l), 10);
        cr_assert_not(bn_loader_next(l, NULL, &y));
        bnt_assert_error(BN_ERR_ARG, "bn_loader_next", "x", NULL);
        cr_assert_neq(bn_loader_start_epoch(l, -1), BN_OK);
        bnt_assert_error(BN_ERR_ARG, "bn_loader_start_epoch", "epoch", "-1", NULL);
        cr_assert_not(bn_loader_next(NULL, &x, &y));
        bnt_assert_error(BN_ERR_ARG, "bn_loader_next", "l", NULL);
        bn_loader_free(l);
        bn_loader_free(NULL);
        bn_dataset_free(e);
        bn_dataset_free(d);
    });
}
