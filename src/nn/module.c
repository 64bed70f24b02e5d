/* nn/module.c — the module core (DESIGN §8): registration of named parameters, buffers and
 * children; forward inside a scope; train/eval; PyTorch-ordered named_parameters / state_dict;
 * dotted-path lookup; dtype conversion. Printing lives in nn/module_repr.c, layers elsewhere. */
#include "nn/nn_internal.h"
#include "born/autograd.h"
#include "born/cuda.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct tensor_entry {
    char *name;
    bn_tensor *t;
} tensor_entry;

typedef struct child_entry {
    char *name;
    bn_module *m;
} child_entry;

struct bn_module_entries {
    int nparams, nbuffers, nchildren;
    int cap_params, cap_buffers, cap_children;
    tensor_entry *params, *buffers;
    child_entry *children;
};

/* ---- lifecycle ------------------------------------------------------------------------------ */

bn_status bn_module_init(bn_module *m, const bn_module_vtable *vt)
{
    BN_CHECK_NULL_STATUS("bn_module_init", m);
    BN_CHECK_NULL_STATUS("bn_module_init", vt);
    m->vt = vt;
    m->training = true;
    m->own = calloc(1, sizeof(*m->own));
    if (!m->own) return bn__error(BN_ERR_OOM, "bn_module_init: out of memory");
    return BN_OK;
}

bn_module *bn_module_alloc(size_t size, const bn_module_vtable *vt)
{
    BN_CHECK_NULL("bn_module_alloc", vt);
    if (size < sizeof(bn_module))
        return bn__error_null(BN_ERR_ARG, "bn_module_alloc: size %zu is smaller than bn_module (%zu)",
                              size, sizeof(bn_module));
    bn_module *m = calloc(1, size);
    if (!m) return bn__error_null(BN_ERR_OOM, "bn_module_alloc: out of memory (%zu bytes)", size);
    if (bn_module_init(m, vt) != BN_OK) {
        free(m);
        return NULL;
    }
    return m;
}

void bn_module_free(bn_module *m)
{
    if (!m) return;
    if (m->vt && m->vt->free) m->vt->free(m);
    struct bn_module_entries *e = m->own;
    if (e) {
        for (int i = 0; i < e->nparams; i++) {
            bn_release(e->params[i].t);
            free(e->params[i].name);
        }
        for (int i = 0; i < e->nbuffers; i++) {
            bn_release(e->buffers[i].t);
            free(e->buffers[i].name);
        }
        for (int i = 0; i < e->nchildren; i++) {
            bn_module_free(e->children[i].m);
            free(e->children[i].name);
        }
        free(e->params);
        free(e->buffers);
        free(e->children);
        free(e);
    }
    free(m);
}

/* ---- registration --------------------------------------------------------------------------- */

static bool name_taken(const struct bn_module_entries *e, const char *name)
{
    for (int i = 0; i < e->nparams; i++)
        if (!strcmp(e->params[i].name, name)) return true;
    for (int i = 0; i < e->nbuffers; i++)
        if (!strcmp(e->buffers[i].name, name)) return true;
    for (int i = 0; i < e->nchildren; i++)
        if (!strcmp(e->children[i].name, name)) return true;
    return false;
}

static bool check_name(const char *fn, const bn_module *m, const char *name)
{
    if (!m->own) {
        bn__error(BN_ERR_ARG, "%s: module was not initialised with bn_module_init", fn);
        return false;
    }
    if (!name[0] || strchr(name, '.')) {
        bn__error(BN_ERR_ARG, "%s: name \"%s\" must be non-empty and hold no '.'", fn, name);
        return false;
    }
    if (name_taken(m->own, name)) {
        bn__error(BN_ERR_ARG, "%s: %s already has an entry named \"%s\"", fn,
                  bn_module_type_name(m), name);
        return false;
    }
    return true;
}

static char *dup_string(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

/* Grows an array of elem-sized items to hold one more. */
static bool grow(void **items, int n, int *cap, size_t elem)
{
    if (n < *cap) return true;
    int ncap = *cap ? *cap * 2 : 4;
    void *p = realloc(*items, elem * (size_t)ncap);
    if (!p) return false;
    *items = p;
    *cap = ncap;
    return true;
}

static bn_status add_tensor(const char *fn, bn_module *m, const char *name, bn_tensor *t,
                            bool param)
{
    BN_CHECK_NULL_STATUS(fn, m);
    BN_CHECK_NULL_STATUS(fn, name);
    BN_CHECK_NULL_STATUS(fn, t);
    if (!check_name(fn, m, name)) return bn_error_code();
    struct bn_module_entries *e = m->own;
    int *n = param ? &e->nparams : &e->nbuffers;
    tensor_entry **items = param ? &e->params : &e->buffers;
    char *copy = dup_string(name);
    if (!copy || !grow((void **)items, *n, param ? &e->cap_params : &e->cap_buffers,
                       sizeof(tensor_entry))) {
        free(copy);
        return bn__error(BN_ERR_OOM, "%s: out of memory", fn);
    }
    if (param && bn_dtype_is_float(bn_dtype_of(t)) && bn_is_leaf(t) && !bn_requires_grad(t))
        bn_set_requires_grad(t, true);
    bn_retain(t);
    (*items)[(*n)++] = (tensor_entry){copy, t};
    return BN_OK;
}

bn_status bn_module_add_param(bn_module *m, const char *name, bn_tensor *t)
{
    return add_tensor("bn_module_add_param", m, name, t, true);
}

bn_status bn_module_add_buffer(bn_module *m, const char *name, bn_tensor *t)
{
    return add_tensor("bn_module_add_buffer", m, name, t, false);
}

bn_module *bn_module_add_child(bn_module *m, const char *name, bn_module *child)
{
    const char *fn = "bn_module_add_child";
    if (!m || !name || !child) {
        bn_module_free(child);
        if (!m) return bn__null_arg(fn, "m");
        return bn__null_arg(fn, name ? "child" : "name");
    }
    if (child == m) return bn__error_null(BN_ERR_ARG, "%s: a module cannot be its own child", fn);
    if (!check_name(fn, m, name)) {
        bn_module_free(child);
        return NULL;
    }
    struct bn_module_entries *e = m->own;
    char *copy = dup_string(name);
    if (!copy || !grow((void **)&e->children, e->nchildren, &e->cap_children,
                       sizeof(child_entry))) {
        free(copy);
        bn_module_free(child);
        return bn__error_null(BN_ERR_OOM, "%s: out of memory", fn);
    }
    e->children[e->nchildren++] = (child_entry){copy, child};
    return child;
}

static tensor_entry *find_entry(const bn_module *m, const char *name)
{
    struct bn_module_entries *e = m->own;
    if (!e) return NULL;
    for (int i = 0; i < e->nparams; i++)
        if (!strcmp(e->params[i].name, name)) return &e->params[i];
    for (int i = 0; i < e->nbuffers; i++)
        if (!strcmp(e->buffers[i].name, name)) return &e->buffers[i];
    return NULL;
}

bn_tensor *bn__module_tensor(const bn_module *m, const char *name)
{
    tensor_entry *te = find_entry(m, name);
    return te ? te->t : NULL;
}

static bool is_param_entry(const bn_module *m, const tensor_entry *te)
{
    return te >= m->own->params && te < m->own->params + m->own->nparams;
}

bn_status bn_module_set_tensor(bn_module *m, const char *name, bn_tensor *t)
{
    const char *fn = "bn_module_set_tensor";
    BN_CHECK_NULL_STATUS(fn, m);
    BN_CHECK_NULL_STATUS(fn, name);
    BN_CHECK_NULL_STATUS(fn, t);
    tensor_entry *te = find_entry(m, name);
    if (!te)
        return bn__error(BN_ERR_ARG, "%s: %s has no parameter or buffer named \"%s\"", fn,
                         bn_module_type_name(m), name);
    if (is_param_entry(m, te) && bn_dtype_is_float(bn_dtype_of(t)) && bn_is_leaf(t) &&
        !bn_requires_grad(t))
        bn_set_requires_grad(t, true);
    bn_retain(t);
    bn_release(te->t);
    te->t = t;
    return BN_OK;
}

bn_tensor *bn__module_new_param(bn_module *m, const char *name, bn_shape s)
{
    bn_tensor *t = bn__full(s.dims, s.ndim, 0.0, BN_F32, bn_cpu());
    if (!t) return NULL;
    bn_status st = bn_module_add_param(m, name, t);
    bn_release(t);
    return st == BN_OK ? t : NULL;
}

bn_tensor *bn__module_new_buffer(bn_module *m, const char *name, bn_shape s, bn_dtype dt,
                                 double fill)
{
    bn_tensor *t = bn__full(s.dims, s.ndim, fill, dt, bn_cpu());
    if (!t) return NULL;
    bn_status st = bn_module_add_buffer(m, name, t);
    bn_release(t);
    return st == BN_OK ? t : NULL;
}

/* ---- forward and mode --------------------------------------------------------------------------- */

/* An op failed inside m's forward: say which module it was, once (the innermost names it). */
static void name_module_in_error(const bn_module *m)
{
    const char *msg = bn_error_message();
    if (bn_error_code() == BN_OK || !strncmp(msg, "bn_module_forward", 17) ||
        !strncmp(msg, "bn_rnn_forward", 14))
        return;
    char label[320], copy[768];
    snprintf(copy, sizeof copy, "%s", msg);
    bn__error(bn_error_code(), "bn_module_forward: %s: %s", bn__module_label(m, label, sizeof label),
              copy);
}

bn_tensor *bn_module_forward(bn_module *m, const bn_tensor *x)
{
    BN_CHECK_NULL("bn_module_forward", m);
    BN_CHECK_NULL("bn_module_forward", x);
    if (!m->vt || !m->vt->forward)
        return bn__error_null(BN_ERR_UNSUPPORTED, "bn_module_forward: %s has no forward",
                              bn_module_type_name(m));
    /* The forward's temporaries die with this scope; the result gets a reference of its own
     * first, so it may be a scope-owned tensor or x itself. */
    bn_scope_begin();
    bn_tensor *y = m->vt->forward(m, x);
    bn_retain(y);
    bn_scope_end();
    if (!y) name_module_in_error(m);
    return bn__out(y);
}

void bn_module_train(bn_module *m, bool on)
{
    if (!m) return;
    m->training = on;
    if (!m->own) return;
    for (int i = 0; i < m->own->nchildren; i++) bn_module_train(m->own->children[i].m, on);
}

void bn_module_eval(bn_module *m) { bn_module_train(m, false); }
bool bn_module_is_training(const bn_module *m) { return m && m->training; }

const char *bn_module_type_name(const bn_module *m)
{
    if (!m || !m->vt || !m->vt->type_name) return "?";
    return m->vt->type_name;
}

static bn_status convert_entries(tensor_entry *items, int n, bn_dtype dt, bool param)
{
    for (int i = 0; i < n; i++) {
        bn_tensor *old = items[i].t;
        if (!bn_dtype_is_float(bn_dtype_of(old)) || bn_dtype_of(old) == dt) continue;
        bn_tensor *t = bn__to_dtype(old, dt);
        if (!t) return bn_error_code();
        if (param && bn_requires_grad(old)) bn_set_requires_grad(t, true);
        bn_release(old);
        items[i].t = t;
    }
    return BN_OK;
}

bn_status bn_module_to_dtype(bn_module *m, bn_dtype dt)
{
    BN_CHECK_NULL_STATUS("bn_module_to_dtype", m);
    if (!bn_dtype_is_float(dt))
        return bn__error(BN_ERR_DTYPE, "bn_module_to_dtype: dt is %s, expected a float dtype",
                         bn_dtype_name(dt));
    struct bn_module_entries *e = m->own;
    if (!e) return BN_OK;
    if (convert_entries(e->params, e->nparams, dt, true) != BN_OK ||
        convert_entries(e->buffers, e->nbuffers, dt, false) != BN_OK)
        return bn_error_code();
    for (int i = 0; i < e->nchildren; i++)
        if (bn_module_to_dtype(e->children[i].m, dt) != BN_OK) return bn_error_code();
    return BN_OK;
}

/* Moves every parameter and buffer of e to device d (new leaf tensors; requires_grad kept). */
static bn_status move_entries(tensor_entry *items, int n, bn_device d, bool param)
{
    for (int i = 0; i < n; i++) {
        bn_tensor *old = items[i].t;
        bn_device od = bn_device_of(old);
        if (od.type == d.type && od.index == d.index) continue;
        bn__scope_suspend();
        bn_tensor *plain = bn_detach(old);
        bn_tensor *t = plain ? bn_tensor_to(plain, d) : NULL;
        bn_release(plain);
        bn__scope_resume();
        if (!t) return bn_error_code();
        if (param && bn_requires_grad(old)) bn_set_requires_grad(t, true);
        bn_release(old);
        items[i].t = t;
    }
    return BN_OK;
}

bn_status bn_module_to_device(bn_module *m, bn_device d)
{
    BN_CHECK_NULL_STATUS("bn_module_to_device", m);
    if (!bn_device_available(d))
        return bn__error(BN_ERR_DEVICE, "bn_module_to_device: %s is not available: %s",
                         d.type == BN_DEVICE_CUDA ? "the CUDA device" : "the device",
                         d.type == BN_DEVICE_CUDA ? bn_cuda_unavailable_reason() : "unknown type");
    struct bn_module_entries *e = m->own;
    if (!e) return BN_OK;
    if (move_entries(e->params, e->nparams, d, true) != BN_OK ||
        move_entries(e->buffers, e->nbuffers, d, false) != BN_OK)
        return bn_error_code();
    for (int i = 0; i < e->nchildren; i++)
        if (bn_module_to_device(e->children[i].m, d) != BN_OK) return bn_error_code();
    return BN_OK;
}

/* ---- collecting named tensors ------------------------------------------------------------------ */

typedef struct collector {
    bn_tensor_list list;
    int cap;
    bool dedup;
    bool failed;
} collector;

static bool list_has(const bn_tensor_list *l, const bn_tensor *t)
{
    for (int i = 0; i < l->count; i++)
        if (l->tensors[i] == t) return true;
    return false;
}

static void collect_one(collector *c, const char *prefix, const char *name, bn_tensor *t)
{
    if (c->failed || (c->dedup && list_has(&c->list, t))) return;
    if (c->list.count == c->cap) {
        int ncap = c->cap ? c->cap * 2 : 16;
        char **nn = realloc(c->list.names, sizeof(char *) * (size_t)ncap);
        if (nn) c->list.names = nn;
        bn_tensor **nt = realloc(c->list.tensors, sizeof(bn_tensor *) * (size_t)ncap);
        if (nt) c->list.tensors = nt;
        if (!nn || !nt) {
            c->failed = true;
            return;
        }
        c->cap = ncap;
    }
    size_t len = strlen(prefix) + strlen(name) + 1;
    char *full = malloc(len);
    if (!full) {
        c->failed = true;
        return;
    }
    snprintf(full, len, "%s%s", prefix, name);
    bn_retain(t);
    c->list.names[c->list.count] = full;
    c->list.tensors[c->list.count++] = t;
}

/* PyTorch's order: a module's parameters, then its buffers, then each child's, depth first. */
static void collect(collector *c, const bn_module *m, const char *prefix, bool params,
                    bool buffers)
{
    struct bn_module_entries *e = m->own;
    if (!e) return;
    if (params)
        for (int i = 0; i < e->nparams; i++)
            collect_one(c, prefix, e->params[i].name, e->params[i].t);
    if (buffers)
        for (int i = 0; i < e->nbuffers; i++)
            collect_one(c, prefix, e->buffers[i].name, e->buffers[i].t);
    for (int i = 0; i < e->nchildren && !c->failed; i++) {
        size_t len = strlen(prefix) + strlen(e->children[i].name) + 2;
        char *sub = malloc(len);
        if (!sub) {
            c->failed = true;
            return;
        }
        snprintf(sub, len, "%s%s.", prefix, e->children[i].name);
        collect(c, e->children[i].m, sub, params, buffers);
        free(sub);
    }
}

void bn_tensor_list_free(bn_tensor_list *l)
{
    if (!l) return;
    for (int i = 0; i < l->count; i++) {
        free(l->names[i]);
        bn_release(l->tensors[i]);
    }
    free(l->names);
    free(l->tensors);
    *l = (bn_tensor_list){0};
}

static bn_tensor_list collect_list(const char *fn, const bn_module *m, bool params, bool buffers,
                                   bool dedup)
{
    if (!m) {
        bn__null_arg(fn, "m");
        return (bn_tensor_list){.count = -1};
    }
    collector c = {.dedup = dedup};
    collect(&c, m, "", params, buffers);
    if (c.failed) {
        bn_tensor_list_free(&c.list);
        bn__error(BN_ERR_OOM, "%s: out of memory", fn);
        return (bn_tensor_list){.count = -1};
    }
    return c.list;
}

bn_tensor_list bn_module_named_parameters(const bn_module *m)
{
    return collect_list("bn_module_named_parameters", m, true, false, true);
}

bn_tensor_list bn_module_named_buffers(const bn_module *m)
{
    return collect_list("bn_module_named_buffers", m, false, true, true);
}

bn_tensor_list bn_module_state_dict(const bn_module *m)
{
    return collect_list("bn_module_state_dict", m, true, true, false);
}

int bn_module_parameters(const bn_module *m, bn_tensor **out, int max)
{
    bn_tensor_list l = collect_list("bn_module_parameters", m, true, false, true);
    if (l.count < 0) return -1;
    for (int i = 0; i < l.count && i < max && out; i++) out[i] = l.tensors[i];
    int n = l.count;
    bn_tensor_list_free(&l); /* the module still holds each tensor: out stays valid */
    return n;
}

int64_t bn_module_num_parameters(const bn_module *m)
{
    bn_tensor_list l = collect_list("bn_module_num_parameters", m, true, false, true);
    if (l.count < 0) return -1;
    int64_t total = 0;
    for (int i = 0; i < l.count; i++) total += bn_numel(l.tensors[i]);
    bn_tensor_list_free(&l);
    return total;
}

/* ---- lookup by path ------------------------------------------------------------------------------ */

static bn_module *direct_child(const bn_module *m, const char *name, size_t len)
{
    struct bn_module_entries *e = m->own;
    if (!e) return NULL;
    for (int i = 0; i < e->nchildren; i++)
        if (strlen(e->children[i].name) == len && !strncmp(e->children[i].name, name, len))
            return e->children[i].m;
    return NULL;
}

/* Walks the dotted path's module part; *last receives the final component. */
static const bn_module *walk(const bn_module *m, const char *path, const char **last)
{
    const char *p = path;
    for (const char *dot; (dot = strchr(p, '.')) != NULL; p = dot + 1) {
        m = direct_child(m, p, (size_t)(dot - p));
        if (!m) return NULL;
    }
    *last = p;
    return m;
}

bn_tensor *bn_module_get(const bn_module *m, const char *path)
{
    BN_CHECK_NULL("bn_module_get", m);
    BN_CHECK_NULL("bn_module_get", path);
    const char *last = NULL;
    const bn_module *owner = walk(m, path, &last);
    bn_tensor *t = owner ? bn__module_tensor(owner, last) : NULL;
    if (!t)
        return bn__error_null(BN_ERR_ARG, "bn_module_get: %s has no parameter or buffer \"%s\"",
                              bn_module_type_name(m), path);
    bn_retain(t);
    return bn__out(t);
}

bn_module *bn_module_child(const bn_module *m, const char *path)
{
    BN_CHECK_NULL("bn_module_child", m);
    BN_CHECK_NULL("bn_module_child", path);
    const char *last = NULL;
    const bn_module *owner = walk(m, path, &last);
    bn_module *c = owner ? direct_child(owner, last, strlen(last)) : NULL;
    if (!c)
        return bn__error_null(BN_ERR_ARG, "bn_module_child: %s has no submodule \"%s\"",
                              bn_module_type_name(m), path);
    return c;
}

int bn_module_num_children(const bn_module *m)
{
    if (!m) {
        bn__null_arg("bn_module_num_children", "m");
        return -1;
    }
    return m->own ? m->own->nchildren : 0;
}

bn_module *bn_module_child_at(const bn_module *m, int i, const char **name)
{
    BN_CHECK_NULL("bn_module_child_at", m);
    int n = m->own ? m->own->nchildren : 0;
    if (i < 0 || i >= n)
        return bn__error_null(BN_ERR_ARG, "bn_module_child_at: index %d out of range for %s with "
                              "%d children", i, bn_module_type_name(m), n);
    if (name) *name = m->own->children[i].name;
    return m->own->children[i].m;
}

/* ---- error helpers for the layers ------------------------------------------------------------ */

const char *bn__module_label(const bn_module *m, char *buf, size_t n)
{
    char extra[256] = "";
    if (m->vt && m->vt->extra_repr) m->vt->extra_repr(m, extra, sizeof extra);
    snprintf(buf, n, "%s(%s)", bn_module_type_name(m), extra);
    return buf;
}

bn_tensor *bn__module_shape_error(const bn_module *m, const char *fmt, ...)
{
    char label[320], msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return bn__error_null(BN_ERR_SHAPE, "bn_module_forward: %s: %s",
                          bn__module_label(m, label, sizeof label), msg);
}

/* ---- loading values and clearing gradients ------------------------------------------------------- */

static int list_find(const bn_tensor_list *l, const char *name)
{
    for (int i = 0; i < l->count; i++)
        if (!strcmp(l->names[i], name)) return i;
    return -1;
}

/* Every name of `from` is in `in`; otherwise an error naming the first one missing. */
static bool names_covered(const char *what, const bn_tensor_list *from, const bn_tensor_list *in)
{
    for (int i = 0; i < from->count; i++) {
        if (list_find(in, from->names[i]) < 0) {
            bn__error(BN_ERR_ARG, "bn_module_load_state_dict: %s \"%s\"", what, from->names[i]);
            return false;
        }
    }
    return true;
}

static bn_status copy_entries(const bn_tensor_list *own, const bn_tensor_list *sd)
{
    for (int i = 0; i < own->count; i++) {
        int j = list_find(sd, own->names[i]);
        if (j < 0) continue;
        bn_tensor *dst = own->tensors[i];
        const bn_tensor *src = sd->tensors[j];
        if (!src) return bn__null_arg_status("bn_module_load_state_dict", own->names[i]);
        if (!bn_shape_equal(bn_shape_of(dst), bn_shape_of(src)))
            return bn__error(BN_ERR_SHAPE, "bn_module_load_state_dict: \"%s\" is %s in the "
                             "module but %s in the state dict", own->names[i], bn__tshape(dst),
                             bn__tshape(src));
        if (bn_copy_(dst, src) != BN_OK) return bn_error_code();
    }
    return BN_OK;
}

bn_status bn_module_load_state_dict(bn_module *m, const bn_tensor_list *sd, bool strict)
{
    BN_CHECK_NULL_STATUS("bn_module_load_state_dict", m);
    BN_CHECK_NULL_STATUS("bn_module_load_state_dict", sd);
    if (sd->count < 0 || (sd->count > 0 && (!sd->names || !sd->tensors)))
        return bn__error(BN_ERR_ARG, "bn_module_load_state_dict: sd is not a valid list (count %d)",
                         sd->count);
    bn_tensor_list own = bn_module_state_dict(m);
    if (own.count < 0) return bn_error_code();
    bn_status st = BN_OK;
    if (strict && (!names_covered("missing key", &own, sd) ||
                   !names_covered("unexpected key", sd, &own)))
        st = bn_error_code();
    if (st == BN_OK) {
        bn_no_grad_begin();
        st = copy_entries(&own, sd);
        bn_no_grad_end();
    }
    bn_tensor_list_free(&own);
    return st;
}

void bn_module_zero_grad(bn_module *m)
{
    bn_tensor_list l = collect_list("bn_module_zero_grad", m, true, false, true);
    for (int i = 0; i < l.count; i++) bn_set_grad(l.tensors[i], NULL);
    bn_tensor_list_free(&l);
}
