"""Fixtures for tests/unit/test_join.c: cat, stack, split, split_sizes, chunk, repeat, tril,
triu, pad, from PyTorch.
Run: /usr/bin/python3 scripts/gen_join.py  (writes tests/data/join.txt)

Non-contiguous cases store the contiguous input; the C test makes the same view (named in the
case) with bn_transpose / bn_slice before calling the op."""
import torch

from fixtures import Fixture

torch.manual_seed(4321)
fx = Fixture("join.txt", "gen_join.py")
F = torch.nn.functional

ALL = [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int8, torch.uint8,
       torch.int32, torch.int64, torch.bool]
NAMES = {torch.float32: "f32", torch.float64: "f64", torch.float16: "f16",
         torch.bfloat16: "bf16", torch.int8: "i8", torch.uint8: "u8", torch.int32: "i32",
         torch.int64: "i64", torch.bool: "bool"}


def ints(shape, dt):
    if dt == torch.bool:
        return torch.randint(0, 2, shape).bool()
    lo, hi = (0, 100) if dt == torch.uint8 else (-50, 50)
    return torch.randint(lo, hi, shape).to(dt)


def pad(x, pads, mode, value=0.0):
    """F.pad; for reflect / replicate, which torch runs only on (N, C, *spatial) inputs with
    as many spatial dims as padded ones, the leading dims are folded into C and back."""
    if mode == "constant":
        return F.pad(x, pads, value=value)
    k = len(pads) // 2
    lead, tail = x.shape[: x.dim() - k], x.shape[x.dim() - k:]
    y = F.pad(x.reshape(1, -1, *tail), pads, mode)
    return y.reshape(*lead, *y.shape[2:])


def case(name, **tensors):
    fx.case(name)
    for k, v in tensors.items():
        fx.tensor(k, v)


# ---- cat ----------------------------------------------------------------------------------------
a, b, c = torch.randn(2, 3), torch.randn(2, 1), torch.randn(2, 4)
case("cat_dim1", a=a, b=b, c=c, out=torch.cat([a, b, c], 1))
a0, b0 = torch.randn(2, 3), torch.randn(1, 3)
case("cat_dim0", a=a0, b=b0, out=torch.cat([a0, b0], 0))
a3, b3 = torch.randn(2, 3, 4), torch.randn(2, 3, 2)
case("cat_dimneg1", a=a3, b=b3, out=torch.cat([a3, b3], -1))
# promotion: i32 with f64 gives f64; u8 with i8 gives i16 in torch, i32 in born (no i16)
ai, bf = torch.randint(-5, 5, (2, 2), dtype=torch.int32), torch.randn(1, 2, dtype=torch.float64)
case("cat_promotes", a=ai, b=bf, out=torch.cat([ai, bf], 0))
au, bi = ints((2, 2), torch.uint8), ints((2, 1), torch.int8)
case("cat_u8_i8", a=au, b=bi, out=torch.cat([au, bi], 1).to(torch.int32))
ab, bb = ints((1, 3), torch.bool), ints((2, 3), torch.bool)
case("cat_bool", a=ab, b=bb, out=torch.cat([ab, bb], 0))
# 1-D empty tensors are skipped whatever the others' shapes (their dtype still promotes)
e = torch.zeros(0, dtype=torch.float64)
case("cat_skips_empty_1d", a=a, e=e, out=torch.cat([e, a, e], 1))
z = torch.zeros(2, 0)
case("cat_empty_piece", a=a, z=z, out=torch.cat([a, z, a], 1))
# non-contiguous: a.t() is (3, 2), x[:, ::2] of a (3, 4) is (3, 2)
at, x4 = torch.randn(2, 3), torch.randn(3, 4)
case("cat_noncontiguous", a=at, x=x4, out=torch.cat([at.t(), x4[:, ::2]], 1))
for dt in ALL:
    p, q = ints((2, 2), dt), ints((1, 2), dt)
    case("cat_" + NAMES[dt], a=p, b=q, out=torch.cat([p, q], 0))

# ---- stack --------------------------------------------------------------------------------------
s1, s2, s3 = torch.randn(2, 3), torch.randn(2, 3), torch.randn(2, 3)
for dim in (0, 1, 2, -1, -3):
    case("stack_dim%d" % dim if dim >= 0 else "stack_dimneg%d" % -dim, a=s1, b=s2, c=s3,
         out=torch.stack([s1, s2, s3], dim))
case("stack_0d", a=torch.tensor(1.5), b=torch.tensor(-2.0),
     out=torch.stack([torch.tensor(1.5), torch.tensor(-2.0)]))
sa, sb = torch.randn(3, 2), torch.randn(2, 3)
case("stack_transposed", a=sa, b=sb, out=torch.stack([sa.t(), sb], 1))
si, sf = torch.randint(0, 9, (2,), dtype=torch.int64), torch.randn(2, dtype=torch.float16)
case("stack_promotes", a=si, b=sf, out=torch.stack([si, sf]))

# ---- split / split_sizes / chunk -------------------------------------------------------------
x = torch.arange(30, dtype=torch.float32).reshape(10, 3)
fx.case("split")
fx.tensor("x", x)
for i, p in enumerate(torch.split(x, 4, 0)):
    fx.tensor("s4_%d" % i, p)
for i, p in enumerate(torch.split(x, 2, 1)):
    fx.tensor("s2d1_%d" % i, p)
for i, p in enumerate(torch.split(x, [3, 0, 7], 0)):
    fx.tensor("sizes_%d" % i, p)
for i, p in enumerate(torch.chunk(x, 4, 0)):
    fx.tensor("c4_%d" % i, p)
for i, p in enumerate(torch.chunk(x, 6, 0)):
    fx.tensor("c6_%d" % i, p)
for i, p in enumerate(torch.chunk(x, 5, -1)):
    fx.tensor("c5d1_%d" % i, p)
for i, p in enumerate(torch.split(x.t(), 3, 1)):  # transposed input
    fx.tensor("st3_%d" % i, p)

# ---- repeat -------------------------------------------------------------------------------------
r = torch.randn(2, 3)
case("repeat_2x2", x=r, out=r.repeat(2, 2))
case("repeat_new_dims", x=r, out=r.repeat(2, 1, 3))
case("repeat_zero", x=r, out=r.repeat(0, 2))
case("repeat_scalar", x=torch.tensor(3.5), out=torch.tensor(3.5).repeat(2, 3))
case("repeat_transposed", x=r, out=r.t().repeat(2, 2))
r5 = torch.randn(2, 1, 2, 3, 2)
case("repeat_5d", x=r5, out=r5.repeat(1, 2, 3, 2, 2, 2))  # 6 dims + 4 splits > 8
r8 = torch.randn(2, 2, 1, 2, 1, 2, 1, 2)
case("repeat_8d", x=r8, out=r8.repeat(2, 1, 3, 2, 1, 1, 2, 2))
for dt in ALL:
    p = ints((2, 2), dt)
    case("repeat_" + NAMES[dt], x=p, out=p.repeat(1, 3))

# ---- tril / triu ------------------------------------------------------------------------------
m = torch.randn(4, 5)
for d in (0, 1, -1, 3, -4, 7, -9):
    name = "tri_d%d" % d if d >= 0 else "tri_dneg%d" % -d
    case(name, x=m, tril=torch.tril(m, d), triu=torch.triu(m, d))
mb = torch.randn(2, 3, 4)
case("tri_batched", x=mb, tril=torch.tril(mb, 1), triu=torch.triu(mb, -1))
case("tri_transposed", x=m, tril=torch.tril(m.t()), triu=torch.triu(m.t(), 1))
for dt in ALL:
    p = ints((3, 4), dt)
    case("tri_" + NAMES[dt], x=p, tril=torch.tril(p), triu=torch.triu(p))

# ---- pad --------------------------------------------------------------------------------------
xp = torch.arange(24, dtype=torch.float32).reshape(1, 2, 3, 4) - 10
for mode in ("constant", "reflect", "replicate"):
    for name, pads in (("last", (1, 2)), ("two", (2, 1, 1, 2)), ("crop", (-1, 2, 1, -1)),
                       ("zero", (0, 0))):
        out = pad(xp, pads, mode, value=1.5)
        case("pad_%s_%s" % (mode, name), x=xp, out=out)
case("pad_constant_three_dims", x=xp, out=pad(xp, (1, 1, 0, 2, 1, 0), "constant", -3.0))
case("pad_constant_all_dims", x=xp, out=pad(xp, (1, 0, 0, 1, 1, 1, 2, 0), "constant", 7.0))
xr3 = torch.randn(2, 3, 5)
case("pad_reflect_3d", x=xr3, out=pad(xr3, (4, 3), "reflect"))
case("pad_replicate_3d", x=xr3, out=pad(xr3, (6, 2), "replicate"))
xr4 = torch.randn(1, 2, 3, 4)
case("pad_reflect_transposed", x=xr4, out=pad(xr4.transpose(2, 3), (2, 1, 1, 2), "reflect"))
x1 = torch.arange(5, dtype=torch.float64)
case("pad_constant_1d", x=x1, out=pad(x1, (2, 3), "constant", -1.0))
xi = torch.arange(8, dtype=torch.int32).reshape(2, 4)
case("pad_constant_int_truncates", x=xi, out=pad(xi, (1, 1), "constant", 2.7))
for dt in ALL:
    p = ints((1, 2, 3), dt)
    case("pad_constant_" + NAMES[dt], x=p, out=pad(p, (1, 2, 1, 0), "constant", 1))
    if dt in (torch.float32, torch.float64):  # torch's reflect/replicate kernels: floats only
        case("pad_reflect_" + NAMES[dt], x=p, out=pad(p, (2, 1), "reflect"))
        case("pad_replicate_" + NAMES[dt], x=p, out=pad(p, (2, 3), "replicate"))
xe = torch.zeros(2, 0, 3)
case("pad_constant_empty", x=xe, out=pad(xe, (1, 1, 2, 0), "constant", 4.0))

fx.write()
