"""bench/gpu/torch_gpt2.py — PyTorch's side of bench/gpt_step.c: one GPT training step (forward,
loss, backward, gradient clipping, AdamW, warmup + cosine learning rate) of a nanoGPT-shaped GPT,
timed the same way.

The model is written here in nanoGPT's shape and names (transformer.wte / wpe / h.<i>.ln_1 /
attn.c_attn / attn.c_proj / ln_2 / mlp.c_fc / mlp.c_proj / ln_f, lm_head tied to wte): learned
positions, pre-norm LayerNorm blocks with biases (eps 1e-5), exact (erf) GELU like born's
default "gelu" FFN, causal attention through F.scaled_dot_product_attention(is_causal=True)
(an explicit masked softmax on torches older than 2.0, which lack it), no dropout. Init as
GPT-2 / born's bn_gpt_new: linear and embedding weights normal(0, 0.02), the residual
projections normal(0, 0.02 / sqrt(2 L)), biases 0. Loss: cross-entropy of the full logits.

Training: bf16 autocast with f32 master weights (--precision fp32: none), AdamW (lr 6e-4, betas
0.9 / 0.95, eps 1e-8, fused=True where this torch and device have it) in two groups, weight
decay 0.1 on the 2-D tensors and none on the rest (nanoGPT's configure_optimizers), the learning
rate set each step by born's bn_sched_warmup_cosine formula (linear warmup over the untimed
steps, cosine to lr / 10 at the last timed step), clip_grad_norm_ 1.0, zero_grad(set_to_none).
torch.compile(model) unless --no-compile; the compilation happens in the untimed warm-up steps.

Data, timing and the JSON line match bench/gpt_step.c: --batches pre-generated batches of random
ids uniform in [0, min(50257, vocab)) (fixed seed) on the device, cycled; --warmup untimed
steps, then --steps timed steps in blocks of --block (the device synchronised around each
block; a block's time over its steps is one sample); the median and the smallest sample, the
mean over all timed steps; tokens/s and MFU (nanoGPT's 6 N + 12 L H Q T flops per token, N
without the position table; peak 989.4 TFLOP/s for bf16, 494.7 TF32 for fp32, or
--peak-tflops) from the median. The first and last losses are read only after the clock stops.

    python3 bench/gpu/torch_gpt2.py --device cuda                      (GPT-2 124M, batch 8, bf16)
    /usr/bin/python3 bench/gpu/torch_gpt2.py --device cpu --no-compile --layers 2 --heads 2 \\
        --dim 64 --context 64 --vocab 512 --batch 2 --steps 3 --warmup 1
"""
import argparse
import contextlib
import inspect
import json
import math
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class SelfAttention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.c_attn = nn.Linear(dim, 3 * dim)
        self.c_proj = nn.Linear(dim, dim)

    def forward(self, x):  # x is (B, T, D)
        B, T, D = x.shape
        q, k, v = self.c_attn(x).split(D, dim=2)
        # each (B, H, T, Q)
        q, k, v = (t.view(B, T, self.heads, D // self.heads).transpose(1, 2) for t in (q, k, v))
        if hasattr(F, "scaled_dot_product_attention"):
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:  # torch < 2.0
            s = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
            mask = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
            y = s.masked_fill(~mask, float("-inf")).softmax(dim=-1) @ v
        return self.c_proj(y.transpose(1, 2).reshape(B, T, D))


class MLP(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.c_fc = nn.Linear(dim, 4 * dim)
        self.gelu = nn.GELU()  # exact (erf) form
        self.c_proj = nn.Linear(4 * dim, dim)

    def forward(self, x):
        return self.c_proj(self.gelu(self.c_fc(x)))


class Block(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.ln_1 = nn.LayerNorm(dim, eps=1e-5)
        self.attn = SelfAttention(dim, heads)
        self.ln_2 = nn.LayerNorm(dim, eps=1e-5)
        self.mlp = MLP(dim)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, vocab, context, layers, heads, dim):
        super().__init__()
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(vocab, dim),
            wpe=nn.Embedding(context, dim),
            h=nn.ModuleList(Block(dim, heads) for _ in range(layers)),
            ln_f=nn.LayerNorm(dim, eps=1e-5)))
        self.lm_head = nn.Linear(dim, vocab, bias=False)
        self.lm_head.weight = self.transformer.wte.weight  # tied
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * layers))
            elif name.endswith(".weight") and p.dim() == 2:
                nn.init.normal_(p, 0.0, 0.02)
            elif name.endswith(".bias"):
                nn.init.zeros_(p)

    def forward(self, idx, targets):  # idx and targets are (B, T); returns the mean loss
        T = idx.shape[1]
        pos = torch.arange(T, dtype=torch.long, device=idx.device)
        x = self.transformer.wte(idx) + self.transformer.wpe(pos)
        for block in self.transformer.h:
            x = block(x)
        logits = self.lm_head(self.transformer.ln_f(x))
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1),
                               ignore_index=-1)


def lr_at(step, a):
    """born's bn_sched_warmup_cosine: the rate of the step-th update (0-based)."""
    total = a.warmup + a.steps
    if step < a.warmup:
        return a.lr * step / a.warmup
    span = total - a.warmup if total > a.warmup else 1
    progress = min(1.0, (step - a.warmup) / span)
    return a.min_lr + (a.lr - a.min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))


def finite(x, digits):
    """x rounded, or None (JSON null) when it is inf or NaN."""
    return round(x, digits) if math.isfinite(x) else None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--precision", default="bf16", choices=["bf16", "fp32"])
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--dim", type=int, default=768)
    ap.add_argument("--context", type=int, default=1024)
    ap.add_argument("--vocab", type=int, default=50304)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--block", type=int, default=1)
    ap.add_argument("--batches", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--checkpointing", action="store_true",
                    help="torch.utils.checkpoint around each block")
    ap.add_argument("--tf32", action="store_true", help="allow TF32 in f32 matmuls")
    ap.add_argument("--peak-tflops", type=float, default=0)
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--compile-mode", default=None,
                    help="torch.compile mode (default: torch's default)")
    a = ap.parse_args()
    if a.dim % a.heads or min(a.layers, a.heads, a.dim, a.context, a.vocab, a.batch, a.steps,
                              a.block, a.batches) < 1 or a.warmup < 0 or a.steps % a.block:
        ap.error("need positive sizes, --dim a multiple of --heads and --steps a multiple of "
                 "--block")
    a.lr, a.min_lr = 6e-4, 6e-5
    peak = a.peak_tflops or (989.4 if a.precision == "bf16" else 494.7)
    if a.threads:
        torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = a.tf32
        torch.backends.cudnn.allow_tf32 = a.tf32

    torch.manual_seed(a.seed)
    model = GPT(a.vocab, a.context, a.layers, a.heads, a.dim).to(dev)
    if a.checkpointing:
        from torch.utils.checkpoint import checkpoint
        for block in model.transformer.h:
            block.forward = (lambda f: lambda x: checkpoint(f, x, use_reentrant=False))(
                block.forward)
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}]
    fused = dev.type == "cuda" and "fused" in inspect.signature(torch.optim.AdamW).parameters
    extra = {"fused": True} if fused else {}
    opt = torch.optim.AdamW(groups, lr=a.lr, betas=(0.9, 0.95), eps=1e-8, **extra)
    compiled = not a.no_compile
    if compiled:
        if not hasattr(torch, "compile"):
            sys.exit("torch_gpt2.py: torch %s has no torch.compile (use --no-compile)"
                     % torch.__version__)
        step_model = torch.compile(model, mode=a.compile_mode)
    else:
        step_model = model

    torch.manual_seed(a.seed + 1)
    hi = min(a.vocab, 50257)
    ids = torch.randint(0, hi, (a.batches, a.batch, a.context + 1), device=dev)
    # one tensor of its own per batch, like the C side (no views at varying storage offsets)
    xs = [ids[i, :, :-1].contiguous() for i in range(a.batches)]
    ys = [ids[i, :, 1:].contiguous() for i in range(a.batches)]
    del ids
    amp = (lambda: torch.autocast(device_type=dev.type, dtype=torch.bfloat16)) \
        if a.precision == "bf16" else contextlib.nullcontext
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)

    def train_step(i):
        for g in opt.param_groups:
            g["lr"] = lr_at(i, a)
        with amp():
            loss = step_model(xs[i % a.batches], ys[i % a.batches])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.detach()

    first = last = None
    step = 0
    for step in range(a.warmup):
        loss = train_step(step)
        if step == 0:
            first = loss
    step = a.warmup
    samples, timed = [], 0.0
    for _ in range(a.steps // a.block):
        sync()
        t0 = time.perf_counter()
        for _ in range(a.block):
            loss = train_step(step)
            if step == 0:
                first = loss
            step += 1
        sync()
        dt = time.perf_counter() - t0
        timed += dt
        samples.append(dt * 1e3 / a.block)
    last = loss
    loss_first, loss_last = first.item(), last.item()

    samples.sort()
    n = len(samples)
    median = samples[n // 2] if n % 2 else 0.5 * (samples[n // 2 - 1] + samples[n // 2])
    total_params = sum(p.numel() for p in model.parameters())
    n_mfu = total_params - model.transformer.wpe.weight.numel()
    per_token = 6 * n_mfu + 12 * a.layers * a.heads * (a.dim // a.heads) * a.context
    tokens = a.batch * a.context
    achieved = per_token * tokens / (median * 1e-3)
    gpu = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    print(json.dumps({
        "bench": "gpt_step", "impl": "torch", "torch": torch.__version__, "compile": compiled,
        "compile_mode": a.compile_mode if compiled else None, "fused": fused,
        "device": a.device, "gpu": gpu, "precision": a.precision, "tf32": a.tf32,
        "checkpointing": a.checkpointing, "params": total_params, "params_mfu": n_mfu,
        "layers": a.layers, "heads": a.heads, "dim": a.dim, "vocab": a.vocab, "batch": a.batch,
        "context": a.context, "steps": a.steps, "warmup": a.warmup, "block": a.block,
        "threads": torch.get_num_threads(),
        "ms_per_step_median": round(median, 3), "ms_per_step_min": round(samples[0], 3),
        "ms_per_step_mean": round(timed * 1e3 / a.steps, 3),
        "tokens_per_s": round(tokens / (median * 1e-3)), "flops_per_token": per_token,
        "tflops": round(achieved / 1e12, 2), "peak_tflops": peak,
        "mfu": round(achieved / (peak * 1e12), 4),
        "loss_first": finite(loss_first, 5), "loss_last": finite(loss_last, 5)},
        separators=(",", ":")), flush=True)


if __name__ == "__main__":
    main()
