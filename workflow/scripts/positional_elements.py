"""Snakemake entry script for rule positional_elements: site-aligned attribution profiles and positional elements."""

from dnalm.jobs import start

start(snakemake)

from dnalm.positional import positional_elements

positional_elements(
    snakemake.input.npz,
    snakemake.output.tsv,
    snakemake.output.profile,
    outputs=list(snakemake.params.outputs),
    seed=snakemake.params.seed,
    **snakemake.params.settings,
)
