/* nn/module_repr.c — prints a model the way PyTorch's repr does:
 *
 *     Sequential(
 *       (0): Linear(in_features=784, out_features=128, bias=True)
 *       (1): ReLU()
 *     )
 */
#include "nn/nn_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct strbuf {
    char *s;
    size_t len, cap;
    bool failed;
} strbuf;

static void sb_add(strbuf *b, const char *text)
{
    size_t n = strlen(text);
    if (b->failed) return;
    if (b->len + n + 1 > b->cap) {
        size_t ncap = b->cap ? b->cap * 2 : 256;
        while (ncap < b->len + n + 1) ncap *= 2;
        char *p = realloc(b->s, ncap);
        if (!p) {
            b->failed = true;
            return;
        }
        b->s = p;
        b->cap = ncap;
    }
    memcpy(b->s + b->len, text, n + 1);
    b->len += n;
}

static void sb_indent(strbuf *b, int depth)
{
    for (int i = 0; i < depth; i++) sb_add(b, "  ");
}

static void write_module(strbuf *b, const bn_module *m, int depth)
{
    char extra[256] = "";
    if (m->vt && m->vt->extra_repr) m->vt->extra_repr(m, extra, sizeof extra);
    sb_add(b, bn_module_type_name(m));
    sb_add(b, "(");
    int n = bn_module_num_children(m);
    if (n <= 0) {
        sb_add(b, extra);
        sb_add(b, ")");
        return;
    }
    if (extra[0]) {
        sb_add(b, "\n");
        sb_indent(b, depth + 1);
        sb_add(b, extra);
    }
    for (int i = 0; i < n; i++) {
        const char *name = NULL;
        bn_module *c = bn_module_child_at(m, i, &name);
        sb_add(b, "\n");
        sb_indent(b, depth + 1);
        sb_add(b, "(");
        sb_add(b, name);
        sb_add(b, "): ");
        write_module(b, c, depth + 1);
    }
    sb_add(b, "\n");
    sb_indent(b, depth);
    sb_add(b, ")");
}

char *bn_module_repr(const bn_module *m)
{
    BN_CHECK_NULL("bn_module_repr", m);
    strbuf b = {0};
    write_module(&b, m, 0);
    if (b.failed) {
        free(b.s);
        return bn__error_null(BN_ERR_OOM, "bn_module_repr: out of memory");
    }
    return b.s;
}

const char *bn__py_float(double v, char *buf, size_t n)
{
    snprintf(buf, n, "%.17g", v);
    /* shortest form that reads back the same, like Python's repr */
    for (int prec = 1; prec <= 17; prec++) {
        char tmp[64];
        snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        if (strtod(tmp, NULL) == v) {
            snprintf(buf, n, "%s", tmp);
            break;
        }
    }
    if (!strpbrk(buf, ".eni")) bn__strcatf(buf, n, ".0");
    return buf;
}

void bn__strcatf(char *buf, size_t n, const char *fmt, ...)
{
    size_t len = strlen(buf);
    if (len + 1 >= n) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + len, n - len, fmt, ap);
    va_end(ap);
}
