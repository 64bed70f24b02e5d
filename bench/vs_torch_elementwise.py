#!/usr/bin/python3
"""bench/vs_torch_elementwise.py — PyTorch's time for the ops of bench/elementwise.c (issue 4):
torch.exp / tanh / sigmoid / nn.functional.gelu (erf form) / softmax over rows of 1024, f32,
on 1M and 16M elements, 1 and 2 threads (torch.set_num_threads). Run with Debian's torch:

    /usr/bin/python3 bench/vs_torch_elementwise.py [--quick] [--reps R]

Prints one JSON line per (op, n, threads) in the shape of bench_elementwise's, with "peer":
"torch"; ms is the median of R timed calls after one warm-up call, each allocating its output.
Set the same malloc behaviour as bench_elementwise (freed memory kept) with
MALLOC_MMAP_THRESHOLD_=1073741824 MALLOC_TRIM_THRESHOLD_=1073741824 in the environment.
"""
import json
import statistics
import sys
import time

import torch

ROW = 1024
OPS = {
    "exp": torch.exp,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "gelu": torch.nn.functional.gelu,
    "softmax": lambda x: torch.softmax(x, -1),
}


def time_op(fn, x, reps):
    fn(x)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn(x)
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def main():
    quick = "--quick" in sys.argv
    reps = int(sys.argv[sys.argv.index("--reps") + 1]) if "--reps" in sys.argv else 0
    torch.manual_seed(0)
    for n in [1 << 20] if quick else [1 << 20, 1 << 24]:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            for name, fn in OPS.items():
                x = torch.randn(n // ROW, ROW) if name == "softmax" else torch.randn(n)
                r = reps or (11 if n > 4000000 else 31)
                ms = time_op(fn, x, r)
                print(json.dumps({"bench": "elementwise", "peer": "torch", "op": name,
                                  "dtype": "f32", "n": n, "threads": threads, "reps": r,
                                  "ms": round(ms, 4), "gbps": round(8.0 * n / ms * 1e-6, 2),
                                  "torch": torch.__version__}), flush=True)


if __name__ == "__main__":
    main()
