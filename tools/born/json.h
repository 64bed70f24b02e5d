/* tools/born/json.h — a small streaming JSON writer (jw_*: named apart from jansson, which the
 * library links, so neither shadows the other) for the born command's --json output: no
 * dependency, compact output (one line), strings escaped per RFC 8259 with invalid UTF-8
 * replaced by U+FFFD so the output always parses. */
#ifndef BORN_JSON_H
#define BORN_JSON_H

#include <stdbool.h>
#include <stdio.h>

#define JSON_MAX_DEPTH 16

typedef struct json_writer {
    FILE *f;
    int depth;
    bool has_items[JSON_MAX_DEPTH]; /* per open container: a comma goes before the next item */
    bool after_key;                 /* a key was written; its value comes next, no comma */
} json_writer;

json_writer jw_writer_make(FILE *f);
void jw_begin_object(json_writer *w);
void jw_end_object(json_writer *w);
void jw_begin_array(json_writer *w);
void jw_end_array(json_writer *w);
void jw_key(json_writer *w, const char *key);
void jw_string(json_writer *w, const char *s); /* NULL writes null */
void jw_int(json_writer *w, long long v);
void jw_number(json_writer *w, double v); /* NaN and infinities write null */
void jw_bool(json_writer *w, bool v);
void jw_null(json_writer *w);

#endif
