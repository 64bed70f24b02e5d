"""Fixtures for tests/unit/test_ce_rows.c: the cross-entropy row kernels of
bn_linear_cross_entropy (backend_nn.h: ce_rows_forward / ce_rows_backward) against PyTorch.
Each case holds logits z (R, V), class indices t (R), the label smoothing eps and per-row output
gradients gr (R); torch gives lse = logsumexp(z, 1) (also checked against log_softmax), the
target's logit, the row sum, and dz = d/dz sum_r gr_r cross_entropy(z, t, label_smoothing=eps)_r
through autograd. z is drawn in float64 and rounded to bfloat16 values, so the f64, f32 and bf16
kernels all see the same logits; the references are computed in float64.
Shapes: V from 1 to 4099 (several not a multiple of 8), rows of large-magnitude logits (+-300,
and one far above the rest), a row with -inf logits (eps = 0 there: torch's smoothed loss of a
-inf logit is infinite).
Run: /usr/bin/python3 scripts/gen_ce_rows.py  (writes tests/data/ce_rows.txt)"""
import torch
import torch.nn.functional as F

from fixtures import Fixture

torch.manual_seed(0)
fx = Fixture("ce_rows.txt", "gen_ce_rows.py")
f64 = torch.float64


def logits(R, V, scale):
    return (torch.randn(R, V, dtype=f64) * scale).to(torch.bfloat16).to(f64)


def write_case(name, z, eps, t=None):
    R, V = z.shape
    if t is None:
        t = torch.randint(0, V, (R,), dtype=torch.int64)
    gr = torch.randn(R, dtype=f64)
    zl = z.clone().requires_grad_(True)
    loss = F.cross_entropy(zl, t, reduction="none", label_smoothing=eps)
    (loss * gr).sum().backward()
    lse = torch.logsumexp(z, 1)
    # the same statistic from log_softmax: z_c - log_softmax(z)_c for any finite z_c
    ls = F.log_softmax(z, 1)
    c = torch.argmax(z, 1, keepdim=True)  # a finite logit of each row
    assert torch.allclose((z.gather(1, c) - ls.gather(1, c)).squeeze(1), lse, rtol=1e-13,
                          atol=1e-13)
    fx.case(name)
    fx.tensor("z", z)
    fx.tensor("t", t)
    fx.scalar("eps", eps)
    fx.tensor("gr", gr)
    fx.tensor("lse", lse)
    fx.tensor("zt", z.gather(1, t.unsqueeze(1)).squeeze(1))
    fx.tensor("zsum", z.sum(1))
    fx.tensor("dz", zl.grad)


write_case("one", logits(1, 1, 1.0), 0.0)
write_case("tiny", logits(3, 7, 2.0), 0.1)
write_case("odd", logits(5, 13, 3.0), 0.0)
write_case("vec", logits(4, 64, 1.0), 0.2)
write_case("mid", logits(3, 1000, 4.0), 0.1)
write_case("not8", logits(3, 1031, 2.0), 0.05)
write_case("wide", logits(2, 4099, 3.0), 0.1)
write_case("large", logits(4, 257, 300.0), 0.1)
z = logits(3, 515, 2.0)
z[:, 100] = 2000.0  # one logit far above the rest: softmax ~ one-hot
write_case("peak", z, 0.0)
z = logits(4, 97, 2.0)
z[:, 10:30] = float("-inf")  # masked classes, none of them a target
write_case("masked", z, 0.0, torch.randint(30, 97, (4,), dtype=torch.int64))
fx.write()
