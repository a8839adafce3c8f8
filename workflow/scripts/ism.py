"""Snakemake entry script for rule ism: in-silico mutagenesis of attributed test windows -> ism.npz."""

from dnalm.jobs import start

start(snakemake)

from dnalm.ism import ism_windows

ism_windows(
    snakemake.input.best,
    snakemake.input.npz,
    snakemake.output.npz,
    outputs=list(snakemake.params.outputs),
    windows=snakemake.params.windows,
    span=snakemake.params.span,
    threads=snakemake.threads,
)
