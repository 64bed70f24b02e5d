"""Fixtures for tests/unit/test_core.c: creation ops and view semantics, from PyTorch.
Run: /usr/bin/python3 scripts/gen_core.py  (writes tests/data/core.txt)"""
import torch

from fixtures import Fixture

fx = Fixture("core.txt", "gen_core.py")

for name, t in [
    ("arange_int", torch.arange(0, 10, 3)),
    ("arange_f32", torch.arange(-1, 1, 0.25, dtype=torch.float32)),
    ("arange_f32_tenth", torch.arange(0, 1, 0.1, dtype=torch.float32)),
    ("arange_f64_neg", torch.arange(5, -5, -1.5, dtype=torch.float64)),
    ("arange_i32", torch.arange(-3, 4, 2, dtype=torch.int32)),
    ("linspace_f32", torch.linspace(0, 1, 7)),
    ("linspace_f64", torch.linspace(-5, 5, 4, dtype=torch.float64)),
    ("linspace_one", torch.linspace(3, 9, 1)),
    ("linspace_i64", torch.linspace(0, 10, 4, dtype=torch.int64)),
    ("linspace_f16", torch.linspace(-1, 1, 9, dtype=torch.float16)),
    ("eye_3x3", torch.eye(3)),
    ("eye_2x4_i32", torch.eye(2, 4, dtype=torch.int32)),
    ("eye_4x2_bool", torch.eye(4, 2, dtype=torch.bool)),
]:
    fx.case(name)
    fx.tensor("out", t)

# view semantics: a 2x3x4 arange, then views, each written out contiguous
x = torch.arange(24, dtype=torch.float32).reshape(2, 3, 4)
views = {
    "transpose_0_2": x.transpose(0, 2),
    "permute_2_0_1": x.permute(2, 0, 1),
    "slice_step2": x[:, :, 1::2],
    "slice_neg": x[:, -2:, :],
    "narrow_1_1_2": x.narrow(1, 1, 2),
    "select_1_2": x.select(1, 2),
    "reshape_t_6x4": x.transpose(0, 1).reshape(6, 4),
    "flatten_1_2": x.flatten(1, 2),
    "unsqueeze_neg1": x.unsqueeze(-1),
    "expand_2x2x3x4": x[0].expand(2, 3, 4),
    "squeeze_all": x[:, 1:2, :1].squeeze(),
}
fx.case("views")
fx.tensor("x", x)
for k, v in views.items():
    fx.tensor(k, v)
fx.write()
