"""Snakemake entry script for rule make_test_set: an extra test set of a classification task."""

from dnalm.jobs import start

start(snakemake)

import os

from dnalm.examples import make_test_set
from dnalm.io import read_fai

genome = getattr(snakemake.input, "fasta", None)
make_test_set(
    dict(snakemake.params.task),
    dict(snakemake.params.test_set),
    snakemake.input.windows,
    snakemake.input.examples,
    snakemake.output.windows,
    snakemake.output.fasta,
    name=snakemake.wildcards.test_set,
    search_dirs=[os.getcwd(), str(snakemake.params.repo)],
    fasta=genome,
    chroms=read_fai(snakemake.input.fai) if genome else None,
)
