/* tests/e2e/test_gpt_cli.c — `born train --model gpt` and `born generate` as a user runs them
 * (CTest passes the binary in BORN_BIN): a tiny GPT trained for a few steps on a slice of Tiny
 * Shakespeare (../shared/data/tinyshakespeare.txt; skipped with a message when it is missing)
 * learns (its losses fall below the uniform guess), reports JSON lines, saves one file that
 * `born generate` continues a prompt from — the same text for the same seed — and bad command
 * lines fail with exit code 2 and a message naming the problem. */
#include "bn_test.h"
#include "json_dom.h"

#include <math.h>
#include <stdio.h>
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
