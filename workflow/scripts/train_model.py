import logging
import os
import sys

sys.stderr = open(snakemake.log[0], "a", buffering=1)
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

from dnalm.cluster import log_job_environment
from dnalm.store import WindowStore
from dnalm.training import train

log_job_environment()  # host, Slurm job id and partition, CUDA_VISIBLE_DEVICES

inp = snakemake.input
train(
    WindowStore(inp.seq, inp.targets, inp.meta),
    WindowStore(inp.val_seq, inp.val_targets, inp.val_meta),
    os.path.dirname(snakemake.output.best),
    threads=snakemake.threads,
    **snakemake.params.hp,
)
