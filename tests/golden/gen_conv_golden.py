#!/usr/bin/python3
"""Generate tests/golden/conv_golden.txt: PyTorch references for jx's
convolutions and pooling, values and gradients.

Run with Debian's interpreter (NumPy and PyTorch 1.13):

    /usr/bin/python3 tests/golden/gen_conv_golden.py   # rewrites conv_golden.txt

tests/test_conv.c reads the file. Everything is computed in float64 from a
fixed seed, so a rerun writes the same file.

Format: one case per line, '#' lines are comments:

    <kind> <params> <array>...

  params  key=value pairs joined by ';'; lists are comma separated.
  array   <shape>:<v>,<v>,...  (shape: dims joined by 'x', row-major values
          in repr form, which round-trips in float64)

Kinds and their arrays (ct is the output cotangent; the gradients are those
of sum(out * ct), by autograd):
  conv    jx_conv_general_dilated_ex(lhs, rhs, st, pad, ld, rd, dn, g, bg):
          lhs rhs ct out glhs grhs
  convT   jx_conv_transpose(lhs, rhs, st, NULL, pad, rd, dn, tk=1):
          lhs rhs ct out glhs grhs
  pool    fn=max_pool|avg_pool (jx_max_pool / jx_avg_pool: NHWC style,
          padding VALID or SAME) or fn=rw_max|rw_sum (jx_reduce_window over
          every dim with explicit pads and window dilation): x ct out gx
PyTorch works channels-first; where jx is given a channels-last layout the
arrays here are already in jx's layout.
"""
import os

import numpy as np
import torch
import torch.nn.functional as F

torch.manual_seed(0)
rng = np.random.default_rng(20261207)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "conv_golden.txt")
lines = []


def arr(a):
    a = np.asarray(a, dtype=np.float64)
    shape = "x".join(str(d) for d in a.shape) if a.ndim else "s"
    return shape + ":" + ",".join(repr(float(v)) for v in a.reshape(-1))


def ints(v):
    return ",".join(str(int(x)) for x in v)


def rand(*shape):
    return torch.tensor(rng.uniform(-1, 1, size=shape), dtype=torch.float64, requires_grad=True)


def grads(out, *ins):
    ct = torch.tensor(rng.uniform(-1, 1, size=tuple(out.shape)), dtype=torch.float64)
    gs = torch.autograd.grad((out * ct).sum(), ins, allow_unused=True) if out.numel() else [
        torch.zeros_like(i) for i in ins]
    gs = [torch.zeros_like(i) if g is None else g for i, g in zip(ins, gs)]
    return ct, gs


CONVS = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


def conv_case(comment, N, C, spatial, O, k, stride, pads, dil, groups, layout=None):
    """pads: (lo, hi) per spatial dim, applied with F.pad (any asymmetry)."""
    nsp = len(spatial)
    x = rand(N, C, *spatial)
    w = rand(O, C // groups, *k)
    fpad = []
    for lo, hi in reversed(pads):
        fpad += [lo, hi]
    y = CONVS[nsp](F.pad(x, fpad), w, stride=stride, dilation=dil, groups=groups)
    ct, (gx, gw) = grads(y, x, w)
    xs, ws, cts, ys, gxs, gws = x, w, ct, y, gx, gw
    dn = None
    if layout == "channels_last":  # NHWC, HWIO, NHWC
        lp = (0,) + tuple(range(2, nsp + 2)) + (1,)
        rp = tuple(range(2, nsp + 2)) + (1, 0)
        xs, gxs = x.permute(lp), gx.permute(lp)
        ws, gws = w.permute(rp), gw.permute(rp)
        ys, cts = y.permute(lp), ct.permute(lp)
        sp = "HWD"[:nsp]
        dn = "N%sC,%sIO,N%sC" % (sp, sp, sp)
    params = "st=%s;pad=%s;ld=%s;rd=%s;g=%d;bg=1" % (
        ints(stride), ints([v for p in pads for v in p]), ints([1] * nsp), ints(dil), groups)
    if dn:
        params += ";dn=" + dn
    lines.append("# " + comment)
    lines.append(" ".join(["conv", params] + [arr(t.detach().numpy()) for t in (xs, ws, cts, ys, gxs, gws)]))


def convT_case(comment, N, Cin, spatial, Cout, k, stride, padding, out_pad, dil):
    """torch conv_transpose2d; jx_conv_transpose with the forward conv's
    OIHW kernel flipped (transpose_kernel) and explicit pads."""
    x = rand(N, Cin, *spatial)
    w = rand(Cin, Cout, *k)
    y = F.conv_transpose2d(x, w, stride=stride, padding=padding, output_padding=out_pad, dilation=dil)
    ct, (gx, gw) = grads(y, x, w)
    pads = []
    for i in range(2):
        e = dil[i] * (k[i] - 1) - padding[i]
        pads += [e, e + out_pad[i]]
    params = "st=%s;pad=%s;rd=%s;dn=NCHW,OIHW,NCHW" % (ints(stride), ints(pads), ints(dil))
    lines.append("# " + comment)
    lines.append(" ".join(["convT", params] + [arr(t.detach().numpy()) for t in (x, w, ct, y, gx, gw)]))


def same_pads(n, k, s):
    out = -(-n // s)
    total = max((out - 1) * s + k - n, 0)
    return total // 2, total - total // 2


POOLS = {1: (F.max_pool1d, F.avg_pool1d), 2: (F.max_pool2d, F.avg_pool2d), 3: (F.max_pool3d, F.avg_pool3d)}


def pool_case(comment, fn, N, C, spatial, k, stride, padding, dil=None):
    """fn max_pool/avg_pool: padding 'VALID'/'SAME'; rw_max/rw_sum: padding
    is a list of symmetric pads per spatial dim, dil the window dilation."""
    nsp = len(spatial)
    x = rand(N, C, *spatial)
    mp, ap = POOLS[nsp]
    is_max = fn in ("max_pool", "rw_max")
    if fn in ("max_pool", "avg_pool"):
        pads = [same_pads(n, kk, s) for n, kk, s in zip(spatial, k, stride)] if padding == "SAME" else [(0, 0)] * nsp
        fpad = []
        for lo, hi in reversed(pads):
            fpad += [lo, hi]
        xp = F.pad(x, fpad, value=-np.inf if is_max else 0.0)
        y = mp(xp, k, stride) if is_max else ap(xp, k, stride)
        pstr = padding
    else:
        d = dil or [1] * nsp
        if is_max:
            y = mp(x, k, stride, padding=padding, dilation=d)
        else:
            y = ap(x, k, stride, padding=padding, count_include_pad=True) * float(np.prod(k))
        pstr = ints([v for p in padding for v in (p, p)])
    ct, (gx,) = grads(y, x)
    lp = (0,) + tuple(range(2, nsp + 2)) + (1,)  # jx pools channels-last
    params = "fn=%s;win=%s;st=%s;pad=%s" % (fn, ints(k), ints(stride), pstr)
    if dil:
        params += ";wd=" + ints(dil)
    lines.append("# " + comment)
    lines.append(" ".join(["pool", params] + [arr(t.detach().permute(lp).numpy()) for t in (x, ct, y, gx)]))


conv_case("conv2d 3x3, padding 1", 2, 3, (7, 6), 4, (3, 3), (1, 1), [(1, 1), (1, 1)], (1, 1), 1)
conv_case("conv2d stride 2, asymmetric padding, dilation 2", 2, 3, (8, 7), 4, (2, 3), (2, 2), [(0, 1), (1, 0)],
          (2, 2), 1)
conv_case("conv2d groups 2, stride (2, 1)", 2, 4, (6, 5), 6, (3, 3), (2, 1), [(1, 1), (1, 1)], (1, 1), 2)
conv_case("depthwise conv2d (groups = C = 3, multiplier 2)", 2, 3, (5, 5), 6, (3, 3), (1, 1), [(1, 1), (1, 1)],
          (1, 1), 3)
conv_case("conv1d stride 3, padding 2, dilation 2", 2, 2, (9,), 3, (4,), (3,), [(2, 2)], (2,), 1)
conv_case("conv3d", 1, 2, (4, 5, 4), 3, (2, 3, 2), (1, 2, 1), [(1, 1), (0, 0), (1, 1)], (1, 1, 1), 1)
conv_case("conv2d channels-last (NHWC, HWIO)", 2, 3, (7, 6), 4, (3, 3), (1, 1), [(1, 1), (1, 1)], (1, 1), 1,
          layout="channels_last")
conv_case("conv3d channels-last, groups 2", 1, 4, (3, 4, 5), 2, (2, 2, 3), (1, 1, 2), [(0, 1), (1, 0), (1, 1)],
          (1, 1, 1), 2, layout="channels_last")
conv_case("1x1 conv, stride 3 larger than the window", 2, 3, (7, 7), 2, (1, 1), (3, 3), [(0, 0), (0, 0)], (1, 1), 1)
conv_case("padding larger than the input", 1, 2, (2, 2), 3, (2, 2), (1, 1), [(3, 3), (3, 2)], (1, 1), 1)
conv_case("empty batch", 0, 2, (4, 4), 3, (3, 3), (1, 1), [(1, 1), (1, 1)], (1, 1), 1)
convT_case("conv_transpose2d stride 2, padding 1, output_padding 1", 2, 3, (4, 5), 2, (3, 3), (2, 2), (1, 1),
           (1, 1), (1, 1))
convT_case("conv_transpose2d stride 3, dilation 2", 1, 2, (3, 3), 3, (2, 2), (3, 3), (0, 0), (0, 0), (2, 2))
pool_case("max_pool 2x2 stride 2", "max_pool", 2, 3, (6, 7), (2, 2), (2, 2), "VALID")
pool_case("max_pool 3x3 stride 1 SAME", "max_pool", 2, 2, (5, 6), (3, 3), (1, 1), "SAME")
pool_case("max_pool 3x3 stride 2 SAME", "max_pool", 1, 2, (7, 6), (3, 3), (2, 2), "SAME")
pool_case("max_pool stride larger than the window", "max_pool", 2, 2, (8, 7), (2, 2), (3, 3), "VALID")
pool_case("max_pool1d", "max_pool", 2, 3, (9,), (3,), (2,), "VALID")
pool_case("max_pool3d", "max_pool", 1, 2, (4, 4, 5), (2, 2, 2), (2, 2, 1), "VALID")
pool_case("reduce_window max, padding 1, stride 2", "rw_max", 2, 2, (7, 6), (3, 3), (2, 2), [1, 1])
pool_case("reduce_window max, window dilation 2", "rw_max", 1, 2, (7, 7), (2, 3), (1, 2), [0, 1], dil=[2, 2])
pool_case("avg_pool 2x2 stride 2", "avg_pool", 2, 3, (6, 6), (2, 2), (2, 2), "VALID")
pool_case("avg_pool 3x3 stride 2 SAME (padding counts)", "avg_pool", 2, 2, (7, 6), (3, 3), (2, 2), "SAME")
pool_case("reduce_window sum, padding 1", "rw_sum", 2, 2, (5, 6), (3, 3), (2, 2), [1, 1])
# channels runs (the kernels' vector path: 4 or more channels)
pool_case("max_pool 3x3 stride 2 SAME, 5 channels", "max_pool", 2, 5, (7, 6), (3, 3), (2, 2), "SAME")
pool_case("max_pool 2x2, 300 channels (more than one run)", "max_pool", 1, 300, (4, 4), (2, 2), (2, 2), "VALID")
pool_case("avg_pool 2x2 stride 1 SAME, 6 channels", "avg_pool", 2, 6, (5, 5), (2, 2), (1, 1), "SAME")
pool_case("reduce_window max, window dilation, 4 channels", "rw_max", 1, 4, (7, 7), (2, 3), (1, 2), [0, 1], dil=[2, 2])

with open(OUT, "w") as f:
    f.write("# generated by tests/golden/gen_conv_golden.py (PyTorch %s); do not edit\n" % torch.__version__)
    f.write("\n".join(lines) + "\n")
print("wrote", OUT, len(lines) // 2, "cases")
