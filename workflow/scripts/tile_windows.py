"""Snakemake entry script for rule tile_windows: windows tiled along the split's chromosomes."""

from dnalm.jobs import start

start(snakemake)

from dnalm.tiling import tile_windows

tile_windows(
    snakemake.input.fasta,
    snakemake.input.fai,
    snakemake.output.windows,
    **snakemake.params.window,
)
