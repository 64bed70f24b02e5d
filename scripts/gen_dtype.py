"""Fixtures for tests/unit/test_dtype.c: PyTorch's half / bfloat16 rounding, type promotion and
.to(dtype) conversions, for born's core/dtype.c and the CPU copy kernel.
Run: /usr/bin/python3 scripts/gen_dtype.py  (writes tests/data/dtype.txt)

Bit patterns are stored as i64 tensors (f32 bits as unsigned 32-bit, f16 / bf16 bits as unsigned
16-bit, f64 bits as signed 64-bit) so the C side compares bits exactly.

Cases:
  f32_to_half      f32_bits -> torch's f16_bits and bf16_bits (special values, every kind of
                   rounding boundary, random bit patterns, random values in the f16 range)
  half_to_f32      f16_bits / bf16_bits (random) -> torch's f32 bits
  f64_to_half      f64_bits -> torch's f16_bits and bf16_bits. torch rounds f64 -> f32 -> f16
                   (twice); born rounds once: the test checks which is which.
  promote          9x9 table of torch.promote_types as born dtype codes; -1 marks torch's int16
                   (u8 with i8), which born lacks (it answers i32)
  to_<src>         x (a src tensor), and for every dst dtype: torch's x.to(dst) as <dst>, and a
                   bool mask <dst>_defined, false where C++ leaves the conversion undefined
                   (float -> integer of NaN, inf or a value whose truncation is out of range)
"""
import math
import struct

import torch

from fixtures import DTYPES, Fixture

torch.manual_seed(1234)
fx = Fixture("dtype.txt", "gen_dtype.py")

ORDER = [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int8, torch.uint8,
         torch.int32, torch.int64, torch.bool]  # born's bn_dtype order
INT_RANGE = {torch.int8: (-128, 127), torch.uint8: (0, 255), torch.int32: (-2 ** 31, 2 ** 31 - 1),
             torch.int64: (-2 ** 63, 2 ** 63 - 1)}


def f32_bits(v):
    return struct.unpack("<I", struct.pack("<f", v))[0]


def bits_tensor(t, mask):
    """t viewed as same-size integers, as unsigned values in an i64 tensor."""
    ity = {2: torch.int16, 4: torch.int32, 8: torch.int64}[t.element_size()]
    b = t.contiguous().view(ity).to(torch.int64)
    return b & mask if mask else b


# ---- f32 -> f16 / bf16 -----------------------------------------------------------------------
def f32_specials():
    v = [0.0, -0.0, 1.0, -1.0, math.inf, -math.inf, math.nan, 65504.0, 65519.0, 65519.99,
         65520.0, 65520.01, -65520.0, 65536.0, 1e10, 2 ** -14, 2 ** -24, 2 ** -25, -2 ** -25,
         2 ** -25 * 1.0000001, 2 ** -26, 3 * 2 ** -26, 1e-10, -1e-10, 1 + 2 ** -11,
         1 + 3 * 2 ** -11, 1 + 2 ** -11 + 2 ** -23, 1 + 2 ** -11 - 2 ** -23, 2 ** -14 - 2 ** -25,
         0.1, 1.0 / 3.0, 3.4028234663852886e38, 1.1754943508222875e-38, 1e-45,
         1 + 2 ** -8, 1 + 3 * 2 ** -8, 1 + 2 ** -8 + 2 ** -23, 3.3895313892515355e38,
         3.3961775292304767e38, 3.3961775292304767e38 * (1 - 2 ** -23)]
    return [f32_bits(x) for x in v]


n_rand = 1000
random_bits = torch.randint(0, 2 ** 32, (n_rand,), dtype=torch.int64)
# values in and around the f16 range: random sign, exponent in [-27, 16], random mantissa
sign = torch.randint(0, 2, (n_rand,), dtype=torch.int64) << 31
exp = torch.randint(127 - 27, 127 + 17, (n_rand,), dtype=torch.int64) << 23
mant = torch.randint(0, 2 ** 23, (n_rand,), dtype=torch.int64)
# a quarter of them exactly on an f16 halfway point (low 13 mantissa bits = 0x1000)
mant[: n_rand // 4] = (mant[: n_rand // 4] & ~0x1FFF) | 0x1000
ranged_bits = sign | exp | mant
all_bits = torch.cat([torch.tensor(f32_specials(), dtype=torch.int64), random_bits, ranged_bits])
f32 = all_bits.to(torch.int32).view(torch.float32)  # int64 -> int32 wraps, keeping the bits

fx.case("f32_to_half")
fx.tensor("f32_bits", all_bits)
fx.tensor("f16_bits", bits_tensor(f32.half(), 0xFFFF))
fx.tensor("bf16_bits", bits_tensor(f32.bfloat16(), 0xFFFF))

# ---- f16 / bf16 -> f32 -------------------------------------------------------------------------
h = torch.randint(0, 2 ** 16, (1000,), dtype=torch.int64)
fx.case("half_to_f32")
fx.tensor("half_bits", h)
fx.tensor("f16_f32_bits", bits_tensor(h.to(torch.int16).view(torch.float16).float(), 0xFFFFFFFF))
fx.tensor("bf16_f32_bits", bits_tensor(h.to(torch.int16).view(torch.bfloat16).float(), 0xFFFFFFFF))

# ---- f64 -> f16 / bf16 -------------------------------------------------------------------------
d_special = torch.tensor([1 + 2 ** -11 + 2 ** -40, 1 + 2 ** -8 + 2 ** -40, 65519.999999, 65520.0,
                          2 ** -25 + 2 ** -60, 2 ** -25, 0.1, -0.0, math.inf, math.nan, 1e300,
                          1e-300], dtype=torch.float64)
d_exp = torch.randint(-30, 18, (500,), dtype=torch.int64).to(torch.float64)
d_rand = (torch.rand(500, dtype=torch.float64) + 1) * torch.pow(2.0, d_exp)
d_rand[::2] = -d_rand[::2]
d = torch.cat([d_special, d_rand])
fx.case("f64_to_half")
fx.tensor("f64_bits", bits_tensor(d, 0))
fx.tensor("f16_bits", bits_tensor(d.half(), 0xFFFF))
fx.tensor("bf16_bits", bits_tensor(d.bfloat16(), 0xFFFF))

# ---- type promotion ----------------------------------------------------------------------------
codes = []
for a in ORDER:
    for b in ORDER:
        r = torch.promote_types(a, b)
        codes.append(ORDER.index(r) if r in ORDER else -1)
fx.case("promote")
fx.tensor("table", torch.tensor(codes, dtype=torch.int64).reshape(9, 9))

# ---- .to(dtype) between all pairs ---------------------------------------------------------------
FLOAT_VALUES = [0.0, -0.0, 1.5, -1.5, 2.7, -2.7, 0.49, -0.99, 100.25, -128.0, 127.9, 255.5,
                300.7, -300.2, 65504.0, 1e10, -1e10, 3e9, 1e20, math.nan, math.inf, -math.inf,
                1e-3, 3.14159, 16777217.0, 1e-8, 70000.0, 1.0 / 3.0, -2147483648.0, 123456.789]
SOURCES = {
    torch.float32: FLOAT_VALUES, torch.float64: FLOAT_VALUES, torch.float16: FLOAT_VALUES,
    torch.bfloat16: FLOAT_VALUES,
    torch.int8: [-128, -1, 0, 1, 127, 5, -5, 100],
    torch.uint8: [0, 1, 127, 128, 200, 255, 44, 7],
    torch.int32: [0, 1, -1, 127, 128, -129, 255, 256, 300, -300, 2 ** 31 - 1, -2 ** 31, 16777217,
                  65520, 65519, -65536, 123456789, 2049],
    # 2^60 + 2^52 + 1 would need two roundings to agree (torch goes i64 -> f32 -> bf16)
    torch.int64: [0, 1, -1, 127, 128, -129, 255, 256, 300, -300, 2 ** 31, -2 ** 31 - 1,
                  2 ** 53 + 1, -2 ** 63, 2 ** 63 - 1, 65519, 65520, 123456789, 2 ** 40 + 3,
                  -(2 ** 62) - 12345, 4294967596, 16777217],
    torch.bool: [True, False, False, True],
}


def defined(x, src, dst):
    """False where C++ leaves the conversion undefined (torch's result is then arbitrary)."""
    if not (src.is_floating_point and dst in INT_RANGE):
        return torch.ones(x.shape, dtype=torch.bool)
    lo, hi = INT_RANGE[dst]
    out = []
    for v in x.to(torch.float64).tolist():
        out.append(math.isfinite(v) and lo <= math.trunc(v) <= hi)
    return torch.tensor(out, dtype=torch.bool)


for src, vals in SOURCES.items():
    x = torch.tensor(vals, dtype=torch.float64 if src.is_floating_point else torch.int64).to(src) \
        if src != torch.bool else torch.tensor(vals)
    name = DTYPES[src]
    fx.case("to_" + name)
    fx.tensor("x", x)
    for dst in ORDER:
        fx.tensor(DTYPES[dst], x.to(dst))
        fx.tensor(DTYPES[dst] + "_defined", defined(x, src, dst))

fx.write()
