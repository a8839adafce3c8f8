"""OpenMP's wait policy when two torch processes share the cores: why the test suite sets OMP_WAIT_POLICY=PASSIVE.

Runs a small convolutional training loop (6 × Conv1d 64 → 64, batch 16 × 1,000, Adam, 30 steps, 2 threads) alone and
as two processes at once, with OpenMP's default wait policy (threads spin while waiting) and with PASSIVE (they
sleep); prints each process's seconds, the median of `--repeats`. Two pytest workers on two cores are the pair case.

Usage: .venv/bin/python benchmarks/bench_omp_wait.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys

LOOP = """
import time, torch
torch.set_num_threads(2)
torch.manual_seed(0)
m = torch.nn.Sequential(*[torch.nn.Conv1d(64, 64, 3, padding=1) for _ in range(6)])
x = torch.randn(16, 64, 1000)
opt = torch.optim.Adam(m.parameters())
t = time.perf_counter()
for _ in range(30):
    loss = m(x).pow(2).mean(); opt.zero_grad(); loss.backward(); opt.step()
print(time.perf_counter() - t)
"""


def run(n: int, policy: str | None) -> list[float]:
    """Seconds of each of n processes started together."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if policy:
        env["OMP_WAIT_POLICY"] = policy
    procs = [subprocess.Popen([sys.executable, "-c", LOOP], stdout=subprocess.PIPE, text=True, env=env)
             for _ in range(n)]
    return [float(p.communicate()[0]) for p in procs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    for policy in (None, "PASSIVE"):
        for n in (1, 2):
            times = [t for _ in range(args.repeats) for t in run(n, policy)]
            print(f"{policy or 'default (spin)'}, {n} process{'es' if n > 1 else ''} at once: "
                  f"median {statistics.median(times):.2f} s per process (min {min(times):.2f}, max {max(times):.2f})")


if __name__ == "__main__":
    main()
