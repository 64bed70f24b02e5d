"""Fixtures for tests/unit/test_loss.c: values and input gradients of torch.nn.functional's
losses (torch 1.13) for the option combinations that matter.

Run with Debian's PyTorch:  /usr/bin/python3 scripts/gen_loss.py   (writes tests/data/loss.txt)

Every case stores its options as scalars (kind, reduction, beta, smoothing, use_ignore,
ignore_index, log_target, batchmean, transposed, target_grad, has_weight, has_pos_weight,
has_gx), the inputs, the loss 'out', the gradient
'gout' fed to backward and the resulting gradient 'gx' of the input leaf (and 'gt' of the
target where it requires grad). transposed = 1: the leaf 'x' is stored as (W, H) and the loss
is taken of x.T (a non-contiguous view), as the C test does with bn_transpose.
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixtures import Fixture  # noqa: E402

KINDS = {"mse": 0, "l1": 1, "smooth_l1": 2, "huber": 3, "bce": 4, "bce_logits": 5, "kl": 6,
         "ce": 7, "nll": 8}
REDUCTIONS = {"mean": 0, "sum": 1, "none": 2}

g = torch.Generator().manual_seed(11)


def randn(*shape, dt=torch.float32, scale=1.0):
    return (torch.randn(*shape, generator=g, dtype=torch.float64) * scale).to(dt)


def rand(*shape, dt=torch.float32):
    return torch.rand(*shape, generator=g, dtype=torch.float64).to(dt)


def emit(fx, name, kind, x, target, red="mean", beta=0.0, smoothing=0.0, ignore=None,
         log_target=False, batchmean=False, weight=None, pos_weight=None, transposed=False,
         target_grad=False):
    fx.case(name)
    leaf = x.clone().requires_grad_(x.dtype in (torch.float32, torch.float64))
    xin = leaf.t() if transposed else leaf
    t = target.clone()
    if target_grad:
        t.requires_grad_(True)
    if kind == "mse":
        out = F.mse_loss(xin, t, reduction=red)
    elif kind == "l1":
        out = F.l1_loss(xin, t, reduction=red)
    elif kind == "smooth_l1":
        out = F.smooth_l1_loss(xin, t, reduction=red, beta=beta or 1.0)
    elif kind == "huber":
        out = F.huber_loss(xin, t, reduction=red, delta=beta or 1.0)
    elif kind == "bce":
        out = F.binary_cross_entropy(xin, t, weight=weight, reduction=red)
    elif kind == "bce_logits":
        out = F.binary_cross_entropy_with_logits(xin, t, weight=weight, pos_weight=pos_weight,
                                                 reduction=red)
    elif kind == "kl":
        out = F.kl_div(xin, t, reduction="batchmean" if batchmean else red, log_target=log_target)
    elif kind == "ce":
        out = F.cross_entropy(xin, t, weight=weight, reduction=red, label_smoothing=smoothing,
                              ignore_index=-100 if ignore is None else ignore)
    elif kind == "nll":
        out = F.nll_loss(xin, t, weight=weight, reduction=red,
                         ignore_index=-100 if ignore is None else ignore)
    gout = randn(*out.shape, dt=out.dtype) if out.dim() else torch.tensor(1.0, dtype=out.dtype)
    if leaf.requires_grad:
        out.backward(gout)
    fx.scalar("kind", KINDS[kind])
    fx.scalar("reduction", REDUCTIONS["sum" if batchmean else red])
    fx.scalar("beta", beta)
    fx.scalar("smoothing", smoothing)
    fx.scalar("use_ignore", 0 if ignore is None else 1)
    fx.scalar("ignore_index", 0 if ignore is None else ignore)
    fx.scalar("log_target", 1 if log_target else 0)
    fx.scalar("batchmean", 1 if batchmean else 0)
    fx.scalar("transposed", 1 if transposed else 0)
    fx.scalar("target_grad", 1 if target_grad else 0)
    fx.scalar("has_weight", 0 if weight is None else 1)
    fx.scalar("has_pos_weight", 0 if pos_weight is None else 1)
    fx.scalar("has_gx", 1 if leaf.requires_grad else 0)
    fx.tensor("x", x)
    fx.tensor("target", target)
    if weight is not None:
        fx.tensor("weight", weight)
    if pos_weight is not None:
        fx.tensor("pos_weight", pos_weight)
    fx.tensor("out", out)
    fx.tensor("gout", gout)
    if leaf.requires_grad:
        fx.tensor("gx", leaf.grad)
    if target_grad:
        fx.tensor("gt", t.grad)


def regression(fx):
    for dt, tag in ((torch.float32, "f32"), (torch.float64, "f64")):
        x, t = randn(3, 4, dt=dt, scale=2), randn(3, 4, dt=dt, scale=2)
        for kind in ("mse", "l1", "smooth_l1", "huber"):
            for red in ("mean", "sum", "none"):
                emit(fx, "%s_%s_%s" % (kind, red, tag), kind, x, t, red=red)
    x, t = randn(3, 4, scale=2), randn(3, 4, scale=2)
    emit(fx, "smooth_l1_beta_f32", "smooth_l1", x, t, beta=0.5)
    emit(fx, "huber_delta_f32", "huber", x, t, red="sum", beta=2.5)
    emit(fx, "mse_broadcast_target_f32", "mse", x, randn(4), red="sum")
    emit(fx, "l1_transposed_f32", "l1", randn(4, 3), t, red="none", transposed=True)
    emit(fx, "mse_target_grad_f32", "mse", x, t, target_grad=True)
    emit(fx, "huber_target_grad_f32", "huber", x, t, red="none", target_grad=True)
    # torch 1.13's CPU kernels: mse has f16 but no bf16, cross entropy bf16 but no f16
    emit(fx, "mse_f16", "mse", randn(3, 4, dt=torch.float16), randn(3, 4, dt=torch.float16))
    emit(fx, "mse_empty_sum_f32", "mse", randn(0, 4), randn(0, 4), red="sum")


def binary(fx):
    p = rand(3, 4)
    p[0, 0], p[1, 1] = 0.0, 1.0  # log clamped at -100
    t = rand(3, 4)
    emit(fx, "bce_clamped_logs_sum_f32", "bce", p, t, red="sum")
    p = rand(3, 4) * 0.9 + 0.05
    for red in ("mean", "sum", "none"):
        emit(fx, "bce_%s_f32" % red, "bce", p, t, red=red)
    emit(fx, "bce_weight_f32", "bce", p, t, weight=rand(4) + 0.5)
    emit(fx, "bce_f64", "bce", p.double(), t.double(), red="none")
    x = randn(3, 4, scale=3)
    x[0, 0], x[1, 2], x[2, 3] = 60.0, -60.0, -200.0  # stable for large logits
    tb = (rand(3, 4) > 0.5).float()
    for red in ("mean", "sum", "none"):
        emit(fx, "bce_logits_%s_f32" % red, "bce_logits", x, tb, red=red)
    emit(fx, "bce_logits_pos_weight_f32", "bce_logits", x, tb, pos_weight=rand(4) * 3,
         weight=rand(3, 1) + 0.5)
    emit(fx, "bce_logits_target_grad_f32", "bce_logits", randn(3, 4), rand(3, 4),
         pos_weight=rand(4) * 3, red="sum", target_grad=True)
    emit(fx, "bce_logits_transposed_f64", "bce_logits", randn(4, 3, dt=torch.float64),
         rand(3, 4, dt=torch.float64), red="none", transposed=True)


def kl(fx):
    x = F.log_softmax(randn(3, 5), dim=1)
    q = F.softmax(randn(3, 5), dim=1)
    q[0, 1] = 0.0
    for red in ("mean", "sum", "none"):
        emit(fx, "kl_%s_f32" % red, "kl", x, q, red=red)
    emit(fx, "kl_batchmean_f32", "kl", x, q, batchmean=True)
    emit(fx, "kl_log_target_f32", "kl", x, F.log_softmax(randn(3, 5), dim=1), red="sum",
         log_target=True)
    emit(fx, "kl_target_grad_f64", "kl", x.double(), F.softmax(randn(3, 5), dim=1).double(),
         red="sum", target_grad=True)


def classification(fx):
    N, C = 6, 5
    x = randn(N, C, scale=2)
    t = torch.randint(0, C, (N,), generator=g)
    w = rand(C) + 0.2
    for red in ("mean", "sum", "none"):
        emit(fx, "ce_%s_f32" % red, "ce", x, t, red=red)
        emit(fx, "ce_weight_smooth_ignore_%s_f32" % red, "ce", x,
             torch.tensor([0, 2, 4, 2, 1, 3]), red=red, weight=w, smoothing=0.2, ignore=2)
        emit(fx, "nll_weight_ignore_%s_f32" % red, "nll", F.log_softmax(x, 1),
             torch.tensor([0, 2, 4, 2, 1, 3]), red=red, weight=w, ignore=2)
    emit(fx, "ce_smooth_f32", "ce", x, t, smoothing=0.1)
    emit(fx, "ce_smooth_ignore_f32", "ce", x, torch.tensor([0, 2, 4, 2, 1, 3]), smoothing=0.3,
         ignore=4)
    emit(fx, "ce_weight_f32", "ce", x, t, weight=w)
    emit(fx, "ce_large_logits_f32", "ce", randn(N, C, scale=1000), t)
    emit(fx, "ce_transposed_f32", "ce", randn(C, N), t, transposed=True)
    emit(fx, "ce_f64", "ce", x.double(), t, weight=w.double(), smoothing=0.1)
    emit(fx, "ce_spatial_f32", "ce", randn(2, C, 3, 2), torch.randint(0, C, (2, 3, 2), generator=g),
         red="none")
    emit(fx, "ce_spatial_weight_f32", "ce", randn(2, C, 3), torch.randint(0, C, (2, 3), generator=g),
         weight=w, smoothing=0.1)
    emit(fx, "ce_unbatched_f32", "ce", randn(C), torch.tensor(3))
    emit(fx, "ce_all_ignored_f32", "ce", x, torch.full((N,), 7), ignore=7)
    probs = F.softmax(randn(N, C), 1)
    for red in ("mean", "sum", "none"):
        emit(fx, "ce_probs_%s_f32" % red, "ce", x, probs, red=red)
    emit(fx, "ce_probs_weight_smooth_f32", "ce", x, probs, weight=w, smoothing=0.25)
    emit(fx, "ce_probs_target_grad_f64", "ce", x.double(), probs.double(), weight=w.double(),
         smoothing=0.1, target_grad=True)
    emit(fx, "ce_bf16", "ce", randn(N, C, dt=torch.bfloat16), t, red="sum")
    emit(fx, "nll_f32", "nll", F.log_softmax(x, 1), t)
    emit(fx, "nll_spatial_f32", "nll", F.log_softmax(randn(2, C, 3), 1),
         torch.randint(0, C, (2, 3), generator=g), red="sum")


def main():
    fx = Fixture("loss.txt", "gen_loss.py")
    regression(fx)
    binary(fx)
    kl(fx)
    classification(fx)
    fx.write()


if __name__ == "__main__":
    main()
