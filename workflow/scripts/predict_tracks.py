"""Snakemake entry script for rule predict_tracks: a run's predictions over its task's genome as bigWigs."""

from dnalm.jobs import start

start(snakemake)

from dnalm.prediction_tracks import write_prediction_tracks

write_prediction_tracks(
    snakemake.input.best,
    snakemake.input.fasta,
    snakemake.output.tracks,
    snakemake.output.summary,
    settings=snakemake.params.settings,
    regions=snakemake.input.regions[0] if snakemake.input.regions else None,
    threads=snakemake.threads,
)
