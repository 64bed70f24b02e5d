"""Fixtures for tests/unit/test_conv.c and tests/unit/test_pool.c: convolutions and pools with
torch.nn.functional, forward and gradients.
Run: /usr/bin/python3 scripts/gen_conv.py  (writes tests/data/conv.txt and tests/data/conv_pool.txt)

Each case stores the inputs ("x", "w", "b", or "x_base" when the C test makes the same view the
script made), the options as scalars (stride, padding, dilation, groups, output_padding, same,
kernel, ceil_mode, exclude_padding, out_h, out_w), the result "out", a random upstream gradient
"gout" and the gradients of sum(out * gout): "gx", "gw", "gb". f16 and bf16 cases are computed
the way born computes them -- in f32 from the rounded inputs, rounded once at the end."""
import torch
import torch.nn.functional as F

from fixtures import Fixture

torch.manual_seed(0)


def randn(*shape, dtype=torch.float32):
    return torch.randn(*shape, dtype=torch.float64).to(dtype)


def write_grads(fx, out, inputs, names):
    gout = randn(*out.shape, dtype=out.dtype)
    fx.tensor("gout", gout)
    fx.tensor("out", out)
    grads = torch.autograd.grad(out, inputs, gout)
    for n, g in zip(names, grads):
        fx.tensor(n, g)


# ---- convolutions -----------------------------------------------------------------------------
conv = Fixture("conv.txt", "gen_conv.py")


def conv_case(name, fn, xs, ws, bias=True, dtype=torch.float32, view=None, **opts):
    """fn: conv1d, conv2d or conv_transpose2d. view: 'transpose23' makes x from x_base."""
    conv.case(name)
    compute = torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype
    if view == "transpose23":
        base = randn(*xs[:2], xs[3], xs[2], dtype=dtype)
        conv.tensor("x_base", base)
        x = base.to(compute).transpose(2, 3)
    else:
        x = randn(*xs, dtype=dtype)
        conv.tensor("x", x)
        x = x.to(compute)
    w = randn(*ws, dtype=dtype)
    conv.tensor("w", w)
    w = w.to(compute)
    b = None
    inputs, names = [x, w], ["gx", "gw"]
    if bias:
        bb = randn(ws[1] * opts.get("groups", 1) if fn == "conv_transpose2d" else ws[0],
                   dtype=dtype)
        conv.tensor("b", bb)
        b = bb.to(compute)
        inputs.append(b)
        names.append("gb")
    for t in inputs:
        t.requires_grad_(True)
    for k in ("stride", "padding", "dilation", "groups", "output_padding"):
        conv.scalar(k, opts.get(k, 0))
    conv.scalar("same", 1 if opts.get("same") else 0)
    conv.scalar("kind", {"conv1d": 1, "conv2d": 2, "conv_transpose2d": 3}[fn])
    kw = {k: v for k, v in opts.items() if k in ("stride", "padding", "dilation", "groups",
                                                 "output_padding")}
    if opts.get("same"):
        kw["padding"] = "same"
    out = getattr(F, fn)(x, w, b, **kw)
    if dtype != compute:
        # born rounds the f32 result once; gradients likewise
        gout = randn(*out.shape, dtype=dtype)
        conv.tensor("gout", gout)
        conv.tensor("out", out.to(dtype))
        grads = torch.autograd.grad(out, inputs, gout.to(compute))
        for n, g in zip(names, grads):
            conv.tensor(n, g.to(dtype))
    else:
        write_grads(conv, out, inputs, names)


conv_case("conv2d_basic", "conv2d", (2, 3, 7, 6), (4, 3, 3, 3))
conv_case("conv2d_stride2", "conv2d", (2, 3, 9, 8), (4, 3, 3, 3), stride=2)
conv_case("conv2d_padding1", "conv2d", (2, 3, 5, 6), (4, 3, 3, 3), padding=1)
conv_case("conv2d_dilation2", "conv2d", (2, 3, 8, 9), (4, 3, 3, 3), dilation=2, padding=1)
conv_case("conv2d_groups2", "conv2d", (2, 4, 6, 6), (6, 2, 3, 3), groups=2)
conv_case("conv2d_depthwise", "conv2d", (2, 3, 6, 7), (6, 1, 3, 3), groups=3, padding=1)
conv_case("conv2d_same_even_kernel", "conv2d", (1, 2, 5, 7), (3, 2, 4, 3), same=True)
conv_case("conv2d_same_dilation2", "conv2d", (2, 2, 6, 5), (3, 2, 3, 3), same=True, dilation=2)
conv_case("conv2d_1x1", "conv2d", (2, 3, 4, 5), (5, 3, 1, 1))
conv_case("conv2d_nonsquare_no_bias", "conv2d", (2, 2, 5, 9), (3, 2, 2, 4), bias=False,
          stride=2, padding=1)
conv_case("conv2d_unbatched", "conv2d", (3, 6, 5), (2, 3, 3, 3), padding=1)
conv_case("conv2d_transposed_input", "conv2d", (2, 3, 7, 6), (4, 3, 3, 3), view="transpose23",
          stride=2, padding=1)
conv_case("conv2d_empty_batch", "conv2d", (0, 3, 5, 5), (4, 3, 3, 3))
conv_case("conv2d_f64", "conv2d", (2, 3, 6, 6), (4, 3, 3, 3), dtype=torch.float64, padding=1,
          stride=2)
conv_case("conv2d_f16", "conv2d", (2, 3, 6, 6), (4, 3, 3, 3), dtype=torch.float16, padding=1)
conv_case("conv2d_bf16", "conv2d", (2, 3, 6, 6), (4, 3, 3, 3), dtype=torch.bfloat16, padding=1)
conv_case("conv1d_stride2_padding1", "conv1d", (2, 3, 10), (4, 3, 3), stride=2, padding=1)
conv_case("conv1d_same_dilation2", "conv1d", (2, 2, 9), (3, 2, 4), same=True, dilation=2)
conv_case("conv1d_unbatched_groups", "conv1d", (4, 8), (6, 2, 3), groups=2)
conv_case("conv_transpose2d_basic", "conv_transpose2d", (2, 4, 4, 5), (4, 3, 3, 3))
conv_case("conv_transpose2d_stride2_output_padding", "conv_transpose2d", (2, 4, 4, 5),
          (4, 3, 3, 3), stride=2, padding=1, output_padding=1)
conv_case("conv_transpose2d_groups2_dilation2", "conv_transpose2d", (2, 4, 3, 4), (4, 2, 3, 2),
          groups=2, dilation=2)
conv_case("conv_transpose2d_unbatched_no_bias", "conv_transpose2d", (3, 4, 4), (3, 2, 2, 2),
          bias=False, stride=2)
conv_case("conv_transpose2d_f64", "conv_transpose2d", (1, 2, 3, 3), (2, 3, 3, 3),
          dtype=torch.float64, stride=2, padding=1, output_padding=1)
conv.write()

# ---- pooling ----------------------------------------------------------------------------------
pool = Fixture("conv_pool.txt", "gen_conv.py")


def pool_case(name, fn, xs, dtype=torch.float32, view=None, **opts):
    pool.case(name)
    compute = torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype
    if view == "transpose23":
        base = randn(*xs[:-2], xs[-1], xs[-2], dtype=dtype)
        pool.tensor("x_base", base)
        x = base.to(compute).transpose(-1, -2)
    else:
        x = randn(*xs, dtype=dtype)
        pool.tensor("x", x)
        x = x.to(compute)
    x.requires_grad_(True)
    pool.scalar("kind", {"max_pool2d": 1, "avg_pool2d": 2, "adaptive_avg_pool2d": 3}[fn])
    for k in ("kernel", "stride", "padding", "dilation", "out_h", "out_w"):
        pool.scalar(k, opts.get(k, 0))
    pool.scalar("ceil_mode", 1 if opts.get("ceil_mode") else 0)
    pool.scalar("exclude_padding", 1 if opts.get("exclude_padding") else 0)
    if fn == "max_pool2d":
        out = F.max_pool2d(x, opts["kernel"], opts.get("stride") or None, opts.get("padding", 0),
                           opts.get("dilation", 1), ceil_mode=opts.get("ceil_mode", False))
    elif fn == "avg_pool2d":
        out = F.avg_pool2d(x, opts["kernel"], opts.get("stride") or None, opts.get("padding", 0),
                           ceil_mode=opts.get("ceil_mode", False),
                           count_include_pad=not opts.get("exclude_padding", False))
    else:
        out = F.adaptive_avg_pool2d(x, (opts["out_h"], opts["out_w"]))
    gout = randn(*out.shape, dtype=dtype)
    pool.tensor("gout", gout)
    pool.tensor("out", out.to(dtype))
    (gx,) = torch.autograd.grad(out, [x], gout.to(compute))
    pool.tensor("gx", gx.to(dtype))


pool_case("max_default_stride", "max_pool2d", (2, 3, 6, 6), kernel=2)
pool_case("max_ceil_mode_padding", "max_pool2d", (1, 2, 7, 8), kernel=3, stride=2, padding=1,
          ceil_mode=True)
pool_case("max_dilation2", "max_pool2d", (2, 2, 7, 7), kernel=2, stride=1, dilation=2)
pool_case("max_unbatched", "max_pool2d", (3, 5, 6), kernel=2, stride=1)
pool_case("max_transposed_input", "max_pool2d", (2, 2, 6, 7), view="transpose23", kernel=3,
          stride=2, padding=1)
pool_case("max_f64", "max_pool2d", (1, 2, 5, 5), dtype=torch.float64, kernel=2, ceil_mode=True)
pool_case("max_bf16", "max_pool2d", (1, 2, 6, 6), dtype=torch.bfloat16, kernel=2)
pool_case("max_f16", "max_pool2d", (1, 2, 6, 6), dtype=torch.float16, kernel=3, stride=1)
pool_case("avg_include_padding", "avg_pool2d", (2, 2, 7, 6), kernel=3, stride=2, padding=1)
pool_case("avg_exclude_padding_ceil", "avg_pool2d", (2, 2, 7, 6), kernel=3, stride=2, padding=1,
          exclude_padding=True, ceil_mode=True)
pool_case("avg_include_padding_ceil", "avg_pool2d", (1, 2, 6, 6), kernel=3, stride=2, padding=1,
          ceil_mode=True)
pool_case("avg_default_stride", "avg_pool2d", (2, 3, 6, 4), kernel=2)
pool_case("avg_unbatched", "avg_pool2d", (2, 5, 5), kernel=2, stride=1)
pool_case("avg_f64", "avg_pool2d", (1, 2, 5, 5), dtype=torch.float64, kernel=2, padding=1)
pool_case("avg_bf16", "avg_pool2d", (1, 2, 6, 6), dtype=torch.bfloat16, kernel=2)
pool_case("adaptive_non_divisible", "adaptive_avg_pool2d", (2, 3, 7, 9), out_h=3, out_w=4)
pool_case("adaptive_global", "adaptive_avg_pool2d", (2, 3, 5, 6), out_h=1, out_w=1)
pool_case("adaptive_upsample", "adaptive_avg_pool2d", (1, 2, 3, 3), out_h=5, out_w=4)
pool_case("adaptive_unbatched_transposed", "adaptive_avg_pool2d", (2, 5, 7), view="transpose23",
          out_h=2, out_w=3)
pool_case("adaptive_f64", "adaptive_avg_pool2d", (1, 2, 5, 5), dtype=torch.float64, out_h=2,
          out_w=2)
pool.write()
