/* born/nn.h — modules (DESIGN §8): layers with their own parameters and buffers, built from the
 * differentiable functions of ops.h, composed into models with PyTorch-compatible state-dict names
 * ("0.weight", "layers.1.bias"), train/eval mode, and default initialisation like PyTorch's.
 *
 * Writing your own module: embed bn_module as the FIRST member of your struct, allocate it with
 * bn_module_alloc (or calloc + bn_module_init), register parameters, buffers and children, and
 * give it a vtable:
 *
 *     typedef struct my_block { bn_module base; bn_module *fc; double scale; } my_block;
 *     static bn_tensor *my_forward(bn_module *m, const bn_tensor *x)
 *     {
 *         my_block *b = (my_block *)m;   // runs inside a scope: call ops, release nothing
 *         return bn_mul_scalar(bn_relu(bn_module_forward(b->fc, x)), b->scale);
 *     }
 *     static const bn_module_vtable my_vt = {.type_name = "MyBlock", .forward = my_forward};
 *     my_block *b = (my_block *)bn_module_alloc(sizeof(my_block), &my_vt);
 *     b->fc = bn_module_add_child(&b->base, "fc", bn_nn_linear(4, 4, true));
 *
 * Ownership: a module owns its parameters, buffers and children; bn_module_free frees them all
 * (and the struct itself, with free()). Tensors passed to add_param/add_buffer are retained. */
#ifndef BORN_NN_H
#define BORN_NN_H

#include "autograd.h"
#include "ops.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bn_module bn_module;

typedef struct bn_module_vtable {
    const char *type_name; /* "Linear", "Sequential", … as PyTorch names the class */
    /* Runs inside a scope that born opens: call public ops freely, release nothing, and return
     * their result (or x itself). NULL means the module cannot be called (ModuleList). */
    bn_tensor *(*forward)(bn_module *m, const bn_tensor *x);
    /* (optional) frees the module's own extra state; never its parameters, buffers, children. */
    void (*free)(bn_module *m);
    /* (optional) writes the part between the parentheses of the module's repr
     * ("in_features=4, out_features=2, bias=True") into buf. */
    void (*extra_repr)(const bn_module *m, char *buf, size_t n);
} bn_module_vtable;

struct bn_module {
    const bn_module_vtable *vt;
    bool training;                 /* true after construction, like PyTorch */
    struct bn_module_entries *own; /* private: named parameters, buffers and children */
};

/* ---- the module core ---------------------------------------------------------------------- */
/* Initialises an embedded bn_module (training on, nothing registered). */
BN_API bn_status bn_module_init(bn_module *m, const bn_module_vtable *vt);
/* calloc(1, size) + bn_module_init; size >= sizeof(bn_module). NULL on failure. */
BN_API bn_module *bn_module_alloc(size_t size, const bn_module_vtable *vt);
/* Frees m's parameters, buffers, children, its own state (vt->free) and m. NULL is ignored. */
BN_API void bn_module_free(bn_module *m);

/* Registers a parameter (retained; set to require grad when it is a float tensor). Names are
 * unique within a module and hold no '.'. */
BN_API bn_status bn_module_add_param(bn_module *m, const char *name, bn_tensor *t);
/* Registers a buffer (retained): state that is saved but not trained (running_mean, …). */
BN_API bn_status bn_module_add_buffer(bn_module *m, const char *name, bn_tensor *t);
/* Takes ownership of child (also on failure, when it is freed) and returns it, or NULL. */
BN_API bn_module *bn_module_add_child(bn_module *m, const char *name, bn_module *child);
/* Replaces the tensor registered under name (a parameter or buffer of m itself), e.g. to swap a
 * running statistic. t is retained; the old tensor released. */
BN_API bn_status bn_module_set_tensor(bn_module *m, const char *name, bn_tensor *t);

/* y = m(x). Errors from the layers name the module and the shapes. */
BN_API bn_tensor *bn_module_forward(bn_module *m, const bn_tensor *x);
/* Sets training mode on m and every descendant (Dropout, BatchNorm depend on it). */
BN_API void bn_module_train(bn_module *m, bool on);
BN_API void bn_module_eval(bn_module *m); /* bn_module_train(m, false) */
BN_API bool bn_module_is_training(const bn_module *m);
BN_API const char *bn_module_type_name(const bn_module *m); /* "?" for NULL */
/* Converts every float parameter and buffer of m and its descendants to dt (model.double()). */
BN_API bn_status bn_module_to_dtype(bn_module *m, bn_dtype dt);
/* Moves every parameter and buffer of m and its descendants to device d (model.to(device)):
 * each becomes a new leaf tensor on d (requires_grad kept; gradients are not moved), so build
 * optimizers after moving. An unavailable device is BN_ERR_DEVICE with the reason. */
BN_API bn_status bn_module_to_device(bn_module *m, bn_device d);

/* A list of named tensors; each tensor is a reference owned by the list. count is -1 on error. */
typedef struct bn_tensor_list {
    int count;
    char **names;
    bn_tensor **tensors;
} bn_tensor_list;
BN_API void bn_tensor_list_free(bn_tensor_list *l);

/* Parameters of m and its descendants, named and ordered like PyTorch's named_parameters()
 * (a tensor shared by two modules appears once). */
BN_API bn_tensor_list bn_module_named_parameters(const bn_module *m);
BN_API bn_tensor_list bn_module_named_buffers(const bn_module *m);
/* Parameters and buffers in PyTorch's state_dict() order: each module's parameters, then its
 * buffers, then its children's entries. */
BN_API bn_tensor_list bn_module_state_dict(const bn_module *m);
/* Copies the values of sd (names as bn_module_state_dict gives them) into m's parameters and
 * buffers, under no-grad; shapes must match (dtypes are converted). strict: every entry of m
 * must be in sd and every entry of sd in m, like load_state_dict(strict=True). */
BN_API bn_status bn_module_load_state_dict(bn_module *m, const bn_tensor_list *sd, bool strict);
/* Clears the gradient of every parameter (PyTorch's zero_grad(set_to_none=True)). */
BN_API void bn_module_zero_grad(bn_module *m);
/* Fills out with up to max parameters (borrowed: valid while m lives; retain to keep them) in
 * named_parameters order; returns the total number, or -1 on error. */
BN_API int bn_module_parameters(const bn_module *m, bn_tensor **out, int max);
/* Total number of parameter elements (sum of numel; shared tensors counted once); -1 on error. */
BN_API int64_t bn_module_num_parameters(const bn_module *m);

/* The parameter or buffer at a dotted path ("layers.1.weight"): a new reference, or NULL with
 * BN_ERR_ARG naming the path. */
BN_API bn_tensor *bn_module_get(const bn_module *m, const char *path);
/* The descendant module at a dotted path ("features.0"); borrowed (owned by m) or NULL. */
BN_API bn_module *bn_module_child(const bn_module *m, const char *path);
BN_API int bn_module_num_children(const bn_module *m);
/* The i-th direct child (registration order) and, when name is not NULL, its name; borrowed. */
BN_API bn_module *bn_module_child_at(const bn_module *m, int i, const char **name);

/* The model as PyTorch prints it ("Sequential(\n  (0): Linear(in_features=…"). malloc'ed:
 * free() it. */
BN_API char *bn_module_repr(const bn_module *m);

/* ---- layers (bn_nn_*: each returns a new module in training mode, or NULL with an error) ---- */
BN_API bn_module *bn_nn_linear(int64_t in_features, int64_t out_features, bool bias);

/* Square kernels. bn_conv_opts as for bn_conv2d (same = padding 'same'). no_bias drops the bias. */
typedef struct bn_nn_conv_opts {
    int64_t stride, padding, dilation, groups, output_padding;
    bool same;
    bool no_bias;
} bn_nn_conv_opts;
BN_API bn_module *bn_nn_conv1d(int64_t in_channels, int64_t out_channels, int64_t kernel,
                               bn_conv_opts o);
BN_API bn_module *bn_nn_conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel,
                               bn_conv_opts o);
BN_API bn_module *bn_nn_conv_transpose2d(int64_t in_channels, int64_t out_channels,
                                         int64_t kernel, bn_conv_opts o);
/* The same with the bias switch (bn_conv_opts has none). */
BN_API bn_module *bn_nn_conv1d_ex(int64_t in_channels, int64_t out_channels, int64_t kernel,
                                  bn_nn_conv_opts o);
BN_API bn_module *bn_nn_conv2d_ex(int64_t in_channels, int64_t out_channels, int64_t kernel,
                                  bn_nn_conv_opts o);
BN_API bn_module *bn_nn_conv_transpose2d_ex(int64_t in_channels, int64_t out_channels,
                                            int64_t kernel, bn_nn_conv_opts o);

BN_API bn_module *bn_nn_maxpool2d(int64_t kernel, bn_pool_opts o);
BN_API bn_module *bn_nn_avgpool2d(int64_t kernel, bn_pool_opts o);
BN_API bn_module *bn_nn_adaptive_avgpool2d(int64_t out_h, int64_t out_w);

/* Zero means PyTorch's default: eps 1e-5 (RMSNorm: the dtype's machine epsilon), momentum 0.1. */
typedef struct bn_norm_opts {
    double eps;
    double momentum;
    bool cumulative_average;      /* BatchNorm: momentum=None (running stats average all batches) */
    bool no_affine;               /* no weight/bias */
    bool no_track_running_stats;  /* BatchNorm: always batch statistics, no buffers */
} bn_norm_opts;
BN_API bn_module *bn_nn_batchnorm1d(int64_t num_features, bn_norm_opts o);
BN_API bn_module *bn_nn_batchnorm2d(int64_t num_features, bn_norm_opts o);
BN_API bn_module *bn_nn_layernorm(bn_shape normalized_shape, bn_norm_opts o);
BN_API bn_module *bn_nn_rmsnorm(bn_shape normalized_shape, bn_norm_opts o);
BN_API bn_module *bn_nn_groupnorm(int64_t num_groups, int64_t num_channels, bn_norm_opts o);

BN_API bn_module *bn_nn_dropout(double p);
BN_API bn_module *bn_nn_embedding(int64_t num_embeddings, int64_t embedding_dim);
BN_API bn_module *bn_nn_flatten(void); /* start_dim 1, end_dim -1 */
BN_API bn_module *bn_nn_flatten_dims(int start_dim, int end_dim);
BN_API bn_module *bn_nn_identity(void);

/* activations */
BN_API bn_module *bn_nn_relu(void);
BN_API bn_module *bn_nn_leaky_relu(double negative_slope); /* torch default 0.01 */
BN_API bn_module *bn_nn_elu(double alpha);                 /* torch default 1.0 */
BN_API bn_module *bn_nn_gelu(bool tanh_approximation);    /* false: exact (erf) */
BN_API bn_module *bn_nn_silu(void);
BN_API bn_module *bn_nn_sigmoid(void);
BN_API bn_module *bn_nn_tanh(void);
BN_API bn_module *bn_nn_softmax(int dim);

/* ---- recurrent layers ------------------------------------------------------------------------ */
/* Zero means the default: one layer, input (T, N, C) (batch_first: (N, T, C)), with biases.
 * Parameters per layer k: weight_ih_lk, weight_hh_lk, bias_ih_lk, bias_hh_lk; gate order
 * i, f, g, o (LSTM) and r, z, n (GRU) like PyTorch. */
typedef struct bn_rnn_opts {
    int num_layers;
    bool batch_first;
    bool no_bias;
} bn_rnn_opts;
BN_API bn_module *bn_nn_lstm(int64_t input_size, int64_t hidden_size, bn_rnn_opts o);
BN_API bn_module *bn_nn_gru(int64_t input_size, int64_t hidden_size, bn_rnn_opts o);
/* Runs an LSTM or GRU over x ((T, N, C), (N, T, C) with batch_first, or unbatched (T, C)).
 * h0/c0 (num_layers, N, H) or NULL for zeros (c0 only for LSTM). Returns new references in
 * *output (T, N, H), *h_n and *c_n (num_layers, N, H); any out pointer may be NULL; c_n is
 * set to NULL for a GRU. bn_module_forward on an RNN returns output only. */
BN_API bn_status bn_rnn_forward(bn_module *m, const bn_tensor *x, const bn_tensor *h0,
                                const bn_tensor *c0, bn_tensor **output, bn_tensor **h_n,
                                bn_tensor **c_n);

/* ---- containers ------------------------------------------------------------------------------- */
/* Sequential(first, …, NULL): takes ownership of the modules. A constructor that failed in the
 * list returns NULL and so ends it early: when an error is pending at the end, the call fails
 * and frees the modules it got (those after the NULL are not reached: build step by step with
 * bn_module_append where that matters). */
BN_API bn_module *bn_nn_sequential(bn_module *first, ...);
BN_API bn_module *bn_nn_sequential_from(bn_module *const *mods, int n);
BN_API bn_module *bn_nn_module_list(void);
/* Appends child to a Sequential or ModuleList under the next index ("0", "1", …); takes
 * ownership. */
BN_API bn_status bn_module_append(bn_module *list, bn_module *child);

/* ---- initialisation (in place, under no-grad; draw from born's Philox generator) -------------- */
typedef enum bn_nonlinearity {
    BN_NONLIN_LEAKY_RELU = 0, /* gain sqrt(2 / (1 + a^2)), the default with a = 0 like torch */
    BN_NONLIN_RELU,           /* gain sqrt(2) */
    BN_NONLIN_LINEAR,         /* gain 1 (also conv, sigmoid) */
    BN_NONLIN_TANH,           /* gain 5/3 */
    BN_NONLIN_SELU,           /* gain 3/4 */
} bn_nonlinearity;
typedef enum bn_fan_mode { BN_FAN_IN = 0, BN_FAN_OUT } bn_fan_mode;

BN_API bn_status bn_init_uniform(bn_tensor *t, double low, double high);
BN_API bn_status bn_init_normal(bn_tensor *t, double mean, double std);
BN_API bn_status bn_init_constant(bn_tensor *t, double value);
BN_API bn_status bn_init_zeros(bn_tensor *t);
BN_API bn_status bn_init_ones(bn_tensor *t);
/* fan_in = size(1) * receptive field, fan_out = size(0) * receptive field (t has >= 2 dims). */
BN_API bn_status bn_init_fans(const bn_tensor *t, int64_t *fan_in, int64_t *fan_out);
BN_API double bn_init_gain(bn_nonlinearity nl, double param);
/* bound = gain * sqrt(3 / fan), gain from (nonlinearity, a) like torch.nn.init. */
BN_API bn_status bn_init_kaiming_uniform(bn_tensor *t, double a, bn_fan_mode mode,
                                         bn_nonlinearity nl);
BN_API bn_status bn_init_kaiming_normal(bn_tensor *t, double a, bn_fan_mode mode,
                                        bn_nonlinearity nl);
BN_API bn_status bn_init_xavier_uniform(bn_tensor *t, double gain);
BN_API bn_status bn_init_xavier_normal(bn_tensor *t, double gain);

#ifdef __cplusplus
}
#endif
#endif
