/* nn/rnn.c — LSTM and GRU modules (multi-layer, batch_first, optional biases) with PyTorch's
 * parameter names (weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0) and gate order (LSTM:
 * i, f, g, o; GRU: r, z, n). The recurrences are written with the differentiable public ops
 * (bn_linear, bn_sigmoid, bn_tanh, …), so autograd runs through time with no rule of its own.
 * Not done: bidirectional, dropout between layers, proj_size. */
#include "nn/nn_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

typedef enum rnn_kind { RNN_LSTM, RNN_GRU } rnn_kind;

typedef struct rnn {
    bn_module base;
    rnn_kind kind;
    int64_t input_size, hidden;
    int layers;
    bool batch_first, bias;
} rnn;

static const bn_tensor *layer_param(const bn_module *m, const char *what, int layer)
{
    char name[48];
    snprintf(name, sizeof name, "%s_l%d", what, layer);
    return bn__module_tensor(m, name);
}

/* One LSTM layer. x (T, N, C), weight_ih (4H, C), weight_hh (4H, H), biases (4H) or NULL;
 * *h and *c (N, H) are replaced by the last step's. Returns out (T, N, H). */
static bn_tensor *lstm_layer(const rnn *r, int k, const bn_tensor *x, bn_tensor **h,
                             bn_tensor **c, bn_tensor **steps)
{
    const bn_module *m = &r->base;
    const bn_tensor *w_hh = layer_param(m, "weight_hh", k), *b_hh = layer_param(m, "bias_hh", k);
    bn_tensor *xw = bn_linear(x, layer_param(m, "weight_ih", k), layer_param(m, "bias_ih", k));
    int64_t T = x->shape[0], H = r->hidden;
    for (int64_t t = 0; t < T; t++) {
        bn_tensor *gates = bn_add(bn_select(xw, 0, t), bn_linear(*h, w_hh, b_hh)); /* (N, 4H) */
        bn_tensor *i = bn_sigmoid(bn_narrow(gates, 1, 0, H));
        bn_tensor *f = bn_sigmoid(bn_narrow(gates, 1, H, H));
        bn_tensor *g = bn_tanh(bn_narrow(gates, 1, 2 * H, H));
        bn_tensor *o = bn_sigmoid(bn_narrow(gates, 1, 3 * H, H));
        *c = bn_add(bn_mul(f, *c), bn_mul(i, g));
        *h = bn_mul(o, bn_tanh(*c));
        steps[t] = *h;
    }
    return bn_stack(steps, (int)T, 0);
}

/* One GRU layer. x (T, N, C), weight_ih (3H, C), weight_hh (3H, H), biases (3H) or NULL;
 * *h (N, H) is replaced by the last step's. Returns out (T, N, H). */
static bn_tensor *gru_layer(const rnn *r, int k, const bn_tensor *x, bn_tensor **h,
                            bn_tensor **steps)
{
    const bn_module *m = &r->base;
    const bn_tensor *w_hh = layer_param(m, "weight_hh", k), *b_hh = layer_param(m, "bias_hh", k);
    bn_tensor *xw = bn_linear(x, layer_param(m, "weight_ih", k), layer_param(m, "bias_ih", k));
    int64_t T = x->shape[0], H = r->hidden;
    for (int64_t t = 0; t < T; t++) {
        bn_tensor *gi = bn_select(xw, 0, t);          /* (N, 3H) */
        bn_tensor *gh = bn_linear(*h, w_hh, b_hh);     /* (N, 3H) */
        bn_tensor *rg = bn_sigmoid(bn_add(bn_narrow(gi, 1, 0, H), bn_narrow(gh, 1, 0, H)));
        bn_tensor *z = bn_sigmoid(bn_add(bn_narrow(gi, 1, H, H), bn_narrow(gh, 1, H, H)));
        bn_tensor *n =
            bn_tanh(bn_add(bn_narrow(gi, 1, 2 * H, H), bn_mul(rg, bn_narrow(gh, 1, 2 * H, H))));
        *h = bn_add(n, bn_mul(z, bn_sub(*h, n))); /* (1 - z) * n + z * h */
        steps[t] = *h;
    }
    return bn_stack(steps, (int)T, 0);
}

static bool is_rnn(const bn_module *m);

static bool check_state(const char *fn, const char *arg, const bn_tensor *s, const rnn *r,
                        int64_t batch, bool unbatched)
{
    if (!s) return true;
    bool ok = unbatched ? (s->ndim == 2 && s->shape[0] == r->layers && s->shape[1] == r->hidden)
                        : (s->ndim == 3 && s->shape[0] == r->layers && s->shape[1] == batch &&
                           s->shape[2] == r->hidden);
    if (!ok) {
        char want[96];
        if (unbatched) snprintf(want, sizeof want, "[%d, %lld]", r->layers, (long long)r->hidden);
        else snprintf(want, sizeof want, "[%d, %lld, %lld]", r->layers, (long long)batch,
                      (long long)r->hidden);
        char label[320];
        bn__error(BN_ERR_SHAPE, "%s: %s: %s is %s, expected %s", fn,
                  bn__module_label(&r->base, label, sizeof label), arg, bn__tshape(s), want);
    }
    return ok;
}

static bool check_input(const char *fn, const rnn *r, const bn_tensor *x)
{
    if ((x->ndim == 2 || x->ndim == 3) && x->shape[x->ndim - 1] == r->input_size &&
        x->shape[0] > 0 && (x->ndim == 2 || x->shape[1] > 0))
        return true;
    char label[320];
    bn__error(BN_ERR_SHAPE, "%s: %s: input is %s, expected %s with C = %lld and T, N > 0", fn,
              bn__module_label(&r->base, label, sizeof label), bn__tshape(x),
              r->batch_first ? "(N, T, C) or (T, C)" : "(T, N, C) or (T, C)",
              (long long)r->input_size);
    return false;
}

/* The whole stack, inside the caller's scope. x (T, N, C); h0/c0 (L, N, H) or NULL. */
static bn_status run_layers(const rnn *r, const bn_tensor *x, const bn_tensor *h0,
                            const bn_tensor *c0, bn_tensor **out, bn_tensor **h_n,
                            bn_tensor **c_n)
{
    int64_t T = x->shape[0], N = x->shape[1];
    bn_tensor *zeros = bn_zeros(BN_SHAPE(r->layers, N, r->hidden), x->dtype);
    if (!h0) h0 = zeros;
    if (!c0) c0 = zeros;
    bn_tensor **steps = malloc(sizeof(bn_tensor *) * (size_t)(T + 2 * r->layers));
    if (!steps) return bn__error(BN_ERR_OOM, "bn_rnn_forward: out of memory");
    bn_tensor **hs = steps + T, **cs = hs + r->layers;
    const bn_tensor *in = x;
    for (int k = 0; k < r->layers && in; k++) {
        hs[k] = bn_select(h0, 0, k);
        cs[k] = bn_select(c0, 0, k);
        in = r->kind == RNN_LSTM ? lstm_layer(r, k, in, &hs[k], &cs[k], steps)
                                 : gru_layer(r, k, in, &hs[k], steps);
    }
    *out = (bn_tensor *)in;
    *h_n = in ? bn_stack(hs, r->layers, 0) : NULL;
    *c_n = in && r->kind == RNN_LSTM ? bn_stack(cs, r->layers, 0) : NULL;
    free(steps);
    return *h_n ? BN_OK : bn_error_code();
}

bn_status bn_rnn_forward(bn_module *m, const bn_tensor *x, const bn_tensor *h0,
                         const bn_tensor *c0, bn_tensor **output, bn_tensor **h_n,
                         bn_tensor **c_n)
{
    const char *fn = "bn_rnn_forward";
    if (output) *output = NULL;
    if (h_n) *h_n = NULL;
    if (c_n) *c_n = NULL;
    BN_CHECK_NULL_STATUS(fn, m);
    BN_CHECK_NULL_STATUS(fn, x);
    if (!is_rnn(m))
        return bn__error(BN_ERR_ARG, "%s: m is a %s, expected an LSTM or GRU", fn,
                         bn_module_type_name(m));
    const rnn *r = (const rnn *)m;
    if (r->kind == RNN_GRU && c0)
        return bn__error(BN_ERR_ARG, "%s: c0 is given, but a GRU has no cell state", fn);
    if (!check_input(fn, r, x)) return bn_error_code();
    bool unbatched = x->ndim == 2;
    int64_t batch = unbatched ? 1 : x->shape[r->batch_first ? 0 : 1];
    if (!check_state(fn, "h0", h0, r, batch, unbatched) ||
        !check_state(fn, "c0", c0, r, batch, unbatched))
        return bn_error_code();

    bn_scope_begin();
    const bn_tensor *seq = unbatched ? bn_unsqueeze(x, 1)
                           : r->batch_first ? bn_transpose(x, 0, 1)
                                            : x;
    if (unbatched) {
        h0 = h0 ? bn_unsqueeze(h0, 1) : NULL;
        c0 = c0 ? bn_unsqueeze(c0, 1) : NULL;
    }
    bn_tensor *out = NULL, *hn = NULL, *cn = NULL;
    bn_status st = run_layers(r, seq, h0, c0, &out, &hn, &cn);
    if (st == BN_OK) {
        out = unbatched ? bn_squeeze(out, 1) : r->batch_first ? bn_transpose(out, 0, 1) : out;
        hn = unbatched ? bn_squeeze(hn, 1) : hn;
        cn = unbatched && cn ? bn_squeeze(cn, 1) : cn;
        st = out && hn ? BN_OK : bn_error_code();
    }
    bn_tensor *keep[3] = {st == BN_OK ? out : NULL, st == BN_OK ? hn : NULL,
                          st == BN_OK ? cn : NULL};
    for (int i = 0; i < 3; i++) bn_retain(keep[i]);
    bn_scope_end();
    bn_tensor **dst[3] = {output, h_n, c_n};
    for (int i = 0; i < 3; i++) {
        if (keep[i] && dst[i]) *dst[i] = bn__out(keep[i]);
        else bn_release(keep[i]);
    }
    return st;
}

/* ---- the modules ------------------------------------------------------------------------------ */

static bn_tensor *rnn_module_forward(bn_module *m, const bn_tensor *x)
{
    bn_tensor *out = NULL;
    bn_rnn_forward(m, x, NULL, NULL, &out, NULL, NULL);
    return out; /* owned by bn_module_forward's scope */
}

static void rnn_repr(const bn_module *m, char *buf, size_t n)
{
    const rnn *r = (const rnn *)m;
    snprintf(buf, n, "%lld, %lld", (long long)r->input_size, (long long)r->hidden);
    if (r->layers != 1) bn__strcatf(buf, n, ", num_layers=%d", r->layers);
    if (!r->bias) bn__strcatf(buf, n, ", bias=False");
    if (r->batch_first) bn__strcatf(buf, n, ", batch_first=True");
}

static const bn_module_vtable lstm_vt = {"LSTM", rnn_module_forward, NULL, rnn_repr};
static const bn_module_vtable gru_vt = {"GRU", rnn_module_forward, NULL, rnn_repr};

static bool is_rnn(const bn_module *m) { return m->vt == &lstm_vt || m->vt == &gru_vt; }

static bool add_layer_params(rnn *r, int k, int64_t gates)
{
    int64_t in = k == 0 ? r->input_size : r->hidden, H = r->hidden;
    double bound = 1.0 / sqrt((double)H);
    const char *names[4] = {"weight_ih", "weight_hh", "bias_ih", "bias_hh"};
    bn_shape shapes[4] = {BN_SHAPE(gates * H, in), BN_SHAPE(gates * H, H), BN_SHAPE(gates * H),
                          BN_SHAPE(gates * H)};
    for (int i = 0; i < (r->bias ? 4 : 2); i++) {
        char name[48];
        snprintf(name, sizeof name, "%s_l%d", names[i], k);
        bn_tensor *p = bn__module_new_param(&r->base, name, shapes[i]);
        if (!p || bn_init_uniform(p, -bound, bound) != BN_OK) return false;
    }
    return true;
}

static bn_module *rnn_new(const char *fn, rnn_kind kind, int64_t input_size, int64_t hidden,
                          bn_rnn_opts o)
{
    if (input_size <= 0 || hidden <= 0 || o.num_layers < 0)
        return bn__error_null(BN_ERR_ARG, "%s: input_size %lld and hidden_size %lld must be > 0 "
                              "and num_layers %d >= 0", fn, (long long)input_size,
                              (long long)hidden, o.num_layers);
    rnn *r = (rnn *)bn_module_alloc(sizeof(rnn), kind == RNN_LSTM ? &lstm_vt : &gru_vt);
    if (!r) return NULL;
    r->kind = kind;
    r->input_size = input_size;
    r->hidden = hidden;
    r->layers = o.num_layers ? o.num_layers : 1;
    r->batch_first = o.batch_first;
    r->bias = !o.no_bias;
    for (int k = 0; k < r->layers; k++) {
        if (!add_layer_params(r, k, kind == RNN_LSTM ? 4 : 3)) {
            bn_module_free(&r->base);
            return NULL;
        }
    }
    return &r->base;
}

bn_module *bn_nn_lstm(int64_t input_size, int64_t hidden_size, bn_rnn_opts o)
{
    return rnn_new("bn_nn_lstm", RNN_LSTM, input_size, hidden_size, o);
}

bn_module *bn_nn_gru(int64_t input_size, int64_t hidden_size, bn_rnn_opts o)
{
    return rnn_new("bn_nn_gru", RNN_GRU, input_size, hidden_size, o);
}
