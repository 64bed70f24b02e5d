/* nn/layers_act.c — activations as modules (ReLU, LeakyReLU, ELU, GELU, SiLU, Sigmoid, Tanh,
 * Softmax) and the containers Sequential and ModuleList. */
#include "nn/nn_internal.h"

#include <stdarg.h>
#include <stdio.h>

/* ---- activations ---------------------------------------------------------------------------- */

typedef struct activation {
    bn_module base;
    double a;   /* negative_slope / alpha */
    bool tanh;  /* GELU: the tanh approximation */
    int dim;    /* Softmax */
} activation;

static bn_tensor *relu_forward(bn_module *m, const bn_tensor *x)
{
    (void)m;
    return bn_relu(x);
}

static bn_tensor *leaky_forward(bn_module *m, const bn_tensor *x)
{
    return bn_leaky_relu(x, ((activation *)m)->a);
}

static bn_tensor *elu_forward(bn_module *m, const bn_tensor *x)
{
    return bn_elu(x, ((activation *)m)->a);
}

static bn_tensor *gelu_forward(bn_module *m, const bn_tensor *x)
{
    return ((activation *)m)->tanh ? bn_gelu_tanh(x) : bn_gelu(x);
}

static bn_tensor *silu_forward(bn_module *m, const bn_tensor *x)
{
    (void)m;
    return bn_silu(x);
}

static bn_tensor *sigmoid_forward(bn_module *m, const bn_tensor *x)
{
    (void)m;
    return bn_sigmoid(x);
}

static bn_tensor *tanh_forward(bn_module *m, const bn_tensor *x)
{
    (void)m;
    return bn_tanh(x);
}

static bn_tensor *softmax_forward(bn_module *m, const bn_tensor *x)
{
    int dim = ((activation *)m)->dim, nd = x->ndim ? x->ndim : 1;
    if (dim < -nd || dim >= nd)
        return bn__module_shape_error(m, "input is %s, which has no dim %d", bn__tshape(x), dim);
    return bn_softmax(x, dim);
}

static void leaky_repr(const bn_module *m, char *buf, size_t n)
{
    char f[32];
    snprintf(buf, n, "negative_slope=%s", bn__py_float(((const activation *)m)->a, f, sizeof f));
}

static void elu_repr(const bn_module *m, char *buf, size_t n)
{
    char f[32];
    snprintf(buf, n, "alpha=%s", bn__py_float(((const activation *)m)->a, f, sizeof f));
}

static void gelu_repr(const bn_module *m, char *buf, size_t n)
{
    snprintf(buf, n, "approximate='%s'", ((const activation *)m)->tanh ? "tanh" : "none");
}

static void softmax_repr(const bn_module *m, char *buf, size_t n)
{
    snprintf(buf, n, "dim=%d", ((const activation *)m)->dim);
}

static const bn_module_vtable relu_vt = {"ReLU", relu_forward, NULL, NULL};
static const bn_module_vtable leaky_vt = {"LeakyReLU", leaky_forward, NULL, leaky_repr};
static const bn_module_vtable elu_vt = {"ELU", elu_forward, NULL, elu_repr};
static const bn_module_vtable gelu_vt = {"GELU", gelu_forward, NULL, gelu_repr};
static const bn_module_vtable silu_vt = {"SiLU", silu_forward, NULL, NULL};
static const bn_module_vtable sigmoid_vt = {"Sigmoid", sigmoid_forward, NULL, NULL};
static const bn_module_vtable tanh_vt = {"Tanh", tanh_forward, NULL, NULL};
static const bn_module_vtable softmax_vt = {"Softmax", softmax_forward, NULL, softmax_repr};

static bn_module *activation_new(const bn_module_vtable *vt, double a, bool tanh, int dim)
{
    activation *act = (activation *)bn_module_alloc(sizeof(activation), vt);
    if (!act) return NULL;
    act->a = a;
    act->tanh = tanh;
    act->dim = dim;
    return &act->base;
}

bn_module *bn_nn_relu(void) { return activation_new(&relu_vt, 0, false, 0); }
bn_module *bn_nn_leaky_relu(double negative_slope)
{
    return activation_new(&leaky_vt, negative_slope, false, 0);
}
bn_module *bn_nn_elu(double alpha) { return activation_new(&elu_vt, alpha, false, 0); }
bn_module *bn_nn_gelu(bool tanh_approximation)
{
    return activation_new(&gelu_vt, 0, tanh_approximation, 0);
}
bn_module *bn_nn_silu(void) { return activation_new(&silu_vt, 0, false, 0); }
bn_module *bn_nn_sigmoid(void) { return activation_new(&sigmoid_vt, 0, false, 0); }
bn_module *bn_nn_tanh(void) { return activation_new(&tanh_vt, 0, false, 0); }
bn_module *bn_nn_softmax(int dim) { return activation_new(&softmax_vt, 0, false, dim); }

/* ---- containers ---------------------------------------------------------------------------------- */

/* Each child's output is the next one's input. */
static bn_tensor *sequential_forward(bn_module *m, const bn_tensor *x)
{
    const bn_tensor *h = x;
    int n = bn_module_num_children(m);
    for (int i = 0; i < n && h; i++) h = bn_module_forward(bn_module_child_at(m, i, NULL), h);
    return (bn_tensor *)h;
}

static const bn_module_vtable sequential_vt = {"Sequential", sequential_forward, NULL, NULL};
static const bn_module_vtable module_list_vt = {"ModuleList", NULL, NULL, NULL};

static bool is_list(const bn_module *m)
{
    return m->vt == &sequential_vt || m->vt == &module_list_vt;
}

bn_status bn_module_append(bn_module *list, bn_module *child)
{
    if (!list || !child || !is_list(list)) {
        bn_module_free(child);
        if (!list) return bn__null_arg_status("bn_module_append", "list");
        if (!child) return bn__null_arg_status("bn_module_append", "child");
        return bn__error(BN_ERR_ARG, "bn_module_append: list is a %s, expected a Sequential or "
                         "ModuleList", bn_module_type_name(list));
    }
    char name[24];
    snprintf(name, sizeof name, "%d", bn_module_num_children(list));
    return bn_module_add_child(list, name, child) ? BN_OK : bn_error_code();
}

bn_module *bn_nn_sequential_from(bn_module *const *mods, int n)
{
    bool bad = n < 0 || (n > 0 && !mods);
    for (int i = 0; i < n && !bad; i++) bad = !mods[i];
    bn_module *seq = bad ? NULL : bn_module_alloc(sizeof(bn_module), &sequential_vt);
    if (!seq) {
        for (int i = 0; mods && i < n; i++) bn_module_free(mods[i]);
        if (bad) return bn__null_arg("bn_nn_sequential", "module");
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        if (bn_module_append(seq, mods[i]) != BN_OK) {
            for (int j = i + 1; j < n; j++) bn_module_free(mods[j]);
            bn_module_free(seq);
            return NULL;
        }
    }
    return seq;
}

#define SEQUENTIAL_MAX 256

/* A constructor that failed inside the argument list returns NULL, which ends the list early:
 * with an error pending the whole call fails (freeing what it got) rather than build a
 * truncated model. */
bn_module *bn_nn_sequential(bn_module *first, ...)
{
    bn_module *mods[SEQUENTIAL_MAX];
    int n = 0, dropped = 0;
    va_list ap;
    va_start(ap, first);
    for (bn_module *m = first; m; m = va_arg(ap, bn_module *)) {
        if (n < SEQUENTIAL_MAX) {
            mods[n++] = m;
        } else {
            bn_module_free(m);
            dropped++;
        }
    }
    va_end(ap);
    if (dropped || bn_error_code() != BN_OK) {
        for (int i = 0; i < n; i++) bn_module_free(mods[i]);
        if (dropped)
            return bn__error_null(BN_ERR_ARG, "bn_nn_sequential: %d modules given, at most %d",
                                  n + dropped, SEQUENTIAL_MAX);
        return NULL;
    }
    return bn_nn_sequential_from(mods, n);
}

bn_module *bn_nn_module_list(void) { return bn_module_alloc(sizeof(bn_module), &module_list_vt); }
