"""Snakemake entry script for rule summarize_sweep: one row per sweep point of a model, the best one marked."""

from dnalm.jobs import start

start(snakemake)

from dnalm.evaluate import sweep_table

sweep_table(
    list(snakemake.input.metrics),
    list(snakemake.input.histories),
    snakemake.params.runs,
    snakemake.output.table,
    task_type=snakemake.params.task_type,
)
