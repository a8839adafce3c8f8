"""TF-MoDISco (modisco-lite) wall time on a model's attributions, per output, with interpret.modisco's defaults.

Usage (from the repository root):
    python benchmarks/bench_modisco.py results/interpret/polya/bpnet/attributions.npz [--repeats 3]
    python benchmarks/bench_modisco.py --checkpoint results/models/polya/bpnet/best.ckpt \
        --store results/windows/polya/test --windows 300 --shuffles 5 --out /tmp/attributions.npz

With --checkpoint, the attributions are computed first (dnalm.attribution.attribute_windows, timed too) and written to
--out. Prints the seconds of every run, the median, the seqlets and patterns found, and the TOMTOM matches against
resources/motifs (polya_yeast.meme + yeast_tf_consensus.meme).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow" / "scripts"))

from dnalm.attribution import attribute_windows
from dnalm.interpret import match_motifs, read_patterns, run_modisco
from dnalm.store import WindowStore

MOTIFS = [str(REPO / "resources/motifs/polya_yeast.meme"), str(REPO / "resources/motifs/yeast_tf_consensus.meme")]


def main() -> None:
    """Parse arguments, time attributions (optional) and modisco, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("npz", nargs="?")
    parser.add_argument("--checkpoint")
    parser.add_argument("--store", help="window store prefix, e.g. results/windows/polya/test")
    parser.add_argument("--windows", type=int, default=300)
    parser.add_argument("--shuffles", type=int, default=5)
    parser.add_argument("--out", default="attributions.npz")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    npz = args.npz
    if args.checkpoint:
        store = WindowStore(args.store)
        summary = attribute_windows(args.checkpoint, store, args.out, n_windows=args.windows,
                                    outputs=["count", "profile"], n_shuffles=args.shuffles, seed=0,
                                    threads=args.threads)
        print(f"attributions: {summary}")
        npz = args.out
    for output in ("count", "profile"):
        seconds = []
        with tempfile.TemporaryDirectory() as tmp:
            for _ in range(args.repeats):
                start = time.perf_counter()
                found = run_modisco(npz, output, f"{tmp}/m.h5", max_seqlets=2000)
                seconds.append(time.perf_counter() - start)
            patterns = read_patterns(f"{tmp}/m.h5", output)
            seqlets = sum(p.n_seqlets for p in patterns)
            print(f"modisco {output}: runs {[round(s, 1) for s in seconds]} s, median {statistics.median(seconds):.1f} s;"
                  f" {found['pos_patterns']} positive / {found['neg_patterns']} negative patterns, {seqlets} seqlets")
            table = match_motifs({output: f"{tmp}/m.h5"}, MOTIFS, f"{tmp}/motifs.tsv")
            print(table[["pattern", "n_seqlets", "consensus", "best_match", "q_value", "strand"]].to_string())


if __name__ == "__main__":
    main()
