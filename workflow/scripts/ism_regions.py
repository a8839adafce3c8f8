"""Snakemake entry script for rule ism_regions: in-silico mutagenesis of BED regions -> ism_regions.npz."""

from dnalm.jobs import start

start(snakemake)

from dnalm.ism import ism_regions

hp = snakemake.params.hp
ism_regions(
    snakemake.input.best,
    snakemake.input.fasta,
    snakemake.input.bed,
    snakemake.output.npz,
    outputs=list(snakemake.params.outputs),
    n_shuffles=hp["n_shuffles"],
    ig_steps=hp["ig_steps"],
    seed=hp["seed"],
    tracks=hp["tracks"],
    threads=snakemake.threads,
)
