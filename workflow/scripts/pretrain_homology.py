import logging
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

from dnalm.pretrain import corpus_genomes
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
