"""Snakemake entry script for rule score_variants: a VCF's variant effects by every seed run of a model."""

from dnalm.jobs import start

start(snakemake)

from dnalm.variants import score_variants

score_variants(
    list(snakemake.input.checkpoints),
    list(snakemake.input.metrics),
    snakemake.input.variants,
    snakemake.input.fasta,
    snakemake.output.tsv,
    snakemake.output.summary,
    snakemake.output.top,
    settings=snakemake.params.settings,
    attribution=snakemake.params.attribution,
    threads=snakemake.threads,
)
