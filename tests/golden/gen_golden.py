#!/usr/bin/python3
"""Generate tests/golden/ops_golden.txt: NumPy reference results for jx's ops.

Run with Debian's interpreter (needs only NumPy):

    /usr/bin/python3 tests/golden/gen_golden.py        # rewrites ops_golden.txt

tests/test_ops_golden.c reads the output without NumPy. The data is fully
determined by the fixed seed below, so rerunning gives the same file.

File format (one case per line; '#' starts a comment line)
----------------------------------------------------------
    <op> <params> <nin> <input>... -> <output>

    input  := <dtype> <weak> <shape> <pre> <value>...
    output := <dtype> <weak> <shape> <value>...   |   ERR

  op      the jx function without its jx_ prefix (add, sum_axes, arange, ...)
  params  '-' or key=value pairs joined by ';' (axes=0,-1;keep=1). A list is
          comma separated and may be empty ("axes="). In slice bounds 'E'
          stands for JX_END. A shape is 's' for 0-d, else dims joined by 'x'
          ("2x3", "0x3", "2x-1" for reshape).
  dtype   bool i32 i64 u32 f32 f64
  weak    1: a weakly typed scalar (input: built with jx_scalar for f32 and
          jx_scalar_int for i32; always 0-d). Output: the expected weak flag,
          or '?' where the case does not check it.
  pre     '-' or 'T' + a permutation (T1,0,2): the input array is built with
          the stored shape and values, then passed through jx_transpose with
          that permutation before the op sees it (a transposed operand).
  values  row-major, as many as the shape holds. bool 0/1; integers in
          decimal; floats in the shortest repr that round-trips in their own
          dtype (parse f32 with strtof, f64 with strtod); nan, inf, -inf.
  ERR     the op must return an error value (NumPy raises too).
  xfail   a case whose line ends with '!xfail:<reason>' is a known deviation
          of jx from JAX (see KNOWN_DEVIATIONS below): the C test runs it and
          reports it, but it does not count as a failure.

Reference semantics: JAX, where it differs from NumPy
-----------------------------------------------------
jx is JAX with the 64-bit types available (i64, f64 are real types, as with
jax_enable_x64) but with f32 the default float and i32 the default int.
  * Promotion follows JAX's type lattice, not NumPy's tables:
      bool < i* < {i32, u32};  i32 < i64;  u32 < i64;  i64 < f* < f32 < f64
    (i* and f* are the weak int/float of Python scalars: jx_scalar_int /
    jx_scalar). So i32+u32 -> i64, i64+f32 -> f32, f32 array + weak float
    -> f32, int array + weak float -> f32, bool + weak int -> i32, weak +
    weak stays weak. The result is weak iff the join is a weak node.
  * Ops that promote to inexact (div, exp, log, ..., sigmoid, mean,
    logsumexp, softmax, log_softmax) turn bool/ints into f32, the default
    float (NumPy: float64).
  * sum of bool -> i32; sum keeps i32/i64/u32 (NumPy widens to int64/uint64).
  * argmax/argmin -> i32 (NumPy: int64). Ties: first index; NaN counts as
    the maximum and the minimum (first NaN wins), as NumPy and JAX.
  * take: negative indices wrap once, then indices clamp into range (JAX's
    gather "clip" behaviour; NumPy's take would raise).
  * one_hot -> f32; labels outside [0, n) give an all-zero row.
  * astype float -> int truncates toward zero and saturates; NaN -> 0
    (XLA's conversion; NumPy's is undefined there). x -> bool is x != 0.
  * Floats: f32 results are computed in float64 from the f32 inputs and then
    rounded to f32 (so + - * / sqrt are the correctly rounded IEEE result and
    transcendental results are within an ulp); likewise logsumexp, softmax,
    log_softmax are computed in float64 (max-shifted) and then cast.
  * arange: start + i*step computed in float64, then converted (NumPy fills
    f32 with an f32 delta; the C test's tolerance covers that difference).
  * full/zeros/ones with a float value into an int dtype: converted as astype.
  * slice: Python slice semantics (negative indices, clipping, negative steps).
  * logsumexp over an empty axis gives -inf (JAX uses max(..., initial=-inf));
    softmax/log_softmax over an empty axis give an empty result.
  * relu(x) = maximum(x, 0), so relu(NaN) = NaN (jax.nn.relu).
  * add/mul of two bools are logical or/and (jnp.add/jnp.multiply).
Not covered here (jx chooses differently from current JAX or from NumPy, and
neither is obviously right): floor of ints (jx: f32, JAX >= 0.4.?: the int
itself), dot/matmul of bools (jx counts in i32; JAX/NumPy give bool), bool
neg/sign/square/pow/sub (JAX raises or promotes).
"""
import os
import sys
import warnings

import numpy as np

SEED = 20240517
np.seterr(all="ignore")  # NaN/inf/overflow are intended in several cases
warnings.simplefilter("ignore", RuntimeWarning)  # e.g. "mean of empty slice"
rng = np.random.default_rng(SEED)

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ops_golden.txt")

NP = {"bool": np.bool_, "i32": np.int32, "i64": np.int64, "u32": np.uint32,
      "f32": np.float32, "f64": np.float64}
INTS = ["i32", "i64", "u32"]
FLOATS = ["f32", "f64"]
NUM = INTS + FLOATS
ALL = ["bool"] + NUM

# Known deviations of jx from the JAX semantics above: (op, predicate on the
# case, reason). Matching cases are tagged '!xfail:<reason>' in the data file.
def _weak_join_with_strong(params, args, out, operands=slice(None)):
    """JAX: a strong int/bool array joined with a weak scalar of a higher
    kind (i32 array + weak float, bool array + weak int) gives a *weak*
    result, because each operand is converted to the join (dtype, weak).
    jx converts only the dtype and makes the result weak only when both
    operands are weak (src/ops/numpy.c promote2), so its result is strong.
    The dtype is the same; the flag matters for later promotion, e.g.
    (bool_arr + 2) + u32_arr is u32 in JAX but i64 in jx."""
    return out[0] != "ERR" and out[1] is True and any(not a.weak for a in args[operands])


# The weak-flag deviation (a strong array joined with a weak scalar) was
# fixed in src/ops/numpy.c promote2; no known deviations remain.
KNOWN_DEVIATIONS = []


def xfail_reason(op, params, args, out):
    for dop, pred, reason in KNOWN_DEVIATIONS:
        if dop == op and pred(params, args, out):
            return reason
    return None


# ------------------------------------------------------------------ lattice
_UP = {"bool": ["iw"], "iw": ["i32", "u32"], "i32": ["i64"], "u32": ["i64"],
       "i64": ["fw"], "fw": ["f32"], "f32": ["f64"], "f64": []}


def _upper(n):
    s = {n}
    for p in _UP[n]:
        s |= _upper(p)
    return s


def _node(dt, weak):
    if weak and dt in INTS:
        return "iw"
    if weak and dt in FLOATS:
        return "fw"
    return dt


def promote(*tw):
    """JAX lattice join of (dtype, weak) pairs -> (dtype, weak)."""
    common = None
    for dt, weak in tw:
        u = _upper(_node(dt, weak))
        common = u if common is None else common & u
    (lub,) = [c for c in common if common <= _upper(c)]
    if lub == "iw":
        return "i32", True
    if lub == "fw":
        return "f32", True
    return lub, False


def inexact(dt):
    return dt if dt in FLOATS else "f32"


# ------------------------------------------------------------------ values
class Arg:
    """One input: base array (stored), optional permutation applied in C."""

    def __init__(self, dt, base, weak=False, perm=None):
        self.dt, self.weak, self.perm = dt, weak, perm
        self.base = np.asarray(base, dtype=NP[dt])
        if weak:
            assert self.base.ndim == 0 and dt in ("f32", "i32")

    @property
    def v(self):
        return self.base.transpose(self.perm) if self.perm is not None else self.base


def rand(dt, shape, lo=None, hi=None, special=False):
    shape = tuple(shape)
    if dt == "bool":
        return rng.random(shape) < 0.5
    if dt in INTS:
        lo = (0 if dt == "u32" else -9) if lo is None else lo
        hi = 9 if hi is None else hi
        return rng.integers(lo, hi + 1, size=shape).astype(NP[dt])
    lo = -3.0 if lo is None else lo
    hi = 3.0 if hi is None else hi
    x = np.round(rng.uniform(lo, hi, size=shape), 2).astype(NP[dt])
    if special and x.size:
        sp = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-30, 1e30, 0.5, -2.5, 100.0, -100.0],
                      dtype=NP[dt])
        flat = x.reshape(-1)
        k = min(flat.size, sp.size)
        flat[:k] = sp[:k]
        rng.shuffle(flat)
        x = flat.reshape(shape)
    return x


def A(dt, shape, **kw):
    return Arg(dt, rand(dt, shape, **kw))


def W(dt, v):
    """A weak scalar: jx_scalar(v) (f32) or jx_scalar_int(v) (i32)."""
    return Arg(dt, np.array(v, dtype=NP[dt]), weak=True)


def AT(dt, base_shape, perm, **kw):
    """An input that C transposes with perm after building it."""
    return Arg(dt, rand(dt, base_shape, **kw), perm=tuple(perm))


def fmt_val(dt, x):
    if dt == "bool":
        return "1" if x else "0"
    if dt in INTS:
        return str(int(x))
    if dt == "f32":
        return str(np.float32(x))  # shortest repr that round-trips in f32
    return repr(float(x))


def fmt_shape(shape):
    return "s" if len(shape) == 0 else "x".join(str(int(d)) for d in shape)


def fmt_vals(dt, arr):
    arr = np.asarray(arr)
    return [fmt_val(dt, x) for x in arr.reshape(-1)]


CASES = []
COUNT = {}


def emit(op, params, args, out):
    """out: ('ERR',) or (dtype, weak (True/False/None), ndarray)."""
    toks = [op, params if params else "-", str(len(args))]
    for a in args:
        pre = "-" if a.perm is None else "T" + ",".join(str(p) for p in a.perm)
        toks += [a.dt, "1" if a.weak else "0", fmt_shape(a.base.shape), pre]
        toks += fmt_vals(a.dt, a.base)
    toks.append("->")
    if out[0] == "ERR":
        toks.append("ERR")
    else:
        dt, weak, val = out
        val = np.asarray(val)
        assert val.dtype == NP[dt], (op, params, val.dtype, dt)
        toks += [dt, "?" if weak is None else ("1" if weak else "0"), fmt_shape(val.shape)]
        toks += fmt_vals(dt, val)
    r = xfail_reason(op, params, args, out)
    if r:
        toks.append("!xfail:" + r.replace(" ", "_"))
    CASES.append(" ".join(toks))
    COUNT[op] = COUNT.get(op, 0) + 1


def cast(x, dt):
    return np.asarray(x).astype(NP[dt])


def f64(x):
    return np.asarray(x).astype(np.float64)


def conv(x, dt):
    """astype with XLA's semantics (float -> int saturates, NaN -> 0)."""
    x = np.asarray(x)
    if dt == "bool":
        return x != 0
    if x.dtype.kind == "f" and dt in INTS:
        lo, hi = {"i32": (-2**31, 2**31 - 1), "i64": (-2**63, 2**63 - 1), "u32": (0, 2**32 - 1)}[dt]
        flat = []
        for v in x.reshape(-1).tolist():
            if v != v:
                flat.append(0)
            elif v >= hi:
                flat.append(hi)
            elif v <= lo:
                flat.append(lo)
            else:
                flat.append(int(v))  # truncates toward zero
        return np.array(flat, dtype=NP[dt]).reshape(x.shape)
    return x.astype(NP[dt])


# ------------------------------------------------------------ elementwise
BIN_F = {
    "add": lambda x, y: x + y, "sub": lambda x, y: x - y, "mul": lambda x, y: x * y,
    "div": lambda x, y: x / y, "pow": lambda x, y: np.power(x, y),
    "maximum": np.maximum, "minimum": np.minimum,
    "eq": np.equal, "ne": np.not_equal, "lt": np.less, "le": np.less_equal,
    "gt": np.greater, "ge": np.greater_equal,
}
COMPARE = {"eq", "ne", "lt", "le", "gt", "ge"}


def ref_binary(op, a, b):
    rdt, rweak = promote((a.dt, a.weak), (b.dt, b.weak))
    x, y = cast(a.v, rdt), cast(b.v, rdt)
    if op == "div":
        rdt = inexact(rdt)
        x, y = cast(x, rdt), cast(y, rdt)
    f = BIN_F[op]
    if op in COMPARE:
        return "bool", False, np.asarray(f(x, y))
    if rdt == "bool":  # add/mul/maximum/minimum of bools: or/and
        r = {"add": np.logical_or, "mul": np.logical_and, "maximum": np.logical_or,
             "minimum": np.logical_and}[op](x, y)
        return rdt, rweak, np.asarray(r)
    if rdt in FLOATS:
        return rdt, rweak, cast(f(f64(x), f64(y)), rdt)
    return rdt, rweak, np.asarray(f(x, y)).astype(NP[rdt])


def binary_cases():
    ops = list(BIN_F)
    for op in ops:
        is_pow = op == "pow"
        # every dtype pair, shapes (2,3) with (2,3)
        for da in ALL:
            for db in ALL:
                if op in ("sub", "pow", "div") and da == "bool" and db == "bool":
                    continue  # JAX raises (sub, pow) or is float-only; skipped
                if is_pow and (da == "bool" or db == "bool"):
                    continue
                if is_pow:
                    a = A(da, (2, 3), lo=0 if da in INTS else 0.1, hi=4 if da in INTS else 3.0)
                    b = A(db, (2, 3), lo=0 if db in INTS else -2.0, hi=3 if db in INTS else 2.0)
                elif op == "div":
                    a = A(da, (2, 3))
                    b = A(db, (2, 3), lo=1 if db in INTS else 0.5, hi=9 if db in INTS else 3.0)
                else:
                    a, b = A(da, (2, 3)), A(db, (2, 3))
                emit(op, "-", [a, b], ref_binary(op, a, b))
        # broadcasting edge cases (same dtype pairs per op)
        for dt in (["f32", "i32"] if not is_pow else ["f32", "i64"]):
            lo = 0 if is_pow and dt in INTS else None
            hi = 3 if is_pow and dt in INTS else None
            bshape = [
                ((), ()), ((), (2, 3)), ((2, 3), ()), ((3, 1), (1, 4)), ((1, 4), (3, 1)),
                ((2, 3, 4), (4,)), ((4,), (2, 3, 4)), ((2, 1, 4), (3, 1)), ((1,), (5,)),
                ((0, 3), (1, 3)), ((0, 3), (3,)), ((2, 0), (2, 1)), ((0,), ()), ((1, 1), (1,)),
                ((5,), (1,)), ((2, 1, 3, 1), (1, 4, 1, 5)),
            ]
            for sa, sb in bshape:
                a = A(dt, sa, lo=lo, hi=hi)
                b = A(dt, sb, lo=lo, hi=hi) if op != "div" else A(dt, sb, lo=1 if dt in INTS else 0.5, hi=4)
                emit(op, "-", [a, b], ref_binary(op, a, b))
            # mismatched shapes: error
            emit(op, "-", [A(dt, (2, 3), lo=lo, hi=hi), A(dt, (3, 2), lo=lo, hi=hi)], ("ERR",))
            emit(op, "-", [A(dt, (3,), lo=lo, hi=hi), A(dt, (4,), lo=lo, hi=hi)], ("ERR",))
        # transposed operands
        for dt in ["f32", "f64", "i32"]:
            lo = 0 if is_pow and dt in INTS else None
            hi = 3 if is_pow and dt in INTS else None
            a = AT(dt, (3, 2), (1, 0), lo=lo, hi=hi)
            b = A(dt, (2, 3), lo=lo, hi=hi) if op != "div" else A(dt, (2, 3), lo=1, hi=4)
            emit(op, "-", [a, b], ref_binary(op, a, b))
            a = AT(dt, (4, 2, 3), (1, 2, 0), lo=lo, hi=hi)
            b = AT(dt, (4, 3), (1, 0), lo=lo, hi=hi) if op != "div" else AT(dt, (4, 3), (1, 0), lo=1, hi=4)
            emit(op, "-", [a, b], ref_binary(op, a, b))
            a = AT(dt, (2, 3, 4), (2, 0, 1), lo=lo, hi=hi)
            b = A(dt, (3,), lo=lo, hi=hi) if op != "div" else A(dt, (3,), lo=1, hi=4)
            emit(op, "-", [a, b], ref_binary(op, a, b))
        # weak scalars
        wcases = [
            (A("f32", (2, 3)), W("f32", 2.5)), (W("f32", -1.25), A("f32", (2, 3))),
            (A("f64", (3,)), W("f32", 0.1)), (A("i32", (4,)), W("f32", 1.5)),
            (W("f32", 0.5), A("i64", (2, 2))), (A("u32", (3,)), W("f32", 3.0)),
            (A("bool", (4,)), W("f32", 2.0)), (A("i32", (4,)), W("i32", 3)),
            (W("i32", 2), A("u32", (4,))), (A("i64", (3,)), W("i32", -2)),
            (A("bool", (3,)), W("i32", 2)), (A("f32", (2, 2)), W("i32", 3)),
            (W("f32", 1.5), W("f32", 2.25)), (W("i32", 7), W("i32", 2)),
            (W("f32", 1.5), W("i32", 2)), (W("i32", 4), A("f64", (2,))),
        ]
        for a, b in wcases:
            if is_pow:
                if "bool" in (a.dt, b.dt):
                    continue
                a = Arg(a.dt, np.abs(a.base) + (1 if a.dt in INTS else 0.5), weak=a.weak)
                b = Arg(b.dt, np.abs(b.base) % 4, weak=b.weak)
            if op == "div":
                b = Arg(b.dt, np.where(b.base == 0, 3, b.base) if b.dt != "bool" else b.base, weak=b.weak)
                if b.dt == "bool":
                    b = Arg(b.dt, np.ones(b.base.shape, bool), weak=b.weak)
            emit(op, "-", [a, b], ref_binary(op, a, b))
        # special float values
        if op in ("add", "sub", "mul", "div", "maximum", "minimum", "pow") or op in COMPARE:
            for dt in FLOATS:
                a, b = A(dt, (11,), special=True), A(dt, (11,), special=True)
                emit(op, "-", [a, b], ref_binary(op, a, b))
                if op != "pow":
                    a, b = A(dt, (3, 4)), A(dt, (3, 4))
                    b.base[0, :] = [0.0, -0.0, np.nan, np.inf]
                    a.base[1, :2] = np.nan
                    emit(op, "-", [a, b], ref_binary(op, a, b))
        # integer pow: larger exponents wrap as C's unsigned arithmetic does
        if is_pow:
            for dt in INTS:
                a = Arg(dt, np.array([2, 3, 1, 0, 5, 7], dtype=NP[dt]))
                b = Arg(dt, np.array([10, 5, 31, 0, 3, 0], dtype=NP[dt]))
                emit(op, "-", [a, b], ref_binary(op, a, b))
            a = Arg("i32", np.array([-2, -3, -1, -1], dtype=np.int32))
            b = Arg("i32", np.array([3, 2, 5, 4], dtype=np.int32))
            emit(op, "-", [a, b], ref_binary(op, a, b))
        # integer wraparound
        if op in ("add", "sub", "mul"):
            a = Arg("i32", np.array([2**31 - 1, -2**31, 65536, -7], dtype=np.int32))
            b = Arg("i32", np.array([1, -1, 65536, 3], dtype=np.int32))
            emit(op, "-", [a, b], ref_binary(op, a, b))
            a = Arg("u32", np.array([0, 4294967295, 65536, 7], dtype=np.uint32))
            b = Arg("u32", np.array([1, 1, 65536, 9], dtype=np.uint32))
            emit(op, "-", [a, b], ref_binary(op, a, b))
        if op in ("div",):
            for dt in ["i32", "i64", "u32", "bool"]:
                a, b = A(dt, (4,)), Arg(dt, np.zeros(4, dtype=NP[dt]))
                emit(op, "-", [a, b], ref_binary(op, a, b))


def ref_unary(op, a):
    x = a.v
    dt = a.dt
    with np.errstate(all="ignore"):
        if op in FLOAT_UNARY:
            rdt = inexact(dt)
            r = FLOAT_UNARY[op](f64(cast(x, rdt)))
            return rdt, a.weak, cast(r, rdt)
        if op == "logical_not":
            return "bool", False, np.logical_not(x != 0)
        if op == "square":
            if dt in FLOATS:
                return dt, a.weak, cast(f64(x) * f64(x), dt)
            return dt, a.weak, (x * x).astype(NP[dt])
        if op == "neg":
            return dt, a.weak, (-x).astype(NP[dt]) if dt != "u32" else (np.uint32(0) - x).astype(np.uint32)
        if op == "abs":
            return dt, a.weak, np.abs(x).astype(NP[dt])
        if op == "sign":
            if dt == "u32":
                return dt, a.weak, (x != 0).astype(np.uint32)
            return dt, a.weak, np.sign(x).astype(NP[dt])
        if op == "relu":
            return dt, a.weak, np.maximum(x, NP[dt](0)).astype(NP[dt])
        if op == "stop_gradient":
            return dt, a.weak, x.copy()
    raise KeyError(op)


FLOAT_UNARY = {
    "exp": np.exp, "log": np.log, "log1p": np.log1p, "expm1": np.expm1, "sqrt": np.sqrt,
    "rsqrt": lambda x: 1.0 / np.sqrt(x), "tanh": np.tanh, "sin": np.sin, "cos": np.cos,
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)), "floor": np.floor,
}
UNARY_DTYPES = {op: ALL for op in FLOAT_UNARY}
UNARY_DTYPES.update({"floor": FLOATS, "neg": NUM, "abs": NUM, "sign": NUM, "square": NUM,
                     "relu": NUM, "logical_not": ALL, "stop_gradient": ALL})
POSITIVE_DOMAIN = {"log", "sqrt", "rsqrt", "log1p"}


def unary_cases():
    for op, dts in UNARY_DTYPES.items():
        for dt in dts:
            for shape in [(2, 3), (), (0, 3), (1,), (7,)]:
                kw = {}
                if op in POSITIVE_DOMAIN:
                    kw = dict(lo=0.05 if dt in FLOATS else 0, hi=5.0 if dt in FLOATS else 9)
                if op == "abs" and dt in ("i32", "i64"):
                    kw = dict(lo=-9, hi=9)
                a = A(dt, shape, **kw)
                emit(op, "-", [a], ref_unary(op, a))
            if dt in FLOATS:
                a = A(dt, (11,), special=True)
                emit(op, "-", [a], ref_unary(op, a))
                big = Arg(dt, np.array([-20.5, -7.25, 0.001, 3.14159, 15.5, 88.0, -88.0, 700.0, -700.0],
                                       dtype=NP[dt]))
                emit(op, "-", [big], ref_unary(op, big))
            a = AT(dt, (3, 2), (1, 0), **({"lo": 0.1, "hi": 4.0} if op in POSITIVE_DOMAIN and dt in FLOATS else {}))
            emit(op, "-", [a], ref_unary(op, a))
            a = AT(dt, (2, 3, 4), (2, 0, 1), **({"lo": 0.1, "hi": 4.0} if op in POSITIVE_DOMAIN and dt in FLOATS else {}))
            emit(op, "-", [a], ref_unary(op, a))
        # weak scalars stay weak
        if "f32" in dts:
            a = W("f32", 0.75)
            emit(op, "-", [a], ref_unary(op, a))
        if "i32" in dts:
            a = W("i32", 3)
            emit(op, "-", [a], ref_unary(op, a))
        # a larger array (multi-threaded kernels)
        if "f32" in dts:
            a = A("f32", (21, 33), **({"lo": 0.05, "hi": 5.0} if op in POSITIVE_DOMAIN else {}))
            emit(op, "-", [a], ref_unary(op, a))


def where_cases():
    def ref(c, a, b):
        rdt, rweak = promote((a.dt, a.weak), (b.dt, b.weak))
        return rdt, rweak, np.where(c.v != 0, cast(a.v, rdt), cast(b.v, rdt))

    for cdt in ALL:
        c, a, b = A(cdt, (2, 3)), A("f32", (2, 3)), A("f32", (2, 3))
        emit("where", "-", [c, a, b], ref(c, a, b))
    for da in ALL:
        for db in ALL:
            c, a, b = A("bool", (3,)), A(da, (3,)), A(db, (3,))
            emit("where", "-", [c, a, b], ref(c, a, b))
    for sc, sa, sb in [((3, 1), (1, 4), (4,)), ((), (2, 3), ()), ((2, 3), (), (3,)),
                       ((0, 3), (3,), ()), ((4,), (3, 1), (1,)), ((2, 1, 1), (3, 1), (1, 5))]:
        c, a, b = A("bool", sc), A("i32", sa), A("i64", sb)
        emit("where", "-", [c, a, b], ref(c, a, b))
    for c, a, b in [(A("bool", (4,)), A("f32", (4,)), W("f32", 0.0)),
                    (A("bool", (4,)), W("f32", 1.5), W("f32", -1.5)),
                    (A("bool", (4,)), A("i32", (4,)), W("f32", 0.5)),
                    (A("bool", (4,)), W("i32", 7), A("u32", (4,))),
                    (A("i32", (2, 2)), W("i32", 1), W("i32", 0)),
                    (AT("bool", (3, 2), (1, 0)), AT("f64", (3, 2), (1, 0)), A("f64", (2, 3)))]:
        emit("where", "-", [c, a, b], ref(c, a, b))
    emit("where", "-", [A("bool", (2, 3)), A("f32", (3, 2)), A("f32", (2, 3))], ("ERR",))


def astype_cases():
    for src in ALL:
        for dst in ALL:
            if src in FLOATS:
                x = Arg(src, np.array([0.0, -0.0, 1.5, -1.5, 2.99, -2.99, 1e10, -1e10, np.nan,
                                       np.inf, -np.inf, 255.5, 3e9, -3e9, 1e20], dtype=NP[src]))
            elif src == "i64":
                x = Arg(src, np.array([0, 1, -1, 2**31, -2**31 - 1, 2**32 + 5, 2**53 + 1, -2**62, 2**63 - 1,
                                       123456789], dtype=np.int64))
            elif src == "i32":
                x = Arg(src, np.array([0, 1, -1, 2**31 - 1, -2**31, 16777217, 255], dtype=np.int32))
            elif src == "u32":
                x = Arg(src, np.array([0, 1, 2**31, 2**32 - 1, 16777217, 255], dtype=np.uint32))
            else:
                x = Arg(src, np.array([True, False, True]))
            emit("astype", "dt=" + dst, [x], (dst, False, conv(x.v, dst)))
            a = AT(src, (2, 3), (1, 0))
            emit("astype", "dt=" + dst, [a], (dst, False, conv(a.v, dst)))
    for dst in ALL:
        a = W("f32", 2.5)
        emit("astype", "dt=" + dst, [a], (dst, False, conv(a.v, dst)))


# ------------------------------------------------------------- reductions
def sum_dtype(dt):
    return "i32" if dt == "bool" else dt


def ref_reduce(op, x, dt, axes, keep):
    """axes None = all."""
    ax = tuple(axes) if axes is not None else None
    xv = np.asarray(x)
    with np.errstate(all="ignore"):
        if op == "sum":
            odt = sum_dtype(dt)
            if odt in FLOATS:
                r = np.sum(f64(xv), axis=ax, keepdims=keep)
            else:
                r = np.sum(xv.astype(np.int64 if odt != "u32" else np.uint64), axis=ax, keepdims=keep)
            return odt, cast(r, odt)
        if op == "mean":
            odt = inexact(dt)
            r = np.mean(f64(cast(xv, odt)), axis=ax, keepdims=keep)
            return odt, cast(r, odt)
        # max/min: empty reductions raise
        n_red = xv.size if ax is None else int(np.prod([xv.shape[a] for a in ax]))
        if n_red == 0:
            return None
        f = np.max if op == "max" else np.min
        return dt, np.asarray(f(xv, axis=ax, keepdims=keep)).astype(NP[dt])


def reduce_cases():
    for op in ["sum", "mean", "max", "min"]:
        for dt in ALL:
            for shape in [(2, 3), (), (5,), (0, 3), (1, 1), (3, 4, 2)]:
                a = A(dt, shape)
                r = ref_reduce(op, a.v, dt, None, False)
                emit(op, "-", [a], ("ERR",) if r is None else (r[0], None, r[1]))
            a = AT(dt, (3, 4), (1, 0))
            r = ref_reduce(op, a.v, dt, None, False)
            emit(op, "-", [a], (r[0], None, r[1]))
        for dt in FLOATS:
            a = A(dt, (3, 4))
            a.base[1, 2] = np.nan
            r = ref_reduce(op, a.v, dt, None, False)
            emit(op, "-", [a], (r[0], None, r[1]))
        a = A("f32", (150, 40), lo=0.0, hi=1.0)  # larger: blocked / threaded paths
        r = ref_reduce(op, a.v, "f32", None, False)
        emit(op, "-", [a], (r[0], None, r[1]))

        aop = op + "_axes"
        axes_list = [([0], False), ([1], True), ([-1], False), ([0, 2], False), ([2, 0], True),
                     ([-1, -3], True), ([], False), ([], True), ([0, 1, 2], False), ([1, -1], True)]
        for dt in ALL:
            for axes, keep in axes_list:
                a = A(dt, (2, 3, 4))
                r = ref_reduce(op, a.v, dt, [x % 3 for x in axes], keep)
                emit(aop, "axes=%s;keep=%d" % (",".join(map(str, axes)), keep), [a], (r[0], None, r[1]))
        for dt in ["f32", "i32", "f64"]:
            # transposed input
            for axes, keep in [([0], False), ([1], True), ([0, 2], False), ([-1], True)]:
                a = AT(dt, (4, 2, 3), (1, 2, 0))
                r = ref_reduce(op, a.v, dt, [x % 3 for x in axes], keep)
                emit(aop, "axes=%s;keep=%d" % (",".join(map(str, axes)), keep), [a], (r[0], None, r[1]))
            # size-0 inputs
            for shape, axes, keep in [((0, 3), [0], False), ((0, 3), [1], False), ((0, 3), [1], True),
                                      ((2, 0), [0], True), ((2, 0, 3), [1], False), ((2, 0, 3), [0, 2], False)]:
                a = A(dt, shape)
                r = ref_reduce(op, a.v, dt, [x % len(shape) for x in axes], keep)
                params = "axes=%s;keep=%d" % (",".join(map(str, axes)), keep)
                emit(aop, params, [a], ("ERR",) if r is None else (r[0], None, r[1]))
            # 0-d and rank-1
            a = A(dt, ())
            r = ref_reduce(op, a.v, dt, [], False)
            emit(aop, "axes=;keep=0", [a], (r[0], None, r[1]))
            a = A(dt, (6,))
            r = ref_reduce(op, a.v, dt, [0], True)
            emit(aop, "axes=0;keep=1", [a], (r[0], None, r[1]))
            # larger: rows, columns and middle axes
            for shape, axes in ([((37, 65), [1]), ((65, 37), [0]), ((5, 33, 9), [1]), ((5, 33, 9), [0, 2])]
                                if dt != "f64" else []):
                a = A(dt, shape, lo=-2, hi=2)
                r = ref_reduce(op, a.v, dt, axes, False)
                emit(aop, "axes=%s;keep=0" % ",".join(map(str, axes)), [a], (r[0], None, r[1]))
        # errors: out of range / repeated axes
        emit(aop, "axes=3;keep=0", [A("f32", (2, 3, 4))], ("ERR",))
        emit(aop, "axes=-4;keep=0", [A("f32", (2, 3, 4))], ("ERR",))
        emit(aop, "axes=1,-2;keep=0", [A("f32", (2, 3, 4))], ("ERR",))
        emit(aop, "axes=0;keep=0", [A("f32", ())], ("ERR",))


def argreduce_cases():
    for op in ["argmax", "argmin"]:
        f = np.argmax if op == "argmax" else np.argmin
        for dt in ALL:
            for shape, axis, keep in [((2, 3), 0, False), ((2, 3), 1, True), ((2, 3), -1, False),
                                      ((3, 4, 5), 1, False), ((3, 4, 5), -3, True), ((7,), 0, False),
                                      ((0, 3), 1, False), ((1, 1), 0, True)]:
                a = A(dt, shape, lo=-2 if dt != "u32" else 0, hi=2) if dt != "bool" else A(dt, shape)
                r = np.asarray(f(a.v, axis=axis, keepdims=keep)).astype(np.int32)
                emit(op, "axis=%d;keep=%d" % (axis, keep), [a], ("i32", False, r))
        for dt in FLOATS:
            a = A(dt, (3, 5))
            a.base[0, 1] = np.nan
            a.base[0, 3] = np.nan
            a.base[1, 0] = np.inf
            a.base[2, 4] = -np.inf
            for axis in (0, 1):
                r = np.asarray(f(a.v, axis=axis)).astype(np.int32)
                emit(op, "axis=%d;keep=0" % axis, [a], ("i32", False, r))
        for dt in ["f32", "i32"]:
            a = AT(dt, (4, 3), (1, 0), lo=-3, hi=3)
            for axis in (0, 1):
                r = np.asarray(f(a.v, axis=axis)).astype(np.int32)
                emit(op, "axis=%d;keep=0" % axis, [a], ("i32", False, r))
            a = A(dt, (9, 300), lo=-100, hi=100)
            r = np.asarray(f(a.v, axis=1)).astype(np.int32)
            emit(op, "axis=1;keep=0", [a], ("i32", False, r))
            r = np.asarray(f(a.v, axis=0)).astype(np.int32)
            emit(op, "axis=0;keep=0", [a], ("i32", False, r))
        emit(op, "axis=0;keep=0", [A("f32", (0, 3))], ("ERR",))
        emit(op, "axis=2;keep=0", [A("f32", (2, 3))], ("ERR",))
        emit(op, "axis=0;keep=0", [A("f32", ())], ("ERR",))


# ------------------------------------------------------------ dot, matmul
def ref_mm(op, a, b):
    rdt, _ = promote((a.dt, a.weak), (b.dt, b.weak))
    x, y = cast(a.v, rdt), cast(b.v, rdt)
    f = np.dot if op == "dot" else np.matmul
    if rdt in FLOATS:
        r = f(f64(x), f64(y))
    else:
        r = f(x.astype(np.int64), y.astype(np.int64))
    return rdt, None, cast(r, rdt)


def linalg_cases():
    dot_shapes = [((), ()), ((), (3,)), ((2, 3), ()), ((4,), (4,)), ((2, 3), (3,)), ((3,), (3, 4)),
                  ((2, 3), (3, 4)), ((2, 3, 4), (4,)), ((2, 3, 4), (4, 5)), ((2, 3), (4, 3, 5)),
                  ((2, 3, 4), (2, 4, 3)), ((0, 3), (3, 4)), ((2, 0), (0, 3)), ((0,), (0,)),
                  ((3, 0), (0,)), ((1, 1), (1, 1))]
    mm_shapes = [((4,), (4,)), ((2, 3), (3,)), ((3,), (3, 4)), ((2, 3), (3, 4)), ((2, 3, 4), (4,)),
                 ((4,), (2, 4, 3)), ((2, 3, 4), (4, 5)), ((3, 4), (2, 4, 5)), ((2, 3, 4), (2, 4, 5)),
                 ((2, 1, 3, 4), (5, 4, 2)), ((1, 3, 4), (2, 4, 5)), ((2, 1, 3, 4), (1, 3, 4, 2)),
                 ((0, 3), (3, 4)), ((2, 0), (0, 3)), ((0, 2, 3), (3, 4)), ((3, 0, 4), (4, 2)),
                 ((1, 1), (1, 1)), ((0,), (0,))]
    for op, shapes in [("dot", dot_shapes), ("matmul", mm_shapes)]:
        for sa, sb in shapes:
            for dt in ["f32", "f64", "i32"]:
                a, b = A(dt, sa), A(dt, sb)
                emit(op, "-", [a, b], ref_mm(op, a, b))
        for da, db in [("i32", "f32"), ("u32", "i32"), ("i64", "f64"), ("f32", "f64"), ("u32", "u32"),
                       ("i64", "i64"), ("bool", "f32"), ("i32", "i64")]:
            a, b = A(da, (2, 3)), A(db, (3, 2))
            emit(op, "-", [a, b], ref_mm(op, a, b))
        for a, b in [(AT("f32", (3, 2), (1, 0)), A("f32", (3, 4))),
                     (A("f32", (2, 3)), AT("f32", (4, 3), (1, 0))),
                     (AT("f64", (3, 2), (1, 0)), AT("f64", (4, 3), (1, 0))),
                     (AT("f32", (4, 2, 3), (1, 2, 0)), AT("f32", (2, 5, 4), (0, 2, 1))),
                     (AT("i32", (3, 2), (1, 0)), A("i32", (3, 4)))]:
            if op == "dot" and a.v.ndim == 3:
                b = Arg(b.dt, rand(b.dt, (4, 5)))
            emit(op, "-", [a, b], ref_mm(op, a, b))
        # weak scalar operands (dot only: matmul rejects 0-d)
        if op == "dot":
            for a, b in [(A("f32", (2, 3)), W("f32", 1.5)), (W("i32", 2), A("i32", (3,))),
                         (A("i32", (2,)), W("f32", 0.5))]:
                emit(op, "-", [a, b], ref_mm(op, a, b))
        # GEMM sizes past the kernel's blocking
        for dt in ["f32", "i64"]:
            for sa, sb in ([((33, 17), (17, 65)), ((3, 40, 9), (9, 20)), ((2, 9, 31), (2, 31, 7))]
                           if dt == "f32" else [((9, 17), (17, 33))]):
                a, b = A(dt, sa, lo=-1, hi=1), A(dt, sb, lo=-1, hi=1)
                emit(op, "-", [a, b], ref_mm(op, a, b))
        emit(op, "-", [A("f32", (2, 3)), A("f32", (4, 5))], ("ERR",))
        emit(op, "-", [A("f32", (3,)), A("f32", (4,))], ("ERR",))
    emit("matmul", "-", [A("f32", ()), A("f32", (3,))], ("ERR",))
    emit("matmul", "-", [A("f32", (2, 3, 4)), A("f32", (3, 4, 5))], ("ERR",))


# ------------------------------------------------------------ shape ops
def shape_param(s):
    return fmt_shape(s)


def shape_cases():
    # reshape
    for dt in ALL:
        for src, dst in [((2, 3), (3, 2)), ((2, 3), (6,)), ((2, 3), (-1,)), ((2, 3, 4), (4, -1)),
                         ((2, 3, 4), (-1, 3, 2)), ((6,), (1, 2, 1, 3)), ((1,), ()), ((), (1, 1)),
                         ((0, 3), (3, 0)), ((0, 3), (-1, 3)), ((0, 3), (0,)), ((2, 3), (2, 3))]:
            a = A(dt, src)
            emit("reshape", "shape=" + shape_param(dst), [a], (dt, None, a.v.reshape(dst)))
    for src, dst in [((3, 4), (2, 6)), ((2, 3, 4), (-1,)), ((2, 3, 4), (6, 4))]:
        perm = tuple(reversed(range(len(src))))
        a = AT("f32", tuple(reversed(src)), perm)
        emit("reshape", "shape=" + shape_param(dst), [a], ("f32", None, a.v.reshape(dst)))
    for src, dst in [((2, 3), (4,)), ((2, 3), (-1, -1)), ((2, 3), (-1, 4)), ((2, 3), (2, -2)),
                     ((0, 3), (-1, 0))]:
        emit("reshape", "shape=" + shape_param(dst), [A("f32", src)], ("ERR",))

    # transpose
    for dt in ALL:
        for shape, perm in [((2, 3), (1, 0)), ((2, 3), None), ((2, 3, 4), (2, 0, 1)), ((2, 3, 4), (1, 0, 2)),
                            ((2, 3, 4), None), ((2, 3, 4), (0, 1, 2)), ((2, 3, 4), (-1, 0, 1)), ((), ()),
                            ((0, 3), (1, 0)), ((1, 4, 1), (2, 1, 0)), ((2, 1, 3, 2), (3, 1, 0, 2))]:
            a = A(dt, shape)
            p = "perm=none" if perm is None else "perm=" + ",".join(map(str, perm))
            emit("transpose", p, [a], (dt, None, np.transpose(a.v, perm)))
    for shape, perm in [((2, 3, 4), (1, 2, 0)), ((3, 4), (1, 0))]:
        a = AT("f64", shape, perm)
        np_perm = (1, 0) if len(shape) == 2 else (2, 0, 1)
        emit("transpose", "perm=" + ",".join(map(str, np_perm)), [a], ("f64", None, np.transpose(a.v, np_perm)))
    a = A("f32", (33, 47))
    emit("transpose", "perm=1,0", [a], ("f32", None, a.v.T))
    for perm in ["0,0", "0,2", "1,1", "-3,0"]:
        emit("transpose", "perm=" + perm, [A("f32", (2, 3))], ("ERR",))

    # broadcast_to
    for dt in ALL:
        for src, dst in [((), (2, 3)), ((3,), (2, 3)), ((2, 1), (2, 3)), ((1, 3), (4, 2, 3)), ((1,), (0,)),
                         ((2, 3), (2, 3)), ((1, 1), (3, 1, 5)), ((0, 1), (2, 0, 4))]:
            a = A(dt, src)
            emit("broadcast_to", "shape=" + shape_param(dst), [a], (dt, None, np.broadcast_to(a.v, dst).copy()))
    a = AT("i32", (3, 1), (1, 0))
    emit("broadcast_to", "shape=2x4x3", [a], ("i32", None, np.broadcast_to(a.v, (2, 4, 3)).copy()))
    for src, dst in [((2, 3), (3, 3)), ((3,), (4,)), ((2, 3), (3,)), ((2,), (2, 3))]:
        emit("broadcast_to", "shape=" + shape_param(dst), [A("f32", src)], ("ERR",))

    # expand_dims / squeeze
    for dt in ALL:
        for shape, axis in [((2, 3), 0), ((2, 3), 1), ((2, 3), 2), ((2, 3), -1), ((2, 3), -3), ((), 0), ((0, 3), 1)]:
            a = A(dt, shape)
            emit("expand_dims", "axis=%d" % axis, [a], (dt, None, np.expand_dims(a.v, axis)))
        for shape, axis in [((1, 3), 0), ((2, 1), 1), ((2, 1), -1), ((1,), 0), ((2, 1, 3), -2), ((0, 1), 1)]:
            a = A(dt, shape)
            emit("squeeze", "axis=%d" % axis, [a], (dt, None, np.squeeze(a.v, axis)))
    a = AT("f32", (3, 1, 2), (1, 2, 0))
    emit("squeeze", "axis=0", [a], ("f32", None, np.squeeze(a.v, 0)))
    for shape, axis in [((2, 3), 3), ((2, 3), -4)]:
        emit("expand_dims", "axis=%d" % axis, [A("f32", shape)], ("ERR",))
    for shape, axis in [((2, 3), 0), ((2, 1), 2), ((), 0)]:
        emit("squeeze", "axis=%d" % axis, [A("f32", shape)], ("ERR",))

    # slice: Python semantics
    def slice_case(a, specs, dt):
        starts, stops, steps = [], [], []
        sl = []
        for (s, e, st) in specs:
            stv = 1 if st is None else st
            if s is None:
                starts.append("0" if stv > 0 else "E")
            else:
                starts.append(str(s))
            stops.append("E" if e is None else str(e))
            steps.append(str(stv))
            sl.append(slice(s, e, st))
        p = "start=%s;stop=%s;step=%s" % (",".join(starts), ",".join(stops),
                                           "none" if all(st is None for _, _, st in specs) else ",".join(steps))
        emit("slice", p, [a], (dt, None, a.v[tuple(sl)].copy()))

    n = None
    specs_list = [
        [(0, 2, n), (1, 3, n)], [(n, n, -1), (n, n, n)], [(n, n, n), (n, n, -1)], [(n, n, -1), (n, n, -2)],
        [(-1, n, n), (-2, n, n)], [(1, -1, n), (0, 100, 2)], [(-100, 100, n), (-100, -1, 3)],
        [(5, 0, -2), (3, n, -1)], [(n, -4, -1), (n, 1, -1)], [(2, 2, n), (0, 4, n)],
        [(4, 1, n), (1, 3, n)], [(1, 3, -1), (n, n, n)], [(-1, -100, -1), (-2, n, -3)], [(100, n, -1), (n, n, 7)],
    ]
    for dt in ALL:
        for specs in specs_list:
            slice_case(A(dt, (5, 4)), specs, dt)
    for specs in [[(n, n, -1)], [(1, n, 2)], [(0, 0, n)]]:
        slice_case(A("f32", (0,)), specs, "f32")
    slice_case(A("f32", ()), [], "f32")
    for specs in [[(n, n, -1), (1, n, 2), (n, n, -2)], [(1, 2, n), (n, n, n), (3, 0, -1)]]:
        slice_case(A("i32", (3, 4, 5)), specs, "i32")
        slice_case(AT("f64", (5, 3, 4), (1, 2, 0)), specs, "f64")
    emit("slice", "start=0,0;stop=2,2;step=1,0", [A("f32", (3, 3))], ("ERR",))

    # concatenate / stack (mixed dtypes promote along the lattice)
    def cat_ref(op, args, axis):
        rdt, _ = promote(*[(a.dt, a.weak) for a in args])
        vs = [cast(a.v, rdt) for a in args]
        r = np.concatenate(vs, axis=axis) if op == "concatenate" else np.stack(vs, axis=axis)
        return rdt, None, r

    for op in ["concatenate", "stack"]:
        for dt in ALL:
            for shapes, axis in ([([(2, 3), (4, 3)], 0), ([(2, 3), (2, 1), (2, 2)], 1), ([(2, 3), (2, 3)], -1),
                                  ([(0, 3), (2, 3)], 0), ([(3,)], 0), ([(1, 2, 3), (1, 2, 3), (2, 2, 3)], 0),
                                  ([(2, 0), (2, 3)], 1)] if op == "concatenate" else
                                 [([(2, 3), (2, 3)], 0), ([(2, 3), (2, 3), (2, 3)], 1), ([(2, 3), (2, 3)], 2),
                                  ([(2, 3), (2, 3)], -1), ([(), ()], 0), ([(3,)], 0), ([(0, 3), (0, 3)], 1)]):
                args = [A(dt, s) for s in shapes]
                emit(op, "axis=%d" % axis, args, cat_ref(op, args, axis))
        for dts in [("i32", "f32"), ("u32", "i32"), ("bool", "i64"), ("f32", "f64", "i32"), ("bool", "u32"),
                    ("i64", "f32")]:
            args = [A(d, (2, 2)) for d in dts]
            emit(op, "axis=0", args, cat_ref(op, args, 0))
        args = [AT("f32", (3, 2), (1, 0)), A("f32", (2, 3))]
        emit(op, "axis=0", args, cat_ref(op, args, 0))
        args = [A("i32", (17, 5)) for _ in range(20)]
        emit(op, "axis=1", args, cat_ref(op, args, 1))
    emit("concatenate", "axis=0", [A("f32", (2, 3)), A("f32", (3,))], ("ERR",))
    emit("concatenate", "axis=0", [A("f32", (2, 3)), A("f32", (2, 4))], ("ERR",))
    emit("concatenate", "axis=2", [A("f32", (2, 3))], ("ERR",))
    emit("concatenate", "axis=0", [A("f32", ()), A("f32", ())], ("ERR",))
    emit("stack", "axis=0", [A("f32", (2, 3)), A("f32", (3, 2))], ("ERR",))
    emit("stack", "axis=3", [A("f32", (2, 3)), A("f32", (2, 3))], ("ERR",))


def take_ref(x, idx, axis):
    n = x.shape[axis]
    i = idx.astype(np.int64)
    i = np.where(i < 0, i + n, i)
    i = np.clip(i, 0, n - 1)
    return np.take(x, i, axis=axis)


def index_cases():
    for dt in ALL:
        for xs, idx, axis in [((5,), [0, 4, -1, -5, 2], 0), ((4, 3), [[0, 1], [3, -2]], 0),
                              ((4, 3), [2, 0, 0], 1), ((4, 3), [7, -9, 100, -100], -1), ((2, 3, 4), [3], 2),
                              ((4, 3), 2, 0), ((4, 3), -1, 1), ((4, 3), [], 0), ((0, 3), [0, 2], 1)]:
            x = A(dt, xs)
            for idt in (["i32", "i64", "u32"] if dt == "f32" else ["i32"]):
                ia = np.asarray(idx, dtype=np.int64)
                if idt == "u32":
                    ia = np.abs(ia)
                ind = Arg(idt, ia.astype(NP[idt]))
                emit("take", "axis=%d" % axis, [x, ind], (dt, None, take_ref(x.v, ind.v, axis)))
    x = AT("f32", (3, 5), (1, 0))
    ind = Arg("i32", np.array([[2, -1], [0, 9]], dtype=np.int32))
    emit("take", "axis=1", [x, ind], ("f32", None, take_ref(x.v, ind.v, 1)))
    x = A("f64", (50, 7))
    ind = Arg("i64", rng.integers(-60, 60, size=(3, 11)).astype(np.int64))
    emit("take", "axis=0", [x, ind], ("f64", None, take_ref(x.v, ind.v, 0)))
    emit("take", "axis=0", [A("f32", (4,)), A("f32", (2,))], ("ERR",))
    emit("take", "axis=0", [A("f32", (4,)), A("bool", (2,))], ("ERR",))
    emit("take", "axis=2", [A("f32", (4, 3)), Arg("i32", np.array([0], np.int32))], ("ERR",))
    emit("take", "axis=0", [A("f32", ()), Arg("i32", np.array([0], np.int32))], ("ERR",))

    # one_hot
    for ldt in INTS:
        for labels, n in [([0, 2, 1, 3], 4), ([[1, 0], [2, 2]], 3), (2, 5), ([], 3), ([0, 1], 0),
                          ([-1, 3, 5, 2], 4)]:
            la = np.asarray(labels, dtype=np.int64)
            if ldt == "u32":
                la = np.where(la < 0, 7, la)
            lab = Arg(ldt, la.astype(NP[ldt]))
            r = (lab.v.astype(np.int64)[..., None] == np.arange(n)).astype(np.float32)
            emit("one_hot", "n=%d" % n, [lab], ("f32", False, r))
    lab = AT("i32", (3, 2), (1, 0), lo=0, hi=4)
    emit("one_hot", "n=5", [lab], ("f32", False, (lab.v[..., None] == np.arange(5)).astype(np.float32)))
    emit("one_hot", "n=3", [A("f32", (2,))], ("ERR",))
    emit("one_hot", "n=-1", [A("i32", (2,))], ("ERR",))


# ---------------------------------------------------------------- nn ops
def nn_ref(op, x, dt, axis):
    odt = inexact(dt)
    v = f64(cast(x, odt))
    ax = axis % v.ndim
    with np.errstate(all="ignore"):
        if v.shape[ax] == 0:
            if op == "logsumexp":
                return odt, cast(np.full(np.delete(np.array(v.shape), ax), -np.inf), odt)
            return odt, cast(v, odt)
        m = np.max(v, axis=ax, keepdims=True)
        m = np.where(np.isfinite(m), m, 0.0)
        s = np.sum(np.exp(v - m), axis=ax, keepdims=True)
        if op == "logsumexp":
            r = np.squeeze(np.log(s) + m, axis=ax)
        elif op == "softmax":
            r = np.exp(v - m) / s
        else:
            r = (v - m) - np.log(s)
    return odt, cast(r, odt)


def nn_cases():
    for op in ["logsumexp", "softmax", "log_softmax"]:
        for dt in ALL:
            for shape, axis in [((2, 3), -1), ((2, 3), 0), ((3, 4, 5), 1), ((7,), 0), ((1, 1), 1), ((0, 3), 1)]:
                a = A(dt, shape)
                r = nn_ref(op, a.v, dt, axis)
                emit(op, "axis=%d" % axis, [a], (r[0], None, r[1]))
        for dt in FLOATS:
            a = Arg(dt, np.array([[1.0, 2.0, 3.0], [-np.inf, 0.0, 1.0], [-np.inf, -np.inf, -np.inf],
                                  [1000.0, 1000.0, -1000.0], [-1000.0, -1001.0, -1002.0]], dtype=NP[dt]))
            r = nn_ref(op, a.v, dt, 1)
            emit(op, "axis=1", [a], (r[0], None, r[1]))
            a = A(dt, (3, 4), lo=-30, hi=30)
            r = nn_ref(op, a.v, dt, -2)
            emit(op, "axis=-2", [a], (r[0], None, r[1]))
            a = AT(dt, (4, 3), (1, 0))
            r = nn_ref(op, a.v, dt, 1)
            emit(op, "axis=1", [a], (r[0], None, r[1]))
            a = A(dt, (3, 0))
            r = nn_ref(op, a.v, dt, 1)
            emit(op, "axis=1", [a], (r[0], None, r[1]))
            a = A(dt, (8, 100), lo=-5, hi=5)
            r = nn_ref(op, a.v, dt, 1)
            emit(op, "axis=1", [a], (r[0], None, r[1]))
        emit(op, "axis=2", [A("f32", (2, 3))], ("ERR",))
        emit(op, "axis=-3", [A("f32", (2, 3))], ("ERR",))
        emit(op, "axis=0", [A("f32", ())], ("ERR",))


# ------------------------------------------------------------- creation
def creation_cases():
    for dt in ALL:
        for shape in [(2, 3), (), (0, 3), (4,), (1, 2, 1)]:
            emit("zeros", "dt=%s;shape=%s" % (dt, fmt_shape(shape)), [], (dt, False, np.zeros(shape, NP[dt])))
            emit("ones", "dt=%s;shape=%s" % (dt, fmt_shape(shape)), [], (dt, False, np.ones(shape, NP[dt])))
        for v in [2.5, -2.5, 0.0, 7.0, 0.1, 1e6]:
            if dt == "u32" and v < 0:
                continue
            emit("full", "dt=%s;shape=2x2;v=%r" % (dt, v), [], (dt, False, conv(np.full((2, 2), v), dt)))
        emit("full", "dt=%s;shape=s;v=3.0" % dt, [], (dt, False, conv(np.full((), 3.0), dt)))
        a = A(dt, (2, 3))
        emit("zeros_like", "-", [a], (dt, False, np.zeros((2, 3), NP[dt])))
        emit("ones_like", "-", [a], (dt, False, np.ones((2, 3), NP[dt])))
        a = A(dt, ())
        emit("zeros_like", "-", [a], (dt, False, np.zeros((), NP[dt])))
        a = A(dt, (0, 2))
        emit("ones_like", "-", [a], (dt, False, np.ones((0, 2), NP[dt])))
        emit("scalar_of", "dt=%s;v=2.5" % dt, [], (dt, False, conv(np.float64(2.5), dt)))
        emit("scalar_of", "dt=%s;v=-0.75" % dt, [], (dt, False, conv(np.float64(-0.75), dt)))
    for v in [1.5, -0.1, 0.0, 1e-3, 3.4e38]:
        emit("scalar", "v=%r" % v, [], ("f32", True, np.float32(v)))
    for v in [0, 7, -3, 2**31 - 1]:
        emit("scalar_int", "v=%d" % v, [], ("i32", True, np.int32(v)))
    # arange: n = ceil((stop - start) / step); start + i*step in float64
    for dt in ["i32", "i64", "u32", "f32", "f64"]:
        for start, stop, step in [(0, 5, 1), (2, 11, 3), (10, 0, -2), (0, 0, 1), (5, 0, 1), (0, 1, 1),
                                  (3, 4, 0.5 if dt in FLOATS else 1), (-3, 3, 1)]:
            if dt == "u32" and (start < 0 or stop < 0):
                continue
            n = max(0, int(np.ceil((stop - start) / step)))
            v = start + np.arange(n, dtype=np.float64) * step
            emit("arange", "dt=%s;start=%r;stop=%r;step=%r" % (dt, float(start), float(stop), float(step)), [],
                 (dt, False, conv(v, dt)))
    for dt in FLOATS:
        for start, stop, step in [(0.0, 1.0, 0.1), (-1.0, 1.0, 0.25), (1.0, -1.0, -0.3), (0.5, 100.0, 7.5)]:
            n = max(0, int(np.ceil((stop - start) / step)))
            v = start + np.arange(n, dtype=np.float64) * step
            emit("arange", "dt=%s;start=%r;stop=%r;step=%r" % (dt, start, stop, step), [], (dt, False, conv(v, dt)))
    emit("arange", "dt=f32;start=0.0;stop=1.0;step=0.0", [], ("ERR",))
    emit("zeros", "dt=f32;shape=2x-1", [], ("ERR",))
    emit("full", "dt=i32;shape=-3;v=1.0", [], ("ERR",))


def main():
    binary_cases()
    unary_cases()
    where_cases()
    astype_cases()
    reduce_cases()
    argreduce_cases()
    linalg_cases()
    shape_cases()
    index_cases()
    nn_cases()
    creation_cases()
    header = [
        "# jx golden op tests: generated by tests/golden/gen_golden.py (NumPy %s, seed %d). Do not edit."
        % (np.__version__, SEED),
        "# Format (see the script's docstring): <op> <params> <nin> {<dtype> <weak> <shape> <pre> <values>}*nin"
        " -> (<dtype> <weak|?> <shape> <values> | ERR) [!xfail:<reason>]",
        "# %d cases: %s" % (len(CASES), " ".join("%s=%d" % kv for kv in sorted(COUNT.items()))),
    ]
    with open(OUT, "w") as f:
        f.write("\n".join(header + CASES) + "\n")
    size = os.path.getsize(OUT)
    print("wrote %s: %d cases, %d bytes" % (OUT, len(CASES), size), file=sys.stderr)
    assert size < 2 * 1024 * 1024, "golden file too large"
    # issue #18's math part: its own files, its own seed (gen_math.py)
    import gen_math
    for path in gen_math.write(sys.modules[__name__], os.path.dirname(OUT)):
        print("wrote %s: %d bytes" % (path, os.path.getsize(path)), file=sys.stderr)


if __name__ == "__main__":
    main()
