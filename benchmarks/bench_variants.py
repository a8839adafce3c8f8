"""Variant scoring speed: dnalm's `score_runs` against tangermeme's `substitution_effect` on the same model and SNVs.

Both sides score `--variants` random SNVs of a random genome (4 chromosomes of 250 kb) with the same model, on both
strands, and end with the same numbers (the log counts of REF and ALT, averaged over strands):
- dnalm: `dnalm.variants.score_runs` with `strands: both`, `--batch` variants per pass (their REF and ALT windows
  and both reverse complements in one forward pass), window building (one-hot from the genome) included;
- tangermeme: what a user of it writes for both strands: `substitution_effect` on the forward REF windows and on
  their reverse complements (two calls, each predicting REF and ALT in batches of `--batch` windows), with the REF
  windows built the same way beforehand (not timed) and the strand average taken after.
Models (`--models`): `bpnet`, the demo's BPNet (64 filters × 8 layers, profile kernel 75) on its 300 bp windows, and
`lm`, a random BERT (2 layers × hidden 64 × 4 heads, nucleotide tokens, LoRA unmerged, conv head: the demo's
`lm_lora_conv` shape) with the profile head. Each side runs `--repeats` times, alternating; prints variants/s of every
repeat, the medians and the ratio dnalm ÷ tangermeme, and the largest difference of the two sides' effects.

Usage: .venv/bin/python benchmarks/bench_variants.py [--variants 512] [--batch 64] [--models bpnet lm] [--repeats 3]
       [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow" / "scripts"))
sys.path.insert(0, str(REPO / "benchmarks"))
sys.path.insert(0, str(REPO / "tests"))
from bench_classifier_finetune import random_lm

from dnalm.device import set_threads
from dnalm.models import build_model
from dnalm.variants import score_runs, variant_windows

LENGTH = 300
CHANNELS = ["polya/+", "polya/-"]


def random_genome(seed: int = 0) -> dict[str, str]:
    rng = np.random.default_rng(seed)
    return {f"chr{i}": "".join(rng.choice(list("ACGT"), 250_000)) for i in range(1, 5)}


def random_snvs(genome: dict[str, str], n: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    chroms = rng.choice(list(genome), n)
    pos = rng.integers(LENGTH, 250_000 - LENGTH, n) + 1
    ref = [genome[c][p - 1] for c, p in zip(chroms, pos, strict=True)]
    alt = [str(rng.choice([b for b in "ACGT" if b != r])) for r in ref]
    return pd.DataFrame({"chrom": chroms, "pos": pos, "id": [f"v{i}" for i in range(n)], "ref": ref, "alt": alt})


def model(kind: str, directory: Path) -> torch.nn.Module:
    torch.manual_seed(0)
    if kind == "bpnet":
        return build_model("bpnet", {"filters": 64, "layers": 8}, "profile", 2).eval()
    params = random_lm(directory / "lm", "2x64", 4, "nucleotide", LENGTH)
    return build_model("lm", params, "profile", 2, {}).eval()


def tangermeme_side(net, ref_x: np.ndarray, alts: list[str], batch: int) -> np.ndarray:
    """Strand-averaged (REF, ALT) log counts as a tangermeme user computes them (two substitution_effect calls)."""
    from tangermeme.variant_effect import substitution_effect

    centre = LENGTH // 2
    codes = np.array(["ACGT".index(a) for a in alts])
    rows = np.arange(len(alts))
    fwd = substitution_effect(net, torch.from_numpy(ref_x), np.stack([rows, np.full_like(rows, centre), codes], 1),
                              batch_size=batch, device="cpu", verbose=False)
    rc_x = np.ascontiguousarray(ref_x[:, ::-1, ::-1])
    rc_subs = np.stack([rows, np.full_like(rows, LENGTH - 1 - centre), 3 - codes], 1)
    rev = substitution_effect(net, torch.from_numpy(rc_x), rc_subs, batch_size=batch, device="cpu", verbose=False)
    ref = (fwd.y_before[1] + rev.y_before[1][:, [1, 0]]) / 2
    alt = (fwd.y_after[1] + rev.y_after[1][:, [1, 0]]) / 2
    total = (torch.logsumexp(alt.double(), -1) - torch.logsumexp(ref.double(), -1)) / np.log(2)
    return total.numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", type=int, default=512)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--models", nargs="+", default=["bpnet", "lm"], choices=["bpnet", "lm"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    set_threads(args.threads)
    genome = random_genome()
    sizes = {c: len(s) for c, s in genome.items()}

    table = random_snvs(genome, args.variants)
    info = {"task_type": "profile", "channels": CHANNELS, "length": LENGTH}
    settings = {"strands": "both", "range": None, "max_indel": 50, "batch_size": args.batch}
    print(f"{args.variants} SNVs, {LENGTH} bp windows, batch {args.batch}, both strands, {args.threads} threads")
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.models:
            net = model(kind, Path(tmp))
            rates: dict[str, list[float]] = {"dnalm": [], "tangermeme": []}
            ref_x, _ = variant_windows(table, genome, sizes, LENGTH)
            with torch.no_grad():
                for _ in range(args.repeats):
                    start = time.perf_counter()
                    ours, _ = score_runs([(net, info, None)], table, genome, sizes, settings, "cpu")
                    rates["dnalm"].append(args.variants / (time.perf_counter() - start))
                    start = time.perf_counter()
                    theirs = tangermeme_side(net, ref_x, list(table["alt"]), args.batch)
                    rates["tangermeme"].append(args.variants / (time.perf_counter() - start))
            medians = {side: statistics.median(r) for side, r in rates.items()}
            diff = float(np.abs(ours["effect"].to_numpy() - theirs).max())
            for side, r in rates.items():
                print(f"{kind} {side}: {' '.join(f'{v:.1f}' for v in r)} variants/s (median {medians[side]:.1f})")
            print(f"{kind} dnalm / tangermeme: {medians['dnalm'] / medians['tangermeme']:.2f}x; "
                  f"largest effect difference {diff:.2e}")


if __name__ == "__main__":
    main()
