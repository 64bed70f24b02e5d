/* tools/born/cmd_eval_gpt.c — `born eval --model gpt.born --data FILE`: the mean loss and the
 * perplexity of a GPT saved by `born train --model gpt --out` (or one of its checkpoints) on a
 * split of a text file, tokenized with the tokenizer stored in the model file. The batches are
 * the random windows `born train` evaluates on: with the training run's --seed, --batch,
 * --eval-iters (as --iters) and --limit, the validation loss printed here is the one the run
 * printed for the saved model. main.c routes `born eval` here for GPT files (cli_eval_is_gpt). */
#include "cli.h"
#include "gpt_common.h"
#include "json.h"
#include "train_common.h"

#include "born/checkpoint.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define HELP "born eval"

typedef struct eval_cfg {
    const char *model, *data, *device_name;
    bn_device device;
    bn_text_split split;
    int64_t iters, batch, limit, seed, threads;
    bn_dtype precision;
    bool json;
} eval_cfg;

static int parse(const cli_cmd *cmd, const cli_args *a, eval_cfg *c)
{
    *c = (eval_cfg){.split = BN_SPLIT_VAL, .iters = 20, .batch = 32, .precision = BN_F32};
    c->model = cli_value(cmd, a, "--model");
    if (!c->model)
        return cli_usage_error(HELP, "--model FILE is required (a GPT saved by born train "
                                     "--model gpt --out, or a checkpoint)");
    if (strcmp(c->model, "gpt") == 0)
        return cli_usage_error(HELP, "--model takes the FILE of a GPT saved by born train "
                                     "--model gpt --out, not the word gpt");
    c->data = cli_value(cmd, a, "--data");
    if (!c->data) return cli_usage_error(HELP, "--data FILE is required (a text file)");
    const char *split = cli_value(cmd, a, "--split");
    if (split && strcmp(split, "train") == 0) c->split = BN_SPLIT_TRAIN;
    else if (split && strcmp(split, "val") != 0)
        return cli_usage_error(HELP, "--split must be val or train, got '%s'", split);
    const char *prec = cli_value(cmd, a, "--precision");
    if (prec && strcmp(prec, "bf16") == 0) c->precision = BN_BF16;
    else if (prec && strcmp(prec, "fp32") != 0)
        return cli_usage_error(HELP, "--precision must be fp32 or bf16, got '%s'", prec);
    c->device_name = cli_value(cmd, a, "--device");
    if (!c->device_name) c->device_name = "cpu";
    if (!tc_parse_device(HELP, c->device_name, &c->device)) return CLI_EXIT_USAGE;
    bool ok = cli_opt_int(cmd, a, HELP, "--iters", 1, 1000000, &c->iters) &&
              cli_opt_int(cmd, a, HELP, "--batch", 1, 1 << 20, &c->batch) &&
              cli_opt_int(cmd, a, HELP, "--limit", 1, INT64_MAX, &c->limit) &&
              cli_opt_int(cmd, a, HELP, "--seed", 0, INT64_MAX, &c->seed) &&
              cli_opt_int(cmd, a, HELP, "--threads", 1, 1024, &c->threads);
    if (!ok) return CLI_EXIT_USAGE;
    c->json = cli_has(cmd, a, "--json");
    return TC_PARSE_OK;
}

/* The model and tokenizer of a file saved by born train --model gpt --out, or of one of its
 * checkpoints; NULL after printing why. */
static bn_module *load_gpt(const char *path, bn_tokenizer **tok)
{
    *tok = NULL;
    bn_loaded f = {0};
    if (bn_load_tensors(path, (bn_load_opts){0}, &f) != BN_OK) {
        tc_fail("eval", "%s", bn_error_message());
        bn_loaded_free(&f);
        return NULL;
    }
    bool ckpt = bn_metadata_get(&f.metadata, "born.checkpoint") != NULL;
    const char *config = bn_metadata_get(&f.metadata, "born.gpt.config");
    const char *tj = bn_metadata_get(&f.metadata, "born.tokenizer");
    const char *name = bn_metadata_get(&f.metadata, "born.model");
    bn_module *m = NULL;
    if (name && strcmp(name, "gpt") != 0) {
        tc_fail("eval", "%s holds a '%s' model, not a GPT (born eval --model %s --data "
                        "fashion-mnist evaluates it)", path, name, path);
    } else if (!config) {
        tc_fail("eval", "%s does not hold a GPT (no \"born.gpt.config\" metadata; save one with "
                        "born train --model gpt --out)", path);
    } else if (!tj) {
        tc_fail("eval", "%s holds no tokenizer (\"born.tokenizer\"), so its text cannot be "
                        "encoded", path);
    } else if (!ckpt) {
        m = bn_gpt_load(path, tok);
        if (!m) tc_fail("eval", "%s", bn_error_message());
    } else {
        bn_gpt_config c;
        bn_rng_state rng = bn_rng_get_state();
        if (bn_gpt_config_from_json(config, &c) == BN_OK && (m = bn_gpt_new(&c)) != NULL &&
            bn_checkpoint_load(path, m, NULL, NULL, NULL) == BN_OK)
            *tok = bn_tokenizer_from_json(tj);
        bn_rng_set_state(rng);
        if (!m || !*tok) {
            tc_fail("eval", "%s: %s", path, bn_error_message());
            bn_module_free(m);
            m = NULL;
        }
    }
    bn_loaded_free(&f);
    if (m && !*tok) { /* bn_gpt_load found no tokenizer after all */
        tc_fail("eval", "%s holds no tokenizer", path);
        bn_module_free(m);
        m = NULL;
    }
    return m;
}

static void print_result(const eval_cfg *c, const bn_module *m, const bn_tokenizer *tok,
                         int64_t tokens, double loss)
{
    const bn_gpt_config *g = bn_gpt_config_of(m);
    const char *split = c->split == BN_SPLIT_VAL ? "val" : "train";
    double ppl = exp(loss);
    if (!c->json) {
        printf("born eval: %s (gpt: %lld layers, %lld heads, dim %lld, context %lld, vocab %lld, "
               "%s tokens) on %s, %s split (%lld tokens): %lld batches of %lld x %lld tokens, "
               "seed %lld\n",
               c->model, (long long)g->layers, (long long)g->heads, (long long)g->dim,
               (long long)g->context, (long long)g->vocab_size, bn_tokenizer_type(tok), c->data,
               split, (long long)tokens, (long long)c->iters, (long long)c->batch,
               (long long)g->context, (long long)c->seed);
        printf("%s loss %.4f  perplexity %.4f\n", split, loss, ppl);
        return;
    }
    json_writer w = jw_writer_make(stdout);
    jw_begin_object(&w);
    jw_key(&w, "model_file");
    jw_string(&w, c->model);
    jw_key(&w, "model");
    jw_string(&w, "gpt");
    jw_key(&w, "data");
    jw_string(&w, c->data);
    jw_key(&w, "split");
    jw_string(&w, split);
    jw_key(&w, "split_tokens");
    jw_int(&w, tokens);
    jw_key(&w, "tokenizer");
    jw_string(&w, bn_tokenizer_type(tok));
    jw_key(&w, "vocab_size");
    jw_int(&w, g->vocab_size);
    jw_key(&w, "iters");
    jw_int(&w, c->iters);
    jw_key(&w, "batch");
    jw_int(&w, c->batch);
    jw_key(&w, "context");
    jw_int(&w, g->context);
    jw_key(&w, "seed");
    jw_int(&w, c->seed);
    tc_json_number(&w, "loss", loss);
    tc_json_number(&w, "perplexity", ppl);
    jw_end_object(&w);
    fputc('\n', stdout);
}

static int run_eval_gpt(const cli_cmd *cmd, const cli_args *args)
{
    eval_cfg c;
    int rc = parse(cmd, args, &c);
    if (rc != TC_PARSE_OK) return rc;
    rc = CLI_EXIT_OK;
    if (c.threads && bn_set_num_threads((int)c.threads) != BN_OK)
        return tc_fail("eval", "%s", bn_error_message());
    bn_tokenizer *tok = NULL;
    bn_module *m = load_gpt(c.model, &tok);
    if (!m) return CLI_EXIT_FAILURE;
    bn_text_data *d = bn_text_data_load(c.data, (bn_text_data_opts){.tokenizer = tok,
                                                                    .limit = c.limit});
    const bn_gpt_config *g = bn_gpt_config_of(m);
    int64_t n = d ? bn_text_data_len(d, c.split) : 0;
    double loss = NAN;
    if (!d) {
        rc = tc_fail("eval", "%s", bn_error_message());
    } else if (n < g->context + 1) {
        rc = tc_fail("eval", "the %s split of %s holds %lld tokens; the model's context %lld "
                             "needs at least %lld (use more text)",
                     c.split == BN_SPLIT_VAL ? "val" : "train", c.data, (long long)n,
                     (long long)g->context, (long long)g->context + 1);
    } else if (c.device.type != BN_DEVICE_CPU && bn_module_to_device(m, c.device) != BN_OK) {
        rc = tc_fail("eval", "--device %s: %s", c.device_name, bn_error_message());
    } else if (gpt_mean_loss(m, d, c.split, c.batch, c.iters,
                             (uint64_t)c.seed + (c.split == BN_SPLIT_TRAIN ? 1 : 2), c.precision,
                             false, &loss) != BN_OK) {
        rc = tc_fail("eval", "%s", bn_error_message());
    } else {
        print_result(&c, m, tok, n, loss);
    }
    bn_text_data_free(d);
    bn_tokenizer_free(tok);
    bn_module_free(m);
    return rc;
}

static const cli_opt eval_gpt_opts[] = {
    {"--model", "-m", "FILE", "a GPT saved by born train --model gpt --out, or a checkpoint"},
    {"--data", "-d", "FILE", "a text file (required), encoded with the model's tokenizer"},
    {"--split", NULL, "S", "val (default: the last 10% of the text) or train (the rest)"},
    {"--iters", NULL, "N", "random batches to average (default 20; born train's --eval-iters)"},
    {"--batch", "-b", "B", "sequences per batch (default 32), of the model's context each"},
    {"--seed", "-s", "S", "the training run's --seed: the same windows it evaluated (default 0)"},
    {"--limit", NULL, "N", "use only the first N bytes of the file (as born train --limit)"},
    {"--threads", "-t", "T", "CPU threads"},
    {"--device", NULL, "DEV", "cpu (default), cuda or cuda:N"},
    {"--precision", NULL, "P", "fp32 (default) or bf16 (autocast)"},
    {"--json", NULL, NULL, "write the result as one JSON object"},
    {NULL, NULL, NULL, NULL},
};

const cli_cmd cli_cmd_eval_gpt = {
    .name = "eval",
    .summary = "loss and perplexity of a saved GPT on a text file",
    .args_usage = "",
    .description =
        "Evaluates a GPT saved by 'born train --model gpt --out' (or a --checkpoint file) on a\n"
        "split of a text file: the mean cross-entropy of --iters random windows of the model's\n"
        "context (the windows born train evaluates: with its --seed, --batch, --eval-iters and\n"
        "--limit the loss equals the validation loss it printed) and the perplexity exp(loss).\n"
        "The text is encoded with the tokenizer stored in the model file.\n"
        "Example: born eval --model gpt.born --data tinyshakespeare.txt --split val",
    .opts = eval_gpt_opts,
    .max_positional = 0,
    .run = run_eval_gpt,
};
