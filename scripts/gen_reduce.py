"""Fixtures for tests/unit/test_reduce.c: reductions, cumsum, softmax and log_softmax, from PyTorch.
Run: /usr/bin/python3 scripts/gen_reduce.py  (writes tests/data/reduce.txt)

Layout of the file: case <variant> holds the stored input "x"; case <variant>.<op> holds the
expected result of <op> over each dim ("d0", "d1", ...) and, for reductions, over every dim
("all"). Non-contiguous variants store the base tensor; the C test makes the same view
(transpose / slice / expand / permute) that VIEWS below applies here. Where torch 1.13 has no
CPU kernel for f16/bf16 (prod, logsumexp, cumsum, softmax on half) the expectation is computed
in float64 and rounded once to the dtype, which is what born does."""
import math

import torch

from fixtures import Fixture

torch.manual_seed(1234)
fx = Fixture("reduce.txt", "gen_reduce.py")

FLOATS = (torch.float32, torch.float64, torch.float16, torch.bfloat16)


def is_float(t):
    return t.dtype in FLOATS


def _all_dims(x):
    return tuple(range(x.dim()))


# op name -> (applies to x, fn(x, dim or None for every dim)); mirrors REDUCE_OPS and ALONG_OPS
# in test_reduce.c
REDUCE_OPS = {
    "sum": (lambda t: True, lambda x, d: x.sum() if d is None else x.sum(d)),
    "mean": (is_float, lambda x, d: x.mean() if d is None else x.mean(d)),
    "prod": (lambda t: True, lambda x, d: x.prod() if d is None else x.prod(d)),
    "max": (lambda t: True, lambda x, d: x.amax(_all_dims(x)) if d is None else x.amax(d)),
    "min": (lambda t: True, lambda x, d: x.amin(_all_dims(x)) if d is None else x.amin(d)),
    "argmax": (lambda t: t.dtype != torch.bool,
               lambda x, d: x.argmax() if d is None else x.argmax(d)),
    "argmin": (lambda t: t.dtype != torch.bool,
               lambda x, d: x.argmin() if d is None else x.argmin(d)),
    "var": (is_float, lambda x, d: torch.var(x, dim=_all_dims(x) if d is None else d, correction=1)),
    "var0": (is_float,
             lambda x, d: torch.var(x, dim=_all_dims(x) if d is None else d, correction=0)),
    "std": (is_float, lambda x, d: torch.std(x, dim=_all_dims(x) if d is None else d, correction=1)),
    "logsumexp": (lambda t: True,
                  lambda x, d: torch.logsumexp(x, dim=_all_dims(x) if d is None else d)),
    "all": (lambda t: True, lambda x, d: x.all() if d is None else x.all(d)),
    "any": (lambda t: True, lambda x, d: x.any() if d is None else x.any(d)),
}
ALONG_OPS = {
    "cumsum": (lambda t: True, lambda x, d: x.cumsum(d)),
    "softmax": (is_float, lambda x, d: torch.softmax(x, d)),
    "log_softmax": (is_float, lambda x, d: torch.log_softmax(x, d)),
}


def run(name, fn, x, d, in_f64=False):
    """fn on x; for half types torch lacks (or with in_f64) compute in float64 and round once."""
    try:
        if in_f64:
            raise RuntimeError("computed in float64")
        r = fn(x, d)
    except RuntimeError:
        r = fn(x.double(), d)
        if r.is_floating_point():
            r = r.to(x.dtype)
    if name in ("all", "any"):
        r = r.bool()  # torch keeps u8 for all/any of u8; born always gives bool
    return r


def emit(variant, stored, x, in_f64=False):
    """stored is what the fixture holds; x (a view of it) is what the ops see."""
    fx.case(variant)
    fx.tensor("x", stored)
    for name, (applies, fn) in list(REDUCE_OPS.items()) + list(ALONG_OPS.items()):
        if not applies(x):
            continue
        fx.case("%s.%s" % (variant, name))
        for d in range(max(x.dim(), 1)):
            fx.tensor("d%d" % d, run(name, fn, x, d, in_f64))
        if name in REDUCE_OPS:
            fx.tensor("all", run(name, fn, x, None, in_f64))


# ---- every dtype on a (2, 3, 4) input ----------------------------------------------------------
for dt, name in [(torch.float32, "f32"), (torch.float64, "f64"), (torch.float16, "f16"),
                 (torch.bfloat16, "bf16")]:
    x = torch.randn(2, 3, 4).to(dt)
    emit(name, x, x)
x = torch.randint(-2, 3, (2, 3, 4)).float()  # ties: argmax/argmin take the first
emit("f32_ties", x, x)
for dt, name, lo, hi in [(torch.int8, "i8", -4, 5), (torch.uint8, "u8", 0, 9),
                         (torch.int32, "i32", -4, 5), (torch.int64, "i64", -9, 10),
                         (torch.bool, "bool", 0, 2)]:
    x = torch.randint(lo, hi, (2, 3, 4)).to(dt)
    emit(name, x, x)

# ---- non-contiguous inputs: the C test builds the same views -----------------------------------
VIEWS = {
    "f32_transposed": (torch.randn(4, 3, 2), lambda b: b.transpose(0, 2)),
    "f32_sliced": (torch.randn(2, 5, 4), lambda b: b[:, 0:5:2, :]),
    "f32_expanded": (torch.randn(2, 1, 4), lambda b: b.expand(2, 3, 4)),
    "f32_permuted": (torch.randn(3, 4, 2), lambda b: b.permute(2, 0, 1)),
    "i32_transposed": (torch.randint(-5, 6, (4, 3, 2), dtype=torch.int32),
                       lambda b: b.transpose(0, 2)),
    "f16_transposed": (torch.randn(4, 3, 2).half(), lambda b: b.transpose(0, 2)),
}
for name, (base, view) in VIEWS.items():
    emit(name, base, view(base))

# ---- special values ----------------------------------------------------------------------------
nan, inf = math.nan, math.inf
x = torch.tensor([[1.0, nan, 3.0, nan], [2.0, 5.0, 4.0, 5.0], [nan, -inf, 0.0, inf],
                  [-inf, -inf, -inf, -inf]])
emit("nan_inf", x, x)
x = torch.tensor([[1000.0, 1001.0], [-1000.0, 1000.0], [1e4, 1e4], [-1e4, -1e4]])
emit("large_f32", x, x)
emit("large_f64", x.double(), x.double())
emit("offset_f64", torch.tensor([1e8 + 1, 1e8 + 2, 1e8 + 3], dtype=torch.float64),
     torch.tensor([1e8 + 1, 1e8 + 2, 1e8 + 3], dtype=torch.float64))
x = torch.tensor([1e8 + 1, 1e8 + 2, 1e8 + 3])  # rounds to 1e8 three times: var 0
emit("offset_f32", x, x)
# Representable in f32: var 128/3 (correction 1). torch 1.13's f32 CPU var returns 128 here, so
# this case's expectations are computed in float64 and rounded once, as born computes them.
x = torch.tensor([1e8, 1e8 + 8, 1e8 + 16, 1e8 + 8])
emit("offset_f32_exact", x, x, in_f64=True)
x = torch.tensor([[2**62, 2**62, -(2**62) + 7], [2**61 + 1, 3, 2**40]], dtype=torch.int64)
emit("i64_wrap", x, x)  # sums and products wrap like torch; no trip through double
x = torch.tensor([100, 100, 100], dtype=torch.int8)
emit("i8_overflow", x, x)

# ---- var/std corrections -----------------------------------------------------------------------
x = torch.tensor([[1.0, 2.0, 4.0], [3.0, 3.0, 3.0]], dtype=torch.float64)
fx.case("corrections")
fx.tensor("x", x)
for c in (0, 1, 2, 3, 4, -1):
    fx.tensor("var_c%d" % c, torch.var(x, dim=1, correction=c))
    fx.tensor("std_c%d" % c, torch.std(x, dim=1, correction=c))

# ---- several dims at once ----------------------------------------------------------------------
x = torch.randn(2, 3, 4)
xi = torch.randint(-5, 6, (2, 3, 4), dtype=torch.int32)
fx.case("dims")
fx.tensor("x", x)
fx.tensor("xi", xi)
fx.tensor("sum_0_2", x.sum((0, 2)))
fx.tensor("sum_m1_1_keep", x.sum((-1, 1), keepdim=True))
fx.tensor("sum_none", x.sum(()))
fx.tensor("mean_0_2", x.mean((0, 2)))
fx.tensor("mean_2_0_keep", x.mean((2, 0), keepdim=True))
fx.tensor("mean_all3", x.mean((0, 1, 2)))
fx.tensor("isum_0_1", xi.sum((0, 1)))

fx.write()
