/* born/gpt.h — decoder-only transformers (GPT-2 and LLaMA shapes) and the text data they train
 * on: byte- and character-level tokenizers, a token data set split into train / validation like
 * nanoGPT, a loader of random windows, the model (causal self-attention with multi-head,
 * grouped-query or multi-query heads; learned / sinusoidal / rotary / ALiBi positions;
 * LayerNorm or RMSNorm pre-norm blocks; a GELU MLP or a gated FFN), its loss through the fused
 * classifier + cross-entropy, generation with a KV cache, and one-file save / load of the model,
 * its config and its tokenizer. The functional layers it is built from are in transformer.h. */
#ifndef BORN_GPT_H
#define BORN_GPT_H

#include "born/io.h"
#include "born/nn.h"
#include "born/tensor.h"
#include "born/transformer.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- tokenizers ------------------------------------------------------------------------------ */
typedef struct bn_tokenizer bn_tokenizer;

/* 256 tokens, one per byte: any text encodes; decoding gives the bytes back. */
BN_API bn_tokenizer *bn_tokenizer_bytes(void);
/* Character level: the vocabulary is the sorted set of the Unicode characters (code points) of
 * text (n bytes of UTF-8), token i being the i-th smallest, like nanoGPT's shakespeare_char.
 * Malformed UTF-8 or an empty text is an error naming the byte offset. */
BN_API bn_tokenizer *bn_tokenizer_chars(const char *text, size_t n);
/* {"type":"byte"} or {"type":"char","vocab":"<the characters in order>"} (malloc'ed; free()). */
BN_API char *bn_tokenizer_to_json(const bn_tokenizer *t);
BN_API bn_tokenizer *bn_tokenizer_from_json(const char *json);
BN_API void bn_tokenizer_free(bn_tokenizer *t); /* NULL is ignored */
BN_API int64_t bn_tokenizer_vocab_size(const bn_tokenizer *t); /* -1 for NULL */
BN_API const char *bn_tokenizer_type(const bn_tokenizer *t);    /* "byte" or "char" */
/* Encodes n bytes of text into *ids (malloc'ed, *count entries; free()). A character outside a
 * character-level vocabulary is BN_ERR_ARG naming it and its byte offset. */
BN_API bn_status bn_tokenizer_encode(const bn_tokenizer *t, const char *text, size_t n,
                                     int64_t **ids, int64_t *count);
/* The text of n ids (malloc'ed and NUL-terminated; *len, when not NULL, gets its length without
 * the NUL, which matters for byte tokens holding 0). An id outside [0, vocab) is BN_ERR_ARG. */
BN_API char *bn_tokenizer_decode(const bn_tokenizer *t, const int64_t *ids, int64_t n,
                                 size_t *len);

/* ---- a token data set over a text file --------------------------------------------------------- */
typedef struct bn_text_data bn_text_data;
typedef enum bn_text_split { BN_SPLIT_TRAIN = 0, BN_SPLIT_VAL } bn_text_split;

/* Zero means the default. */
typedef struct bn_text_data_opts {
    /* NULL: a character-level tokenizer built from the whole file (unless bytes is set); else
     * this one (copied), which must encode every character of the file. */
    const bn_tokenizer *tokenizer;
    bool bytes;          /* byte-level tokens instead of characters */
    double val_fraction; /* the last fraction of the tokens is the validation split; 0: 0.1 */
    int64_t limit;       /* use only the first limit bytes of the file (0: all) */
} bn_text_data_opts;

/* Reads and encodes path; train = the first floor(n * (1 - val_fraction)) tokens, val = the
 * rest (nanoGPT's split). A missing or unreadable file is BN_ERR_IO, an empty one or a
 * validation fraction outside [0, 1) BN_ERR_ARG. */
BN_API bn_text_data *bn_text_data_load(const char *path, bn_text_data_opts o);
/* The same over text in memory (n bytes). */
BN_API bn_text_data *bn_text_data_from_text(const char *text, size_t n, bn_text_data_opts o);
BN_API void bn_text_data_free(bn_text_data *d); /* NULL is ignored */
BN_API const bn_tokenizer *bn_text_data_tokenizer(const bn_text_data *d); /* borrowed */
BN_API int64_t bn_text_data_len(const bn_text_data *d, bn_text_split split); /* tokens; -1 */
/* The tokens of a split as an i64 (n) tensor (a new reference). */
BN_API bn_tensor *bn_text_data_tokens(const bn_text_data *d, bn_text_split split);

/* Random windows like nanoGPT's get_batch: batch offsets i drawn uniformly from
 * [0, len - context) with born's Philox generator, x = tokens[i : i + context], y = tokens[i + 1 :
 * i + 1 + context]. The loader keeps its own generator state (seed, counter), so the sequence of
 * batches is a function of the seed alone and leaves the thread's generator untouched. */
typedef struct bn_text_loader bn_text_loader;
BN_API bn_text_loader *bn_text_loader_new(const bn_text_data *d, bn_text_split split,
                                          int64_t batch, int64_t context, uint64_t seed);
BN_API void bn_text_loader_free(bn_text_loader *l); /* NULL is ignored */
/* *x and *y: i64 (batch, context), new references (registered with the open scope). */
BN_API bn_status bn_text_loader_next(bn_text_loader *l, bn_tensor **x, bn_tensor **y);
/* The generator position, to save with a checkpoint and restore to continue the sequence. */
BN_API bn_rng_state bn_text_loader_get_state(const bn_text_loader *l);
BN_API bn_status bn_text_loader_set_state(bn_text_loader *l, bn_rng_state s);

/* ---- the model --------------------------------------------------------------------------------- */
typedef enum bn_gpt_norm { BN_GPT_LAYERNORM = 0, BN_GPT_RMSNORM } bn_gpt_norm;
typedef enum bn_gpt_ffn {
    BN_GPT_FFN_GELU = 0,  /* Linear(D, F) → GELU (erf form, like nanoGPT) → Linear(F, D) */
    BN_GPT_FFN_GELU_TANH, /* the same with GPT-2's tanh approximation */
    BN_GPT_FFN_SWIGLU,    /* Linear(D, 2F) → silu(a) * b → Linear(F, D) (LLaMA) */
    BN_GPT_FFN_GEGLU,     /* gelu(a) * b */
    BN_GPT_FFN_REGLU      /* relu(a) * b */
} bn_gpt_ffn;
typedef enum bn_gpt_pos {
    BN_GPT_POS_LEARNED = 0, /* a trained (context, D) table added to the token embeddings */
    BN_GPT_POS_SINUSOIDAL,  /* the fixed sin/cos table added instead */
    BN_GPT_POS_ROPE,        /* rotary embedding of q and k in every layer (rope options) */
    BN_GPT_POS_ALIBI,       /* per-head linear biases on the attention scores */
    BN_GPT_POS_NONE         /* no position information beyond the causal mask */
} bn_gpt_pos;

/* Zero means the default where one is given. */
typedef struct bn_gpt_config {
    int64_t vocab_size; /* required */
    int64_t context;    /* the longest sequence (block size); required */
    int64_t layers;     /* required */
    int64_t heads;      /* query heads; required */
    int64_t kv_heads;   /* 0: heads (multi-head); fewer: grouped-query; 1: multi-query */
    int64_t dim;        /* model width D, a multiple of heads; required */
    /* FFN width F; 0: 4 D, or for gated FFNs LLaMA's rule: 2/3 of 4 D rounded up to a multiple
     * of ffn_multiple_of (0: 256). */
    int64_t ffn_hidden;
    int64_t ffn_multiple_of;
    bn_gpt_norm norm;
    bn_gpt_ffn ffn;
    bn_gpt_pos pos;
    bn_rope_opts rope; /* BN_GPT_POS_ROPE: base, rotary_dim, interleaved, scaling (offset and
                          positions are set by the model) */
    double norm_eps;   /* 0: 1e-5 */
    bool no_bias;      /* no biases in the linear layers and LayerNorms (LLaMA; nanoGPT bias=False) */
    bool untied;       /* a separate lm_head.weight instead of the token embedding (tied: GPT-2) */
    double dropout;    /* on the embeddings, the attention weights and each residual branch */
    bool checkpoint;   /* recompute each block in backward instead of keeping its activations */
} bn_gpt_config;

/* Fills *out with a named configuration: "gpt2" (GPT-2 124M: vocab 50257, context 1024, 12
 * layers, 12 heads, D 768, learned positions, LayerNorm, GELU, biases, tied), "baby" (nanoGPT's
 * Shakespeare-char model: vocab 65, context 256, 6 layers, 6 heads, D 384, dropout 0.2) and
 * "llama" (LLaMA-2-7B shapes: vocab 32000, context 4096, 32 layers, 32 heads, D 4096, F 11008,
 * RMSNorm, SwiGLU, RoPE, no biases, untied). Change the fields you need afterwards. */
BN_API bn_status bn_gpt_preset(const char *name, bn_gpt_config *out);
/* *c with every zero default made explicit (ffn_hidden computed, kv_heads set, …), after
 * checking it; BN_ERR_ARG names the first bad field. */
BN_API bn_status bn_gpt_config_resolve(const bn_gpt_config *c, bn_gpt_config *out);
/* The config as a JSON object ({"model":"gpt","vocab_size":…}; malloc'ed, free()) and back. */
BN_API char *bn_gpt_config_to_json(const bn_gpt_config *c);
BN_API bn_status bn_gpt_config_from_json(const char *json, bn_gpt_config *out);

/* A new model in training mode, initialised like GPT-2 (nanoGPT): linear and embedding weights
 * normal(0, 0.02), the residual projections (attn.c_proj, mlp.c_proj) normal(0, 0.02 /
 * sqrt(2 layers)), biases 0, norm weights 1, drawn from the thread's generator. State-dict names
 * follow nanoGPT: transformer.wte.weight, transformer.wpe.weight, transformer.h.<i>.ln_1.weight,
 * .attn.c_attn.weight (fused q, k, v: ((heads + 2 kv_heads) * head_dim, D)), .attn.c_proj.weight,
 * .ln_2.weight, .mlp.c_fc.weight (gated: (2F, D), a then b), .mlp.c_proj.weight,
 * transformer.ln_f.weight and, when untied, lm_head.weight. bn_module_forward(m, tokens) gives
 * the logits. */
BN_API bn_module *bn_gpt_new(const bn_gpt_config *c);
/* The resolved config of a model made by bn_gpt_new; NULL (with an error) for another module. */
BN_API const bn_gpt_config *bn_gpt_config_of(const bn_module *m);
BN_API bool bn_is_gpt(const bn_module *m);
/* Switches activation checkpointing on or off. */
BN_API bn_status bn_gpt_set_checkpointing(bn_module *m, bool on);

/* tokens: integer (B, T) or (T), T <= context, ids in [0, vocab). Logits (B, T, V) (or (T, V)). */
BN_API bn_tensor *bn_gpt_forward(bn_module *m, const bn_tensor *tokens);
/* The final hidden states after ln_f (B, T, D), before the classifier. */
BN_API bn_tensor *bn_gpt_hidden(bn_module *m, const bn_tensor *tokens);
/* The mean cross-entropy of predicting targets (tokens' shape; -1 entries are ignored) through
 * bn_linear_cross_entropy on the hidden states, so the full (B T, V) logits are never kept. */
BN_API bn_tensor *bn_gpt_loss(bn_module *m, const bn_tensor *tokens, const bn_tensor *targets);

/* ---- KV cache and generation ------------------------------------------------------------------ */
typedef struct bn_kv_cache bn_kv_cache;
/* A cache for batch sequences of up to the model's context (allocated on first use, in the
 * model's dtype and device). It belongs to m: free it before m. */
BN_API bn_kv_cache *bn_kv_cache_new(const bn_module *m, int64_t batch);
BN_API void bn_kv_cache_free(bn_kv_cache *c); /* NULL is ignored */
BN_API int64_t bn_kv_cache_len(const bn_kv_cache *c); /* positions held; -1 for NULL */
BN_API void bn_kv_cache_reset(bn_kv_cache *c);
/* Runs tokens (B, Tn) as positions len .. len + Tn - 1 against the cached keys and values,
 * appends theirs and returns the logits (B, Tn, V). len + Tn must not pass the context. Runs
 * without recording gradients, in the model's current mode (use eval). */
BN_API bn_tensor *bn_gpt_forward_cached(bn_module *m, bn_kv_cache *c, const bn_tensor *tokens);

/* Probabilities (f64, logits' shape) of sampling from logits (..., V) after dividing by
 * temperature (> 0), keeping the top_k largest (0: all; ties with the k-th are kept, like
 * nanoGPT) and then the smallest set of most likely tokens whose mass reaches top_p (0 or 1:
 * all; HF's rule, the most likely token always stays). */
BN_API bn_tensor *bn_sampling_probs(const bn_tensor *logits, double temperature, int64_t top_k,
                                    double top_p);

/* Called with each generated token; return false to stop. */
typedef bool (*bn_token_fn)(void *ctx, int64_t token);
typedef struct bn_generate_opts {
    int64_t max_new_tokens; /* required (> 0) */
    double temperature;     /* 0: greedy (argmax) */
    int64_t top_k;          /* 0: no top-k filter */
    double top_p;           /* 0: no nucleus filter */
    uint64_t seed;          /* the sampler's own Philox stream: same seed, same text */
    /* When the context is full, the oldest window_shift tokens are dropped and the rest is run
     * again to rebuild the cache (nanoGPT crops to the last context tokens every step: 1 does
     * exactly that at a full forward per token); 0: context / 4. */
    int64_t window_shift;
    bn_token_fn on_token; /* or NULL */
    void *ctx;
} bn_generate_opts;
/* Continues prompt (n_prompt >= 1 ids) by up to max_new_tokens tokens written to out, with a
 * KV cache: the prompt (its last context tokens) is run once, then one token at a time. The
 * model is put in eval mode for the call and its mode restored. Returns the number of tokens
 * generated, or -1 with an error. */
BN_API int64_t bn_gpt_generate(bn_module *m, const int64_t *prompt, int64_t n_prompt,
                               int64_t *out, bn_generate_opts o);

/* ---- one file per model ----------------------------------------------------------------------- */
/* Saves the weights, the config (the .born config JSON, plus metadata "born.model" = "gpt" and
 * "born.gpt.config") and the tokenizer (metadata "born.tokenizer", when tok is not NULL) in a
 * .born (or .safetensors) file; extra metadata entries are added when given. */
BN_API bn_status bn_gpt_save(const bn_module *m, const char *path, const bn_tokenizer *tok,
                             const bn_metadata *extra);
/* Rebuilds the model from such a file and loads its weights strictly; *tok (when not NULL)
 * receives the tokenizer, or NULL when the file holds none. */
BN_API bn_module *bn_gpt_load(const char *path, bn_tokenizer **tok);

#ifdef __cplusplus
}
#endif
#endif
