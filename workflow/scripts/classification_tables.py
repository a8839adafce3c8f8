"""Snakemake entry script for rule classification_tables: per-example predictions and 2-D projections of a run."""

from dnalm.jobs import start

start(snakemake)

from dnalm.classification.tables import write_tables
from dnalm.store import WindowStore

write_tables(
    snakemake.input.predictions,
    WindowStore(snakemake.input.meta),
    snakemake.output.predictions,
    snakemake.output.projection,
    calibration=snakemake.params.settings["calibration"],
    threshold=snakemake.params.settings["threshold"],
    seed=snakemake.params.seed,
)
