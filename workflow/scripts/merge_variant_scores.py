"""Snakemake entry script for rule merge_variant_scores: score_variants' outputs from the shards' rows."""

from dnalm.jobs import start

start(snakemake)

from dnalm.variants import merge_variant_shards

merge_variant_shards(
    list(snakemake.input.parts),
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
