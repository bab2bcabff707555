"""Golden data for issue #18's math part (elementwise math, reductions, nn
functions, creation ops): called by gen_golden.py, which owns the helpers
and the file format (see its docstring). Writes two files:

  math_golden.txt  op cases in ops_golden.txt's format, read by
                   tests/test_ops_golden.c beside ops_golden.txt
  math_ref.txt     accuracy references: '<fn> <x> [<y>] <value>' with every
                   number a C99 hex float (float.hex), the value correctly
                   rounded to f64 from mpmath at 50 digits; tests/test_math.c
                   states the max ulp error of jx's f64 and f32 results

References: NumPy for arithmetic, Python's math module and mpmath for the
special functions (no SciPy), computed in float64 from the inputs and then
rounded to the result dtype, with JAX's semantics where they differ from
NumPy (noted at each case). The data is determined by SEED.
"""
import math

import mpmath
import numpy as np

SEED = 20261207
mpmath.mp.dps = 50


def setup(g):
    global G, A, W, emit, rng
    G, A, W, emit = g, g.A, g.W, g.emit
    rng = np.random.default_rng(SEED)
    g.rng = rng  # g.rand draws from it


# ------------------------------------------------------------ references
def _mp_or_nan(f):
    def h(*xs):
        try:
            v = f(*[mpmath.mpf(float(x)) for x in xs])
            if isinstance(v, mpmath.mpc):
                return math.nan
            return float(v)
        except (ValueError, ZeroDivisionError, OverflowError):
            return math.nan
    return h


def _lgamma(x):
    if math.isinf(x):
        return math.inf
    if x <= 0 and x == math.floor(x):
        return math.inf  # poles: +inf, as libm and JAX
    return float(mpmath.log(abs(mpmath.gamma(mpmath.mpf(x))))) if not math.isnan(x) else math.nan


def _digamma(x):
    if math.isnan(x) or x == -math.inf:
        return math.nan
    if x == math.inf:
        return math.inf
    if x <= 0 and x == math.floor(x):
        return math.nan  # XLA's digamma: NaN at the poles (PyTorch: -inf at 0)
    return float(mpmath.digamma(mpmath.mpf(x)))


def _erfinv(x):
    if math.isnan(x) or abs(x) > 1:
        return math.nan
    if abs(x) == 1:
        return math.copysign(math.inf, x)
    return float(mpmath.erfinv(mpmath.mpf(x)))


def _exp2(x):
    if math.isnan(x):
        return x
    try:
        return float(mpmath.power(2, mpmath.mpf(x))) if abs(x) < 1e5 else (math.inf if x > 0 else 0.0)
    except OverflowError:
        return math.inf


def _acosh(x):
    return math.nan if x < 1 or math.isnan(x) else (math.inf if x == math.inf else float(mpmath.acosh(x)))


def _atanh(x):
    if math.isnan(x) or abs(x) > 1:
        return math.nan
    if abs(x) == 1:
        return math.copysign(math.inf, x)
    return float(mpmath.atanh(mpmath.mpf(x)))


def _safe(f, dom=None):
    def h(x):
        if math.isnan(x):
            return math.nan
        try:
            return f(x)
        except (ValueError, OverflowError):
            return math.nan if dom is None else dom(x)
    return h


def _log2(x):
    if math.isnan(x) or x < 0:
        return math.nan
    if x == 0:
        return -math.inf
    return math.inf if x == math.inf else math.log2(x)


UFN = {
    "erf": _safe(math.erf), "erfc": _safe(math.erfc), "erfinv": _erfinv, "lgamma": _lgamma,
    "digamma": _digamma,
    "tan": _safe(math.tan), "asin": _safe(math.asin), "acos": _safe(math.acos), "atan": _safe(math.atan),
    "sinh": _safe(math.sinh, lambda x: math.copysign(math.inf, x)),
    "cosh": _safe(math.cosh, lambda x: math.inf), "asinh": _safe(math.asinh), "acosh": _acosh,
    "atanh": _atanh, "exp2": _exp2, "log2": _log2,
}
# sample domains (accuracy table and golden cases): (lo, hi) pieces
DOMAIN = {
    "erf": [(-6, 6), (-1e-3, 1e-3)], "erfc": [(-6, 27)], "erfinv": [(-0.999999, 0.999999), (-1e-3, 1e-3)],
    "lgamma": [(1e-3, 40), (-4.9, -3.1), (0.8, 2.2)], "digamma": [(1e-3, 40), (-4.9, -3.1), (1.7, 30)],
    "tan": [(-1.5, 1.5), (-100, 100)], "asin": [(-1, 1)], "acos": [(-1, 1)], "atan": [(-50, 50)],
    "sinh": [(-80, 80), (-1e-3, 1e-3)], "cosh": [(-80, 80)], "asinh": [(-1e4, 1e4), (-1, 1)],
    "acosh": [(1, 1e4), (1, 1.5)], "atanh": [(-0.999, 0.999)], "exp2": [(-120, 120), (-1, 1)],
    "log2": [(1e-30, 1e30), (0.5, 2)],
}


def hexf(v):
    return float(v).hex()


def accuracy_table():
    """math_ref.txt: ~240 points per function, each function's f64 value
    from mpmath. Points are f32 numbers, so one table serves both dtypes."""
    lines = []
    for fn, pieces in DOMAIN.items():
        xs = []
        for lo, hi in pieces:
            xs += list(np.linspace(lo, hi, 80)) + list(rng.uniform(lo, hi, 40))
        for x in xs:
            x = float(np.float32(x))
            v = UFN[fn](x)
            if fn in ("lgamma", "digamma") and abs(v) < 0.1:
                continue  # near their zeros an ulp of the value is no measure (test_math.c: absolute error)
            lines.append("%s %s %s" % (fn, hexf(x), hexf(v)))
    for _ in range(240):
        y, x = (float(np.float32(v)) for v in rng.uniform(-10, 10, 2))
        lines.append("atan2 %s %s %s" % (hexf(y), hexf(x), hexf(float(mpmath.atan2(y, x)))))
    return lines


# ------------------------------------------------------------ elementwise
SPECIAL = [0.0, -0.0, math.inf, -math.inf, math.nan]
EDGE = {"asin": [1.0, -1.0, 1.5], "acos": [1.0, -1.0, -1.5], "acosh": [1.0, 0.5], "atanh": [1.0, -1.0, 2.0],
        "erfinv": [1.0, -1.0, 1.5], "lgamma": [1.0, 2.0, -1.0, -2.5, 1e-30], "digamma": [1.0, -1.0, -2.5, 1e-30],
        "exp2": [200.0, -200.0, 1100.0, 0.5], "erfc": [30.0, -30.0], "sinh": [800.0], "cosh": [-800.0],
        "log2": [8.0, 0.125, -1.0, 1e-45], "tan": [1.5707963267948966]}


def ref_u(fn, x, dt):
    return G.cast(np.vectorize(lambda v: UFN[fn](float(v)), otypes=[np.float64])(x), dt)


def float_unary_cases():
    for fn, pieces in DOMAIN.items():
        lo, hi = pieces[0]
        for dt in G.FLOATS:
            a = G.Arg(dt, rng.uniform(lo, hi, (2, 3)))
            emit(fn, "-", [a], (dt, False, ref_u(fn, a.v, dt)))
            a = G.Arg(dt, np.array(SPECIAL + EDGE.get(fn, []), dtype=np.float64))
            emit(fn, "-", [a], (dt, False, ref_u(fn, a.v, dt)))
            a = G.Arg(dt, rng.uniform(lo, hi, ()))
            emit(fn, "-", [a], (dt, False, ref_u(fn, a.v, dt)))
            a = G.Arg(dt, np.zeros((0, 3)))
            emit(fn, "-", [a], (dt, False, np.zeros((0, 3), G.NP[dt])))
        # ints and bool promote to f32 (jnp promotes to inexact)
        ilo, ihi = (max(int(lo), -3), min(int(hi), 5)) if fn not in ("acosh",) else (1, 6)
        if fn in ("asin", "acos", "atanh", "erfinv"):
            ilo, ihi = -1, 1
        a = A("i32", (2, 3), lo=ilo, hi=ihi)
        emit(fn, "-", [a], ("f32", False, ref_u(fn, a.v, "f32")))
        a = A("bool", (4,))
        emit(fn, "-", [a], ("f32", False, ref_u(fn, a.v.astype(np.float64), "f32")))
        a = W("f32", 0.5)
        emit(fn, "-", [a], ("f32", True, ref_u(fn, a.v, "f32")))
        a = G.Arg("f32", rng.uniform(lo, hi, (2, 3, 4)), perm=(2, 0, 1))
        emit(fn, "-", [a], ("f32", False, ref_u(fn, a.v, "f32")))


def rounding_cases():
    halves = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 0.49999997, 2.675, -0.0, 1e300, math.inf, -math.inf,
                       math.nan, 4503599627370495.5, -7.2])
    for fn, f in (("ceil", np.ceil), ("round", np.round)):  # np.round: half to even, as jnp.round
        for dt in G.FLOATS:
            a = G.Arg(dt, halves)
            emit(fn, "-", [a], (dt, False, f(a.v)))
            a = G.Arg(dt, np.round(rng.uniform(-5, 5, (3, 4)) * 4) / 4)
            emit(fn, "-", [a], (dt, False, f(a.v)))
            a = G.Arg(dt, np.zeros((2, 0)))
            emit(fn, "-", [a], (dt, False, f(a.v)))
        for dt in G.INTS + ["bool"]:  # integers come back unchanged (jnp.ceil/round)
            a = A(dt, (2, 3))
            emit(fn, "-", [a], (dt, False, a.v))
        a = W("f32", 2.5)
        emit(fn, "-", [a], ("f32", True, f(np.float32(2.5))))


def classify_cases():
    vals = np.array([0.0, -0.0, 1.5, math.inf, -math.inf, math.nan, 1e-45, 3e38])
    for fn, f in (("isnan", np.isnan), ("isinf", np.isinf), ("isfinite", np.isfinite)):
        for dt in G.FLOATS:
            a = G.Arg(dt, vals)
            emit(fn, "-", [a], ("bool", False, f(a.v)))
            a = G.Arg(dt, np.zeros((0,)))
            emit(fn, "-", [a], ("bool", False, f(a.v)))
        for dt in G.INTS + ["bool"]:
            a = A(dt, (2, 3))
            emit(fn, "-", [a], ("bool", False, f(a.v.astype(np.float64))))


def binary_float(fn, f, a, b):
    rdt, weak = G.promote((a.dt, a.weak), (b.dt, b.weak))
    rdt = G.inexact(rdt)
    return rdt, weak, G.cast(f(G.f64(G.cast(a.v, rdt)), G.f64(G.cast(b.v, rdt))), rdt)


def atan2_cases():
    f = np.arctan2
    for da, db in (("f32", "f32"), ("f64", "f64"), ("f32", "f64"), ("i32", "i32"), ("i32", "f32"), ("bool", "f32")):
        a, b = A(da, (2, 3)), A(db, (2, 3))
        emit("atan2", "-", [a, b], binary_float("atan2", f, a, b))
    sp = np.array([0.0, -0.0, 0.0, -0.0, math.inf, -math.inf, math.inf, math.nan, 1.0, -1.0])
    sq = np.array([0.0, 0.0, -0.0, -0.0, math.inf, math.inf, -1.0, 1.0, -math.inf, -0.0])
    for dt in G.FLOATS:
        a, b = G.Arg(dt, sp), G.Arg(dt, sq)
        emit("atan2", "-", [a, b], binary_float("atan2", f, a, b))
        a, b = A(dt, (2, 3)), A(dt, (3,))
        emit("atan2", "-", [a, b], binary_float("atan2", f, a, b))
        a, b = A(dt, (2, 1)), W("f32", -1.5)
        emit("atan2", "-", [a, b], binary_float("atan2", f, a, b))
        a, b = A(dt, (0, 3)), A(dt, (1, 3))
        emit("atan2", "-", [a, b], binary_float("atan2", f, a, b))
    emit("atan2", "-", [A("f32", (2, 3)), A("f32", (4,))], ("ERR",))


def mod_ref(fn, a, b):
    rdt, weak = G.promote((a.dt, a.weak), (b.dt, b.weak))
    x, y = G.cast(a.v, rdt), G.cast(b.v, rdt)
    if rdt in G.FLOATS:
        f = np.fmod if fn == "fmod" else np.remainder
        return rdt, weak, G.cast(f(G.f64(x), G.f64(y)), rdt)
    f = np.fmod if fn == "fmod" else np.remainder
    return rdt, weak, np.asarray(f(x, y)).astype(G.NP[rdt])


def mod_cases():
    for fn in ("remainder", "fmod"):
        for dt in G.NUM:
            lo = 0 if dt == "u32" else -9
            a = A(dt, (3, 4), lo=lo, hi=9)
            b = G.Arg(dt, np.where(A(dt, (4,), lo=1, hi=5).v == 0, 1, A(dt, (4,), lo=1, hi=5).v))
            if dt != "u32":
                b = G.Arg(dt, b.v * np.array([1, -1, 1, -1], dtype=G.NP[dt]))
            emit(fn, "-", [a, b], mod_ref(fn, a, b))
        for dt in G.FLOATS:  # signs, zeros, inf and NaN
            x = np.array([7.5, -7.5, 7.5, -7.5, 0.0, -0.0, 5.0, math.inf, 1.0, math.nan, 3.0, -1e-30])
            y = np.array([2.0, 2.0, -2.0, -2.0, 3.0, -3.0, 0.0, 2.0, math.inf, 1.0, -math.inf, 1.0])
            a, b = G.Arg(dt, x), G.Arg(dt, y)
            emit(fn, "-", [a, b], mod_ref(fn, a, b))
        for dt in ("i32", "i64"):  # the most negative value; dividing by -1 does not trap
            info = np.iinfo(G.NP[dt])
            a = G.Arg(dt, np.array([info.min, info.min, info.max, -7, 7]))
            b = G.Arg(dt, np.array([-1, 3, -2, 2, -2]))
            emit(fn, "-", [a, b], mod_ref(fn, a, b))
        a, b = A("i32", (2, 3)), W("i32", 4)
        emit(fn, "-", [a, b], mod_ref(fn, a, b))
        a, b = A("f32", (2, 3), lo=1), A("i32", (3,), lo=1, hi=4)
        emit(fn, "-", [a, b], mod_ref(fn, a, b))
        a, b = A("f64", (0, 2)), A("f64", (2,), lo=1)
        emit(fn, "-", [a, b], mod_ref(fn, a, b))
        emit(fn, "-", [A("bool", (2,)), A("bool", (2,))], ("ERR",))
        emit(fn, "-", [A("f32", (2, 3)), A("f32", (2,))], ("ERR",))


def clip_cases():
    # jnp.clip(x, lo, hi) = minimum(hi, maximum(lo, x)); which= says which bounds are given
    for dt in G.NUM:
        x = A(dt, (3, 4))
        lo, hi = A(dt, (4,), lo=0 if dt == "u32" else -4, hi=0), A(dt, (3, 1), lo=1, hi=5)
        for which, args in (("lh", [x, lo, hi]), ("l", [x, lo]), ("h", [x, hi])):
            r = x.v
            rdt = dt
            if "l" in which:
                r = np.maximum(lo.v, r)
            if "h" in which:
                r = np.minimum(hi.v, r)
            emit("clip", "which=" + which, args, (rdt, False, np.asarray(r).astype(G.NP[rdt])))
    x = G.Arg("f32", np.array([math.nan, -2.0, 0.5, 7.0, math.inf]))
    emit("clip", "which=lh", [x, W("f32", -1.0), W("f32", 1.0)],
         ("f32", False, np.array([math.nan, -1, 0.5, 1, 1], np.float32)))
    x = A("i32", (5,), lo=-9, hi=9)
    emit("clip", "which=lh", [x, W("f32", -1.5), W("f32", 2.5)],  # i32 joined with a weak float: weak f32
         ("f32", True, np.minimum(2.5, np.maximum(-1.5, x.v.astype(np.float32)))))
    emit("clip", "which=lh", [A("f32", (3,)), A("f32", (2,)), A("f32", (3,))], ("ERR",))


def wrap_int(v, dt):
    bits = 64 if dt == "i64" else 32
    v &= (1 << bits) - 1
    if dt != "u32" and v >= 1 << (bits - 1):
        v -= 1 << bits
    return v


def integer_pow_cases():
    for dt in G.NUM:
        for n in (0, 1, 2, 3, 5, 7, 12):
            x = A(dt, (2, 3), lo=0 if dt == "u32" else -4, hi=4) if dt in G.INTS else A(dt, (2, 3))
            if dt in G.INTS:
                r = np.array([wrap_int(int(v) ** n, dt) for v in x.v.reshape(-1)], G.NP[dt]).reshape(x.v.shape)
            else:
                r = G.cast(G.f64(x.v) ** n, dt)
            emit("integer_pow", "n=%d" % n, [x], (dt, False, r))
    for dt in ("i32", "i64", "u32"):  # overflow wraps
        x = G.Arg(dt, np.array([1000, 77777, 3, 65536]) if dt != "u32" else np.array([1000, 77777, 3, 65536]))
        r = np.array([wrap_int(int(v) ** 3, dt) for v in x.v], G.NP[dt])
        emit("integer_pow", "n=3", [x], (dt, False, r))
    for dt in G.FLOATS:
        for n in (-1, -2, -3):
            x = A(dt, (2, 3), lo=0.5, hi=3)
            emit("integer_pow", "n=%d" % n, [x], (dt, False, G.cast(G.f64(x.v) ** n, dt)))
        x = G.Arg(dt, np.array([0.0, -0.0, math.inf, math.nan, -2.0]))
        emit("integer_pow", "n=-1", [x], (dt, False, G.cast(1.0 / G.f64(x.v), dt)))
        emit("integer_pow", "n=3", [x], (dt, False, G.cast(G.f64(x.v) ** 3, dt)))
    emit("integer_pow", "n=2", [W("f32", 1.5)], ("f32", True, np.float32(2.25)))
    emit("integer_pow", "n=2", [A("f32", (0, 4))], ("f32", False, np.zeros((0, 4), np.float32)))
    emit("integer_pow", "n=-1", [A("i32", (2,))], ("ERR",))
    emit("integer_pow", "n=2", [A("bool", (2,))], ("ERR",))


BITS = {"i32": 32, "i64": 64, "u32": 32}


def shift_ref(fn, a, b, dt):
    n = BITS[dt]
    out = []
    for x, s in zip(a.reshape(-1).tolist(), b.reshape(-1).tolist()):
        x, s = int(x), int(s)
        big = s < 0 or s >= n
        if fn == "left_shift":
            r = 0 if big else x << s
        elif fn == "shift_right_logical" or (fn == "right_shift" and dt == "u32"):
            r = 0 if big else (x & ((1 << n) - 1)) >> s
        else:  # arithmetic: the sign bit fills (u32: its bit pattern as a signed word)
            sx = wrap_int(x, "i64" if n == 64 else "i32")
            r = (-1 if sx < 0 else 0) if big else sx >> s
        out.append(wrap_int(r, dt))
    return np.array(out, G.NP[dt]).reshape(a.shape)


def bitwise_cases():
    npf = {"bitwise_and": np.bitwise_and, "bitwise_or": np.bitwise_or, "bitwise_xor": np.bitwise_xor}
    for fn, f in npf.items():
        for da, db in (("bool", "bool"), ("i32", "i32"), ("i64", "i64"), ("u32", "u32"), ("i32", "u32"),
                       ("bool", "i32")):
            a = A(da, (2, 3), lo=-2**20 if da != "u32" else 0, hi=2**20) if da != "bool" else A(da, (2, 3))
            b = A(db, (3,), lo=-2**20 if db != "u32" else 0, hi=2**20) if db != "bool" else A(db, (3,))
            rdt, weak = G.promote((a.dt, a.weak), (b.dt, b.weak))
            emit(fn, "-", [a, b], (rdt, weak, np.asarray(f(G.cast(a.v, rdt), G.cast(b.v, rdt)))))
        a, b = A("i32", (2, 3)), W("i32", -8)
        emit(fn, "-", [a, b], ("i32", False, np.asarray(f(a.v, np.int32(-8)))))
        emit(fn, "-", [A("f32", (2,)), A("i32", (2,))], ("ERR",))
        emit(fn, "-", [A("i32", (2, 3)), A("i32", (2,))], ("ERR",))
    for dt in ("bool", "i32", "i64", "u32"):
        a = A(dt, (2, 3)) if dt == "bool" else G.Arg(dt, np.array([0, 1, -1 if dt != "u32" else 7, 5, 2**31 - 1, 9]))
        emit("bitwise_not", "-", [a], (dt, False, np.invert(a.v)))
    emit("bitwise_not", "-", [A("f32", (2,))], ("ERR",))
    for fn in ("left_shift", "right_shift", "shift_right_logical", "shift_right_arithmetic"):
        for dt in ("i32", "i64", "u32"):
            n = BITS[dt]
            vals = [1, -1, 123456789, -987654321, np.iinfo(G.NP[dt]).min, np.iinfo(G.NP[dt]).max, 5, -6]
            amts = [0, 1, 7, n - 1, n, n + 3, -1, 3]
            if dt == "u32":
                vals = [v % 2**32 for v in vals]
                amts = [v % 2**32 for v in amts]
            a, b = G.Arg(dt, np.array(vals)), G.Arg(dt, np.array(amts))
            emit(fn, "-", [a, b], (dt, False, shift_ref(fn, a.v, b.v, dt)))
            a, b = G.Arg(dt, np.array(vals).reshape(2, 4)), W("i32", 2)
            emit(fn, "-", [a, b], (dt, False, shift_ref(fn, a.v, np.full(a.v.shape, 2), dt)))
        a, b = A("i32", (2, 1), lo=-100, hi=100), A("i32", (3,), lo=0, hi=5)
        av, bv = np.broadcast_arrays(a.v, b.v)
        emit(fn, "-", [a, b], ("i32", False, shift_ref(fn, av, bv, "i32")))
        emit(fn, "-", [A("f32", (2,)), A("f32", (2,))], ("ERR",))
        emit(fn, "-", [A("bool", (2,)), A("bool", (2,))], ("ERR",))


def elementwise():
    float_unary_cases()
    rounding_cases()
    classify_cases()
    atan2_cases()
    mod_cases()
    clip_cases()
    integer_pow_cases()
    bitwise_cases()


# ------------------------------------------------------------ reductions
def axes_param(axes):
    return "none" if axes is None else ",".join(str(a) for a in axes)


def np_axes(axes):
    return None if axes is None else tuple(axes)


AXES3 = [None, (0,), (-1,), (0, 2), (), (1, -3)]


def prod_cases():
    for dt in G.ALL:
        for axes in AXES3:
            for keep in (False, True):
                x = A(dt, (2, 3, 4), lo=-3 if dt != "u32" else 0, hi=3, ) if dt in G.INTS else A(dt, (2, 3, 4))
                if dt in G.FLOATS:
                    x = G.Arg(dt, rng.uniform(0.5, 1.8, (2, 3, 4)) * rng.choice([-1, 1], (2, 3, 4)))
                acc = {"bool": np.int64, "i32": np.int64, "i64": np.int64, "u32": np.uint64, "f32": np.float64,
                       "f64": np.float64}[dt]
                r = np.prod(x.v.astype(acc), axis=np_axes(axes), keepdims=keep)
                rdt = "i32" if dt == "bool" else dt
                emit("prod_axes", "axes=%s;keep=%d" % (axes_param(axes), keep), [x], (rdt, False, G.cast(r, rdt)))
    for dt in ("i32", "i64", "u32"):  # products that overflow wrap
        x = G.Arg(dt, np.array([[70000, 80000, 3], [2**16, 2**16, 2**15]]))
        r = np.prod(x.v.astype(np.uint64), axis=1).astype(G.NP[dt])
        emit("prod_axes", "axes=1;keep=0", [x], (dt, False, r))
    x = G.Arg("f32", np.array([[0.0, 2.0], [math.inf, 0.0], [math.nan, 1.0]]))
    emit("prod_axes", "axes=1;keep=0", [x], ("f32", False, np.prod(x.v, axis=1)))
    x = A("f32", (0, 3))
    emit("prod_axes", "axes=0;keep=0", [x], ("f32", False, np.ones(3, np.float32)))
    emit("prod_axes", "axes=none;keep=1", [x], ("f32", False, np.ones((1, 1), np.float32)))
    emit("prod_axes", "axes=2;keep=0", [A("f32", (2, 3))], ("ERR",))
    emit("prod_axes", "axes=0,-2;keep=0", [A("f32", (2, 3))], ("ERR",))


def var_cases():
    for fn, f in (("var", np.var), ("std", np.std)):
        for dt in ("f32", "f64", "i32", "bool"):
            for axes in AXES3[:5]:
                for ddof in (0, 1):
                    keep = ddof == 1
                    x = A(dt, (2, 3, 4))
                    rdt = G.inexact(dt)
                    r = f(x.v.astype(np.float64), axis=np_axes(axes), ddof=ddof, keepdims=keep)
                    if axes == () and ddof == 1:
                        continue  # N - ddof = 0
                    emit(fn, "axes=%s;ddof=%d;keep=%d" % (axes_param(axes), ddof, keep), [x], (rdt, False, G.cast(r, rdt)))
        x = G.Arg("f64", np.array([[1.0, math.nan, 2.0], [1e8, 1e8 + 1, 1e8 + 2]]))
        emit(fn, "axes=1;ddof=0;keep=0", [x], ("f64", False, f(x.v, axis=1)))
        x = A("f32", (2, 3))
        emit(fn, "axes=3;ddof=0;keep=0", [x], ("ERR",))


def any_all_cases():
    for fn, f in (("any", np.any), ("all", np.all)):
        for dt in G.ALL:
            for axes in AXES3[:5]:
                for keep in (False, True):
                    x = A(dt, (2, 3, 4), lo=0, hi=1 if dt != "bool" else None) if dt in G.INTS else A(dt, (2, 3, 4))
                    if dt in G.FLOATS:
                        x = G.Arg(dt, rng.choice([0.0, 0.0, 1.5, -0.0], (2, 3, 4)))
                    emit(fn, "axes=%s;keep=%d" % (axes_param(axes), keep), [x],
                         ("bool", False, np.asarray(f(x.v, axis=np_axes(axes), keepdims=keep))))
        x = G.Arg("f32", np.array([[math.nan, 0.0], [0.0, 0.0], [1.0, math.inf]]))
        emit(fn, "axes=1;keep=0", [x], ("bool", False, f(x.v, axis=1)))
        x = A("i32", (0, 3))
        emit(fn, "axes=0;keep=0", [x], ("bool", False, f(x.v, axis=0)))
        emit(fn, "axes=none;keep=0", [x], ("bool", False, np.asarray(f(x.v))))
        emit(fn, "axes=-4;keep=0", [A("f32", (2, 3))], ("ERR",))


def norm_cases():
    for dt in ("f32", "f64", "i32"):
        rdt = G.inexact(dt)
        v = A(dt, (5,))
        for ordv in (None, 1, 2, math.inf, -math.inf, 0, 3, 0.5, -1):
            o = "none" if ordv is None else ("inf" if ordv == math.inf else "-inf" if ordv == -math.inf else repr(ordv))
            r = np.linalg.norm(v.v.astype(np.float64), ord=ordv)
            emit("norm", "ord=%s;axes=none;keep=0" % o, [v], (rdt, False, G.cast(r, rdt)))
        m = A(dt, (3, 4))
        for ordv in (None, "fro", 1, -1, math.inf, -math.inf):
            o = "none" if ordv is None else ("inf" if ordv == math.inf else "-inf" if ordv == -math.inf else str(ordv))
            for axes, keep in ((None, False), ((0, 1), True), ((1, 0), False), ((-1, -2), False)):
                if ordv is None and axes is None:
                    r = np.linalg.norm(m.v.astype(np.float64))
                else:
                    r = np.linalg.norm(m.v.astype(np.float64), ord=ordv, axis=np_axes(axes) or (0, 1), keepdims=keep)
                emit("norm", "ord=%s;axes=%s;keep=%d" % (o, axes_param(axes), keep), [m], (rdt, False, G.cast(r, rdt)))
        t = A(dt, (2, 3, 4))
        for ordv, axes, keep in ((None, (1,), False), (2, (-1,), True), (1, (0,), False), (math.inf, (2,), False),
                                 (None, None, False), ("fro", (0, 2), False), (1, (2, 0), True)):
            o = "none" if ordv is None else ("inf" if ordv == math.inf else str(ordv))
            if axes is None:
                r = np.linalg.norm(t.v.astype(np.float64).reshape(-1))
            else:
                r = np.linalg.norm(t.v.astype(np.float64), ord=ordv, axis=axes if len(axes) == 2 else axes[0], keepdims=keep)
            emit("norm", "ord=%s;axes=%s;keep=%d" % (o, axes_param(axes), keep), [t], (rdt, False, G.cast(r, rdt)))
    m = A("f32", (3, 3))
    emit("norm", "ord=nuc;axes=none;keep=0", [m], ("f32", False, G.cast(np.linalg.norm(m.v.astype(np.float64), "nuc"), "f32")))
    m = A("f32", (3, 3))
    emit("norm", "ord=2;axes=none;keep=0", [m], ("f32", False, G.cast(np.linalg.norm(m.v.astype(np.float64), 2), "f32")))
    emit("norm", "ord=2;axes=none;keep=0", [A("f32", (2, 3, 3))], ("ERR",))
    emit("norm", "ord=fro;axes=0;keep=0", [A("f32", (3, 3))], ("ERR",))
    emit("norm", "ord=abc;axes=0;keep=0", [A("f32", (3,))], ("ERR",))
    emit("norm", "ord=none;axes=0,1,2;keep=0", [A("f32", (2, 3, 3))], ("ERR",))
    v = A("f32", (0,))
    emit("norm", "ord=none;axes=none;keep=0", [v], ("f32", False, np.float32(0)))


def lse(x, axes, keep):
    x = x.astype(np.float64)
    m = np.max(x, axis=axes, keepdims=True, initial=-np.inf)
    m = np.where(np.isfinite(m), m, 0)
    r = np.log(np.sum(np.exp(x - m), axis=axes, keepdims=True)) + m
    return r if keep else np.squeeze(r, axis=axes if axes is not None else tuple(range(x.ndim)))


def logsumexp_cases():
    for dt in ("f32", "f64", "i32"):
        rdt = G.inexact(dt)
        for axes in AXES3[:5]:
            for keep in (False, True):
                x = A(dt, (2, 3, 4))
                emit("logsumexp_axes", "axes=%s;keep=%d" % (axes_param(axes), keep), [x],
                     (rdt, False, G.cast(lse(x.v, np_axes(axes), keep), rdt)))
    x = G.Arg("f32", np.array([[-math.inf, -math.inf], [math.inf, 1.0], [1000.0, 1000.0], [math.nan, 0.0]]))
    emit("logsumexp_axes", "axes=1;keep=0", [x], ("f32", False, G.cast(lse(x.v, (1,), False), "f32")))
    x = A("f32", (0, 3))
    emit("logsumexp_axes", "axes=0;keep=0", [x], ("f32", False, np.full(3, -np.inf, np.float32)))


def reductions():
    prod_cases()
    var_cases()
    any_all_cases()
    norm_cases()
    logsumexp_cases()


# -------------------------------------------------------------------- nn
def _mp_act(fn, v):
    mp = mpmath
    if math.isnan(v):
        return math.nan
    x = mp.mpf(v)
    if fn in ("gelu_tanh", "gelu", "silu") and math.isinf(v):
        return v if v > 0 else math.nan  # JAX: -inf * 0
    if fn == "gelu_tanh":
        z = mp.sqrt(2 / mp.pi) * (x + mp.mpf("0.044715") * x ** 3)
        r = x / 2 * (1 + mp.tanh(z))
    elif fn == "gelu":
        r = x / 2 * mp.erfc(-x / mp.sqrt(2))
    elif fn == "silu":
        r = x / (1 + mp.exp(-x))
    elif fn == "softplus":
        r = mp.log1p(mp.exp(x)) if not math.isinf(v) else (x if v > 0 else 0)
    elif fn == "log_sigmoid":
        r = -mp.log1p(mp.exp(-x)) if not math.isinf(v) else (0 if v > 0 else x)
    elif fn in ("elu", "elu2"):
        r = x if v > 0 else (1 if fn == "elu" else mp.mpf("0.5")) * mp.expm1(x)
    else:
        r = x if v >= 0 else (mp.mpf("0.01") if fn == "leaky_relu" else mp.mpf("0.2")) * x
    r = float(r)
    return math.copysign(0.0, v) if r == 0 and fn not in ("softplus", "log_sigmoid") else r


def torch_ref(fn, x):
    """the activation at each element, exactly (mpmath at 50 digits) and then rounded; PyTorch
    1.13's functionals in float64 agree except where 1 + tanh(z) or 1 + erf(x) cancel (x << 0),
    so they are checked against the exact values elsewhere"""
    import torch
    import torch.nn.functional as F
    x = np.asarray(x, dtype=np.float64)
    r = np.vectorize(lambda v: _mp_act(fn, float(v)), otypes=[np.float64])(x)
    f = {"gelu_tanh": lambda t: F.gelu(t, approximate="tanh"), "gelu": F.gelu, "silu": F.silu,
         "softplus": lambda t: F.softplus(t, beta=1, threshold=1e300), "log_sigmoid": F.logsigmoid,
         "elu": lambda t: F.elu(t, alpha=1.0), "elu2": lambda t: F.elu(t, alpha=0.5),
         "leaky_relu": lambda t: F.leaky_relu(t, 0.01), "leaky_relu2": lambda t: F.leaky_relu(t, 0.2)}[fn]
    t = f(torch.tensor(x)).numpy()
    ok = (x > -3) & (x < 30)
    assert np.allclose(t[ok], r[ok], rtol=1e-9, atol=1e-300), (fn, x[ok], t[ok], r[ok])
    return r


NN = [("gelu", "approx=1", "gelu_tanh"), ("gelu", "approx=0", "gelu"), ("silu", "-", "silu"),
      ("softplus", "-", "softplus"), ("log_sigmoid", "-", "log_sigmoid"), ("elu", "alpha=1.0", "elu"),
      ("elu", "alpha=0.5", "elu2"), ("leaky_relu", "slope=0.01", "leaky_relu"),
      ("leaky_relu", "slope=0.2", "leaky_relu2")]


def activation_cases():
    """PyTorch 1.13's functionals in float64, rounded to the dtype"""
    for op, params, ref in NN:
        for dt in G.FLOATS:
            # beyond |x| = 4 the f32 tails of gelu are ill-conditioned (exp of a rounded argument);
            # the specials below take f64 far out
            a = G.Arg(dt, rng.uniform(-4, 4, (3, 4)))
            emit(op, params, [a], (dt, False, G.cast(torch_ref(ref, a.v), dt)))
            a = G.Arg(dt, np.array([0.0, -0.0, 40.0, -40.0, 100.0, -100.0, 1e-8, math.inf, -math.inf, math.nan]))
            emit(op, params, [a], (dt, False, G.cast(torch_ref(ref, a.v), dt)))
            a = G.Arg(dt, np.zeros((0, 2)))
            emit(op, params, [a], (dt, False, np.zeros((0, 2), G.NP[dt])))
        a = A("i32", (2, 3), lo=-3, hi=3)
        emit(op, params, [a], ("f32", False, G.cast(torch_ref(ref, a.v), "f32")))
        a = W("f32", -1.25)
        emit(op, params, [a], ("f32", True, G.cast(torch_ref(ref, a.v), "f32")))


def standardize_cases():
    for dt in G.FLOATS + ["i32"]:
        rdt = G.inexact(dt)
        for axes, eps in ((None, 1e-5), ((-1,), 1e-5), ((0,), 1e-3), ((0, 2), 1e-5), ((1, -1), 0.0)):
            # JAX's var = mean(x^2) - mean^2 cancels where the spread is small beside the
            # mean: samples (ints: -9..9) spread around 0, so that f32 keeps its digits
            x = A(dt, (2, 3, 4)) if dt == "i32" else G.Arg(dt, 2 * rng.standard_normal((2, 3, 4)))
            xv = x.v.astype(np.float64)
            ax = (-1,) if axes is None else axes
            m = xv.mean(axis=ax, keepdims=True)
            v = (xv * xv).mean(axis=ax, keepdims=True) - m * m
            r = (xv - m) / np.sqrt(v + eps)
            emit("standardize", "axes=%s;eps=%r" % (axes_param(axes), eps), [x], (rdt, False, G.cast(r, rdt)))
    emit("standardize", "axes=3;eps=1e-05", [A("f32", (2, 3))], ("ERR",))
    emit("standardize", "axes=none;eps=1e-05", [A("f32", ())], ("ERR",))


def nn():
    activation_cases()
    standardize_cases()


# ------------------------------------------------------------- creation
def ints_param(v):
    return ",".join(str(int(a)) for a in v)


def creation_ops():
    for dt in G.NUM:
        for start, stop, num, ep in ((0.0, 1.0, 5, True), (0.0, 1.0, 5, False), (-3.0, 7.5, 11, True),
                                     (2.0, -2.0, 4, True), (1.0, 2.0, 1, True), (1.0, 2.0, 0, True),
                                     (0.0, 10.0, 7, False), (5.0, 5.0, 3, True)):
            if dt == "u32" and (start < 0 or stop < 0):
                continue
            v = np.linspace(start, stop, num, endpoint=ep)  # float64
            if dt in G.INTS:
                v = np.floor(v)
            emit("linspace", "dt=%s;start=%r;stop=%r;num=%d;endpoint=%d" % (dt, start, stop, num, ep), [],
                 (dt, False, G.cast(v, dt)))
    emit("linspace", "dt=f32;start=0.0;stop=1.0;num=-1;endpoint=1", [], ("ERR",))
    for dt in G.ALL:
        for n, m, k in ((3, -1, 0), (3, 4, 1), (4, 2, -1), (2, 5, 7), (0, 3, 0), (3, 3, -5)):
            mm = n if m < 0 else m
            emit("eye", "dt=%s;n=%d;m=%d;k=%d" % (dt, n, m, k), [], (dt, False, np.eye(n, mm, k, dtype=G.NP[dt])))
            emit("tri", "dt=%s;n=%d;m=%d;k=%d" % (dt, n, m, k), [], (dt, False, np.tri(n, mm, k, dtype=G.NP[dt])))
    emit("eye", "dt=f32;n=-1;m=2;k=0", [], ("ERR",))
    for fn, f in (("tril", np.tril), ("triu", np.triu)):
        for dt in ("f32", "i32", "bool", "f64"):
            for shape, k in (((3, 4), 0), ((4, 3), -1), ((2, 3, 3), 1), ((3, 3), 5), ((3, 3), -4), ((0, 2), 0)):
                x = A(dt, shape)
                emit(fn, "k=%d" % k, [x], (dt, False, f(x.v, k)))
        emit(fn, "k=0", [A("f32", (3,))], ("ERR",))


def shape_ops():
    x = A("f32", (6, 4))
    for sec, ax in ((2, 0), (3, 0), (4, 1), (1, 1), (2, -1)):
        for i, part in enumerate(np.split(x.v, sec, axis=ax)):
            emit("split", "sections=%d;axis=%d;part=%d" % (sec, ax, i), [x], ("f32", False, part))
    for idx, ax in (((1, 4), 0), ((2, 2, 9), 0), ((-1,), 1), ((), 0), ((3, 1), 1)):
        for i, part in enumerate(np.split(x.v, list(idx), axis=ax)):
            emit("split", "indices=%s;axis=%d;part=%d" % (ints_param(idx), ax, i), [x], ("f32", False, part))
    emit("split", "sections=4;axis=0;part=0", [x], ("ERR",))
    emit("split", "sections=2;axis=2;part=0", [x], ("ERR",))
    for dt in ("i32", "f64", "bool"):
        for shape, reps in (((2, 3), (2, 1)), ((3,), (2,)), ((2, 3), (3,)), ((3,), (2, 2)), ((2, 1, 2), (1, 3, 0, 2)),
                            ((), (4,)), ((0, 2), (2, 2))):
            x = A(dt, shape)
            emit("tile", "reps=%s" % ints_param(reps), [x], (dt, False, np.tile(x.v, reps)))
        for shape, r, ax in (((2, 3), 2, 0), ((2, 3), 3, -1), ((2, 3), 0, 1), ((2, 3), 2, None), ((), 3, None)):
            x = A(dt, shape)
            emit("repeat", "r=%d;axis=%s" % (r, "none" if ax is None else ax), [x], (dt, False, np.repeat(x.v, r, axis=ax)))
        x = A(dt, (3, 2))
        for counts, ax in (((1, 0, 3), 0), ((2, 1), 1), ((0, 0), -1), ((1, 2, 0, 1, 1, 3), None)):
            emit("repeat_counts", "counts=%s;axis=%s" % (ints_param(counts), "none" if ax is None else ax), [x],
                 (dt, False, np.repeat(x.v, counts, axis=ax)))
        x = A(dt, (3, 4))
        for shift, ax in ((1, 0), (-1, 1), (7, 1), (0, 0), (5, None), (-13, None), (2, -1)):
            emit("roll", "shift=%d;axis=%s" % (shift, "none" if ax is None else ax), [x], (dt, False, np.roll(x.v, shift, axis=ax)))
        x = A(dt, (2, 3, 2))
        for axes in (None, (0,), (-1,), (0, 2), ()):
            emit("flip", "axes=%s" % axes_param(axes), [x], (dt, False, np.flip(x.v, axis=np_axes(axes)) if axes != () else x.v))
    emit("repeat_counts", "counts=1,2;axis=0", [A("f32", (3, 2))], ("ERR",))
    emit("repeat", "r=-1;axis=0", [A("f32", (3, 2))], ("ERR",))
    emit("roll", "shift=1;axis=2", [A("f32", (3, 2))], ("ERR",))
    emit("roll", "shift=3;axis=0", [A("f32", (0, 2))], ("f32", False, np.zeros((0, 2), np.float32)))
    emit("flip", "axes=0,0", [A("f32", (3, 2))], ("ERR",))
    emit("tile", "reps=-1", [A("f32", (3,))], ("ERR",))


def creation():
    creation_ops()
    shape_ops()


# ------------------------------------------------------------------ files
PARTS = [elementwise, reductions, nn, creation]


def write(g, here):
    """Called by gen_golden.main after ops_golden.txt is written."""
    import os
    setup(g)
    g.CASES.clear()
    g.COUNT.clear()
    table = accuracy_table()
    for part in PARTS:
        part()
    out = os.path.join(here, "math_golden.txt")
    header = [
        "# jx golden op tests (issue #18 math): generated by tests/golden/gen_golden.py (gen_math.py; NumPy %s,"
        " mpmath %s, seed %d). Do not edit." % (np.__version__, mpmath.__version__, SEED),
        "# Format: as ops_golden.txt",
        "# %d cases: %s" % (len(g.CASES), " ".join("%s=%d" % kv for kv in sorted(g.COUNT.items()))),
    ]
    with open(out, "w") as f:
        f.write("\n".join(header + g.CASES) + "\n")
    ref = os.path.join(here, "math_ref.txt")
    with open(ref, "w") as f:
        f.write("# accuracy references: generated by tests/golden/gen_math.py (mpmath %s, 50 digits)."
                " Do not edit.\n# %d points\n" % (mpmath.__version__, len(table)))
        f.write("\n".join(table) + "\n")
    return out, ref
