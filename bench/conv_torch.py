#!/usr/bin/python3
"""PyTorch 1.13 eager side of bench/bench_conv.c (run both: bash bench/conv.sh).

cnn: one training step (forward, backward, Adam) of examples/cnn.c's net,
batch 128 (NCHW, PyTorch's native layout); layer: a 3x3 conv, N=32, 56x56,
64 -> 64, padding 1: forward, input gradient, weight gradient (each with
its forward, as autograd.grad runs it). Prints "name median_ms" lines;
CNN_ONLY=1 stops after the CNN row."""
import os
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

reps = int(sys.argv[1]) if len(sys.argv) > 1 else 9
torch.manual_seed(0)


def median_ms(fn):
    ts = []
    for r in range(reps + 2):
        t0 = time.perf_counter()
        fn()
        if r >= 2:
            ts.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(ts)


net = nn.Sequential(nn.Conv2d(1, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(16, 32, 5, padding=2),
                    nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(1568, 128), nn.ReLU(), nn.Linear(128, 10))
opt = torch.optim.Adam(net.parameters(), lr=1e-3)
x = torch.randn(128, 1, 28, 28)
y = torch.randint(0, 10, (128,))


def step():
    opt.zero_grad()
    loss = F.cross_entropy(net(x), y)
    loss.backward()
    opt.step()
    return loss.item()


print("cnn_step_b128 %.3f" % median_ms(step), flush=True)
if os.environ.get("CNN_ONLY"):  # the CNN row alone (profiling)
    sys.exit(0)
xl = torch.randn(32, 64, 56, 56, requires_grad=True)
wl = (0.05 * torch.randn(64, 64, 3, 3)).requires_grad_()
ct = torch.randn(32, 64, 56, 56)
with torch.no_grad():
    print("conv3x3_fwd %.3f" % median_ms(lambda: F.conv2d(xl, wl, padding=1)), flush=True)
print("conv3x3_grad_input %.3f" % median_ms(lambda: torch.autograd.grad(F.conv2d(xl, wl, padding=1), xl, ct)))
print("conv3x3_grad_weight %.3f" % median_ms(lambda: torch.autograd.grad(F.conv2d(xl, wl, padding=1), wl, ct)))
