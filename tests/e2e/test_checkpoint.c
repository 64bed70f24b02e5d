/* tests/e2e/test_checkpoint.c — the born commands that use files, run as a user runs them (CTest
 * passes the binary in BORN_BIN): `born train --out/--checkpoint/--resume` (resuming gives
 * bit-identical weights: 2 epochs straight vs 1 + resume 1), `born eval --model`, `born inspect`
 * and `born convert`, and exit codes 1 / 2 with clear messages for bad files and command lines.
 * Data: the tiny MNIST-shaped set of scripts/gen_idx_fixture.py (tests/data/idx/tiny). */
#include "bn_test.h"
#include "json_dom.h"

#include "born/born.h"

#include <fcntl.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define TINY BORN_TEST_DATA_DIR "/idx/tiny"


/* Runs born and expects exit code 0. */
static void run_ok(const char *const *args)
{
    bnt_run_result r = bnt_run_born(args);
    cr_assert_eq(r.exit_code, 0, "exit %d, stderr: %s", r.exit_code, r.err);
    bnt_run_result_free(&r);
}
#define RUN_OK(...) run_ok((const char *const[]){__VA_ARGS__, NULL})

/* Runs born and expects exit code `code` with stderr holding a and b (b may be NULL). */
static void run_fails(int code, const char *a, const char *b, const char *const *args)
{
    bnt_run_result r = bnt_run_born(args);
    cr_assert_eq(r.exit_code, code, "exit %d (want %d), stderr: %s", r.exit_code, code, r.err);
    cr_assert(strstr(r.err, a), "stderr lacks '%s': %s", a, r.err);
    if (b) cr_assert(strstr(r.err, b), "stderr lacks '%s': %s", b, r.err);
    bnt_run_result_free(&r);
}
#define RUN_FAILS(code, a, b, ...) run_fails(code, a, b, (const char *const[]){__VA_ARGS__, NULL})

/* A fresh directory for one test's files; *path receives it. */
static void temp_dir(char *path, size_t n)
{
    snprintf(path, n, "/tmp/born-ckpt-XXXXXX");
    cr_assert_not_null(mkdtemp(path));
}

static void remove_tree(const char *dir)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

/* Every tensor of a and b has the same name, dtype, shape and bytes. */
static void assert_same_tensors(const char *a, const char *b)
{
    bn_loaded la = {0}, lb = {0};
    cr_assert_eq(bn_load_tensors(a, (bn_load_opts){0}, &la), BN_OK, "%s", bn_error_message());
    cr_assert_eq(bn_load_tensors(b, (bn_load_opts){0}, &lb), BN_OK, "%s", bn_error_message());
    cr_assert_eq(la.tensors.count, lb.tensors.count);
    cr_assert_gt(la.tensors.count, 0);
    for (int i = 0; i < la.tensors.count; i++) {
        int j = 0;
        while (j < lb.tensors.count && strcmp(la.tensors.names[i], lb.tensors.names[j])) j++;
        cr_assert_lt(j, lb.tensors.count, "%s: no %s", b, la.tensors.names[i]);
        const bn_tensor *x = la.tensors.tensors[i], *y = lb.tensors.tensors[j];
        cr_assert_eq(bn_dtype_of(x), bn_dtype_of(y));
        cr_assert(bn_shape_equal(bn_shape_of(x), bn_shape_of(y)));
        size_t bytes = (size_t)bn_numel(x) * bn_dtype_size(bn_dtype_of(x));
        cr_assert_eq(memcmp(bn_tensor_data((bn_tensor *)x), bn_tensor_data((bn_tensor *)y), bytes), 0,
                     "%s differs between %s and %s", la.tensors.names[i], a, b);
    }
    bn_loaded_free(&la);
    bn_loaded_free(&lb);
}

/* ---- train --out / --checkpoint / --resume -------------------------------------------------- */
Test(cli_checkpoint, resume_after_one_epoch_gives_bit_identical_weights)
{
    char dir[64], straight[128], resumed[128], ckdir[128], ck1[160], ck2[160];
    temp_dir(dir, sizeof dir);
    snprintf(straight, sizeof straight, "%s/straight.born", dir);
    snprintf(resumed, sizeof resumed, "%s/resumed.born", dir);
    snprintf(ckdir, sizeof ckdir, "%s/ck", dir);
    snprintf(ck1, sizeof ck1, "%s/epoch-0001.born", ckdir);
    snprintf(ck2, sizeof ck2, "%s/epoch-0002.born", ckdir);
    RUN_OK("train", "--data", TINY, "--epochs", "2", "--batch", "32", "--seed", "7", "--optim",
           "adam", "--checkpoint", ckdir, "--checkpoint-every", "1", "--out", straight);
    cr_assert_eq(access(ck1, R_OK), 0);
    cr_assert_eq(access(ck2, R_OK), 0);
    /* resumed with another thread count: the batch order is a function of (seed, epoch) */
    RUN_OK("train", "--data", TINY, "--epochs", "2", "--batch", "32", "--seed", "7", "--optim",
           "adam", "--resume", ck1, "--threads", "1", "--out", resumed);
    assert_same_tensors(straight, resumed);
    /* the checkpoint after epoch 2 holds the same model as the final file */
    bn_loaded l = {0};
    cr_assert_eq(bn_load_tensors(ck2, (bn_load_opts){.verify = true}, &l), BN_OK, "%s",
                 bn_error_message());
    cr_assert_str_eq(bn_metadata_get(&l.metadata, "epoch"), "2");
    cr_assert_str_eq(bn_metadata_get(&l.metadata, "optim.name"), "Adam");
    jv hist;
    const char *err;
    size_t pos;
    cr_assert(jv_parse(bn_metadata_get(&l.metadata, "history"), &hist, &err, &pos));
    cr_assert_eq(hist.kind, JV_ARRAY);
    cr_assert_eq(hist.n, 2, "two epochs in the history");
    jv_free(&hist);
    cr_assert_not_null(strstr(l.config_json, "\"model\":\"mlp\""), "%s", l.config_json);
    bn_loaded_free(&l);
    remove_tree(dir);
}

Test(cli_checkpoint, resume_rejects_a_checkpoint_of_another_model_or_optimizer)
{
    char dir[64], ckdir[128], ck1[160], plain[128];
    temp_dir(dir, sizeof dir);
    snprintf(ckdir, sizeof ckdir, "%s/ck", dir);
    snprintf(ck1, sizeof ck1, "%s/epoch-0001.born", ckdir);
    snprintf(plain, sizeof plain, "%s/plain.born", dir);
    RUN_OK("train", "--data", TINY, "--limit", "64", "--checkpoint", ckdir, "--out", plain);
    RUN_FAILS(1, "cannot resume", "does not hold this model", "train", "--data", TINY, "--limit",
              "64", "--model", "cnn", "--resume", ck1);
    RUN_FAILS(1, "holds Adam state, the optimizer is SGD", NULL, "train", "--data", TINY,
              "--limit", "64", "--optim", "sgd", "--resume", ck1);
    RUN_FAILS(1, "is not a checkpoint", NULL, "train", "--data", TINY, "--limit", "64",
              "--resume", plain);
    RUN_FAILS(1, "cannot open", "/nonexistent.born", "train", "--data", TINY, "--resume",
              "/nonexistent.born");
    /* other options than the first run's: it runs, with a warning per option */
    bnt_run_result r = BNT_RUN_BORN("train", "--data", TINY, "--limit", "64", "--epochs", "2", "--seed",
                            "3", "--resume", ck1);
    cr_assert_eq(r.exit_code, 0, "%s", r.err);
    cr_assert(strstr(r.err, "warning: --seed is 3 but"), "%s", r.err);
    cr_assert(strstr(r.err, "was saved with 0"), "%s", r.err);
    cr_assert(strstr(r.out, "epoch 2/2"), "%s", r.out);
    bnt_run_result_free(&r);
    remove_tree(dir);
}

Test(cli_checkpoint, bad_save_options_exit_2)
{
    RUN_FAILS(2, "--out: 'model.txt' must end in .born or .safetensors", NULL, "train", "--out",
              "model.txt");
    RUN_FAILS(2, "--checkpoint-every needs --checkpoint DIR", NULL, "train", "--checkpoint-every",
              "2");
    RUN_FAILS(2, "--checkpoint-every must be an integer in [1, 100000], got '0'", NULL, "train",
              "--checkpoint-every", "0", "--checkpoint", "/tmp");
}

/* ---- eval ------------------------------------------------------------------------------------- */
Test(cli_checkpoint, eval_prints_accuracy_and_the_confusion_matrix_of_a_saved_model)
{
    char dir[64], model[128], st[128];
    temp_dir(dir, sizeof dir);
    snprintf(model, sizeof model, "%s/m.born", dir);
    snprintf(st, sizeof st, "%s/m.safetensors", dir);
    RUN_OK("train", "--data", TINY, "--epochs", "2", "--out", model);
    bnt_run_result r = BNT_RUN_BORN("eval", "--model", model, "--data", TINY);
    cr_assert_eq(r.exit_code, 0, "%s", r.err);
    cr_assert(strstr(r.out, "test accuracy "), "%s", r.out);
    cr_assert(strstr(r.out, "(mlp)"), "%s", r.out);
    cr_assert(strstr(r.out, "confusion matrix"), "%s", r.out);
    cr_assert(strstr(r.out, "Ankle boot"), "%s", r.out);
    bnt_run_result_free(&r);
    /* the same through safetensors (the name travels in the metadata) */
    RUN_OK("convert", model, st);
    r = BNT_RUN_BORN("eval", "--model", st, "--data", TINY, "--json");
    cr_assert_eq(r.exit_code, 0, "%s", r.err);
    jv o;
    const char *err;
    size_t pos;
    cr_assert(jv_parse(r.out, &o, &err, &pos), "%s", r.out);
    const jv *acc = jv_get(&o, "test_accuracy"), *n = jv_get(&o, "test_samples");
    cr_assert(acc && n && n->number == 80 && acc->number >= 0.9, "%s", r.out);
    const jv *cm = jv_get(&o, "confusion");
    cr_assert(cm && cm->kind == JV_ARRAY);
    jv_free(&o);
    bnt_run_result_free(&r);
    remove_tree(dir);
}

Test(cli_checkpoint, eval_of_a_missing_or_foreign_file_fails_clearly)
{
    (void)jv_array_has_string;
    RUN_FAILS(1, "born eval:", "cannot open '/nonexistent.born'", "eval", "--model",
              "/nonexistent.born", "--data", TINY);
    RUN_FAILS(1, "born eval:", "unknown extension", "eval", "--model",
              TINY "/t10k-labels-idx1-ubyte.gz", "--data", TINY);
    RUN_FAILS(2, "--model FILE is required", NULL, "eval");
}

/* ---- inspect and convert ---------------------------------------------------------------------- */
Test(cli_checkpoint, inspect_lists_tensors_metadata_and_parameter_count)
{
    char dir[64], model[128];
    temp_dir(dir, sizeof dir);
    snprintf(model, sizeof model, "%s/m.born", dir);
    RUN_OK("train", "--data", TINY, "--limit", "64", "--out", model);
    bnt_run_result r = BNT_RUN_BORN("inspect", model, "--verify");
    cr_assert_eq(r.exit_code, 0, "%s", r.err);
    cr_assert(strstr(r.out, "parameters: 101770"), "%s", r.out);
    cr_assert(strstr(r.out, "1.weight") && strstr(r.out, "[128, 784]"), "%s", r.out);
    cr_assert(strstr(r.out, "checksum verified"), "%s", r.out);
    cr_assert(strstr(r.out, "born.model: mlp"), "%s", r.out);
    bnt_run_result_free(&r);
    r = BNT_RUN_BORN("inspect", "--json", model);
    cr_assert_eq(r.exit_code, 0, "%s", r.err);
    jv o;
    const char *err;
    size_t pos;
    cr_assert(jv_parse(r.out, &o, &err, &pos), "%s", r.out);
    cr_assert_eq(jv_get(&o, "parameters")->number, 101770);
    const jv *ts = jv_get(&o, "tensors");
    cr_assert(ts && ts->kind == JV_ARRAY);
    jv_free(&o);
    bnt_run_result_free(&r);
    remove_tree(dir);
}

Test(cli_checkpoint, convert_round_trips_and_casts)
{
    char dir[64], a[128], b[128], c[128], h[128];
    temp_dir(dir, sizeof dir);
    snprintf(a, sizeof a, "%s/a.born", dir);
    snprintf(b, sizeof b, "%s/b.safetensors", dir);
    snprintf(c, sizeof c, "%s/c.born", dir);
    snprintf(h, sizeof h, "%s/h.safetensors", dir);
    RUN_OK("train", "--data", TINY, "--limit", "64", "--out", a);
    RUN_OK("convert", a, b);
    RUN_OK("convert", b, c);
    assert_same_tensors(a, b);
    assert_same_tensors(a, c);
    bn_loaded l = {0};
    cr_assert_eq(bn_load_tensors(c, (bn_load_opts){0}, &l), BN_OK, "%s", bn_error_message());
    cr_assert_not_null(l.config_json, "the config comes back from safetensors' metadata");
    bn_loaded_free(&l);
    RUN_OK("convert", a, h, "--dtype", "bf16");
    cr_assert_eq(bn_load_tensors(h, (bn_load_opts){0}, &l), BN_OK, "%s", bn_error_message());
    for (int i = 0; i < l.tensors.count; i++) cr_assert_eq(bn_dtype_of(l.tensors.tensors[i]), BN_BF16);
    bn_loaded_free(&l);
    remove_tree(dir);
}

Test(cli_checkpoint, bad_files_and_arguments_exit_1_or_2)
{
    char dir[64], bad[128];
    temp_dir(dir, sizeof dir);
    snprintf(bad, sizeof bad, "%s/bad.born", dir);
    FILE *f = fopen(bad, "wb");
    cr_assert_not_null(f);
    fputs("not a born file at all", f);
    fclose(f);
    RUN_FAILS(1, "born inspect:", bad, "inspect", bad);
    RUN_FAILS(1, "born inspect:", "cannot open", "inspect", "/nonexistent.safetensors");
    RUN_FAILS(2, "give one FILE", NULL, "inspect");
    RUN_FAILS(1, "born convert:", bad, "convert", bad, "/tmp/born-never-written.safetensors");
    RUN_FAILS(2, "--dtype must be f16, bf16 or f32, got 'f8'", NULL, "convert", "a.born",
              "b.born", "--dtype", "f8");
    RUN_FAILS(2, "OUT 'b.txt' must end in .born or .safetensors", NULL, "convert", "a.born",
              "b.txt");
    RUN_FAILS(2, "give IN and OUT", NULL, "convert", "a.born");
    remove_tree(dir);
}
