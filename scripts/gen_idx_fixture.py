#!/usr/bin/env python3
"""scripts/gen_idx_fixture.py — writes the tiny IDX files tests/unit/test_data.c and
tests/e2e/test_train.c read (tests/data/idx/): good files of each element type, gzip'd and not,
broken ones (truncated, bad magic, lying dims, trailing bytes), and a tiny learnable
MNIST-shaped data set (tests/data/idx/tiny/) for end-to-end training runs. Deterministic: the
same bytes every run (gzip mtime 0). Run: python3 scripts/gen_idx_fixture.py"""
import gzip
import os
import random
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "data", "idx")

CODES = {"u8": (0x08, "B"), "i8": (0x09, "b"), "i16": (0x0B, "h"), "i32": (0x0C, "i"),
         "f32": (0x0D, "f"), "f64": (0x0E, "d")}


def idx_bytes(kind, dims, values):
    code, fmt = CODES[kind]
    head = bytes([0, 0, code, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims)
    return head + struct.pack(">%d%s" % (len(values), fmt), *values)


def write(name, data, gz=False):
    path = os.path.join(OUT, name)
    if gz:
        with open(path, "wb") as f:
            f.write(gzip.compress(data, mtime=0))
    else:
        with open(path, "wb") as f:
            f.write(data)


def small_files():
    u8 = idx_bytes("u8", [3, 2, 2], list(range(0, 240, 20)))
    write("u8_3x2x2.idx", u8)
    write("u8_3x2x2.idx.gz", u8, gz=True)
    write("i8_4.idx", idx_bytes("i8", [4], [-128, -1, 0, 127]))
    write("i16_2x2.idx", idx_bytes("i16", [2, 2], [-32768, -2, 3, 32767]))
    write("i32_3.idx", idx_bytes("i32", [3], [-2147483648, 7, 2147483647]))
    write("f32_2x3.idx", idx_bytes("f32", [2, 3], [0.5, -1.25, 3.0, 1e-3, -0.0, 65504.0]))
    write("f64_2.idx", idx_bytes("f64", [2], [3.141592653589793, -2.5e300]))
    write("truncated.idx", u8[:-3])
    write("truncated.idx.gz", u8[:-3], gz=True)
    write("header_only.idx", u8[:8])
    write("bad_magic.idx", b"\x01\x02" + u8[2:])
    write("bad_type.idx", b"\x00\x00\x07\x01" + u8[4:])
    write("zero_dims.idx", b"\x00\x00\x08\x00")
    write("too_long.idx", u8 + b"\x00")
    # claims 65535 x 65535 x 65535 bytes (2^48): refused before any allocation
    write("huge_dims.idx", bytes([0, 0, 8, 3]) + struct.pack(">III", 65535, 65535, 65535))
    # an empty tensor (a zero dim) whose other dims would overflow its strides (found by
    # tests/fuzz/fuzz_idx.c): refused like any other impossible header
    write("empty_huge_dims.idx", bytes([0, 0, 8, 3]) + struct.pack(">III", 0, 0xFFFFFFFF, 0xFFFFFFFF))
    # claims 60000 x 28 x 28 (47 MB) but holds 16 bytes, gzip'd: must fail, not allocate blindly
    write("huge_truncated.idx.gz", bytes([0, 0, 8, 3]) + struct.pack(">III", 60000, 28, 28) +
          bytes(16), gz=True)
    write("not_gzip.idx.gz", b"\x1f\x8b\x08\x00garbage that is not deflate data")


def tiny_mnist():
    """Class k lights a 7x7 block at position k of a 4x4 grid (k < 10), plus a little noise:
    easy to learn, so a few epochs on it reach high accuracy."""
    rng = random.Random(1234)
    d = os.path.join(OUT, "tiny")
    os.makedirs(d, exist_ok=True)
    for split, n in (("train", 320), ("t10k", 80)):
        images, labels = [], []
        for i in range(n):
            k = i % 10
            img = [0] * 784
            r0, c0 = (k // 4) * 7, (k % 4) * 7
            for r in range(r0, r0 + 7):
                for c in range(c0, c0 + 7):
                    img[r * 28 + c] = 200 + rng.randrange(56)
            for _ in range(20):
                img[rng.randrange(784)] = rng.randrange(120)
            images += img
            labels.append(k)
        write(os.path.join("tiny", "%s-images-idx3-ubyte.gz" % split),
              idx_bytes("u8", [n, 28, 28], images), gz=True)
        write(os.path.join("tiny", "%s-labels-idx1-ubyte.gz" % split),
              idx_bytes("u8", [n], labels), gz=True)


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    small_files()
    tiny_mnist()
