"""Snakemake entry script for rule assign_splits: train, val and test per window, and the split counts."""

from dnalm.jobs import start

start(snakemake)

from dnalm.splits import assign_splits

assign_splits(
    snakemake.input.windows,
    snakemake.input.fai,
    snakemake.output.windows,
    snakemake.output.counts,
    folds_tsv=getattr(snakemake.input, "folds", None),
    extra=list(snakemake.input.extra),
    **snakemake.params.split,
)
