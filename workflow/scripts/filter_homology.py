"""Snakemake entry script for rule filter_homology: remove windows homologous across splits."""

from dnalm.jobs import start

start(snakemake)

from dnalm.homology import filter_splits

params = dict(snakemake.params.homology)
params["fastas"] = dict(params["fastas"])
params["threads"] = snakemake.threads
filter_splits(
    snakemake.input.windows,
    snakemake.output.windows,
    snakemake.output.homology,
    snakemake.output.summary,
    **params,
)
