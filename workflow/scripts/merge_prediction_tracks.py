"""Snakemake entry script for rule merge_prediction_tracks: predict_tracks' bigWigs from the shards' spill files."""

from dnalm.jobs import start

start(snakemake)

from dnalm.prediction_tracks import merge_prediction_tracks

merge_prediction_tracks(
    list(snakemake.input.parts),
    snakemake.input.best,
    snakemake.input.fasta,
    snakemake.output.tracks,
    snakemake.output.summary,
    regions=snakemake.input.regions[0] if snakemake.input.regions else None,
    threads=snakemake.threads,
)
