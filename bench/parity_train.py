#!/usr/bin/env python3
"""bench/parity_train.py — the PyTorch half of the loss-parity check (bench/parity_train.sh):
builds the MLP or CNN of `born train` with torch's default init, writes its initial weights
(one raw little-endian f32 file per state_dict entry, named after the entry), the batch order
(i64) and then trains `steps` steps of Adam(1e-3) with cross-entropy, writing each step's loss
(f64). bench_parity_train replays the same weights and batches in born and compares the losses.
  usage: parity_train.py MODEL OUTDIR STEPS BATCH DATA_DIR"""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vs_torch_train import load, model  # noqa: E402  (same data preparation and models)


def main():
    name, out, steps, batch, data = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    torch.manual_seed(0)
    torch.set_num_threads(2)
    os.makedirs(out, exist_ok=True)
    x, y = load(data, "train", 0)
    m = model(name)
    for k, v in m.state_dict().items():
        v.detach().numpy().astype("<f4").tofile(os.path.join(out, k + ".f32"))
    order = torch.randperm(len(y))[: steps * batch]
    order.numpy().astype("<i8").tofile(os.path.join(out, "order.i64"))
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    losses = []
    for s in range(steps):
        idx = order[s * batch:(s + 1) * batch]
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(m(x[idx]), y[idx])
        loss.backward()
        opt.step()
        losses.append(loss.item())
    np.array(losses, dtype="<f8").tofile(os.path.join(out, "losses.f64"))


if __name__ == "__main__":
    main()
