/* core/scope.c — per-thread scopes that own the tensors the API returns while they are open
 * (DESIGN §4). A scope is a growable array of references; scopes nest as a stack. */
#include "core/internal.h"

#include <string.h>

typedef struct scope {
    bn_tensor **items;
    size_t len, cap;
} scope;

static _Thread_local scope *tl_scopes;
static _Thread_local int tl_depth, tl_cap;
/* Suspension applies to the scopes open when it began: a scope opened after bn__scope_suspend
 * (a module's forward run by library code, say) registers as usual. */
#define BN_SUSPEND_MAX 64
static _Thread_local int tl_suspend_at[BN_SUSPEND_MAX];
static _Thread_local int tl_suspended;

int bn_scope_depth(void) { return tl_depth; }

void bn_scope_begin(void)
{
    if (tl_depth == tl_cap) {
        int ncap = tl_cap ? tl_cap * 2 : 8;
        scope *n = realloc(tl_scopes, sizeof(scope) * (size_t)ncap);
        if (!n) {
            /* Cannot open a scope: report it; tensors then stay with the enclosing scope. */
            bn__error(BN_ERR_OOM, "bn_scope_begin: out of memory for scope %d", tl_depth + 1);
            return;
        }
        tl_scopes = n;
        tl_cap = ncap;
    }
    tl_scopes[tl_depth++] = (scope){0};
}

void bn_scope_end(void)
{
    if (tl_depth == 0) {
        bn__error(BN_ERR_ARG, "bn_scope_end: no scope is open");
        return;
    }
    scope *s = &tl_scopes[--tl_depth];
    for (size_t i = 0; i < s->len; i++) bn_release(s->items[i]);
    free(s->items);
    *s = (scope){0};
    if (tl_depth == 0) {
        free(tl_scopes);
        tl_scopes = NULL;
        tl_cap = 0;
    }
}

static bool scope_push(scope *s, bn_tensor *t)
{
    if (s->len == s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 16;
        bn_tensor **n = realloc(s->items, sizeof(*n) * ncap);
        if (!n) return false;
        s->items = n;
        s->cap = ncap;
    }
    s->items[s->len++] = t;
    return true;
}

bn_tensor *bn__out(bn_tensor *t)
{
    if (!t || tl_depth == 0) return t;
    if (tl_suspended && tl_depth <= tl_suspend_at[tl_suspended - 1]) return t;
    if (!scope_push(&tl_scopes[tl_depth - 1], t)) {
        bn_release(t);
        return bn__error_null(BN_ERR_OOM, "scope: out of memory registering a tensor");
    }
    return t;
}

void bn__scope_suspend(void)
{
    BN_ASSERT(tl_suspended < BN_SUSPEND_MAX);
    tl_suspend_at[tl_suspended++] = tl_depth;
}

void bn__scope_resume(void)
{
    BN_ASSERT(tl_suspended > 0);
    tl_suspended--;
}

bn_tensor *bn_scope_keep(bn_tensor *t)
{
    if (!t) return bn__null_arg("bn_scope_keep", "t");
    if (tl_depth == 0) return t;
    scope *s = &tl_scopes[tl_depth - 1];
    for (size_t i = s->len; i-- > 0;) {
        if (s->items[i] == t) {
            memmove(&s->items[i], &s->items[i + 1], sizeof(*s->items) * (s->len - i - 1));
            s->len--;
            if (tl_depth >= 2 && !scope_push(&tl_scopes[tl_depth - 2], t)) {
                bn_release(t);
                return bn__error_null(BN_ERR_OOM, "bn_scope_keep: out of memory");
            }
            return t;
        }
    }
    return bn__error_null(BN_ERR_ARG,
                          "bn_scope_keep: tensor %s is not owned by the innermost scope",
                          bn__tshape(t));
}
