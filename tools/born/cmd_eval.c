/* tools/born/cmd_eval.c — `born eval --model model.born --data …`: loss, accuracy and the
 * confusion matrix of a model saved by `born train --out` on a data set's test split. The
 * architecture is rebuilt by name from the file (metadata "born.model", or the .born config's
 * "model"), then the weights are loaded strictly. */
#include "cli.h"
#include "json.h"
#include "train_common.h"

#include "born/checkpoint.h"

#include <string.h>

/* The model named by the file, with its weights; NULL after printing why. */
static bn_module *load_model(const char *path, char *name, size_t n)
{
    bn_loaded f = {0};
    if (bn_load_tensors(path, (bn_load_opts){0}, &f) != BN_OK) {
        tc_fail("eval", "%s", bn_error_message());
        bn_loaded_free(&f);
        return NULL;
    }
    const char *meta = bn_metadata_get(&f.metadata, "born.model");
    bool named = meta ? (snprintf(name, n, "%s", meta), true)
                      : tc_config_model(f.config_json, name, n);
    /* a checkpoint holds the model under "model." */
    bool ckpt = bn_metadata_get(&f.metadata, "born.checkpoint") != NULL;
    bn_module *m = named ? bn_model_build(name) : NULL;
    bn_status st = BN_OK;
    if (!named) {
        tc_fail("eval", "%s does not say which model it holds (no \"born.model\" metadata or "
                        "config \"model\"; save it with born train --out)", path);
    } else if (!m) {
        tc_fail("eval", "%s: %s", path, bn_error_message());
    } else if (ckpt) {
        st = bn_checkpoint_load(path, m, NULL, NULL, NULL);
    } else {
        st = bn_module_load_state_dict_ex(m, &f.tensors, true, NULL);
    }
    if (m && st != BN_OK) {
        tc_fail("eval", "%s: %s", path, bn_error_message());
        bn_module_free(m);
        m = NULL;
    }
    bn_loaded_free(&f);
    return m;
}

static void print_json(const train_cfg *c, const char *name, const bn_metrics *r)
{
    json_writer w = jw_writer_make(stdout);
    jw_begin_object(&w);
    jw_key(&w, "model_file");
    jw_string(&w, c->model);
    jw_key(&w, "model");
    jw_string(&w, name);
    jw_key(&w, "data");
    jw_string(&w, c->data);
    tc_json_number(&w, "test_loss", r->loss);
    tc_json_number(&w, "test_accuracy", r->accuracy);
    jw_key(&w, "test_samples");
    jw_int(&w, r->samples);
    jw_key(&w, "correct");
    jw_int(&w, r->correct);
    jw_key(&w, "confusion");
    jw_begin_array(&w);
    for (int i = 0; i < r->num_classes; i++) {
        jw_begin_array(&w);
        for (int j = 0; j < r->num_classes; j++)
            jw_int(&w, r->confusion[(size_t)i * (size_t)r->num_classes + (size_t)j]);
        jw_end_array(&w);
    }
    jw_end_array(&w);
    jw_end_object(&w);
    fputc('\n', stdout);
}

static int run_eval(const cli_cmd *cmd, const cli_args *args)
{
    train_cfg c;
    int rc = tc_parse(cmd, args, "eval", &c);
    if (rc != TC_PARSE_OK) return rc;
    char name[64];
    bn_module *m = load_model(c.model, name, sizeof name);
    if (!m) return CLI_EXIT_FAILURE;
    tc_session s;
    rc = tc_open(&c, &s, false);
    if (rc != CLI_EXIT_OK) {
        bn_module_free(m);
        return rc;
    }
    bn_metrics r = {0};
    if (c.device.type != BN_DEVICE_CPU && bn_module_to_device(m, c.device) != BN_OK) {
        rc = tc_fail("eval", "--device %s: %s", c.device_name, bn_error_message());
    } else if (bn_evaluate(m, s.test_loader, 10, &r) != BN_OK) {
        rc = tc_fail("eval", "%s", bn_error_message());
    } else if (c.json) {
        print_json(&c, name, &r);
    } else {
        printf("born eval: %s (%s) on %s: %lld test images from %s\n", c.model, name, c.data,
               (long long)r.samples, s.dir);
        printf("test loss %.4f  test accuracy %.4f (%lld/%lld)\n", r.loss, r.accuracy,
               (long long)r.correct, (long long)r.samples);
        bn_print_confusion(stdout, &r, bn_fashion_mnist_classes());
    }
    bn_metrics_free(&r);
    bn_module_free(m);
    tc_close(&s);
    return rc;
}

static const cli_opt eval_opts[] = {
    {"--model", "-m", "FILE", "the model to evaluate (saved by born train --out, or a checkpoint)"},
    {"--data", "-d", "DATA", "fashion-mnist (default), mnist, or a directory of IDX files"},
    {"--batch", "-b", "B", "batch size (default 64)"},
    {"--threads", "-t", "T", "CPU threads"},
    {"--device", NULL, "DEV", "cpu (default), cuda or cuda:N"},
    {"--limit", NULL, "N", "use only the first N test images"},
    {"--json", NULL, NULL, "write the result as one JSON object"},
    {NULL, NULL, NULL, NULL},
};

const cli_cmd cli_cmd_eval = {
    .name = "eval",
    .summary = "accuracy and confusion matrix of a saved model",
    .args_usage = "",
    .description = "Evaluates a model saved by 'born train --out' (.born or .safetensors) or a\n"
                   "checkpoint on a data set's test split and prints the loss, the accuracy and\n"
                   "the confusion matrix. The architecture is rebuilt from the name the file\n"
                   "records (metadata \"born.model\" or the .born config's \"model\").\n"
                   "A GPT file (born train --model gpt --out) is evaluated on a text file instead:\n"
                   "born eval --model gpt.born --data FILE [--split val|train] [--iters N]; see\n"
                   "born eval --model gpt --help.\n"
                   "Example: born eval --model model.born --data fashion-mnist",
    .opts = eval_opts,
    .max_positional = 0,
    .run = run_eval,
};
