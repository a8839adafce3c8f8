"""DeepLIFT/SHAP speed on the CPU: dnalm.attribution against tangermeme's deep_lift_shap and captum's DeepLiftShap.

The same BPNet (64 filters x 8 layers, random weights), the same random one-hot windows and 10 dinucleotide-shuffled
references per window (`dnalm.attribution.make_references`, drawn inside each method's timed call), count head
(log counts summed over the two strands); tangermeme at batch 32, its fastest here (FACTS.md). Prints attributions (windows) per second of every run, the medians, and ours divided by each.
Also checks that the three agree (per-position sums of the attributions, same references).

Usage: .venv/bin/python benchmarks/bench_attribution.py [--n 512] [--lengths 1000 300] [--repeats 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow" / "scripts"))
from dnalm.attribution import attribute, make_references
from dnalm.models import bpnet


class CountOutput(torch.nn.Module):
    """(B, 1) log counts summed over strands: the (batch, targets) output tangermeme and captum attribute."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x)[1].sum(-1, keepdim=True)


class SummedCounts(torch.nn.Module):
    """BPNet with one count channel, the log counts summed over strands: dnalm's `count` output of it is that sum
    (a single channel has softmax weight 1), the scalar tangermeme and captum attribute through `CountOutput`."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x):
        logits, counts = self.model(x)
        return logits, counts.sum(-1, keepdim=True)


def ours(model, x, n_refs, batch):
    return attribute(SummedCounts(model), x.numpy(), n_shuffles=n_refs, seed=0, batch_size=batch, device="cpu")[0]


def tangermeme(model, x, n_refs, batch):
    from tangermeme.deep_lift_shap import deep_lift_shap

    refs = make_references(x, n_refs, 0)
    return deep_lift_shap(CountOutput(model), x, references=refs, batch_size=batch, device="cpu").numpy()


def captum(model, x, n_refs, batch):
    from captum.attr import DeepLiftShap

    explainer = DeepLiftShap(CountOutput(model))
    refs = make_references(x, n_refs, 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.cat([explainer.attribute(x[i : i + 1], baselines=refs[i], target=0).detach()
                          for i in range(len(x))]).numpy()


METHODS = {"dnalm": ours, "tangermeme": tangermeme, "captum": captum}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=512, help="windows")
    parser.add_argument("--lengths", type=int, nargs="+", default=[1000, 300])
    parser.add_argument("--refs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=32, help="window-reference pairs per pass (ours and tangermeme)")
    parser.add_argument("--our-batch", type=int, default=None, help="pairs per pass for dnalm (default --batch)")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = bpnet(2, filters=64, layers=8).eval()
    print(f"BPNet 64 filters x 8 layers, count head, {args.refs} references, {args.threads} threads, batch "
          f"{args.batch} (dnalm {args.our_batch or args.batch}), "
          f"load average {os.getloadavg()[0]:.1f}")
    for length in args.lengths:
        x = torch.nn.functional.one_hot(torch.randint(0, 4, (args.n, length)), 4).float().transpose(1, 2).contiguous()
        ours(model, x[:2], args.refs, args.batch)  # warm up (numba compiles the shuffle)
        rates, cpu, results = {m: [] for m in args.methods}, {m: [] for m in args.methods}, {}
        for _ in range(args.repeats):
            for name in args.methods:
                t0, c0 = time.perf_counter(), time.process_time()
                batch = args.our_batch if name == "dnalm" and args.our_batch else args.batch
                results[name] = METHODS[name](model, x, args.refs, batch)
                rates[name].append(args.n / (time.perf_counter() - t0))
                cpu[name].append(time.process_time() - c0)
        print(f"{args.n} x {length} bp (load average now {os.getloadavg()[0]:.1f}):")
        for name, values in rates.items():
            print(f"  {name:11s} windows/s: " + " ".join(f"{v:.2f}" for v in values)
                  + f"  median {statistics.median(values):.2f}  ({args.n / statistics.median(values):.1f} s); "
                  f"CPU s: " + " ".join(f"{v:.1f}" for v in cpu[name]))
        first = args.methods[0]
        for name in args.methods[1:]:
            paired = [a / b for a, b in zip(rates[first], rates[name])]
            cpu_ratio = [b / a for a, b in zip(cpu[first], cpu[name])]
            diff = np.abs(results[first].sum(1) - results[name].sum(1)).max()
            print(f"  {first} / {name}: {statistics.median(rates[first]) / statistics.median(rates[name]):.2f}x "
                  f"(ratio of medians); per run " + " ".join(f"{r:.2f}" for r in paired)
                  + f", median {statistics.median(paired):.2f}x; CPU time median {statistics.median(cpu_ratio):.2f}x"
                  f"  (max |difference| of per-position sums {diff:.1e})")


if __name__ == "__main__":
    main()
