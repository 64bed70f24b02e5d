/* tools/born/cmd_eval.c — `born eval --model model.born --data …`: accuracy and the confusion
 * matrix of a saved model on a data set's test split. The options are checked and the data set
 * is opened, but reading model.born needs the formats issue: until it lands, eval says so and
 * exits 1 (the evaluation itself is bn_evaluate, which `born train` already runs each epoch). */
#include "cli.h"
#include "train_common.h"

#include <sys/stat.h>

static int run_eval(const cli_cmd *cmd, const cli_args *args)
{
    train_cfg c;
    int rc = tc_parse(cmd, args, "eval", &c);
    if (rc != TC_PARSE_OK) return rc;
    struct stat st;
    if (stat(c.model, &st) != 0) return tc_fail("eval", "cannot open model '%s'", c.model);
    tc_session s;
    rc = tc_open(&c, &s, false);
    if (rc != CLI_EXIT_OK) return rc;
    tc_close(&s);
    return tc_fail("eval",
                   "loading models needs the formats issue (.born / .safetensors); not available "
                   "yet. 'born train' prints the test accuracy (and with --confusion the "
                   "confusion matrix) after training");
}

static const cli_opt eval_opts[] = {
    {"--model", "-m", "FILE", "the model to evaluate (saved by born train --out)"},
    {"--data", "-d", "DATA", "fashion-mnist (default), mnist, or a directory of IDX files"},
    {"--batch", "-b", "B", "batch size (default 64)"},
    {"--threads", "-t", "T", "CPU threads"},
    {"--limit", NULL, "N", "use only the first N test images"},
    {"--json", NULL, NULL, "write the result as one JSON object"},
    {NULL, NULL, NULL, NULL},
};

const cli_cmd cli_cmd_eval = {
    .name = "eval",
    .summary = "accuracy and confusion matrix of a saved model (needs the formats issue)",
    .args_usage = "",
    .description = "Evaluates a model saved by 'born train --out' on a data set's test split and\n"
                   "prints the accuracy and the confusion matrix. Reading saved models comes with\n"
                   "the formats issue; until then this command checks its options and data and\n"
                   "reports that loading is not available.",
    .opts = eval_opts,
    .max_positional = 0,
    .run = run_eval,
};
