"""Homology filter speed at 10% of study 2's 165-genome corpus: mappy (dnalm.homology) and the minimap2 CLI.

Study 2 filtered 404,608 train windows of 16 kb against 1,184 val/test windows. At 10% that is ~40,000 train windows
against ~1,100 held-out windows. This script generates synthetic genomes (not committed): held-out windows of random
sequence, a 6 kb repeat family inserted into 5% of all windows (so many windows have partial, multi-copy hits, as
transposons give in real genomes), and train windows of which 5% are 2%-diverged copies of held-out windows (the
homologs to find). It times `dnalm.homology.find_homologs` (index + alignment, `--threads` worker processes) and
`minimap2 -c -x <preset> -t <threads>` on the same windows, checks both find the planted copies, and extrapolates to
the full corpus. With `--fraction` < 1 only that fraction of the 40,000 train windows is aligned (generation and disk
stay small) and the time is scaled up; the output says so.

Usage: python benchmarks/bench_homology.py [--train 40000] [--held 1100] [--fraction 1.0] [--threads 2] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow" / "scripts"))

from dnalm.homology import HomologySettings, find_homologs

WINDOW = 16384
FULL_TRAIN = 404_608  # study 2's 165-genome corpus, train windows before filtering
REPEAT = 6000
LETTERS = np.frombuffer(b"ACGT", dtype=np.uint8)


def diverge(rng: np.random.Generator, codes: np.ndarray, fraction: float) -> np.ndarray:
    """Substitute `fraction` of the bases, each by one of the three other bases."""
    out = codes.copy()
    pos = rng.choice(len(codes), int(fraction * len(codes)), replace=False)
    out[pos] = (out[pos] + rng.integers(1, 4, len(pos))) % 4
    return out


def make_windows(rng: np.random.Generator, n: int, repeat: np.ndarray) -> np.ndarray:
    """n random windows (codes), 5% carrying a 1%-diverged copy of the repeat at a random position."""
    codes = rng.integers(0, 4, (n, WINDOW), dtype=np.uint8)
    for i in np.flatnonzero(rng.random(n) < 0.05):
        at = rng.integers(0, WINDOW - REPEAT)
        codes[i, at : at + REPEAT] = diverge(rng, repeat, 0.01)
    return codes


def write_genome(path: Path, windows: np.ndarray, per_chrom: int = 500) -> list[tuple[str, str, str, int, int]]:
    """Write windows end to end into chromosomes of `per_chrom` windows; their (id, fasta, chrom, start, end)."""
    records = []
    with open(path, "w") as out:
        for c in range(0, len(windows), per_chrom):
            chunk = windows[c : c + per_chrom]
            out.write(f">c{c // per_chrom}\n")
            out.write(LETTERS[chunk.ravel()].tobytes().decode())
            out.write("\n")
            records += [(f"{path.stem}:{c + i}", str(path), f"c{c // per_chrom}", i * WINDOW, (i + 1) * WINDOW)
                        for i in range(len(chunk))]
    import pyfaidx

    pyfaidx.Faidx(str(path)).close()
    return records


def write_window_fasta(path: Path, windows: np.ndarray, names: list[str]) -> None:
    with open(path, "w") as out:
        out.writelines(f">{name}\n{LETTERS[codes].tobytes().decode()}\n" for name, codes in zip(names, windows))


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and its reaped children (pool workers, minimap2)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def run_cli(targets: Path, queries: Path, preset: str, threads: int, min_identity: float,
            min_coverage: float) -> tuple[float, set[str]]:
    """Seconds of minimap2 on the command line (index + alignment) and the queries it flags."""
    start = time.perf_counter()
    proc = subprocess.run(["minimap2", "-c", "-x", preset, "-t", str(threads), str(targets), str(queries)],
                          capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - start
    flagged = set()
    for line in proc.stdout.splitlines():
        f = line.split("\t")
        qlen, qs, qe, mlen, blen = int(f[1]), int(f[2]), int(f[3]), int(f[9]), int(f[10])
        if mlen / blen >= min_identity and (qe - qs) / qlen >= min_coverage:
            flagged.add(f[0])
    return seconds, flagged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", type=int, default=40_000, help="train windows at 10%% of study 2")
    parser.add_argument("--held", type=int, default=1_100, help="val + test windows")
    parser.add_argument("--fraction", type=float, default=1.0, help="fraction of the train windows aligned")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--preset", default="asm20")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    n_train = int(args.train * args.fraction)
    tmp = Path(tempfile.mkdtemp(prefix="dnalm_bench_homology_"))
    try:
        repeat = rng.integers(0, 4, REPEAT, dtype=np.uint8)
        held = make_windows(rng, args.held, repeat)
        train = make_windows(rng, n_train, repeat)
        planted = np.flatnonzero(rng.random(n_train) < 0.05)
        for i in planted:
            train[i] = diverge(rng, held[rng.integers(0, args.held)], 0.02)
        targets = write_genome(tmp / "held.fa", held)
        queries = write_genome(tmp / "train.fa", train)
        planted_ids = {queries[i][0] for i in planted}
        write_window_fasta(tmp / "held_windows.fa", held, [r[0] for r in targets])
        write_window_fasta(tmp / "train_windows.fa", train, [r[0] for r in queries])
        del train, held
        print(f"{n_train:,} train windows ({len(planted):,} planted 2% copies) against {args.held:,} held-out "
              f"windows of {WINDOW:,} bp; preset {args.preset}; {args.threads} threads/processes; "
              f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f}")
        settings = HomologySettings(args.preset, 0.95, 0.5, args.threads)
        scale = FULL_TRAIN / n_train
        results: dict[str, list[float]] = {"mappy (dnalm.homology)": [], "minimap2 CLI": []}
        cpu: dict[str, list[float]] = {name: [] for name in results}
        for run in range(args.runs):
            start, cpu0 = time.perf_counter(), cpu_seconds()
            hits = find_homologs(queries, targets, settings)
            results["mappy (dnalm.homology)"].append(time.perf_counter() - start)
            cpu["mappy (dnalm.homology)"].append(cpu_seconds() - cpu0)
            found = set(hits["id"])
            cpu0 = cpu_seconds()
            cli_seconds, cli_found = run_cli(tmp / "held_windows.fa", tmp / "train_windows.fa", args.preset,
                                             args.threads, 0.95, 0.5)
            results["minimap2 CLI"].append(cli_seconds)
            cpu["minimap2 CLI"].append(cpu_seconds() - cpu0)
            print(f"run {run + 1}: mappy {results['mappy (dnalm.homology)'][-1]:.1f} s "
                  f"(found {len(found & planted_ids)}/{len(planted_ids)} planted, {len(found - planted_ids)} other); "
                  f"CLI {cli_seconds:.1f} s (found {len(cli_found & planted_ids)}/{len(planted_ids)}, "
                  f"{len(cli_found - planted_ids)} other)")
        note = "" if args.fraction == 1 else f" (aligned {args.fraction:.0%} of the 10% set and scaled up)"
        for name, times in results.items():
            median, cpu_median = statistics.median(times), statistics.median(cpu[name])
            idle = cpu_median / args.threads  # wall time on idle cores if the work splits evenly
            print(f"{name}: median {median:.1f} s wall, {cpu_median:.1f} s CPU for {n_train:,} windows; "
                  f"10% corpus ({args.train:,}) ≈ {median * args.train / n_train / 60:.1f} min wall "
                  f"({idle * args.train / n_train / 60:.1f} min at CPU/{args.threads}); full corpus ({FULL_TRAIN:,}) "
                  f"≈ {median * scale / 60:.1f} min wall ({idle * scale / 60:.1f} min at CPU/{args.threads}) on "
                  f"{args.threads} cores{note} (goal <= 30 min)")
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
