/* nn/gpt_internal.h — what the GPT files share: the model's layout (gpt.c builds and runs it),
 * the KV cache (gpt_generate.c) and the config helpers (gpt_config.c). Not installed. */
#ifndef BORN_GPT_INTERNAL_H
#define BORN_GPT_INTERNAL_H

#include "born/gpt.h"
#include "nn/nn_internal.h"

/* The decoder-only model: children "transformer" (wte, wpe, h, ln_f) and, untied, "lm_head". */
typedef struct bn__gpt {
    bn_module base;
    bn_gpt_config cfg;  /* resolved */
    bn_module *wte;     /* borrowed (owned through the tree) */
    bn_module *wpe;     /* learned positions only */
    bn_module *ln_f;
    bn_module *lm_head; /* untied only */
    bn_module **blocks; /* cfg.layers of them, borrowed */
} bn__gpt;

/* Per layer, the keys and values of the positions seen so far: (B, kv_heads, context, head_dim)
 * allocated at the first use, rows [0, len) valid. */
struct bn_kv_cache {
    const bn_module *model;
    int64_t batch, len, layers;
    bn_tensor **k, **v;
};

/* The model behind m, or NULL with an error naming fn. */
bn__gpt *bn__gpt_of(const char *fn, const bn_module *m);

/* The final hidden states (B, T, D) of tokens (B, T) at positions pos0 .. pos0 + T - 1, using
 * and filling cache when it is not NULL. Runs inside the caller's scope (returns a tensor that
 * scope owns). */
bn_tensor *bn__gpt_run(bn__gpt *g, const bn_tensor *tokens, int64_t pos0, bn_kv_cache *cache);
/* The classifier weight (V, D): lm_head.weight, or the token embedding when tied (borrowed). */
bn_tensor *bn__gpt_head_weight(const bn__gpt *g);
/* tokens must be an integer (B, T) or (T) tensor with T in [1, room] and ids in [0, vocab);
 * false with an error naming fn otherwise. */
bool bn__gpt_check_tokens(const char *fn, const bn__gpt *g, const bn_tensor *tokens, int64_t room);

#endif
