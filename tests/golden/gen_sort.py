#!/usr/bin/python3
"""Generate tests/golden/sort_golden.txt: NumPy / PyTorch reference results
for jx's sorting, cumulative and contraction ops (tests/test_sort.c).

Run with Debian's interpreter (NumPy 1.24, PyTorch 1.13):

    /usr/bin/python3 tests/golden/gen_sort.py

The data is determined by the fixed seed, so rerunning gives the same file.

One case per line, whitespace separated:

    <op> <param> <nin> <array>... <nout> <array>...
    array := <dtype> <ndim> <dim>... <value>...

  op     sort argsort sort_multi top_k searchsorted cumsum cumprod cummax
         cummin cumlogsumexp einsum tensordot
  param  sort/argsort: axis; sort_multi: axis,num_keys; top_k: k;
         searchsorted: left|right; cum*: axis,reverse (0/1);
         einsum: the spec; tensordot: naxes
  dtype  bool i32 i64 u32 f32 f64; values row-major, floats as repr (nan,
         inf, -inf, -0.0 kept).

References: np.sort/argsort(kind='stable') (NaN last, -0.0 equal to 0.0:
JAX's order), np.lexsort for several keys, torch.topk for top_k,
np.searchsorted, np.cumsum/cumprod (integers wrap in their own dtype),
np.maximum/minimum.accumulate (NaN propagates), np.logaddexp.accumulate,
np.einsum, np.tensordot.
"""
import os

import numpy as np
import torch

rng = np.random.default_rng(20261207)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sort_golden.txt")
NAMES = {np.bool_: "bool", np.int32: "i32", np.int64: "i64", np.uint32: "u32", np.float32: "f32",
         np.float64: "f64"}


def fmt(a):
    a = np.asarray(a)
    name = NAMES[a.dtype.type]
    if name == "bool":
        vals = [str(int(v)) for v in a.ravel()]
    elif name in ("f32", "f64"):
        vals = [repr(float(v)) for v in a.ravel()]
    else:
        vals = [str(int(v)) for v in a.ravel()]
    return " ".join([name, str(a.ndim)] + [str(d) for d in a.shape] + vals)


lines = []


def case(op, param, ins, outs):
    lines.append(" ".join([op, str(param), str(len(ins))] + [fmt(a) for a in ins] + [str(len(outs))] +
                          [fmt(a) for a in outs]))


def randf(shape, dt=np.float64):
    return rng.standard_normal(shape).astype(dt)


def randi(shape, lo, hi, dt=np.int32):
    return rng.integers(lo, hi, shape).astype(dt)


# ------------------------------------------------------------- sort
def sort_cases():
    special = np.array([0.0, np.nan, -0.0, -1.0, np.inf, -np.inf, 0.0, np.nan, 2.5, -0.0], np.float64)
    xs = [randf((5, 7)), randf((4, 3, 6), np.float32), randi((6, 40), -5, 5), randi((3, 50), 0, 9, np.uint32),
          randi((8, 3), -3, 3, np.int64), rng.random((4, 5)) > 0.5, special, special.astype(np.float32),
          randf((0, 4)), randf((3, 0)), randi((2, 300), -1000, 1000)]
    for x in xs:
        for axis in range(-x.ndim, x.ndim):
            case("sort", axis, [x], [np.sort(x, axis=axis, kind="stable")])
            case("argsort", axis, [x], [np.argsort(x, axis=axis, kind="stable").astype(np.int32)])


def lex(keys, vals, axis, num_keys):
    ops = [np.moveaxis(o, axis, -1) for o in keys]
    order = np.lexsort(tuple(ops[:num_keys][::-1]), axis=-1)
    return [np.moveaxis(np.take_along_axis(o, order, -1), -1, axis) for o in ops]


def sort_multi_cases():
    k0, k1, v = randi((4, 9), 0, 3), randf((4, 9)), randf((4, 9), np.float32)
    for axis in (1, -1, 0):
        case("sort_multi", f"{axis},1", [k0, k1, v], lex([k0, k1, v], None, axis, 1))
        case("sort_multi", f"{axis},2", [k0, k1, v], lex([k0, k1, v], None, axis, 2))
    a, b = randi((30,), 0, 4, np.int64), randi((30,), 0, 4, np.uint32)
    case("sort_multi", "0,2", [a, b], lex([a, b], None, 0, 2))


def top_k_cases():
    for shape, k, dt in [((10,), 3, np.float64), ((4, 12), 5, np.float32), ((2, 3, 8), 8, np.float64),
                         ((5, 6), 0, np.float64), ((3, 20), 1, np.float32)]:
        x = randf(shape, dt)
        v, i = torch.topk(torch.from_numpy(x), k, dim=-1, largest=True, sorted=True)
        case("top_k", k, [x], [v.numpy(), i.numpy().astype(np.int32)])
    x = np.array([[1.0, np.nan, 3.0, -np.inf, 2.0]])  # torch: NaN is the largest
    v, i = torch.topk(torch.from_numpy(x), 3, dim=-1)
    case("top_k", 3, [x], [v.numpy(), i.numpy().astype(np.int32)])
    x = rng.permutation(25).astype(np.int32).reshape(5, 5)
    v, i = torch.topk(torch.from_numpy(x), 2, dim=-1)
    case("top_k", 2, [x], [v.numpy(), i.numpy().astype(np.int32)])


def searchsorted_cases():
    a = np.sort(randi((20,), -10, 10))
    v = randi((3, 7), -12, 12)
    af = np.sort(np.concatenate([randf((15,)), [np.nan, np.inf]]))
    vf = np.concatenate([randf((9,)), [np.nan, np.inf, -np.inf]])
    for side in ("left", "right"):
        case("searchsorted", side, [a, v], [np.searchsorted(a, v, side=side).astype(np.int32)])
        case("searchsorted", side, [af, vf], [np.searchsorted(af, vf, side=side).astype(np.int32)])
        case("searchsorted", side, [a[:0], v], [np.searchsorted(a[:0], v, side=side).astype(np.int32)])


# ------------------------------------------------------- cumulative
def cum(fn, x, axis, rev):
    if rev:
        return np.flip(fn(np.flip(x, axis), axis), axis)
    return fn(x, axis)


CUMS = {
    "cumsum": lambda x, ax: np.cumsum(x, axis=ax, dtype=x.dtype),
    "cumprod": lambda x, ax: np.cumprod(x, axis=ax, dtype=x.dtype),
    "cummax": lambda x, ax: np.maximum.accumulate(x, axis=ax),
    "cummin": lambda x, ax: np.minimum.accumulate(x, axis=ax),
    "cumlogsumexp": lambda x, ax: np.logaddexp.accumulate(x, axis=ax),
}


def cumulative_cases():
    with np.errstate(over="ignore", invalid="ignore"):
        wrap = np.array([2**31 - 1, 1, 5, -2**31, -1, 7], np.int32)
        xs = {
            "f64": randf((4, 6)), "f32": randf((3, 5, 4), np.float32), "i32": randi((5, 6), -9, 9),
            "i64": randi((3, 7), -9, 9, np.int64), "u32": randi((4, 5), 0, 9, np.uint32),
            "wrap": wrap, "wrapu": np.array([4294967295, 3, 2], np.uint32),
            "nan": np.array([[1.0, np.nan, 3.0, -1.0], [2.0, -np.inf, np.inf, 0.5]]),
            "empty": randf((0, 3)), "empty1": randf((3, 0)),
        }
        for op, fn in CUMS.items():
            for name, x in xs.items():
                if op == "cumlogsumexp" and x.dtype.kind != "f":
                    continue
                if op == "cumprod" and x.dtype.kind == "f" and name != "nan":
                    x = x * 0.5 + 1.0  # keep products in range
                for axis in range(-x.ndim, x.ndim):
                    for rev in (0, 1):
                        case(op, f"{axis},{rev}", [x], [cum(fn, x, axis, rev)])
        b = rng.random((3, 5)) > 0.5
        case("cumsum", "1,0", [b], [np.cumsum(b, axis=1, dtype=np.int32)])
        case("cummax", "1,0", [b], [np.maximum.accumulate(b, axis=1)])


# ---------------------------------------------------------- einsum
EINSUMS = [
    ("bij,bjk->bik", [(3, 4, 5), (3, 5, 2)]),
    ("ij,jk->ik", [(4, 5), (5, 3)]),
    ("ij,jk", [(4, 5), (5, 3)]),
    ("ij,kj->ik", [(4, 5), (3, 5)]),
    ("ji", [(3, 4)]),
    ("ij->", [(3, 4)]),
    ("ij->j", [(3, 4)]),
    ("ii->i", [(4, 4)]),
    ("ii", [(4, 4)]),
    ("iij->ij", [(3, 3, 2)]),
    ("iji->j", [(3, 2, 3)]),
    ("i,i->", [(5,), (5,)]),
    ("i,j->ij", [(3,), (4,)]),
    ("i,j", [(3,), (4,)]),
    ("ij,ij->ij", [(3, 4), (3, 4)]),
    ("...ij,...jk->...ik", [(2, 3, 4, 5), (2, 3, 5, 2)]),
    ("...ij,...jk", [(5, 2, 3), (1, 3, 4)]),
    ("...ij,jk->...ik", [(2, 4, 3), (3, 2)]),
    ("i...->...", [(3, 2, 4)]),
    ("...i,...i->...", [(2, 3, 4), (3, 4)]),
    ("ab,bc,cd->ad", [(3, 20), (20, 2), (2, 10)]),
    ("ab,bc,cd,de->ae", [(2, 3), (3, 4), (4, 5), (5, 2)]),
    ("abc,cd,bd->a", [(2, 3, 4), (4, 5), (3, 5)]),
    ("bhqd,bhkd->bhqk", [(2, 3, 4, 5), (2, 3, 6, 5)]),
    ("bhqk,bhkd->bqhd", [(2, 3, 4, 6), (2, 3, 6, 5)]),
    ("ij,jk,kl->li", [(2, 3), (3, 4), (4, 5)]),
    ("iij,jk->ik", [(3, 3, 4), (4, 2)]),
    ("ijk,ikl->", [(2, 3, 4), (2, 4, 5)]),
    ("Ba,aB", [(2, 3), (3, 2)]),
    ("bA", [(2, 3)]),
    ("i,i,i->i", [(4,), (4,), (4,)]),
    ("ab,ab,b->a", [(3, 4), (3, 4), (4,)]),
    ("ij,jk->ik", [(0, 3), (3, 4)]),
    ("ij,jk->ik", [(2, 0), (0, 4)]),
    ("", [()]),
    (",->", [(), ()]),
    ("i,->i", [(3,), ()]),
    (" ij , jk -> ik ".replace(" ", ""), [(2, 3), (3, 2)]),
]


def einsum_cases():
    for spec, shapes in EINSUMS:
        ops = [randf(s) for s in shapes]
        case("einsum", spec if spec else "''", ops, [np.asarray(np.einsum(spec, *ops))])
    ops = [randi((3, 4), -5, 5), randi((4, 2), -5, 5)]
    case("einsum", "ij,jk->ik", ops, [np.einsum("ij,jk->ik", *ops)])
    ops = [randf((3, 4), np.float32), randf((4,), np.float32)]
    case("einsum", "ij,j->i", ops, [np.einsum("ij,j->i", *ops)])
    for shapes, n in [(((3, 4, 5), (4, 5, 2)), 2), (((3, 4), (4, 2)), 1), (((2, 3), (4, 5)), 0)]:
        a, b = randf(shapes[0]), randf(shapes[1])
        case("tensordot", n, [a, b], [np.tensordot(a, b, axes=n)])


sort_cases()
sort_multi_cases()
top_k_cases()
searchsorted_cases()
cumulative_cases()
einsum_cases()
with open(OUT, "w") as f:
    f.write("# generated by tests/golden/gen_sort.py; do not edit\n")
    f.write("\n".join(lines) + "\n")
print(f"{len(lines)} cases -> {OUT}")
