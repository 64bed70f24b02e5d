/* tools/born/cmd_inspect.c — `born inspect FILE [--json] [--verify]`: what a .born or
 * .safetensors file holds — its format, every tensor's name, dtype, shape and size, the metadata,
 * the .born config and the parameter count — read from the header alone (the data stays
 * mapped, untouched) unless --verify checks the .born SHA-256 of the data section. */
#include "cli.h"
#include "json.h"
#include "train_common.h"

#include <string.h>

typedef struct file_totals {
    int64_t elements, bytes;
    int64_t params; /* elements of the model's tensors: all but a checkpoint's "optim.*" */
} file_totals;

static file_totals totals(const bn_loaded *f)
{
    file_totals t = {0};
    for (int i = 0; i < f->tensors.count; i++) {
        const bn_tensor *x = f->tensors.tensors[i];
        int64_t n = bn_numel(x);
        t.elements += n;
        t.bytes += n * (int64_t)bn_dtype_size(bn_dtype_of(x));
        if (strncmp(f->tensors.names[i], "optim.", 6) != 0) t.params += n;
    }
    return t;
}

static void shape_text(const bn_tensor *t, char *buf, size_t n)
{
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int d = 0; d < bn_ndim(t) && k < n; d++)
        k += (size_t)snprintf(buf + k, n - k, "%s%lld", d ? ", " : "", (long long)bn_dim(t, d));
    if (k < n) snprintf(buf + k, n - k, "]");
}

static void print_text(const char *path, const bn_loaded *f, bool verified)
{
    file_totals t = totals(f);
    printf("%s: %s, %d tensor%s, %lld bytes of data%s\n", path, f->format, f->tensors.count,
           f->tensors.count == 1 ? "" : "s", (long long)t.bytes,
           verified ? ", checksum verified" : "");
    printf("parameters: %lld\n", (long long)t.params);
    for (int i = 0; i < f->tensors.count; i++) {
        const bn_tensor *x = f->tensors.tensors[i];
        char shape[256];
        shape_text(x, shape, sizeof shape);
        printf("  %-40s %-5s %-20s %lld bytes\n", f->tensors.names[i],
               bn_dtype_name(bn_dtype_of(x)), shape,
               (long long)(bn_numel(x) * (int64_t)bn_dtype_size(bn_dtype_of(x))));
    }
    if (f->metadata.count) printf("metadata:\n");
    for (int i = 0; i < f->metadata.count; i++)
        printf("  %s: %s\n", f->metadata.keys[i], f->metadata.values[i]);
    if (f->config_json) printf("config: %s\n", f->config_json);
}

static void print_json(const char *path, const bn_loaded *f, bool verified)
{
    file_totals t = totals(f);
    json_writer w = jw_writer_make(stdout);
    jw_begin_object(&w);
    jw_key(&w, "file");
    jw_string(&w, path);
    jw_key(&w, "format");
    jw_string(&w, f->format);
    jw_key(&w, "verified");
    jw_bool(&w, verified);
    jw_key(&w, "parameters");
    jw_int(&w, t.params);
    jw_key(&w, "data_bytes");
    jw_int(&w, t.bytes);
    jw_key(&w, "tensors");
    jw_begin_array(&w);
    for (int i = 0; i < f->tensors.count; i++) {
        const bn_tensor *x = f->tensors.tensors[i];
        jw_begin_object(&w);
        jw_key(&w, "name");
        jw_string(&w, f->tensors.names[i]);
        jw_key(&w, "dtype");
        jw_string(&w, bn_dtype_name(bn_dtype_of(x)));
        jw_key(&w, "shape");
        jw_begin_array(&w);
        for (int d = 0; d < bn_ndim(x); d++) jw_int(&w, bn_dim(x, d));
        jw_end_array(&w);
        jw_key(&w, "bytes");
        jw_int(&w, bn_numel(x) * (int64_t)bn_dtype_size(bn_dtype_of(x)));
        jw_end_object(&w);
    }
    jw_end_array(&w);
    jw_key(&w, "metadata");
    jw_begin_object(&w);
    for (int i = 0; i < f->metadata.count; i++) {
        jw_key(&w, f->metadata.keys[i]);
        jw_string(&w, f->metadata.values[i]);
    }
    jw_end_object(&w);
    jw_key(&w, "config"); /* the config text, as a string (it is the file's, unchecked) */
    jw_string(&w, f->config_json);
    jw_end_object(&w);
    fputc('\n', stdout);
}

static int run_inspect(const cli_cmd *cmd, const cli_args *args)
{
    if (args->npositional != 1) return cli_usage_error("born inspect", "give one FILE to inspect");
    const char *path = args->positional[0];
    bool verify = cli_has(cmd, args, "--verify");
    bn_loaded f = {0};
    if (bn_load_tensors(path, (bn_load_opts){.verify = verify}, &f) != BN_OK) {
        bn_loaded_free(&f);
        return tc_fail("inspect", "%s", bn_error_message());
    }
    bool verified = verify && strcmp(f.format, "born") == 0;
    if (cli_has(cmd, args, "--json"))
        print_json(path, &f, verified);
    else
        print_text(path, &f, verified);
    bn_loaded_free(&f);
    return CLI_EXIT_OK;
}

static const cli_opt inspect_opts[] = {
    {"--json", NULL, NULL, "write the result as one JSON object"},
    {"--verify", NULL, NULL, "check the .born file's SHA-256 of the data section"},
    {NULL, NULL, NULL, NULL},
};

const cli_cmd cli_cmd_inspect = {
    .name = "inspect",
    .summary = "tensors, dtypes, shapes, metadata and parameter count of a .born/.safetensors file",
    .args_usage = "FILE",
    .description = "Lists what a .born or .safetensors file holds: its format, each tensor's name,\n"
                   "dtype, shape and size, the metadata, the .born config (the model's\n"
                   "architecture) and the parameter count (a checkpoint's optimizer state is not\n"
                   "counted). Only the header is read; --verify also checks the SHA-256 of a\n"
                   ".born file's data section. Exit code 1 for a file that is not valid.\n"
                   "Example: born inspect model.born --verify",
    .opts = inspect_opts,
    .max_positional = 1,
    .run = run_inspect,
};
