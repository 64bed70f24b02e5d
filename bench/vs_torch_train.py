#!/usr/bin/env python3
"""bench/vs_torch_train.py — the PyTorch side of bench/vs_torch_train.sh: the same MLP / CNN,
optimizer, batch size and data preparation as `born train` (images / 255, then
Normalize((0.2860,), (0.3530,)); the IDX files read directly, no torchvision), trained with
Debian's torch on the CPU. Prints one JSON object per epoch and a final one, with the same keys
as `born train --json`.
  usage: vs_torch_train.py --model mlp|cnn --data DIR --epochs N --batch B --lr LR
                           --optim adam|adamw|sgd|rmsprop --threads T --seed S [--limit N]"""
import argparse
import gzip
import json
import os
import struct
import time

import numpy as np
import torch
from torch import nn


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = struct.unpack(">%dI" % ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def find(d, stem):
    for name in (stem + ".gz", stem):
        if os.path.exists(os.path.join(d, name)):
            return os.path.join(d, name)
    raise SystemExit("vs_torch_train.py: no %s in %s" % (stem, d))


def load(d, split, limit):
    x = read_idx(find(d, split + "-images-idx3-ubyte")).astype(np.float32) / np.float32(255)
    y = read_idx(find(d, split + "-labels-idx1-ubyte")).astype(np.int64)
    x = (x - np.float32(0.2860)) / np.float32(0.3530)
    if limit:
        x, y = x[:limit], y[:limit]
    return torch.from_numpy(x.copy()).unsqueeze(1), torch.from_numpy(y.copy())


def model(name):
    if name == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
    return nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3),
                         nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(1600, 128), nn.ReLU(),
                         nn.Linear(128, 10))


def optimizer(name, params, lr):
    if name == "adam":
        return torch.optim.Adam(params, lr=lr or 1e-3)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr or 1e-3)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr or 1e-3)
    return torch.optim.RMSprop(params, lr=lr or 1e-2)


def evaluate(m, x, y):
    m.eval()
    loss, correct = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(y), 1000):
            out = m(x[i:i + 1000])
            loss += nn.functional.cross_entropy(out, y[i:i + 1000], reduction="sum").item()
            correct += (out.argmax(1) == y[i:i + 1000]).sum().item()
    m.train()
    return loss / len(y), correct / len(y)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="mlp")
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=0.0)
    ap.add_argument("--optim", default="adam")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    xtr, ytr = load(a.data, "train", a.limit)
    xte, yte = load(a.data, "t10k", a.limit)
    m = model(a.model)
    opt = optimizer(a.optim, m.parameters(), a.lr)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(xtr, ytr),
                                         batch_size=a.batch, shuffle=True)
    seconds = []
    for epoch in range(1, a.epochs + 1):
        t0, loss_sum, correct = time.perf_counter(), 0.0, 0
        for x, y in loader:
            opt.zero_grad()
            out = m(x)
            loss = nn.functional.cross_entropy(out, y)
            loss.backward()
            opt.step()
            loss_sum += loss.item() * len(y)
            correct += (out.argmax(1) == y).sum().item()
        dt = time.perf_counter() - t0
        seconds.append(dt)
        tl, ta = evaluate(m, xte, yte)
        print(json.dumps({"epoch": epoch, "epochs": a.epochs, "train_loss": loss_sum / len(ytr),
                          "train_accuracy": correct / len(ytr), "test_loss": tl,
                          "test_accuracy": ta, "epoch_seconds": dt,
                          "samples_per_second": len(ytr) / dt}), flush=True)
    print(json.dumps({"final": True, "model": a.model, "framework": "pytorch " + torch.__version__,
                      "test_accuracy": ta, "epoch_seconds": sum(seconds) / len(seconds),
                      "samples_per_second": len(ytr) * len(seconds) / sum(seconds),
                      "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
