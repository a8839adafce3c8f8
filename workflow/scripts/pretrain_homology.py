"""Snakemake entry script for rule pretrain_homology: corpus windows homologous to held-out windows."""

from dnalm.jobs import start

start(snakemake)

from dnalm.corpus import corpus_genomes
from dnalm.pretrain_homology import excluded_corpus_windows

settings = dict(snakemake.params.settings)
excluded_corpus_windows(
    corpus_genomes(snakemake.params.genomes, getattr(snakemake.input, "gate", None)),
    {task: dict(spec) for task, spec in settings["tasks"].items()},
    snakemake.output.excluded,
    window=settings["window"],
    stride=settings["stride"],
    homology={**settings["homology"], "threads": snakemake.threads},
)
