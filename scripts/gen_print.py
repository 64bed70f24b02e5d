"""Fixtures for tests/unit/test_print.c: PyTorch's repr() of tensors, for bn_to_string.
Run: /usr/bin/python3 scripts/gen_print.py  (writes tests/data/print.txt)

Each case stores the input tensor x (contiguous), an optional view applied to it before printing
("s view <code>", mirrored in C: 0 none, 1 transpose(0, 1), 2 every other element of the last
dim, 3 expand dim 0 from 1 to 4, 4 transpose(0, 1) then every other element of the last dim),
whether it requires grad ("s requires_grad 1"), and torch's repr as
    r <repr with backslash as \\\\ and newline as \\n>
"""
import math

import torch

from fixtures import Fixture

torch.manual_seed(0)
F32, F64, F16, BF16 = torch.float32, torch.float64, torch.float16, torch.bfloat16
I8, U8, I32, I64, BOOL = torch.int8, torch.uint8, torch.int32, torch.int64, torch.bool
nan, inf = math.nan, math.inf

VIEWS = {
    0: lambda x: x,
    1: lambda x: x.transpose(0, 1),
    2: lambda x: x[..., ::2],
    3: lambda x: x.expand(4, *x.shape[1:]),
    4: lambda x: x.transpose(0, 1)[..., ::2],
}

def edges_only(n, edges):
    """n int64 zeros with the 6 shown edge values set (keeps big summarised fixtures small)."""
    x = torch.zeros(n, dtype=I64)
    x[:3], x[-3:] = edges[:3], edges[3:]
    return x


CASES = [
    # floats: the three styles and the choice between them
    ("f32_int_mode_2x2", torch.tensor([[1.0, 2.0], [3.0, 4.0]])),
    ("f32_fixed", torch.tensor([0.5, -1.25, 3.14159265, 100.0])),
    ("f32_randn_3x4", torch.randn(3, 4)),
    ("f32_sci_ratio", torch.tensor([1e-3, 1.0, 10.5])),
    ("f32_sci_small", torch.tensor([1e-5, 2.5e-5])),
    ("f32_sci_large", torch.tensor([1.5e9, -2.0])),
    ("f32_int_mode_sci_ratio", torch.tensor([1.0, 10000.0])),
    ("f32_int_mode_sci_large", torch.tensor([2e8, 3e8])),
    ("f32_int_mode_1e8_stays", torch.tensor([1e8, 1e6])),
    ("f32_ratio_1000_not_sci", torch.tensor([0.1, 100.0])),
    ("f32_min_1e-4_not_sci", torch.tensor([1e-4, 0.5], dtype=F64).float()),
    ("f32_rounding", torch.tensor([0.00015, 9.99995, 123.45678, -0.99999])),
    ("f32_rounds_up_and_widens", torch.tensor([9.99999, 0.5])),
    ("f32_sci_rounds_to_next_power", torch.tensor([9.99999e-5, 1.0])),
    ("f32_one_element_1d", torch.tensor([2.5])),
    ("f32_nine_per_line", torch.arange(20, dtype=F32) + 0.5),
    ("f32_int_mode_negative_wide", torch.tensor([1.0, -1000.0, 25.0])),
    ("f32_nan_inf_mixed", torch.tensor([1.5, nan, inf, -inf, 0.0])),
    ("f32_nan_inf_int_mode", torch.tensor([[1.0, nan], [-inf, 20.0]])),
    ("f32_only_nonfinite", torch.tensor([nan, inf, -inf, 0.0])),
    ("f32_sci_with_nan", torch.tensor([1e-6, nan, -inf, 3.0])),
    ("f32_zeros", torch.zeros(2, 3)),
    ("f32_negative_zero_int", torch.tensor([-0.0, 0.0, 1.0])),
    ("f32_negative_zero_fixed", torch.tensor([-0.0, 1.5])),
    ("f32_negative_zero_sci", torch.tensor([-0.0, 1e-7])),
    ("f32_subnormal", torch.tensor([1e-40, 1.0])),
    ("f32_4d", torch.arange(24, dtype=F32).reshape(2, 2, 2, 3) / 4),
    ("f32_3d_blank_lines", torch.arange(12, dtype=F32).reshape(2, 3, 2)),
    ("f32_wrap_1d", torch.arange(30, dtype=F32) * 1.5),
    ("f32_wrap_2d", torch.randn(3, 15)),
    ("f32_wrap_sci", torch.randn(14) * 1e5),
    # other float dtypes
    ("f64_fixed", torch.tensor([1.0 / 3.0, -2.0 / 3.0, 1e-3], dtype=F64)),
    ("f64_sci_3digit_exp", torch.tensor([1e-300, 1e300], dtype=F64)),
    ("f64_int_mode", torch.tensor([[1.0, -2.0], [3.0, 4.0]], dtype=F64)),
    ("f64_suffix_wraps", torch.randn(10, dtype=F64)),
    ("f64_suffix_wraps_2d", torch.randn(2, 9, dtype=F64) * 10),
    ("f64_suffix_newline", torch.randn(7, dtype=F64)),
    ("f16_values", torch.tensor([0.1, -2.5, 65504.0, 6e-5], dtype=F16)),
    ("f16_fixed", torch.tensor([[0.1, 0.2], [0.3, -0.4]], dtype=F16)),
    ("f16_inf", torch.tensor([1.0, 70000.0, -70000.0], dtype=F32).half()),
    ("bf16_values", torch.tensor([0.1, 3.14159, -100.0, 1e20], dtype=BF16)),
    ("bf16_int_mode_sci", torch.tensor([256.0, 3e8], dtype=BF16)),
    ("f64_negative_zero_only", torch.tensor([-0.0], dtype=F64)),
    ("bf16_fixed", torch.tensor([1.5, 2.25, -0.125], dtype=BF16)),
    # 0-d
    ("scalar_f32", torch.tensor(3.5)),
    ("scalar_f32_int", torch.tensor(-2.0)),
    ("scalar_f32_sci", torch.tensor(1.25e-7)),
    ("scalar_f32_nan", torch.tensor(nan)),
    ("scalar_f64", torch.tensor(2.0 / 3.0, dtype=F64)),
    ("scalar_f16", torch.tensor(0.333, dtype=F16)),
    ("scalar_i64", torch.tensor(-7)),
    ("scalar_i32", torch.tensor(12, dtype=I32)),
    ("scalar_bool", torch.tensor(True)),
    # integers and bools
    ("i64_arange", torch.arange(10)),
    ("i64_negative_wide", torch.tensor([[1, -200], [30000, 4]])),
    ("i64_extremes", torch.tensor([-(2 ** 63), 2 ** 63 - 1, 0])),
    ("i32_values", torch.tensor([-5, 0, 2147483647], dtype=I32)),
    ("i32_suffix_newline", torch.tensor([-1, -2147483648, 5, 6, 7], dtype=I32)),
    ("i8_values", torch.tensor([-128, 127, 0, 5], dtype=I8)),
    ("u8_values", torch.tensor([[0, 255], [7, 128]], dtype=U8)),
    ("i64_wrap", torch.arange(40) * 1000),
    ("bool_mixed", torch.tensor([[True, False, True], [False, False, True]])),
    ("bool_all_true", torch.tensor([True, True])),
    ("i64_8d_narrow_lines", torch.tensor([-(2 ** 63), 2 ** 62, 5, -6, 7]).reshape(1, 1, 1, 1, 1, 1, 1, 5)),
    # empty
    ("empty_f32_1d", torch.zeros(0)),
    ("empty_f32_2d", torch.zeros(0, 3)),
    ("empty_i64_3d", torch.zeros(2, 0, 3, dtype=I64)),
    ("empty_i64_1d", torch.zeros(0, dtype=I64)),
    ("empty_bool", torch.zeros(0, 2, dtype=BOOL)),
    ("empty_f64", torch.zeros(0, dtype=F64)),
    ("empty_f16_2d", torch.zeros(3, 0, dtype=F16)),
    # summarised (more than 1000 elements)
    ("summary_i64_1d", torch.arange(2000)),
    ("summary_f32_1001", torch.arange(1001, dtype=F32) / 8),
    ("summary_f32_2d", torch.randn(32, 32)),
    ("summary_f32_3d", torch.arange(1200, dtype=F32).reshape(10, 10, 12)),
    ("summary_dim0_short", torch.arange(1200, dtype=F32).reshape(2, 600)),
    ("summary_dim1_short", torch.arange(1200, dtype=F32).reshape(600, 2)),
    ("summary_only_edges_choose_format", torch.cat([torch.ones(3), torch.full((1000,), 1e5), torch.ones(3) * 2])),
    ("summary_f16", torch.linspace(-3, 3, 1100, dtype=F32).half()),
    ("summary_bool", (torch.arange(1005) % 3 == 0)),
    ("summary_u8_wrapped_values", torch.arange(1200).to(U8)),
    ("summary_ellipsis_starts_line", edges_only(1001, torch.arange(6) * 10 ** 18 + 7)),
    ("exactly_1000_not_summarised", torch.arange(1000).reshape(10, 100)),
]

# views applied before printing: (name, x, view code)
VIEW_CASES = [
    ("view_transpose", torch.arange(12, dtype=F32).reshape(3, 4) * 0.5, 1),
    ("view_step2", torch.arange(12, dtype=F32).reshape(3, 4) + 1, 2),
    ("view_expand", torch.tensor([[1, -2, 3]]), 3),
    ("view_transpose_step2_i32", torch.arange(20, dtype=I32).reshape(4, 5), 4),
    ("view_transpose_summary", torch.randn(40, 26), 1),
]

fx = Fixture("print.txt", "gen_print.py")


def escape(s):
    return s.replace("\\", "\\\\").replace("\n", "\\n")


def add(name, x, view=0, requires_grad=False):
    shown = VIEWS[view](x)
    if requires_grad:
        shown = shown.clone().requires_grad_(True)
    fx.case(name)
    fx.tensor("x", x)
    if view:
        fx.scalar("view", view)
    if requires_grad:
        fx.scalar("requires_grad", 1)
    fx.lines.append("r " + escape(repr(shown)))


for name, x in CASES:
    add(name, x)
for name, x, view in VIEW_CASES:
    add(name, x, view)
add("requires_grad_f32", torch.tensor([1.5, -2.0]), requires_grad=True)
add("requires_grad_f64_wraps", torch.randn(9, dtype=F64), requires_grad=True)
fx.write()
