"""Fixtures for tests/unit/test_nn_functional.c: F.linear, F.batch_norm (training, eval and the
running statistics), F.layer_norm, RMS norm (written out: torch 1.13 has none), F.group_norm
and F.embedding -- outputs and the gradients of sum(out * gout) for every input, in f32, plus
f64 and f16 forward cases.
Run: /usr/bin/python3 scripts/gen_nn_functional.py  (writes tests/data/nn_functional.txt)

Each case stores the contiguous tensors the C test starts from (x, w, b, weight, bias, indices,
or x_base when the C test makes the same view this script does), the upstream gradient gout, the
output out and the gradients g<name>. f16 results are computed the way born computes them: in
f32, rounded once."""
import torch
import torch.nn.functional as F

from fixtures import Fixture

torch.manual_seed(0)
fx = Fixture("nn_functional.txt", "gen_nn_functional.py")


def randn(*shape, dtype=torch.float32):
    return torch.randn(*shape, dtype=dtype)


def write_case(name, fn, inputs, views=None):
    """inputs: name -> leaf tensor (written); views: name -> function making the view the C
    test makes of that leaf before calling fn."""
    fx.case(name)
    leaves = {k: v.clone().requires_grad_(v.is_floating_point()) for k, v in inputs.items()}
    args = {k: (views[k](v) if views and k in views else v) for k, v in leaves.items()}
    out = fn(**args)
    gout = torch.randn_like(out)
    (out * gout).sum().backward()
    for k, v in inputs.items():
        fx.tensor(k, v)
    fx.tensor("gout", gout)
    fx.tensor("out", out)
    for k, v in leaves.items():
        if v.grad is not None:
            fx.tensor("g" + k, v.grad)


# ---- linear ------------------------------------------------------------------------------------
write_case("linear_3d", lambda x, w, b: F.linear(x, w, b),
           dict(x=randn(2, 3, 4), w=randn(5, 4), b=randn(5)))
write_case("linear_1d_no_bias", lambda x, w: F.linear(x, w), dict(x=randn(4), w=randn(3, 4)))
write_case("linear_transposed_x", lambda x_base, w, b: F.linear(x_base, w, b),
           dict(x_base=randn(4, 3), w=randn(2, 4), b=randn(2)), views=dict(x_base=lambda t: t.t()))


# ---- layer norm ----------------------------------------------------------------------------------
write_case("layer_norm_affine", lambda x, weight, bias: F.layer_norm(x, (4, 5), weight, bias, 1e-5),
           dict(x=randn(2, 3, 4, 5), weight=randn(4, 5), bias=randn(4, 5)))
write_case("layer_norm_plain", lambda x: F.layer_norm(x, (6,), None, None, 1e-5),
           dict(x=randn(3, 6)))
write_case("layer_norm_transposed_x",
           lambda x_base, weight, bias: F.layer_norm(x_base, (3,), weight, bias, 1e-5),
           dict(x_base=randn(3, 4), weight=randn(3), bias=randn(3)),
           views=dict(x_base=lambda t: t.t()))
# large offset and scale: a one-pass E[x^2] - E[x]^2 would lose everything here
write_case("layer_norm_large_values", lambda x: F.layer_norm(x, (8,), None, None, 1e-5),
           dict(x=randn(2, 8) * 10.0 + 1e4))
fx.case("layer_norm_f64")
x64, w64 = randn(3, 5, dtype=torch.float64), randn(5, dtype=torch.float64)
fx.tensor("x", x64)
fx.tensor("weight", w64)
fx.tensor("out", F.layer_norm(x64, (5,), w64, None, 1e-5))
fx.case("layer_norm_f16")
x16 = randn(3, 5).half()
fx.tensor("x", x16)
fx.tensor("out", F.layer_norm(x16.float(), (5,), None, None, 1e-5).half())


# ---- RMS norm: x * rsqrt(mean(x^2) + eps) * weight -------------------------------------------------
def rms_norm(x, nd, weight, eps):
    dims = tuple(range(x.dim() - nd, x.dim()))
    y = x * torch.rsqrt(x.pow(2).mean(dims, keepdim=True) + eps)
    return y * weight if weight is not None else y


write_case("rms_norm_affine", lambda x, weight: rms_norm(x, 1, weight, 1e-6),
           dict(x=randn(3, 6), weight=randn(6)))
write_case("rms_norm_two_dims", lambda x: rms_norm(x, 2, None, 1e-6), dict(x=randn(2, 3, 4)))


# ---- group norm ---------------------------------------------------------------------------------------
write_case("group_norm_4d", lambda x, weight, bias: F.group_norm(x, 3, weight, bias, 1e-5),
           dict(x=randn(2, 6, 3, 2), weight=randn(6), bias=randn(6)))
write_case("group_norm_2d_plain", lambda x: F.group_norm(x, 2, None, None, 1e-5),
           dict(x=randn(4, 6)))


# ---- batch norm -----------------------------------------------------------------------------------------
for name, shape in [("batch_norm_train_3d", (4, 3, 5)), ("batch_norm_train_2d", (6, 3)),
                    ("batch_norm_train_4d", (2, 3, 2, 3))]:
    write_case(name, lambda x, weight, bias: F.batch_norm(x, None, None, weight, bias, True, 0.1,
                                                          1e-5),
               dict(x=randn(*shape), weight=randn(3), bias=randn(3)))
rm, rv = randn(3), torch.rand(3) + 0.5
write_case("batch_norm_eval", lambda x, weight, bias: F.batch_norm(x, rm, rv, weight, bias, False,
                                                                   0.1, 1e-5),
           dict(x=randn(4, 3, 2), weight=randn(3), bias=randn(3)))
fx.tensor("running_mean", rm)
fx.tensor("running_var", rv)

# running statistics after three training calls (momentum 0.2), starting from zeros / ones
fx.case("batch_norm_running_stats")
rm, rv = torch.zeros(3), torch.ones(3)
for k in range(3):
    x = randn(5, 3, 4) * (k + 1) + k
    fx.tensor("x%d" % k, x)
    out = F.batch_norm(x, rm, rv, None, None, True, 0.2, 1e-5)
fx.tensor("out", out)
fx.tensor("running_mean", rm)
fx.tensor("running_var", rv)


# ---- embedding ------------------------------------------------------------------------------------------
write_case("embedding_2d_indices", lambda weight, indices: F.embedding(indices, weight),
           dict(weight=randn(10, 4), indices=torch.tensor([[1, 3, 1], [9, 0, 3]])))
write_case("embedding_i32_indices", lambda weight, indices: F.embedding(indices.long(), weight),
           dict(weight=randn(5, 3), indices=torch.tensor([4, 4, 2, 0], dtype=torch.int32)))

fx.write()
