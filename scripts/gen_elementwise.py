"""Fixtures for tests/unit/test_unary.c and tests/unit/test_binary.c: element-wise ops from PyTorch.
Run: /usr/bin/python3 scripts/gen_elementwise.py  (writes tests/data/elementwise.txt)

Case names carry what the C tests need to look up: "unary.<dtype>", "binary.<dtype>",
"scalar.<op>.<n>", "views.<what>". f16/bf16 results are computed in f32 and rounded once, which
is born's contract (and what torch does where its CPU build has an f16 kernel at all). Ops that
torch refuses on integers but born computes in f32 (gelu, silu, ...) use x.float() as reference.
"""
import math

import torch
import torch.nn.functional as F

from fixtures import Fixture

torch.manual_seed(0)
fx = Fixture("elementwise.txt", "gen_elementwise.py")
nan, inf = float("nan"), float("inf")

FLOATS = {"f32": torch.float32, "f64": torch.float64, "f16": torch.float16, "bf16": torch.bfloat16}
INTS = {"i8": torch.int8, "u8": torch.uint8, "i32": torch.int32, "i64": torch.int64}


def in_f32(fn, x):
    """fn computed in f32 for f16/bf16/integer x (f32 result for integers), natively otherwise."""
    if x.dtype in (torch.float16, torch.bfloat16):
        return fn(x.float()).to(x.dtype)
    if not x.dtype.is_floating_point:
        return fn(x.float())
    return fn(x)


# ---- unary ------------------------------------------------------------------------------------
# name -> (function, keeps integer dtype). The C test has the same table.
UNARY = {
    "neg": (torch.neg, True), "abs": (torch.abs, True), "exp": (torch.exp, False),
    "log": (torch.log, False), "log1p": (torch.log1p, False), "sqrt": (torch.sqrt, False),
    "rsqrt": (torch.rsqrt, False), "sin": (torch.sin, False), "cos": (torch.cos, False),
    "tanh": (torch.tanh, False), "sigmoid": (torch.sigmoid, False), "relu": (torch.relu, True),
    "leaky_relu": (lambda x: F.leaky_relu(x, 0.1), False),
    "elu": (lambda x: F.elu(x, 1.5), False),
    "gelu": (F.gelu, False), "gelu_tanh": (lambda x: F.gelu(x, approximate="tanh"), False),
    "silu": (F.silu, False),
    "softplus": (lambda x: F.softplus(x, beta=2.0, threshold=10.0), False),
    "softplus_default": (F.softplus, False),
    "erf": (torch.erf, False), "floor": (torch.floor, True), "ceil": (torch.ceil, True),
    "round": (torch.round, True), "sign": (torch.sign, True),
    "clamp": (lambda x: torch.clamp(x, -1.5, 2.5), None),       # fractional bounds: ints -> f32
    "clamp_int": (lambda x: torch.clamp(x, -1, 2), True),
    "clamp_inverted": (lambda x: torch.clamp(x, 2, -1), True),   # lo > hi: every result is hi
    "clamp_min": (lambda x: torch.clamp(x, min=0.5), None),
    "clamp_max": (lambda x: torch.clamp(x, max=-0.5), None),
    "logical_not": (torch.logical_not, True),
}

float_vals = [-100, -20, -3.5, -2.5, -1.5, -1, -0.5, -1e-3, -0.0, 0.0, 1e-3, 0.5,
              1, 1.5, 2.5, 3.5, 20, 100, nan, inf, -inf, 0.25, -0.75, 7.3]
x64 = torch.tensor(float_vals, dtype=torch.float64).reshape(4, 6)
for name, dt in FLOATS.items():
    x = x64.to(dt)
    fx.case("unary." + name)
    fx.tensor("x", x)
    for op, (fn, _) in UNARY.items():
        fx.tensor(op, in_f32(fn, x) if op != "logical_not" else fn(x))

int_vals = {
    "i8": [-128, -100, -3, -1, 0, 1, 2, 3, 100, 127, -7, 5],
    "u8": [0, 1, 2, 3, 100, 200, 255, 7, 128, 4, 9, 50],
    "i32": [-2**31, -100000, -3, -1, 0, 1, 2, 3, 16777217, 2**31 - 1, -7, 5],
    "i64": [-2**63, -2**62 - 1, -3, -1, 0, 1, 2, 3, 2**62 + 1, 2**63 - 1, -7, 5],
}
for name, dt in INTS.items():
    x = torch.tensor(int_vals[name], dtype=dt).reshape(3, 4)
    fx.case("unary." + name)
    fx.tensor("x", x)
    for op, (fn, keeps) in UNARY.items():
        if op in ("clamp_int", "clamp_inverted"):
            # exact, then saturated to the dtype (torch refuses a -1 bound for u8)
            info = torch.iinfo(dt)
            fx.tensor(op, fn(x.long()).clamp(info.min, info.max).to(dt))
        elif op == "logical_not" or keeps:
            fx.tensor(op, fn(x))                      # torch keeps the integer dtype
        elif keeps is None:
            fx.tensor(op, fn(x))                      # fractional clamp bounds: torch gives f32
        else:
            fx.tensor(op, in_f32(fn, x))

# bool: only the ops torch allows (sign, logical_not, clamp -> i64, fraction ops -> f32)
xb = torch.tensor([True, False, True, True, False, False]).reshape(2, 3)
fx.case("unary.bool")
fx.tensor("x", xb)
fx.tensor("sign", torch.sign(xb))
fx.tensor("logical_not", torch.logical_not(xb))
fx.tensor("exp", torch.exp(xb))
fx.tensor("sigmoid", torch.sigmoid(xb))
fx.tensor("clamp_int", torch.clamp(xb, 0, 3))
fx.tensor("clamp", torch.clamp(xb, 0.5, 3))

# views: ops on a transposed and on a strided slice of an f32 tensor (C makes the same views)
xv = torch.randn(4, 6, dtype=torch.float32) * 3
fx.case("views.unary")
fx.tensor("x", xv)
fx.tensor("exp_t", torch.exp(xv.transpose(0, 1)))
fx.tensor("gelu_t", F.gelu(xv.transpose(0, 1)))
fx.tensor("relu_slice", torch.relu(xv[:, 1::2]))
fx.tensor("tanh_slice", torch.tanh(xv[1:3, ::3]))
xh = xv.to(torch.float16)
fx.tensor("xh", xh)
fx.tensor("sigmoid_half_t", torch.sigmoid(xh.float().transpose(0, 1)).half())

# ---- binary -----------------------------------------------------------------------------------
BINARY = {
    "add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div, "pow": torch.pow,
    "maximum": torch.maximum, "minimum": torch.minimum, "remainder": torch.remainder,
    "eq": torch.eq, "ne": torch.ne, "lt": torch.lt, "le": torch.le, "gt": torch.gt, "ge": torch.ge,
    "logical_and": torch.logical_and, "logical_or": torch.logical_or,
    "logical_xor": torch.logical_xor,
}
COMPARE = ("eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or", "logical_xor")

# a is [2, 3, 4], b is [4]: broadcast over the leading dims
a64 = torch.randn(2, 3, 4, dtype=torch.float64) * 3
a64[0, 0] = torch.tensor([nan, inf, -inf, 0.0])
a64[1, 2] = torch.tensor([2.0, -1.5, 0.0, 1.0])     # equal to b somewhere, for the comparisons
b64 = torch.tensor([2.0, -1.5, 0.0, 0.5], dtype=torch.float64)
for name, dt in FLOATS.items():
    a, b = a64.to(dt), b64.to(dt)
    fx.case("binary." + name)
    fx.tensor("a", a)
    fx.tensor("b", b)
    for op, fn in BINARY.items():
        if op in COMPARE or dt in (torch.float32, torch.float64):
            fx.tensor(op, fn(a, b))
        else:
            fx.tensor(op, fn(a.float(), b.float()).to(dt))

int_ab = {
    "i8": ([-128, -100, -9, -7, -3, -2, -1, 0, 1, 2, 3, 7, 9, 100, 127, 5, -5, 11, -11, 4, 6, 8,
            -8, 10],
           [3, -2, 1, 2]),
    "u8": ([0, 1, 2, 3, 7, 9, 100, 200, 255, 128, 5, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47,
            53, 59],
           [3, 250, 1, 2]),
    "i32": ([-2**31, -100000, -9, -7, -3, -2, -1, 0, 1, 2, 3, 7, 9, 100000, 2**31 - 1, 5, -5, 11,
             -11,
             46341, 6, 8, -8, 10], [3, -2, 1, 2]),
    "i64": ([-2**63, -2**62 - 1, -9, -7, -3, -2, -1, 0, 1, 2, 3, 7, 9, 2**62 + 1, 2**63 - 1, 5,
             -5, 11,
             -11, 3037000500, 6, 8, -8, 10], [3, -2, 1, 2]),
}
for name, dt in INTS.items():
    av, bv = int_ab[name]
    a = torch.tensor(av, dtype=dt).reshape(2, 3, 4)
    b = torch.tensor(bv, dtype=dt)
    fx.case("binary." + name)
    fx.tensor("a", a)
    fx.tensor("b", b)
    for op, fn in BINARY.items():
        fx.tensor(op, fn(a, b))

ab = torch.tensor([[True, False, True, False], [True, True, False, False]])
bb = torch.tensor([True, False, False, True])
fx.case("binary.bool")
fx.tensor("a", ab)
fx.tensor("b", bb)
for op, fn in BINARY.items():
    if op not in ("sub", "pow", "remainder"):
        fx.tensor(op, fn(ab, bb))

# broadcasting both ways: [3, 1] with [1, 4], and a 0-d b
c = torch.tensor([[1.5], [-2.0], [0.25]])
d = torch.tensor([[2.0, -1.0, 0.5, 3.0]])
fx.case("broadcast.3x1_1x4")
fx.tensor("a", c)
fx.tensor("b", d)
fx.tensor("add", c + d)
fx.tensor("mul", c * d)
fx.tensor("pow", torch.pow(c.abs(), d))
fx.tensor("lt", c < d)
fx.case("broadcast.0d")
fx.tensor("a", a64.float())
fx.tensor("b", torch.tensor(1.25))
fx.tensor("sub", a64.float() - 1.25)
fx.tensor("rsub", 1.25 - a64.float())

# mixed dtypes: promotion (born has no i16: i8 with u8 gives i32, f16 with bf16 gives f32)
fx.case("promote")
i32 = torch.tensor([[1, -2, 3], [4, 5, -6]], dtype=torch.int32)
f32 = torch.tensor([0.5, -1.0, 2.0])
i8 = torch.tensor([-3, 100, 7], dtype=torch.int8)
u8 = torch.tensor([200, 3, 255], dtype=torch.uint8)
h = torch.tensor([1.5, -2.25, 3.0], dtype=torch.float16)
bf = torch.tensor([0.75, 4.0, -1.0], dtype=torch.bfloat16)
i64 = torch.tensor([7, -7, 9], dtype=torch.int64)
bo = torch.tensor([True, False, True])
for n, t in [("i32", i32), ("f32", f32), ("i8", i8), ("u8", u8), ("h", h), ("bf", bf), ("i64", i64),
             ("bo", bo)]:
    fx.tensor(n, t)
fx.tensor("i32_add_f32", i32 + f32)
fx.tensor("i8_add_u8", (i8.to(torch.int32) + u8.to(torch.int32)))
fx.tensor("h_mul_bf", h.float() * bf.float())
fx.tensor("bo_add_i64", bo + i64)
i64b = torch.tensor([2, 4, -3])
i32b = torch.tensor([2, 4, -4], dtype=torch.int32)
f64b = torch.tensor([1e-4, 2.0, 3.0], dtype=torch.float64)
for n, t in [("i64b", i64b), ("i32b", i32b), ("f64b", f64b)]:
    fx.tensor(n, t)
fx.tensor("i64_div_i64", i64 / i64b)
fx.tensor("bo_div_bo", bo / bo)
fx.tensor("i32_lt_f32", i32 < f32)
fx.tensor("i64_remainder_i32", torch.remainder(i64, i32b))
fx.tensor("h_add_f64", h.double() + f64b)

# views: binary ops on a transposed a and a strided slice (C makes the same views)
at = torch.randn(4, 3, 2)
bt = torch.randn(2, 3, 4)
fx.case("views.binary")
fx.tensor("a", at)
fx.tensor("b", bt)
fx.tensor("add_t", at.transpose(0, 2) + bt)
fx.tensor("maximum_slice", torch.maximum(bt[:, :, ::2], bt[:, :, 1::2]))
fx.tensor("mul_expand", at[:, :1, :].expand(4, 3, 2) * at)

# ---- scalar variants -------------------------------------------------------------------------
SCALAR = {
    "add": lambda a, s: a + s, "sub": lambda a, s: a - s, "mul": lambda a, s: a * s,
    "div": lambda a, s: a / s, "pow": lambda a, s: a ** s, "rpow": lambda a, s: s ** a,
    "maximum": lambda a, s: torch.maximum(a, torch.tensor(s, dtype=a.dtype)),
    "minimum": lambda a, s: torch.minimum(a, torch.tensor(s, dtype=a.dtype)),
    "remainder": lambda a, s: torch.remainder(a, s),
    "eq": lambda a, s: a == s, "ne": lambda a, s: a != s, "lt": lambda a, s: a < s,
    "le": lambda a, s: a <= s, "gt": lambda a, s: a > s, "ge": lambda a, s: a >= s,
}
xf = torch.tensor([[-2.5, -1.0, 0.0, 0.5], [1.0, 2.5, 3.0, nan]])
xi = torch.tensor([[-7, -2, 0, 1], [2, 3, 5, 100]], dtype=torch.int32)
xu = torch.tensor([0, 1, 2, 3, 100, 255], dtype=torch.uint8)
xh = torch.tensor([-2.5, -1.0, 0.0, 0.5, 1.0, 2.5], dtype=torch.float16)
xbf = torch.tensor([-2.5, -1.0, 0.0, 0.5, 1.0, 2.5], dtype=torch.bfloat16)
xb2 = torch.tensor([True, False, True])
xl = torch.tensor([-2**62 - 1, -3, 0, 3, 2**62 + 1, 2**63 - 1], dtype=torch.int64)
counter = [0]


def scalar_case(op, x, s, want=None):
    fx.case("scalar.%s.%d" % (op, counter[0]))
    counter[0] += 1
    fx.tensor("a", x)
    fx.scalar("s", s)
    if want is None:
        if x.dtype in (torch.float16, torch.bfloat16):
            want = SCALAR[op](x.float(), float(x.new_tensor(s)))
            want = want.to(x.dtype) if want.dtype.is_floating_point else want
        else:
            want = SCALAR[op](x, s)
    fx.tensor("out", want)


for op in SCALAR:
    if op in ("maximum", "minimum"):
        scalar_case(op, xf, 0.75)
        scalar_case(op, xi, 2, SCALAR[op](xi, 2))
        scalar_case(op, xi, 2.5, SCALAR[op](xi.float(), 2.5))
        continue
    scalar_case(op, xf, 2.5 if op != "rpow" else 2.0)
    scalar_case(op, xf, -0.5)
    scalar_case(op, xh, 1.5)
    scalar_case(op, xbf, 1.5)
    if op not in ("pow", "rpow", "remainder"):
        scalar_case(op, xi, -3)
        if op != "sub":                               # torch refuses bool - scalar
            scalar_case(op, xb2, 2)
    scalar_case(op, xi, 2.5)
    if op not in ("rpow",):
        scalar_case(op, xu, 3)
        scalar_case(op, xl, 3)
scalar_case("pow", xi, 3)
scalar_case("pow", xi, 2)
scalar_case("pow", xf, 2)
scalar_case("pow", xf, 0.5)
scalar_case("pow", xb2, 2)
scalar_case("rpow", xi, 2, torch.pow(2, xi))           # integer exponents below 0 give 0
scalar_case("rpow", xu, 2)
scalar_case("remainder", xi, -3)
scalar_case("remainder", xf, -1.5)
# integer tensors compare exactly with any scalar (torch rounds or wraps the scalar; born does
# not): the expected values come from exact arithmetic in Python
for op in ("eq", "ne", "lt", "le", "gt", "ge"):
    for x, s in [(xi, 1.5), (xi, -2.5), (xi, 1000.0), (xi, -1e10), (xu, -1.0), (xu, 255.5),
                 (xb2, 0.5), (xl, 4611686018427387904.0), (xl, 9.3e18), (xi, nan), (xi, inf)]:
        exact = [SCALAR[op](int(v), s) for v in x.reshape(-1).tolist()]
        want = torch.tensor(exact).reshape(x.shape)
        scalar_case(op, x, s, want)
# integral scalars outside an integer dtype: + - * wrap like torch; the rest are computed in i64
# and wrapped back
xi8 = torch.tensor([-128, -5, 0, 5, 127], dtype=torch.int8)
scalar_case("add", xi8, 1000)
scalar_case("mul", xi8, 300)
scalar_case("sub", xu, -1000)
scalar_case("remainder", xi8, 1000, (xi8.long() % 1000).to(torch.int8))
scalar_case("maximum", xi8, 1000, torch.maximum(xi8.long(), torch.tensor(1000)).to(torch.int8))
scalar_case("pow", torch.tensor([3, -3, 2, 1], dtype=torch.int8), 200,
            (torch.tensor([3, -3, 2, 1]) ** 200).to(torch.int8))

# ---- where and masked_fill ---------------------------------------------------------------
cond = torch.tensor([[True], [False], [True]])
wa = torch.tensor([[1.5, -2.0, 3.0, 0.0]])
wb = torch.arange(12, dtype=torch.int32).reshape(3, 4)
fx.case("where.broadcast")
fx.tensor("cond", cond)
fx.tensor("a", wa)
fx.tensor("b", wb)
fx.tensor("out", torch.where(cond, wa, wb))
for name, dt in list(FLOATS.items()) + list(INTS.items()) + [("bool", torch.bool)]:
    c2 = torch.tensor([True, False, False, True, True, False]).reshape(2, 3)
    x = torch.tensor([1, 0, 3, 4, 0, 6]).reshape(2, 3).to(dt)
    y = torch.tensor([7, 1, 9]).to(dt)
    fx.case("where." + name)
    fx.tensor("cond", c2)
    fx.tensor("a", x)
    fx.tensor("b", y)
    fx.tensor("out", torch.where(c2, x, y))
mx = torch.randn(3, 4)
mask = torch.tensor([True, False, False, True])
fx.case("masked_fill.f32")
fx.tensor("x", mx)
fx.tensor("mask", mask)
fx.tensor("out", mx.masked_fill(mask, -inf))
mi = torch.arange(6, dtype=torch.int32).reshape(2, 3)
mask2 = torch.tensor([[True, False, True], [False, False, True]])
fx.case("masked_fill.i32")
fx.tensor("x", mi)
fx.tensor("mask", mask2)
fx.tensor("out", mi.masked_fill(mask2, 5.5))
fx.case("masked_fill.broadcast_mask")     # a mask with more dims than x broadcasts x too
fx.tensor("x", torch.tensor([1.0, 2.0]))
fx.tensor("mask", torch.tensor([[True, False], [False, True]]))
mfx, mfm = torch.tensor([1.0, 2.0]), torch.tensor([[True, False], [False, True]])
fx.tensor("out", mfx.masked_fill(mfm, 9.0))

fx.write()
