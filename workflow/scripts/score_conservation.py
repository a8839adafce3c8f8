"""Snakemake entry script for rule score_conservation: per-base LM conservation, its bigWig and the codon control."""

from pathlib import Path

from dnalm.jobs import start

start(snakemake)

from dnalm.conservation import run_conservation

run_conservation(
    str(Path(snakemake.input.weights).parent),
    snakemake.input.fasta,
    snakemake.input.annotation,
    snakemake.output.bigwig,
    snakemake.output.scores,
    snakemake.output.summary,
    regions=snakemake.input.regions[0] if snakemake.input.regions else None,
    threads=snakemake.threads,
    **snakemake.params.settings,
)
