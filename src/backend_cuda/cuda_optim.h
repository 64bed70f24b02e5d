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

/* Gradient clipping (backend_optim.h's grad_norm / scale_grads). Arrays per launch (an address
 * and a size each, in the kernel's parameters) and elements per chunk: each chunk's sum of
 * |g|^p lands in its own f64 slot of the scratch array before one block combines the slots. */
#define BCU_CLIP_TENSORS_PER_LAUNCH 128
#define BCU_CLIP_CHUNK 16384

/* The scratch slots bcu_clip_grad_norm needs for these sizes (0 when every array is empty). */
int64_t bcu_clip_partials(const int64_t *numel, int n);
/* *out (a device f64) = sum over grads[0 .. n) of |g|^p, or the largest |g| when p is infinite,
 * deterministic (backend_optim.h); scratch holds bcu_clip_partials(numel, n) doubles on the
 * device. dtype BCU_F32/F64/F16/BF16, else BN_ERR_UNSUPPORTED = 8. Queued on s; 0 or a
 * bn_status value with bcu_last_message(). */
int bcu_clip_grad_norm(bcu_stream s, int dtype, const void *const *grads, const int64_t *numel,
                       int n, double p, double *scratch, void *out);
/* grads[i] *= min(1, max_norm / (norm + 1e-6)) in place, norm derived on the device from the
 * f64 *total that bcu_clip_grad_norm wrote; nothing is written when the coefficient is >= 1. */
int bcu_clip_scale(bcu_stream s, int dtype, void *const *grads, const int64_t *numel, int n,
                   const void *total, double max_norm, double p);

/* cuda_optim_glue.c */
extern const struct bn_backend_optim bcu_optim;

#ifdef __cplusplus
}
#endif

#endif
