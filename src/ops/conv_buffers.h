/* ops/conv_buffers.h — recycled CPU buffers for the convolution and pooling ops (conv_buffers.c).
 * Private to ops/conv.c and ops/pool.c. */
#ifndef BORN_OPS_CONV_BUFFERS_H
#define BORN_OPS_CONV_BUFFERS_H

#include "core/internal.h"

/* Like bn__empty (a new contiguous tensor, uninitialised, not registered), but on the CPU its
 * buffer comes from a small cache of recently released conv/pool buffers and goes back there
 * when the tensor's last reference is released; other devices get bn__empty's. */
bn_tensor *bn__conv_empty(const int64_t *shape, int ndim, bn_dtype dt, bn_device d);

#endif
