"""bench/gpu/torch_train_epoch.py — PyTorch's side of bench/train_epoch.c: the same MLP / CNN
(born's "mlp" and "cnn", PyTorch default init), Adam lr 1e-3, cross-entropy, random data of the
Fashion-MNIST shape held on the device, batches as views, one synchronisation per epoch, the
first epoch a warm-up. Eager mode (the issue's reference figures are PyTorch eager's).

    python3 bench/gpu/torch_train_epoch.py --device cuda --model cnn --batch 64 --epochs 3
"""
import argparse
import json
import time

import torch
import torch.nn as nn


def build(name):
    if name == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
    return nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3),
                         nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(1600, 128), nn.ReLU(),
                         nn.Linear(128, 10))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--model", default="mlp")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--samples", type=int, default=60000)
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    a = ap.parse_args()
    torch.manual_seed(0)
    dev = torch.device(a.device)
    m = build(a.model).to(dev)
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    x = torch.randn(a.samples, 1, 28, 28, device=dev)
    y = torch.randint(0, 10, (a.samples,), device=dev)
    lossf = nn.CrossEntropyLoss()
    steps = a.samples // a.batch
    amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(a.precision)
    scaler = torch.cuda.amp.GradScaler(enabled=a.precision == "fp16")
    times = []
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    for e in range(a.epochs + 1):
        sync()
        t0 = time.perf_counter()
        for s in range(steps):
            opt.zero_grad(set_to_none=True)
            xb = x[s * a.batch:(s + 1) * a.batch]
            yb = y[s * a.batch:(s + 1) * a.batch]
            if amp_dtype is not None:
                with torch.autocast(device_type=dev.type, dtype=amp_dtype):
                    loss = lossf(m(xb), yb)
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
            else:
                loss = lossf(m(xb), yb)
                loss.backward()
                opt.step()
        sync()
        dt = time.perf_counter() - t0
        if e == 0:
            continue
        times.append(dt)
        print(json.dumps({"bench": "train_epoch", "impl": "torch " + torch.__version__,
                          "device": a.device, "model": a.model, "batch": a.batch,
                          "precision": a.precision, "epoch": e, "seconds": round(dt, 4),
                          "last_loss": round(loss.item(), 5)}), flush=True)
    times.sort()
    med = times[len(times) // 2]
    print(json.dumps({"bench": "train_epoch_median", "impl": "torch " + torch.__version__,
                      "device": a.device, "model": a.model, "batch": a.batch,
                      "precision": a.precision, "epochs": a.epochs, "steps": steps,
                      "median_seconds": round(med, 4), "ms_per_step": round(med * 1e3 / steps, 4)}))


if __name__ == "__main__":
    main()
