"""Snakemake entry script for rule train_model: train one run on a task's train and val window stores."""

from dnalm.jobs import start

start(snakemake, append=True, environment=True)

import os

from dnalm.store import WindowStore
from dnalm.training import train

train(
    WindowStore(snakemake.input.meta),
    WindowStore(snakemake.input.val_meta),
    os.path.dirname(snakemake.output.best),
    threads=snakemake.threads,
    log_file=snakemake.log[0],
    **snakemake.params.hp,
)
