import logging
import os
import sys

sys.stderr = open(snakemake.log[0], "a", buffering=1)
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

from dnalm.cluster import log_job_environment
from dnalm.pretrain import corpus_genomes, exclude_windows, pretrain_lm

log_job_environment()  # host, Slurm job id and partition, CUDA_VISIBLE_DEVICES

genomes = corpus_genomes(snakemake.params.genomes, getattr(snakemake.input, "gate", None))
exclude_windows(genomes, snakemake.input.excluded)
pretrain_lm(
    genomes,
    os.path.dirname(snakemake.output.weights),
    species=list(snakemake.params.species),
    threads=snakemake.threads,
    **snakemake.params.hp,
)
