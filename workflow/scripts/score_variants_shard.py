"""Snakemake entry script for rule score_variants_shard: one shard's batches of a VCF's variants, every seed run."""

from dnalm.jobs import start

start(snakemake)

from dnalm.variants import score_variant_shard

score_variant_shard(
    list(snakemake.input.checkpoints),
    list(snakemake.input.metrics),
    snakemake.input.variants,
    snakemake.input.fasta,
    snakemake.output.part,
    settings=snakemake.params.settings,
    **snakemake.params.shard,
    threads=snakemake.threads,
)
