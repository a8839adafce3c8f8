"""Snakemake entry script for rule run_busco: BUSCO completeness of one genome or proteome, offline."""

from dnalm.jobs import start

start(snakemake)

from dnalm.qc.tools import run_busco

run_busco(
    snakemake.input.sequences,
    out=snakemake.output.scores,
    workdir=snakemake.params.workdir,
    threads=snakemake.threads,
    **snakemake.params.busco,
)
