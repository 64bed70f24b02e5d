/* backend_cuda/cuda_optim.h — the CUDA plugin's optimizer updates (backend_optim.h): the entry
 * point of cuda_optim.cu, with C mirrors of bn_optim_hparams / bn_optim_tensor so the .cu file
 * needs none of libborn's headers, and the bn_backend_optim table cuda_optim_glue.c exports
 * (the integrator puts `.optim = &bcu_optim` in cuda_backend.c's vtable). */
#ifndef BORN_CUDA_OPTIM_H
#define BORN_CUDA_OPTIM_H

#include "backend_cuda/cuda_kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Tensors per kernel launch: their addresses, sizes and scalars fill most of the 4 KB of kernel
 * parameters (cuda_optim.cu checks the size at compile time). */
#define BCU_OPTIM_TENSORS_PER_LAUNCH 36

/* bn_optim_hparams, field for field (the glue copies each one). */
typedef struct bcu_optim_hparams {
    double lr, weight_decay, momentum, dampening;
    double beta1, beta2, alpha, rho, eps, decay;
    bool nesterov, maximize;
} bcu_optim_hparams;

/* bn_optim_tensor: (numel) device arrays of the call's dtype; state[k] NULL where unused. */
typedef struct bcu_optim_tensor {
    void *param;
    const void *grad;
    void *state[3];
    int64_t numel;
    double coef[3];
} bcu_optim_tensor;

/* Updates ts[0 .. n) in place with rule (a bn_optim_rule value) on stream s; dtype BCU_F32 or
 * BCU_F64 (anything else: BN_ERR_UNSUPPORTED = 8). Multi-tensor: one launch covers up to
 * BCU_OPTIM_TENSORS_PER_LAUNCH tensors, whose addresses and scalars travel in the kernel's
 * parameters (no device buffer, no host synchronisation). Returns 0 or a bn_status value with
 * bcu_last_message(). */
int bcu_optim_update(bcu_stream s, int rule, int dtype, const bcu_optim_hparams *h,
                     const bcu_optim_tensor *ts, int n);

/* cuda_optim_glue.c */
extern const struct bn_backend_optim bcu_optim;

#ifdef __cplusplus
}
#endif

#endif
