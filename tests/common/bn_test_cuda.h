/* tests/common/bn_test_cuda.h — what every GPU suite (tests/backend/test_cuda*.c) shares: the
 * skip when there is no CUDA device (or no plugin), moving tensors between cuda:0 and the CPU,
 * random inputs and the GPU-against-CPU comparison. Included after bn_test.h. */
#ifndef BN_TEST_CUDA_H
#define BN_TEST_CUDA_H

#include "born/cuda.h"
#include "born/ops.h"
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

/* Uniform [lo, hi) of dtype dt on the CPU (drawn in f64, then cast), registered with the scope. */
static inline bn_tensor *rand_in(bn_shape s, double lo, double hi, bn_dtype dt)
{
    bn_tensor *u = bn_rand(s, BN_F64);
    return bn_to_dtype(bn_add_scalar(bn_mul_scalar(u, hi - lo), lo), dt);
}

/* got_gpu exists, lives on the GPU and is close to the CPU's want. */
static inline void expect_close(const bn_tensor *got_gpu, const bn_tensor *want, double rtol,
                                double atol, const char *what)
{
    cr_assert_not_null(got_gpu, "%s: %s", what, bn_error_message());
    cr_assert_not_null(want, "%s (CPU): %s", what, bn_error_message());
    cr_assert_eq(bn_device_of(got_gpu).type, BN_DEVICE_CUDA, "%s: result not on the GPU", what);
    bnt_assert_close(cpu(got_gpu), want, rtol, atol, what);
}

#endif
