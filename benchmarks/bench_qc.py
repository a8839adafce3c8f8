"""Genome QC speed on one core: QC of a 12 Mb genome without BUSCO, and Mash sketch time against the number of genomes.

1. The demo's S. cerevisiae R64 genome (12.2 Mb, unmasked, so the repeat fraction comes from tantan) and its Ensembl
   annotation, prepared as the workflow does (download step), then `mash sketch` + `assess_genome` (assembly
   statistics, tantan, coding fraction, genes per window, Mash distance), pinned to one CPU. Goal: < 60 s.
2. `mash sketch` (one thread, k=21, s=10000) of n genomes of 12 Mb (R64 copies mutated at 1–4%, cycled), for
   growing n up to 165 (study 2's number of pretraining genomes): seconds per genome should stay flat (linear
   scaling); then `mash triangle` on the n sketches.

Every figure is the median of --repeats runs (each run is printed).
Usage: .venv/bin/python benchmarks/bench_qc.py [--repeats 3] [--genomes 1 10 40 165]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow" / "scripts"))
from dnalm.download import prepare_annotation, prepare_genome
from dnalm.qc.gate import assess_genome
from dnalm.qc.tools import mash_sketch

DEMO = REPO / "resources" / "demo" / "scer"


def timed(fn, repeats: int, label: str) -> float:
    """Run fn `repeats` times, print each time and return the median."""
    times = []
    for i in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
        print(f"  {label} run {i + 1}: {times[-1]:.2f} s", flush=True)
    return statistics.median(times)


def mutated_copies(fasta: Path, out: Path, rates: list[float]) -> list[Path]:
    """Copies of a FASTA with a fraction of bases substituted (seeded), one per rate."""
    names, seqs = [], []
    for line in fasta.read_text().splitlines():
        if line.startswith(">"):
            names.append(line)
            seqs.append([])
        else:
            seqs[-1].append(line)
    bases = np.frombuffer(b"ACGT", dtype=np.uint8)
    paths = []
    for i, rate in enumerate(rates):
        rng = np.random.default_rng(i)
        path = out / f"genome_{i}.fa"
        with open(path, "w") as handle:
            for name, parts in zip(names, seqs):
                arr = np.frombuffer("".join(parts).encode(), dtype=np.uint8).copy()
                hits = rng.random(arr.size) < rate
                arr[hits] = rng.choice(bases, int(hits.sum()))
                handle.write(f"{name}\n{arr.tobytes().decode()}\n")
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--genomes", type=int, nargs="+", default=[1, 10, 40, 165])
    args = parser.parse_args()
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core, inherited by mash and tantan
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        fasta, gff = root / "genome.fa", root / "annotation.gff3"
        prepare_genome(str(DEMO / "Saccharomyces_cerevisiae.R64-1-1.dna.toplevel.fa.gz"), str(fasta),
                       str(root / "genome.fa.fai"), str(root / "genome.json"))  # fmt: skip
        prepare_annotation(str(DEMO / "Saccharomyces_cerevisiae.R64-1-1.96.gtf.gz"), str(gff), str(root / "a.json"))

        def qc_once() -> None:
            mash_sketch(fasta, root / "genome.msh")
            assess_genome("scer", fasta, root / "qc.json", annotation=gff, sketch=root / "genome.msh",
                          reference_sketch=root / "genome.msh", reference="scer")  # fmt: skip

        print("QC of a 12 Mb genome (R64), no BUSCO, one core:")
        median = timed(qc_once, args.repeats, "QC")
        print(f"QC of R64 (12.16 Mb) without BUSCO, one core: median {median:.2f} s (goal < 60 s)\n")

        copies = mutated_copies(fasta, root, [0.01, 0.02, 0.03, 0.04])
        print("mash sketch (k=21, s=10000, one thread) of n genomes of 12 Mb:")
        rows = []
        for n in args.genomes:
            inputs = [str(copies[i % len(copies)]) for i in range(n)]
            sketch = root / f"all_{n}.msh"
            cmd = ["mash", "sketch", "-k", "21", "-s", "10000", "-S", "42", "-p", "1", "-o", str(sketch), *inputs]
            seconds = timed(lambda cmd=cmd: subprocess.run(cmd, check=True, capture_output=True), args.repeats,
                            f"n={n}")  # fmt: skip
            start = time.perf_counter()
            subprocess.run(["mash", "triangle", str(sketch)], check=True, capture_output=True)
            rows.append((n, seconds, seconds / n, time.perf_counter() - start))
        print("\n| genomes | sketch time (s) | s per genome | mash triangle (s) |\n|---|---|---|---|")
        for n, seconds, per, tri in rows:
            print(f"| {n} | {seconds:.1f} | {per:.3f} | {tri:.2f} |")


if __name__ == "__main__":
    main()
