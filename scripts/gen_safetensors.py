"""Safetensors fixtures for tests/unit/test_safetensors.c, and an independent checker.

Run with Debian's PyTorch (no `safetensors` package exists here, so this file carries its own
reader and writer, written from the published specification):

    /usr/bin/python3 scripts/gen_safetensors.py            # writes the fixtures below
    /usr/bin/python3 scripts/gen_safetensors.py --check FILE [--same-as REF]

Format: 8-byte little-endian u64 N, N bytes of UTF-8 JSON (an object starting with '{', maybe
padded with trailing spaces) mapping names to {"dtype", "shape", "data_offsets": [begin, end]}
(relative to the byte buffer after the header) plus an optional "__metadata__" object of
string -> string; tensors little-endian, row-major; the offsets cover the buffer exactly.

The writer lays tensors out like the reference implementation: descending dtype (its Dtype
enum order, which follows alignment), then name; compact JSON with "__metadata__" first; the
header padded with spaces to a multiple of 8 bytes.

--check reads FILE with the strict reader, writes what it read again with this writer and
requires the very same bytes (so born's writer matches the reference layout byte for byte), and
with --same-as also requires the same names, dtypes, shapes and bytes as REF. Exit status 0 on
success, 1 with a message otherwise.

Writes: tests/data/safetensors/*.safetensors (valid files written from torch tensors, and
corrupted ones; also the seed corpus of tests/fuzz/fuzz_safetensors.c) and
tests/data/safetensors.txt (the values of torch_all.safetensors, via scripts/fixtures.py).
"""
import json
import os
import struct
import sys

# safetensors dtype name -> (torch dtype name, element bytes, rank in the reference's Dtype enum:
# BOOL, F4, F6_E2M3, F6_E3M2, U8, I8, F8_E5M2, F8_E4M3, F8_E8M0, I16, U16, F16, BF16, I32, U32,
# F32, C64, F64, I64, U64 — the writer's layout order). The reader and --check need no torch.
ST_DTYPES = {
    "BOOL": ("bool", 1, 0), "U8": ("uint8", 1, 4), "I8": ("int8", 1, 5),
    "I16": ("int16", 2, 9), "F16": ("float16", 2, 11), "BF16": ("bfloat16", 2, 12),
    "I32": ("int32", 4, 13), "F32": ("float32", 4, 15), "F64": ("float64", 8, 17),
    "I64": ("int64", 8, 18),
}
MAX_HEADER = 100_000_000


def torch_dtype(st_dtype):
    import torch
    return getattr(torch, ST_DTYPES[st_dtype][0])


def st_dtype_of(t):
    return next(k for k, v in ST_DTYPES.items() if torch_dtype(k) == t.dtype)


class FormatError(Exception):
    pass


def tensor_bytes(t):
    import torch
    t = t.detach().contiguous().reshape(-1)
    if t.numel() == 0:
        return b""
    return t.view(torch.uint8).numpy().tobytes()


def tensor_from_bytes(b, st_dtype, shape):
    import torch
    dt = torch_dtype(st_dtype)
    if len(b) == 0:
        return torch.empty(shape, dtype=dt)
    return torch.frombuffer(bytearray(b), dtype=torch.uint8).view(dt).reshape(shape).clone()


# ---- writer ---------------------------------------------------------------------------------
def serialize(entries, metadata=None):
    """entries: list of (name, st_dtype, shape, raw bytes). Returns the file's bytes."""
    order = sorted(entries, key=lambda e: (-ST_DTYPES[e[1]][2], e[0].encode("utf-8")))
    header = {}
    if metadata:
        header["__metadata__"] = dict(metadata)
    off = 0
    for name, dt, shape, raw in order:
        header[name] = {"dtype": dt, "shape": list(shape), "data_offsets": [off, off + len(raw)]}
        off += len(raw)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(e[3] for e in order)


def save(path, tensors, metadata=None):
    """tensors: dict name -> torch tensor."""
    entries = [(n, st_dtype_of(t), tuple(t.shape), tensor_bytes(t)) for n, t in tensors.items()]
    write_file(path, serialize(entries, metadata))


def write_file(path, data):
    with open(path, "wb") as f:
        f.write(data)


# ---- reader ---------------------------------------------------------------------------------
def _no_duplicates(pairs):
    d = {}
    for k, v in pairs:
        if k in d:
            raise FormatError("duplicate key %r" % k)
        d[k] = v
    return d


def parse(data):
    """Validates everything; returns ([(name, st_dtype, shape, raw bytes)] in offset order, metadata)."""
    if len(data) < 8:
        raise FormatError("file shorter than 8 bytes")
    (n,) = struct.unpack("<Q", data[:8])
    if n > MAX_HEADER:
        raise FormatError("header size %d over the limit" % n)
    if 8 + n > len(data):
        raise FormatError("header size %d past the end of the file" % n)
    raw = data[8:8 + n]
    if not raw.startswith(b"{"):
        raise FormatError("header does not start with '{'")
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, ValueError) as e:
        raise FormatError("bad header: %s" % e)
    if not isinstance(header, dict):
        raise FormatError("header is not an object")
    buf = data[8 + n:]
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise FormatError("__metadata__ is not an object of strings")
    infos = []
    for name, info in header.items():
        if not isinstance(info, dict):
            raise FormatError("%s: not an object" % name)
        dt, shape, offs = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if dt not in ST_DTYPES:
            raise FormatError("%s: unsupported dtype %r" % (name, dt))
        if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise FormatError("%s: bad shape" % name)
        if (not isinstance(offs, list) or len(offs) != 2 or
                not all(isinstance(o, int) and o >= 0 for o in offs)):
            raise FormatError("%s: bad data_offsets" % name)
        numel = 1
        for d in shape:
            numel *= d
        if offs[1] - offs[0] != numel * ST_DTYPES[dt][1]:
            raise FormatError("%s: shape and data_offsets disagree" % name)
        infos.append((offs[0], offs[1], name, dt, tuple(shape)))
    infos.sort()
    pos = 0
    for begin, end, name, _, _ in infos:
        if begin != pos:
            raise FormatError("%s: hole or overlap at %d" % (name, begin))
        pos = end
    if pos != len(buf):
        raise FormatError("tensors cover %d of %d data bytes" % (pos, len(buf)))
    return [(name, dt, shape, bytes(buf[b:e])) for b, e, name, dt, shape in infos], metadata


def load(path):
    with open(path, "rb") as f:
        entries, metadata = parse(f.read())
    return {n: tensor_from_bytes(raw, dt, shape) for n, dt, shape, raw in entries}, metadata


def check(path, same_as=None):
    with open(path, "rb") as f:
        data = f.read()
    entries, metadata = parse(data)
    again = serialize(entries, metadata)
    if again != data:
        raise FormatError("%s: not laid out like the reference writer (%d vs %d bytes; header %r)"
                          % (path, len(data), len(again), data[8:8 + 200]))
    if same_as:
        with open(same_as, "rb") as f:
            ref, _ = parse(f.read())
        mine = {e[0]: e[1:] for e in entries}
        want = {e[0]: e[1:] for e in ref}
        if mine.keys() != want.keys():
            raise FormatError("names differ: %s vs %s" % (sorted(mine), sorted(want)))
        for k in want:
            if mine[k] != want[k]:
                raise FormatError("tensor %r differs: %r vs %r" % (k, mine[k][:2], want[k][:2]))
    print("%s: %d tensors, %d metadata entries, OK" % (path, len(entries), len(metadata)))


# ---- fixtures -------------------------------------------------------------------------------
def torch_tensors():
    import torch
    g = torch.Generator().manual_seed(6)
    f = torch.randn(2, 3, 4, generator=g)
    special = torch.tensor([0.0, -0.0, 1.0, -2.5, float("inf"), float("-inf"), float("nan"),
                            6.1e-5, 5.96e-8, 65504.0, 1e-40, 3.0e38])
    return {
        "f32": f,
        "f64": torch.randn(5, generator=g, dtype=torch.float64) * 1e300,
        "f16": special.to(torch.float16).reshape(3, 4),
        "bf16": special.to(torch.bfloat16),
        "i8": torch.tensor([[-128, 127, 0], [1, -1, 5]], dtype=torch.int8),
        "u8": torch.tensor([0, 255, 7, 128], dtype=torch.uint8),
        "i32": torch.tensor([-2147483648, 2147483647, 0], dtype=torch.int32),
        "i64": torch.tensor([[-9223372036854775808], [9223372036854775807]], dtype=torch.int64),
        "bool": torch.tensor([[True, False], [False, True]]),
        "scalar": torch.tensor(3.5),
        "empty": torch.zeros(0, 3),
        "layers.0.weight": torch.arange(6, dtype=torch.float32).reshape(2, 3),
        "f32_special": special,
    }


def raw_file(header_obj_or_bytes, data=b"", size=None, pad=True):
    h = header_obj_or_bytes
    if not isinstance(h, bytes):
        h = json.dumps(h, separators=(",", ":")).encode("utf-8")
    if pad:
        h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h) if size is None else size) + h + data


def corrupted_files():
    good = {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
            "b": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]}}
    data = struct.pack("<3f", 1.0, 2.0, 3.0)
    valid = raw_file(good, data)

    def with_(name, **kw):
        h = json.loads(json.dumps(good))
        h[name].update(kw)
        return h

    return {
        "bad_truncated": valid[:-2],
        "bad_short": b"\x10\x00\x00",
        "bad_header_past_eof": raw_file(good, data, size=4096),
        "bad_huge_header": raw_file(good, data, size=(1 << 63) + 5),
        "bad_not_brace": raw_file(b"[1, 2]  ", b""),
        "bad_json": raw_file(b'{"a": {"dtype": "F32", ', data),
        "bad_utf8": raw_file(b'{"\xff\xfe": {}}', b""),
        "unsup_dtype_f8": raw_file(with_("a", dtype="F8_E4M3", shape=[8]), data),
        "bad_dtype_unknown": raw_file(with_("a", dtype="F33"), data),
        "bad_offsets_out_of_range": raw_file(with_("b", data_offsets=[8, 16]), data),
        "bad_overlap": raw_file(with_("b", data_offsets=[4, 8]), data[:8]),
        "bad_hole": raw_file(with_("b", data_offsets=[12, 16]), data + data[:4]),
        "bad_shape_mismatch": raw_file(with_("a", shape=[3]), data),
        "bad_shape_overflow": raw_file(with_("a", shape=[1 << 62, 1 << 62], dtype="F64"), data),
        "bad_trailing_bytes": raw_file(good, data + b"\0\0\0\0"),
        "bad_duplicate_name": raw_file(b'{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},'
                                       b'"a":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}',
                                       data),
        "bad_metadata_not_string": raw_file({"__metadata__": {"k": 1}, **good}, data),
        "bad_negative_offset": raw_file(with_("a", data_offsets=[-8, 8]), data),
        "unsup_too_many_dims": raw_file(with_("a", shape=[1] * 9 + [2]), data),
        # valid: an unpadded header, and a U8 tensor first so the F32 after it is unaligned
        "ok_unaligned": raw_file({"u": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]},
                                  "f": {"dtype": "F32", "shape": [2], "data_offsets": [1, 9]}},
                                 b"\x07" + struct.pack("<2f", 1.5, -2.0), pad=False),
    }


def generate():
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from fixtures import DATA_DIR, Fixture

    out = os.path.join(DATA_DIR, "safetensors")
    os.makedirs(out, exist_ok=True)
    tensors = torch_tensors()
    meta = {"format": "pt", "note": "caf\u00e9 \"quoted\"\n"}
    save(os.path.join(out, "torch_all.safetensors"), tensors, meta)
    save(os.path.join(out, "empty.safetensors"), {})
    for name, data in corrupted_files().items():
        write_file(os.path.join(out, name + ".safetensors"), data)
    # valid files that born cannot load (a dtype it lacks, more than 8 dims) are "unsup_"
    # round trip through this reader
    back, m = load(os.path.join(out, "torch_all.safetensors"))
    assert m == meta and list(back) == sorted(tensors, key=lambda n: (-ST_DTYPES[st_dtype_of(tensors[n])][2], n))
    for n, t in tensors.items():
        assert tensor_bytes(back[n]) == tensor_bytes(t), n
    for name in corrupted_files():
        try:
            parse(open(os.path.join(out, name + ".safetensors"), "rb").read())
            assert not name.startswith("bad_"), name
        except FormatError:
            assert not name.startswith("ok_"), name
    fx = Fixture("safetensors.txt", "gen_safetensors.py")
    fx.case("torch_all")
    for n, t in tensors.items():
        fx.tensor(n, t)
    fx.write()


def main(argv):
    if len(argv) >= 2 and argv[0] == "--check":
        same = argv[3] if len(argv) == 4 and argv[2] == "--same-as" else None
        try:
            check(argv[1], same)
        except (FormatError, OSError) as e:
            print("gen_safetensors.py --check: %s" % e, file=sys.stderr)
            return 1
        return 0
    if argv:
        print(__doc__, file=sys.stderr)
        return 2
    generate()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
