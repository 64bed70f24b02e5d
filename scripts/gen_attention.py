"""Fixtures for tests/unit/test_attention.c and tests/unit/test_positional.c: scaled dot-product
attention (MHA, GQA, MQA, causal with Tq < Tk and Tq > Tk, bool and float masks broadcast over
batch and heads, fully masked rows, no and two leading dims), RoPE (half-split against Hugging
Face's rotate_half, interleaved against Meta's complex form, partial rotary dims, offsets,
explicit positions, the linear / NTK / LLaMA 3 scalings), ALiBi slopes and biases, the
sinusoidal table, the gated activations and the fused classifier + cross-entropy: outputs and
the gradients of sum(out * gout) for every input, in float64.
Run: /usr/bin/python3 scripts/gen_attention.py  (writes tests/data/attention.txt)

torch 1.13 has no scaled_dot_product_attention: the math is written out here, and a query row
that may attend no key gives zeros (born's rule; torch's softmax would give NaN)."""
import math

import torch
import torch.nn.functional as F

from fixtures import Fixture

torch.manual_seed(0)
fx = Fixture("attention.txt", "gen_attention.py")
f64 = torch.float64


def randn(*shape):
    return torch.randn(*shape, dtype=f64)


def write_case(name, fn, inputs, consts=None):
    """inputs: leaves that get gradients; consts: tensors written as they are (masks, indices)."""
    fx.case(name)
    leaves = {k: v.clone().requires_grad_(True) for k, v in inputs.items()}
    consts = consts or {}
    out = fn(**leaves, **consts)
    gout = torch.randn_like(out)
    (out * gout).sum().backward()
    for k, v in list(inputs.items()) + list(consts.items()):
        fx.tensor(k, v)
    fx.tensor("gout", gout)
    fx.tensor("out", out)
    for k, v in leaves.items():
        fx.tensor("g" + k, v.grad)


# ---- attention ---------------------------------------------------------------------------------
def attention(q, k, v, mask=None, causal=False, scale=None):
    hq, hkv = q.shape[-3], k.shape[-3]
    k = k.repeat_interleave(hq // hkv, dim=-3)
    v = v.repeat_interleave(hq // hkv, dim=-3)
    tq, tk = q.shape[-2], k.shape[-2]
    scale = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    s = q @ k.transpose(-2, -1) * scale
    if mask is not None:
        s = s.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else s + mask
    if causal:
        i = torch.arange(tq).unsqueeze(1)
        j = torch.arange(tk).unsqueeze(0)
        s = s.masked_fill(j > i + (tk - tq), float("-inf"))
    valid = s.amax(-1, keepdim=True) > float("-inf")
    w = torch.softmax(s.masked_fill(~valid, 0.0), -1) * valid
    return w @ v


def attn_case(name, qs, ks, vs, mask=None, causal=False, scale=None):
    consts = {} if mask is None else {"mask": mask}
    write_case(name, lambda q, k, v, mask=None: attention(q, k, v, mask, causal, scale),
               dict(q=randn(*qs), k=randn(*ks), v=randn(*vs)), consts)
    if scale is not None:
        fx.scalar("scale", scale)


attn_case("attn_mha", (2, 3, 5, 4), (2, 3, 5, 4), (2, 3, 5, 4))
attn_case("attn_mha_causal", (2, 3, 6, 8), (2, 3, 6, 8), (2, 3, 6, 8), causal=True)
attn_case("attn_gqa_causal", (2, 4, 6, 8), (2, 2, 6, 8), (2, 2, 6, 5), causal=True)
attn_case("attn_mqa_kv_cache", (1, 4, 3, 8), (1, 1, 7, 8), (1, 1, 7, 6), causal=True)
attn_case("attn_causal_tq_gt_tk", (1, 2, 6, 4), (1, 2, 3, 4), (1, 2, 3, 4), causal=True)
bmask = torch.rand(2, 1, 4, 6) > 0.4
bmask[0, 0, 1, :] = False  # a fully masked row
attn_case("attn_bool_mask", (2, 3, 4, 8), (2, 3, 6, 8), (2, 3, 6, 8), mask=bmask)
fmask = -3 * torch.rand(4, 6, dtype=f64)
fmask[2, :] = float("-inf")  # a fully masked row
fmask[0, 1] = float("-inf")
attn_case("attn_float_mask_scale", (2, 2, 4, 8), (2, 1, 6, 8), (2, 1, 6, 8), mask=fmask,
          causal=True, scale=0.3)
attn_case("attn_no_batch", (3, 5, 4), (3, 5, 4), (3, 5, 4))
attn_case("attn_two_lead_dims", (2, 2, 2, 5, 4), (2, 2, 1, 5, 4), (2, 2, 1, 5, 4),
          mask=torch.rand(2, 1, 1, 5, 5) > 0.3)


# ---- RoPE --------------------------------------------------------------------------------------
def inv_freq(rd, base=10000.0):
    return 1.0 / (base ** (torch.arange(0, rd, 2, dtype=f64) / rd))


def rotate_half(x):  # Hugging Face / GPT-NeoX
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def rope_half(x, pos, freqs):
    rd = 2 * freqs.shape[0]
    ang = pos.to(f64).unsqueeze(-1) * freqs  # (..., T, rd/2)
    emb = torch.cat((ang, ang), dim=-1)
    if pos.dim() == 2:
        emb = emb.view(pos.shape[0], *([1] * (x.dim() - 3)), pos.shape[1], rd)
    xr, xp = x[..., :rd], x[..., rd:]
    out = xr * emb.cos() + rotate_half(xr) * emb.sin()
    return torch.cat((out, xp), dim=-1)


def rope_complex(x, pos, freqs):  # Meta's LLaMA: pairs (2i, 2i+1) as complex numbers
    rd = 2 * freqs.shape[0]
    ang = pos.to(f64).unsqueeze(-1) * freqs
    cis = torch.polar(torch.ones_like(ang), ang)
    if pos.dim() == 2:
        cis = cis.view(pos.shape[0], *([1] * (x.dim() - 3)), pos.shape[1], rd // 2)
    xr, xp = x[..., :rd], x[..., rd:]
    xc = torch.view_as_complex(xr.reshape(*xr.shape[:-1], rd // 2, 2).contiguous())
    out = torch.view_as_real(xc * cis).flatten(-2)
    return torch.cat((out, xp), dim=-1)


def rope_case(name, shape, layout, rd=None, offset=0, positions=None, freqs=None, base=10000.0):
    D, T = shape[-1], shape[-2]
    rd = rd or D
    freqs = inv_freq(rd, base) if freqs is None else freqs
    pos = positions if positions is not None else torch.arange(T) + offset
    fn = rope_half if layout == "half" else rope_complex
    consts = {} if positions is None else {"positions": positions}
    write_case(name, lambda x, positions=None: fn(x, pos, freqs), dict(x=randn(*shape)), consts)


rope_case("rope_half", (2, 3, 6, 8), "half")
rope_case("rope_interleaved", (2, 3, 6, 8), "interleaved")
rope_case("rope_half_partial_offset", (2, 2, 5, 8), "half", rd=4, offset=7)
rope_case("rope_interleaved_partial_base", (1, 2, 5, 12), "interleaved", rd=8, base=500.0)
rope_case("rope_positions_1d", (2, 4, 8), "half", positions=torch.tensor([3, 0, 9, 2]))
rope_case("rope_positions_2d", (2, 2, 3, 8), "interleaved",
          positions=torch.tensor([[5, 6, 7], [0, 2, 4]]))
rope_case("rope_linear_scaling", (1, 2, 4, 8), "half", offset=100, freqs=inv_freq(8) / 4.0)
rope_case("rope_ntk_scaling", (1, 2, 4, 8), "half", offset=3000,
          freqs=inv_freq(8, 10000.0 * 4.0 ** (8 / 6)))


# LLaMA 3.1's rule, as Hugging Face's _compute_llama3_parameters writes it
def llama3_freqs(dim, base, factor, low, high, orig):
    f = inv_freq(dim, base)
    low_wl, high_wl = orig / low, orig / high
    wl = 2 * math.pi / f
    out = torch.where(wl > low_wl, f / factor, f)
    smooth = (orig / wl - low) / (high - low)
    smoothed = (1 - smooth) * out / factor + smooth * out
    medium = ~(wl < high_wl) & ~(wl > low_wl)
    return torch.where(medium, smoothed, out)


fx.case("rope_llama3_frequencies")
fx.tensor("freqs", llama3_freqs(128, 500000.0, 8.0, 1.0, 4.0, 8192).to(torch.float32))
fx.case("rope_llama3_frequencies_custom")
fx.tensor("freqs", llama3_freqs(64, 10000.0, 4.0, 2.0, 8.0, 2048).to(torch.float32))


# ---- ALiBi, sinusoidal -------------------------------------------------------------------------
def alibi_slopes(n):  # the paper's / BLOOM's rule
    def pow2(n):
        start = 2 ** (-(2 ** -(math.log2(n) - 3)))
        return [start * start ** i for i in range(n)]
    if math.log2(n).is_integer():
        return pow2(n)
    c = 2 ** math.floor(math.log2(n))
    return pow2(c) + alibi_slopes(2 * c)[0::2][: n - c]


for n in (8, 12, 6, 1):
    fx.case("alibi_slopes_%d" % n)
    fx.tensor("slopes", torch.tensor(alibi_slopes(n), dtype=torch.float32))
fx.case("alibi_bias")
sl = torch.tensor(alibi_slopes(4), dtype=f64)
i = torch.arange(3).view(3, 1)
j = torch.arange(5).view(1, 5)
fx.tensor("bias", sl.view(4, 1, 1) * (j - i - (5 - 3)).to(f64))

fx.case("sinusoidal")
pos = torch.arange(7, dtype=f64).unsqueeze(1)
w = 10000.0 ** (-torch.arange(0, 6, 2, dtype=f64) / 6)
tab = torch.stack((torch.sin(pos * w), torch.cos(pos * w)), dim=-1).flatten(1)
fx.tensor("table", tab)

# ---- gated activations --------------------------------------------------------------------------
glus = {
    "swiglu": lambda a: F.silu(a), "geglu": lambda a: F.gelu(a),
    "geglu_tanh": lambda a: F.gelu(a, approximate="tanh"), "reglu": lambda a: F.relu(a),
    "sigmoid": lambda a: torch.sigmoid(a),
}
for kind, act in glus.items():
    write_case("glu_" + kind, lambda x, act=act: act(x[..., :5]) * x[..., 5:],
               dict(x=randn(2, 3, 10)))

# ---- fused classifier + cross-entropy ------------------------------------------------------------
tgt = torch.tensor([0, 6, 3, 3, 1, 6, 2, 5, 4])
for name, kw in {
    "lce_mean": dict(),
    "lce_sum_smoothing": dict(reduction="sum", label_smoothing=0.1),
    "lce_none_ignore": dict(reduction="none", ignore_index=3),
    "lce_mean_ignore_smoothing": dict(ignore_index=6, label_smoothing=0.2),
}.items():
    write_case(name, lambda x, w, b, target, kw=kw: F.cross_entropy(F.linear(x, w, b), target, **kw),
               dict(x=randn(9, 5), w=randn(7, 5), b=randn(7)), dict(target=tgt))
write_case("lce_no_bias", lambda x, w, target: F.cross_entropy(x @ w.t(), target),
           dict(x=randn(9, 5), w=randn(7, 5)), dict(target=tgt))

fx.write()
