"""bench/gpu/torch_gemm.py — torch.matmul's side of bench/gemm_gpu.c: square GEMMs, median
TFLOP/s over timed repetitions (each synchronised), one JSON line per size and dtype; "tf32" is
f32 with torch.backends.cuda.matmul.allow_tf32 = True.

    python3 bench/gpu/torch_gemm.py --sizes 4096,8192 --dtypes f32,tf32,bf16,f16
"""
import argparse
import json
import time

import torch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="4096,8192")
    ap.add_argument("--dtypes", default="f32,tf32,bf16,f16")
    ap.add_argument("--reps", type=int, default=20)
    a = ap.parse_args()
    types = {"f32": torch.float32, "tf32": torch.float32, "bf16": torch.bfloat16,
             "f16": torch.float16}
    for n in map(int, a.sizes.split(",")):
        for name in a.dtypes.split(","):
            torch.backends.cuda.matmul.allow_tf32 = name == "tf32"
            x = torch.randn(n, n, device="cuda", dtype=types[name])
            y = torch.randn(n, n, device="cuda", dtype=types[name])
            for _ in range(3):
                x @ y
            torch.cuda.synchronize()
            ms = []
            for _ in range(a.reps):
                t0 = time.perf_counter()
                x @ y
                torch.cuda.synchronize()
                ms.append((time.perf_counter() - t0) * 1e3)
            ms.sort()
            med = ms[len(ms) // 2]
            print(json.dumps({"bench": "gemm_gpu", "impl": "torch " + torch.__version__,
                              "gpu": torch.cuda.get_device_name(0), "n": n, "dtype": name,
                              "median_ms": round(med, 4),
                              "tflops": round(2 * n ** 3 / (med * 1e9), 1)}), flush=True)


if __name__ == "__main__":
    main()
