"""Fixtures for tests/unit/test_gpt.c and tests/unit/test_text.c: a tiny decoder-only transformer
written out in PyTorch (nanoGPT's layout and state-dict names) in four variants, its logits, loss
and every parameter's gradient; sampling distributions (temperature, top-k, top-p); and the
character-level vocabulary of a sample text.
Run: /usr/bin/python3 scripts/gen_gpt.py  (writes tests/data/gpt.txt)

Weights follow a formula both sides compute exactly (so the fixture holds no weights):
parameter k (in named_parameters order) of numel n and first dim d0 gets, at flat index i,
    ((i * 7919 + 13 * k) % 2001 - 1000) / 1000 * (1 / sqrt(n // d0))
in float64, rounded once to float32. The reference runs in float64 on those values.
State dicts are stored as cases "sd:<variant>:<index>:<name>" holding the entry's shape."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from fixtures import Fixture

torch.manual_seed(7)
fx = Fixture("gpt.txt", "gen_gpt.py")


# ---- the model (nanoGPT's structure, with GQA, RoPE, ALiBi, RMSNorm and gated FFNs) ----------
class Norm(nn.Module):
    def __init__(self, kind, dim, bias, eps):
        super().__init__()
        self.kind, self.eps = kind, eps
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim)) if (bias and kind == "layernorm") else None

    def forward(self, x):
        if self.kind == "rmsnorm":
            return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight
        return F.layer_norm(x, (x.shape[-1],), self.weight, self.bias, self.eps)


def rope(x, base, offset=0):
    """Half-split pairs (i, i + d/2), angles in float64: x (B, H, T, d)."""
    d = x.shape[-1]
    t = x.shape[-2]
    inv = base ** (-torch.arange(0, d // 2, dtype=torch.float64) * 2 / d)
    ang = torch.arange(offset, offset + t, dtype=torch.float64)[:, None] * inv[None, :]
    cos, sin = ang.cos().to(x.dtype), ang.sin().to(x.dtype)
    a, b = x[..., : d // 2], x[..., d // 2:]
    return torch.cat([a * cos - b * sin, a * sin + b * cos], dim=-1)


def alibi_slopes(n):
    # power-of-two head counts only (the variants use 4 heads)
    assert n & (n - 1) == 0
    return torch.tensor([2.0 ** (-8.0 * i / n) for i in range(1, n + 1)], dtype=torch.float64)


def sinusoidal(t, d):
    w = 10000.0 ** (-torch.arange(0, d // 2, dtype=torch.float64) * 2 / d)
    ang = torch.arange(t, dtype=torch.float64)[:, None] * w[None, :]
    out = torch.zeros(t, d, dtype=torch.float64)
    out[:, 0::2] = ang.sin()
    out[:, 1::2] = ang.cos()
    return out


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        hd = c["dim"] // c["heads"]
        self.c_attn = nn.Linear(c["dim"], (c["heads"] + 2 * c["kv_heads"]) * hd, bias=c["bias"])
        self.c_proj = nn.Linear(c["dim"], c["dim"], bias=c["bias"])

    def forward(self, x):
        c = self.c
        B, T, C = x.shape
        hq, hkv, hd = c["heads"], c["kv_heads"], C // c["heads"]
        q, k, v = self.c_attn(x).split([hq * hd, hkv * hd, hkv * hd], dim=2)
        q = q.view(B, T, hq, hd).transpose(1, 2)
        k = k.view(B, T, hkv, hd).transpose(1, 2)
        v = v.view(B, T, hkv, hd).transpose(1, 2)
        if c["pos"] == "rope":
            q, k = rope(q, 10000.0), rope(k, 10000.0)
        k = k.repeat_interleave(hq // hkv, dim=1)
        v = v.repeat_interleave(hq // hkv, dim=1)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hd))
        if c["pos"] == "alibi":
            i = torch.arange(T)[:, None]
            j = torch.arange(T)[None, :]
            att = att + alibi_slopes(hq).to(x.dtype)[:, None, None] * (j - i).to(x.dtype)
        causal = torch.tril(torch.ones(T, T, dtype=torch.bool))
        att = att.masked_fill(~causal, float("-inf")).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
        return self.c_proj(y)


class MLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.kind = c["ffn"]
        f = c["ffn_hidden"]
        gated = self.kind in ("swiglu", "geglu", "reglu")
        self.c_fc = nn.Linear(c["dim"], 2 * f if gated else f, bias=c["bias"])
        self.c_proj = nn.Linear(f, c["dim"], bias=c["bias"])

    def forward(self, x):
        h = self.c_fc(x)
        if self.kind == "gelu":
            h = F.gelu(h)
        else:
            a, b = h.chunk(2, dim=-1)
            act = {"swiglu": F.silu, "geglu": F.gelu, "reglu": F.relu}[self.kind]
            h = act(a) * b
        return self.c_proj(h)


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.ln_1 = Norm(c["norm"], c["dim"], c["bias"], 1e-5)
        self.attn = Attention(c)
        self.ln_2 = Norm(c["norm"], c["dim"], c["bias"], 1e-5)
        self.mlp = MLP(c)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        d = dict(wte=nn.Embedding(c["vocab"], c["dim"]))
        if c["pos"] == "learned":
            d["wpe"] = nn.Embedding(c["context"], c["dim"])
        d["h"] = nn.ModuleList([Block(c) for _ in range(c["layers"])])
        d["ln_f"] = Norm(c["norm"], c["dim"], c["bias"], 1e-5)
        self.transformer = nn.ModuleDict(d)
        if not c["tied"]:
            self.lm_head = nn.Linear(c["dim"], c["vocab"], bias=False)

    def forward(self, idx):
        c = self.c
        T = idx.shape[1]
        x = self.transformer.wte(idx)
        if c["pos"] == "learned":
            x = x + self.transformer.wpe(torch.arange(T))
        elif c["pos"] == "sinusoidal":
            x = x + sinusoidal(T, c["dim"]).to(x.dtype)
        for b in self.transformer.h:
            x = b(x)
        x = self.transformer.ln_f(x)
        w = self.transformer.wte.weight if c["tied"] else self.lm_head.weight
        return x @ w.t()


def formula_weights(model):
    with torch.no_grad():
        for k, (name, p) in enumerate(model.named_parameters()):
            n = p.numel()
            d0 = p.shape[0] if p.dim() > 0 else 1
            bound = 1.0 / math.sqrt(max(1, n // d0))
            i = torch.arange(n, dtype=torch.int64)
            v = ((i * 7919 + 13 * k) % 2001 - 1000).to(torch.float64) / 1000.0 * bound
            p.copy_(v.to(torch.float32).to(torch.float64).reshape(p.shape))


BASE = dict(vocab=13, context=16, layers=2, heads=4, dim=32)
VARIANTS = {
    # GPT-2 / nanoGPT: learned positions, LayerNorm with biases, GELU MLP, tied embeddings
    "learned": dict(BASE, kv_heads=4, ffn_hidden=128, norm="layernorm", ffn="gelu",
                    pos="learned", bias=True, tied=True),
    # LLaMA-style: RoPE, RMSNorm, SwiGLU, grouped-query attention, no biases, separate head
    "rope": dict(BASE, kv_heads=2, ffn_hidden=64, norm="rmsnorm", ffn="swiglu", pos="rope",
                 bias=False, tied=False),
    # ALiBi with multi-query attention, GeGLU, LayerNorm without bias
    "alibi": dict(BASE, kv_heads=1, ffn_hidden=48, norm="layernorm", ffn="geglu", pos="alibi",
                  bias=False, tied=True),
    # fixed sinusoidal positions with ReGLU
    "sinusoidal": dict(BASE, kv_heads=4, ffn_hidden=40, norm="layernorm", ffn="reglu",
                       pos="sinusoidal", bias=True, tied=True),
}
# full gradients for the first two; the other two keep their logits, loss and two gradients
FULL_GRADS = ("learned", "rope")

B, T = 2, 16
for tag, c in VARIANTS.items():
    model = GPT(c).double()
    formula_weights(model)
    for idx, (name, p) in enumerate(model.named_parameters()):
        fx.case("sd:%s:%d:%s" % (tag, idx, name))
        fx.tensor("shape", torch.tensor(list(p.shape), dtype=torch.int64))
    tokens = torch.randint(0, c["vocab"], (B, T))
    targets = torch.randint(0, c["vocab"], (B, T))
    targets[1, 3] = -1  # ignored, like nanoGPT's ignore_index=-1
    logits = model(tokens)
    loss = F.cross_entropy(logits.view(-1, c["vocab"]), targets.view(-1), ignore_index=-1)
    loss.backward()
    fx.case(tag)
    fx.tensor("tokens", tokens)
    fx.tensor("targets", targets)
    fx.tensor("logits", logits)
    fx.tensor("loss", loss)
    for idx, (name, p) in enumerate(model.named_parameters()):
        if tag in FULL_GRADS or name in ("transformer.wte.weight",
                                         "transformer.h.0.attn.c_attn.weight"):
            fx.tensor("grad." + name, p.grad.to(torch.float32))

# parameter counts of two presets (built in float32, as born builds them)
for tag, c in {"baby": dict(vocab=65, context=256, layers=6, heads=6, dim=384, kv_heads=6,
                            ffn_hidden=4 * 384, norm="layernorm", ffn="gelu", pos="learned",
                            bias=True, tied=True),
               "tiny_llama": dict(vocab=100, context=64, layers=3, heads=8, dim=128, kv_heads=2,
                                  ffn_hidden=256, norm="rmsnorm", ffn="swiglu", pos="rope",
                                  bias=False, tied=False)}.items():
    fx.case("count:" + tag)
    fx.scalar("n", sum(p.numel() for p in GPT(c).parameters()))

# ---- sampling distributions -----------------------------------------------------------------
def sampling_probs(logits, temperature, top_k, top_p):
    """born's documented rule: divide by temperature; keep values >= the k-th largest; softmax;
    keep, in descending order, each token while the mass before it is < top_p; renormalise."""
    l = logits / temperature
    if 0 < top_k < l.shape[-1]:
        kth = torch.topk(l, top_k, dim=-1).values[..., -1:]
        l = l.masked_fill(l < kth, float("-inf"))
    p = l.softmax(dim=-1)
    if 0 < top_p < 1:
        sp, si = torch.sort(p, dim=-1, descending=True, stable=True)
        before = sp.cumsum(-1) - sp
        sp = sp.masked_fill(before >= top_p, 0.0)
        p = torch.zeros_like(p).scatter(-1, si, sp)
        p = p / p.sum(-1, keepdim=True)
    return p


logits = torch.randn(3, 11, dtype=torch.float64) * 2
logits[2, 4] = logits[2, 7]  # a tie at the top-k boundary is kept on both sides
for i, (temp, k, p) in enumerate([(1.0, 0, 0.0), (0.7, 3, 0.0), (1.3, 0, 0.8), (0.9, 5, 0.6),
                                  (2.0, 1, 0.0), (1.0, 0, 0.05)]):
    fx.case("sampling:%d" % i)
    fx.tensor("logits", logits)
    fx.scalar("temperature", temp)
    fx.scalar("top_k", k)
    fx.scalar("top_p", p)
    fx.tensor("probs", sampling_probs(logits, temp, k, p))

# ---- a character-level vocabulary (test_text.c holds the same text) ---------------------------
TEXT = "First Citizen:\nBefore we proceed, héllo wörld \u2603 \U0001F600 zebra!\n"
chars = sorted(set(TEXT))
fx.case("chars")
fx.tensor("vocab", torch.tensor([ord(ch) for ch in chars], dtype=torch.int64))
fx.tensor("ids", torch.tensor([chars.index(ch) for ch in TEXT], dtype=torch.int64))
n = len(TEXT)
fx.scalar("train_len", int(n * 0.9))  # nanoGPT's split of the encoded text

fx.write()
