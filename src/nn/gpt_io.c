/* nn/gpt_io.c — a GPT in one file: the weights (state dict), the config (the .born header's
 * config object, repeated in the metadata "born.gpt.config" so a .safetensors file carries it
 * too) and the tokenizer (metadata "born.tokenizer"); loading rebuilds the model from the config
 * and loads the weights strictly. */
#include "nn/gpt_internal.h"
#include "born/checkpoint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bn_status bn_gpt_save(const bn_module *m, const char *path, const bn_tokenizer *tok,
                      const bn_metadata *extra)
{
    const char *fn = "bn_gpt_save";
    bn__gpt *g = bn__gpt_of(fn, m);
    if (!g) return bn_error_code();
    BN_CHECK_NULL_STATUS(fn, path);
    char *config = bn_gpt_config_to_json(&g->cfg);
    char *tj = config && tok ? bn_tokenizer_to_json(tok) : NULL;
    if (!config || (tok && !tj)) {
        free(config);
        return bn_error_code();
    }
    bn_metadata md = {0};
    bn_status st = BN_OK;
    for (int i = 0; extra && st == BN_OK && i < extra->count; i++)
        st = bn_metadata_set(&md, extra->keys[i], extra->values[i]);
    if (st == BN_OK) st = bn_metadata_set(&md, "born.model", "gpt");
    if (st == BN_OK) st = bn_metadata_set(&md, "born.gpt.config", config);
    if (st == BN_OK && tj) st = bn_metadata_set(&md, "born.tokenizer", tj);
    if (st == BN_OK) st = bn_module_save_ex(m, path, config, &md);
    bn_metadata_free(&md);
    free(config);
    free(tj);
    return st;
}

bn_module *bn_gpt_load(const char *path, bn_tokenizer **tok)
{
    const char *fn = "bn_gpt_load";
    if (tok) *tok = NULL;
    BN_CHECK_NULL(fn, path);
    bn_loaded f = {0};
    if (bn_load_tensors(path, (bn_load_opts){0}, &f) != BN_OK) {
        bn_loaded_free(&f);
        return NULL;
    }
    const char *cfg_json = f.config_json ? f.config_json
                                         : bn_metadata_get(&f.metadata, "born.gpt.config");
    const char *model = bn_metadata_get(&f.metadata, "born.model");
    const char *tok_json = bn_metadata_get(&f.metadata, "born.tokenizer");
    bn_gpt_config c;
    bn_module *m = NULL;
    bn_tokenizer *t = NULL;
    if ((model && strcmp(model, "gpt") != 0) || !cfg_json) {
        bn__error(BN_ERR_FORMAT, "%s: %s does not hold a GPT (%s%s%s)", fn, path,
                  model ? "its model is \"" : "no model config", model ? model : "",
                  model ? "\"" : "");
    } else if (bn_gpt_config_from_json(cfg_json, &c) == BN_OK &&
               (!tok || !tok_json || (t = bn_tokenizer_from_json(tok_json)) != NULL)) {
        /* the weights come from the file: building must not move the caller's generator */
        bn_rng_state rng = bn_rng_get_state();
        m = bn_gpt_new(&c);
        bn_rng_set_state(rng);
        if (m && bn_module_load_state_dict_ex(m, &f.tensors, true, NULL) != BN_OK) {
            bn_module_free(m);
            m = NULL;
        }
    }
    if (!m && bn_error_code() != BN_OK && strncmp(bn_error_message(), fn, strlen(fn)) != 0) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", bn_error_message());
        bn__error(bn_error_code(), "%s: %s: %s", fn, path, msg);
    }
    bn_loaded_free(&f);
    if (!m) {
        bn_tokenizer_free(t);
        return NULL;
    }
    if (tok) *tok = t;
    return m;
}
