#!/usr/bin/env python3
"""Fixtures for tests/test_io.c, written by NumPy (and by hand where NumPy
cannot be made to write a case). Run from tests/: python3 golden/gen_io_fixtures.py
The values follow value(dtype, i) below; test_io.c computes the same."""
import json
import os
import struct
import zipfile
import zlib

import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "io")


def value(dt, i):
    """element i of a test array of dtype dt (test_io.c's fixture_value)"""
    k = (i * 7) % 11 - 3
    return {"|b1": i % 3 == 0, "<i4": k, "<i8": k * (1 << 40), "<u4": (i * 7) % 11 + 4000000000,
            "<f4": k + 0.25, "<f8": k / 8.0 + 1e-300 * (i == 5)}[dt]


def arr(dt, shape):
    n = int(np.prod(shape, dtype=np.int64))
    return np.array([value(dt, i) for i in range(n)], dtype=np.dtype(dt)).reshape(shape)


DTYPES = ["|b1", "<i4", "<i8", "<u4", "<f4", "<f8"]
SHAPES = {"r0": (), "r1": (5,), "r2": (2, 3), "r3": (2, 1, 3), "r4": (1, 2, 2, 2), "e": (0, 3)}


def arrays():
    out = {}
    for dt in DTYPES:
        for sname, shape in SHAPES.items():
            out[f"{dt[1:]}_{sname}"] = arr(dt, shape)
    return out


def zip64_archive(path, members):
    """a stored zip whose central directory uses zip64 extra fields for the
    sizes and offsets, with zip64 end records, as a writer must past 4 GiB"""
    body, central = b"", b""
    for name, data in members:
        name = name.encode()
        crc, off = zlib.crc32(data), len(body)
        extra = struct.pack("<HHQQ", 1, 16, len(data), len(data))
        body += struct.pack("<IHHHHHIIIHH", 0x04034B50, 45, 0, 0, 0, 0x21, crc, 0xFFFFFFFF, 0xFFFFFFFF,
                            len(name), len(extra)) + name + extra + data
        cextra = struct.pack("<HHQQQ", 1, 24, len(data), len(data), off)
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45, 0, 0, 0, 0x21, crc, 0xFFFFFFFF,
                               0xFFFFFFFF, len(name), len(cextra), 0, 0, 0, 0, 0xFFFFFFFF) + name + cextra
    cd_off, n = len(body), len(members)
    end64_off = cd_off + len(central)
    end64 = struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, n, n, len(central), cd_off)
    loc = struct.pack("<IIQI", 0x07064B50, 0, end64_off, 1)
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    with open(path, "wb") as f:
        f.write(body + central + end64 + loc + end)


def npy_bytes(a):
    import io
    b = io.BytesIO()
    np.save(b, a)
    return b.getvalue()


def safetensors_file(path, tensors, metadata):
    """written by hand as the format's reference writer does: data sorted by
    name, header padded with spaces to 8 bytes"""
    header, data = {"__metadata__": metadata}, b""
    for name in sorted(tensors):
        a = tensors[name]
        code = {"|b1": "BOOL", "<i4": "I32", "<i8": "I64", "<u4": "U32", "<f4": "F32", "<f8": "F64"}[a.dtype.str]
        header[name] = {"dtype": code, "shape": list(a.shape), "data_offsets": [len(data), len(data) + a.nbytes]}
        data += a.tobytes()
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + data)


def main():
    os.makedirs(OUT, exist_ok=True)
    a = arrays()
    np.savez(os.path.join(OUT, "numpy_savez.npz"), **a)
    np.savez_compressed(os.path.join(OUT, "numpy_compressed.npz"), **a)
    zip64_archive(os.path.join(OUT, "zip64.npz"),
                  [("f4_r2.npy", npy_bytes(a["f4_r2"])), ("i8_r1.npy", npy_bytes(a["i8_r1"]))])
    np.save(os.path.join(OUT, "f4_r3.npy"), a["f4_r3"])
    np.save(os.path.join(OUT, "bigendian.npy"), a["f4_r2"].astype(">f4"))
    np.save(os.path.join(OUT, "fortran.npy"), np.asfortranarray(a["f8_r2"]))
    np.save(os.path.join(OUT, "float16.npy"), a["f4_r2"].astype("<f2"))
    np.save(os.path.join(OUT, "object.npy"), np.array([1, "x"], dtype=object), allow_pickle=True)
    np.savez(os.path.join(OUT, "not_npy_member.npz"), x=a["f4_r1"])
    with zipfile.ZipFile(os.path.join(OUT, "not_npy_member.npz"), "a") as z:
        z.writestr("readme.txt", "not an array")
    safetensors_file(os.path.join(OUT, "reference.safetensors"),
                     {"f4_r2": a["f4_r2"], "i8_r1": a["i8_r1"], 'q"uote\\d \u00e9': a["b1_r3"],
                      "u4_e": a["u4_e"]}, {"format": "np", "note": "tab\there"})


if __name__ == "__main__":
    main()
