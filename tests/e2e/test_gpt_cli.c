/* tests/e2e/test_gpt_cli.c — `born train --model gpt` and `born generate` as a user runs them
 * (CTest passes the binary in BORN_BIN): a tiny GPT trained for a few steps on a slice of Tiny
 * Shakespeare (../shared/data/tinyshakespeare.txt; skipped with a message when it is missing)
 * learns (its losses fall below the uniform guess), reports JSON lines, saves one file that
 * `born generate` continues a prompt from — the same text for the same seed — and bad command
 * lines fail with exit code 2 and a message naming the problem. --out keeps the model with the
 * best validation loss (`born eval` on it gives that loss back, exactly), --save-last the last
 * one; a run resumed from a --checkpoint file continues bit for bit (the same losses, the same
 * checkpoint and model files, byte for byte, with dropout on); checkpoints from another model or
 * other data, and missing or damaged files, are refused with the difference or the path. */
#include "bn_test.h"
#include "json_dom.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SHAKESPEARE BORN_SOURCE_DIR "/../shared/data/tinyshakespeare.txt"

static void need_data(void)
{
    (void)jv_array_has_string; /* json_dom.h's array helper: this file reads no arrays */
    if (access(SHAKESPEARE, R_OK) != 0)
        cr_skip_test("%s is missing: the GPT command tests need Tiny Shakespeare there "
                     "(https://raw.githubusercontent.com/karpathy/char-rnn/master/data/"
                     "tinyshakespeare/input.txt)", SHAKESPEARE);
}

static int parse_lines(char *out, jv *lines, int max)
{
    int n = 0;
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        cr_assert_lt(n, max, "too many lines");
        const char *err;
        size_t pos;
        cr_assert(jv_parse(line, &lines[n], &err, &pos), "bad JSON (%s at %zu): %s", err, pos,
                  line);
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

static char model_path[256];

static const char *tmp_model(void)
{
    snprintf(model_path, sizeof model_path, "/tmp/born_test_gpt_cli_%d.born", (int)getpid());
    return model_path;
}

#define TRAIN_ARGS                                                                                 \
    "train", "--model", "gpt", "--data", SHAKESPEARE, "--limit", "20000", "--layers", "2",         \
        "--heads", "2", "--dim", "32", "--context", "32", "--batch", "8", "--steps", "40",         \
        "--eval-every", "20", "--eval-iters", "2", "--lr", "3e-3", "--seed", "3", "--json"

Test(cli_gpt, train_reports_json_and_learns_then_generate_continues_the_prompt)
{
    need_data();
    const char *path = tmp_model();
    bnt_run_result r = BNT_RUN_BORN(TRAIN_ARGS, "--out", path);
    cr_assert_eq(r.exit_code, 0, "stderr: %s", r.err);
    jv lines[4];
    int n = parse_lines(r.out, lines, 4);
    cr_assert_eq(n, 3, "two evaluations and a final object");
    cr_assert_eq(num(&lines[0], "step"), 20);
    cr_assert_eq(num(&lines[1], "step"), 40);
    const jv *f = &lines[2];
    cr_assert(jv_get(f, "final") && jv_get(f, "final")->boolean);
    double vocab = num(f, "vocab_size");
    cr_assert(vocab > 30 && vocab < 70, "vocab %g", vocab);
    cr_assert_eq(num(f, "layers"), 2);
    cr_assert_eq(num(f, "steps"), 40);
    cr_assert_gt(num(f, "params"), 20000);
    cr_assert_gt(num(f, "tokens_per_second"), 0);
    /* the uniform guess is log(vocab); 40 steps must beat it clearly */
    cr_assert_lt(num(f, "val_loss"), log(vocab) - 0.4, "val loss %g", num(f, "val_loss"));
    cr_assert_lt(num(f, "train_loss"), log(vocab) - 0.4);
    cr_assert_eq(num(f, "val_loss"), num(&lines[1], "val_loss"));
    for (int i = 0; i < n; i++) jv_free(&lines[i]);
    bnt_run_result_free(&r);

    bnt_run_result a = BNT_RUN_BORN("generate", "--model", path, "--prompt", "ROMEO:", "--tokens",
                                    "60", "--temperature", "0.8", "--top-k", "40", "--seed", "1");
    cr_assert_eq(a.exit_code, 0, "stderr: %s", a.err);
    cr_assert_eq(strncmp(a.out, "ROMEO:", 6), 0, "%s", a.out);
    cr_assert_eq(strlen(a.out), 6 + 60 + 1, "the prompt, 60 characters and a newline: %s", a.out);
    cr_assert(strstr(a.err, "60 tokens in"), "%s", a.err);
    bnt_run_result b = BNT_RUN_BORN("generate", "--model", path, "--prompt", "ROMEO:", "--tokens",
                                    "60", "--temperature", "0.8", "--top-k", "40", "--seed", "1");
    cr_assert_str_eq(a.out, b.out, "the same seed gives the same text");
    bnt_run_result c = BNT_RUN_BORN("generate", "--model", path, "--prompt", "ROMEO:", "--tokens",
                                    "60", "--temperature", "0.8", "--seed", "2");
    cr_assert_str_neq(a.out, c.out, "another seed gives other text");
    /* longer than the context (32): the window slides */
    bnt_run_result j = BNT_RUN_BORN("generate", "--model", path, "--tokens", "100",
                                    "--temperature", "0", "--json");
    cr_assert_eq(j.exit_code, 0, "stderr: %s", j.err);
    jv o;
    const char *err;
    size_t pos;
    cr_assert(jv_parse(j.out, &o, &err, &pos), "bad JSON (%s): %s", err, j.out);
    cr_assert_eq(num(&o, "tokens"), 100);
    cr_assert_eq(strlen(jv_get(&o, "text")->string), 100);
    cr_assert_str_eq(jv_get(&o, "prompt")->string, "\n");
    jv_free(&o);
    bnt_run_result_free(&a);
    bnt_run_result_free(&b);
    bnt_run_result_free(&c);
    bnt_run_result_free(&j);

    /* a prompt with a character the model never saw */
    bnt_run_result u = BNT_RUN_BORN("generate", "--model", path, "--prompt", "ROMEO \xe2\x98\x83");
    cr_assert_eq(u.exit_code, 1);
    cr_assert(strstr(u.err, "U+2603") && strstr(u.err, "byte 6") && strstr(u.err, "characters"),
              "%s", u.err);
    bnt_run_result_free(&u);
    unlink(path);
}

Test(cli_gpt, the_same_seed_gives_the_same_losses)
{
    need_data();
    bnt_run_result a = BNT_RUN_BORN(TRAIN_ARGS), b = BNT_RUN_BORN(TRAIN_ARGS);
    cr_assert_eq(a.exit_code, 0, "stderr: %s", a.err);
    cr_assert_eq(b.exit_code, 0, "stderr: %s", b.err);
    jv la[4], lb[4];
    cr_assert_eq(parse_lines(a.out, la, 4), 3);
    cr_assert_eq(parse_lines(b.out, lb, 4), 3);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(num(&la[i], "val_loss"), num(&lb[i], "val_loss"));
        cr_assert_eq(num(&la[i], "train_loss"), num(&lb[i], "train_loss"));
        jv_free(&la[i]);
        jv_free(&lb[i]);
    }
    bnt_run_result_free(&a);
    bnt_run_result_free(&b);
}

Test(cli_gpt, text_output_and_help)
{
    need_data();
    bnt_run_result r = BNT_RUN_BORN("train", "--model", "gpt", "--data", SHAKESPEARE, "--limit",
                                    "8000", "--layers", "1", "--heads", "2", "--kv-heads", "1",
                                    "--dim", "16", "--context", "16", "--batch", "4", "--steps",
                                    "4", "--eval-every", "2", "--eval-iters", "1", "--pos",
                                    "rope", "--norm", "rmsnorm", "--ffn", "swiglu", "--no-bias",
                                    "--untied", "--checkpointing", "--dropout", "0.1");
    cr_assert_eq(r.exit_code, 0, "stderr: %s", r.err);
    cr_assert(strstr(r.out, "born train: gpt (1 layers, 2 heads, 1 kv heads, dim 16"), "%s",
              r.out);
    cr_assert(strstr(r.out, "step 2/4: train loss") && strstr(r.out, "step 4/4:") &&
                  strstr(r.out, "final: val loss"),
              "%s", r.out);
    bnt_run_result_free(&r);
    r = BNT_RUN_BORN("train", "--model", "gpt", "--help");
    cr_assert_eq(r.exit_code, 0);
    cr_assert(strstr(r.out, "--layers") && strstr(r.out, "--kv-heads") && strstr(r.out, "--pos"),
              "%s", r.out);
    bnt_run_result_free(&r);
    r = BNT_RUN_BORN("--help");
    cr_assert(strstr(r.out, "generate"), "%s", r.out);
    bnt_run_result_free(&r);
    r = BNT_RUN_BORN("generate", "--help");
    cr_assert_eq(r.exit_code, 0);
    cr_assert(strstr(r.out, "--temperature") && strstr(r.out, "--top-k"), "%s", r.out);
    bnt_run_result_free(&r);
}

/* exit code 2 and every given substring in stderr */
static void expect_usage(bnt_run_result r, int code, const char *a, const char *b)
{
    cr_assert_eq(r.exit_code, code, "exit %d, stderr: %s", r.exit_code, r.err);
    cr_assert(strstr(r.err, a), "'%s' not in: %s", a, r.err);
    if (b) cr_assert(strstr(r.err, b), "'%s' not in: %s", b, r.err);
    cr_assert_str_eq(r.out, "", "nothing on stdout");
    bnt_run_result_free(&r);
}

Test(cli_gpt, bad_command_lines_say_what_is_wrong)
{
    expect_usage(BNT_RUN_BORN("train", "--model", "gpt"), 2, "--data FILE is required", NULL);
    expect_usage(BNT_RUN_BORN("train", "--model", "gpt", "--data", "x.txt", "--heads", "3",
                              "--dim", "32"),
                 2, "dim 32 must be a multiple of heads 3", NULL);
    expect_usage(BNT_RUN_BORN("train", "--model", "gpt", "--data", "x.txt", "--pos", "rop"), 2,
                 "--pos: unknown value 'rop'", "did you mean 'rope'");
    expect_usage(BNT_RUN_BORN("train", "--model", "gpt", "--data", "x.txt", "--layerz", "2"), 2,
                 "unknown option '--layerz'", "did you mean '--layers'");
    expect_usage(BNT_RUN_BORN("train", "--model", "gpt", "--data", "x.txt", "--steps", "0"), 2,
                 "--steps must be an integer in [1,", NULL);
    expect_usage(BNT_RUN_BORN("train", "--model", "gpt", "--data", "x.txt", "--dropout", "1"),
                 2, "--dropout must be a number in [0, 1)", NULL);
    expect_usage(BNT_RUN_BORN("train", "--model", "gpt", "--data", "x.txt", "--out", "g.txt"),
                 2, "must end in .born or .safetensors", NULL);
    expect_usage(BNT_RUN_BORN("train", "--model", "gpt", "--data", "x.txt", "--steps", "10",
                              "--warmup", "20"),
                 2, "--warmup 20 is longer than --steps 10", NULL);
    expect_usage(BNT_RUN_BORN("train", "--model", "gpt", "--data", "/nonexistent/shakespeare.txt"),
                 1, "cannot open '/nonexistent/shakespeare.txt'", NULL);
    expect_usage(BNT_RUN_BORN("generate", "--prompt", "x"), 2, "--model FILE is required", NULL);
    expect_usage(BNT_RUN_BORN("generate", "--model", "m.born", "--top-p", "2"), 2,
                 "--top-p must be a number in [0, 1]", NULL);
    expect_usage(BNT_RUN_BORN("generate", "--model", "m.born", "--tokens", "-5"), 2,
                 "--tokens must be an integer", NULL);
    expect_usage(BNT_RUN_BORN("generate", "--model", "/nonexistent/m.born"), 1,
                 "/nonexistent/m.born", NULL);
    need_data();
    expect_usage(BNT_RUN_BORN("train", "--model", "gpt", "--data", SHAKESPEARE, "--limit", "500",
                              "--context", "64"),
                 1, "needs at least 65 in each", NULL);
    expect_usage(BNT_RUN_BORN("generate", "--model", SHAKESPEARE), 1, "born generate:", NULL);
}

/* ---- best model, checkpoints, resume, eval ----------------------------------------------------- */

/* A fresh directory for one test's files. */
static void temp_dir(char *path, size_t n)
{
    snprintf(path, n, "/tmp/born-gpt-cli-XXXXXX");
    cr_assert_not_null(mkdtemp(path));
}

static void remove_tree(const char *dir)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

/* The bytes of a file (malloc'ed; *n its size). */
static char *read_all(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    cr_assert_eq(fseek(f, 0, SEEK_END), 0);
    long len = ftell(f);
    cr_assert_geq(len, 0);
    rewind(f);
    char *b = malloc((size_t)len + 1);
    cr_assert_not_null(b);
    cr_assert_eq(fread(b, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    *n = (size_t)len;
    return b;
}

static void assert_same_bytes(const char *a, const char *b)
{
    size_t na, nb;
    char *x = read_all(a, &na), *y = read_all(b, &nb);
    cr_assert_eq(na, nb, "%s has %zu bytes, %s %zu", a, na, b, nb);
    cr_assert_eq(memcmp(x, y, na), 0, "%s and %s differ", a, b);
    free(x);
    free(y);
}

static const char *str(const jv *o, const char *key)
{
    const jv *v = jv_get(o, key);
    cr_assert(v && v->kind == JV_STRING, "missing string '%s'", key);
    return v->string;
}

/* `born eval --json` on model with the windows of TRAIN_ARGS-like runs (seed 3, batch 8, 2
 * iterations, the first 20000 bytes); the loss. */
static double eval_loss(const char *model, const char *split)
{
    bnt_run_result r = BNT_RUN_BORN("eval", "--model", model, "--data", SHAKESPEARE, "--limit",
                                    "20000", "--batch", "8", "--iters", "2", "--seed", "3",
                                    "--split", split, "--json");
    cr_assert_eq(r.exit_code, 0, "stderr: %s", r.err);
    jv o;
    const char *err;
    size_t pos;
    cr_assert(jv_parse(r.out, &o, &err, &pos), "bad JSON (%s): %s", err, r.out);
    cr_assert_str_eq(str(&o, "split"), split);
    cr_assert_str_eq(str(&o, "model"), "gpt");
    double loss = num(&o, "loss");
    cr_assert_float_eq(num(&o, "perplexity"), exp(loss), 1e-9 * exp(loss));
    jv_free(&o);
    bnt_run_result_free(&r);
    return loss;
}

/* A rate too high to settle: the validation loss goes down and up again, so the last model is
 * not the best (6 evaluations in 12 steps). */
#define JUMPY_ARGS                                                                                 \
    "train", "--model", "gpt", "--data", SHAKESPEARE, "--limit", "20000", "--layers", "2",         \
        "--heads", "2", "--dim", "32", "--context", "32", "--batch", "8", "--steps", "12",         \
        "--eval-every", "2", "--eval-iters", "2", "--lr", "0.3", "--min-lr", "0.3", "--warmup",    \
        "0", "--seed", "3", "--json"

Test(cli_gpt, out_keeps_the_model_with_the_best_val_loss_and_eval_gives_it_back)
{
    need_data();
    char dir[64], best[128], last[128];
    temp_dir(dir, sizeof dir);
    snprintf(best, sizeof best, "%s/best.born", dir);
    snprintf(last, sizeof last, "%s/last.born", dir);
    bnt_run_result r = BNT_RUN_BORN(JUMPY_ARGS, "--out", best);
    cr_assert_eq(r.exit_code, 0, "stderr: %s", r.err);
    jv l[8];
    cr_assert_eq(parse_lines(r.out, l, 8), 7, "six evaluations and a final object");
    double min = INFINITY, min_train = NAN;
    int64_t argmin = 0;
    for (int i = 0; i < 6; i++)
        if (num(&l[i], "val_loss") < min) {
            min = num(&l[i], "val_loss");
            min_train = num(&l[i], "train_loss");
            argmin = (int64_t)num(&l[i], "step");
        }
    cr_assert_neq(argmin, 12, "this run was chosen so that the last model is not the best: %s",
                  r.out);
    cr_assert_eq(num(&l[6], "best_val_loss"), min);
    cr_assert_eq(num(&l[6], "best_step"), (double)argmin);
    cr_assert_str_eq(str(&l[6], "saved"), "best");
    cr_assert_str_eq(str(&l[6], "out"), best);
    double last_val = num(&l[5], "val_loss");
    cr_assert_gt(last_val, min);
    for (int i = 0; i < 7; i++) jv_free(&l[i]);
    bnt_run_result_free(&r);
    /* the file holds the model of the best evaluation: the same windows give the same losses */
    cr_assert_eq(eval_loss(best, "val"), min);
    cr_assert_eq(eval_loss(best, "train"), min_train);

    /* --save-last: the same run keeps its last model */
    r = BNT_RUN_BORN(JUMPY_ARGS, "--out", last, "--save-last");
    cr_assert_eq(r.exit_code, 0, "stderr: %s", r.err);
    cr_assert_eq(parse_lines(r.out, l, 8), 7);
    cr_assert_eq(num(&l[5], "val_loss"), last_val, "the same seed, the same run");
    cr_assert_str_eq(str(&l[6], "saved"), "last");
    cr_assert_eq(num(&l[6], "best_val_loss"), min);
    for (int i = 0; i < 7; i++) jv_free(&l[i]);
    bnt_run_result_free(&r);
    cr_assert_eq(eval_loss(last, "val"), last_val);

    /* text output: the loss and its perplexity; the final line and the saves name the best */
    r = BNT_RUN_BORN("eval", "--model", best, "--data", SHAKESPEARE, "--limit", "20000",
                     "--batch", "8", "--iters", "2", "--seed", "3");
    cr_assert_eq(r.exit_code, 0, "stderr: %s", r.err);
    cr_assert(strstr(r.out, "born eval: ") && strstr(r.out, "val split"), "%s", r.out);
    const char *at = strstr(r.out, "val loss ");
    cr_assert_not_null(at, "%s", r.out);
    double loss, ppl;
    cr_assert_eq(sscanf(at, "val loss %lf  perplexity %lf", &loss, &ppl), 2, "%s", r.out);
    cr_assert_float_eq(loss, min, 1e-4);
    cr_assert_float_eq(ppl, exp(loss), 1e-3 * ppl);
    bnt_run_result_free(&r);
    r = BNT_RUN_BORN("train", "--model", "gpt", "--data", SHAKESPEARE, "--limit", "20000",
                     "--layers", "2", "--heads", "2", "--dim", "32", "--context", "32", "--batch",
                     "8", "--steps", "12", "--eval-every", "2", "--eval-iters", "2", "--lr", "0.3",
                     "--min-lr", "0.3", "--warmup", "0", "--seed", "3", "--out", best);
    cr_assert_eq(r.exit_code, 0, "stderr: %s", r.err);
    char want[160];
    snprintf(want, sizeof want, "best val loss %.4f at step %lld", min, (long long)argmin);
    cr_assert(strstr(r.out, want), "'%s' not in: %s", want, r.out);
    snprintf(want, sizeof want, "saved %s (the best model: step %lld", best, (long long)argmin);
    cr_assert(strstr(r.out, want), "'%s' not in: %s", want, r.out);
    bnt_run_result_free(&r);
    remove_tree(dir);
}

#define RESUME_ARGS                                                                                \
    "train", "--model", "gpt", "--data", SHAKESPEARE, "--limit", "20000", "--layers", "2",         \
        "--heads", "2", "--dim", "32", "--context", "32", "--batch", "8", "--steps", "20",         \
        "--eval-every", "5", "--eval-iters", "2", "--lr", "3e-3", "--seed", "3", "--dropout",      \
        "0.1", "--json"

Test(cli_gpt, a_resumed_run_continues_bit_for_bit)
{
    need_data();
    char dir[64], a_dir[128], b_dir[128], c_dir[128], a_out[128], b_out[128], path[160],
        other[160];
    temp_dir(dir, sizeof dir);
    snprintf(a_dir, sizeof a_dir, "%s/a", dir);
    snprintf(b_dir, sizeof b_dir, "%s/b", dir);
    snprintf(c_dir, sizeof c_dir, "%s/c", dir);
    snprintf(a_out, sizeof a_out, "%s/a.born", dir);
    snprintf(b_out, sizeof b_out, "%s/b.born", dir);
    /* 20 steps straight, a checkpoint at every evaluation */
    bnt_run_result a = BNT_RUN_BORN(RESUME_ARGS, "--checkpoint", a_dir, "--out", a_out,
                                    "--save-last");
    cr_assert_eq(a.exit_code, 0, "stderr: %s", a.err);
    jv la[8];
    cr_assert_eq(parse_lines(a.out, la, 8), 5);
    for (int s = 5; s <= 20; s += 5) {
        snprintf(path, sizeof path, "%s/step-%07d.born", a_dir, s);
        cr_assert_eq(access(path, R_OK), 0, "%s is missing", path);
    }
    /* 10 steps from its step-10 checkpoint */
    snprintf(path, sizeof path, "%s/step-0000010.born", a_dir);
    bnt_run_result b = BNT_RUN_BORN(RESUME_ARGS, "--checkpoint", b_dir, "--out", b_out,
                                    "--save-last", "--resume", path);
    cr_assert_eq(b.exit_code, 0, "stderr: %s", b.err);
    cr_assert_str_eq(b.err, "", "no warning: the options are the same");
    jv lb[8];
    cr_assert_eq(parse_lines(b.out, lb, 8), 3, "evaluations at 15 and 20 and a final object");
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(num(&lb[i], "step"), num(&la[i + 2], "step"));
        cr_assert_eq(num(&lb[i], "train_loss"), num(&la[i + 2], "train_loss"));
        cr_assert_eq(num(&lb[i], "val_loss"), num(&la[i + 2], "val_loss"));
        cr_assert_eq(num(&lb[i], "lr"), num(&la[i + 2], "lr"));
    }
    cr_assert_eq(num(&lb[2], "first_step"), 11);
    cr_assert_eq(num(&lb[2], "best_val_loss"), num(&la[4], "best_val_loss"));
    cr_assert_eq(num(&lb[2], "best_step"), num(&la[4], "best_step"));
    /* the same weights, AdamW moments, schedules, generators and history */
    snprintf(path, sizeof path, "%s/step-0000020.born", a_dir);
    snprintf(other, sizeof other, "%s/step-0000020.born", b_dir);
    assert_same_bytes(path, other);
    assert_same_bytes(a_out, b_out);
    snprintf(other, sizeof other, "%s/step-0000010.born", b_dir);
    cr_assert_neq(access(other, F_OK), 0, "the resumed run starts after step 10");
    /* a checkpoint evaluates like a model file */
    snprintf(path, sizeof path, "%s/step-0000010.born", a_dir);
    cr_assert_eq(eval_loss(path, "val"), num(&la[1], "val_loss"));
    for (int i = 0; i < 5; i++) jv_free(&la[i]);
    for (int i = 0; i < 3; i++) jv_free(&lb[i]);
    bnt_run_result_free(&a);
    bnt_run_result_free(&b);

    /* --checkpoint-every 2: every second evaluation (and the last step), with text lines */
    bnt_run_result c = BNT_RUN_BORN("train", "--model", "gpt", "--data", SHAKESPEARE, "--limit",
                                    "8000", "--layers", "1", "--heads", "2", "--dim", "16",
                                    "--context", "16", "--batch", "4", "--steps", "7",
                                    "--eval-every", "2", "--eval-iters", "1", "--checkpoint",
                                    c_dir, "--checkpoint-every", "2");
    cr_assert_eq(c.exit_code, 0, "stderr: %s", c.err);
    static const int present[] = {4, 7}, absent[] = {2, 6};
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/step-%07d.born", c_dir, present[i]);
        cr_assert_eq(access(path, R_OK), 0, "%s is missing: %s", path, c.out);
        cr_assert(strstr(c.out, path), "%s", c.out);
        snprintf(path, sizeof path, "%s/step-%07d.born", c_dir, absent[i]);
        cr_assert_neq(access(path, F_OK), 0, "%s should not exist", path);
    }
    bnt_run_result_free(&c);
    remove_tree(dir);
}

/* Exit code `code`, a and b (may be NULL) in stderr, nothing on stdout. */
#define EXPECT_FAIL(code, a, b, ...) expect_usage(BNT_RUN_BORN(__VA_ARGS__), code, a, b)

#define SMALL_ARGS                                                                                 \
    "train", "--model", "gpt", "--data", SHAKESPEARE, "--limit", "8000", "--layers", "1",          \
        "--heads", "2", "--context", "16", "--batch", "4", "--steps", "4", "--eval-every", "2",    \
        "--eval-iters", "1"

Test(cli_gpt, resume_and_eval_refuse_other_models_data_and_damaged_files)
{
    EXPECT_FAIL(2, "--checkpoint-every needs --checkpoint DIR", NULL, "train", "--model", "gpt",
                "--data", "x.txt", "--checkpoint-every", "2");
    EXPECT_FAIL(2, "--save-last needs --out FILE", NULL, "train", "--model", "gpt", "--data",
                "x.txt", "--save-last");
    EXPECT_FAIL(2, "--checkpoint-every must be an integer", NULL, "train", "--model", "gpt",
                "--data", "x.txt", "--checkpoint", "d", "--checkpoint-every", "0");
    EXPECT_FAIL(2, "--split must be val or train, got 'test'", NULL, "eval", "--model", "m.born",
                "--data", "x.txt", "--split", "test");
    EXPECT_FAIL(2, "--iters must be an integer in [1,", NULL, "eval", "--model", "m.born",
                "--data", "x.txt", "--iters", "0");
    EXPECT_FAIL(2, "--data FILE is required", NULL, "eval", "--model", "gpt.born", "--split",
                "val");
    need_data();
    EXPECT_FAIL(1, "/nonexistent/gpt.born", NULL, "eval", "--model", "/nonexistent/gpt.born",
                "--data", SHAKESPEARE);
    EXPECT_FAIL(1, "cannot resume from /nonexistent/step.born", NULL, SMALL_ARGS, "--dim", "16",
                "--resume", "/nonexistent/step.born");
    char dir[64], ck[96], path[160], model[128], bad[160];
    temp_dir(dir, sizeof dir);
    snprintf(ck, sizeof ck, "%s/ck", dir);
    snprintf(model, sizeof model, "%s/m.born", dir);
    bnt_run_result r = BNT_RUN_BORN(SMALL_ARGS, "--dim", "16", "--checkpoint", ck, "--out",
                                    model);
    cr_assert_eq(r.exit_code, 0, "stderr: %s", r.err);
    bnt_run_result_free(&r);
    snprintf(path, sizeof path, "%s/step-0000002.born", ck);
    /* another model: the option that differs is named */
    EXPECT_FAIL(1, "it holds another model: --dim is 32 here but 16 in the checkpoint", path,
                SMALL_ARGS, "--dim", "32", "--resume", path);
    EXPECT_FAIL(1, "--pos is rope here but learned in the checkpoint", NULL, SMALL_ARGS, "--dim",
                "16", "--pos", "rope", "--resume", path);
    EXPECT_FAIL(1, "--untied is given here but was not in the checkpoint", NULL, SMALL_ARGS,
                "--dim", "16", "--untied", "--resume", path);
    /* other data: a shorter slice of the text has fewer characters */
    EXPECT_FAIL(1, "it was trained on other data: its vocabulary has", "--data here gives",
                "train", "--model", "gpt", "--data", SHAKESPEARE, "--limit", "1000", "--layers",
                "1", "--heads", "2", "--context", "16", "--dim", "16", "--resume", path);
    EXPECT_FAIL(1, "its tokenizer is char-level, --tokenizer here is byte", NULL, SMALL_ARGS,
                "--dim", "16", "--tokenizer", "byte", "--resume", path);
    /* not a checkpoint; a checkpoint already at --steps */
    EXPECT_FAIL(1, "it is not a checkpoint", model, SMALL_ARGS, "--dim", "16", "--resume", model);
    snprintf(bad, sizeof bad, "%s/step-0000004.born", ck);
    EXPECT_FAIL(1, "is at step 4: --steps 4 leaves nothing to train", NULL, SMALL_ARGS, "--dim",
                "16", "--resume", bad);
    /* a damaged checkpoint: one flipped byte of data, a truncated file */
    size_t n;
    char *bytes = read_all(path, &n);
    bytes[n - 8] ^= 0x5a;
    snprintf(bad, sizeof bad, "%s/flipped.born", dir);
    FILE *f = fopen(bad, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(bytes, 1, n, f), n);
    fclose(f);
    EXPECT_FAIL(1, "cannot resume from", "checksum mismatch", SMALL_ARGS, "--dim", "16",
                "--resume", bad);
    snprintf(bad, sizeof bad, "%s/short.born", dir);
    f = fopen(bad, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(bytes, 1, n / 2, f), n / 2);
    fclose(f);
    free(bytes);
    EXPECT_FAIL(1, "cannot resume from", bad, SMALL_ARGS, "--dim", "16", "--resume", bad);
    EXPECT_FAIL(1, "born eval:", bad, "eval", "--model", bad, "--data", SHAKESPEARE);
    /* eval: text the model's characters cannot encode; a split shorter than the context */
    char text[128];
    snprintf(text, sizeof text, "%s/snow.txt", dir);
    f = fopen(text, "wb");
    cr_assert_not_null(f);
    for (int i = 0; i < 40; i++) fputs("ROMEO \xe2\x98\x83 JULIET\n", f);
    fclose(f);
    EXPECT_FAIL(1, "born eval:", "U+2603", "eval", "--model", model, "--data", text);
    EXPECT_FAIL(1, "the val split of", "needs at least 17", "eval", "--model", model, "--data",
                SHAKESPEARE, "--limit", "100");
    remove_tree(dir);
}
