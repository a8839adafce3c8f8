"""Integrated gradients of a 6-mer language model on the CPU: the blockwise multilinear k-mer embedding of
`dnalm.attribution` against the same extension built by autograd (4,096 products per 6-mer kept for the backward).

The model is the planted-motif example's `kmer_lm_conv` (6-mer tokens, 1 layer, hidden 64, conv head; random weights), on
random 200 bp windows, count output, 5 dinucleotide-shuffled references and `--steps` quadrature nodes each. Prints
per method and run: wall seconds, user and system CPU seconds, minor page faults, and the interpolated inputs per
second; then the medians and the ratio. Checks that both give the same attributions.

Usage: .venv/bin/python benchmarks/bench_kmer_ig.py [--n 20] [--steps 20] [--repeats 3] [--batch 32] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow" / "scripts"))
from dnalm import attribution, tokenize
from dnalm.attribution import attribute
from dnalm.models import build_model

REFS = 5


def autograd_embeddings(cols: torch.Tensor, weight: torch.Tensor, first: int, fallback: int) -> torch.Tensor:
    """The multilinear extension as autograd builds it: all 4,096 products per 6-mer, kept for the backward."""
    p = cols[:, :, 0]
    for j in range(1, tokenize.K):
        p = (p[..., :, None] * cols[:, :, j, None, :]).flatten(-2)
    table = weight[attribution._kmer_table_ids(first).to(weight.device)]
    return p @ table + (1 - p.sum(-1, keepdim=True)) * weight[fallback]


def run(model, x: np.ndarray, steps: int, batch: int, embed) -> tuple[np.ndarray, dict]:
    original = attribution.multilinear_column_embeddings
    attribution.multilinear_column_embeddings = embed  # what integrated gradients embed 6-mer columns with
    try:
        before, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        attr, _ = attribute(model, x, output="count", n_shuffles=REFS, seed=0, batch_size=batch, steps=steps)
        wall, after = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF)
    finally:
        attribution.multilinear_column_embeddings = original
    return attr, {"wall": wall, "user": after.ru_utime - before.ru_utime, "sys": after.ru_stime - before.ru_stime,
                  "faults": after.ru_minflt - before.ru_minflt}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20, help="windows")
    parser.add_argument("--length", type=int, default=200)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=32, help="interpolated inputs per pass")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    params = {"backbone": None, "tokenizer": "kmer6_species", "finetune": "scratch", "head": "conv",
              "architecture": {"layers": 1, "hidden": 64, "heads": 4}, "species": "synth", "species_list": ["synth"]}
    model = build_model("lm", params, "profile", 2).eval()
    rng = np.random.default_rng(0)
    x = np.eye(4, dtype=np.float32)[rng.integers(0, 4, (args.n, args.length))].transpose(0, 2, 1).copy()
    inputs = args.n * REFS * args.steps
    print(f"6-mer LM 1 x 64, {args.n} windows x {args.length} bp x {REFS} references x {args.steps} steps = {inputs} "
          f"interpolated inputs, batch {args.batch}, {args.threads} threads, load average {os.getloadavg()[0]:.1f}")
    attribute(model, x[:1], n_shuffles=REFS, seed=0, steps=2)  # warm up
    methods = {"blockwise": attribution.multilinear_column_embeddings, "autograd": autograd_embeddings}
    walls, results = {m: [] for m in methods}, {}
    for _ in range(args.repeats):
        for name, embed in methods.items():
            results[name], stats = run(model, x, args.steps, args.batch, embed)
            walls[name].append(stats["wall"])
            print(f"  {name:9s} {stats['wall']:6.1f} s wall, user {stats['user']:5.1f} s, sys {stats['sys']:5.1f} s, "
                  f"{stats['faults']:>9d} minor faults, {inputs / stats['wall']:6.0f} inputs/s", flush=True)
    medians = {m: statistics.median(v) for m, v in walls.items()}
    for name, value in medians.items():
        print(f"{name}: median {value:.1f} s ({1000 * value / inputs:.2f} ms per interpolated input)")
    diff = np.abs(results["blockwise"] - results["autograd"]).max()
    print(f"autograd / blockwise: {medians['autograd'] / medians['blockwise']:.2f}x "
          f"(max |difference| of the attributions {diff:.1e})")


if __name__ == "__main__":
    main()
