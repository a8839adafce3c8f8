"""Snakemake entry script for rule predict_tracks_shard: one shard's batches of genome tiles as spill files."""

from dnalm.jobs import start

start(snakemake)

from dnalm.prediction_tracks import write_prediction_track_shard

write_prediction_track_shard(
    snakemake.input.best,
    snakemake.input.fasta,
    snakemake.output.part,
    settings=snakemake.params.settings,
    regions=snakemake.input.regions[0] if snakemake.input.regions else None,
    **snakemake.params.shard,
    threads=snakemake.threads,
)
