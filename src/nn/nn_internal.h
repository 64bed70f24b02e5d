/* nn/nn_internal.h — what the layers share privately: looking up a module's own tensors by name,
 * formatting module errors, and allocating a built-in module. */
#ifndef BORN_NN_INTERNAL_H
#define BORN_NN_INTERNAL_H

#include "born/nn.h"
#include "core/internal.h"

/* m's own parameter or buffer called name (borrowed), or NULL (no error set). */
bn_tensor *bn__module_tensor(const bn_module *m, const char *name);

/* The one-line repr of m ("Linear(in_features=4, out_features=2, bias=True)") into buf, for
 * error messages. */
const char *bn__module_label(const bn_module *m, char *buf, size_t n);

/* Sets a BN_ERR_SHAPE error "bn_module_forward: <label>: <message>" and returns NULL. */
bn_tensor *bn__module_shape_error(const bn_module *m, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Registers a new zero-filled float32 tensor of the given shape as a parameter (or buffer);
 * returns it (borrowed) or NULL. */
bn_tensor *bn__module_new_param(bn_module *m, const char *name, bn_shape s);
bn_tensor *bn__module_new_buffer(bn_module *m, const char *name, bn_shape s, bn_dtype dt,
                                 double fill);

/* v as Python's repr of a float prints it ("0.1", "1.0", "1e-05"). */
const char *bn__py_float(double v, char *buf, size_t n);

/* Appends printf-style text to buf (of size n) at its current end. */
void bn__strcatf(char *buf, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Default initialisation of Linear / Conv: kaiming_uniform(a = sqrt(5)) for the weight, which
 * is uniform(+-1/sqrt(fan_in)), and the bias (may be NULL) uniform(+-1/sqrt(fan_in)). */
bn_status bn__init_fan_in_uniform(bn_tensor *weight, bn_tensor *bias);

#endif
