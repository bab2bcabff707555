"""PyTorch eager peer for bench_export.c (issue #20, "vs PyTorch eager at
batch 1: report"): the letters model's predict, 1296 -> 512 tanh -> 512
tanh -> 26 logits, f32, one thread, under torch.no_grad(), timed per call
as bench_export times the exported entry point (median of reps calls after
warm-up). usage: /usr/bin/python3 bench/export_torch.py [reps]"""
import sys
import time

import torch

reps = int(sys.argv[1]) if len(sys.argv) > 1 else 41
torch.set_num_threads(1)
D, H, C = 1296, 512, 26
g = torch.Generator().manual_seed(0)
layers = [(torch.randn(D, H, generator=g) * 0.03, torch.randn(H, generator=g) * 0.1),
          (torch.randn(H, H, generator=g) * 0.04, torch.randn(H, generator=g) * 0.1),
          (torch.randn(H, C, generator=g) * 0.04, torch.randn(C, generator=g) * 0.1)]


def predict(x):
    for i, (w, b) in enumerate(layers):
        x = x @ w + b
        if i + 1 < len(layers):
            x = torch.tanh(x)
    return x


with torch.no_grad():
    for batch in (1, 128):
        x = torch.randn(batch, D, generator=g)
        for _ in range(5):
            predict(x)
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            predict(x)
            times.append((time.perf_counter() - t0) * 1e3)
        times.sort()
        print(f"letters_predict_b{batch:<4d} torch eager (1 thread)   median {times[len(times) // 2]:8.3f} ms "
              f"(min {times[0]:.3f})")
