"""Overhead of a cross-validated task against k independent runs of one fold each (wall time, jobs).

Builds a synthetic genome (k chromosomes of `--length` bp, sites every 600 bp on + strand) with its bigWigs, then per
repeat, in fresh directories: (a) one snakemake run of a task with `split.folds: {k}` (k fold tasks, the fold layout
and candidate windows made once, fold ensembles and the cross-fold table on top), target `cross_fold.tsv`; (b) k
snakemake runs, each of one task with `split.folds: {k, val: i + 1 mod k, test: i}`, target its comparison.tsv. Both
train the same tiny BPNet per fold. Prints each repeat's seconds and job counts and the medians; the ratio a / b is
the overhead (below 1: sharing saves more than the ensembles and the table cost).

Usage: .venv/bin/python benchmarks/bench_crossfold.py [--k 3] [--length 12000] [--repeats 3] [--cores 2]
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyBigWig
import yaml

REPO = Path(__file__).resolve().parents[1]


def write_inputs(directory: Path, k: int, length: int) -> None:
    """A random genome of k chromosomes and + / − site bigWigs (sites every 600 bp on +, two on −)."""
    rng = np.random.default_rng(0)
    chroms = {f"chr{i + 1}": rng.integers(0, 4, length) for i in range(k)}
    (directory / "genome.fa").write_text("".join(f">{c}\n{''.join(np.array(list('ACGT'))[s])}\n"
                                                 for c, s in chroms.items()))
    sites = np.arange(400, length - 300, 600)
    for strand in ("plus", "minus"):
        bw = pyBigWig.open(str(directory / f"{strand}.bw"), "w")
        bw.addHeader([(c, length) for c in chroms])
        ends = sites + 1 if strand == "plus" else sites[:2] + 1
        for c in chroms:
            bw.addEntries([c] * len(ends), (ends - 1).tolist(), ends=ends.tolist(), values=[20.0] * len(ends))
        bw.close()


def config(inputs: Path, folds: dict) -> dict:
    return {
        "species": {"tgt": {"genome": {"path": str(inputs / "genome.fa")},
                            "tracks": {"p": {"path": str(inputs / "plus.bw")},
                                       "m": {"path": str(inputs / "minus.bw")}}}},
        "tasks": {"t": {"species": "tgt", "targets": [{"name": "site", "plus": "p", "minus": "m"}],
                        "window": {"length": 200, "max_offset": 20, "flank": 8},
                        "split": {"folds": folds, "homology": {"enabled": False}}}},
        "models": {"cnn": {"arch": "bpnet", "bpnet": {"filters": 8, "layers": 2},
                           "train": {"epochs": 1, "batch_size": 16, "jitter": 8}}},
    }


def snakemake(workdir: Path, cfg: dict, target: str, cores: int) -> tuple[float, int]:
    """Wall seconds and number of jobs of one run."""
    (workdir / "config.yaml").write_text(yaml.safe_dump(cfg))
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "workflow" / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(workdir / "config.yaml"), "--cores", str(cores), target]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"snakemake failed in {workdir}:\n{proc.stderr[-3000:]}")
    jobs = re.search(r"^total\s+(\d+)", proc.stdout + proc.stderr, re.MULTILINE)
    return seconds, int(jobs.group(1)) if jobs else -1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--length", type=int, default=12000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args()
    together, apart = [], []
    with tempfile.TemporaryDirectory(prefix="dnalm_crossfold_") as tmp:
        inputs = Path(tmp) / "inputs"
        inputs.mkdir()
        write_inputs(inputs, args.k, args.length)
        for r in range(args.repeats):
            run = Path(tmp) / f"cv{r}"
            run.mkdir()
            seconds, jobs = snakemake(run, config(inputs, {"k": args.k}), "results/eval/t/cross_fold.tsv", args.cores)
            together.append(seconds)
            print(f"repeat {r}: cross-validated task, {args.k} folds: {seconds:.1f} s, {jobs} jobs", flush=True)
            total, total_jobs = 0.0, 0
            for i in range(args.k):
                one = Path(tmp) / f"fold{r}_{i}"
                one.mkdir()
                folds = {"k": args.k, "val": (i + 1) % args.k, "test": i}
                seconds, jobs = snakemake(one, config(inputs, folds), "results/eval/t/comparison.tsv", args.cores)
                total, total_jobs = total + seconds, total_jobs + jobs
            apart.append(total)
            print(f"repeat {r}: {args.k} independent one-fold runs: {total:.1f} s, {total_jobs} jobs", flush=True)
    a, b = statistics.median(together), statistics.median(apart)
    print(f"median: cross-validated {a:.1f} s, independent {b:.1f} s, ratio {a / b:.2f} "
          f"(min–max {min(together):.1f}–{max(together):.1f} and {min(apart):.1f}–{max(apart):.1f} s)")


if __name__ == "__main__":
    main()
