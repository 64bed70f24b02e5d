"""Fixtures for tests/unit/test_matmul.c: torch.matmul on every shape rule, on transposed,
sliced and broadcast operands, on empty ones, in every dtype born supports.
Run: /usr/bin/python3 scripts/gen_matmul.py  (writes tests/data/matmul.txt)

Each case stores the contiguous tensors the C test starts from ("a", "b", or "a_base" /
"b_base" when the test makes a view of them the same way this script does) and the result
"out". f16 and bf16 products are computed the way born computes them -- in f32, rounded once
(torch 1.13 has no f16 matmul on the CPU)."""
import torch

from fixtures import Fixture

torch.manual_seed(0)
fx = Fixture("matmul.txt", "gen_matmul.py")


def randn(*shape):
    return torch.randn(*shape, dtype=torch.float32)


def write(name, out, **tensors):
    fx.case(name)
    for k, v in tensors.items():
        fx.tensor(k, v)
    fx.tensor("out", out)


# ---- the shape rules, f32 ------------------------------------------------------------------
for name, sa, sb in [
    ("dot_1d", (5,), (5,)),
    ("mm_2d", (3, 4), (4, 5)),
    ("vec_mat", (4,), (4, 5)),
    ("vec_batched", (4,), (2, 4, 5)),
    ("mat_vec", (3, 4), (4,)),
    ("batched_mat_vec", (2, 3, 4), (4,)),
    ("batched", (2, 3, 4), (2, 4, 5)),
    ("broadcast_batch", (2, 1, 3, 4), (5, 4, 6)),
    ("broadcast_mat_with_batch", (3, 4), (2, 4, 5)),
    ("broadcast_batch_with_mat", (2, 3, 4), (4, 5)),
    ("one_by_one", (1, 1), (1, 1)),
    ("outer_k1", (4, 1), (1, 3)),
]:
    a, b = randn(*sa), randn(*sb)
    write(name, torch.matmul(a, b), a=a, b=b)

# ---- views: the C test applies the same bn_transpose / bn_slice / bn_expand ----------------
a_base, b = randn(4, 3), randn(4, 5)
write("transposed_a", torch.matmul(a_base.t(), b), a_base=a_base, b=b)
a, b_base = randn(3, 4), randn(5, 4)
write("transposed_b", torch.matmul(a, b_base.t()), a=a, b_base=b_base)
a_base, b_base = randn(4, 3), randn(5, 4)
write("transposed_both", torch.matmul(a_base.t(), b_base.t()), a_base=a_base, b_base=b_base)
a_base, b_base = randn(2, 4, 3), randn(2, 6, 4)
write("batched_transposed", torch.matmul(a_base.transpose(1, 2), b_base.transpose(1, 2)),
      a_base=a_base, b_base=b_base)
a_base, b_base = randn(3, 8), randn(9, 5)  # a[:, ::2] is (3, 4); b[1::2, :] is (4, 5)
write("sliced", torch.matmul(a_base[:, ::2], b_base[1::2, :]), a_base=a_base, b_base=b_base)
a_base, b = randn(1, 3, 4), randn(3, 4, 2)  # a expanded to (3, 3, 4) with a 0 batch stride
write("expanded_batch", torch.matmul(a_base.expand(3, 3, 4), b), a_base=a_base, b=b)
a_base, b = randn(5, 3), randn(5, 6)  # a.t() is (3, 5); column 1 of a_base as a 1-D vector
write("strided_vec_mat", torch.matmul(a_base[:, 1], b), a_base=a_base, b=b)
a, b_base = randn(4, 6), randn(6, 7)  # column 2 of b as a 1-D vector (stride 7)
write("mat_strided_vec", torch.matmul(a, b_base[:, 2]), a=a, b_base=b_base)

# ---- empty ---------------------------------------------------------------------------------
for name, sa, sb in [
    ("empty_k", (3, 0), (0, 4)),       # zeros (3, 4)
    ("empty_m", (0, 3), (3, 4)),       # (0, 4)
    ("empty_n", (2, 3), (3, 0)),       # (2, 0)
    ("empty_batch", (0, 2, 3), (3, 4)),
    ("empty_dot", (0,), (0,)),         # 0-d zero
    ("empty_k_batched", (2, 3, 0), (2, 0, 2)),
]:
    a, b = randn(*sa), randn(*sb)
    write(name, torch.matmul(a, b), a=a, b=b)

# ---- dtypes ---------------------------------------------------------------------------------
def float_like(dt, *shape):
    return randn(*shape).to(dt)


for dt, tag in [(torch.float64, "f64"), (torch.float16, "f16"), (torch.bfloat16, "bf16")]:
    for name, sa, sb in [("mm", (3, 5), (5, 4)), ("batched", (2, 3, 6), (6, 2)),
                         ("dot", (7,), (7,))]:
        a, b = float_like(dt, *sa), float_like(dt, *sb)
        out = torch.matmul(a.float(), b.float()).to(dt) if tag != "f64" else torch.matmul(a, b)
        write("%s_%s" % (tag, name), out, a=a, b=b)
    # transposed b, read through packing with a conversion
    a, b_base = float_like(dt, 3, 5), float_like(dt, 4, 5)
    out = (torch.matmul(a.float(), b_base.float().t()).to(dt) if tag != "f64"
           else torch.matmul(a, b_base.t()))
    write("%s_transposed_b" % tag, out, a=a, b_base=b_base)

# f16/bf16 accumulate in f32: partial sums beyond f16's range, and a sum that bf16 could not
# count past 256
a = torch.tensor([[300.0, 300.0, -300.0, -300.0]], dtype=torch.float16)
b = torch.full((4, 1), 300.0, dtype=torch.float16)
write("f16_wide_accumulation", torch.matmul(a.float(), b.float()).half(), a=a, b=b)
a, b = torch.ones(1, 300, dtype=torch.bfloat16), torch.ones(300, 2, dtype=torch.bfloat16)
write("bf16_long_sum", torch.matmul(a.float(), b.float()).bfloat16(), a=a, b=b)

# large magnitudes (products near 1e36, inside f32's range) and non-finite inputs
a, b = randn(3, 4) * 1e18, randn(4, 2) * 1e18
write("large_values", torch.matmul(a, b), a=a, b=b)
a = torch.tensor([[float("inf"), 1.0], [float("nan"), 2.0], [1.0, -float("inf")]])
b = torch.tensor([[1.0, 0.0, 2.0], [1.0, 1.0, -1.0]])
write("nonfinite", torch.matmul(a, b), a=a, b=b)

# integers: values large enough that the sums wrap around in the dtype, as torch's do
for dt, tag, lo, hi in [(torch.int8, "i8", -100, 100), (torch.uint8, "u8", 0, 256),
                        (torch.int32, "i32", -(1 << 20), 1 << 20),
                        (torch.int64, "i64", -(1 << 40), 1 << 40)]:
    a = torch.randint(lo, hi, (3, 5), dtype=dt)
    b = torch.randint(lo, hi, (5, 4), dtype=dt)
    out = torch.matmul(a, b)
    # check the wrap-around: the exact sum modulo 2^bits, read back as the dtype
    bits = {"i8": 8, "u8": 8, "i32": 32, "i64": 64}[tag]
    exact = [[sum(int(a[i, k]) * int(b[k, j]) for k in range(5)) for j in range(4)]
             for i in range(3)]
    for i in range(3):
        for j in range(4):
            w = exact[i][j] % (1 << bits)
            if tag != "u8" and w >= 1 << (bits - 1):
                w -= 1 << bits
            assert int(out[i, j]) == w, (tag, i, j)
    write("%s_mm" % tag, out, a=a, b=b)
    a_base, b = torch.randint(lo, hi, (2, 4, 3), dtype=dt), torch.randint(lo, hi, (4, 2), dtype=dt)
    write("%s_batched_transposed" % tag, torch.matmul(a_base.transpose(1, 2), b),
          a_base=a_base, b=b)

# ---- larger: odd sizes to hit the edge tiles, K blocks and N blocks -----------------------
# Quarter-step values keep the text short and every product and sum exact in f32.
def quarters(*shape):
    return torch.randint(-8, 8, shape).to(torch.float32) / 4


a, b = quarters(67, 129), quarters(129, 70)
write("large_67x129x70", torch.matmul(a, b), a=a, b=b)
a, b = quarters(9, 300), quarters(300, 11)
write("deep_k300", torch.matmul(a, b), a=a, b=b)

# The packed GEMM in f64 and in f32 from f16 / bf16, past one K block (256) and one register tile
# in M and N, B read transposed. f64: random values with three decimals (short text, inexact
# products); f16 / bf16: quarters in [-2, 2), exact in both, so every f32 sum is exact and the
# result is that sum rounded once -- the C test asks for the same bits.
def thousandths(*shape):
    return torch.round(torch.randn(*shape, dtype=torch.float64) * 1000) / 1000


a, b = thousandths(17, 260), thousandths(260, 18)
write("f64_blocked", torch.matmul(a, b), a=a, b=b)
a, b_base = thousandths(15, 257), thousandths(5, 257)
write("f64_blocked_transposed_b", torch.matmul(a, b_base.t()), a=a, b_base=b_base)
for dt, tag in [(torch.float16, "f16"), (torch.bfloat16, "bf16")]:
    a, b_base = quarters(15, 257).to(dt), quarters(33, 257).to(dt)
    out = torch.matmul(a.float(), b_base.float().t()).to(dt)
    write("%s_blocked_transposed_b" % tag, out, a=a, b_base=b_base)

fx.write()
