"""The demo's biological check of variant effects: does breaking the poly(A) positioning element lower the predicted
count more than matched controls do?

Reads every `results/variants/<task>/<model>/<vcf>.tsv` of a finished run whose variants carry an `INFO/CLASS` of
`element` and `control` (the demo's `resources/demo/scer/pas_variants.vcf`) and prints per model the number of
variants, the median effect (log2 fold change of the predicted count) of each class and the one-sided Mann-Whitney U
p-value of elements below controls.

Usage: .venv/bin/python benchmarks/variant_check.py RUN_DIR   (the directory `make demo` or snakemake ran in)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
from scipy.stats import mannwhitneyu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path)
    args = parser.parse_args()
    found = False
    for path in sorted(args.run_dir.glob("results/variants/*/*/*.tsv")):
        table = pd.read_csv(path, sep="\t")
        if "INFO/CLASS" not in table or not {"element", "control"} <= set(table["INFO/CLASS"]):
            continue
        found = True
        element = table.loc[table["INFO/CLASS"] == "element", "effect"]
        control = table.loc[table["INFO/CLASS"] == "control", "effect"]
        p = mannwhitneyu(element, control, alternative="less").pvalue
        print(f"{path.relative_to(args.run_dir)}: {len(element)} elements, median {element.median():+.4f}; "
              f"{len(control)} controls, median {control.median():+.4f}; elements below controls p = {p:.2g}")
    if not found:
        raise SystemExit(f"{args.run_dir}: no results/variants/*/*/*.tsv with element and control variants")


if __name__ == "__main__":
    main()
