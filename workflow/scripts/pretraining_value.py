"""Snakemake entry script for rule pretraining_value: each pretrained LM against the same one from scratch."""

from dnalm.jobs import start

start(snakemake)

import pandas as pd

from dnalm.fold_tables import pretraining_table

folds = snakemake.params.folds
parts = [pd.read_csv(path, sep="\t") for path in snakemake.input.runs]
if folds[0] is not None:
    parts = [p.assign(fold=f) for p, f in zip(parts, folds, strict=True)]
table = pretraining_table(pd.concat(parts, ignore_index=True), [tuple(p) for p in snakemake.params.pairs])
table.to_csv(snakemake.output.table, sep="\t", index=False, float_format="%.5g")
