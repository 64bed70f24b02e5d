/* backend_cuda/cuda_transformer.h — the C interface of the CUDA fused element-wise transformer
 * kernels (cuda_transformer.cu): gated activations forward and backward, and rotary embeddings,
 * implementing the optional tail of src/backend/backend_attn.h on `stream` for f32, f64, f16 and
 * bf16 (any other dtype is BN_ERR_UNSUPPORTED = 8 with a message in bcu_last_message()). The glue
 * (cuda_transformer_glue.c) checks the glu kind; nothing here synchronises the host. */
#ifndef BORN_CUDA_TRANSFORMER_H
#define BORN_CUDA_TRANSFORMER_H

#include "backend_cuda/cuda_kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Mirrors bn_rope_geom field for field (the glue checks this at compile time). */
typedef struct bcu_rope_geom {
    int64_t rd;
    bool interleaved;
    bool inverse;
} bcu_rope_geom;

/* out (rows, F) contiguous = act(x[:, :F]) * x[:, F:], x (rows, 2F) with last stride 1; kind is a
 * bn_glu_kind (0 swiglu, 1 geglu, 2 geglu_tanh, 3 reglu, 4 sigmoid). */
int bcu_glu_forward(bcu_stream s, int kind, const bcu_view *x, const bcu_view *out);
/* dx (rows, 2F) contiguous: dx[:, :F] = dout * b * act'(a), dx[:, F:] = dout * act(a). */
int bcu_glu_backward(bcu_stream s, int kind, const bcu_view *x, const bcu_view *dout,
                     const bcu_view *dx);
/* x (nb, nh, T, D) last stride 1 → out contiguous; cos, sin (1 or nb, T, rd / 2) contiguous in
 * f64 for f64 x, else f32. */
int bcu_rope(bcu_stream s, const bcu_view *x, const bcu_view *cos, const bcu_view *sin,
             const bcu_view *out, const bcu_rope_geom *g);

#ifdef __cplusplus
}
#endif

/* The table entries for cuda_attention_glue.c's bcu_attn (plain C only). */
#ifndef __CUDACC__
#include "backend/backend_attn.h"
bn_status bcu_tf_glu_forward(int kind, const bn_tview *x, const bn_tview *out);
bn_status bcu_tf_glu_backward(int kind, const bn_tview *x, const bn_tview *dout,
                              const bn_tview *dx);
bn_status bcu_tf_rope(const bn_tview *x, const bn_tview *cos, const bn_tview *sin,
                      const bn_tview *out, const bn_rope_geom *g);
#endif

#endif
