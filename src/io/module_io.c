/* io/module_io.c — a module's state dict to and from a file (.born or .safetensors, by
 * extension): bn_module_save / bn_module_load from io.h, and from checkpoint.h the non-strict
 * load that reports missing, unexpected and shape-mismatched keys by name. The file formats
 * themselves are bn_save_tensors / bn_load_tensors (io/born_*.c, io/safetensors*.c). */
#include "born/checkpoint.h"
#include "born/io.h"
#include "born/nn.h"
#include "core/internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void bn_load_report_free(bn_load_report *r)
{
    if (!r) return;
    for (int i = 0; i < r->n_missing; i++) free(r->missing[i]);
    for (int i = 0; i < r->n_unexpected; i++) free(r->unexpected[i]);
    for (int i = 0; i < r->n_mismatched; i++) free(r->mismatched[i]);
    free(r->missing);
    free(r->unexpected);
    free(r->mismatched);
    *r = (bn_load_report){0};
}

/* Appends a formatted string to (*list, *n); false when out of memory. */
static bool push_string(char ***list, int *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static bool push_string(char ***list, int *n, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    char **grown = realloc(*list, sizeof(char *) * (size_t)(*n + 1));
    if (!grown) return false;
    *list = grown;
    size_t len = strlen(buf) + 1;
    grown[*n] = malloc(len);
    if (!grown[*n]) return false;
    memcpy(grown[*n], buf, len);
    (*n)++;
    return true;
}

static int find_name(const bn_tensor_list *l, const char *name)
{
    for (int i = 0; i < l->count; i++)
        if (strcmp(l->names[i], name) == 0) return i;
    return -1;
}

static const char *shape_str(const bn_tensor *t, char *buf, size_t n)
{
    bn_shape s = bn_shape_of(t);
    return bn__dims_str(s.dims, s.ndim, buf, n);
}

/* Fills r with the differences between the module's entries (own) and the file's (sd). */
static bool compare_lists(const bn_tensor_list *own, const bn_tensor_list *sd, bn_load_report *r)
{
    for (int i = 0; i < own->count; i++) {
        int j = find_name(sd, own->names[i]);
        if (j < 0) {
            if (!push_string(&r->missing, &r->n_missing, "%s", own->names[i])) return false;
            continue;
        }
        if (bn_shape_equal(bn_shape_of(own->tensors[i]), bn_shape_of(sd->tensors[j]))) continue;
        char a[256], b[256];
        if (!push_string(&r->mismatched, &r->n_mismatched, "%s: file %s, module %s",
                         own->names[i], shape_str(sd->tensors[j], a, sizeof a),
                         shape_str(own->tensors[i], b, sizeof b)))
            return false;
    }
    for (int j = 0; j < sd->count; j++)
        if (find_name(own, sd->names[j]) < 0 &&
            !push_string(&r->unexpected, &r->n_unexpected, "%s", sd->names[j]))
            return false;
    return true;
}

/* "a", "b", "c" (up to a few, then "and N more") into buf. */
static const char *join_names(char **names, int n, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < n && used + 1 < size; i++) {
        if (i == 8) {
            snprintf(buf + used, size - used, ", and %d more", n - i);
            break;
        }
        int w = snprintf(buf + used, size - used, "%s\"%s\"", i ? ", " : "", names[i]);
        if (w < 0) break;
        used += (size_t)w;
    }
    return buf;
}

static bn_status strict_error(const bn_load_report *r)
{
    char a[700], b[700], c[900];
    join_names(r->missing, r->n_missing, a, sizeof a);
    join_names(r->unexpected, r->n_unexpected, b, sizeof b);
    join_names(r->mismatched, r->n_mismatched, c, sizeof c);
    bn_status code = r->n_missing || r->n_unexpected ? BN_ERR_ARG : BN_ERR_SHAPE;
    return bn__error(code,
                     "bn_module_load_state_dict_ex: the state dict does not match the module: "
                     "%d missing key%s [%s], %d unexpected key%s [%s], %d shape mismatch%s [%s]",
                     r->n_missing, r->n_missing == 1 ? "" : "s", a, r->n_unexpected,
                     r->n_unexpected == 1 ? "" : "s", b, r->n_mismatched,
                     r->n_mismatched == 1 ? "" : "es", c);
}

/* The entries of sd whose name is in own with the same shape (new references). */
static bn_status matching_entries(const bn_tensor_list *own, const bn_tensor_list *sd,
                                  bn_tensor_list *out)
{
    *out = (bn_tensor_list){0};
    out->names = calloc((size_t)sd->count + 1, sizeof(char *));
    out->tensors = calloc((size_t)sd->count + 1, sizeof(bn_tensor *));
    if (!out->names || !out->tensors) {
        bn_tensor_list_free(out);
        return bn__error(BN_ERR_OOM, "bn_module_load_state_dict_ex: out of memory");
    }
    for (int j = 0; j < sd->count; j++) {
        int i = find_name(own, sd->names[j]);
        if (i < 0 || !bn_shape_equal(bn_shape_of(own->tensors[i]), bn_shape_of(sd->tensors[j])))
            continue;
        size_t len = strlen(sd->names[j]) + 1;
        char *name = malloc(len);
        if (!name) {
            bn_tensor_list_free(out);
            return bn__error(BN_ERR_OOM, "bn_module_load_state_dict_ex: out of memory");
        }
        memcpy(name, sd->names[j], len);
        out->names[out->count] = name;
        bn_retain(sd->tensors[j]);
        out->tensors[out->count++] = sd->tensors[j];
    }
    return BN_OK;
}

static bn_status check_list(const char *fn, const bn_tensor_list *sd)
{
    if (sd->count < 0 || (sd->count > 0 && (!sd->names || !sd->tensors)))
        return bn__error(BN_ERR_ARG, "%s: sd is not a valid list (count %d)", fn, sd->count);
    for (int i = 0; i < sd->count; i++)
        if (!sd->names[i] || !sd->tensors[i])
            return bn__error(BN_ERR_ARG, "%s: sd entry %d has no %s", fn, i,
                             sd->names[i] ? "tensor" : "name");
    return BN_OK;
}

bn_status bn_module_load_state_dict_ex(bn_module *m, const bn_tensor_list *sd, bool strict,
                                       bn_load_report *report)
{
    const char *fn = "bn_module_load_state_dict_ex";
    if (report) *report = (bn_load_report){0};
    BN_CHECK_NULL_STATUS(fn, m);
    BN_CHECK_NULL_STATUS(fn, sd);
    bn_status st = check_list(fn, sd);
    if (st != BN_OK) return st;
    bn_tensor_list own = bn_module_state_dict(m);
    if (own.count < 0) return bn_error_code();
    bn_load_report r = {0};
    if (!compare_lists(&own, sd, &r)) {
        st = bn__error(BN_ERR_OOM, "%s: out of memory", fn);
    } else if (strict && (r.n_missing || r.n_unexpected || r.n_mismatched)) {
        st = strict_error(&r);
    } else {
        bn_tensor_list use;
        st = matching_entries(&own, sd, &use);
        if (st == BN_OK) st = bn_module_load_state_dict(m, &use, false);
        bn_tensor_list_free(&use);
    }
    bn_tensor_list_free(&own);
    if (report)
        *report = r;
    else
        bn_load_report_free(&r);
    return st;
}

bn_status bn_module_load_ex(bn_module *m, const char *path, bool strict, bn_load_report *report)
{
    if (report) *report = (bn_load_report){0};
    BN_CHECK_NULL_STATUS("bn_module_load", m);
    BN_CHECK_NULL_STATUS("bn_module_load", path);
    bn_loaded l = {0};
    bn_status st = bn_load_tensors(path, (bn_load_opts){0}, &l);
    if (st != BN_OK) {
        bn_loaded_free(&l);
        return st;
    }
    st = bn_module_load_state_dict_ex(m, &l.tensors, strict, report);
    if (st != BN_OK) {
        /* name the file too: the caller may load several */
        char msg[1536];
        snprintf(msg, sizeof msg, "%s", bn_error_message());
        st = bn__error(st, "bn_module_load: %s: %s", path, msg);
    }
    bn_loaded_free(&l);
    return st;
}

bn_status bn_module_load(bn_module *m, const char *path)
{
    return bn_module_load_ex(m, path, true, NULL);
}

bn_status bn_module_save_ex(const bn_module *m, const char *path, const char *config_json,
                            const bn_metadata *metadata)
{
    BN_CHECK_NULL_STATUS("bn_module_save", m);
    BN_CHECK_NULL_STATUS("bn_module_save", path);
    bn_tensor_list sd = bn_module_state_dict(m);
    if (sd.count < 0) return bn_error_code();
    /* the config is a .born header field; safetensors has no place for it */
    size_t n = strlen(path);
    bool born = n >= 5 && strcmp(path + n - 5, ".born") == 0;
    bn_status st = bn_save_tensors(
        path, &sd, (bn_save_opts){.metadata = metadata, .config_json = born ? config_json : NULL});
    bn_tensor_list_free(&sd);
    return st;
}

bn_status bn_module_save(const bn_module *m, const char *path)
{
    return bn_module_save_ex(m, path, NULL, NULL);
}
