"""Fixtures for tests/unit/test_index.c: index_select, gather, scatter(_add), sort, argsort, topk,
one_hot, from PyTorch.
Run: /usr/bin/python3 scripts/gen_index.py  (writes tests/data/index.txt)

Non-contiguous cases store the contiguous input; the C test makes the same view (named in the
case) with bn_transpose / bn_slice before calling the op."""
import torch

from fixtures import Fixture

torch.manual_seed(1234)
fx = Fixture("index.txt", "gen_index.py")

ALL = [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int8, torch.uint8,
       torch.int32, torch.int64, torch.bool]
NAMES = {torch.float32: "f32", torch.float64: "f64", torch.float16: "f16",
         torch.bfloat16: "bf16", torch.int8: "i8", torch.uint8: "u8", torch.int32: "i32",
         torch.int64: "i64", torch.bool: "bool"}


def ints(shape, dt, lo=-50, hi=50):
    """Integer-valued data that every dtype holds exactly."""
    if dt == torch.uint8:
        lo, hi = 0, 100
    if dt == torch.bool:
        return torch.randint(0, 2, shape).bool()
    return torch.randint(lo, hi, shape).to(dt)


def case(name, **tensors):
    fx.case(name)
    for k, v in tensors.items():
        fx.tensor(k, v)


# ---- index_select ------------------------------------------------------------------------------
x = torch.randn(3, 4, 5)
for dim in (0, 1, 2, -1):
    n = x.shape[dim]
    idx = torch.tensor([n - 1, 0, 1, n - 1, 2][: n + 1])
    case("index_select_dim%d" % dim if dim >= 0 else "index_select_dimneg1", x=x, index=idx,
         out=x.index_select(dim, idx))
idx32 = torch.tensor([3, 1, 1], dtype=torch.int32)
case("index_select_i32_index", x=x, index=idx32, out=x.index_select(1, idx32))
# non-contiguous: x.transpose(0, 2) is (5, 4, 3)
idx = torch.tensor([4, 0, 2])
case("index_select_transposed", x=x, index=idx, out=x.transpose(0, 2).index_select(0, idx))
idx = torch.tensor([2, 2, 0])
case("index_select_transposed_last", x=x, index=idx,
     out=x.transpose(0, 2).index_select(2, idx))
for dt in ALL:
    xd = ints((4, 6), dt)
    idx = torch.tensor([5, 0, 3, 3])
    case("index_select_" + NAMES[dt], x=xd, index=idx, out=xd.index_select(1, idx))
case("index_select_empty_index", x=x, index=torch.zeros(0, dtype=torch.long),
     out=x.index_select(1, torch.zeros(0, dtype=torch.long)))

# ---- gather ------------------------------------------------------------------------------------
x = torch.randn(3, 4)
idx = torch.tensor([[0, 3], [1, 1], [2, 0]])
case("gather_dim1", x=x, index=idx, out=x.gather(1, idx))
idx = torch.tensor([[0, 2, 1, 0], [2, 2, 0, 1]])
case("gather_dim0", x=x, index=idx, out=x.gather(0, idx))
idx = torch.tensor([[3, 0, 1, 2, 3, 3]])  # larger than x along dim, smaller elsewhere
case("gather_index_smaller", x=x, index=idx, out=x.gather(1, idx))
x3 = torch.randn(2, 3, 4)
idx = torch.randint(0, 3, (2, 5, 3))
case("gather_3d_dimneg2", x=x3, index=idx, out=x3.gather(-2, idx))
idx = torch.randint(0, 4, (4, 3, 2))  # for x3.transpose(0, 2): (4, 3, 2)
case("gather_transposed", x=x3, index=idx, out=x3.transpose(0, 2).gather(0, idx))
for dt in ALL:
    xd = ints((3, 5), dt)
    idx = torch.randint(0, 5, (3, 4))
    case("gather_" + NAMES[dt], x=xd, index=idx, out=xd.gather(1, idx))

# ---- scatter / scatter_add -------------------------------------------------------------------
t = torch.randn(3, 5)
src = torch.randn(2, 4)
idx = torch.tensor([[4, 0, 2], [1, 3, 0]])  # distinct within each row: no write races to resolve
case("scatter_dim1", t=t, index=idx, src=src, out=t.scatter(1, idx, src))
idx = torch.tensor([[2, 0, 1, 2, 0], [0, 1, 2, 1, 1]])
src0 = torch.randn(2, 5)
case("scatter_dim0", t=t, index=idx, src=src0, out=t.scatter(0, idx, src0))
idx = torch.tensor([[0, 0, 4, 0], [1, 1, 1, 3], [2, 2, 2, 2]])
srca = torch.randn(3, 4)
case("scatter_add_dim1", t=t, index=idx, src=srca, out=t.scatter_add(1, idx, srca))
idx = torch.tensor([[0, 2, 2, 0, 1], [0, 0, 2, 0, 1], [1, 0, 2, 0, 1]])
srcb = torch.randn(3, 5)
case("scatter_add_dim0", t=t, index=idx, src=srcb, out=t.scatter_add(0, idx, srcb))
# transposed t: t.transpose(0, 1) is (5, 3)
idx = torch.tensor([[1, 0, 2], [0, 2, 1]])
srct = torch.randn(2, 3)
case("scatter_add_transposed", t=t, index=idx, src=srct,
     out=t.transpose(0, 1).scatter_add(1, idx, srct))
for dt in ALL:
    if dt == torch.bool:
        continue
    td = ints((3, 4), dt)
    sd = ints((3, 6), dt, -5, 5) if dt != torch.uint8 else ints((3, 6), dt)
    idx = torch.randint(0, 4, (3, 6))
    case("scatter_add_" + NAMES[dt], t=td, index=idx, src=sd, out=td.scatter_add(1, idx, sd))
    idx = torch.stack([torch.randperm(4)[:3] for _ in range(3)])
    case("scatter_" + NAMES[dt], t=td, index=idx, src=sd, out=td.scatter(1, idx, sd))
# f16 rounds after every add, like torch
th = torch.ones(2, 3, dtype=torch.float16)
sh = torch.full((2, 5), 0.1, dtype=torch.float16)
idx = torch.zeros(2, 5, dtype=torch.long)
case("scatter_add_f16_rounds_each_add", t=th, index=idx, src=sh, out=th.scatter_add(1, idx, sh))

# ---- sort / argsort ----------------------------------------------------------------------------
nan, inf = float("nan"), float("inf")
x = torch.randn(4, 7)
x[0, 2] = nan
x[1, 0] = inf
x[1, 5] = -inf
x[2, 3] = nan
x[2, 4] = nan
x[3, 1] = -0.0
x[3, 2] = 0.0
for dim in (1, 0):
    for desc in (False, True):
        v, i = torch.sort(x, dim=dim, descending=desc, stable=True)
        case("sort_f32_dim%d_%s" % (dim, "desc" if desc else "asc"), x=x, values=v, indices=i)
v, i = torch.sort(x.t(), dim=-1, stable=True)
case("sort_transposed", x=x, values=v, indices=i)
# ties everywhere: stability decides the indices
xt = torch.randint(0, 3, (3, 9)).float()
for desc in (False, True):
    v, i = torch.sort(xt, dim=1, descending=desc, stable=True)
    case("sort_ties_%s" % ("desc" if desc else "asc"), x=xt, values=v, indices=i)
for dt in ALL:
    xd = ints((3, 10), dt)
    if dt.is_floating_point:
        xd[0, 0] = nan
        xd[1, 3] = -inf
    for desc in (False, True):
        v, i = torch.sort(xd, dim=1, descending=desc, stable=True)
        case("sort_%s_%s" % (NAMES[dt], "desc" if desc else "asc"), x=xd, values=v, indices=i)
# i64 beyond 2**53: exact integer ordering
big = torch.tensor([2**62 + 1, 2**62, -(2**62), 2**62 + 3, 2**53 + 1, 2**53], dtype=torch.int64)
v, i = torch.sort(big, stable=True)
case("sort_i64_big", x=big, values=v, indices=i)

# ---- topk -------------------------------------------------------------------------------------
# distinct values so the indices are unambiguous
xk = (torch.randperm(48).reshape(6, 8) - 20).float() * 0.5
for k, dim, largest in ((3, 1, True), (3, 1, False), (1, 1, True), (8, 1, True), (0, 1, True),
                        (4, 0, True), (2, -2, False)):
    v, i = torch.topk(xk, k, dim=dim, largest=largest)
    case("topk_k%d_dim%d_%s" % (k, dim, "largest" if largest else "smallest") if dim >= 0 else
         "topk_k%d_dimneg2_%s" % (k, "largest" if largest else "smallest"), x=xk, values=v,
         indices=i)
v, i = torch.topk(xk.t(), 2, dim=1)
case("topk_transposed", x=xk, values=v, indices=i)
for dt in (torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int32, torch.int64,
           torch.uint8, torch.int8):
    xd = torch.stack([torch.randperm(100)[:12] for _ in range(3)])
    if dt != torch.uint8:
        xd = xd - 50
    xd = xd.to(dt)
    for largest in (True, False):
        # torch has no CPU topk for f16: compute in f32 (values are small integers, exact)
        v, i = torch.topk(xd.float() if dt == torch.float16 else xd, 4, dim=1, largest=largest)
        case("topk_%s_%s" % (NAMES[dt], "largest" if largest else "smallest"), x=xd,
             values=v.to(dt), indices=i)
xn = torch.tensor([3.0, nan, 1.0, nan, 2.0])
v, i = torch.topk(xn, 3)
case("topk_nan_largest", x=xn, values=v, indices=i)
v, i = torch.topk(xn, 3, largest=False)
case("topk_nan_smallest", x=xn, values=v, indices=i)
# ties: values only (torch's choice among equal elements is not specified)
xtie = torch.tensor([[1.0, 2.0, 1.0, 2.0, 1.0, 3.0, 2.0]])
for largest in (True, False):
    v, _ = torch.topk(xtie, 4, dim=1, largest=largest)
    case("topk_ties_%s" % ("largest" if largest else "smallest"), x=xtie, values=v)
# long lines: the heap selection path (k << n) against torch
xl = torch.randn(4, 500)
v, i = torch.topk(xl, 5, dim=1)
case("topk_long_lines", x=xl, values=v, indices=i)

# ---- one_hot ----------------------------------------------------------------------------------
F = torch.nn.functional
ti = torch.tensor([0, 2, 1, 4])
case("one_hot_infer", t=ti, out=F.one_hot(ti))
case("one_hot_classes", t=ti, out=F.one_hot(ti, 6))
t2 = torch.tensor([[1, 0], [2, 2]])
case("one_hot_2d", t=t2, out=F.one_hot(t2, 3))
case("one_hot_scalar", t=torch.tensor(2), out=F.one_hot(torch.tensor(2), 4))
e = torch.zeros(0, dtype=torch.long)
case("one_hot_empty", t=e, out=F.one_hot(e, 3))

fx.write()
