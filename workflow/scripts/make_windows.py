"""Snakemake entry script for rules make_windows and make_extra_windows: site-centred candidate windows."""

from dnalm.jobs import start

start(snakemake)

from dnalm.windows import make_windows

make_windows(
    snakemake.input.fasta,
    snakemake.input.fai,
    snakemake.input.plus,
    snakemake.input.minus,
    snakemake.output.windows,
    **snakemake.params.window,
)
