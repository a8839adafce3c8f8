"""BPNet speed on the CPU: seconds per training step and windows per second at inference, median of several runs.

Usage: .venv/bin/python benchmarks/bench_bpnet.py [--repeats 5] [--threads 2] [--length 300] [--batch 64]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow" / "scripts"))
from dnalm.losses import profile_count_loss  # noqa: E402
from dnalm.models import build_model  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--length", type=int, default=300)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = build_model("bpnet", 2, {"filters": 64, "layers": 8})
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.nn.functional.one_hot(torch.randint(0, 4, (args.batch, args.length)), 4).float().transpose(1, 2)
    y = torch.poisson(torch.full((args.batch, 2, args.length), 0.2))
    step_times, throughputs = [], []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        for _ in range(args.steps):
            logits, counts = model(x)
            loss, _, _ = profile_count_loss(logits, counts, y, 1.0)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        step_times.append((time.perf_counter() - t0) / args.steps)
        with torch.no_grad():
            model.eval()
            t0 = time.perf_counter()
            for _ in range(args.steps):
                model(x)
            throughputs.append(args.steps * args.batch / (time.perf_counter() - t0))
            model.train()
    print(f"BPNet 64 filters x 8 layers, batch {args.batch} x {args.length} bp, {args.threads} threads")
    print("train s/step:   " + " ".join(f"{t:.3f}" for t in step_times) + f"  median {statistics.median(step_times):.3f}")
    print("infer windows/s: " + " ".join(f"{t:.0f}" for t in throughputs) + f"  median {statistics.median(throughputs):.0f}")


if __name__ == "__main__":
    main()
