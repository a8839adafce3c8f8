"""Repeats of the R64 genome: tandem (tantan), interspersed (WindowMasker) and their union, with the seconds each takes.

1. The demo's S. cerevisiae R64 genome (12.16 Mb, unmasked), prepared as the workflow does (download step), pinned
   to one CPU: tantan, WindowMasker with dnalm's settings (unit ceil(log4 G) = 12, intervals >= 100 bp), and the
   union as the QC rule measures it (`dnalm.qc.assembly.repeat_kinds`, which runs both tools again). Study 2
   reports 7.4% of R64 in repeats.
2. Why these settings: WindowMasker's own unit (11 for R64) and unit 12, each with every interval and with intervals
   >= 100 bp, against a check set: the sequence homologous to the Ty1 element YARCTy1-1 (chromosome I,
   160,238-166,162, SGD), found by mapping every 200 bp tile of the genome (stride 50) to it with mappy (`sr`,
   identity >= 0.75). Ty1/Ty2 elements and their solo LTRs are R64's commonest interspersed repeats; the check set
   leaves out Ty3-5, Y' elements and other families, so masked bases outside it are not all false.

Every time is the median of --repeats runs (each run is printed).
Usage: .venv/bin/python benchmarks/bench_repeats.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mappy
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow" / "scripts"))
from dnalm.download import prepare_genome
from dnalm.qc.assembly import covered_bases, repeat_kinds
from dnalm.qc.tools import parse_windowmasker, tantan_intervals, windowmasker_intervals

GENOME = REPO / "resources" / "demo" / "scer" / "Saccharomyces_cerevisiae.R64-1-1.dna.toplevel.fa.gz"
TY1 = ("I", 160_237, 166_162)  # YARCTy1-1, 0-based half-open
STUDY2 = 0.074


def timed(fn: Callable[[], Any], repeats: int, label: str) -> tuple[Any, float]:
    """Run fn `repeats` times, print each time; return its last result and the median time."""
    times, result = [], None
    for i in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
        print(f"  {label} run {i + 1}: {times[-1]:.2f} s", flush=True)
    return result, statistics.median(times)


def ty1_check_set(fasta: Path) -> dict[str, np.ndarray]:
    """Per sequence, the bases of 200 bp tiles (stride 50) that map to YARCTy1-1 at identity >= 0.75."""
    seqs = {name.split()[0]: seq for name, seq, _ in mappy.fastx_read(str(fasta))}
    aligner = mappy.Aligner(seq=seqs[TY1[0]][TY1[1] : TY1[2]], preset="sr")
    masks = {}
    for name, seq in seqs.items():
        mask = np.zeros(len(seq), dtype=bool)
        for i in range(0, max(len(seq) - 200, 0), 50):
            for hit in aligner.map(seq[i : i + 200]):
                if hit.mlen / hit.blen >= 0.75:
                    mask[i + hit.q_st : i + hit.q_en] = True
        masks[name] = mask
    return masks


def windowmasker_variant(fasta: Path, unit: int | None, min_length: int) -> dict[str, list[tuple[int, int]]]:
    """WindowMasker intervals with a given unit (None: WindowMasker's own choice) and minimum interval length."""
    with tempfile.TemporaryDirectory() as tmp:
        counts = Path(tmp) / "counts"
        unit_args = [] if unit is None else ["-unit", str(unit)]
        subprocess.run(["windowmasker", "-mk_counts", *unit_args, "-in", str(fasta), "-out", str(counts)],
                       check=True, capture_output=True)  # fmt: skip
        out = subprocess.run(["windowmasker", "-ustat", str(counts), "-in", str(fasta), "-outfmt", "interval"],
                             check=True, capture_output=True, text=True).stdout  # fmt: skip
    return parse_windowmasker(out.splitlines(), min_length)


def check_row(label: str, intervals: dict[str, list[tuple[int, int]]], check: dict[str, np.ndarray], length: int) -> str:
    """A table row: masked fraction, the check set's share covered, masked fraction outside the check set."""
    masked = covered = 0
    for name, mask in check.items():
        found = np.zeros(mask.size, dtype=bool)
        for start, end in intervals.get(name, ()):
            found[start:end] = True
        masked += int(found.sum())
        covered += int((found & mask).sum())
    total = sum(int(m.sum()) for m in check.values())
    return f"| {label} | {masked / length:.2%} | {covered / total:.1%} | {(masked - covered) / length:.2%} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core, inherited by tantan and windowmasker
    with tempfile.TemporaryDirectory() as tmp:
        fasta = Path(tmp) / "genome.fa"
        prepare_genome(str(GENOME), str(fasta), str(Path(tmp) / "genome.fa.fai"), str(Path(tmp) / "genome.json"))
        length = sum(len(seq) for _, seq, _ in mappy.fastx_read(str(fasta)))
        print(f"R64, {length:,} bp, one core:")
        tandem, t_tantan = timed(lambda: tantan_intervals(fasta), args.repeats, "tantan")
        masker, t_masker = timed(lambda: windowmasker_intervals(fasta, length), args.repeats, "windowmasker")
        kinds, t_both = timed(lambda: repeat_kinds(fasta, length), args.repeats, "both + union")
        assert kinds["union"]["bases"] == covered_bases(tandem, masker["intervals"])
        print(f"\nWindowMasker unit {masker['unit']}, thresholds {masker['thresholds']}")
        print("| repeats of R64 | fraction | seconds (median) |\n|---|---|---|")
        print(f"| tandem (tantan) | {kinds['tandem']['fraction']:.2%} | {t_tantan:.2f} |")
        print(f"| interspersed (WindowMasker, >= 100 bp) | {kinds['interspersed']['fraction']:.2%} | {t_masker:.2f} |")
        print(f"| union | {kinds['union']['fraction']:.2%} | {t_both:.2f} (both tools) |")
        print(f"| study 2 | {STUDY2:.1%} | |")

        check = ty1_check_set(fasta)
        print(f"\nTy1 check set: {sum(int(m.sum()) for m in check.values()):,} bp")
        print("| WindowMasker settings | masked | Ty1 check set covered | masked outside it |\n|---|---|---|---|")
        for unit, min_length in ((None, 0), (None, 100), (masker["unit"], 0), (masker["unit"], 100)):
            label = f"unit {'own (11)' if unit is None else unit}, intervals >= {min_length} bp"
            print(check_row(label, windowmasker_variant(fasta, unit, min_length), check, length))


if __name__ == "__main__":
    main()
