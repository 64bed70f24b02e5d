#!/usr/bin/env python3
"""scripts/gen_born_corpus.py — writes tests/data/born/: tiny .born files made from the spec
(docs/FORMAT.md) by this independent Python writer. They are the seed corpus of the libFuzzer
target tests/fuzz/fuzz_born.c, and tests/unit/test_born_format.c loads the valid_* ones (with
checksum verification) and expects the bad_* ones to fail with BN_ERR_FORMAT.
Run: python3 scripts/gen_born_corpus.py (no torch needed)."""
import hashlib
import json
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "born")
MAGIC = b"\x89BORN\r\n\x1a"
SIZES = {"f32": 4, "f64": 8, "f16": 2, "bf16": 2, "i8": 1, "u8": 1, "i32": 4, "i64": 8, "bool": 1}
PACK = {"f32": "f", "f64": "d", "f16": "e", "i8": "b", "u8": "B", "i32": "i", "i64": "q", "bool": "?"}


def align(x):
    return (x + 63) // 64 * 64


def build(tensors, metadata=None, config=None, checksum=True, major=1):
    """tensors: list of (name, dtype, shape, raw bytes)."""
    entries, data = [], b""
    for name, dt, shape, raw in tensors:
        entries.append({"name": name, "dtype": dt, "shape": shape, "offset": len(data),
                        "nbytes": len(raw)})
        data += raw
        data += b"\0" * (align(len(data)) - len(data))
    head = {"tensors": entries}
    if metadata is not None:
        head["metadata"] = metadata
    if config is not None:
        head["config"] = config
    head["data_sha256"] = hashlib.sha256(data).hexdigest() if checksum else None
    text = json.dumps(head, separators=(",", ":")).encode()
    doff = align(64 + len(text))
    pre = MAGIC + struct.pack("<HHIQQQ", major, 0, 0, len(text), doff, len(data)) + b"\0" * 24
    return pre + text + b" " * (doff - 64 - len(text)) + data


def raw(dt, values):
    if dt == "bf16":
        return b"".join(struct.pack("<f", v)[2:] for v in values)
    return struct.pack("<%d%s" % (len(values), PACK[dt]), *values)


def main():
    os.makedirs(OUT, exist_ok=True)
    files = {
        "valid_f32_2x3.born": build([("w", "f32", [2, 3], raw("f32", [1, 2, 3, 4, 5, 6]))],
                                    metadata={"k": "v"}, config={"arch": "mlp"}),
        "valid_mixed.born": build([
            ("a", "f64", [], raw("f64", [3.5])),
            ("b", "i64", [3], raw("i64", [1, -2, 3])),
            ("c", "f16", [2], raw("f16", [0.5, -1.0])),
            ("d", "bf16", [2], raw("bf16", [1.0, 2.0])),
            ("e", "bool", [2, 2], raw("bool", [True, False, False, True])),
            ("f", "u8", [0, 4], b""),
            ("g", "i8", [1, 1, 1, 1, 1, 1, 1, 2], raw("i8", [-1, 1])),
            ("h", "i32", [2], raw("i32", [7, 8])),
        ]),
        "valid_empty.born": build([]),
        "valid_no_checksum.born": build([("x", "u8", [4], bytes([1, 2, 3, 4]))], checksum=False),
    }
    good = files["valid_f32_2x3.born"]
    files["bad_truncated.born"] = good[:-8]
    files["bad_magic.born"] = b"\x89BORX" + good[5:]
    files["bad_version.born"] = build([], major=2)
    bad_sum = bytearray(good)
    bad_sum[-40] ^= 1  # a data byte: only verification notices
    files["bad_checksum.born"] = bytes(bad_sum)
    overlap = bytearray(build([("a", "f32", [4], raw("f32", [1, 2, 3, 4])),
                               ("b", "f32", [4], raw("f32", [1, 2, 3, 4]))]))
    i = overlap.find(b'"offset":64')
    overlap[i:i + 11] = b'"offset":0 '
    files["bad_overlap.born"] = bytes(overlap)
    for name, data in files.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
