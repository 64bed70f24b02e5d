#!/usr/bin/env python3
"""bench/vs_torch_infer.py — the PyTorch side of bench/vs_torch_infer.sh: the Fashion-MNIST CNN of
bench/vs_torch_train.py in eval mode under torch.no_grad(), timed on a random (B, 1, 28, 28)
batch: one warm-up, then the median of --reps forwards. Prints one JSON line with the same keys
as `bench_conv --infer B`:
  {"bench":"cnn_infer","impl":"pytorch","batch":B,"threads":T,"ms":median,"images_per_second":...}
  usage: vs_torch_infer.py --batch B --threads T [--reps R]"""
import argparse
import json
import statistics
import time

import torch
from torch import nn


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=21)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    m = nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3),
                      nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(1600, 128), nn.ReLU(),
                      nn.Linear(128, 10)).eval()
    x = torch.randn(a.batch, 1, 28, 28)
    times = []
    with torch.no_grad():
        m(x)  # warm-up
        for _ in range(a.reps):
            t0 = time.perf_counter()
            m(x)
            times.append((time.perf_counter() - t0) * 1e3)
    ms = statistics.median(times)
    print(json.dumps({"bench": "cnn_infer", "impl": "pytorch", "batch": a.batch,
                      "threads": a.threads, "ms": round(ms, 3),
                      "images_per_second": round(a.batch * 1e3 / ms)}))


if __name__ == "__main__":
    main()
