/* data/text.c — text for language models: a byte-level tokenizer (256 ids) and a character-level
 * one whose vocabulary is the sorted set of a text's Unicode characters (nanoGPT's
 * shakespeare_char), both serialisable as a small JSON object; a token data set over a text file
 * split into train / validation (the last 10% by default, like nanoGPT); and a loader of random
 * windows whose offsets come from born's Philox generator through a state the loader keeps, so
 * a seed fixes the batches. Not here: subword tokenizers (BPE, SentencePiece: llm/). */
#include "born/gpt.h"
#include "core/internal.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- UTF-8 ------------------------------------------------------------------------------------ */

/* Decodes the character at s[*i] (n bytes in all), advancing *i; -1 for malformed UTF-8 (overlong
 * forms, surrogates and values above U+10FFFF included). */
static int32_t utf8_next(const unsigned char *s, size_t n, size_t *i)
{
    unsigned c = s[*i];
    int len;
    uint32_t cp, min;
    if (c < 0x80) {
        (*i)++;
        return (int32_t)c;
    } else if ((c & 0xE0) == 0xC0) {
        len = 2, cp = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3, cp = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        len = 4, cp = c & 0x07, min = 0x10000;
    } else {
        return -1;
    }
    if (*i + (size_t)len > n) return -1;
    for (int k = 1; k < len; k++) {
        unsigned b = s[*i + (size_t)k];
        if ((b & 0xC0) != 0x80) return -1;
        cp = cp << 6 | (b & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return -1;
    *i += (size_t)len;
    return (int32_t)cp;
}

/* Writes cp as UTF-8 into out (room for 4); returns the byte count. */
static int utf8_put(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | cp >> 12);
        out[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | cp >> 18);
    out[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* "'a' (U+0061)" or "U+0007" for characters that do not print, into buf. */
static const char *char_label(uint32_t cp, char *buf, size_t n)
{
    if (cp >= 0x20 && cp != 0x7F && cp != '\'') {
        char u[5] = {0};
        utf8_put(cp, u);
        snprintf(buf, n, "'%s' (U+%04X)", u, (unsigned)cp);
    } else {
        snprintf(buf, n, "U+%04X", (unsigned)cp);
    }
    return buf;
}

/* ---- tokenizers ------------------------------------------------------------------------------- */

typedef enum tok_kind { TOK_BYTE, TOK_CHAR } tok_kind;

struct bn_tokenizer {
    tok_kind kind;
    int64_t vocab;
    uint32_t *chars;    /* TOK_CHAR: the code points, ascending */
    int32_t ascii[128]; /* TOK_CHAR: id of each ASCII character, -1 when absent */
};

static bn_tokenizer *tok_alloc(const char *fn, tok_kind kind)
{
    bn_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return bn__error_null(BN_ERR_OOM, "%s: out of memory", fn);
    t->kind = kind;
    for (int i = 0; i < 128; i++) t->ascii[i] = -1;
    return t;
}

void bn_tokenizer_free(bn_tokenizer *t)
{
    if (!t) return;
    free(t->chars);
    free(t);
}

bn_tokenizer *bn_tokenizer_bytes(void)
{
    bn_tokenizer *t = tok_alloc("bn_tokenizer_bytes", TOK_BYTE);
    if (t) t->vocab = 256;
    return t;
}

static void tok_index_ascii(bn_tokenizer *t)
{
    for (int64_t i = 0; i < t->vocab && t->chars[i] < 128; i++) t->ascii[t->chars[i]] = (int32_t)i;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

bn_tokenizer *bn_tokenizer_chars(const char *text, size_t n)
{
    const char *fn = "bn_tokenizer_chars";
    if (!text) return bn__null_arg(fn, "text");
    if (n == 0) return bn__error_null(BN_ERR_ARG, "%s: the text is empty (no characters to "
                                      "build a vocabulary from)", fn);
    /* ASCII in a bitmap; the rest collected, then sorted and deduplicated */
    bool seen[128] = {false};
    uint32_t *other = NULL;
    size_t nother = 0, cap = 0;
    const unsigned char *s = (const unsigned char *)text;
    for (size_t i = 0; i < n;) {
        size_t at = i;
        int32_t cp = utf8_next(s, n, &i);
        if (cp < 0) {
            free(other);
            return bn__error_null(BN_ERR_FORMAT, "%s: malformed UTF-8 at byte %zu (0x%02X)", fn,
                                  at, s[at]);
        }
        if (cp < 128) {
            seen[cp] = true;
            continue;
        }
        if (nother == cap) {
            cap = cap ? cap * 2 : 64;
            uint32_t *g = realloc(other, cap * sizeof *g);
            if (!g) {
                free(other);
                return bn__error_null(BN_ERR_OOM, "%s: out of memory", fn);
            }
            other = g;
        }
        other[nother++] = (uint32_t)cp;
    }
    if (nother) qsort(other, nother, sizeof *other, cmp_u32);
    size_t nuniq = 0;
    for (size_t i = 0; i < nother; i++)
        if (i == 0 || other[i] != other[i - 1]) other[nuniq++] = other[i];
    size_t nascii = 0;
    for (int c = 0; c < 128; c++) nascii += seen[c];
    bn_tokenizer *t = tok_alloc(fn, TOK_CHAR);
    if (t) t->chars = malloc((nascii + nuniq) * sizeof *t->chars);
    if (!t || !t->chars) {
        free(other);
        bn_tokenizer_free(t);
        return t ? bn__error_null(BN_ERR_OOM, "%s: out of memory", fn) : NULL;
    }
    for (int c = 0; c < 128; c++)
        if (seen[c]) t->chars[t->vocab++] = (uint32_t)c;
    for (size_t i = 0; i < nuniq; i++) t->chars[t->vocab++] = other[i];
    free(other);
    tok_index_ascii(t);
    return t;
}

int64_t bn_tokenizer_vocab_size(const bn_tokenizer *t) { return t ? t->vocab : -1; }

const char *bn_tokenizer_type(const bn_tokenizer *t)
{
    if (!t) return "?";
    return t->kind == TOK_BYTE ? "byte" : "char";
}

/* The id of cp, or -1. */
static int64_t tok_lookup(const bn_tokenizer *t, uint32_t cp)
{
    if (cp < 128) return t->ascii[cp];
    int64_t lo = 0, hi = t->vocab - 1;
    while (lo <= hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (t->chars[mid] == cp) return mid;
        if (t->chars[mid] < cp) lo = mid + 1;
        else hi = mid - 1;
    }
    return -1;
}

bn_status bn_tokenizer_encode(const bn_tokenizer *t, const char *text, size_t n, int64_t **ids,
                              int64_t *count)
{
    const char *fn = "bn_tokenizer_encode";
    if (ids) *ids = NULL;
    if (count) *count = 0;
    BN_CHECK_NULL_STATUS(fn, t);
    BN_CHECK_NULL_STATUS(fn, ids);
    BN_CHECK_NULL_STATUS(fn, count);
    if (!text && n) return bn__null_arg_status(fn, "text");
    int64_t *out = malloc((n ? n : 1) * sizeof *out); /* one id per byte at most */
    if (!out) return bn__error(BN_ERR_OOM, "%s: out of memory (%zu ids)", fn, n);
    const unsigned char *s = (const unsigned char *)text;
    int64_t k = 0;
    if (t->kind == TOK_BYTE) {
        for (size_t i = 0; i < n; i++) out[k++] = s[i];
    } else {
        for (size_t i = 0; i < n;) {
            size_t at = i;
            int32_t cp = utf8_next(s, n, &i);
            int64_t id = cp < 0 ? -1 : tok_lookup(t, (uint32_t)cp);
            if (id >= 0) {
                out[k++] = id;
                continue;
            }
            free(out);
            if (cp < 0)
                return bn__error(BN_ERR_FORMAT, "%s: malformed UTF-8 at byte %zu (0x%02X)", fn,
                                 at, s[at]);
            char label[32];
            return bn__error(BN_ERR_ARG, "%s: character %s at byte %zu is not in the "
                             "vocabulary (%lld characters)", fn,
                             char_label((uint32_t)cp, label, sizeof label), at,
                             (long long)t->vocab);
        }
    }
    *ids = out;
    *count = k;
    return BN_OK;
}

char *bn_tokenizer_decode(const bn_tokenizer *t, const int64_t *ids, int64_t n, size_t *len)
{
    const char *fn = "bn_tokenizer_decode";
    if (len) *len = 0;
    BN_CHECK_NULL(fn, t);
    if (!ids && n > 0) return bn__null_arg(fn, "ids");
    if (n < 0) return bn__error_null(BN_ERR_ARG, "%s: n is %lld, expected >= 0", fn, (long long)n);
    for (int64_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= t->vocab)
            return bn__error_null(BN_ERR_ARG, "%s: id %lld at position %lld is outside the "
                                  "vocabulary [0, %lld)", fn, (long long)ids[i], (long long)i,
                                  (long long)t->vocab);
    size_t per = t->kind == TOK_BYTE ? 1 : 4;
    char *out = malloc((size_t)n * per + 1);
    if (!out) return bn__error_null(BN_ERR_OOM, "%s: out of memory", fn);
    size_t k = 0;
    for (int64_t i = 0; i < n; i++) {
        if (t->kind == TOK_BYTE) out[k++] = (char)ids[i];
        else k += (size_t)utf8_put(t->chars[ids[i]], out + k);
    }
    out[k] = '\0';
    if (len) *len = k;
    return out;
}

char *bn_tokenizer_to_json(const bn_tokenizer *t)
{
    const char *fn = "bn_tokenizer_to_json";
    BN_CHECK_NULL(fn, t);
    json_t *o = json_object();
    char *text = NULL;
    size_t n = 0;
    if (o && t->kind == TOK_CHAR) {
        int64_t ids_n = t->vocab;
        int64_t *ids = malloc((size_t)ids_n * sizeof *ids);
        if (ids) {
            for (int64_t i = 0; i < ids_n; i++) ids[i] = i;
            text = bn_tokenizer_decode(t, ids, ids_n, &n);
            free(ids);
        }
        if (!text) {
            json_decref(o);
            return bn__error_null(BN_ERR_OOM, "%s: out of memory", fn);
        }
    }
    char *s = NULL;
    if (o && json_object_set_new(o, "type", json_string(bn_tokenizer_type(t))) == 0 &&
        (t->kind == TOK_BYTE || json_object_set_new(o, "vocab", json_stringn(text, n)) == 0))
        s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    free(text);
    if (!s) return bn__error_null(BN_ERR_OOM, "%s: out of memory", fn);
    return s;
}

bn_tokenizer *bn_tokenizer_from_json(const char *json)
{
    const char *fn = "bn_tokenizer_from_json";
    BN_CHECK_NULL(fn, json);
    json_error_t err;
    json_t *o = json_loads(json, JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, &err);
    if (!o || !json_is_object(o)) {
        json_decref(o);
        return bn__error_null(BN_ERR_FORMAT, "%s: not a JSON object (%s)", fn,
                              o ? "another JSON value" : err.text);
    }
    const char *type = json_string_value(json_object_get(o, "type"));
    bn_tokenizer *t = NULL;
    if (type && strcmp(type, "byte") == 0) {
        t = bn_tokenizer_bytes();
    } else if (type && strcmp(type, "char") == 0) {
        json_t *v = json_object_get(o, "vocab");
        const char *s = json_string_value(v);
        size_t n = s ? json_string_length(v) : 0;
        if (!s || n == 0) {
            bn__error(BN_ERR_FORMAT, "%s: a \"char\" tokenizer needs a non-empty string "
                      "\"vocab\"", fn);
        } else if ((t = bn_tokenizer_chars(s, n)) != NULL) {
            /* the characters must be listed once each, in order: then ids mean the same */
            size_t i = 0;
            for (int64_t id = 0; id < t->vocab; id++) {
                int32_t cp = utf8_next((const unsigned char *)s, n, &i);
                if (cp != (int32_t)t->chars[id]) break;
            }
            if (i != n) {
                bn_tokenizer_free(t);
                t = NULL;
                bn__error(BN_ERR_FORMAT, "%s: \"vocab\" must list distinct characters in "
                          "ascending order", fn);
            }
        }
    } else {
        bn__error(BN_ERR_FORMAT, "%s: \"type\" is %s%s%s, expected \"byte\" or \"char\"", fn,
                  type ? "\"" : "", type ? type : "missing", type ? "\"" : "");
    }
    json_decref(o);
    return t;
}

static bn_tokenizer *tok_copy(const bn_tokenizer *src)
{
    bn_tokenizer *t = tok_alloc("bn_text_data_load", src->kind);
    if (!t) return NULL;
    *t = *src;
    t->chars = NULL;
    if (src->kind == TOK_CHAR) {
        t->chars = malloc((size_t)src->vocab * sizeof *t->chars);
        if (!t->chars) {
            free(t);
            return bn__error_null(BN_ERR_OOM, "bn_text_data_load: out of memory");
        }
        memcpy(t->chars, src->chars, (size_t)src->vocab * sizeof *t->chars);
    }
    return t;
}

/* ---- the data set ----------------------------------------------------------------------------- */

struct bn_text_data {
    bn_tokenizer *tok;
    bn_tensor *tokens; /* i64 (n), contiguous on the CPU */
    int64_t n, ntrain;
};

void bn_text_data_free(bn_text_data *d)
{
    if (!d) return;
    bn_tokenizer_free(d->tok);
    bn_release(d->tokens);
    free(d);
}

static bn_text_data *data_build(const char *fn, const char *what, const char *text, size_t n,
                                bn_text_data_opts o)
{
    double vf = o.val_fraction == 0 ? 0.1 : o.val_fraction;
    if (!(vf >= 0 && vf < 1))
        return bn__error_null(BN_ERR_ARG, "%s: val_fraction is %g, expected a value in [0, 1)",
                              fn, o.val_fraction);
    if (o.limit < 0)
        return bn__error_null(BN_ERR_ARG, "%s: limit is %lld, expected >= 0", fn,
                              (long long)o.limit);
    if (o.limit && (size_t)o.limit < n) {
        n = (size_t)o.limit;
        /* do not cut a character in two */
        while (n > 0 && ((unsigned char)text[n] & 0xC0) == 0x80 && !o.bytes &&
               !(o.tokenizer && o.tokenizer->kind == TOK_BYTE))
            n--;
    }
    if (n == 0) return bn__error_null(BN_ERR_ARG, "%s: %s holds no text", fn, what);
    bn_text_data *d = calloc(1, sizeof *d);
    if (!d) return bn__error_null(BN_ERR_OOM, "%s: out of memory", fn);
    d->tok = o.tokenizer ? tok_copy(o.tokenizer)
             : o.bytes   ? bn_tokenizer_bytes()
                         : bn_tokenizer_chars(text, n);
    int64_t *ids = NULL, count = 0;
    if (!d->tok || bn_tokenizer_encode(d->tok, text, n, &ids, &count) != BN_OK) {
        if (d->tok) {
            char msg[600];
            snprintf(msg, sizeof msg, "%s", bn_error_message());
            bn__error(bn_error_code(), "%s: %s: %s", fn, what, msg);
        }
        bn_text_data_free(d);
        return NULL;
    }
    int64_t dims[1] = {count};
    d->tokens = bn__empty(dims, 1, BN_I64, bn_cpu());
    if (!d->tokens) {
        free(ids);
        bn_text_data_free(d);
        return NULL;
    }
    memcpy(bn__data(d->tokens), ids, (size_t)count * sizeof *ids);
    free(ids);
    d->n = count;
    d->ntrain = (int64_t)((double)count * (1.0 - vf));
    return d;
}

bn_text_data *bn_text_data_from_text(const char *text, size_t n, bn_text_data_opts o)
{
    if (!text && n) return bn__null_arg("bn_text_data_from_text", "text");
    return data_build("bn_text_data_from_text", "the text", text ? text : "", n, o);
}

bn_text_data *bn_text_data_load(const char *path, bn_text_data_opts o)
{
    const char *fn = "bn_text_data_load";
    BN_CHECK_NULL(fn, path);
    FILE *f = fopen(path, "rb");
    if (!f) return bn__error_null(BN_ERR_IO, "%s: cannot open '%s': %s", fn, path, strerror(errno));
    char *buf = NULL;
    size_t n = 0, cap = 0;
    bool failed = false;
    for (;;) {
        if (n + 65536 + 1 > cap) {
            size_t ncap = cap ? cap * 2 : 1 << 20;
            char *g = realloc(buf, ncap);
            if (!g) {
                failed = true;
                break;
            }
            buf = g;
            cap = ncap;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) break;
        if (o.limit > 0 && n > (size_t)o.limit + 4) break; /* enough (and a character past it) */
    }
    bool read_error = ferror(f);
    fclose(f);
    if (failed || read_error) {
        free(buf);
        return failed ? bn__error_null(BN_ERR_OOM, "%s: out of memory reading '%s'", fn, path)
                      : bn__error_null(BN_ERR_IO, "%s: cannot read '%s' (is it a directory?)",
                                       fn, path);
    }
    buf[n] = '\0';
    char what[4200];
    snprintf(what, sizeof what, "'%s'", path);
    bn_text_data *d = data_build(fn, what, buf, n, o);
    free(buf);
    return d;
}

const bn_tokenizer *bn_text_data_tokenizer(const bn_text_data *d)
{
    BN_CHECK_NULL("bn_text_data_tokenizer", d);
    return d->tok;
}

static bool split_ok(const char *fn, bn_text_split s)
{
    if (s == BN_SPLIT_TRAIN || s == BN_SPLIT_VAL) return true;
    bn__error(BN_ERR_ARG, "%s: split is %d, expected BN_SPLIT_TRAIN or BN_SPLIT_VAL", fn, (int)s);
    return false;
}

int64_t bn_text_data_len(const bn_text_data *d, bn_text_split split)
{
    if (!d) {
        bn__null_arg("bn_text_data_len", "d");
        return -1;
    }
    if (!split_ok("bn_text_data_len", split)) return -1;
    return split == BN_SPLIT_TRAIN ? d->ntrain : d->n - d->ntrain;
}

bn_tensor *bn_text_data_tokens(const bn_text_data *d, bn_text_split split)
{
    BN_CHECK_NULL("bn_text_data_tokens", d);
    if (!split_ok("bn_text_data_tokens", split)) return NULL;
    int64_t start = split == BN_SPLIT_TRAIN ? 0 : d->ntrain;
    int64_t len = split == BN_SPLIT_TRAIN ? d->ntrain : d->n - d->ntrain;
    return bn_narrow(d->tokens, 0, start, len);
}

/* ---- random windows --------------------------------------------------------------------------- */

struct bn_text_loader {
    bn_tensor *tokens; /* the data set's tensor (a reference) */
    int64_t start, len, batch, context;
    bn_rng_state rng;
};

bn_text_loader *bn_text_loader_new(const bn_text_data *d, bn_text_split split, int64_t batch,
                                   int64_t context, uint64_t seed)
{
    const char *fn = "bn_text_loader_new";
    BN_CHECK_NULL(fn, d);
    if (!split_ok(fn, split)) return NULL;
    if (batch < 1 || context < 1)
        return bn__error_null(BN_ERR_ARG, "%s: batch %lld and context %lld must be >= 1", fn,
                              (long long)batch, (long long)context);
    int64_t len = bn_text_data_len(d, split);
    if (len < context + 1)
        return bn__error_null(BN_ERR_ARG, "%s: the %s split holds %lld tokens, fewer than "
                              "context + 1 = %lld (use a longer text or a shorter context)", fn,
                              split == BN_SPLIT_TRAIN ? "train" : "val", (long long)len,
                              (long long)(context + 1));
    bn_text_loader *l = calloc(1, sizeof *l);
    if (!l) return bn__error_null(BN_ERR_OOM, "%s: out of memory", fn);
    bn_retain(d->tokens);
    l->tokens = d->tokens;
    l->start = split == BN_SPLIT_TRAIN ? 0 : d->ntrain;
    l->len = len;
    l->batch = batch;
    l->context = context;
    l->rng = (bn_rng_state){.seed = seed, .offset = 0};
    return l;
}

void bn_text_loader_free(bn_text_loader *l)
{
    if (!l) return;
    bn_release(l->tokens);
    free(l);
}

bn_rng_state bn_text_loader_get_state(const bn_text_loader *l)
{
    if (!l) {
        bn__null_arg("bn_text_loader_get_state", "l");
        return (bn_rng_state){0};
    }
    return l->rng;
}

bn_status bn_text_loader_set_state(bn_text_loader *l, bn_rng_state s)
{
    BN_CHECK_NULL_STATUS("bn_text_loader_set_state", l);
    l->rng = s;
    return BN_OK;
}

bn_status bn_text_loader_next(bn_text_loader *l, bn_tensor **x, bn_tensor **y)
{
    const char *fn = "bn_text_loader_next";
    if (x) *x = NULL;
    if (y) *y = NULL;
    BN_CHECK_NULL_STATUS(fn, l);
    BN_CHECK_NULL_STATUS(fn, x);
    BN_CHECK_NULL_STATUS(fn, y);
    /* the offsets come from the loader's own stream; the thread's generator is left as it was */
    bn_rng_state saved = bn_rng_get_state();
    bn_rng_set_state(l->rng);
    bn__scope_suspend();
    bn_tensor *ix = bn_randint(0, l->len - l->context, BN_SHAPE(l->batch), BN_I64);
    bn__scope_resume();
    l->rng = bn_rng_get_state();
    bn_rng_set_state(saved);
    if (!ix) return bn_error_code();
    int64_t dims[2] = {l->batch, l->context};
    bn_tensor *bx = bn__empty(dims, 2, BN_I64, bn_cpu());
    bn_tensor *by = bx ? bn__empty(dims, 2, BN_I64, bn_cpu()) : NULL;
    if (!by) {
        bn_release(ix);
        bn_release(bx);
        return bn_error_code();
    }
    const int64_t *src = (const int64_t *)bn__data(l->tokens) + l->start;
    const int64_t *off = bn__data(ix);
    int64_t *px = bn__data(bx), *py = bn__data(by);
    size_t row = (size_t)l->context * sizeof(int64_t);
    for (int64_t b = 0; b < l->batch; b++) {
        memcpy(px + b * l->context, src + off[b], row);
        memcpy(py + b * l->context, src + off[b] + 1, row);
    }
    bn_release(ix);
    *x = bn__out(bx);
    *y = bn__out(by);
    return BN_OK;
}
