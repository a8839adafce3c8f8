"""Snakemake entry script for rule attribute: DeepLIFT/SHAP attributions of test windows -> attributions.npz."""

from dnalm.jobs import start

start(snakemake)

from dnalm.attribution import attribute_windows
from dnalm.store import WindowStore

attribute_windows(
    snakemake.input.best,
    WindowStore(snakemake.input.meta),
    snakemake.output.npz,
    threads=snakemake.threads,
    **snakemake.params.hp,
)
