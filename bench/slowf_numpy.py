"""NumPy eager slow_f timed the way bench_eager times jx's (its slow_f
section): rounds of a 20 ms pause, one untimed call, then 5 timed calls,
each result dropped (freed) inside the timing. bench/run.sh alternates this
process with `bench_eager --only slowf` so that both sides see the same
state of the shared box, and runs it with glibc told to keep its 16 MB
blocks (GLIBC_TUNABLES, as the peers' run_all.sh does): NumPy at its best,
no page faults per call, like jx with its buffer cache. Without that, a
process that frees its temporaries back to the kernel pays ~600-1100
faults per call here (14-48 ms a call instead of ~5).
With `torch` as the second argument it times PyTorch eager instead (2
threads, torch.set_num_threads(2)), under the same protocol and glibc
setting: PyTorch at its best, no page faults per call.
usage: /usr/bin/python3 bench/slowf_numpy.py [rounds] [torch]"""
import resource
import statistics
import sys
import time

import numpy as np

rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 7
use_torch = len(sys.argv) > 2 and sys.argv[2] == "torch"
if use_torch:
    import torch

    torch.set_num_threads(2)
    x = torch.ones((2000, 2000), dtype=torch.float32)
else:
    x = np.ones((2000, 2000), dtype=np.float32)


def slow_f(x):
    return x * x * x + x * 2.0 * x + x


assert float(slow_f(x).min()) == 4.0
times, faults = [], 0
for r in range(rounds):
    time.sleep(0.02)
    for k in range(-1, 5):
        f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        t0 = time.perf_counter()
        y = slow_f(x)
        del y
        dt = time.perf_counter() - t0
        if k >= 0:
            times.append(dt * 1e3)
            faults += resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0
print(f"{'torch' if use_torch else 'numpy'} slow_f eager f32[2000,2000]  median {statistics.median(times):.3f} ms  "
      f"(min {min(times):.3f} max {max(times):.3f}, {len(times)} calls, "
      f"{faults / len(times):.0f} page faults per call)")
