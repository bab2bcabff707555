#!/usr/bin/env python3
"""Reads back the files tests/test_io.c wrote with jx, with NumPy (and with
PyTorch through the safetensors package when both are installed), checking
every value: python3 golden/io_readback.py DIR. Exit 0 when all match."""
import json
import os
import struct
import sys
import zipfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_io_fixtures import arrays  # noqa: E402  (the same values)

d = sys.argv[1]
want = arrays()


def same(name, got, ref):
    if got.dtype != ref.dtype or got.shape != ref.shape or not np.array_equal(got, ref):
        sys.exit(f"io_readback: {name}: got {got.dtype}{got.shape} {got!r}, want {ref.dtype}{ref.shape} {ref!r}")


for f in ["stored.npz", "compressed.npz", "zip64.npz"]:
    with np.load(os.path.join(d, f)) as z:
        if sorted(z.files) != sorted(want):
            sys.exit(f"io_readback: {f}: members {sorted(z.files)}")
        for k in want:
            same(f + ":" + k, z[k], want[k])
    with zipfile.ZipFile(os.path.join(d, f)) as z:
        bad = z.testzip()
        if bad:
            sys.exit(f"io_readback: {f}: CRC error in {bad}")
same("x.npy", np.load(os.path.join(d, "x.npy")), want["f8_r3"])

# safetensors, parsed as the format says (json header, little-endian data)
with open(os.path.join(d, "t.safetensors"), "rb") as fh:
    raw = fh.read()
n = struct.unpack("<Q", raw[:8])[0]
if (8 + n) % 8:
    sys.exit("io_readback: t.safetensors: data not 8-aligned")
header = json.loads(raw[8:8 + n])
codes = {"BOOL": "|b1", "I32": "<i4", "I64": "<i8", "U32": "<u4", "F32": "<f4", "F64": "<f8"}
for k, v in header.items():
    b, e = v["data_offsets"]
    got = np.frombuffer(raw[8 + n + b:8 + n + e], dtype=codes[v["dtype"]]).reshape(v["shape"])
    same("t.safetensors:" + k, got, want[k])
if sorted(header) != sorted(want):
    sys.exit(f"io_readback: t.safetensors: tensors {sorted(header)}")
try:
    import torch  # noqa: F401
    from safetensors.torch import load_file
except ImportError:
    print("io_readback: PyTorch/safetensors not installed: torch check skipped")
else:
    t = load_file(os.path.join(d, "t.safetensors"))
    for k in want:
        same("torch:" + k, t[k].numpy(), want[k])

with np.load(os.path.join(d, "tree.npz")) as z:
    same("tree.npz:[0][1]", z["[0][1]"], want["i4_r2"])
    same("tree.npz:[1]", z["[1]"], want["f4_r0"])
print("io_readback: all files read back by NumPy match")
