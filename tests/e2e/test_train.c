/* tests/e2e/test_train.c — training end to end: the trainer's library functions in-process
 * (bn_model_build, bn_train_epoch, bn_evaluate: learning on a tiny MNIST-shaped set, no leaks,
 * bad input) and the `born train` / `born eval` commands as a user runs them (CTest passes the
 * binary in BORN_BIN): JSON lines per epoch and at the end, determinism for a seed, text output,
 * and exit code 2 with a clear message for bad command lines. The tiny data set is made by
 * scripts/gen_idx_fixture.py (tests/data/idx/tiny: 320 training and 80 test images). */
#include "bn_test.h"
#include "json_dom.h"

#include "born/born.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#define TINY BORN_TEST_DATA_DIR "/idx/tiny"


/* ---- in-process --------------------------------------------------------------------------- */
Test(trainer, mlp_learns_the_tiny_set_without_leaks)
{
    BNT_ASSERT_NO_LEAK({
        bn_manual_seed(5);
        bn_dataset *tr = bn_mnist_load(TINY, (bn_mnist_opts){.normalize = true});
        bn_dataset *te = bn_mnist_load(TINY, (bn_mnist_opts){.normalize = true, .test = true});
        cr_assert_not_null(te, "%s", bn_error_message());
        bn_module *m = bn_model_build("mlp");
        cr_assert_not_null(m, "%s", bn_error_message());
        cr_assert_eq(bn_module_num_parameters(m), 101770);
        bn_optim *o = bn_optim_adam(m, (bn_adam_opts){.lr = 1e-3});
        bn_loader *lt = bn_loader_new(tr, (bn_loader_opts){.batch_size = 32, .shuffle = true,
                                                           .seed = 1, .prefetch = true});
        bn_loader *le = bn_loader_new(te, (bn_loader_opts){.batch_size = 50});
        bn_metrics first = {0}, last = {0}, ev = {0};
        for (int e = 0; e < 3; e++) {
            bn_metrics m_e;
            cr_assert_eq(bn_train_epoch(m, o, lt, NULL, NULL, &m_e), BN_OK, "%s",
                         bn_error_message());
            if (e == 0) first = m_e;
            last = m_e;
        }
        cr_assert_eq(first.samples, 320);
        cr_assert_eq(first.batches, 10);
        cr_assert_lt(last.loss, first.loss);
        cr_assert_eq(bn_evaluate(m, le, 10, &ev), BN_OK, "%s", bn_error_message());
        cr_assert_eq(ev.samples, 80);
        cr_assert_geq(ev.accuracy, 0.9, "test accuracy %g", ev.accuracy);
        int64_t total = 0, diag = 0;
        for (int i = 0; i < 10; i++)
            for (int j = 0; j < 10; j++) {
                total += ev.confusion[i * 10 + j];
                if (i == j) diag += ev.confusion[i * 10 + j];
            }
        cr_assert_eq(total, 80);
        cr_assert_eq(diag, ev.correct);
        cr_assert_not(bn_module_is_training(m));
        bn_metrics_free(&ev);
        bn_loader_free(lt);
        bn_loader_free(le);
        bn_optim_free(o);
        bn_module_free(m);
        bn_dataset_free(tr);
        bn_dataset_free(te);
    });
}

Test(trainer, cnn_builds_with_the_benchmark_shapes)
{
    BNT_ASSERT_NO_LEAK({
        bn_module *m = bn_model_build("cnn");
        cr_assert_not_null(m, "%s", bn_error_message());
        /* 32*9+32 + 64*32*9+64 + 1600*128+128 + 128*10+10 */
        cr_assert_eq(bn_module_num_parameters(m), 225034);
        bn_scope_begin();
        bn_tensor *y = bn_module_forward(m, bn_zeros(BN_SHAPE(2, 1, 28, 28), BN_F32));
        cr_assert_not_null(y, "%s", bn_error_message());
        cr_assert(bn_shape_equal(bn_shape_of(y), BN_SHAPE(2, 10)));
        bn_scope_end();
        bn_module_free(m);
    });
}

Test(trainer, bad_arguments_are_errors)
{
    BNT_ASSERT_NO_LEAK({
        cr_assert_null(bn_model_build("resnet"));
        bnt_assert_error(BN_ERR_ARG, "bn_model_build", "unknown model 'resnet'", "mlp, cnn", NULL);
        cr_assert_null(bn_model_build(NULL));
        bnt_assert_error(BN_ERR_ARG, "bn_model_build", "name", NULL);
        bn_metrics m;
        cr_assert_neq(bn_train_epoch(NULL, NULL, NULL, NULL, NULL, &m), BN_OK);
        bnt_assert_error(BN_ERR_ARG, "bn_train_epoch", "m", NULL);
        bn_module *mlp = bn_model_build("mlp");
        bn_scope_begin();
        bn_dataset *d = bn_dataset_new(bn_zeros(BN_SHAPE(4, 1, 28, 28), BN_F32),
                                       bn_zeros(BN_SHAPE(4), BN_F32));
        bn_scope_end();
        bn_loader *l = bn_loader_new(d, (bn_loader_opts){.batch_size = 2});
        cr_assert_neq(bn_evaluate(mlp, l, 0, &m), BN_OK);
        bnt_assert_error(BN_ERR_ARG, "bn_evaluate", "num_classes", "got 0", NULL);
        cr_assert_neq(bn_evaluate(mlp, l, 10, &m), BN_OK);
        bnt_assert_error(BN_ERR_DTYPE, "bn_evaluate", "labels must be i64", "f32 [2]", NULL);
        bn_metrics_free(&m);
        bn_optim *o = bn_optim_sgd(mlp, (bn_sgd_opts){.lr = 0.1});
        cr_assert_neq(bn_train_epoch(mlp, o, l, NULL, NULL, &m), BN_OK);
        bnt_assert_error(BN_ERR_DTYPE, "bn_train_epoch", "labels must be i64", NULL);
        bn_optim_free(o);
        bn_loader_free(l);
        bn_dataset_free(d);
        bn_module_free(mlp);
    });
}

/* Reads back what was written to f. */
static char *file_text(FILE *f)
{
    fflush(f);
    long n = ftell(f);
    char *buf = calloc((size_t)n + 1, 1);
    rewind(f);
    cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    return buf;
}

Test(trainer, progress_bar_shows_loss_accuracy_rate_and_eta)
{
    FILE *f = tmpfile();
    bn_progress p = bn_progress_make(f, 2, 5);
    cr_assert_not(p.tty, "a file is not a terminal: no bar");
    bn_metrics m = {.loss = 0.5, .accuracy = 0.75, .samples = 640, .batches = 10, .seconds = 2.0};
    bn_progress_update(&p, 10, 40, &m);
    char *quiet = file_text(f);
    cr_assert_str_eq(quiet, "");
    free(quiet);
    p.tty = true;
    bn_progress_update(&p, 10, 40, &m);
    m.seconds = 2.01; /* too soon to redraw */
    bn_progress_update(&p, 11, 40, &m);
    bn_progress_done(&p);
    char *text = file_text(f);
    cr_assert(strstr(text, "epoch 2/5 [======>"), "%s", text);
    cr_assert(strstr(text, "10/40 loss 0.5000 acc 0.7500 320 samples/s ETA 6s"), "%s", text);
    cr_assert_null(strstr(text, "11/40"), "redraws are throttled: %s", text);
    free(text);
    fclose(f);
}

Test(trainer, confusion_matrix_prints_rows_as_true_classes)
{
    FILE *f = tmpfile();
    int64_t conf[4] = {5, 1, 2, 7};
    bn_metrics m = {.num_classes = 2, .confusion = conf};
    bn_print_confusion(f, &m, (const char *const[]){"cat", "dog"});
    char *text = file_text(f);
    cr_assert(strstr(text, "rows: true class, columns: predicted"), "%s", text);
    cr_assert(strstr(text, "0 cat               5      1\n1 dog               2      7"), "%s",
              text);
    cr_assert_str_eq(bn_fashion_mnist_classes()[9], "Ankle boot");
    free(text);
    fclose(f);
}

/* ---- the born command ----------------------------------------------------------------------- */
/* Parses each line of out as JSON into lines[] (at most max); returns the count. */
static int parse_lines(char *out, jv *lines, int max)
{
    int n = 0;
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        cr_assert_lt(n, max, "too many lines");
        const char *err;
        size_t pos;
        cr_assert(jv_parse(line, &lines[n], &err, &pos), "bad JSON (%s at %zu): %s", err, pos, line);
        n++;
    }
    return n;
}

static double num(const jv *o, const char *key)
{
    const jv *v = jv_get(o, key);
    cr_assert(v && v->kind == JV_NUMBER, "missing number '%s'", key);
    return v->number;
}

Test(cli_train, json_has_one_object_per_epoch_and_a_final_one)
{
    bnt_run_result r = BNT_RUN_BORN("train", "--model", "mlp", "--data", TINY, "--epochs", "3", "--batch",
                            "32", "--seed", "1", "--json");
    cr_assert_eq(r.exit_code, 0, "stderr: %s", r.err);
    jv lines[8];
    int n = parse_lines(r.out, lines, 8);
    cr_assert_eq(n, 4, "3 epochs + final");
    for (int e = 0; e < 3; e++) {
        cr_assert_eq(num(&lines[e], "epoch"), e + 1);
        cr_assert_eq(num(&lines[e], "train_samples"), 320);
        cr_assert_gt(num(&lines[e], "epoch_seconds"), 0);
        cr_assert_gt(num(&lines[e], "samples_per_second"), 0);
        double acc = num(&lines[e], "test_accuracy");
        cr_assert(acc >= 0 && acc <= 1);
    }
    cr_assert_lt(num(&lines[2], "train_loss"), num(&lines[0], "train_loss"));
    const jv *f = &lines[3];
    cr_assert(jv_get(f, "final") && jv_get(f, "final")->boolean);
    cr_assert_geq(num(f, "test_accuracy"), 0.9);
    cr_assert_eq(num(f, "test_samples"), 80);
    cr_assert_gt(num(f, "epoch_seconds"), 0);
    cr_assert_gt(num(f, "samples_per_second"), 0);
    cr_assert_str_eq(jv_get(f, "model")->string, "mlp");
    cr_assert_str_eq(jv_get(f, "optim")->string, "adam");
    cr_assert_float_eq(num(f, "lr"), 1e-3, 1e-12);
    for (int i = 0; i < n; i++) jv_free(&lines[i]);
    bnt_run_result_free(&r);
}

Test(cli_train, same_seed_gives_the_same_losses)
{
    const char *args[] = {"train", "--model", "mlp", "--data", TINY, "--limit", "128", "--batch",
                          "16", "--seed", "9", "--json", "--optim", "sgd", "--lr", "0.05", NULL};
    bnt_run_result a = bnt_run_born(args), b = bnt_run_born(args);
    cr_assert_eq(a.exit_code, 0, "stderr: %s", a.err);
    jv la[2], lb[2];
    cr_assert_eq(parse_lines(a.out, la, 2), 2);
    cr_assert_eq(parse_lines(b.out, lb, 2), 2);
    cr_assert_eq(num(&la[0], "train_loss"), num(&lb[0], "train_loss"));
    cr_assert_eq(num(&la[1], "test_accuracy"), num(&lb[1], "test_accuracy"));
    cr_assert_eq(num(&la[1], "test_samples"), 80, "--limit 128 keeps all 80 test images");
    for (int i = 0; i < 2; i++) {
        jv_free(&la[i]);
        jv_free(&lb[i]);
    }
    bnt_run_result_free(&a);
    bnt_run_result_free(&b);
}

Test(cli_train, cnn_runs_on_a_limited_subset_with_text_output)
{
    bnt_run_result r = BNT_RUN_BORN("train", "--model", "cnn", "--data", TINY, "--limit", "64",
                            "--batch", "16", "--threads", "2", "--confusion");
    cr_assert_eq(r.exit_code, 0, "stderr: %s", r.err);
    cr_assert(strstr(r.out, "born train: cnn on "), "%s", r.out);
    cr_assert(strstr(r.out, "64 train / 64 test images"), "%s", r.out);
    cr_assert(strstr(r.out, "epoch 1/1  loss "), "%s", r.out);
    cr_assert(strstr(r.out, "test accuracy "), "%s", r.out);
    cr_assert(strstr(r.out, "confusion matrix"), "%s", r.out);
    cr_assert(strstr(r.out, "Ankle boot"), "%s", r.out);
    cr_assert_eq(strstr(r.err, "\r"), NULL, "no progress bar when stderr is not a terminal");
    bnt_run_result_free(&r);
}

static void check_usage_error(const char *const *args, const char *a, const char *b)
{
    bnt_run_result r = bnt_run_born(args);
    cr_assert_eq(r.exit_code, 2, "exit %d, stderr: %s", r.exit_code, r.err);
    cr_assert(strstr(r.err, a), "stderr lacks '%s': %s", a, r.err);
    if (b) cr_assert(strstr(r.err, b), "stderr lacks '%s': %s", b, r.err);
    cr_assert_str_eq(r.out, "");
    bnt_run_result_free(&r);
}
#define USAGE_ERROR(a, b, ...) check_usage_error((const char *const[]){__VA_ARGS__, NULL}, a, b)

Test(cli_train, bad_command_lines_exit_2_with_a_clear_message)
{
    USAGE_ERROR("--model: unknown name 'mpl'", "did you mean 'mlp'", "train", "--model", "mpl");
    USAGE_ERROR("--epochs must be an integer in [1, 100000], got '-1'", NULL, "train", "--epochs",
                "-1");
    USAGE_ERROR("--epochs must be an integer", "got 'x'", "train", "--epochs", "x");
    USAGE_ERROR("--batch must be", "got '0'", "train", "--batch", "0");
    USAGE_ERROR("--lr must be a positive number, got '0'", NULL, "train", "--lr", "0");
    USAGE_ERROR("--optim: unknown name 'adan'", "known: adam", "train", "--optim", "adan");
    USAGE_ERROR("--out: 'model.txt' must end in .born or .safetensors", NULL, "train", "--data",
                TINY, "--out", "model.txt");
    USAGE_ERROR("unknown option '--epoch'", "did you mean '--epochs'", "train", "--epoch", "3");
    USAGE_ERROR("--model FILE is required", NULL, "eval");
}

Test(cli_train, missing_data_is_a_clear_failure)
{
    bnt_run_result r = BNT_RUN_BORN("train", "--data", "/nonexistent-born-dir");
    cr_assert_eq(r.exit_code, 1, "stderr: %s", r.err);
    cr_assert(strstr(r.err, "born train: bn_mnist_load: '/nonexistent-born-dir' is neither"),
              "%s", r.err);
    bnt_run_result_free(&r);
}

Test(cli_train, eval_of_a_file_that_is_not_a_model_fails_clearly)
{
    (void)jv_array_has_string; /* json_dom.h's helper, unused here */
    bnt_run_result r = BNT_RUN_BORN("eval", "--model", TINY "/t10k-labels-idx1-ubyte.gz", "--data", TINY);
    cr_assert_eq(r.exit_code, 1, "stderr: %s", r.err);
    cr_assert(strstr(r.err, "unknown extension"), "%s", r.err);
    bnt_run_result_free(&r);
    r = BNT_RUN_BORN("eval", "--model", "/nonexistent.born");
    cr_assert_eq(r.exit_code, 1);
    cr_assert(strstr(r.err, "cannot open '/nonexistent.born'"), "%s", r.err);
    bnt_run_result_free(&r);
    r = BNT_RUN_BORN("--help");
    cr_assert(strstr(r.out, "train ") && strstr(r.out, "eval "), "%s", r.out);
    bnt_run_result_free(&r);
}

/* bn_train_epoch_ex: bf16 autocast (f32 master weights) and fp16 with loss scaling still learn
 * the tiny set; a bad precision is a clear error. */
Test(trainer, mixed_precision_epochs_learn_and_keep_f32_weights)
{
    BNT_ASSERT_NO_LEAK({
        bn_dataset *tr = bn_mnist_load(TINY, (bn_mnist_opts){.normalize = true});
        cr_assert_not_null(tr, "%s", bn_error_message());
        const bn_dtype lows[] = {BN_BF16, BN_F16};
        for (int k = 0; k < 2; k++) {
            bn_manual_seed(5);
            bn_module *m = bn_model_build("mlp");
            bn_optim *o = bn_optim_adam(m, (bn_adam_opts){.lr = 1e-3});
            bn_grad_scaler *sc =
                bn_grad_scaler_new((bn_grad_scaler_opts){.disabled = lows[k] != BN_F16});
            bn_loader *l = bn_loader_new(tr, (bn_loader_opts){.batch_size = 32, .seed = 1});
            bn_train_opts to = {.precision = lows[k], .scaler = sc};
            bn_metrics first = {0}, last = {0};
            for (int e = 0; e < 3; e++) {
                bn_metrics me;
                cr_assert_eq(bn_loader_start_epoch(l, e), BN_OK);
                cr_assert_eq(bn_train_epoch_ex(m, o, l, &to, NULL, NULL, &me), BN_OK, "%s: %s",
                             bn_dtype_name(lows[k]), bn_error_message());
                if (e == 0) first = me;
                last = me;
            }
            cr_assert_eq(first.samples, 320);
            cr_assert_lt(last.loss, first.loss, "%s: %g then %g", bn_dtype_name(lows[k]),
                         first.loss, last.loss);
            bn_tensor *p = NULL;
            cr_assert_gt(bn_module_parameters(m, &p, 1), 0);
            cr_assert_eq(bn_dtype_of(p), BN_F32, "master weights stay f32");
            bn_loader_free(l);
            bn_grad_scaler_free(sc);
            bn_optim_free(o);
            bn_module_free(m);
        }
        bn_module *m = bn_model_build("mlp");
        bn_optim *o = bn_optim_adam(m, (bn_adam_opts){0});
        bn_loader *l = bn_loader_new(tr, (bn_loader_opts){.batch_size = 32});
        bn_metrics me;
        bn_train_opts bad = {.precision = BN_I32};
        cr_assert_eq(bn_train_epoch_ex(m, o, l, &bad, NULL, NULL, &me), BN_ERR_DTYPE);
        bnt_assert_error(BN_ERR_DTYPE, "bn_train_epoch", "precision", "i32", NULL);
        bn_loader_free(l);
        bn_optim_free(o);
        bn_module_free(m);
        bn_dataset_free(tr);
    });
}

Test(cli_train, precision_and_device_options)
{
    bnt_run_result r = BNT_RUN_BORN("train", "--model", "mlp", "--data", TINY, "--limit", "64",
                                    "--batch", "16", "--precision", "bf16", "--json");
    cr_assert_eq(r.exit_code, 0, "stderr: %s", r.err);
    cr_assert(strstr(r.out, "\"precision\":\"bf16\""), "%s", r.out);
    cr_assert(strstr(r.out, "\"device\":\"cpu\""), "%s", r.out);
    bnt_run_result_free(&r);
    USAGE_ERROR("--precision", "fp8", "train", "--model", "mlp", "--precision", "fp8");
    USAGE_ERROR("--device must be cpu, cuda or cuda:N", "gpu", "train", "--model", "mlp",
                "--device", "gpu");
    USAGE_ERROR("--device must be cpu, cuda or cuda:N", "cuda:x", "train", "--model", "mlp",
                "--device", "cuda:x");
    if (bn_cuda_device_count() == 0) { /* no GPU here: a clear failure naming the reason */
        r = BNT_RUN_BORN("train", "--model", "mlp", "--data", TINY, "--limit", "64", "--device",
                         "cuda");
        cr_assert_eq(r.exit_code, 1, "exit %d, stderr: %s", r.exit_code, r.err);
        cr_assert(strstr(r.err, "--device cuda"), "%s", r.err);
        cr_assert(strstr(r.err, "not available"), "%s", r.err);
        bnt_run_result_free(&r);
    }
}
