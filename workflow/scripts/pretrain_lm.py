"""Snakemake entry script for rule pretrain_lm: masked-LM pretraining on the QC-gated, homology-filtered corpus."""

from dnalm.jobs import start

start(snakemake, append=True, environment=True)

import os

from dnalm.corpus import corpus_genomes, exclude_windows
from dnalm.pretrain import pretrain_lm

genomes = corpus_genomes(snakemake.params.genomes, getattr(snakemake.input, "gate", None))
exclude_windows(genomes, snakemake.input.excluded)
pretrain_lm(
    genomes,
    os.path.dirname(snakemake.output.weights),
    snakemake.params.hp,
    species=list(snakemake.params.species),
    threads=snakemake.threads,
    log_file=snakemake.log[0],
)
