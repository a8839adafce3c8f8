"""Snakemake entry script for rule make_examples: a classification task's labelled examples as windows."""

from dnalm.jobs import start

start(snakemake)

import os

from dnalm.examples import make_examples
from dnalm.io import read_fai

genome = getattr(snakemake.input, "fasta", None)
make_examples(
    snakemake.params.window["spec"],
    snakemake.output.windows,
    snakemake.output.fasta,
    species=snakemake.params.window["species"],
    flank=snakemake.params.window["flank"],
    search_dirs=[os.getcwd(), str(snakemake.params.repo)],
    fasta=genome,
    chroms=read_fai(snakemake.input.fai) if genome else None,
)
