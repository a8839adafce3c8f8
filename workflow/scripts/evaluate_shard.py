"""Snakemake entry script for rule evaluate_shard: one shard's model outputs on its test (and validation) batches."""

from dnalm.jobs import start

start(snakemake)

from dnalm.evaluate_shards import evaluate_shard
from dnalm.store import WindowStore

evaluate_shard(
    snakemake.input.best,
    WindowStore(snakemake.input.meta),
    snakemake.output.part,
    val_store=WindowStore(snakemake.input.val_meta),
    **snakemake.params.shard,
    **snakemake.params.settings,
    threads=snakemake.threads,
)
