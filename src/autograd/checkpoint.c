/* autograd/checkpoint.c — gradient checkpointing: keep only a segment's inputs, run the segment
 * again in backward. The recompute sees the random generator state the forward saw, so dropout
 * masks match. */
#include "amp/amp_internal.h"
#include "autograd/autograd.h"

#include "born/ops.h"

typedef struct checkpoint_ctx {
    bn_checkpoint_fn fn;
    void *user;
    bn_rng_state rng;
    bn_dtype autocast; /* the forward's autocast dtype (BN_F32: none) */
    int ninputs;
    bn_tensor **inputs; /* retained: the values the recompute starts from */
} checkpoint_ctx;

static void checkpoint_ctx_free(void *p)
{
    checkpoint_ctx *c = p;
    for (int i = 0; i < c->ninputs; i++) bn_release(c->inputs[i]);
    free(c->inputs);
    free(c);
}

static bn_status checkpoint_backward(bn_node *n, const bn_tensor *g, bn_tensor **grads)
{
    checkpoint_ctx *c = n->ctx;
    int m = c->ninputs;
    bn_tensor **leaves = calloc((size_t)m, sizeof *leaves);
    bn_tensor **wrt = calloc((size_t)m, sizeof *wrt);
    bn_tensor **got = calloc((size_t)m, sizeof *got);
    bn_status st = BN_OK;
    if (!leaves || !wrt || !got) st = bn__error(BN_ERR_OOM, "CheckpointBackward: out of memory");
    int nwrt = 0;
    for (int i = 0; st == BN_OK && i < m; i++) {
        leaves[i] = bn_detach(c->inputs[i]); /* owned by the engine's scope */
        if (!leaves[i]) st = bn_error_code();
        else if (bn__node_needs(n, i)) {
            st = bn_set_requires_grad(leaves[i], true);
            wrt[nwrt++] = leaves[i];
        }
    }
    if (st == BN_OK && nwrt) {
        bn_rng_state later = bn_rng_get_state();
        bn_rng_set_state(c->rng);
        int was = bn__grad_override(BN_GRAD_ON);
        if (c->autocast != BN_F32) bn_autocast_begin(c->autocast);
        bn_tensor *out = c->fn(c->user, leaves, m);
        if (c->autocast != BN_F32) bn_autocast_end();
        bn__grad_override(was);
        bn_rng_set_state(later);
        if (!out) {
            st = bn_error_code() ? bn_error_code()
                                 : bn__error(BN_ERR_ARG, "bn_checkpoint: fn returned NULL");
        } else { /* out belongs to the engine's scope, which is open around this rule */
            if (!out->requires_grad) {
                st = bn__error(BN_ERR_ARG, "bn_checkpoint: the recomputed output does not "
                                           "depend on any input that requires grad");
            } else {
                bn_tensor *go = (bn_tensor *)g;
                st = bn_autograd_grad(&out, &go, 1, wrt, nwrt, got, (bn_backward_opts){0});
            }
        }
    }
    for (int i = 0, k = 0; st == BN_OK && i < m; i++)
        if (bn__node_needs(n, i)) grads[i] = got[k++];
    free(leaves);
    free(wrt);
    free(got);
    return st;
}

bn_tensor *bn_checkpoint(bn_checkpoint_fn fn, void *ctx, bn_tensor *const *inputs, int ninputs)
{
    if (!fn) return bn__null_arg("bn_checkpoint", "fn");
    if (!inputs && ninputs > 0) return bn__null_arg("bn_checkpoint", "inputs");
    if (ninputs < 1)
        return bn__error_null(BN_ERR_ARG, "bn_checkpoint: ninputs %d must be >= 1", ninputs);
    for (int i = 0; i < ninputs; i++)
        if (!inputs[i]) return bn__null_arg("bn_checkpoint", "inputs[i]");
    bn_rng_state rng = bn_rng_get_state();
    bn_no_grad_begin();
    bn_scope_begin(); /* fn's results belong to this scope; keep the one it returns */
    bn_tensor *out = fn(ctx, inputs, ninputs);
    bn_retain(out);
    bn_scope_end();
    bn_no_grad_end();
    if (!out) {
        if (!bn_error_code()) bn__error(BN_ERR_ARG, "bn_checkpoint: fn returned NULL");
        return NULL;
    }
    if (!bn__grad_needed((const bn_tensor *const *)inputs, ninputs)) return bn__out(out);
    if (out->requires_grad || out->grad_fn) {
        /* fn returned one of its inputs (or a tensor from elsewhere): nothing to recompute */
        return bn__out(out);
    }
    bn_node *node =
        bn__grad_record(out, "CheckpointBackward", checkpoint_backward,
                        (const bn_tensor *const *)inputs, ninputs);
    checkpoint_ctx *c = node ? bn__node_ctx_alloc(node, sizeof *c) : NULL;
    if (c) {
        node->ctx_free = checkpoint_ctx_free;
        c->inputs = calloc((size_t)ninputs, sizeof *c->inputs);
    }
    if (!c || !c->inputs) {
        bn_release(out);
        return bn__error_null(BN_ERR_OOM, "bn_checkpoint: out of memory");
    }
    c->fn = fn;
    c->user = ctx;
    c->rng = rng;
    c->autocast = bn_autocast_dtype();
    c->ninputs = ninputs;
    for (int i = 0; i < ninputs; i++) {
        bn_retain(inputs[i]);
        c->inputs[i] = inputs[i];
    }
    return bn__out(out);
}
