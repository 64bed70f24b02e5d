/* tests/unit/test_text.c — text data for language models (gpt.h): the byte and character
 * tokenizers (the character vocabulary against Python's sorted(set(text)), from
 * scripts/gen_gpt.py), their JSON form, the token data set and its nanoGPT split, the loader of
 * random windows (x/y shifted by one, offsets from born's Philox generator, reproducible and
 * resumable), and bad input: unknown characters, malformed UTF-8, empty and missing files. */
#include "bn_test.h"

#include "born/gpt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void fini(void) { bnt_release_kept(); }
TestSuite(text, .fini = fini);

/* The same text as scripts/gen_gpt.py's TEXT. */
static const char sample[] = "First Citizen:\nBefore we proceed, h\xc3\xa9llo w\xc3\xb6rld "
                             "\xe2\x98\x83 \xf0\x9f\x98\x80 zebra!\n";

static void write_file(const char *path, const char *text, size_t n)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(text, 1, n, f), n);
    fclose(f);
}

/* ---- tokenizers ------------------------------------------------------------------------------ */

Test(text, char_vocabulary_is_pythons_sorted_set)
{
    fx_file *f = fx_open("gpt.txt");
    bn_tokenizer *t = bn_tokenizer_chars(sample, strlen(sample));
    cr_assert_not_null(t, "%s", bn_error_message());
    cr_assert_str_eq(bn_tokenizer_type(t), "char");
    bn_tensor *vocab = bnt_keep(fx_tensor(f, "chars", "vocab"));
    bn_tensor *want = bnt_keep(fx_tensor(f, "chars", "ids"));
    cr_assert_eq(bn_tokenizer_vocab_size(t), bn_numel(vocab));
    int64_t *ids, n;
    cr_assert_eq(bn_tokenizer_encode(t, sample, strlen(sample), &ids, &n), BN_OK, "%s",
                 bn_error_message());
    bn_tensor *got = bnt_keep(bn_from_data(ids, BN_SHAPE(n), BN_I64));
    bnt_assert_equal(got, want, "ids of the sample");
    /* decoding gives the text back, multi-byte characters included */
    size_t len;
    char *back = bn_tokenizer_decode(t, ids, n, &len);
    cr_assert_not_null(back);
    cr_assert_eq(len, strlen(sample));
    cr_assert_str_eq(back, sample);
    free(back);
    free(ids);
    bn_tokenizer_free(t);
    fx_close(f);
}

Test(text, bytes_round_trip_any_data)
{
    bn_tokenizer *t = bn_tokenizer_bytes();
    cr_assert_eq(bn_tokenizer_vocab_size(t), 256);
    cr_assert_str_eq(bn_tokenizer_type(t), "byte");
    const char data[] = {'a', 0, (char)0xff, (char)0xc3, '\n'}; /* NUL and invalid UTF-8 too */
    int64_t *ids, n;
    cr_assert_eq(bn_tokenizer_encode(t, data, sizeof data, &ids, &n), BN_OK);
    cr_assert_eq(n, 5);
    cr_assert(ids[0] == 'a' && ids[1] == 0 && ids[2] == 255 && ids[3] == 0xc3 && ids[4] == 10);
    size_t len;
    char *back = bn_tokenizer_decode(t, ids, n, &len);
    cr_assert_eq(len, sizeof data);
    cr_assert_eq(memcmp(back, data, len), 0);
    free(back);
    free(ids);
    bn_tokenizer_free(t);
}

Test(text, tokenizers_round_trip_through_json)
{
    bn_tokenizer *t = bn_tokenizer_chars(sample, strlen(sample));
    char *json = bn_tokenizer_to_json(t);
    cr_assert_not_null(json);
    cr_assert(strstr(json, "\"type\":\"char\"") && strstr(json, "\"vocab\":\""), "%s", json);
    bn_tokenizer *back = bn_tokenizer_from_json(json);
    cr_assert_not_null(back, "%s", bn_error_message());
    cr_assert_eq(bn_tokenizer_vocab_size(back), bn_tokenizer_vocab_size(t));
    int64_t *a, *b, na, nb;
    cr_assert_eq(bn_tokenizer_encode(t, sample, strlen(sample), &a, &na), BN_OK);
    cr_assert_eq(bn_tokenizer_encode(back, sample, strlen(sample), &b, &nb), BN_OK);
    cr_assert_eq(na, nb);
    cr_assert_arr_eq(a, b, (size_t)na * sizeof *a);
    free(a);
    free(b);
    free(json);
    bn_tokenizer_free(back);
    bn_tokenizer_free(t);

    t = bn_tokenizer_bytes();
    json = bn_tokenizer_to_json(t);
    cr_assert_str_eq(json, "{\"type\":\"byte\"}");
    back = bn_tokenizer_from_json(json);
    cr_assert_eq(bn_tokenizer_vocab_size(back), 256);
    free(json);
    bn_tokenizer_free(back);
    bn_tokenizer_free(t);

    /* a vocabulary holding the NUL character survives JSON too */
    const char with_nul[] = {'b', 0, 'a'};
    t = bn_tokenizer_chars(with_nul, 3);
    cr_assert_eq(bn_tokenizer_vocab_size(t), 3);
    json = bn_tokenizer_to_json(t);
    back = bn_tokenizer_from_json(json);
    cr_assert_not_null(back, "%s", bn_error_message());
    cr_assert_eq(bn_tokenizer_vocab_size(back), 3);
    free(json);
    bn_tokenizer_free(back);
    bn_tokenizer_free(t);
}

Test(text, tokenizer_errors_name_the_character_and_offset)
{
    bn_tokenizer *t = bn_tokenizer_chars("abc", 3);
    int64_t *ids = (int64_t *)1, n = 5;
    cr_assert_eq(bn_tokenizer_encode(t, "abxa", 4, &ids, &n), BN_ERR_ARG);
    cr_assert_null(ids);
    cr_assert_eq(n, 0);
    bnt_assert_error(BN_ERR_ARG, "bn_tokenizer_encode", "'x' (U+0078)", "byte 2",
                     "3 characters", NULL);
    cr_assert_eq(bn_tokenizer_encode(t, "a\xc3\xa9", 3, &ids, &n), BN_ERR_ARG);
    bnt_assert_error(BN_ERR_ARG, "U+00E9", "byte 1", NULL);
    cr_assert_eq(bn_tokenizer_encode(t, "ab\n", 3, &ids, &n), BN_ERR_ARG);
    bnt_assert_error(BN_ERR_ARG, "U+000A", NULL);
    cr_assert_eq(bn_tokenizer_encode(t, "a\xc3", 2, &ids, &n), BN_ERR_FORMAT);
    bnt_assert_error(BN_ERR_FORMAT, "malformed UTF-8 at byte 1", NULL);
    cr_assert_eq(bn_tokenizer_encode(t, NULL, 2, &ids, &n), BN_ERR_ARG);
    bnt_assert_error(BN_ERR_ARG, "bn_tokenizer_encode", "text", NULL);
    cr_assert_eq(bn_tokenizer_encode(NULL, "a", 1, &ids, &n), BN_ERR_ARG);
    bnt_assert_error(BN_ERR_ARG, "bn_tokenizer_encode", NULL);
    int64_t bad[2] = {0, 3};
    cr_assert_null(bn_tokenizer_decode(t, bad, 2, NULL));
    bnt_assert_error(BN_ERR_ARG, "bn_tokenizer_decode", "id 3 at position 1", "[0, 3)", NULL);
    cr_assert_null(bn_tokenizer_decode(t, bad, -1, NULL));
    bnt_assert_error(BN_ERR_ARG, "n is -1", NULL);
    bn_tokenizer_free(t);

    cr_assert_null(bn_tokenizer_chars("", 0));
    bnt_assert_error(BN_ERR_ARG, "bn_tokenizer_chars", "empty", NULL);
    cr_assert_null(bn_tokenizer_chars("ab\xed\xa0\x80", 5)); /* a UTF-16 surrogate */
    bnt_assert_error(BN_ERR_FORMAT, "malformed UTF-8 at byte 2", NULL);
    cr_assert_null(bn_tokenizer_chars("\xc0\xaf", 2)); /* overlong '/' */
    bnt_assert_error(BN_ERR_FORMAT, "malformed UTF-8 at byte 0", NULL);

    cr_assert_null(bn_tokenizer_from_json("{\"type\":\"bpe\"}"));
    bnt_assert_error(BN_ERR_FORMAT, "bn_tokenizer_from_json", "\"bpe\"", "\"char\"", NULL);
    cr_assert_null(bn_tokenizer_from_json("{\"type\":\"char\",\"vocab\":\"ba\"}"));
    bnt_assert_error(BN_ERR_FORMAT, "distinct characters in ascending order", NULL);
    cr_assert_null(bn_tokenizer_from_json("{\"type\":\"char\",\"vocab\":\"aab\"}"));
    bnt_assert_error(BN_ERR_FORMAT, "ascending order", NULL);
    cr_assert_null(bn_tokenizer_from_json("{\"type\":\"char\"}"));
    bnt_assert_error(BN_ERR_FORMAT, "non-empty string \"vocab\"", NULL);
    cr_assert_null(bn_tokenizer_from_json("{\"type\":"));
    bnt_assert_error(BN_ERR_FORMAT, "not a JSON object", NULL);
    cr_assert_null(bn_tokenizer_from_json(NULL));
    bnt_assert_error(BN_ERR_ARG, "json", NULL);
    cr_assert_eq(bn_tokenizer_vocab_size(NULL), -1);
    bn_tokenizer_free(NULL);
}

/* ---- the data set ---------------------------------------------------------------------------- */

static char tmp[256];

static const char *tmp_file(const char *name)
{
    snprintf(tmp, sizeof tmp, "/tmp/born_test_text_%d_%s", (int)getpid(), name);
    return tmp;
}

Test(text, data_set_splits_like_nanogpt)
{
    fx_file *f = fx_open("gpt.txt");
    const char *path = tmp_file("sample.txt");
    write_file(path, sample, strlen(sample));
    bn_tensor *vocab = bnt_keep(fx_tensor(f, "chars", "vocab"));
    BNT_ASSERT_NO_LEAK({
        bn_text_data *d = bn_text_data_load(path, (bn_text_data_opts){0});
        cr_assert_not_null(d, "%s", bn_error_message());
        int64_t ntrain = (int64_t)fx_scalar(f, "chars", "train_len");
        bn_tensor *ids = fx_tensor(f, "chars", "ids");
        cr_assert_eq(bn_text_data_len(d, BN_SPLIT_TRAIN), ntrain);
        cr_assert_eq(bn_text_data_len(d, BN_SPLIT_VAL), bn_numel(ids) - ntrain);
        bn_tensor *tr = bn_text_data_tokens(d, BN_SPLIT_TRAIN);
        bn_tensor *va = bn_text_data_tokens(d, BN_SPLIT_VAL);
        bn_tensor *want_tr = bn_narrow(ids, 0, 0, ntrain);
        bn_tensor *want_va = bn_narrow(ids, 0, ntrain, bn_numel(ids) - ntrain);
        bnt_assert_equal(tr, want_tr, "train tokens");
        bnt_assert_equal(va, want_va, "val tokens");
        cr_assert_eq(bn_tokenizer_vocab_size(bn_text_data_tokenizer(d)), bn_numel(vocab));
        bn_release(want_tr);
        bn_release(want_va);
        bn_release(tr);
        bn_release(va);
        bn_release(ids);
        bn_text_data_free(d);

        /* bytes, a custom fraction, a limit that would cut a character in two */
        d = bn_text_data_load(path, (bn_text_data_opts){.bytes = true, .val_fraction = 0.25});
        cr_assert_eq(bn_text_data_len(d, BN_SPLIT_TRAIN) + bn_text_data_len(d, BN_SPLIT_VAL),
                     (int64_t)strlen(sample));
        cr_assert_eq(bn_text_data_len(d, BN_SPLIT_TRAIN), (int64_t)(strlen(sample) * 0.75));
        bn_text_data_free(d);
        size_t cut = (size_t)(strchr(sample, (char)0xc3) - sample) + 1; /* inside "é" */
        d = bn_text_data_load(path, (bn_text_data_opts){.limit = (int64_t)cut});
        cr_assert_not_null(d, "%s", bn_error_message());
        cr_assert_eq(bn_text_data_len(d, BN_SPLIT_TRAIN) + bn_text_data_len(d, BN_SPLIT_VAL),
                     (int64_t)cut - 1);
        bn_text_data_free(d);

        /* an explicit tokenizer must cover the file */
        bn_tokenizer *t = bn_tokenizer_chars("abc", 3);
        cr_assert_null(bn_text_data_load(path, (bn_text_data_opts){.tokenizer = t}));
        bnt_assert_error(BN_ERR_ARG, "bn_text_data_load", path, "'F' (U+0046) at byte 0", NULL);
        bn_tokenizer_free(t);
    });
    unlink(path);
    fx_close(f);
}

Test(text, data_set_rejects_missing_empty_and_odd_input)
{
    BNT_ASSERT_NO_LEAK({
        cr_assert_null(bn_text_data_load("/nonexistent/input.txt", (bn_text_data_opts){0}));
        bnt_assert_error(BN_ERR_IO, "bn_text_data_load", "/nonexistent/input.txt",
                         "No such file", NULL);
        const char *empty = tmp_file("empty.txt");
        write_file(empty, "", 0);
        cr_assert_null(bn_text_data_load(empty, (bn_text_data_opts){0}));
        bnt_assert_error(BN_ERR_ARG, "bn_text_data_load", "holds no text", NULL);
        unlink(empty);
        const char *dir = tmp_file("dir");
        mkdir(dir, 0700);
        cr_assert_null(bn_text_data_load(dir, (bn_text_data_opts){0}));
        bnt_assert_error(BN_ERR_IO, "bn_text_data_load", dir, NULL);
        rmdir(dir);
        const char *bad = tmp_file("bad.txt");
        write_file(bad, "ok\xff", 3);
        cr_assert_null(bn_text_data_load(bad, (bn_text_data_opts){0}));
        bnt_assert_error(BN_ERR_FORMAT, "malformed UTF-8 at byte 2", NULL);
        bn_text_data *d = bn_text_data_load(bad, (bn_text_data_opts){.bytes = true});
        cr_assert_not_null(d, "bytes take any file");
        cr_assert_eq(bn_text_data_len(d, (bn_text_split)7), -1);
        bnt_assert_error(BN_ERR_ARG, "split is 7", NULL);
        bn_text_data_free(d);
        unlink(bad);
        cr_assert_null(bn_text_data_from_text("abc", 3, (bn_text_data_opts){.val_fraction = 1}));
        bnt_assert_error(BN_ERR_ARG, "val_fraction is 1", "[0, 1)", NULL);
        cr_assert_null(bn_text_data_from_text("abc", 3, (bn_text_data_opts){.limit = -1}));
        bnt_assert_error(BN_ERR_ARG, "limit is -1", NULL);
        cr_assert_null(bn_text_data_load(NULL, (bn_text_data_opts){0}));
        bnt_assert_error(BN_ERR_ARG, "path", NULL);
    });
}

/* ---- the loader ------------------------------------------------------------------------------ */

static bn_text_data *counting_data(int64_t n)
{
    /* text whose character ids are easy to follow: letters in a cycle */
    char *text = malloc((size_t)n);
    for (int64_t i = 0; i < n; i++) text[i] = (char)('a' + (i * 7 + i / 26) % 26);
    bn_text_data *d = bn_text_data_from_text(text, (size_t)n, (bn_text_data_opts){0});
    free(text);
    cr_assert_not_null(d, "%s", bn_error_message());
    return d;
}

Test(text, loader_windows_are_shifted_pairs_at_seeded_offsets)
{
    bn_text_data *d = counting_data(5000);
    int64_t B = 6, T = 9, len = bn_text_data_len(d, BN_SPLIT_VAL);
    bn_text_loader *l = bn_text_loader_new(d, BN_SPLIT_VAL, B, T, 42);
    cr_assert_not_null(l, "%s", bn_error_message());
    bn_tensor *val = bn_text_data_tokens(d, BN_SPLIT_VAL);
    const int64_t *tok = bn_tensor_data_i64(val);
    bn_manual_seed(3);
    bn_rng_state thread_before = bn_rng_get_state();
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_tensor *x, *y;
        cr_assert_eq(bn_text_loader_next(l, &x, &y), BN_OK, "%s", bn_error_message());
        cr_assert(bn_dtype_of(x) == BN_I64 && bn_dim(x, 0) == B && bn_dim(x, 1) == T);
        const int64_t *px = bn_tensor_data_i64(x), *py = bn_tensor_data_i64(y);
        /* the offsets are born's randint over [0, len - T) with the loader's seed */
        bn_manual_seed(42);
        bn_tensor *ix = bn_randint(0, len - T, BN_SHAPE(B), BN_I64);
        const int64_t *off = bn_tensor_data_i64(ix);
        for (int64_t b = 0; b < B; b++)
            for (int64_t t = 0; t < T; t++) {
                cr_assert_eq(px[b * T + t], tok[off[b] + t], "x[%lld, %lld]", (long long)b,
                             (long long)t);
                cr_assert_eq(py[b * T + t], tok[off[b] + t + 1], "y[%lld, %lld]", (long long)b,
                             (long long)t);
            }
        bn_scope_end();
    });
    bn_manual_seed(3);
    /* the loader leaves the thread's generator where it was */
    bn_tensor *x, *y;
    bn_scope_begin();
    cr_assert_eq(bn_text_loader_next(l, &x, &y), BN_OK);
    bn_scope_end();
    bn_rng_state thread_after = bn_rng_get_state();
    cr_assert(thread_before.seed == thread_after.seed &&
              thread_before.offset == thread_after.offset);
    bn_release(val);
    bn_text_loader_free(l);
    bn_text_data_free(d);
}

Test(text, loader_is_reproducible_and_resumable)
{
    bn_text_data *d = counting_data(3000);
    bn_text_loader *a = bn_text_loader_new(d, BN_SPLIT_TRAIN, 4, 16, 7);
    bn_text_loader *b = bn_text_loader_new(d, BN_SPLIT_TRAIN, 4, 16, 7);
    bn_text_loader *c = bn_text_loader_new(d, BN_SPLIT_TRAIN, 4, 16, 8);
    bn_text_data_free(d); /* loaders keep the tokens */
    bn_scope_begin();
    bn_tensor *xa, *ya, *xb, *yb, *xc, *yc;
    bn_rng_state mid = {0};
    bn_tensor *saved_x = NULL;
    for (int step = 0; step < 5; step++) {
        if (step == 3) mid = bn_text_loader_get_state(a);
        cr_assert_eq(bn_text_loader_next(a, &xa, &ya), BN_OK);
        cr_assert_eq(bn_text_loader_next(b, &xb, &yb), BN_OK);
        cr_assert_eq(bn_text_loader_next(c, &xc, &yc), BN_OK);
        bnt_assert_equal(xa, xb, "same seed, same x");
        bnt_assert_equal(ya, yb, "same seed, same y");
        cr_assert(bn_item(bn_sum(bn_ne(xa, xc), BN_ALL, false)) > 0, "another seed differs");
        if (step == 3) saved_x = xa;
    }
    cr_assert_eq(bn_text_loader_set_state(c, mid), BN_OK);
    cr_assert_eq(bn_text_loader_next(c, &xc, &yc), BN_OK);
    bnt_assert_equal(xc, saved_x, "a restored state continues the sequence");
    bn_scope_end();
    bn_text_loader_free(a);
    bn_text_loader_free(b);
    bn_text_loader_free(c);
}

Test(text, loader_rejects_bad_arguments)
{
    bn_text_data *d = counting_data(100); /* 90 train, 10 val tokens */
    BNT_ASSERT_NO_LEAK({
        cr_assert_null(bn_text_loader_new(d, BN_SPLIT_VAL, 2, 10, 0));
        bnt_assert_error(BN_ERR_ARG, "bn_text_loader_new", "val split holds 10 tokens",
                         "context + 1 = 11", NULL);
        cr_assert_null(bn_text_loader_new(d, BN_SPLIT_TRAIN, 0, 4, 0));
        bnt_assert_error(BN_ERR_ARG, "batch 0", NULL);
        cr_assert_null(bn_text_loader_new(NULL, BN_SPLIT_TRAIN, 1, 4, 0));
        bnt_assert_error(BN_ERR_ARG, "bn_text_loader_new", "d", NULL);
        bn_text_loader *l = bn_text_loader_new(d, BN_SPLIT_VAL, 3, 9, 0); /* the largest fit */
        cr_assert_not_null(l, "%s", bn_error_message());
        bn_tensor *x = NULL;
        cr_assert_eq(bn_text_loader_next(l, &x, NULL), BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "bn_text_loader_next", "y", NULL);
        cr_assert_null(x);
        bn_text_loader_free(l);
    });
    bn_text_data_free(d);
}
