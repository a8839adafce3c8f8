"""Snakemake entry script for rule sketch_genome: Mash sketch of one genome."""

from dnalm.jobs import start

start(snakemake)

from dnalm.qc.tools import mash_sketch

mash_sketch(snakemake.input.fasta, snakemake.output.sketch, **snakemake.params.mash)
