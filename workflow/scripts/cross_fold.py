"""Snakemake entry script for rule cross_fold: per model and metric, mean over folds with a 95% interval."""

from dnalm.jobs import start

start(snakemake)

from dnalm.fold_tables import cross_fold_table, fold_runs

runs = dict(zip(snakemake.params.folds, snakemake.input.runs, strict=True))
ensembles = {}
for fold, path in zip(snakemake.params.ensemble_folds, snakemake.input.ensembles, strict=True):
    ensembles.setdefault(fold, []).append(path)
table = cross_fold_table(fold_runs(runs, ensembles))
table.to_csv(snakemake.output.table, sep="\t", index=False, float_format="%.5g")
