#!/usr/bin/python3
"""Golden draws for jx's random samplers in #19's dtypes (tests/test_random_lowp.c).

These values do NOT come from running JAX (it is not installed here). They
come from this NumPy transcription, written for the purpose from JAX's own
source (jax/_src/prng.py and jax/_src/random.py), with the default
jax_threefry_partitionable=True (JAX >= 0.5; jx's f32 path, tested against
JAX's documented outputs in test_random.c, uses the same layout):

  element i of a draw hashes the 64-bit counter i, (y0, y1) = threefry2x32(
  key, (i >> 32, i & 0xffffffff));  8/16-bit bits = low bits of y0 ^ y1,
  32-bit bits = y0 ^ y1, 64-bit bits = y0 << 32 | y1;  split(key, 2)[j] =
  (y0, y1) of counter j.

  uniform (_uniform): bf16 has nmant 7 < 8 so it draws 8-bit words, f16
  16-bit words; f = (bits >> (width - nmant)) * 2^-nmant (the mantissa
  trick minus 1, exact); then max(lo, f * (hi - lo) + lo), each op computed
  in f32 and rounded to the dtype (XLA:CPU's per-op bf16 normalization);
  lo and hi are Python floats, so they reach the dtype through f32.
  normal (_normal_real): sqrt(2) * erf_inv(uniform(nextafter(-1, 0), 1)),
  erf_inv computed in f32 (XLA upcasts bf16/f16) by the Giles polynomial
  with FMA Horner steps, then rounded; the product rounded in the dtype.
  randint (_randint): split, two draws hi/lo of the dtype's width, span and
  multiplier in the unsigned dtype of that width, wrapping arithmetic.

bf16 rounding is done by hand (NumPy has no bfloat16): round to nearest,
ties to even, on the f32 bits. Output: one line per draw,
  op dtype k0 k1 p0 p1 n hex...
(hex = the raw bits of each element, in the dtype's width).
Run: cd tests/golden && /usr/bin/python3 gen_random_lowp.py > random_lowp.txt
"""
from fractions import Fraction
import numpy as np

U32 = np.uint32
ROT = [13, 15, 26, 6, 17, 29, 16, 24]


def rotl(x, r):
    return (x << U32(r)) | (x >> U32(32 - r))


def threefry(k0, k1, x0, x1):
    """Threefry-2x32, 20 rounds (Random123), on uint32 arrays."""
    with np.errstate(over="ignore"):
        ks = [U32(k0), U32(k1), U32(0x1BD11BDA) ^ U32(k0) ^ U32(k1)]
        x0 = x0 + ks[0]
        x1 = x1 + ks[1]
        for r in range(20):
            x0 = x0 + x1
            x1 = rotl(x1, ROT[r % 8]) ^ x0
            if r % 4 == 3:
                s = r // 4 + 1
                x0 = x0 + ks[s % 3]
                x1 = x1 + ks[(s + 1) % 3] + U32(s)
    return x0, x1


def words(key, n):
    lo = np.arange(n, dtype=U32)
    return threefry(key[0], key[1], np.zeros(n, U32), lo)


def bits(key, width, n):
    y0, y1 = words(key, n)
    if width == 64:
        return (y0.astype(np.uint64) << np.uint64(32)) | y1.astype(np.uint64)
    b = y0 ^ y1
    return b.astype({8: np.uint8, 16: np.uint16, 32: np.uint32}[width])


def split2(key):
    y0, y1 = words(key, 2)
    return [(int(y0[j]), int(y1[j])) for j in range(2)]


# ------------------------------------------------------------ rounding
def bf16_bits(x):
    """f32 array -> bf16 bits (uint16), RNE; NaN stays a quiet NaN."""
    U = np.uint64
    b = np.atleast_1d(np.asarray(x, np.float32)).view(np.uint32).astype(U)
    r = (b + U(0x7FFF) + ((b >> U(16)) & U(1))) >> U(16)
    nan = np.isnan(b.astype(np.uint32).view(np.float32))
    r = np.where(nan, (b >> U(16)) | U(0x40), r)
    if np.ndim(x) == 0:
        return r.astype(np.uint16)[0]
    return r.astype(np.uint16)


def half_bits(dt, x):
    if dt == "bf16":
        return bf16_bits(x)
    return np.asarray(x, np.float32).astype(np.float16).view(np.uint16)


def widen(dt, h):
    if dt == "bf16":
        return (h.astype(np.uint32) << U32(16)).view(np.float32)
    return h.view(np.float16).astype(np.float32)


def rnd(dt, x):
    """round an f32 array to dt, back as f32 (one XLA op's output)"""
    return widen(dt, half_bits(dt, np.asarray(x, np.float32)))


def f32_of_fraction(q):
    """the f32 nearest to the rational q, ties to even"""
    c = np.float32(float(q))  # within an ulp; fix by exact comparison
    best = c
    for n in (np.nextafter(c, np.float32(-np.inf)), np.nextafter(c, np.float32(np.inf))):
        d_n, d_b = abs(Fraction(float(n)) - q), abs(Fraction(float(best)) - q)
        if d_n < d_b or (d_n == d_b and (int(np.float32(n).view(U32)) & 1) == 0):
            best = n
    return np.float32(best)


def fma32(a, b, c):
    return np.array([f32_of_fraction(Fraction(float(x)) * Fraction(float(y)) + Fraction(float(z)))
                     for x, y, z in zip(a, b, c)], np.float32)


LT = [2.81022636e-08, 3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087,
      -0.00125372503, -0.00417768164, 0.246640727, 1.50140941]
GE = [-0.000200214257, 0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773,
      -0.0076224613, 0.00943887047, 1.00167406, 2.83297682]


def erf_inv32(x):
    """XLA's f32 erf_inv (M. Giles): w = -log1p(-x*x); Horner in w - 2.5 or sqrt(w) - 3"""
    x = np.asarray(x, np.float32)
    w = -np.log1p(x * -x)
    small = w < np.float32(5)
    w = np.where(small, w - np.float32(2.5), np.sqrt(w) - np.float32(3)).astype(np.float32)
    c = [np.where(small, np.float32(a), np.float32(b)).astype(np.float32) for a, b in zip(LT, GE)]
    p = c[0]
    for i in range(1, 9):
        p = fma32(p, w, c[i])
    with np.errstate(over="ignore", invalid="ignore"):
        return np.where(np.abs(x) == 1, x * np.float32(np.inf), p * x).astype(np.float32)


def erf32(x):
    """XLA:CPU's f32 erf: a rational in x*x with FMA Horner steps (as jx's erf_f32)"""
    x = np.atleast_1d(np.asarray(x, np.float32))
    x2 = x * x
    one = np.ones_like(x)

    def horner(cs):
        p = np.full_like(x, np.float32(cs[0]))
        p = fma32(x2, p, one * np.float32(cs[1]))
        for c in cs[2:]:
            p = fma32(x2, p, one * np.float32(c))
        return p
    p = x * horner([0.00022905065861350646, 0.0034082910107109506, 0.050955695062380861,
                    0.18520832239976145, 1.128379143519084])
    q = horner([-1.1791602954361697e-7, 0.000023547966471313185, 0.0010179625278914885,
                0.014070470171167667, 0.11098505178285362, 0.49746925110067538, 1.0])
    return np.where(np.abs(x) >= np.float32(3.832506856900711), np.copysign(np.float32(1), x),
                    p / q).astype(np.float32)


# ------------------------------------------------------------ samplers
NMANT = {"bf16": 7, "f16": 10}


def uniform(key, dt, n, lo, hi):
    nm = NMANT[dt]
    width = 8 if nm < 8 else 16
    b = bits(key, width, n).astype(np.uint32) >> U32(width - nm)
    f = b.astype(np.float32) * np.float32(2.0 ** -nm)  # exact: the mantissa trick minus 1
    lo = rnd(dt, np.float32(lo))
    hi = rnd(dt, np.float32(hi))
    span = rnd(dt, hi - lo)
    r = rnd(dt, rnd(dt, f * span) + lo)
    return rnd(dt, np.maximum(lo, r))


def nextafter_dt(dt, v, toward):
    h = int(half_bits(dt, np.float32(v)))
    x = float(widen(dt, np.array(h, np.uint16)))
    h = h + 1 if (toward > x) == (x > 0) else h - 1
    return widen(dt, np.array(h, np.uint16))


def normal(key, dt, n):
    u = uniform(key, dt, n, nextafter_dt(dt, -1.0, 0.0), 1.0)
    sqrt2 = rnd(dt, np.float32(np.sqrt(2)))
    return rnd(dt, sqrt2 * rnd(dt, erf_inv32(u)))


def truncated_normal(key, dt, n, lower, upper):
    """_truncated_normal: uniform between erf(lower / sqrt2) and erf(upper / sqrt2)
    (each op in dt), sqrt2 * erf_inv, clipped into (lower, upper) by nextafter in dt"""
    sqrt2 = rnd(dt, np.float32(np.sqrt(2)))
    lo, hi = rnd(dt, np.float32(lower)), rnd(dt, np.float32(upper))
    a = rnd(dt, erf32(rnd(dt, lo / sqrt2)))[0]
    b = rnd(dt, erf32(rnd(dt, hi / sqrt2)))[0]
    u = uniform(key, dt, n, a, b)
    out = rnd(dt, sqrt2 * rnd(dt, erf_inv32(u)))
    out = np.maximum(out, nextafter_dt(dt, lo, np.inf))
    return np.minimum(out, nextafter_dt(dt, hi, -np.inf))


INTS = {"i8": (np.int8, np.uint8), "u8": (np.uint8, np.uint8), "i16": (np.int16, np.uint16),
        "u16": (np.uint16, np.uint16), "i32": (np.int32, np.uint32), "u32": (np.uint32, np.uint32),
        "i64": (np.int64, np.uint64), "u64": (np.uint64, np.uint64)}


def randint(key, dt, n, minval, maxval):
    t, ut = INTS[dt]
    info = np.iinfo(t)
    nbits = info.bits
    dmax = min(int(info.max), 2 ** 63 - 1)  # maxval is an int64 here
    out_of_range = maxval > dmax
    lo = min(max(minval, int(info.min)), dmax)
    hi = min(max(maxval, int(info.min)), dmax)
    mask = (1 << nbits) - 1
    span = (hi - lo) & mask
    if hi <= lo:
        span = 1
    if out_of_range and hi > lo:
        span = (span + 1) & mask
    mult = (1 << (nbits // 2)) % span if span else 1 << (nbits // 2)
    mult = (mult * mult) & mask
    if span:
        mult %= span
    k1, k2 = split2(key)
    hb, lb = bits(k1, nbits, n), bits(k2, nbits, n)
    S, M = ut(span), ut(mult)
    with np.errstate(over="ignore"):
        rem = (lambda a: a % S) if span else (lambda a: a)  # x % 0 = x (XLA)
        off = rem(rem(hb) * M + rem(lb))
        return (off.astype(t) + np.array(lo & mask, ut).astype(t)).astype(t)


# ------------------------------------------------------------ output
KEYS = [(0, 0), (0, 42), (0x12345678, 0x9ABCDEF0), (928981903, 3453687069)]  # the last: split(key(0))[1]


def emit(op, dt, key, p0, p1, raw, width):
    hexes = " ".join(format(int(v), "0%dx" % (width // 4)) for v in raw)
    print(op, dt, key[0], key[1], p0, p1, len(raw), hexes)


def main():
    print("# generated by gen_random_lowp.py (NumPy %s): a NumPy transcription of JAX's" % np.__version__)
    print("# jax/_src/prng.py and random.py (threefry_partitionable=True), NOT values from running JAX")
    for key in KEYS:
        for dt, w in (("u8", 8), ("u16", 16), ("u32", 32), ("u64", 64)):
            emit("bits", dt, key, 0, 0, bits(key, w, 37), w)
        for dt in ("bf16", "f16"):
            for lo, hi in ((0.0, 1.0), (-3.0, 5.0), (0.1, 0.7), (-1e-3, 2.5)):
                emit("uniform", dt, key, repr(lo), repr(hi), half_bits(dt, uniform(key, dt, 64, lo, hi)), 16)
            emit("normal", dt, key, 0, 0, half_bits(dt, normal(key, dt, 200)), 16)
            for lo, hi in ((-0.5, 1.5), (-2.0, 0.3)):
                emit("truncated_normal", dt, key, repr(lo), repr(hi),
                     half_bits(dt, truncated_normal(key, dt, 100, lo, hi)), 16)
        for dt, ranges in (("i8", ((-5, 7), (-128, 128), (0, 300), (-1000, 1000))),
                           ("u8", ((0, 256), (3, 17), (-10, 5), (9, 9))),
                           ("i16", ((-300, 4000), (-32768, 32768))),
                           ("u16", ((0, 65536), (100, 40000))),
                           ("i32", ((-3, 11),)), ("u32", ((0, 4294967296), (5, 1000))),
                           ("i64", ((-(2 ** 62), 2 ** 62), (-7, 100))),
                           ("u64", ((0, 2 ** 63 - 1), (12, 13), (10, 1000003)))):
            w = np.iinfo(INTS[dt][0]).bits
            for lo, hi in ranges:
                r = randint(key, dt, 40, lo, hi).view(INTS[dt][1])
                emit("randint", dt, key, lo, hi, r, w)


if __name__ == "__main__":
    main()
