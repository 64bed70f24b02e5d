/* tests/fuzz/fuzz_text.c — libFuzzer target for the text side of the transformer stack: the
 * parsers of what a GPT model file or a training text brings in from outside. The first byte of
 * each input picks the parser, the rest is its input:
 *   'T'  bn_tokenizer_from_json (a model file's tokenizer), then a round trip through it
 *   'C'  bn_gpt_config_from_json (a model file's config), then bn_gpt_config_resolve
 *   'D'  bn_text_data_from_text with a character tokenizer (UTF-8 decoding of a training text)
 *   'E'  encode/decode of arbitrary bytes with a fixed character tokenizer (unknown characters)
 * Each must return a value or a clean error — never crash, read out of bounds or leak. The seed
 * corpus is tests/data/text/. Built and run by `make fuzz` (scripts/fuzz.sh), like the others. */
#include "born/born.h"
#include "born/gpt.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void tokenizer_json(const char *s)
{
    bn_tokenizer *t = bn_tokenizer_from_json(s);
    if (!t) return;
    char *j = bn_tokenizer_to_json(t);
    bn_tokenizer *u = j ? bn_tokenizer_from_json(j) : NULL;
    if (j && (!u || bn_tokenizer_vocab_size(u) != bn_tokenizer_vocab_size(t))) abort();
    free(j);
    bn_tokenizer_free(u);
    bn_tokenizer_free(t);
}

static void config_json(const char *s)
{
    bn_gpt_config c, r;
    if (bn_gpt_config_from_json(s, &c) != BN_OK) return;
    (void)bn_gpt_config_resolve(&c, &r);
    char *j = bn_gpt_config_to_json(&c);
    free(j);
}

static void text_data(const char *s, size_t n)
{
    bn_text_data *d = bn_text_data_from_text(s, n, (bn_text_data_opts){0});
    if (!d) return;
    volatile int64_t sink = bn_text_data_len(d, BN_SPLIT_TRAIN) + bn_text_data_len(d, BN_SPLIT_VAL);
    (void)sink;
    bn_text_data_free(d);
}

static void encode_decode(const char *s, size_t n)
{
    static const char alphabet[] = "\n !',-.:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    bn_tokenizer *t = bn_tokenizer_chars(alphabet, sizeof alphabet - 1);
    if (!t) abort();
    int64_t *ids = NULL, count = 0;
    if (bn_tokenizer_encode(t, s, n, &ids, &count) == BN_OK) {
        size_t len = 0;
        char *back = bn_tokenizer_decode(t, ids, count, &len);
        if (!back || len != n || memcmp(back, s, n) != 0) abort(); /* an exact round trip */
        free(back);
    }
    free(ids);
    bn_tokenizer_free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    size_t n = size - 1;
    char *s = malloc(n + 1); /* NUL-terminated copy for the JSON parsers */
    if (!s) return 0;
    memcpy(s, data + 1, n);
    s[n] = '\0';
    switch (data[0]) {
    case 'T': tokenizer_json(s); break;
    case 'C': config_json(s); break;
    case 'D': text_data(s, n); break;
    case 'E': encode_decode(s, n); break;
    default: break;
    }
    free(s);
    bn_error_clear();
    return 0;
}
