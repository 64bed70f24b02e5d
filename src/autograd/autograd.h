/* autograd/autograd.h — the private side of autograd: graph nodes, how ops record them, and the
 * helpers derivative rules use.
 *
 * How an op records itself (in ops/, after its result `out` is computed):
 *
 *     if (bn__grad_needed(inputs, n)) {
 *         bn_node *node = bn__grad_record(out, "MulBackward", mul_backward, inputs, n);
 *         if (!node) { bn_release(out); return NULL; }
 *         bn__node_save(node, 0, a);           // tensors the rule needs (version-checked)
 *         node->f[0] = alpha;                   // scalar parameters
 *     }
 *
 * How a rule is written (in autograd/grad_<family>.c, next to the forward it differentiates):
 *
 *     static bn_status mul_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
 *     {
 *         // grads[i] = d(loss)/d(input i), or NULL when input i needs none
 *         if (bn__node_needs(n, 0)) grads[0] = bn_mul(g, bn__node_saved(n, 1));
 *         if (bn__node_needs(n, 1)) grads[1] = bn_mul(g, bn__node_saved(n, 0));
 *         return bn_error_code();
 *     }
 *
 * The engine runs every rule inside a scope of its own: rules call the public ops freely and
 * never release; the engine keeps what it needs of grads[] and ends the scope. The engine sums
 * grads[i] over broadcast dims into input i's shape and casts it to input i's dtype, so a rule
 * may return a gradient in the broadcast output shape. With create_graph the rule's ops record
 * nodes themselves, which gives higher derivatives for free. */
#ifndef BORN_AUTOGRAD_INTERNAL_H
#define BORN_AUTOGRAD_INTERNAL_H

#include "born/autograd.h"
#include "core/internal.h"

#define BN_NODE_SAVED 4
#define BN_NODE_PARAMS 8

typedef struct bn_node bn_node;

/* grad_out has the node output's shape and dtype. */
typedef bn_status (*bn_backward_fn)(bn_node *n, const bn_tensor *grad_out, bn_tensor **grads);

typedef struct bn_edge {
    bn_node *node;   /* the input's grad_fn (retained), or NULL */
    bn_tensor *leaf; /* the input when it is a leaf that requires grad (retained), or NULL */
} bn_edge;

struct bn_node {
    int64_t refcount; /* atomic: held by the output tensor and by consumers' edges */
    const char *name;
    bn_backward_fn backward;
    uint64_t seq; /* creation order */
    int ninputs;
    bn_edge *edges;      /* ninputs entries */
    bn_shape *in_shape;  /* ninputs entries: each input's shape … */
    bn_dtype *in_dtype;  /* … and dtype, for the engine's reduce-and-cast */
    bn_tensor *saved[BN_NODE_SAVED];
    uint64_t saved_version[BN_NODE_SAVED];
    double f[BN_NODE_PARAMS];  /* scalar parameters of the op */
    int64_t i[BN_NODE_PARAMS]; /* integer parameters (dims, sizes, …) */
    void *ctx;                 /* (optional) more state; freed with ctx_free (or free) */
    void (*ctx_free)(void *ctx);
    bn_tensor *output;   /* weak: the tensor this node produced, cleared when it is freed */
    bool released;       /* backward ran without retain_graph: saved tensors are gone */
    /* engine bookkeeping during one backward */
    uint64_t visit;
    int64_t deps;
    bn_tensor *pending; /* gradient of output summed so far */
};

/* True when grad mode is on and at least one of the (non-NULL) inputs requires grad. */
bool bn__grad_needed(const bn_tensor *const *inputs, int n);
bool bn__grad_needed1(const bn_tensor *a);
bool bn__grad_needed2(const bn_tensor *a, const bn_tensor *b);

/* Attaches a new node to out (out becomes a non-leaf requiring grad). NULL inputs are allowed
 * (they get no gradient). Returns the node, or NULL with BN_ERR_OOM. */
bn_node *bn__grad_record(bn_tensor *out, const char *name, bn_backward_fn fn,
                         const bn_tensor *const *inputs, int n);
/* Keeps t (retained) for the rule, remembering its version to catch in-place changes. */
void bn__node_save(bn_node *n, int slot, const bn_tensor *t);
/* A saved tensor (borrowed), or NULL. Fails the backward if it was modified in place. */
bn_tensor *bn__node_saved(bn_node *n, int slot);
/* Whether input i needs a gradient (it reaches a leaf that requires grad). */
bool bn__node_needs(const bn_node *n, int i);
void *bn__node_ctx_alloc(bn_node *n, size_t bytes); /* zeroed; freed with the node */

void bn__node_retain(bn_node *n);
void bn__node_release(bn_node *n);

/* Sums grad over the dims that were broadcast so it has shape s (registered with the current
 * scope, like a public op). */
bn_tensor *bn__sum_to_shape(const bn_tensor *grad, bn_shape s);
/* Zeros of shape s and dtype dt on like's device, registered in the current scope (the rules'
 * bn_zeros, which would always make a CPU tensor). */
bn_tensor *bn__grad_zeros(bn_shape s, bn_dtype dt, const bn_tensor *like);

/* The engine's grad-mode override while it runs rules: pass BN_GRAD_ON/OFF/FOLLOW, get back the
 * previous state, and pass that back to restore it. bn_no_grad_begin inside still disables. */
enum { BN_GRAD_FOLLOW = -1, BN_GRAD_OFF = 0, BN_GRAD_ON = 1 };
int bn__grad_override(int mode);

#endif
