"""Snakemake entry script for rule attribute_shard: one shard's attributions of the test windows attribute explains."""

from dnalm.jobs import start

start(snakemake)

from dnalm.attribution_shards import attribute_shard
from dnalm.store import WindowStore

attribute_shard(
    snakemake.input.best,
    WindowStore(snakemake.input.meta),
    snakemake.output.part,
    **snakemake.params.shard,
    threads=snakemake.threads,
    **snakemake.params.hp,
)
