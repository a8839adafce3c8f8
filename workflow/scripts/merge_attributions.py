"""Snakemake entry script for rule merge_attributions: attribute's attributions.npz from the shards' parts."""

from dnalm.jobs import start

start(snakemake)

from dnalm.attribution_shards import merge_attributions
from dnalm.store import WindowStore

merge_attributions(
    WindowStore(snakemake.input.meta),
    list(snakemake.input.parts),
    snakemake.output.npz,
    **snakemake.params.hp,
)
