"""Snakemake entry script for rule match_motifs: TOMTOM matches of every modisco pattern -> motifs.tsv."""

from dnalm.jobs import start

start(snakemake)

import math

import numpy as np

from dnalm.interpret import match_motifs

with np.load(snakemake.input.npz) as attributions:
    n_windows = len(attributions["window_ids"])
match_motifs(
    dict(zip(snakemake.params.outputs, snakemake.input.modisco, strict=True)),
    list(snakemake.input.motifs),
    snakemake.output.tsv,
    q_threshold=snakemake.params.q_threshold,
    reverse_complement=snakemake.params.reverse_complement,
    min_seqlets=math.ceil(snakemake.params.min_support * n_windows),
)
