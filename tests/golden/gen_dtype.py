#!/usr/bin/python3
"""Golden data for tests/test_dtype.c (#19): conversions to bf16/f16 as bit
patterns, and bf16/f16 arithmetic (widen to f32, compute, round once).

bf16 from f32 and bf16 arithmetic come from PyTorch 1.13 (torch.bfloat16),
f16 from NumPy 1.24 (np.float16, which converts f64 directly, rounding
once). f64 -> bf16 has no library golden that rounds once (PyTorch goes
through f32), so it comes from an exact reference here (fractions), which
is first checked against PyTorch on f32 inputs. NaNs are left to the hand
tests (the libraries differ on NaN payloads).

Run with /usr/bin/python3 (NumPy and PyTorch); writes dtype_golden.txt:
  <kind> <input bits (hex)> <expected bits (hex)>
  <op> <dtype> <a bits> <b bits> <expected bits>
"""
import math
import os
import random
from fractions import Fraction

import numpy as np
import torch

random.seed(19)
out = []


def f32(bits):
    return np.array([bits], dtype=np.uint32).view(np.float32)[0]


def f64(bits):
    return np.array([bits], dtype=np.uint64).view(np.float64)[0]


def bf16_of_f32(x):
    t = torch.from_numpy(np.array([x], dtype=np.float32)).to(torch.bfloat16)
    return int(t.view(torch.int16).numpy().astype(np.uint16)[0])


def f16_bits(x):
    return int(np.array([x]).astype(np.float16).view(np.uint16)[0])


def ref_bf16(x):
    """x (a finite float, or inf) rounded once to bf16, ties to even."""
    if math.isinf(x):
        return 0x7F80 | (0x8000 if x < 0 else 0)
    sign = 0x8000 if math.copysign(1.0, x) < 0 else 0
    a = Fraction(abs(x))
    if a == 0:
        return sign
    # bf16: 8 significant bits, exponents -126..127, subnormals step 2^-133
    e = math.floor(math.log2(a)) if a >= Fraction(1, 2**126) else -126
    while Fraction(2) ** e > a:
        e -= 1
    while Fraction(2) ** (e + 1) <= a:
        e += 1
    e = max(e, -126)
    step = Fraction(2) ** (e - 7)
    q = round(a / step)  # Fraction rounds half to even
    v = q * step
    if v >= Fraction(2) ** 128:
        return sign | 0x7F80
    # encode v
    if v < Fraction(2) ** -126:
        return sign | int(v / Fraction(2) ** -133)
    ee = e if q < 256 else e + 1
    mant = int(v / Fraction(2) ** ee * 128) - 128
    return sign | ((ee + 127) << 7) | mant


# --- f32 -> bf16 (PyTorch) and f32 -> f16 (NumPy)
edge32 = [0x00000000, 0x80000000, 0x7F800000, 0xFF800000, 0x3F800000, 0x3F808000, 0x3F818000,
          0x3F808001, 0x3F80FFFF, 0x7F7FFFFF, 0x7F7F7FFF, 0x7F7F8000, 0x00000001, 0x00008000,
          0x00010000, 0x00018000, 0x807FFFFF, 0x00800000, 0x477FE000, 0x477FEFFF, 0x477FF000,
          0x477FF001, 0x38800000, 0x387FFFFF, 0x33800000, 0x33000000, 0x33000001, 0x32FFFFFF,
          0x33C00000, 0x35000000, 0x3DCCCCCD, 0xC0490FDB, 0x3EAAAAAB, 0x387FC000, 0x387FE000,
          0x38000000, 0x37FFFFFF]
rand32 = [random.getrandbits(32) for _ in range(400)]
rand32 = [b for b in rand32 if (b & 0x7F800000) != 0x7F800000]
small = [(random.getrandbits(9) + 0x300) << 20 | random.getrandbits(20) for _ in range(100)]
for b in edge32 + rand32 + small:
    x = f32(b)
    bf = bf16_of_f32(x)
    assert bf == ref_bf16(float(x)), (hex(b), hex(bf), hex(ref_bf16(float(x))))
    out.append("f32_bf16 %08x %04x" % (b, bf))
    out.append("f32_f16 %08x %04x" % (b, f16_bits(np.float32(x))))

# --- f64 -> f16 (NumPy, one rounding) and f64 -> bf16 (reference)
edge64 = [0x3FF0100000000001, 0x3FF0080000000000, 0x3FF0080000000001, 0x3FF0180000000000,
          0x40EFFE0000000000, 0x40EFFC0000000000, 0x40EFFDFFFFFFFFFF, 0x3E70000000000000,
          0x3E6FFFFFFFFFFFFF, 0x3E60000000000000, 0x3E60000000000001, 0x7FEFFFFFFFFFFFFF,
          0x47EFFFFFE0000000, 0x47EFE00000000000, 0x47EFF00000000000, 0x36A0000000000000,
          0x3690000000000000, 0x3690000000000001, 0x0000000000000001, 0x8000000000000000,
          0x3FB999999999999A, 0x400921FB54442D18]
# values one f64 ulp off a bf16/f16 tie: rounding through f32 would land on the tie
for k in range(60):
    m = random.getrandbits(7) | 0x80
    e = random.randint(-20, 20)
    tie = (2 * m + 1) * 2.0 ** (e - 8)
    for t in (tie, np.nextafter(tie, np.inf), np.nextafter(tie, 0)):
        edge64.append(int(np.array([t]).view(np.uint64)[0]))
rand64 = [random.getrandbits(64) for _ in range(200)]
rand64 = [b for b in rand64 if (b >> 52) & 0x7FF != 0x7FF]
mid64 = [(random.randint(0x3E0, 0x410) << 52) | random.getrandbits(52) for _ in range(200)]
for b in edge64 + rand64 + mid64:
    x = f64(b)
    out.append("f64_bf16 %016x %04x" % (b, ref_bf16(float(x))))
    out.append("f64_f16 %016x %04x" % (b, f16_bits(np.float64(x))))

# --- arithmetic: bf16 (PyTorch) and f16 (NumPy)
def rand_half(kind):
    while True:
        h = random.getrandbits(16)
        if kind == "bf16":
            e = (h >> 7) & 0xFF
            ok = e != 0xFF and 0x70 <= e <= 0x8F
        else:
            e = (h >> 10) & 0x1F
            ok = e != 0x1F and 8 <= e <= 22
        if ok:
            return h


def as_torch(h):
    return torch.from_numpy(np.array([h], dtype=np.uint16).view(np.int16)).view(torch.bfloat16)


def as_np16(h):
    return np.array([h], dtype=np.uint16).view(np.float16)


def bits_t(t):
    return int(t.view(torch.int16).numpy().astype(np.uint16)[0])


def bits_n(a):
    return int(np.asarray(a, dtype=np.float16).reshape(1).view(np.uint16)[0])


ops_t = {"add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div,
         "max": torch.maximum, "min": torch.minimum}
ops_n = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide,
         "max": np.maximum, "min": np.minimum}
for op in ops_t:
    for _ in range(40):
        a, b = rand_half("bf16"), rand_half("bf16")
        out.append("%s bf16 %04x %04x %04x" % (op, a, b, bits_t(ops_t[op](as_torch(a), as_torch(b)))))
        a, b = rand_half("f16"), rand_half("f16")
        with np.errstate(all="ignore"):
            r = ops_n[op](as_np16(a), as_np16(b))
        out.append("%s f16 %04x %04x %04x" % (op, a, b, bits_n(r)))
for _ in range(40):  # sqrt: correctly rounded in f32, then rounded to 16 bits
    a = rand_half("bf16") & 0x7FFF
    out.append("sqrt bf16 %04x 0000 %04x" % (a, bits_t(torch.sqrt(as_torch(a)))))
    a = rand_half("f16") & 0x7FFF
    out.append("sqrt f16 %04x 0000 %04x" % (a, bits_n(np.sqrt(as_np16(a)))))

here = os.path.dirname(os.path.abspath(__file__))
# NumPy's own .npz of the new integer dtypes and f16 (jx_npz_load reads it)
np.savez(os.path.join(here, "dtype_io.npz"),
         u8=np.array([0, 7, 255], np.uint8), i8=np.array([-128, -1, 127], np.int8),
         i16=np.array([-32768, 5, 32767], np.int16), u16=np.array([0, 9, 65535], np.uint16),
         u64=np.array([0, 2**53 + 1, 2**64 - 1], np.uint64),
         f16=np.array([0.1, -65504, np.inf], np.float16))
path = os.path.join(here, "dtype_golden.txt")
with open(path, "w") as f:
    f.write("# generated by gen_dtype.py (PyTorch %s, NumPy %s)\n" % (torch.__version__, np.__version__))
    f.write("\n".join(out) + "\n")
print(len(out), "lines")
