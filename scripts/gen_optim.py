"""Fixtures for tests/unit/test_optim.c and test_sched.c: torch.optim trajectories and
lr_scheduler sequences (torch 1.13, single-tensor optimizer implementations).

Run with Debian's PyTorch:  /usr/bin/python3 scripts/gen_optim.py
Writes tests/data/optim.txt and tests/data/optim_sched.txt.

Optimizer problem: two parameters w0 (5, 3) and w1 (3,) and the quadratic loss
    L = sum(a0 * (w0 - c0)**2) / 2 + sum(a1 * (w1 - c1)**2) / 2
whose gradient a * (w - c) the C test computes the same way (one subtraction, one
multiplication, in the parameter dtype). 'traj' holds both parameters, flattened and
concatenated, after each of the first 20 steps: shape (20, 18).
"""
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixtures import Fixture  # noqa: E402

STEPS = 20

OPTIMS = [
    ("sgd", torch.optim.SGD, dict(lr=0.1)),
    ("sgd_momentum", torch.optim.SGD, dict(lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.01)),
    ("sgd_nesterov", torch.optim.SGD, dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3)),
    ("sgd_maximize", torch.optim.SGD, dict(lr=0.01, momentum=0.5, maximize=True)),
    ("adam", torch.optim.Adam, dict(lr=0.01)),
    ("adam_wd_amsgrad", torch.optim.Adam, dict(lr=0.02, betas=(0.8, 0.99), weight_decay=0.1, amsgrad=True)),
    ("adam_maximize", torch.optim.Adam, dict(lr=0.01, maximize=True)),
    ("adamw", torch.optim.AdamW, dict(lr=0.01)),
    ("adamw_wd", torch.optim.AdamW, dict(lr=0.05, weight_decay=0.1, eps=1e-6)),
    ("rmsprop", torch.optim.RMSprop, dict(lr=0.01)),
    ("rmsprop_centered", torch.optim.RMSprop, dict(lr=0.01, alpha=0.9, centered=True, momentum=0.5, weight_decay=0.01)),
    ("adagrad", torch.optim.Adagrad, dict(lr=0.1)),
    ("adagrad_decay", torch.optim.Adagrad, dict(lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1, weight_decay=0.01)),
    ("adadelta", torch.optim.Adadelta, dict()),
    ("adadelta_wd", torch.optim.Adadelta, dict(lr=0.5, rho=0.8, weight_decay=0.05)),
    ("nadam", torch.optim.NAdam, dict(lr=0.01)),
    ("nadam_wd", torch.optim.NAdam, dict(lr=0.01, weight_decay=0.01, momentum_decay=0.01)),
]


def optim_cases(fx):
    g = torch.Generator().manual_seed(3)
    w0 = torch.randn(5, 3, generator=g, dtype=torch.float64)
    w1 = torch.randn(3, generator=g, dtype=torch.float64)
    a0 = torch.rand(5, 3, generator=g, dtype=torch.float64) * 2 + 0.1
    a1 = torch.rand(3, generator=g, dtype=torch.float64) * 2 + 0.1
    c0 = torch.randn(5, 3, generator=g, dtype=torch.float64)
    c1 = torch.randn(3, generator=g, dtype=torch.float64)
    for dt, tag in ((torch.float32, "f32"), (torch.float64, "f64")):
        fx.case("problem_" + tag)
        for name, t in (("w0", w0), ("w1", w1), ("a0", a0), ("a1", a1), ("c0", c0), ("c1", c1)):
            fx.tensor(name, t.to(dt))
        for name, cls, kw in OPTIMS:
            p0 = w0.to(dt).clone().requires_grad_(True)
            p1 = w1.to(dt).clone().requires_grad_(True)
            opt = cls([p0, p1], foreach=False, **kw)
            traj = []
            for _ in range(STEPS):
                with torch.no_grad():
                    p0.grad = a0.to(dt) * (p0 - c0.to(dt))
                    p1.grad = a1.to(dt) * (p1 - c1.to(dt))
                opt.step()
                traj.append(torch.cat([p0.detach().reshape(-1), p1.detach().reshape(-1)]))
            fx.case("%s_%s" % (name, tag))
            fx.tensor("traj", torch.stack(traj))


def rosenbrock(x):
    return (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2


def lbfgs_cases(fx):
    for dt, tag in ((torch.float64, "f64"), (torch.float32, "f32")):
        for ls, name in (("strong_wolfe", "lbfgs_wolfe"), (None, "lbfgs_plain")):
            x = torch.tensor([-1.5, 2.0], dtype=dt, requires_grad=True)
            kw = dict(lr=1, max_iter=20, line_search_fn=ls) if ls else dict(lr=0.1, max_iter=10)
            opt = torch.optim.LBFGS([x], history_size=10, **kw)

            def closure():
                opt.zero_grad()
                loss = rosenbrock(x)
                loss.backward()
                return loss

            xs, losses = [], []
            for _ in range(6):
                losses.append(float(opt.step(closure)))
                xs.append(x.detach().clone())
            fx.case("%s_%s" % (name, tag))
            fx.tensor("x", torch.stack(xs))
            fx.tensor("loss", torch.tensor(losses, dtype=torch.float64))


def sched_cases(fx):
    N = 60

    def run(make, metrics=None):
        p = torch.zeros(1, requires_grad=True)
        opt = torch.optim.SGD([p], lr=0.1)
        s = make(opt)
        lrs = [opt.param_groups[0]["lr"]]
        for i in range(N - 1):
            opt.step()
            if metrics is None:
                s.step()
            else:
                s.step(metrics[i])
            lrs.append(opt.param_groups[0]["lr"])
        return torch.tensor(lrs, dtype=torch.float64)

    S = torch.optim.lr_scheduler
    fx.case("step_lr")
    fx.tensor("lr", run(lambda o: S.StepLR(o, step_size=7, gamma=0.5)))
    fx.case("multistep_lr")
    fx.tensor("lr", run(lambda o: S.MultiStepLR(o, milestones=[5, 20, 20, 41], gamma=0.3)))
    fx.case("exponential_lr")
    fx.tensor("lr", run(lambda o: S.ExponentialLR(o, gamma=0.95)))
    fx.case("cosine_lr")
    fx.tensor("lr", run(lambda o: S.CosineAnnealingLR(o, T_max=17, eta_min=0.001)))
    fx.case("one_cycle")
    fx.tensor("lr", run(lambda o: S.OneCycleLR(o, max_lr=0.5, total_steps=N, cycle_momentum=False)))
    fx.case("one_cycle_three_phase_linear")
    fx.tensor("lr", run(lambda o: S.OneCycleLR(o, max_lr=0.5, total_steps=N + 5, pct_start=0.25,
                                                div_factor=10, final_div_factor=100,
                                                three_phase=True, anneal_strategy="linear",
                                                cycle_momentum=False)))

    warmup, total, min_lr, base = 8, 50, 0.002, 0.1

    def warmup_cosine(step):
        if step < warmup:
            return step / warmup
        progress = min(1.0, (step - warmup) / (total - warmup))
        return (min_lr + (base - min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))) / base

    fx.case("warmup_cosine")
    fx.tensor("lr", run(lambda o: S.LambdaLR(o, warmup_cosine)))

    g = torch.Generator().manual_seed(5)
    metrics = (1.0 / torch.arange(1, N + 1, dtype=torch.float64)) + 0.05 * torch.rand(N, generator=g, dtype=torch.float64)
    metrics[25:] = metrics[25]  # a plateau
    fx.case("plateau_min")
    fx.tensor("metric", metrics)
    fx.tensor("lr", run(lambda o: S.ReduceLROnPlateau(o, mode="min", factor=0.5, patience=3,
                                                       cooldown=2, min_lr=0.004), metrics.tolist()))
    fx.case("plateau_max")
    fx.tensor("metric", -metrics)
    fx.tensor("lr", run(lambda o: S.ReduceLROnPlateau(o, mode="max", factor=0.3, patience=1,
                                                       threshold=0.01), (-metrics).tolist()))


def main():
    fx = Fixture("optim.txt", "gen_optim.py")
    optim_cases(fx)
    lbfgs_cases(fx)
    fx.write()
    fs = Fixture("optim_sched.txt", "gen_optim.py")
    sched_cases(fs)
    fs.write()


if __name__ == "__main__":
    main()
