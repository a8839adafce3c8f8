"""Snakemake entry script for rule build_window_store: one split's memory-mapped sequences and targets."""

from dnalm.jobs import start

start(snakemake)

import json
from pathlib import Path

from dnalm.store import write_store

# a classification test set takes the classes of the training store, in its order
classes_from = getattr(snakemake.input, "classes", None)

write_store(
    snakemake.input.windows,
    getattr(snakemake.params, "split", None) or snakemake.wildcards.split,
    snakemake.output.meta,
    task=dict(snakemake.params.task),
    genomes=dict(snakemake.params.genomes),
    tracks={s: dict(t) for s, t in snakemake.params.tracks.items()},
    classes=json.loads(Path(classes_from).read_text())["channels"] if classes_from else None,
)
