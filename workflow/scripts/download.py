"""Snakemake entry script for rules download_*: fetch one genome, annotation, track or VCF and normalise its
chromosome names."""

from dnalm.jobs import start

start(snakemake)

import os

from dnalm.download import prepare_annotation, prepare_genome, prepare_track, prepare_variants

params = snakemake.params
output = snakemake.output
common = {
    "md5": params.md5,
    "aliases": dict(params.aliases or {}),
    "search_dirs": [os.getcwd(), str(params.repo)],
}

if params.kind == "genome":
    prepare_genome(params.source, output.fasta, output.fai, output.info, **common)
elif params.kind == "annotation":
    prepare_annotation(params.source, output.gff, output.info, **common)
elif params.kind == "track":
    prepare_track(
        params.source,
        output.bw,
        output.info,
        genome=snakemake.input.fai,
        track_lengths=params.track_lengths,
        species=snakemake.wildcards.species,
        **common,
    )
elif params.kind == "variants":
    prepare_variants(params.source, output.tsv, output.info, genome=snakemake.input.fasta, **common)
else:
    raise ValueError(
        f"download: unknown kind {params.kind!r} for {params.source}; "
        "expected 'genome', 'annotation', 'track' or 'variants'"
    )
