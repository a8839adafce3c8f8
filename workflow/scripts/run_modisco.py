"""Snakemake entry script for rule run_modisco: TF-MoDISco patterns of one output -> modisco.<output>.h5."""

from dnalm.jobs import start

start(snakemake)

import os

os.environ.setdefault("NUMBA_NUM_THREADS", str(snakemake.threads))

from dnalm.interpret import run_modisco

run_modisco(
    snakemake.input.npz,
    snakemake.wildcards.output,
    snakemake.output.h5,
    **snakemake.params.settings,
)
