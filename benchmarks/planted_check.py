"""The planted-motif check at full size: config/examples/synthetic_motifs.yaml run to each model's motifs.tsv.

The suite's check (tests/integration/test_interpret_synthetic.py) runs a reduced version of this example so the suite
stays within its time. This runs the example as shipped (the committed 6 × 240 kb genome, BPNet and the k-mer LMs,
both outputs of 400 test windows) and prints, per model, what the test asserts: the planted elements recovered among
the top patterns, those recovered among the positive count patterns, and every decoy matched; then the wall time.
Exit status 1 when a model misses a planted element or matches a decoy.

Usage (from the repository root):
    .venv/bin/python benchmarks/planted_check.py [--models bpnet kmer_lm] [--dir DIR] [--cores 2]
DIR (default: a new temporary directory) keeps the run, e.g. for `python docs/make_results.py DIR`.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow" / "scripts"))
from dnalm.interpret import read_motif_table
from dnalm.synthetic import PLANTED, decoys_matched, planted_at, recovered

CONFIG = REPO / "config" / "examples" / "synthetic_motifs.yaml"


def run(workdir: Path, model: str, cores: int) -> float:
    """Run the example to one model's motifs.tsv in `workdir`; return the wall time in seconds."""
    prefix = f"results/interpret/synth/{model}"
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "workflow" / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(CONFIG), "--cores", str(cores), f"{prefix}/motifs.tsv", f"{prefix}/positional.tsv"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return time.perf_counter() - start


def report(workdir: Path, model: str) -> bool:
    """Print the check of one model's motifs.tsv; True when it passes."""
    table = read_motif_table(workdir / f"results/interpret/synth/{model}/motifs.tsv")
    found = recovered(table)
    count = recovered(table[(table["output"] == "count") & (table["sign"] == "+")])
    decoys = decoys_matched(table)
    placed = planted_at(pd.read_csv(workdir / f"results/interpret/synth/{model}/positional.tsv", sep="\t"))
    print(f"{model}: recovered {sorted(found)} of {sorted(PLANTED)}; positive count patterns {sorted(count)}; "
          f"decoys matched {sorted(decoys) or 'none'}; {len(table)} patterns; at their planted offsets "
          f"{sorted(placed)}")
    return found == set(PLANTED) and not decoys


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["bpnet", "kmer_lm"])
    parser.add_argument("--dir", type=Path, help="working directory to keep (default: a temporary one)")
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.dir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        passed = True
        for model in args.models:
            seconds = run(workdir, model, args.cores)
            passed &= report(workdir, model)
            print(f"  {model}: {seconds:.0f} s wall (the steps not done for an earlier model: data, training,"
                  " attribution, modisco, matching)")
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
