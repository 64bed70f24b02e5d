"""bench/gpu/torch_attention.py — PyTorch's side of bench/attention_gpu.c: median forward and
forward+backward (of out.sum()) times of torch.nn.functional.scaled_dot_product_attention on the
GPU, causal, same shapes, one JSON line per shape and dtype. Each dtype runs on the backend that
serves it: bf16 / f16 on the flash backend (FlashAttention-2; flash takes no f32), f32 on the
memory-efficient backend (the fused kernel PyTorch has for f32; TF32 off), so "f32" is the
like-for-like comparison with born's f32 kernel and "bf16" the fastest thing PyTorch offers.
FLOP/s: 4 B H T^2 D forward, 2.5 times that backward, halved for causal.

    python3 bench/gpu/torch_attention.py --shapes 8x12x1024x64,1x12x4096x64 --dtypes f32,bf16
"""
import argparse
import json
import time

import torch
import torch.nn.functional as F


def backend_ctx(name):
    """A context that allows only the named SDPA backend ("flash" or "efficient")."""
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel  # PyTorch >= 2.3
        return sdpa_kernel({"flash": SDPBackend.FLASH_ATTENTION,
                            "efficient": SDPBackend.EFFICIENT_ATTENTION}[name])
    except ImportError:
        return torch.backends.cuda.sdp_kernel(enable_flash=name == "flash",
                                              enable_mem_efficient=name == "efficient",
                                              enable_math=False)


def median_ms(fn, reps):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    ms = []
    for _ in range(reps):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        ms.append((time.perf_counter() - t0) * 1e3)
    ms.sort()
    return ms[len(ms) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shapes", default="8x12x1024x64,1x12x4096x64")
    ap.add_argument("--dtypes", default="f32,bf16")
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--no-causal", action="store_true")
    a = ap.parse_args()
    causal = not a.no_causal
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    types = {"f32": torch.float32, "bf16": torch.bfloat16, "f16": torch.float16}
    for shape in a.shapes.split(","):
        B, H, T, D = map(int, shape.split("x"))
        for name in a.dtypes.split(","):
            dt = types[name]
            backend = "efficient" if dt == torch.float32 else "flash"
            torch.manual_seed(1)
            q, k, v = (torch.randn(B, H, T, D, device="cuda", dtype=dt) for _ in range(3))
            with backend_ctx(backend), torch.no_grad():
                fwd = median_ms(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=causal),
                                a.reps)
            qg, kg, vg = (t.clone().requires_grad_(True) for t in (q, k, v))

            def fwd_bwd():
                F.scaled_dot_product_attention(qg, kg, vg, is_causal=causal).sum().backward()

            with backend_ctx(backend):
                both = median_ms(fwd_bwd, a.reps)
            flops = 4.0 * B * H * T * T * D / (2 if causal else 1)
            print(json.dumps({"bench": "attention_gpu", "impl": "torch " + torch.__version__,
                              "backend": backend, "gpu": torch.cuda.get_device_name(0),
                              "shape": [B, H, T, D], "causal": causal, "dtype": name,
                              "fwd_ms": round(fwd, 4), "fwd_bwd_ms": round(both, 4),
                              "fwd_tflops": round(flops / fwd * 1e-9, 2),
                              "fwd_bwd_tflops": round(3.5 * flops / both * 1e-9, 2)}),
                  flush=True)


if __name__ == "__main__":
    main()
