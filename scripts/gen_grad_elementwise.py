"""Fixtures for tests/unit/test_grad_elementwise.c: float32 gradients, from PyTorch, of the
element-wise ops — chiefly at their kinks and special points (relu and abs at 0, leaky_relu and
elu at 0, clamp at its bounds, maximum/minimum ties, pow with a zero base or exponent) and a few
smooth activations, plus one bfloat16 and one float16 case.
Run: /usr/bin/python3 scripts/gen_grad_elementwise.py  (writes tests/data/grad_elementwise.txt)

Each case stores the inputs `a` (and `b`, or the bool `cond` / `mask`), the upstream gradient
`g` (shaped like the output), the output `out` and the expected gradients `ga` (and `gb`)."""
import torch
import torch.nn.functional as F

from fixtures import Fixture

torch.manual_seed(1234)
fx = Fixture("grad_elementwise.txt", "gen_grad_elementwise.py")


def case(name, fn, a, b=None, extra=None):
    """Runs fn on leaf copies of a (and b), backprops a random g, stores everything."""
    la = a.clone().requires_grad_(True)
    lb = b.clone().requires_grad_(True) if b is not None and b.dtype.is_floating_point else b
    out = fn(la, lb) if b is not None else fn(la)
    g = torch.randn(out.shape).to(out.dtype)
    out.backward(g)
    fx.case(name)
    fx.tensor("a", a)
    if b is not None:
        fx.tensor("b", b)
    for k, v in (extra or {}).items():
        fx.tensor(k, v)
    fx.tensor("out", out)
    fx.tensor("g", g)
    fx.tensor("ga", la.grad)
    if lb is not None and lb.requires_grad:
        fx.tensor("gb", lb.grad)


f32 = torch.float32
kinks = torch.tensor([[-2.0, -0.5, 0.0, 0.0], [0.5, 1.0, 2.0, 3.0]])  # [2, 4] with zeros
smooth = torch.randn(3, 4) * 2

# ---- kinks of the unary ops -------------------------------------------------------------------
case("relu_at_zero", torch.relu, kinks)
case("abs_at_zero", torch.abs, kinks)
case("leaky_relu_at_zero", lambda a: F.leaky_relu(a, 0.1), kinks)
case("elu_at_zero", lambda a: F.elu(a, 1.5), kinks)
case("clamp_at_bounds", lambda a: torch.clamp(a, -0.5, 2.0), kinks)
case("clamp_min_at_bound", lambda a: torch.clamp_min(a, 0.0), kinks)
case("clamp_max_at_bound", lambda a: torch.clamp_max(a, 1.0), kinks)
case("floor_is_flat", torch.floor, smooth)
case("sign_is_flat", torch.sign, kinks)

# ---- smooth unary ops -------------------------------------------------------------------------
case("tanh", torch.tanh, smooth)
case("sigmoid", torch.sigmoid, smooth)
case("gelu", F.gelu, smooth)
case("gelu_tanh", lambda a: F.gelu(a, approximate="tanh"), smooth)
case("silu", F.silu, smooth)
case("softplus", lambda a: F.softplus(a, beta=2.0, threshold=3.0), smooth)
case("erf", torch.erf, smooth)
pos = torch.rand(3, 4) * 3 + 0.1
case("rsqrt", torch.rsqrt, pos)
case("log1p", torch.log1p, pos)

# ---- binary ops: ties, zeros, broadcasting ----------------------------------------------------
ta = torch.tensor([[1.0, 2.0, 3.0, 4.0], [0.0, -1.0, 5.0, 2.0]])
tb = torch.tensor([1.0, 3.0, 3.0, 0.0])  # [4] broadcasts over rows; ties at (0,0), (0,2)
case("maximum_ties", torch.maximum, ta, tb)
case("minimum_ties", torch.minimum, ta, tb)
base = torch.tensor([[0.0, 0.0, 0.0, 2.0], [1.5, 0.0, 3.0, 0.5]])
expo = torch.tensor([[0.0, 2.0, 0.5, 0.0], [2.0, 1.0, -1.0, 3.0]])
case("pow_zero_base_and_exponent", torch.pow, base, expo)
case("pow_scalar_exponent", lambda a: torch.pow(a, 3.0), kinks)
case("pow_scalar_zero_exponent", lambda a: torch.pow(a, 0.0), kinks)
case("rpow_zero_base", lambda a: torch.pow(0.0, a), kinks)
case("rpow", lambda a: torch.pow(2.5, a), smooth)
num = torch.tensor([[5.5, -5.5, 7.0], [3.0, -2.0, 9.25]])
den = torch.tensor([[2.0], [-1.5]])  # [2, 1]
case("remainder_broadcast", torch.remainder, num, den)
case("maximum_scalar_ties", lambda a: torch.maximum(a, torch.tensor(0.0)), kinks)
case("minimum_scalar_ties", lambda a: torch.minimum(a, torch.tensor(0.0)), kinks)

# ---- NaN: takes the gradient in maximum, passes relu and elu, is cut by clamp -------------------
nan = float("nan")
na = torch.tensor([nan, 1.0, 2.0, 0.0])
nb = torch.tensor([1.0, nan, 2.0, nan])
case("maximum_nan", torch.maximum, na, nb)
case("relu_nan", torch.relu, na)
case("clamp_nan", lambda a: torch.clamp(a, -1.0, 1.0), na)
case("elu_nan", lambda a: F.elu(a, 1.5), na)

# ---- selection ---------------------------------------------------------------------------------
cond = torch.tensor([[True], [False], [True]])  # [3, 1]
wa = torch.randn(3, 4)
wb = torch.randn(4)
case("where_broadcast", lambda a, b: torch.where(cond, a, b), wa, wb, {"cond": cond})
mask = torch.tensor([True, False, False, True])
case("masked_fill_broadcast", lambda a: a.masked_fill(mask, 7.0), wa, None, {"mask": mask})

# ---- other dtypes -------------------------------------------------------------------------------
case("sigmoid_bf16", torch.sigmoid, smooth.to(torch.bfloat16))
case("mul_f16", lambda a, b: a * b, smooth.to(torch.float16), smooth.flip(0).to(torch.float16))
case("to_f64_from_f32", lambda a: a.to(torch.float64) * 3, smooth)

fx.write()
