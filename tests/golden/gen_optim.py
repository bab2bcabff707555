#!/usr/bin/python3
"""Golden trajectories for tests/test_optim.c, from PyTorch's optimizers
and LR schedulers (Debian's python3-torch; the test itself needs no Python),
and for tests/test_adafactor.c, from a NumPy reference of optax.adafactor
(at the end of this file; torch has no Adafactor in 1.13, optax is not
installed).

    /usr/bin/python3 tests/golden/gen_optim.py      # writes optim.npz and adafactor.npz
    /usr/bin/python3 tests/golden/gen_optim.py --adafactor-only

Parameters are a list of two (W, b) layers, f32, started from fixed random
values; each step's gradients are fixed random f32 arrays (the same ones
are fed to jx). Each case runs 100 steps of a torch optimizer (with a
torch LR scheduler stepped after each optimizer step, as optax evaluates
the schedule at the update count) in float32 and records the parameters
after every step. Lion has no torch.optim class: its case runs the
reference PyTorch implementation of the Lion paper (lion-pytorch's update).

Arrays in the file:
    init_<i>           leaf i of the initial params (W0, b0, W1, b1)
    grads_<i>          [100, *shape]: the gradients of leaf i, step by step
    <case>_<i>         [100, *shape]: leaf i after each step
    sched_<name>       [100] f64: the learning rate used at steps 0..99
"""
import math
import os
import sys
import warnings

import numpy as np
import torch

# SequentialLR steps its second scheduler with an epoch argument (the closed form): fine here
warnings.filterwarnings("ignore", message="The epoch parameter")

STEPS = 100
SHAPES = [(4, 3), (3,), (3, 2), (2,)]
rng = np.random.default_rng(20261207)
INIT = [rng.standard_normal(s).astype(np.float32) for s in SHAPES]
GRADS = [rng.standard_normal((STEPS,) + s).astype(np.float32) for s in SHAPES]


class Lion(torch.optim.Optimizer):
    """Lion (Chen et al. 2023), as lion-pytorch's update_fn writes it."""

    def __init__(self, params, lr, betas, weight_decay):
        super().__init__(params, dict(lr=lr, betas=betas, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            lr, wd, (b1, b2) = group["lr"], group["weight_decay"], group["betas"]
            for p in group["params"]:
                st = self.state[p]
                if not st:
                    st["exp_avg"] = torch.zeros_like(p)
                m = st["exp_avg"]
                p.data.mul_(1 - lr * wd)
                update = m.clone().mul_(b1).add(p.grad, alpha=1 - b1).sign_()
                p.add_(update, alpha=-lr)
                m.mul_(b2).add_(p.grad, alpha=1 - b2)


def seq_warmup_cosine(o):
    warm = torch.optim.lr_scheduler.LinearLR(o, start_factor=0.1, end_factor=1.0, total_iters=10)
    cos = torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=90, eta_min=1e-4)
    return torch.optim.lr_scheduler.SequentialLR(o, [warm, cos], milestones=[10])


sched = torch.optim.lr_scheduler
# name: (optimizer factory over the param list, scheduler factory or None, gradient scale)
CASES = {
    "sgd": (lambda ps: torch.optim.SGD(ps, lr=0.1), None, 1),
    "momentum": (lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9), None, 1),
    "nesterov": (lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True), None, 1),
    "adam": (lambda ps: torch.optim.Adam(ps, lr=0.01, betas=(0.9, 0.999), eps=1e-8), None, 1),
    # weight decay on the weights only (the biases masked off), as optax's mask
    "adamw_mask": (lambda ps: torch.optim.AdamW([{"params": [ps[0], ps[2]], "weight_decay": 0.1},
                                                 {"params": [ps[1], ps[3]], "weight_decay": 0.0}],
                                                lr=0.01, betas=(0.9, 0.999), eps=1e-8), None, 1),
    "rmsprop": (lambda ps: torch.optim.RMSprop(ps, lr=0.01, alpha=0.99, eps=1e-8), None, 1),
    "rmsprop_centered": (lambda ps: torch.optim.RMSprop(ps, lr=0.001, alpha=0.9, eps=1e-6, momentum=0.9,
                                                        centered=True), None, 1),
    "lion": (lambda ps: Lion(ps, lr=1e-3, betas=(0.9, 0.99), weight_decay=0.1), None, 1),
    # clip_grad_norm_ divides by norm + 1e-6: gradients scaled by 10 keep
    # that below f32's rounding (norm ~ 45)
    "clip_sgd": (lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9), None, 10),
    "adam_warmup_cosine": (lambda ps: torch.optim.Adam(ps, lr=0.01), seq_warmup_cosine, 1),
    "sgd_exponential": (lambda ps: torch.optim.SGD(ps, lr=0.1), lambda o: sched.ExponentialLR(o, 0.97), 1),
    "sgd_step": (lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9), lambda o: sched.StepLR(o, 10, 0.5), 1),
    "sgd_piecewise": (lambda ps: torch.optim.SGD(ps, lr=0.1),
                      lambda o: sched.MultiStepLR(o, milestones=[30, 60], gamma=0.1), 1),
    "sgd_linear": (lambda ps: torch.optim.SGD(ps, lr=0.1),
                   lambda o: sched.LinearLR(o, start_factor=1.0, end_factor=0.1, total_iters=50), 1),
    "sgd_cosine": (lambda ps: torch.optim.SGD(ps, lr=0.1),
                   lambda o: sched.CosineAnnealingLR(o, T_max=100, eta_min=0.001), 1),
}


def run(make_opt, make_sched, scale):
    ps = [torch.tensor(x, requires_grad=True) for x in INIT]
    opt = make_opt(ps)
    sch = make_sched(opt) if make_sched else None
    traj = [np.zeros((STEPS,) + s, np.float32) for s in SHAPES]
    lrs = np.zeros(STEPS)
    for t in range(STEPS):
        for p, g in zip(ps, GRADS):
            p.grad = torch.tensor(g[t]) * scale
        if scale != 1:  # the clip case: optax.clip_by_global_norm(1.0)
            torch.nn.utils.clip_grad_norm_(ps, 1.0)
        lrs[t] = opt.param_groups[0]["lr"]
        opt.step()
        if sch:
            sch.step()
        for i, p in enumerate(ps):
            traj[i][t] = p.detach().numpy()
    return traj, lrs


# optax's closed forms, to check that each torch scheduler is the schedule
# the C test builds (and for what torch has no scheduler for)
def linear(t, a, b, T, begin=0):
    return a + (b - a) * min(max(t - begin, 0), T) / T


def cosine(t, init, T, alpha):
    c = min(t, T)
    return init * ((1 - alpha) * 0.5 * (1 + math.cos(math.pi * c / T)) + alpha)


def exponential(t, init, T, rate, begin=0, staircase=False, end=0.0):
    p = max(t - begin, 0) / T
    v = init * rate ** (math.floor(p) if staircase else p)
    return max(v, end) if end else v


CLOSED = {
    "adam_warmup_cosine": lambda t: linear(t, 0.001, 0.01, 10) if t < 10 else cosine(t - 10, 0.01, 90, 0.01),
    "sgd_exponential": lambda t: exponential(t, 0.1, 1, 0.97),
    "sgd_step": lambda t: exponential(t, 0.1, 10, 0.5, staircase=True),
    "sgd_piecewise": lambda t: 0.1 * (0.1 if t >= 30 else 1) * (0.1 if t >= 60 else 1),
    "sgd_linear": lambda t: linear(t, 0.1, 0.01, 50),
    "sgd_cosine": lambda t: cosine(t, 0.1, 100, 0.01),
}
# schedules torch has no scheduler for: optax's formulas only
EXTRA = {
    "linear_begin": lambda t: linear(t, 0.2, 0.02, 40, begin=10),
    "cosine_clamped": lambda t: cosine(t, 0.1, 50, 0.0),
    "exponential_begin_end": lambda t: exponential(t, 0.1, 5, 0.5, begin=20, end=0.01),
}


def torch_cases():
    out = {}
    for i, x in enumerate(INIT):
        out[f"init_{i}"] = x
    for i, g in enumerate(GRADS):
        out[f"grads_{i}"] = g
    for name, (make_opt, make_sched, scale) in CASES.items():
        traj, lrs = run(make_opt, make_sched, scale)
        for i, x in enumerate(traj):
            out[f"{name}_{i}"] = x
        if name in CLOSED:
            want = np.array([CLOSED[name](t) for t in range(STEPS)])
            assert np.allclose(lrs, want, rtol=1e-12, atol=0), (name, np.abs(lrs - want).max())
            out[f"sched_{name}"] = lrs
    for name, f in EXTRA.items():
        out[f"sched_{name}"] = np.array([f(t) for t in range(STEPS)])

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "optim.npz")
    np.savez(path, **out)
    print(f"wrote {path}: {len(out)} arrays")


# ----------------------------------------------------------------- adafactor
# Parameters and gradients come from an integer hash both this script and
# tests/test_adafactor.c compute exactly (f64 arithmetic on small integers,
# rounded once to f32), so the large factored leaf needs no stored inputs.
# Stored per case and leaf: the leaf after every step at up to 64 sampled
# positions (<case>_<i>, [100, n]; <case>_<i>_idx their flat indices) and
# the whole leaf after the last step (<case>_<i>_final).
AF_TREES = {"A": [(256, 130), (4, 3), (3,), ()], "B": [(5, 3, 6), (4, 3), (3,), ()]}


def af_values(shape, leaf, salt, t):
    """The hash: leaf `leaf` of the tree at step t, as f32."""
    k = np.arange(int(np.prod(shape, dtype=np.int64)), dtype=np.int64)
    h = (k * 40503 + t * 2654435 + leaf * 9176 + salt * 7919 + 12345) % 65521
    h = (h * h + 3 * h + 17) % 65521
    x = h.astype(np.float64) / 65521.0 - 0.5
    x = x * (1 + k % 5).astype(np.float64) * (1 + (k // 13) % 3).astype(np.float64)
    return x.astype(np.float32).reshape(shape)


def af_init(tree):  # salt 1, scaled by 2 (exact)
    return [af_values(s, i, 1, 0) * np.float32(2) for i, s in enumerate(AF_TREES[tree])]


def af_grads(tree, t):  # salt 2
    return [af_values(s, i, 2, t) for i, s in enumerate(AF_TREES[tree])]


def factored_dims(shape, factored, min_dim):
    """optax's _factored_dims: (d1, d0), the second largest and largest axes"""
    if not factored or len(shape) < 2:
        return None
    order = np.argsort(shape, kind="stable")
    if shape[order[-2]] < min_dim:
        return None
    return int(order[-2]), int(order[-1])


def rms(x):
    return np.sqrt(np.mean(x * x, dtype=np.float32))


def adafactor_run(tree, lr, factored=True, decay_rate=0.8, decay_offset=0, min_dim=128, eps=1e-30,
                  param_scale=True, clip=1.0, momentum=None, wd=None, mask=None):
    """optax.adafactor (factorized.scale_by_factored_rms, clip_by_block_rms,
    scale_by_learning_rate(flip_sign=False), scale_by_param_block_rms, ema,
    add_decayed_weights, scale(-1)) in float32, one leaf at a time. The one
    departure: optax's decay_rate_t is NaN before step decay_offset of a
    fresh state; here t is held at 0 there (see src/optim/adafactor.c)."""
    f32 = np.float32
    ps = af_init(tree)
    stats = []
    for p in ps:
        fd = factored_dims(p.shape, factored, min_dim)
        if fd:
            d1, d0 = fd
            stats.append([np.zeros(np.delete(p.shape, d0), f32), np.zeros(np.delete(p.shape, d1), f32), None])
        else:
            stats.append([None, None, np.zeros(p.shape, f32)])
    ema = [np.zeros(p.shape, f32) for p in ps]
    traj = []
    for t in range(STEPS):
        step = f32(max(t - decay_offset, 0)) + f32(1)
        decay_t = f32(1) - step ** f32(-decay_rate)
        new = []
        for i, (p, g) in enumerate(zip(ps, af_grads(tree, t))):
            st, gs = stats[i], g * g + f32(eps)
            fd = factored_dims(p.shape, factored, min_dim)
            if fd:
                d1, d0 = fd
                st[0] = decay_t * st[0] + (f32(1) - decay_t) * np.mean(gs, axis=d0, dtype=f32)
                st[1] = decay_t * st[1] + (f32(1) - decay_t) * np.mean(gs, axis=d1, dtype=f32)
                r1 = d1 - 1 if d1 > d0 else d1
                row = (st[0] / np.mean(st[0], axis=r1, keepdims=True, dtype=f32)) ** f32(-0.5)
                u = g * np.expand_dims(row, d0) * np.expand_dims(st[1] ** f32(-0.5), d1)
            else:
                st[2] = decay_t * st[2] + (f32(1) - decay_t) * gs
                u = g * st[2] ** f32(-0.5)
            if clip is not None:
                u = u / np.maximum(f32(1), rms(u) / f32(clip))
            u = f32(lr(t)) * u
            if param_scale:
                u = u * np.maximum(rms(p), f32(1e-3))
            if momentum is not None:
                ema[i] = f32(momentum) * ema[i] + f32(1 - momentum) * u
                u = ema[i]
            if wd is not None and (mask is None or mask[i]):
                u = u + f32(wd) * p
            new.append((p + -u).astype(f32))
        ps = new
        traj.append([p.copy() for p in ps])
    return traj


AF_CASES = {
    # optax's defaults: only the 256x130 leaf is factored
    "adafactor": ("A", dict(lr=lambda t: 0.01)),
    # every part: factoring of a 3-d leaf (axes 2 and 0) and of the 4x3
    # matrix, a schedule, momentum, masked weight decay, a tighter clip
    "adafactor_full": ("B", dict(lr=lambda t: cosine(t, 0.05, 100, 0.1), min_dim=3, decay_rate=0.7, clip=0.5,
                                 momentum=0.9, wd=0.01, mask=[True, True, False, False])),
    # unfactored, absolute steps, no clipping, a decay offset, a large eps
    "adafactor_plain": ("B", dict(lr=lambda t: 0.01, factored=False, param_scale=False, clip=None,
                                  decay_offset=5, eps=1e-3)),
}


def adafactor_cases():
    out = {}
    for name, (tree, kw) in AF_CASES.items():
        traj = adafactor_run(tree, **kw)
        for i, shape in enumerate(AF_TREES[tree]):
            size = int(np.prod(shape, dtype=np.int64))
            idx = np.arange(size) if size <= 64 else np.unique(np.linspace(0, size - 1, 64).astype(np.int64))
            out[f"{name}_{i}"] = np.stack([traj[t][i].reshape(-1)[idx] for t in range(STEPS)])
            out[f"{name}_{i}_idx"] = idx.astype(np.int64)
            out[f"{name}_{i}_final"] = traj[-1][i]
            assert np.all(np.isfinite(out[f"{name}_{i}"]))
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "adafactor.npz")
    np.savez(path, **out)
    print(f"wrote {path}: {len(out)} arrays")


if "--adafactor-only" not in sys.argv:
    torch_cases()
adafactor_cases()
