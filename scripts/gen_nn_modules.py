"""Fixtures for tests/unit/test_nn_modules.c: PyTorch's state-dict names, shapes and parameter
counts for the models the C test builds, and forward outputs (and a few gradients) of modules
whose parameters are set by a formula both sides compute exactly.
Run: /usr/bin/python3 scripts/gen_nn_modules.py  (writes tests/data/nn_modules.txt)

State dicts are stored as one case per entry, "sd:<model>:<index>:<name>", holding the entry's
shape as an i64 tensor "shape" (the fixture format has no strings; the C test walks the cases in
order). Parameter counts are scalars "n" of case "count:<model>".

Deterministic weights (so the fixture stays small even for the CNN): parameter k (in
named_parameters order) of numel n and first dim d0 gets, at flat index i,
    ((i * 7919 + 13 * k) % 2001 - 1000) / 1000 * (1 / sqrt(n // d0))
computed in float64 and rounded once to float32 -- exact in both languages."""
import math

import torch
import torch.nn as nn

from fixtures import Fixture

torch.manual_seed(0)
fx = Fixture("nn_modules.txt", "gen_nn_modules.py")


def formula_weights(model):
    with torch.no_grad():
        for k, (name, p) in enumerate(model.named_parameters()):
            n = p.numel()
            d0 = p.shape[0] if p.dim() > 0 else 1
            bound = 1.0 / math.sqrt(max(1, n // d0))
            i = torch.arange(n, dtype=torch.int64)
            v = ((i * 7919 + 13 * k) % 2001 - 1000).to(torch.float64) / 1000.0 * bound
            p.copy_(v.reshape(p.shape).to(p.dtype))


def state_dict_cases(tag, model):
    for idx, (name, t) in enumerate(model.state_dict().items()):
        fx.case("sd:%s:%d:%s" % (tag, idx, name))
        fx.tensor("shape", torch.tensor(list(t.shape), dtype=torch.int64))
    fx.case("count:" + tag)
    fx.scalar("n", sum(p.numel() for p in model.parameters()))


def mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))


def cnn():
    return nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3),
                         nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(1600, 128), nn.ReLU(),
                         nn.Linear(128, 10))


def bn_model():
    return nn.Sequential(nn.Conv2d(3, 4, 3, bias=False), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.Flatten(), nn.Linear(16, 5), nn.BatchNorm1d(5))


class Net(nn.Module):
    """The C test's custom module: children 'features' and 'head', an own parameter 'scale'
    registered before them and a buffer 'steps'."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(3))
        self.register_buffer("steps", torch.zeros(1))
        self.features = nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.LayerNorm(3))
        self.head = nn.ModuleList([nn.Linear(3, 2), nn.Linear(2, 2, bias=False)])


# ---- state dicts ------------------------------------------------------------------------------
state_dict_cases("mlp", mlp())
state_dict_cases("cnn", cnn())
state_dict_cases("bn", bn_model())
state_dict_cases("lstm", nn.LSTM(5, 4, num_layers=2))
state_dict_cases("gru", nn.GRU(3, 6, bias=False))
state_dict_cases("net", Net())
state_dict_cases("norms", nn.Sequential(nn.GroupNorm(2, 4), nn.LayerNorm([2, 3]),
                                        nn.Embedding(7, 3), nn.ConvTranspose2d(4, 6, 3, groups=2),
                                        nn.Conv1d(2, 4, 5, bias=False)))


def forward_case(name, model, x, **extra):
    formula_weights(model)
    fx.case(name)
    fx.tensor("x", x)
    y = model(x)
    fx.tensor("y", y)
    for k, v in extra.items():
        fx.tensor(k, v)


# ---- forward outputs with formula weights -------------------------------------------------------
forward_case("linear", nn.Linear(4, 3), torch.randn(2, 5, 4))
forward_case("linear_nobias", nn.Linear(4, 3, bias=False), torch.randn(6, 4))
forward_case("conv2d_stride_pad", nn.Conv2d(2, 4, 3, stride=2, padding=1), torch.randn(2, 2, 7, 7))
forward_case("conv2d_groups_dilation", nn.Conv2d(4, 6, 3, dilation=2, groups=2),
             torch.randn(1, 4, 8, 8))
forward_case("conv2d_same", nn.Conv2d(2, 3, 3, padding="same"), torch.randn(2, 2, 5, 5))
forward_case("conv2d_unbatched", nn.Conv2d(2, 3, 3), torch.randn(2, 5, 5))
forward_case("conv1d", nn.Conv1d(2, 4, 3, padding=1), torch.randn(2, 2, 6))
forward_case("conv_transpose2d", nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1,
                                                    output_padding=1), torch.randn(1, 4, 3, 3))
forward_case("cnn", cnn(), torch.randn(2, 1, 28, 28))
forward_case("mlp", mlp(), torch.randn(3, 1, 28, 28))
forward_case("layernorm", nn.LayerNorm([2, 3]), torch.randn(4, 2, 3))
forward_case("groupnorm", nn.GroupNorm(2, 4), torch.randn(2, 4, 3))


def rmsnorm_reference(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


x = torch.randn(3, 5)
w = torch.ones(5)
fx.case("rmsnorm")
fx.tensor("x", x)
fx.tensor("y", rmsnorm_reference(x, w, torch.finfo(torch.float32).eps))

# BatchNorm: two training steps update the running statistics, then eval uses them.
for tag, model, shape in [("batchnorm2d", nn.BatchNorm2d(3), (4, 3, 2, 2)),
                          ("batchnorm1d", nn.BatchNorm1d(3), (6, 3)),
                          ("batchnorm1d_cumulative", nn.BatchNorm1d(3, momentum=None), (5, 3, 2))]:
    formula_weights(model)
    x1, x2, x3 = torch.randn(*shape), torch.randn(*shape), torch.randn(*shape)
    fx.case(tag)
    fx.tensor("x1", x1)
    fx.tensor("x2", x2)
    fx.tensor("x3", x3)
    fx.tensor("y1", model(x1))
    fx.tensor("y2", model(x2))
    fx.tensor("running_mean", model.running_mean)
    fx.tensor("running_var", model.running_var)
    fx.tensor("num_batches_tracked", model.num_batches_tracked)
    model.eval()
    fx.tensor("y_eval", model(x3))

# LSTM / GRU: outputs, final states and (LSTM) gradients of sum(out) + sum(h_n) + sum(c_n).
lstm = nn.LSTM(3, 4, num_layers=2, batch_first=True)
formula_weights(lstm)
x = torch.randn(2, 5, 3, requires_grad=True)
h0, c0 = torch.randn(2, 2, 4), torch.randn(2, 2, 4)
out, (hn, cn) = lstm(x, (h0, c0))
(out.sum() + hn.sum() + cn.sum()).backward()
fx.case("lstm")
for k, v in dict(x=x, h0=h0, c0=c0, out=out, hn=hn, cn=cn, grad_x=x.grad,
                 grad_weight_ih_l0=lstm.weight_ih_l0.grad,
                 grad_bias_hh_l1=lstm.bias_hh_l1.grad).items():
    fx.tensor(k, v)
out0, (hn0, cn0) = lstm(x.detach())
fx.tensor("out_zero_state", out0)

gru = nn.GRU(3, 4, num_layers=2)
formula_weights(gru)
x = torch.randn(5, 2, 3)
out, hn = gru(x)
fx.case("gru")
fx.tensor("x", x)
fx.tensor("out", out)
fx.tensor("hn", hn)

gru1 = nn.GRU(3, 4, bias=False)
formula_weights(gru1)
x, h0 = torch.randn(4, 3), torch.randn(1, 4)
out, hn = gru1(x, h0)
fx.case("gru_unbatched_nobias")
fx.tensor("x", x)
fx.tensor("h0", h0)
fx.tensor("out", out)
fx.tensor("hn", hn)

fx.write()
