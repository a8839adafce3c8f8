import logging
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

from dnalm.store import write_store

write_store(
    snakemake.input.windows,
    snakemake.wildcards.split,
    snakemake.input.fasta,
    dict(snakemake.params.tracks),
    list(snakemake.params.targets),
    snakemake.output.seq,
    snakemake.output.targets,
    snakemake.output.meta,
    flank=snakemake.params.flank,
    fastas=dict(snakemake.params.genomes),
    species_tracks={s: dict(t) for s, t in snakemake.params.species_tracks.items()},
    bins=snakemake.params.bins,
    species=snakemake.params.species,
)
