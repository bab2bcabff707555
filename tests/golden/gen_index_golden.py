#!/usr/bin/python3
"""Generate tests/golden/index_golden.txt: NumPy and PyTorch reference
results for jx's indexing ops (tests/test_index_golden.c reads it).

Run with Debian's interpreter (NumPy 1.24, PyTorch 1.13):

    /usr/bin/python3 tests/golden/gen_index_golden.py

The seed is fixed, so rerunning gives the same file.

Format: one case per line,

    <op> <params> | <array> | <array> ... -> <array>

  params  '-' or key=value pairs joined by ';' (lists comma separated)
  array   <dtype> <shape> <values...>; shape 's' for 0-d, else dims joined
          by 'x'; floats as repr (nan, inf, -inf)

Semantics are JAX's where NumPy/PyTorch differ: negative indices of the
.at[] updates count from the end once, out-of-bounds updates are dropped
(the references drop them before calling np.add.at & co.), segment ids
outside [0, n) are dropped, dynamic slices clamp their starts.
"""
import os

import numpy as np
import torch

rng = np.random.default_rng(18)
lines = []
DT = {np.float32: "f32", np.float64: "f64", np.int32: "i32", np.int64: "i64"}


def arr(a):
    a = np.asarray(a)
    name = DT[a.dtype.type]
    shape = "s" if a.ndim == 0 else "x".join(str(d) for d in a.shape)
    if a.dtype.kind == "f":
        vals = [repr(float(np.float32(v))) if name == "f32" else repr(float(v)) for v in a.ravel()]
    else:
        vals = [str(int(v)) for v in a.ravel()]
    return " ".join([name, shape] + vals)


def emit(op, params, ins, out):
    p = ";".join(f"{k}={','.join(str(x) for x in v) if isinstance(v, (list, tuple)) else v}"
                 for k, v in params.items()) or "-"
    lines.append(f"{op} {p} | " + " | ".join(arr(a) for a in ins) + " -> " + arr(out))


def rand(shape, dt):
    if np.dtype(dt).kind == "f":
        return rng.standard_normal(shape).astype(dt)
    return rng.integers(-50, 50, size=shape).astype(dt)


# ---------------------------------------------------------- take_along_axis
for shape, axis, ishape, dt in [((4, 5), 1, (4, 3), np.float32), ((4, 5), 0, (6, 5), np.float64),
                                ((3, 4, 2), 1, (3, 7, 2), np.int32), ((3, 4, 2), -1, (3, 4, 5), np.float32),
                                ((3, 4), 1, (1, 6), np.float32), ((3, 4), 0, (2, 1), np.int64),
                                ((0, 4), 1, (0, 2), np.float32), ((3, 4), 1, (3, 0), np.float32)]:
    x = rand(shape, dt)
    n = shape[axis]
    idx = rng.integers(-n, n, size=ishape).astype(np.int32) if n else np.zeros(ishape, np.int32)
    bshape = list(np.broadcast_shapes(tuple(1 if d == axis % len(shape) else s for d, s in enumerate(shape)),
                                      tuple(1 if d == axis % len(shape) else s for d, s in enumerate(ishape))))
    bshape[axis % len(shape)] = ishape[axis % len(shape)]
    xb_shape = list(bshape)
    xb_shape[axis % len(shape)] = n
    xb = np.broadcast_to(x, xb_shape)
    ib = np.broadcast_to(np.where(idx < 0, idx + n, idx), bshape)
    emit("take_along_axis", {"axis": axis}, [x, idx], np.take_along_axis(xb, ib, axis))

# ------------------------------------------------------------ .at[] updates
UFUNC = {"at_add": np.add, "at_mul": np.multiply, "at_min": np.minimum, "at_max": np.maximum}


def at_ref(op, x, idx, vals, axis):
    """x.at[(:,)*axis + (idx,)].op(vals): negative wrap once, drop the rest"""
    axis %= x.ndim
    n = x.shape[axis]
    ushape = x.shape[:axis] + idx.shape + x.shape[axis + 1:]
    upd = np.broadcast_to(vals, ushape).astype(x.dtype)
    upd = upd.reshape(x.shape[:axis] + (idx.size,) + x.shape[axis + 1:])
    flat = idx.ravel().astype(np.int64)
    flat = np.where(flat < 0, flat + n, flat)
    keep = np.nonzero((flat >= 0) & (flat < n))[0]
    ref = x.copy()
    pre = (slice(None),) * axis
    if op == "at_set":  # in order: the last update wins
        for j in keep:
            ref[pre + (flat[j],)] = upd[pre + (j,)]
    else:
        UFUNC[op].at(ref, pre + (flat[keep],), np.take(upd, keep, axis=axis))
    return ref


for op in ["at_add", "at_set", "at_mul", "at_min", "at_max"]:
    for shape, axis, ishape, dt in [((6,), 0, (10,), np.float32), ((4, 5), 1, (7,), np.float64),
                                    ((4, 5), 0, (2, 3), np.int32), ((3, 4, 2), -2, (5,), np.float32),
                                    ((5, 3), 0, (0,), np.float32)]:
        x = rand(shape, dt)
        n = shape[axis]
        idx = rng.integers(-n - 2, n + 2, size=ishape).astype(np.int32)  # some out of bounds, duplicates
        ushape = shape[:axis % len(shape)] + ishape + shape[axis % len(shape) + 1:]
        vals = rand(ushape, dt)
        if op == "at_mul" and dt != np.int32:
            vals = (vals * 0.5 + 1).astype(dt)
        emit(op, {"axis": axis}, [x, idx, vals], at_ref(op, x, idx, vals, axis))
    x = rand((4, 3), np.float32)  # values broadcast from a row
    idx = np.array([3, -1, 0, 5], np.int32)
    vals = rand((3,), np.float32)
    emit(op, {"axis": 0}, [x, idx, vals], at_ref(op, x, idx, vals, 0))

# -------------------------------------- torch: index_put and scatter_reduce
for dt, tdt in [(np.float32, torch.float32), (np.float64, torch.float64), (np.int64, torch.int64)]:
    x = rand((5, 4), dt)
    ij = np.stack([rng.integers(0, 5, 12), rng.integers(0, 4, 12)], axis=1).astype(np.int64)
    v = rand((12,), dt)
    t = torch.from_numpy(x.copy())
    t.index_put_((torch.from_numpy(ij[:, 0]), torch.from_numpy(ij[:, 1])), torch.from_numpy(v), accumulate=True)
    emit("index_put_add", {}, [x, ij, v], t.numpy())

for reduce in ["sum", "prod", "amax", "amin"]:
    for dt in [np.float32, np.float64, np.int32]:
        for dim, xshape, sshape in [(0, (4, 5), (6, 5)), (1, (3, 6), (3, 9)), (1, (2, 3, 4), (2, 5, 3))]:
            x = rand(xshape, dt)
            src = rand(sshape, dt)
            if reduce == "prod":
                src = (np.sign(src) * (np.abs(src) % 3 + 1)).astype(dt) if dt == np.int32 else src
            index = rng.integers(0, xshape[dim], size=sshape).astype(np.int64)
            out = torch.from_numpy(x.copy()).scatter_reduce(dim, torch.from_numpy(index), torch.from_numpy(src),
                                                            reduce, include_self=True)
            emit("scatter_reduce", {"dim": dim, "reduce": reduce}, [x, index, src], out.numpy())

# ------------------------------------------------------------------ segments
for op, dt in [("segment_sum", np.float32), ("segment_sum", np.int32), ("segment_max", np.float64),
               ("segment_max", np.int32)]:
    for shape, nseg in [((9,), 4), ((7, 3), 5), ((6, 2), 2)]:
        data = rand(shape, dt)
        ids = rng.integers(-1, nseg + 1, size=shape[0]).astype(np.int32)
        keep = (ids >= 0) & (ids < nseg)
        if op == "segment_sum":
            ref = np.zeros((nseg,) + shape[1:], dt)
            np.add.at(ref, ids[keep], data[keep])
        else:
            low = -np.inf if dt == np.float64 else np.iinfo(dt).min
            ref = np.full((nseg,) + shape[1:], low, dt)
            np.maximum.at(ref, ids[keep], data[keep])
        emit(op, {"n": nseg}, [data, ids], ref)

# ------------------------------------------------------------ gather points
for dt in [np.float32, np.int32]:
    x = rand((4, 5, 3), dt)
    idx = np.stack([rng.integers(0, 4, 8), rng.integers(0, 5, 8)], axis=1).astype(np.int32)
    emit("gather_rows", {}, [x, idx], x[idx[:, 0], idx[:, 1]])  # x[i, j, :]

# ------------------------------------------------------------ dynamic slices
for shape, starts, sizes in [((5, 6), (1, 4), (3, 3)), ((5, 6), (-2, -9), (2, 2)), ((4,), (7,), (2,)),
                             ((3, 4, 5), (1, -1, 2), (2, 2, 5)), ((3, 4), (2, 1), (0, 3))]:
    x = rand(shape, np.float32)
    st = [min(max(s + n if s < 0 else s, 0), n - z) for s, n, z in zip(starts, shape, sizes)]
    ref = x[tuple(slice(s, s + z) for s, z in zip(st, sizes))]
    emit("dynamic_slice", {"starts": starts, "sizes": sizes}, [x], ref)
    u = rand(sizes, np.float32)
    ref = x.copy()
    ref[tuple(slice(s, s + z) for s, z in zip(st, sizes))] = u
    emit("dynamic_update_slice", {"starts": starts}, [x, u], ref)


# -------------------------------------------------------------------- pad
def pad_ref(x, v, lo, hi, interior):
    for d in range(x.ndim):
        n = x.shape[d]
        m = n + (n - 1) * interior[d] if n else 0
        shape = list(x.shape)
        shape[d] = m
        y = np.full(shape, v, x.dtype)
        idx = [slice(None)] * x.ndim
        idx[d] = slice(0, m, interior[d] + 1)
        y[tuple(idx)] = x
        pads = [(0, 0)] * x.ndim
        pads[d] = (max(lo[d], 0), max(hi[d], 0))
        y = np.pad(y, pads, constant_values=v)
        idx = [slice(None)] * x.ndim
        idx[d] = slice(max(-lo[d], 0), y.shape[d] - max(-hi[d], 0))
        x = y[tuple(idx)]
    return x


for shape, lo, hi, interior in [((3,), (1,), (2,), (1,)), ((3, 4), (-1, 2), (1, -2), (0, 1)),
                                ((2, 3), (0, -3), (0, 0), (2, 1)), ((0, 2), (1, 0), (1, 1), (3, 0))]:
    x = rand(shape, np.float32)
    v = np.float32(rng.standard_normal())
    emit("pad", {"lo": lo, "hi": hi, "interior": interior}, [x, np.array(v, np.float32)],
         pad_ref(x, v, lo, hi, interior))

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "index_golden.txt")
with open(out, "w") as f:
    f.write("# generated by tests/golden/gen_index_golden.py (NumPy %s, PyTorch %s); do not edit\n"
            % (np.__version__, torch.__version__))
    f.write("\n".join(lines) + "\n")
print("wrote", len(lines), "cases to", out)
