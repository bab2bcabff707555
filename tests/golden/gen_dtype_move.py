#!/usr/bin/python3
"""Golden data for tests/test_dtype_move.c (#19): the new dtypes through the
data-movement ops, from the libraries that have them: scatter combiners
with repeated indices (NumPy's ufunc.at in f16; PyTorch's index_add_ and
scatter_reduce_ in bf16, checked against a per-update loop of PyTorch's
own scalar arithmetic), and stable sort / argsort with NaN, +-Inf, -0.0
and ties (np.sort/argsort kind="stable" for f16, torch.sort(stable=True)
for bf16). Both libraries compute a bf16/f16 op in f32 and round once.

Run with /usr/bin/python3 (NumPy 1.24, PyTorch 1.13); writes
dtype_move_golden.txt, one case a line:
  kind dtype nx nidx nu nout  x... idx... u... out...
x, u, out as 16-bit patterns (argsort's out: indices), all decimal.
"""
import os

import numpy as np
import torch

rng = np.random.default_rng(19)
lines = []


def bits(a, dt):
    if dt == "f16":
        return [int(v) for v in np.asarray(a, np.float16).view(np.uint16)]
    t = torch.as_tensor(a).to(torch.bfloat16) if not torch.is_tensor(a) else a.to(torch.bfloat16)
    return [int(v) & 0xFFFF for v in t.view(torch.int16).tolist()]


def emit(kind, dt, x, idx, u, out):
    vals = [kind, dt, len(x), len(idx), len(u), len(out)] + list(x) + list(idx) + list(u) + list(out)
    lines.append(" ".join(str(v) for v in vals))


def values(n, nan=False):
    v = rng.normal(0, 3, n).astype(np.float32)
    v[rng.integers(0, n, n // 5)] = 0.5  # ties
    if nan:
        v[n // 3] = np.nan
    return v


def scatter_f16(kind, x, idx, u):
    a = x.astype(np.float16).copy()
    fn = {"add": np.add, "mul": np.multiply, "min": np.minimum, "max": np.maximum}[kind]
    fn.at(a, idx, u.astype(np.float16))
    return a


def scatter_bf16(kind, x, idx, u):
    a = torch.tensor(x).to(torch.bfloat16)
    ut = torch.tensor(u).to(torch.bfloat16)
    it = torch.tensor(idx, dtype=torch.int64)
    # the per-update loop: torch's bf16 scalar ops (f32, rounded once)
    loop = a.clone()
    for j, i in enumerate(idx):
        p, q = loop[i], ut[j]
        if kind == "add":
            r = p + q
        elif kind == "mul":
            r = p * q
        else:
            r = (torch.minimum if kind == "min" else torch.maximum)(p, q)
        loop[i] = r
    if kind == "add":
        lib = a.clone().index_add_(0, it, ut)
    else:
        red = {"mul": "prod", "min": "amin", "max": "amax"}[kind]
        lib = a.clone().scatter_reduce_(0, it, ut, red, include_self=True)
    # both libraries' routes must agree (NaN-aware): else this golden is not one
    lb, pb = bits(loop, "bf16"), bits(lib, "bf16")
    same = all(p == q or (np.isnan(float(loop[k])) and np.isnan(float(lib[k]))) for k, (p, q) in enumerate(zip(lb, pb)))
    assert same, (kind, lb, pb)
    return loop


for dt in ("bf16", "f16"):
    for kind in ("add", "mul", "min", "max"):
        for rep in range(2):
            n, m = 12, 30
            x = values(n)
            u = values(m, nan=(kind in ("min", "max") and rep == 1))
            if kind == "mul":
                x, u = x / 3, (u / 4 + 1).astype(np.float32)
            idx = rng.integers(0, n, m)
            # the inputs as the 16-bit type, so both sides start from them
            xb, ub = bits(x, dt), bits(u, dt)
            out = (scatter_f16 if dt == "f16" else scatter_bf16)(kind, x, idx, u)
            emit("scatter_" + kind, dt, xb, idx.tolist(), ub, bits(out, dt))

special = np.array([np.nan, -0.0, 0.0, np.inf, -np.inf, 0.0, -0.0, np.nan, 1.0, 1.0], np.float32)
for dt in ("bf16", "f16"):
    for rep in range(3):
        x = np.concatenate([values(30), special])
        rng.shuffle(x)
        if dt == "f16":
            h = x.astype(np.float16)
            srt, arg = np.sort(h, kind="stable"), np.argsort(h, kind="stable")
            emit("sort", dt, bits(h, dt), [], [], bits(srt, dt))
            emit("argsort", dt, bits(h, dt), [], [], arg.tolist())
        else:
            t = torch.tensor(x).to(torch.bfloat16)
            s = torch.sort(t, stable=True)
            emit("sort", dt, bits(t, dt), [], [], bits(s.values, dt))
            emit("argsort", dt, bits(t, dt), [], [], s.indices.tolist())

# cumulative ops: the running value in f32, each output rounded once.
# bf16: PyTorch's CPU kernels (float accumulator), checked against NumPy
# in f32; f16 (PyTorch has no CPU f16 scans): NumPy in f32, rounded.
# (NumPy's own f16 cumsum rounds at every step: not XLA:CPU's choice.)
def np_cum(kind, v):
    if kind == "cumsum":
        return np.cumsum(v, dtype=np.float32)
    if kind == "cumprod":
        return np.cumprod(v, dtype=np.float32)
    if kind == "cummax":
        return np.maximum.accumulate(v)
    return np.minimum.accumulate(v)


for dt in ("bf16", "f16"):
    for kind in ("cumsum", "cumprod", "cummax", "cummin", "logcumsumexp"):
        n = 40
        x = values(n, nan=kind in ("cummax", "cummin"))
        if kind == "cumprod":
            x = (1 + x / 40).astype(np.float32)
        if dt == "bf16":
            t = torch.tensor(x).to(torch.bfloat16)
            xf = t.float().numpy()
            if kind in ("cummax", "cummin"):
                out = getattr(torch, kind)(t, 0).values
            else:
                out = getattr(torch, kind)(t, 0)
            if kind != "logcumsumexp":  # the libraries agree: f32 running value
                ref = torch.tensor(np_cum(kind, xf)).to(torch.bfloat16)
                assert bits(ref, dt) == bits(out, dt), kind
            emit(kind, dt, bits(t, dt), [], [], bits(out, dt))
        elif kind != "logcumsumexp":
            h = x.astype(np.float16)
            out = np_cum(kind, h.astype(np.float32)).astype(np.float16)
            emit(kind, dt, bits(h, dt), [], [], bits(out, dt))

here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "dtype_move_golden.txt"), "w") as f:
    f.write("\n".join(lines) + "\n")
print(len(lines), "cases")
