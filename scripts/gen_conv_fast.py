"""Fixtures for tests/unit/test_conv_fast.c: convolutions on both sides of the CPU's choice
between per-image GEMMs and channels-first blocks (ops/conv.c, CPU_CF_MAX_L = 256 output
positions per image), through both col2im kernels (rows contiguous with stride 1 along W, and the
general one), with torch.nn.functional, forward and gradients.
Run: /usr/bin/python3 scripts/gen_conv_fast.py  (writes tests/data/conv_fast.txt)

The format is gen_conv.py's: inputs "x", "w", "b", the options as scalars (stride, padding,
dilation, groups, output_padding, same, kind: 1 conv1d, 2 conv2d, 3 conv_transpose2d), "out", a
random upstream gradient "gout" and the gradients of sum(out * gout): "gx", "gw", "gb"."""
import torch
import torch.nn.functional as F

from fixtures import Fixture

torch.manual_seed(4)

fx = Fixture("conv_fast.txt", "gen_conv_fast.py")


def randn(*shape, dtype=torch.float32):
    return torch.randn(*shape, dtype=torch.float64).to(dtype)


def case(name, fn, xs, ws, bias=True, dtype=torch.float32, **opts):
    fx.case(name)
    x = randn(*xs, dtype=dtype)
    w = randn(*ws, dtype=dtype)
    fx.tensor("x", x)
    fx.tensor("w", w)
    inputs, names, b = [x, w], ["gx", "gw"], None
    if bias:
        b = randn(ws[1] * opts.get("groups", 1) if fn == "conv_transpose2d" else ws[0],
                  dtype=dtype)
        fx.tensor("b", b)
        inputs.append(b)
        names.append("gb")
    for t in inputs:
        t.requires_grad_(True)
    for k in ("stride", "padding", "dilation", "groups", "output_padding"):
        fx.scalar(k, opts.get(k, 0))
    fx.scalar("same", 0)
    fx.scalar("kind", {"conv1d": 1, "conv2d": 2, "conv_transpose2d": 3}[fn])
    out = getattr(F, fn)(x, w, b, **opts)
    gout = randn(*out.shape, dtype=dtype)
    fx.tensor("gout", gout)
    fx.tensor("out", out.detach())
    for n, g in zip(names, torch.autograd.grad(out, inputs, gout)):
        fx.tensor(n, g)


# channels-first (OH*OW <= 256): stride 1 (col2im along rows), padding, dilation, groups
case("cf_stride1_padding1", "conv2d", (2, 5, 9, 10), (6, 5, 3, 3), padding=1)
case("cf_dilation2_groups2", "conv2d", (2, 4, 11, 9), (6, 2, 3, 3), dilation=2, padding=2,
     groups=2)
case("cf_stride2", "conv2d", (2, 3, 13, 12), (4, 3, 3, 3), stride=2, padding=1)
case("cf_depthwise_no_bias", "conv2d", (2, 4, 8, 8), (4, 1, 5, 5), bias=False, padding=2,
     groups=4)
case("cf_nonsquare_kernel", "conv2d", (2, 3, 10, 7), (5, 3, 2, 4), padding=1)
case("cf_exactly_256_positions", "conv2d", (1, 2, 18, 18), (3, 2, 3, 3))
case("cf_f64", "conv2d", (2, 3, 8, 8), (4, 3, 3, 3), dtype=torch.float64, padding=1)
case("cf_conv1d", "conv1d", (3, 4, 40), (5, 4, 5), padding=2)
case("cf_conv_transpose2d", "conv_transpose2d", (2, 4, 6, 5), (4, 3, 3, 3), padding=1)
case("cf_conv_transpose2d_stride2", "conv_transpose2d", (2, 3, 5, 6), (3, 2, 3, 3), stride=2,
     padding=1, output_padding=1)
# per image (OH*OW > 256)
case("per_image_257_positions", "conv2d", (1, 2, 259, 3), (2, 2, 3, 3))
case("per_image_padding1", "conv2d", (2, 2, 17, 16), (3, 2, 3, 3), padding=1)
case("per_image_stride2_dilation2_groups2", "conv2d", (1, 4, 37, 35), (2, 2, 3, 3), stride=2,
     dilation=2, padding=1, groups=2)
case("per_image_one_input_channel", "conv2d", (1, 1, 28, 28), (3, 1, 3, 3))
case("per_image_f64", "conv2d", (1, 2, 17, 16), (2, 2, 3, 3), dtype=torch.float64, padding=1)
case("per_image_conv1d", "conv1d", (2, 2, 300), (3, 2, 3), padding=1, dilation=2)
case("per_image_conv_transpose2d", "conv_transpose2d", (2, 3, 17, 16), (3, 2, 3, 3))


def pool_case(name, xs, nans):
    """2x2 max pooling (stride 2) of small integers (many ties) with some NaN and -inf: the
    window's value and, through the gradient, which element its index names."""
    fx.case(name)
    x = torch.randint(-2, 3, xs).to(torch.float32)
    flat = x.view(-1)
    picks = torch.randperm(flat.numel())[:2 * nans]
    flat[picks[:nans]] = float("nan")
    flat[picks[nans:]] = float("-inf")
    fx.tensor("x", x)
    x.requires_grad_(True)
    out = F.max_pool2d(x, 2)
    gout = randn(*out.shape)
    fx.tensor("gout", gout)
    fx.tensor("out", out.detach())
    (gx,) = torch.autograd.grad(out, [x], gout)
    fx.tensor("gx", gx)


# the CNN's pools (26 -> 13, 11 -> 5) and an odd width with a vector body and a tail
pool_case("pool_26x26", (2, 3, 26, 26), 6)
pool_case("pool_11x11", (2, 4, 11, 11), 4)
pool_case("pool_10x13", (2, 3, 10, 13), 3)
fx.write()
