"""Snakemake entry script for rule make_folds: k contiguous genome folds."""

from dnalm.jobs import start

start(snakemake)

from dnalm.folds import make_folds

make_folds(snakemake.input.fasta, snakemake.input.fai, snakemake.output.folds, **snakemake.params.folds)
