"""Snakemake entry script for rule build_window_store: one split's memory-mapped sequences and targets (seqerror
tasks: noisy copies of the windows and their error tags)."""

from dnalm.jobs import start

start(snakemake)

import json
from pathlib import Path

from dnalm.seqerror_store import write_noisy_store
from dnalm.store import write_store

# a classification test set takes the classes of the training store, in its order
classes_from = getattr(snakemake.input, "classes", None)
task = dict(snakemake.params.task)
split = getattr(snakemake.params, "split", None) or snakemake.wildcards.split

if task["type"] == "seqerror":
    write_noisy_store(snakemake.input.windows, split, snakemake.output.meta, task=task,
                      genomes=dict(snakemake.params.genomes))
else:
    write_store(
        snakemake.input.windows,
        split,
        snakemake.output.meta,
        task=task,
        genomes=dict(snakemake.params.genomes),
        tracks={s: dict(t) for s, t in snakemake.params.tracks.items()},
        classes=json.loads(Path(classes_from).read_text())["channels"] if classes_from else None,
    )
