"""Snakemake entry script for rule compare_genomes: the Mash distance matrix of all genomes (mash triangle)."""

from dnalm.jobs import start

start(snakemake)

from dnalm.qc.tools import write_mash_matrix

sketches = dict(zip(snakemake.params.species, snakemake.input.sketches, strict=True))
write_mash_matrix(sketches, snakemake.output.matrix)
