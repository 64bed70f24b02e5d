"""Fixtures for tests/unit/test_amp.c: torch.cpu.amp.autocast(dtype=torch.bfloat16) over a
small MLP written with matmul + bias add (the matmuls run in bf16, the bias adds promote back to
f32, the loss is f32) and over conv1d / conv2d (conv_transpose2d with the casts written out, as torch 1.13 has it
only in its CUDA list), forward and the gradients of
every f32 leaf. torch 1.13 autocasts only bf16 on the CPU, so f16 is checked in C against the
graph with the casts written out.
Run: /usr/bin/python3 scripts/gen_amp.py  (writes tests/data/amp.txt)"""
import torch
import torch.nn.functional as F

from fixtures import Fixture

torch.manual_seed(0)
fx = Fixture("amp.txt", "gen_amp.py")


def leaves(**kw):
    return {k: v.clone().requires_grad_(True) for k, v in kw.items()}


def write(name, inputs, fn, out_dtype, autocast=True):
    fx.case(name)
    ls = leaves(**inputs)
    with torch.cpu.amp.autocast(dtype=torch.bfloat16, enabled=autocast):
        out = fn(**ls)
    assert out.dtype == out_dtype, (name, out.dtype)
    gout = torch.randn(out.shape)
    (out.float() * gout).sum().backward()
    for k, v in inputs.items():
        fx.tensor(k, v)
    fx.tensor("gout", gout)
    fx.tensor("out", out)
    for k, v in ls.items():
        assert v.grad.dtype == torch.float32
        fx.tensor("g" + k, v.grad)


# ---- MLP: matmul in bf16, bias adds promote to f32, an f32 loss --------------------------------
def mlp(x, w1, b1, w2, b2, t):
    h = torch.relu(torch.matmul(x, w1.t()) + b1)
    y = torch.matmul(h, w2.t()) + b2
    return ((y - t) ** 2).mean()


fx.case("mlp")
inputs = dict(x=torch.randn(16, 12), w1=torch.randn(20, 12) * 0.3, b1=torch.randn(20) * 0.1,
              w2=torch.randn(5, 20) * 0.3, b2=torch.randn(5) * 0.1, t=torch.randn(16, 5))
ls = leaves(**inputs)
with torch.cpu.amp.autocast(dtype=torch.bfloat16):
    assert torch.matmul(ls["x"], ls["w1"].t()).dtype == torch.bfloat16
    loss = mlp(**ls)
assert loss.dtype == torch.float32
loss.backward()
for k, v in inputs.items():
    fx.tensor(k, v)
fx.tensor("loss", loss)
for k, v in ls.items():
    assert v.grad.dtype == torch.float32
    fx.tensor("g" + k, v.grad)

# ---- convolutions: bf16 out, f32 gradients ------------------------------------------------------
write("conv2d", dict(x=torch.randn(2, 3, 7, 6), w=torch.randn(4, 3, 3, 3) * 0.3,
                     b=torch.randn(4) * 0.1),
      lambda x, w, b: F.conv2d(x, w, b, stride=1, padding=1), torch.bfloat16)
write("conv1d", dict(x=torch.randn(2, 4, 9), w=torch.randn(6, 2, 3) * 0.3, b=torch.randn(6) * 0.1),
      lambda x, w, b: F.conv1d(x, w, b, stride=2, groups=2), torch.bfloat16)
# torch 1.13's CPU autocast leaves conv_transpose2d in f32 (its CUDA list has it in the
# low-precision list) and has no bf16 kernel for it: the casts written out, computed the way born
# computes bf16 convolutions (bf16 inputs, f32 arithmetic, the result rounded once)
bf = torch.bfloat16


def conv_transpose2d_bf16(x, w, b):
    x, w, b = (t.to(bf).float() for t in (x, w, b))
    return F.conv_transpose2d(x, w, b, stride=2, padding=1).to(bf)


write("conv_transpose2d", dict(x=torch.randn(2, 4, 5, 5), w=torch.randn(4, 3, 3, 3) * 0.3,
                               b=torch.randn(3) * 0.1),
      conv_transpose2d_bf16, bf, autocast=False)

fx.write()
