"""PyTorch eager peer for bench_scan.c: the same RNN with an explicit Python
loop, forward + backward. usage: /usr/bin/python3 bench/rnn_torch.py [reps] [threads]"""
import sys
import time

import torch

reps = int(sys.argv[1]) if len(sys.argv) > 1 else 15
threads = int(sys.argv[2]) if len(sys.argv) > 2 else 2
torch.set_num_threads(threads)
H, I, B, T = 256, 256, 32, 100
g = torch.Generator().manual_seed(0)
W = ((torch.rand(H, H, generator=g) * 2 - 1) * 0.06).requires_grad_()
U = ((torch.rand(I, H, generator=g) * 2 - 1) * 0.06).requires_grad_()
b = ((torch.rand(H, generator=g) * 2 - 1) * 0.1).requires_grad_()
h0 = (torch.rand(B, H, generator=g) * 2 - 1) * 0.5
xs = torch.rand(T, B, I, generator=g) * 2 - 1


def step():
    h = h0
    ys = 0.0
    for t in range(T):
        h = torch.tanh(h @ W + xs[t] @ U + b)
        ys = ys + h.mean()
    loss = (h * h).sum() + ys
    W.grad = U.grad = b.grad = None
    loss.backward()
    return loss


step()
times = []
for _ in range(reps):
    t0 = time.perf_counter()
    step()
    times.append((time.perf_counter() - t0) * 1e3)
times.sort()
print(f"torch eager RNN fwd+bwd 100 steps ({threads} threads)   median {times[len(times)//2]:8.3f} ms (min {times[0]:.3f})")
