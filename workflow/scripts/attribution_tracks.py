"""Snakemake entry script for rule attribution_tracks: attributions of test windows at their genomic places."""

from dnalm.jobs import start

start(snakemake)

from dnalm.prediction_tracks import write_attribution_tracks

write_attribution_tracks(
    snakemake.input.npz,
    snakemake.input.windows,
    snakemake.input.fasta,
    {snakemake.wildcards.output: snakemake.output.bw},
)
