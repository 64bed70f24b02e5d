/* backend/cpu/cpu.c — the CPU backend's vtable. Kernels live beside this file,
 * one family per file; host memory (bn__alloc_aligned, with its cache of large blocks) is in
 * host_alloc.c. */
#include "backend/cpu/cpu_kernels.h"

#include <string.h>

static bn_status cpu_memcpy(void *dst, const void *src, size_t nbytes)
{
    if (nbytes) memcpy(dst, src, nbytes);
    return BN_OK;
}

static const bn_backend cpu_backend = {
    .name = "cpu",
    .type = BN_DEVICE_CPU,
    .alloc = bn__alloc_aligned,
    .free = bn__free_aligned,
    .copy_to_host = cpu_memcpy,
    .copy_from_host = cpu_memcpy,
    .synchronize = NULL,
    .copy = bn_cpu_copy,
    .fill = bn_cpu_fill,
    .sequence = bn_cpu_sequence,
    .random = bn_cpu_random,
    .unary = bn_cpu_unary,
    .binary = bn_cpu_binary,
    .where = bn_cpu_where,
    .reduce = bn_cpu_reduce,
    .cumsum = bn_cpu_cumsum,
    .softmax = bn_cpu_softmax,
    .matmul = bn_cpu_matmul,
    .index_select = bn_cpu_index_select,
    .gather = bn_cpu_gather,
    .scatter = bn_cpu_scatter,
    .sort = bn_cpu_sort,
    .topk = bn_cpu_topk,
    .tri = bn_cpu_tri,
    .conv = &bn_cpu_conv,
    .nn = &bn_cpu_nn,
    .optim = &bn_cpu_optim,
    .attn = &bn_cpu_attn,
};

const bn_backend *bn__cpu_backend(void) { return &cpu_backend; }
