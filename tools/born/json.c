/* tools/born/json.c — the JSON writer behind `born <cmd> --json` (see json.h). It tracks only
 * where commas go; the caller pairs begin/end and keys with values. */
#include "json.h"

#include <math.h>

json_writer jw_writer_make(FILE *f) { return (json_writer){.f = f}; }

/* Before any value or key: a comma when the open container already has an item. */
static void before_item(json_writer *w)
{
    if (w->after_key) {
        w->after_key = false;
        return;
    }
    if (w->depth > 0) {
        if (w->has_items[w->depth - 1]) fputc(',', w->f);
        w->has_items[w->depth - 1] = true;
    }
}

static void begin(json_writer *w, char open)
{
    before_item(w);
    fputc(open, w->f);
    if (w->depth < JSON_MAX_DEPTH) w->has_items[w->depth] = false;
    w->depth++;
}

static void end(json_writer *w, char close)
{
    fputc(close, w->f);
    if (w->depth > 0) w->depth--;
}

void jw_begin_object(json_writer *w) { begin(w, '{'); }
void jw_end_object(json_writer *w) { end(w, '}'); }
void jw_begin_array(json_writer *w) { begin(w, '['); }
void jw_end_array(json_writer *w) { end(w, ']'); }

/* Length of the well-formed UTF-8 sequence at s (1..4), or 0 when it is not one (overlongs,
 * surrogates and code points past U+10FFFF are not). */
static int utf8_sequence_length(const unsigned char *s)
{
    unsigned char c = s[0];
    if (c < 0x80) return 1;
    int n;
    unsigned char lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        if (c == 0xe0) lo = 0xa0;
        if (c == 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        if (c == 0xf0) lo = 0x90;
        if (c == 0xf4) hi = 0x8f;
    } else {
        return 0;
    }
    if (s[1] < lo || s[1] > hi) return 0;
    for (int i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xbf) return 0;
    return n;
}

static void write_escaped(FILE *f, const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    fputc('"', f);
    while (*s) {
        unsigned char c = *s;
        if (c == '"' || c == '\\') {
            fputc('\\', f);
            fputc(c, f);
        } else if (c == '\n') {
            fputs("\\n", f);
        } else if (c == '\t') {
            fputs("\\t", f);
        } else if (c == '\r') {
            fputs("\\r", f);
        } else if (c < 0x20 || c == 0x7f) {
            fprintf(f, "\\u%04x", c);
        } else if (c >= 0x80) {
            int n = utf8_sequence_length(s);
            if (n == 0) {
                fputs("\\ufffd", f); /* one replacement per bad byte */
                n = 1;
            } else {
                fwrite(s, 1, (size_t)n, f);
            }
            s += n;
            continue;
        } else {
            fputc(c, f);
        }
        s++;
    }
    fputc('"', f);
}

void jw_key(json_writer *w, const char *key)
{
    before_item(w);
    write_escaped(w->f, key);
    fputc(':', w->f);
    w->after_key = true;
}

void jw_string(json_writer *w, const char *s)
{
    if (!s) {
        jw_null(w);
        return;
    }
    before_item(w);
    write_escaped(w->f, s);
}

void jw_int(json_writer *w, long long v)
{
    before_item(w);
    fprintf(w->f, "%lld", v);
}

void jw_number(json_writer *w, double v)
{
    before_item(w);
    if (!isfinite(v)) /* JSON has no NaN or infinity */
        fputs("null", w->f);
    else
        fprintf(w->f, "%.10g", v);
}

void jw_bool(json_writer *w, bool v)
{
    before_item(w);
    fputs(v ? "true" : "false", w->f);
}

void jw_null(json_writer *w)
{
    before_item(w);
    fputs("null", w->f);
}
