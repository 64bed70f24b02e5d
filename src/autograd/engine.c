/* autograd/engine.c — grad mode, recording nodes, and the backward engine (DESIGN §7).
 *
 * Backward collects the nodes reachable from the roots, counts for each how many consumers will
 * send it a gradient, then runs them in reverse creation order as their counts reach zero
 * (Kahn's algorithm on a max-heap of creation sequence numbers). Each rule runs inside a scope
 * of its own; its results are summed into broadcast shapes, cast to the input's dtype, and
 * routed to the producing node's pending gradient or to a leaf's .grad. */
#include "amp/amp_internal.h"
#include "autograd/autograd.h"

#include "born/ops.h"

#include <string.h>

/* ---- grad mode (per thread) ---------------------------------------------------------------
 * Users nest bn_no_grad_begin/end. The engine overrides the mode while it runs a rule (off, or
 * on for create_graph and for a checkpoint's recompute); a bn_no_grad_begin inside an override
 * still turns grad off, since the override applies at the depth where it was set. */
static _Thread_local int tl_no_grad_depth;
static _Thread_local int tl_override = BN_GRAD_FOLLOW;
static _Thread_local int tl_override_depth;

void bn_no_grad_begin(void) { tl_no_grad_depth++; }
void bn_no_grad_end(void)
{
    if (tl_no_grad_depth == 0) {
        bn__error(BN_ERR_ARG, "bn_no_grad_end: no bn_no_grad_begin is open");
        return;
    }
    tl_no_grad_depth--;
}
bool bn_grad_enabled(void)
{
    if (tl_override == BN_GRAD_FOLLOW) return tl_no_grad_depth == 0;
    return tl_override == BN_GRAD_ON && tl_no_grad_depth <= tl_override_depth;
}

/* A saved state packs (override, depth) into one int >= 3; plain modes are -1, 0 and 1. */
int bn__grad_override(int mode_or_saved)
{
    int saved = (tl_override + 1) + 3 * (tl_override_depth + 1);
    if (mode_or_saved >= 3) {
        tl_override = mode_or_saved % 3 - 1;
        tl_override_depth = mode_or_saved / 3 - 1;
    } else {
        tl_override = mode_or_saved;
        tl_override_depth = tl_no_grad_depth;
    }
    return saved;
}

bool bn__check_inplace(const char *fn, const bn_tensor *t)
{
    if (!t->requires_grad || !bn_grad_enabled()) return true;
    bn__error(BN_ERR_ARG,
              "%s: tensor %s requires grad; write to it in place only inside "
              "bn_no_grad_begin/bn_no_grad_end (or write to bn_detach(t))",
              fn, bn__tshape(t));
    return false;
}

/* ---- nodes -------------------------------------------------------------------------------- */
static uint64_t node_seq;

bool bn__grad_needed1(const bn_tensor *a) { return a && a->requires_grad && bn_grad_enabled(); }
bool bn__grad_needed2(const bn_tensor *a, const bn_tensor *b)
{
    return bn_grad_enabled() && ((a && a->requires_grad) || (b && b->requires_grad));
}
bool bn__grad_needed(const bn_tensor *const *inputs, int n)
{
    if (!bn_grad_enabled()) return false;
    for (int i = 0; i < n; i++)
        if (inputs[i] && inputs[i]->requires_grad) return true;
    return false;
}

void bn__node_retain(bn_node *n)
{
    if (n) __atomic_add_fetch(&n->refcount, 1, __ATOMIC_RELAXED);
}

static void node_drop_saved(bn_node *n)
{
    for (int s = 0; s < BN_NODE_SAVED; s++) {
        bn_release(n->saved[s]);
        n->saved[s] = NULL;
    }
    if (n->ctx) {
        if (n->ctx_free) n->ctx_free(n->ctx);
        else free(n->ctx);
        n->ctx = NULL;
    }
}

void bn__node_release(bn_node *n)
{
    if (!n || __atomic_sub_fetch(&n->refcount, 1, __ATOMIC_ACQ_REL) != 0) return;
    /* Long chains (an RNN unrolled over thousands of steps) would recurse deeply through the
     * edges: free iteratively with an explicit stack. */
    size_t cap = 16, len = 0;
    bn_node **stack = malloc(sizeof *stack * cap);
    bn_node *cur = n;
    for (;;) {
        node_drop_saved(cur);
        bn_release(cur->pending);
        for (int i = 0; i < cur->ninputs; i++) {
            bn_release(cur->edges[i].leaf);
            bn_node *up = cur->edges[i].node;
            if (up && __atomic_sub_fetch(&up->refcount, 1, __ATOMIC_ACQ_REL) == 0) {
                if (len == cap && stack) {
                    bn_node **ns = realloc(stack, sizeof *stack * cap * 2);
                    if (ns) stack = ns, cap *= 2;
                }
                BN_ASSERT(stack && len < cap); /* out of memory while freeing: nothing sane left */
                stack[len++] = up;
            }
        }
        free(cur->edges);
        free(cur->in_shape);
        free(cur->in_dtype);
        free(cur);
        if (len == 0) break;
        cur = stack[--len];
    }
    free(stack);
}

void bn__node_forget_output(bn_node *n, const bn_tensor *t)
{
    if (n->output == t) n->output = NULL;
}

bn_node *bn__grad_record(bn_tensor *out, const char *name, bn_backward_fn fn,
                         const bn_tensor *const *inputs, int n)
{
    BN_ASSERT(out && !out->grad_fn && !out->requires_grad && n >= 0);
    bn_node *node = calloc(1, sizeof *node);
    if (node) {
        node->edges = calloc((size_t)(n ? n : 1), sizeof *node->edges);
        node->in_shape = calloc((size_t)(n ? n : 1), sizeof *node->in_shape);
        node->in_dtype = calloc((size_t)(n ? n : 1), sizeof *node->in_dtype);
    }
    if (!node || !node->edges || !node->in_shape || !node->in_dtype) {
        if (node) {
            free(node->edges);
            free(node->in_shape);
            free(node->in_dtype);
            free(node);
        }
        return bn__error_null(BN_ERR_OOM, "%s: out of memory recording the autograd node", name);
    }
    node->refcount = 1;
    node->name = name;
    node->backward = fn;
    node->seq = __atomic_add_fetch(&node_seq, 1, __ATOMIC_RELAXED);
    node->ninputs = n;
    for (int i = 0; i < n; i++) {
        const bn_tensor *in = inputs[i];
        if (!in) continue;
        node->in_shape[i] = bn_shape_make(in->ndim, in->shape);
        node->in_dtype[i] = in->dtype;
        if (!in->requires_grad) continue;
        if (in->grad_fn) {
            node->edges[i].node = in->grad_fn;
            bn__node_retain(in->grad_fn);
        } else {
            node->edges[i].leaf = (bn_tensor *)in;
            bn_retain((bn_tensor *)in);
        }
    }
    out->grad_fn = node;
    out->requires_grad = true;
    node->output = out;
    return node;
}

void bn__node_save(bn_node *n, int slot, const bn_tensor *t)
{
    BN_ASSERT(slot >= 0 && slot < BN_NODE_SAVED && !n->saved[slot]);
    if (!t) return;
    bn_retain((bn_tensor *)t);
    n->saved[slot] = (bn_tensor *)t;
    n->saved_version[slot] = __atomic_load_n(&t->storage->version, __ATOMIC_RELAXED);
}

bn_tensor *bn__node_saved(bn_node *n, int slot)
{
    BN_ASSERT(slot >= 0 && slot < BN_NODE_SAVED);
    bn_tensor *t = n->saved[slot];
    if (!t) return NULL;
    uint64_t v = __atomic_load_n(&t->storage->version, __ATOMIC_RELAXED);
    if (v != n->saved_version[slot])
        return bn__error_null(BN_ERR_ARG,
                              "bn_backward: a tensor %s that %s saved was modified in place after "
                              "it was used (version %llu, expected %llu)",
                              bn__tshape(t), n->name, (unsigned long long)v,
                              (unsigned long long)n->saved_version[slot]);
    return t;
}

bool bn__node_needs(const bn_node *n, int i)
{
    return i >= 0 && i < n->ninputs && (n->edges[i].node || n->edges[i].leaf);
}

void *bn__node_ctx_alloc(bn_node *n, size_t bytes)
{
    BN_ASSERT(!n->ctx);
    n->ctx = calloc(1, bytes ? bytes : 1);
    if (!n->ctx) bn__error(BN_ERR_OOM, "%s: out of memory for autograd state", n->name);
    return n->ctx;
}

/* ---- tensor-level API ----------------------------------------------------------------------- */
bn_status bn_set_requires_grad(bn_tensor *t, bool on)
{
    BN_CHECK_NULL_STATUS("bn_set_requires_grad", t);
    if (t->grad_fn) {
        if (on) return BN_OK;
        return bn__error(BN_ERR_ARG,
                         "bn_set_requires_grad: tensor %s is not a leaf (it was made by %s); use "
                         "bn_detach to get a tensor that does not require grad",
                         bn__tshape(t), t->grad_fn->name);
    }
    if (on && !bn_dtype_is_float(t->dtype))
        return bn__error(BN_ERR_DTYPE,
                         "bn_set_requires_grad: only float tensors can require grad, not %s %s",
                         bn_dtype_name(t->dtype), bn__tshape(t));
    t->requires_grad = on;
    return BN_OK;
}

bool bn_requires_grad(const bn_tensor *t)
{
    if (!t) return bn__null_arg("bn_requires_grad", "t"), false;
    return t->requires_grad;
}

bool bn_is_leaf(const bn_tensor *t)
{
    if (!t) return bn__null_arg("bn_is_leaf", "t"), false;
    return t->grad_fn == NULL;
}

const char *bn_grad_fn_name(const bn_tensor *t)
{
    if (!t) return bn__null_arg("bn_grad_fn_name", "t");
    return t->grad_fn ? t->grad_fn->name : NULL;
}

bn_tensor *bn_grad(const bn_tensor *t)
{
    BN_CHECK_NULL("bn_grad", t);
    if (!t->grad) return NULL;
    bn_retain(t->grad);
    return bn__out(t->grad);
}

bn_status bn_set_grad(bn_tensor *t, const bn_tensor *g)
{
    BN_CHECK_NULL_STATUS("bn_set_grad", t);
    if (g && (g->dtype != t->dtype || !bn_shape_equal(bn_shape_of(g), bn_shape_of(t))))
        return bn__error(BN_ERR_SHAPE, "bn_set_grad: grad %s %s does not match tensor %s %s",
                         bn_dtype_name(g->dtype), bn__tshape(g), bn_dtype_name(t->dtype),
                         bn__tshape(t));
    if (g) bn_retain((bn_tensor *)g);
    bn_release(t->grad);
    t->grad = (bn_tensor *)g;
    return BN_OK;
}

bn_status bn_retain_grad(bn_tensor *t)
{
    BN_CHECK_NULL_STATUS("bn_retain_grad", t);
    if (!t->requires_grad)
        return bn__error(BN_ERR_ARG, "bn_retain_grad: tensor %s does not require grad",
                         bn__tshape(t));
    if (t->grad_fn) t->retains_grad = true; /* leaves keep their gradient anyway */
    return BN_OK;
}

bn_tensor *bn_detach(const bn_tensor *t)
{
    BN_CHECK_NULL("bn_detach", t);
    return bn__out(bn__view(t, t->ndim, t->shape, t->strides, t->offset));
}

/* ---- backward ------------------------------------------------------------------------------- */
typedef struct graph {
    bn_node **nodes; /* every reachable node, retained */
    size_t len, cap;
    bn_node **heap; /* ready nodes, max-heap on seq */
    size_t hlen;
    uint64_t epoch;
} graph;

static uint64_t visit_epoch;

static bool graph_push(graph *g, bn_node *n)
{
    if (g->len == g->cap) {
        size_t ncap = g->cap ? g->cap * 2 : 64;
        bn_node **nn = realloc(g->nodes, sizeof *nn * ncap);
        if (!nn) return false;
        g->nodes = nn;
        g->cap = ncap;
    }
    bn__node_retain(n);
    g->nodes[g->len++] = n;
    return true;
}

/* Depth-first over edges (iteratively: graphs can be deep); counts each node's consumers. */
static bn_status graph_collect(graph *g, bn_node *const *roots, int nroots)
{
    for (int r = 0; r < nroots; r++) {
        bn_node *n = roots[r];
        if (!n || n->visit == g->epoch) continue;
        n->visit = g->epoch;
        n->deps = 0;
        if (!graph_push(g, n)) goto oom;
    }
    for (size_t k = 0; k < g->len; k++) { /* g->nodes doubles as the work list */
        bn_node *n = g->nodes[k];
        for (int i = 0; i < n->ninputs; i++) {
            bn_node *up = n->edges[i].node;
            if (!up) continue;
            if (up->visit != g->epoch) {
                up->visit = g->epoch;
                up->deps = 0;
                if (!graph_push(g, up)) goto oom;
            }
            up->deps++;
        }
    }
    g->heap = malloc(sizeof *g->heap * (g->len ? g->len : 1));
    if (!g->heap) goto oom;
    return BN_OK;
oom:
    return bn__error(BN_ERR_OOM, "bn_backward: out of memory walking the graph");
}

static void heap_push(graph *g, bn_node *n)
{
    size_t i = g->hlen++;
    g->heap[i] = n;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (g->heap[p]->seq >= g->heap[i]->seq) break;
        bn_node *t = g->heap[p];
        g->heap[p] = g->heap[i];
        g->heap[i] = t;
        i = p;
    }
}

static bn_node *heap_pop(graph *g)
{
    bn_node *top = g->heap[0];
    g->heap[0] = g->heap[--g->hlen];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < g->hlen && g->heap[l]->seq > g->heap[m]->seq) m = l;
        if (r < g->hlen && g->heap[r]->seq > g->heap[m]->seq) m = r;
        if (m == i) break;
        bn_node *t = g->heap[m];
        g->heap[m] = g->heap[i];
        g->heap[i] = t;
        i = m;
    }
    return top;
}

/* *acc += g, out of place (a fresh tensor; no caller's tensor is ever written). */
static bn_status accumulate(bn_tensor **acc, bn_tensor *g)
{
    if (!*acc) {
        bn_retain(g);
        *acc = g;
        return BN_OK;
    }
    bn_tensor *sum = bn_add(*acc, g);
    if (!sum) return bn_error_code();
    bn_retain(sum); /* the caller's scope (the engine's) owns the bn_add result */
    bn_release(*acc);
    *acc = sum;
    return BN_OK;
}

typedef struct backward_run {
    bn_backward_opts opts;
    bn_tensor *const *targets; /* bn_autograd_grad: capture these instead of filling .grad */
    int ntargets;
    bn_tensor **captured;
} backward_run;

static int target_index(const backward_run *run, const bn_tensor *t)
{
    for (int i = 0; i < run->ntargets; i++)
        if (run->targets[i] == t) return i;
    return -1;
}

/* A gradient reaches a leaf: into its .grad, or into a capture slot. */
static bn_status deliver_leaf(const backward_run *run, bn_tensor *leaf, bn_tensor *g)
{
    if (run->targets) {
        int k = target_index(run, leaf);
        return k >= 0 ? accumulate(&run->captured[k], g) : BN_OK;
    }
    if (!leaf->grad && g->refcount > 1) {
        /* the gradient may be another tensor's value: keep a private copy as .grad */
        bn_tensor *c = bn_clone(g);
        if (!c) return bn_error_code();
        bn_retain(c);
        leaf->grad = c;
        return BN_OK;
    }
    return accumulate(&leaf->grad, g);
}

/* Reduces grads[i] to input i's shape and dtype, then routes it. Runs in the rule's scope. */
static bn_status route(const backward_run *run, bn_node *n, int i, bn_tensor *gi)
{
    bn_edge *e = &n->edges[i];
    if (!e->node && !e->leaf) return BN_OK;
    bn_tensor *r = bn__sum_to_shape(gi, n->in_shape[i]);
    if (r && r->dtype != n->in_dtype[i]) r = bn_to_dtype(r, n->in_dtype[i]);
    if (!r) return bn_error_code();
    if (!bn_shape_equal(bn_shape_of(r), n->in_shape[i]))
        return bn__error(BN_ERR_INTERNAL,
                         "bn_backward: %s returned a gradient %s for input %d of shape %s", n->name,
                         bn__tshape(r), i, bn__sshape(n->in_shape[i]));
    if (e->leaf) return deliver_leaf(run, e->leaf, r);
    return accumulate(&e->node->pending, r);
}

static bn_status run_node(const backward_run *run, bn_node *n)
{
    bn_tensor *g = n->pending;
    n->pending = NULL;
    if (!g) return BN_OK; /* no gradient arrived (all consumers' paths were empty) */
    bn_status st = BN_OK;
    if (n->output && !run->targets && n->output->retains_grad)
        st = accumulate(&n->output->grad, g);
    if (st == BN_OK && run->targets && n->output) {
        int k = target_index(run, n->output);
        if (k >= 0) st = accumulate(&run->captured[k], g);
    }
    if (st == BN_OK && n->released)
        st = bn__error(BN_ERR_ARG,
                       "bn_backward: the graph through %s was already freed by an earlier "
                       "backward; pass retain_graph = true to backward twice",
                       n->name);
    if (st != BN_OK) {
        bn_release(g);
        return st;
    }
    bn_tensor *stack_grads[4] = {0};
    bn_tensor **grads = n->ninputs <= 4 ? stack_grads : calloc((size_t)n->ninputs, sizeof *grads);
    if (!grads) {
        bn_release(g);
        return bn__error(BN_ERR_OOM, "bn_backward: out of memory");
    }
    int was = bn__grad_override(run->opts.create_graph ? BN_GRAD_ON : BN_GRAD_OFF);
    int autocast = bn__autocast_suspend();
    bn_scope_begin();
    bn_error_clear();
    st = n->backward(n, g, grads);
    if (st == BN_OK) st = bn_error_code();
    for (int i = 0; st == BN_OK && i < n->ninputs; i++)
        if (grads[i]) st = route(run, n, i, grads[i]);
    bn_scope_end();
    bn__autocast_resume(autocast);
    bn__grad_override(was);
    if (grads != stack_grads) free(grads);
    bn_release(g);
    /* like torch, create_graph keeps the graph: the new graph's nodes reach back into it */
    if (!run->opts.retain_graph && !run->opts.create_graph) {
        node_drop_saved(n);
        n->released = true;
    }
    return st;
}

static bn_status run_backward(const backward_run *run, bn_tensor *const *roots,
                              bn_tensor *const *root_grads, int nroots)
{
    graph g = {0};
    bn_status st = BN_OK;
    bn_node **root_nodes = calloc((size_t)nroots, sizeof *root_nodes);
    if (!root_nodes) return bn__error(BN_ERR_OOM, "bn_backward: out of memory");
    int was = bn__grad_override(run->opts.create_graph ? BN_GRAD_ON : BN_GRAD_OFF);
    bn_scope_begin();
    for (int r = 0; r < nroots && st == BN_OK; r++) {
        bn_tensor *t = roots[r];
        bn_tensor *seed = root_grads[r];
        if (!seed) seed = bn_ones_like(t);
        if (!seed) {
            st = bn_error_code();
            break;
        }
        if (!t->grad_fn) { /* a leaf root: its gradient is the seed itself */
            st = deliver_leaf(run, t, seed);
            continue;
        }
        if (run->targets) {
            int k = target_index(run, t);
            if (k >= 0) st = accumulate(&run->captured[k], seed);
        }
        if (st == BN_OK) st = accumulate(&t->grad_fn->pending, seed);
        root_nodes[r] = t->grad_fn;
    }
    bn_scope_end();
    bn__grad_override(was);
    if (st == BN_OK) {
        g.epoch = __atomic_add_fetch(&visit_epoch, 1, __ATOMIC_RELAXED);
        st = graph_collect(&g, root_nodes, nroots);
    }
    if (st == BN_OK) {
        for (size_t k = 0; k < g.len; k++)
            if (g.nodes[k]->deps == 0) heap_push(&g, g.nodes[k]);
        while (g.hlen && st == BN_OK) {
            bn_node *n = heap_pop(&g);
            st = run_node(run, n);
            for (int i = 0; i < n->ninputs; i++) {
                bn_node *up = n->edges[i].node;
                if (up && --up->deps == 0) heap_push(&g, up);
            }
        }
    }
    for (size_t k = 0; k < g.len; k++) { /* on failure, drop gradients still in flight */
        bn_release(g.nodes[k]->pending);
        g.nodes[k]->pending = NULL;
        bn__node_release(g.nodes[k]);
    }
    free(g.nodes);
    free(g.heap);
    free(root_nodes);
    return st;
}

static bn_status check_root(const char *fn, const bn_tensor *t, const bn_tensor *grad, int k)
{
    if (!t->requires_grad)
        return bn__error(BN_ERR_ARG,
                         "%s: output %d %s does not require grad (no input of the ops that made it "
                         "required grad, or it was made in no-grad mode)",
                         fn, k, bn__tshape(t));
    if (grad) {
        if (!bn_shape_equal(bn_shape_of(grad), bn_shape_of(t)))
            return bn__error(BN_ERR_SHAPE, "%s: grad %s does not match output %d %s", fn,
                             bn__tshape(grad), k, bn__tshape(t));
    } else if (bn__numel(t) != 1) {
        return bn__error(BN_ERR_SHAPE,
                         "%s: output %d %s has %lld elements; a gradient can be implied only for "
                         "one element (pass opts.grad)",
                         fn, k, bn__tshape(t), (long long)bn__numel(t));
    }
    return BN_OK;
}

bn_status bn_backward_ex(bn_tensor *t, bn_backward_opts o)
{
    BN_CHECK_NULL_STATUS("bn_backward", t);
    bn_status st = check_root("bn_backward", t, o.grad, 0);
    if (st != BN_OK) return st;
    backward_run run = {.opts = o};
    bn_tensor *g = (bn_tensor *)o.grad;
    return run_backward(&run, &t, &g, 1);
}

bn_status bn_backward(bn_tensor *loss) { return bn_backward_ex(loss, (bn_backward_opts){0}); }

bn_status bn_autograd_grad(bn_tensor *const *outputs, bn_tensor *const *grad_outputs,
                           int noutputs, bn_tensor *const *inputs, int ninputs, bn_tensor **grads,
                           bn_backward_opts o)
{
    const char *fn = "bn_autograd_grad";
    if (!outputs) return bn__null_arg_status(fn, "outputs");
    if (!inputs) return bn__null_arg_status(fn, "inputs");
    if (!grads) return bn__null_arg_status(fn, "grads");
    if (noutputs < 1 || ninputs < 1)
        return bn__error(BN_ERR_ARG, "%s: noutputs %d and ninputs %d must be >= 1", fn, noutputs,
                         ninputs);
    for (int i = 0; i < ninputs; i++) grads[i] = NULL;
    for (int k = 0; k < noutputs; k++) {
        if (!outputs[k]) return bn__null_arg_status(fn, "outputs[k]");
        bn_status st = check_root(fn, outputs[k], grad_outputs ? grad_outputs[k] : NULL, k);
        if (st != BN_OK) return st;
    }
    for (int i = 0; i < ninputs; i++) {
        if (!inputs[i]) return bn__null_arg_status(fn, "inputs[i]");
        if (!inputs[i]->requires_grad)
            return bn__error(BN_ERR_ARG, "%s: input %d %s does not require grad", fn, i,
                             bn__tshape(inputs[i]));
    }
    bn_tensor **root_grads = calloc((size_t)noutputs, sizeof *root_grads);
    if (!root_grads) return bn__error(BN_ERR_OOM, "%s: out of memory", fn);
    for (int k = 0; grad_outputs && k < noutputs; k++) root_grads[k] = grad_outputs[k];
    backward_run run = {.opts = o, .targets = inputs, .ntargets = ninputs, .captured = grads};
    bn_status st = run_backward(&run, outputs, root_grads, noutputs);
    free(root_grads);
    for (int i = 0; i < ninputs; i++) {
        if (st != BN_OK) {
            bn_release(grads[i]);
            grads[i] = NULL;
        } else if (grads[i]) {
            bn__out(grads[i]);
        }
    }
    return st;
}
