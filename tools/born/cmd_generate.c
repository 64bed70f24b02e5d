/* tools/born/cmd_generate.c — `born generate --model gpt.born --prompt "ROMEO:" --tokens 200`:
 * loads a GPT saved by `born train --model gpt --out` (model, config and tokenizer in one file),
 * encodes the prompt with its tokenizer and prints the prompt followed by the generated text as
 * it comes (KV-cache generation, gpt.h): greedy at --temperature 0, otherwise sampled with
 * top-k / top-p from a seeded stream, so the same seed gives the same text. The speed goes to
 * stderr; --json prints one object with the text and the timing instead. */
#include "cli.h"
#include "json.h"
#include "train_common.h"

#include "born/born.h"
#include "born/gpt.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define HELP "born generate"

typedef struct gen_cfg {
    const char *model, *prompt;
    int64_t tokens, top_k, window_shift;
    double temperature, top_p;
    uint64_t seed;
    int threads;
    bool json;
} gen_cfg;

static int parse(const cli_cmd *cmd, const cli_args *a, gen_cfg *c)
{
    *c = (gen_cfg){.prompt = "\n", .tokens = 200, .temperature = 0.8, .top_k = 200};
    c->model = cli_value(cmd, a, "--model");
    if (!c->model)
        return cli_usage_error(HELP, "--model FILE is required (a GPT saved by born train "
                                     "--model gpt --out FILE)");
    if (cli_value(cmd, a, "--prompt")) c->prompt = cli_value(cmd, a, "--prompt");
    int64_t seed = 0, threads = 0;
    bool ok = cli_opt_int(cmd, a, HELP, "--tokens", 1, 100000000, &c->tokens) &&
              cli_opt_real(cmd, a, HELP, "--temperature", 0, 100, false, &c->temperature) &&
              cli_opt_int(cmd, a, HELP, "--top-k", 0, INT64_MAX, &c->top_k) &&
              cli_opt_real(cmd, a, HELP, "--top-p", 0, 1, false, &c->top_p) &&
              cli_opt_int(cmd, a, HELP, "--seed", 0, INT64_MAX, &seed) &&
              cli_opt_int(cmd, a, HELP, "--window-shift", 1, 1 << 30, &c->window_shift) &&
              cli_opt_int(cmd, a, HELP, "--threads", 1, 1024, &threads);
    if (!ok) return CLI_EXIT_USAGE;
    if (!c->prompt[0]) return cli_usage_error(HELP, "--prompt must not be empty");
    c->seed = (uint64_t)seed;
    c->threads = (int)threads;
    c->json = cli_has(cmd, a, "--json");
    return TC_PARSE_OK;
}

typedef struct stream {
    const bn_tokenizer *tok;
    bool print;
    bool failed;
} stream;

/* Prints each token as it is made (text mode). */
static bool on_token(void *ctx, int64_t token)
{
    stream *s = ctx;
    if (!s->print) return true;
    size_t len;
    char *t = bn_tokenizer_decode(s->tok, &token, 1, &len);
    if (!t) {
        s->failed = true;
        return false;
    }
    fwrite(t, 1, len, stdout);
    fflush(stdout);
    free(t);
    return true;
}

static int run_generate(const cli_cmd *cmd, const cli_args *args)
{
    gen_cfg c;
    int rc = parse(cmd, args, &c);
    if (rc != TC_PARSE_OK) return rc;
    rc = CLI_EXIT_OK;
    if (c.threads && bn_set_num_threads(c.threads) != BN_OK)
        return tc_fail("generate", "%s", bn_error_message());
    bn_tokenizer *tok = NULL;
    bn_module *m = bn_gpt_load(c.model, &tok);
    if (!m) return tc_fail("generate", "%s", bn_error_message());
    if (!tok) {
        bn_module_free(m);
        return tc_fail("generate", "%s holds no tokenizer (save it with born train --model gpt "
                       "--out, which keeps the tokenizer with the model)", c.model);
    }
    const bn_gpt_config *cfg = bn_gpt_config_of(m);
    if (c.window_shift > cfg->context) {
        bn_tokenizer_free(tok);
        bn_module_free(m);
        return cli_usage_error(HELP, "--window-shift %lld is longer than the model's context %lld",
                               (long long)c.window_shift, (long long)cfg->context);
    }
    int64_t *ids = NULL, n = 0;
    int64_t *out = malloc((size_t)c.tokens * sizeof *out);
    if (!out || bn_tokenizer_encode(tok, c.prompt, strlen(c.prompt), &ids, &n) != BN_OK) {
        rc = tc_fail("generate", "%s", out ? bn_error_message() : "out of memory");
        if (out && bn_error_code() == BN_ERR_ARG)
            fprintf(stderr, "born generate: the model knows %lld characters; the prompt may use "
                    "only those\n", (long long)bn_tokenizer_vocab_size(tok));
        free(out);
        bn_tokenizer_free(tok);
        bn_module_free(m);
        return rc;
    }
    stream st = {.tok = tok, .print = !c.json};
    if (!c.json) {
        fputs(c.prompt, stdout);
        fflush(stdout);
    }
    double t0 = tc_now();
    int64_t made = bn_gpt_generate(m, ids, n, out,
                                   (bn_generate_opts){.max_new_tokens = c.tokens,
                                                      .temperature = c.temperature,
                                                      .top_k = c.top_k, .top_p = c.top_p,
                                                      .seed = c.seed,
                                                      .window_shift = c.window_shift,
                                                      .on_token = on_token, .ctx = &st});
    double secs = tc_now() - t0;
    if (made < 0 || st.failed) {
        if (!c.json) fputc('\n', stdout);
        rc = tc_fail("generate", "%s", bn_error_message());
    } else if (c.json) {
        size_t len;
        char *text = bn_tokenizer_decode(tok, out, made, &len);
        json_writer w = jw_writer_make(stdout);
        jw_begin_object(&w);
        jw_key(&w, "model");
        jw_string(&w, c.model);
        jw_key(&w, "prompt");
        jw_string(&w, c.prompt);
        jw_key(&w, "text");
        jw_string(&w, text ? text : "");
        jw_key(&w, "tokens");
        jw_int(&w, made);
        tc_json_number(&w, "temperature", c.temperature);
        jw_key(&w, "top_k");
        jw_int(&w, c.top_k);
        tc_json_number(&w, "top_p", c.top_p);
        jw_key(&w, "seed");
        jw_int(&w, (long long)c.seed);
        tc_json_number(&w, "seconds", secs);
        tc_json_number(&w, "tokens_per_second", secs > 0 ? (double)made / secs : 0);
        jw_end_object(&w);
        fputc('\n', stdout);
        free(text);
    } else {
        fputc('\n', stdout);
        fflush(stdout);
        fprintf(stderr, "born generate: %lld tokens in %.2f s (%.0f tokens/s)\n", (long long)made,
                secs, secs > 0 ? (double)made / secs : 0);
    }
    free(ids);
    free(out);
    bn_tokenizer_free(tok);
    bn_module_free(m);
    return rc;
}

static const cli_opt generate_opts[] = {
    {"--model", "-m", "FILE", "a GPT saved by born train --model gpt --out (required)"},
    {"--prompt", "-p", "TEXT", "the text to continue (default: a newline)"},
    {"--tokens", "-n", "N", "tokens to generate (default 200)"},
    {"--temperature", NULL, "T", "sampling temperature; 0 is greedy (default 0.8)"},
    {"--top-k", NULL, "K", "sample among the K most likely tokens; 0: all (default 200)"},
    {"--top-p", NULL, "P", "nucleus sampling: the most likely tokens holding mass P; 0: off"},
    {"--seed", "-s", "S", "seed of the sampler (default 0)"},
    {"--window-shift", NULL, "N", "tokens dropped when the context is full (default context/4; "
                                  "1: nanoGPT's crop every step)"},
    {"--threads", "-t", "T", "CPU threads (default: OMP_NUM_THREADS or all cores)"},
    {"--json", NULL, NULL, "print one JSON object (text, tokens, seconds) instead of the text"},
    {NULL, NULL, NULL, NULL},
};

const cli_cmd cli_cmd_generate = {
    .name = "generate",
    .summary = "generate text with a GPT trained by born train --model gpt",
    .args_usage = "",
    .description =
        "Continues --prompt with --tokens tokens from a GPT file (model, config and tokenizer),\n"
        "printing the prompt and then each token as it is made. The prompt runs through the\n"
        "model once; each new token then attends to a KV cache of the earlier ones. When the\n"
        "context is full the oldest tokens are dropped and the cache is rebuilt.\n"
        "Example: born generate --model gpt.born --prompt \"ROMEO:\" --tokens 200 --temperature\n"
        "0.8 --top-k 40 --seed 1",
    .opts = generate_opts,
    .max_positional = 0,
    .run = run_generate,
};
