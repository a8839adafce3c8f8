"""Snakemake entry script for rule match_motifs: TOMTOM matches of every modisco pattern -> motifs.tsv."""

from dnalm.jobs import start

start(snakemake)

from dnalm.interpret import match_motifs

match_motifs(
    dict(zip(snakemake.params.outputs, snakemake.input.modisco)),
    list(snakemake.input.motifs),
    snakemake.output.tsv,
    q_threshold=snakemake.params.q_threshold,
    reverse_complement=snakemake.params.reverse_complement,
)
