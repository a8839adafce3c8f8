"""Snakemake entry script for rule build_window_store: one split's memory-mapped sequences and targets."""

from dnalm.jobs import start

start(snakemake)

from dnalm.store import write_store

write_store(
    snakemake.input.windows,
    snakemake.wildcards.split,
    snakemake.output.meta,
    task=dict(snakemake.params.task),
    genomes=dict(snakemake.params.genomes),
    tracks={s: dict(t) for s, t in snakemake.params.tracks.items()},
)
