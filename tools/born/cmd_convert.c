/* tools/born/cmd_convert.c — `born convert IN OUT [--dtype f16|bf16|f32]`: rewrites a model
 * between .born and .safetensors (formats by extension), keeping tensor names, order and
 * metadata, optionally casting every floating-point tensor to one dtype. A .born config travels
 * to safetensors as the metadata entry "born.config" and comes back from it. */
#include "cli.h"
#include "train_common.h"

#include <string.h>

/* f16 / bf16 / f32 → *dt; false for anything else. */
static bool parse_dtype(const char *s, bn_dtype *dt)
{
    if (strcmp(s, "f16") == 0) *dt = BN_F16;
    else if (strcmp(s, "bf16") == 0) *dt = BN_BF16;
    else if (strcmp(s, "f32") == 0) *dt = BN_F32;
    else return false;
    return true;
}

/* Replaces every float tensor of l by its cast to dt. */
static bn_status cast_floats(bn_tensor_list *l, bn_dtype dt)
{
    for (int i = 0; i < l->count; i++) {
        bn_tensor *t = l->tensors[i];
        if (!bn_dtype_is_float(bn_dtype_of(t)) || bn_dtype_of(t) == dt) continue;
        bn_tensor *c = bn_to_dtype(t, dt);
        if (!c) return bn_error_code();
        bn_retain(c); /* the list's reference; the open scope keeps its own */
        l->tensors[i] = c;
        bn_release(t);
    }
    return BN_OK;
}

static bool ends_with(const char *s, const char *ext)
{
    size_t n = strlen(s), e = strlen(ext);
    return n > e && strcmp(s + n - e, ext) == 0;
}

static bn_status write_out(const char *out, bn_loaded *f)
{
    if (ends_with(out, ".born")) {
        const char *config = f->config_json ? f->config_json
                                            : bn_metadata_get(&f->metadata, "born.config");
        /* the config goes back to its own header field, not the metadata */
        bn_metadata md = {0};
        bn_status st = BN_OK;
        for (int i = 0; st == BN_OK && i < f->metadata.count; i++)
            if (strcmp(f->metadata.keys[i], "born.config") != 0)
                st = bn_metadata_set(&md, f->metadata.keys[i], f->metadata.values[i]);
        if (st == BN_OK)
            st = bn_save_tensors(out, &f->tensors,
                                 (bn_save_opts){.metadata = &md, .config_json = config});
        bn_metadata_free(&md);
        return st;
    }
    if (f->config_json && bn_metadata_set(&f->metadata, "born.config", f->config_json) != BN_OK)
        return bn_error_code();
    return bn_save_tensors(out, &f->tensors, (bn_save_opts){.metadata = &f->metadata});
}

static int run_convert(const cli_cmd *cmd, const cli_args *args)
{
    if (args->npositional != 2)
        return cli_usage_error("born convert", "give IN and OUT (.born or .safetensors)");
    const char *in = args->positional[0], *out = args->positional[1];
    const char *dts = cli_value(cmd, args, "--dtype");
    bn_dtype dt = BN_F32;
    if (dts && !parse_dtype(dts, &dt))
        return cli_usage_error("born convert", "--dtype must be f16, bf16 or f32, got '%s'", dts);
    if (!ends_with(out, ".born") && !ends_with(out, ".safetensors"))
        return cli_usage_error("born convert", "OUT '%s' must end in .born or .safetensors", out);
    if (strcmp(in, out) == 0)
        return cli_usage_error("born convert", "IN and OUT are the same file '%s'", in);
    bn_loaded f = {0};
    bn_status st = bn_load_tensors(in, (bn_load_opts){0}, &f);
    bn_scope_begin();
    if (st == BN_OK && dts) st = cast_floats(&f.tensors, dt);
    if (st == BN_OK) st = write_out(out, &f);
    bn_scope_end();
    int rc = st == BN_OK ? CLI_EXIT_OK : tc_fail("convert", "%s", bn_error_message());
    bn_loaded_free(&f);
    return rc;
}

static const cli_opt convert_opts[] = {
    {"--dtype", NULL, "DT", "cast floating-point tensors to f16, bf16 or f32"},
    {NULL, NULL, NULL, NULL},
};

const cli_cmd cli_cmd_convert = {
    .name = "convert",
    .summary = "convert a model between .born and .safetensors (optionally to f16/bf16/f32)",
    .args_usage = "IN OUT",
    .description = "Reads IN and writes OUT, each .born or .safetensors by extension, with the same\n"
                   "tensor names, order and metadata. --dtype casts every floating-point tensor\n"
                   "(integer tensors are kept). A .born config is kept in safetensors as the\n"
                   "metadata entry \"born.config\" and restored when converting back.\n"
                   "Example: born convert model.born model.safetensors --dtype bf16",
    .opts = convert_opts,
    .max_positional = 2,
    .run = run_convert,
};
