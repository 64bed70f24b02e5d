/* tests/common/bn_test_cuda.h — what every GPU suite (tests/backend/test_cuda*.c) shares: the
 * skip when there is no CUDA device (or no plugin), and moving tensors between cuda:0 and the
 * CPU. Included after bn_test.h. */
#ifndef BN_TEST_CUDA_H
#define BN_TEST_CUDA_H

#include "born/cuda.h"
#include "born/tensor.h"

static inline bool have_gpu(void) { return bn_cuda_device_count() > 0; }

/* Skips the calling test, saying why, when no GPU can run it. */
#define NEED_GPU()                                                                                 \
    do {                                                                                           \
        if (!have_gpu()) cr_skip_test("no CUDA device: %s", bn_cuda_unavailable_reason());         \
    } while (0)

/* t on cuda:0 / on the CPU (new references registered with the open scope; NULL on error). */
static inline bn_tensor *gpu(const bn_tensor *t) { return bn_tensor_to(t, bn_cuda(0)); }
static inline bn_tensor *cpu(const bn_tensor *t) { return bn_tensor_to(t, bn_cpu()); }

#endif
