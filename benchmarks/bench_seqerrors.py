"""Speed of the sequencing-error simulator and of writing a seqerror task's noisy window store.

Prints (1) `dnalm.seqerrors.simulate`'s throughput in noisy bases per second at read widths of 1 kb and 16 kb
(substitution 0.02, insertion and deletion 0.01, homopolymer factor 3), the median of `--repeats`, and (2) the
seconds `dnalm.seqerror_store.write_noisy_store` takes for `--windows` training windows × `--copies` copies of 1 kb on
a random 8 Mb genome (reads from the FASTA included), with the rows per second.

Usage: .venv/bin/python benchmarks/bench_seqerrors.py [--windows 2000] [--copies 4] [--repeats 3]
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow" / "scripts"))

from dnalm.seqerror_store import write_noisy_store
from dnalm.seqerrors import ErrorProfile, simulate, true_length, window_rng

ERRORS = {"rates": {"substitution": 0.02, "insertion": 0.01, "deletion": 0.01},
          "homopolymer": {"min_length": 4, "factor": 3.0}}


def simulate_rate(width: int, n: int, repeats: int) -> float:
    """Noisy bases per second of `simulate` at one width (median over repeats)."""
    profile = ErrorProfile.from_config(ERRORS)
    true = np.random.default_rng(0).integers(0, 4, true_length(width, profile)).astype(np.uint8)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        for i in range(n):
            simulate(true, width, profile, window_rng(0, f"w{i}"))
        times.append(time.perf_counter() - t)
    return n * width / statistics.median(times)


def store_seconds(n_windows: int, copies: int, directory: Path) -> float:
    """Seconds to write the train store of `n_windows` 1 kb windows × `copies` on a random genome."""
    rng = np.random.default_rng(1)
    chrom = 8_000_000
    (directory / "g.fa").write_text(">c1\n" + "".join(np.array(list("ACGT"))[rng.integers(0, 4, chrom)]) + "\n")
    starts = np.sort(rng.choice(np.arange(16, chrom - 2000, 1024), n_windows, replace=False))
    pd.DataFrame({"id": [f"c1:{s}" for s in starts], "species": "sp", "chrom": "c1", "start": starts,
                  "end": starts + 1024, "strand": "+", "kept": True, "reason": "", "split": "train",
                  "row": np.arange(n_windows)}).to_csv(directory / "w.tsv", sep="\t", index=False)
    task = {"type": "seqerror", "window": {"flank": 16}, "errors": {**ERRORS, "copies": copies, "seed": 0}}
    t = time.perf_counter()
    write_noisy_store(str(directory / "w.tsv"), "train", str(directory / "train"), task=task,
                      genomes={"sp": str(directory / "g.fa")})
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=2000)
    parser.add_argument("--copies", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    for width, n in ((1024, 400), (16384, 25)):
        print(f"simulate, {width} bp reads: {simulate_rate(width, n, args.repeats) / 1e6:.2f} M noisy bases/s")
    with tempfile.TemporaryDirectory() as tmp:
        seconds = store_seconds(args.windows, args.copies, Path(tmp))
    rows = args.windows * args.copies
    print(f"write_noisy_store, {args.windows} windows x {args.copies} copies of 1,056 bp: {seconds:.2f} s "
          f"({rows / seconds:,.0f} rows/s)")


if __name__ == "__main__":
    main()
