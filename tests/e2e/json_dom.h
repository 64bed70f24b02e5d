/* tests/e2e/json_dom.h — a strict little JSON parser (RFC 8259) for the tests that read the born
 * command's --json output: it rejects anything a real parser would (trailing commas, raw control
 * characters in strings, bad escapes, leading zeros, duplicate keys, text after the value) and
 * builds a small tree to look fields up in. Header-only: static functions for one test file. */
#ifndef BORN_TEST_JSON_DOM_H
#define BORN_TEST_JSON_DOM_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

typedef enum jv_kind { JV_NULL, JV_BOOL, JV_NUMBER, JV_STRING, JV_ARRAY, JV_OBJECT } jv_kind;

typedef struct jv {
    jv_kind kind;
    bool boolean;
    double number;
    char *string;     /* JV_STRING, decoded UTF-8 */
    struct jv *items; /* JV_ARRAY elements or JV_OBJECT values */
    char **keys;      /* JV_OBJECT keys */
    int n;
} jv;

typedef struct jv_parser {
    const char *s;
    size_t pos;
    const char *error; /* first failure, NULL while fine */
    size_t error_pos;
    int depth;
} jv_parser;

static bool jv_fail(jv_parser *p, const char *why)
{
    if (!p->error) {
        p->error = why;
        p->error_pos = p->pos;
    }
    return false;
}

static void jv_skip_ws(jv_parser *p)
{
    while (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' || p->s[p->pos] == '\n' ||
           p->s[p->pos] == '\r')
        p->pos++;
}

static bool jv_literal(jv_parser *p, const char *word)
{
    size_t n = strlen(word);
    if (strncmp(p->s + p->pos, word, n) != 0) return jv_fail(p, "bad literal");
    p->pos += n;
    return true;
}

static bool jv_is_digit(char c) { return c >= '0' && c <= '9'; }

static bool jv_number(jv_parser *p, jv *out)
{
    size_t start = p->pos;
    if (p->s[p->pos] == '-') p->pos++;
    if (p->s[p->pos] == '0') {
        p->pos++;
        if (jv_is_digit(p->s[p->pos])) return jv_fail(p, "leading zero in a number");
    } else if (jv_is_digit(p->s[p->pos])) {
        while (jv_is_digit(p->s[p->pos])) p->pos++;
    } else {
        return jv_fail(p, "bad number");
    }
    if (p->s[p->pos] == '.') {
        p->pos++;
        if (!jv_is_digit(p->s[p->pos])) return jv_fail(p, "no digit after '.'");
        while (jv_is_digit(p->s[p->pos])) p->pos++;
    }
    if (p->s[p->pos] == 'e' || p->s[p->pos] == 'E') {
        p->pos++;
        if (p->s[p->pos] == '+' || p->s[p->pos] == '-') p->pos++;
        if (!jv_is_digit(p->s[p->pos])) return jv_fail(p, "no digit in the exponent");
        while (jv_is_digit(p->s[p->pos])) p->pos++;
    }
    out->kind = JV_NUMBER;
    out->number = strtod(p->s + start, NULL);
    return true;
}

static int jv_hex4(const char *s)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

static size_t jv_put_utf8(char *dst, unsigned cp)
{
    if (cp < 0x80) {
        dst[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        dst[0] = (char)(0xc0 | (cp >> 6));
        dst[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        dst[0] = (char)(0xe0 | (cp >> 12));
        dst[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        dst[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    dst[0] = (char)(0xf0 | (cp >> 18));
    dst[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    dst[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    dst[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* A \uXXXX escape (p->pos at the 'u'), surrogate pairs joined. */
static bool jv_unicode_escape(jv_parser *p, unsigned *cp)
{
    int hi = jv_hex4(p->s + p->pos + 1);
    if (hi < 0) return jv_fail(p, "bad \\u escape");
    p->pos += 5;
    if (hi >= 0xdc00 && hi <= 0xdfff) return jv_fail(p, "lone low surrogate");
    if (hi >= 0xd800 && hi <= 0xdbff) {
        if (p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u') return jv_fail(p, "lone surrogate");
        int lo = jv_hex4(p->s + p->pos + 2);
        if (lo < 0xdc00 || lo > 0xdfff) return jv_fail(p, "bad low surrogate");
        p->pos += 6;
        *cp = 0x10000 + (((unsigned)hi - 0xd800) << 10) + ((unsigned)lo - 0xdc00);
        return true;
    }
    *cp = (unsigned)hi;
    return true;
}

/* p->pos at the opening quote; *out is malloc'd. */
static bool jv_string_raw(jv_parser *p, char **out)
{
    p->pos++;
    size_t cap = strlen(p->s + p->pos) + 1, n = 0;
    char *buf = malloc(cap);
    if (!buf) return jv_fail(p, "out of memory");
    for (;;) {
        unsigned char c = (unsigned char)p->s[p->pos];
        if (c == '"') break;
        if (c == '\0') {
            free(buf);
            return jv_fail(p, "unterminated string");
        }
        if (c < 0x20) {
            free(buf);
            return jv_fail(p, "raw control character in a string");
        }
        if (c != '\\') {
            buf[n++] = (char)c;
            p->pos++;
            continue;
        }
        p->pos++;
        char e = p->s[p->pos];
        const char *simple = strchr("\"\\/bfnrt", e);
        if (e != '\0' && simple) {
            static const char decoded[] = "\"\\/\b\f\n\r\t";
            buf[n++] = decoded[simple - "\"\\/bfnrt"];
            p->pos++;
        } else if (e == 'u') {
            unsigned cp;
            if (!jv_unicode_escape(p, &cp)) {
                free(buf);
                return false;
            }
            n += jv_put_utf8(buf + n, cp); /* never longer than the escape it replaces */
        } else {
            free(buf);
            return jv_fail(p, "bad escape");
        }
    }
    p->pos++;
    buf[n] = '\0';
    *out = buf;
    return true;
}

static bool jv_value(jv_parser *p, jv *out);
static void jv_free(jv *v);

static bool jv_push(jv *v, jv item, char *key)
{
    jv *items = realloc(v->items, sizeof(jv) * (size_t)(v->n + 1));
    if (!items) return false;
    v->items = items;
    if (v->kind == JV_OBJECT) {
        char **keys = realloc(v->keys, sizeof(char *) * (size_t)(v->n + 1));
        if (!keys) return false;
        v->keys = keys;
        v->keys[v->n] = key;
    }
    v->items[v->n++] = item;
    return true;
}

/* Elements of an array or members of an object, after the opening bracket. */
static bool jv_container(jv_parser *p, jv *out, char close)
{
    p->pos++;
    jv_skip_ws(p);
    if (p->s[p->pos] == close) {
        p->pos++;
        return true;
    }
    for (;;) {
        char *key = NULL;
        jv_skip_ws(p);
        if (close == '}') {
            if (p->s[p->pos] != '"') return jv_fail(p, "expected a key");
            if (!jv_string_raw(p, &key)) return false;
            for (int i = 0; i < out->n; i++)
                if (strcmp(out->keys[i], key) == 0) {
                    free(key);
                    return jv_fail(p, "duplicate key");
                }
            jv_skip_ws(p);
            if (p->s[p->pos] != ':') {
                free(key);
                return jv_fail(p, "expected ':'");
            }
            p->pos++;
        }
        jv item = {0};
        if (!jv_value(p, &item) || !jv_push(out, item, key)) {
            jv_free(&item);
            free(key);
            return jv_fail(p, "bad element");
        }
        jv_skip_ws(p);
        if (p->s[p->pos] == ',') {
            p->pos++;
            continue;
        }
        if (p->s[p->pos] == close) {
            p->pos++;
            return true;
        }
        return jv_fail(p, "expected ',' or a closing bracket");
    }
}

static bool jv_value(jv_parser *p, jv *out)
{
    jv_skip_ws(p);
    if (++p->depth > 64) return jv_fail(p, "nested too deep");
    bool ok;
    char c = p->s[p->pos];
    if (c == '{') {
        out->kind = JV_OBJECT;
        ok = jv_container(p, out, '}');
    } else if (c == '[') {
        out->kind = JV_ARRAY;
        ok = jv_container(p, out, ']');
    } else if (c == '"') {
        out->kind = JV_STRING;
        ok = jv_string_raw(p, &out->string);
    } else if (c == 't' || c == 'f') {
        out->kind = JV_BOOL;
        out->boolean = c == 't';
        ok = jv_literal(p, c == 't' ? "true" : "false");
    } else if (c == 'n') {
        out->kind = JV_NULL;
        ok = jv_literal(p, "null");
    } else {
        ok = jv_number(p, out);
    }
    p->depth--;
    return ok;
}

static void jv_free(jv *v)
{
    for (int i = 0; i < v->n; i++) {
        jv_free(&v->items[i]);
        if (v->keys) free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->string);
    *v = (jv){0};
}

/* Parses the whole text (one value, whitespace around it); on failure *error says why. */
static bool jv_parse(const char *text, jv *out, const char **error, size_t *error_pos)
{
    jv_parser p = {.s = text};
    *out = (jv){0};
    bool ok = jv_value(&p, out);
    if (ok) {
        jv_skip_ws(&p);
        if (p.s[p.pos] != '\0') ok = jv_fail(&p, "text after the value");
    }
    if (!ok) {
        jv_free(out);
        *error = p.error ? p.error : "invalid";
        *error_pos = p.error_pos;
    }
    return ok;
}

/* The member named key of an object (NULL when absent or v is not an object). */
static const jv *jv_get(const jv *v, const char *key)
{
    if (!v || v->kind != JV_OBJECT) return NULL;
    for (int i = 0; i < v->n; i++)
        if (strcmp(v->keys[i], key) == 0) return &v->items[i];
    return NULL;
}

/* Whether an array holds the string s. */
static bool jv_array_has_string(const jv *v, const char *s)
{
    if (!v || v->kind != JV_ARRAY) return false;
    for (int i = 0; i < v->n; i++)
        if (v->items[i].kind == JV_STRING && strcmp(v->items[i].string, s) == 0) return true;
    return false;
}

#endif
