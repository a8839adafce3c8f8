"""Snakemake entry script for rule compare_models: one row per model of a task (mean ± sd over seeds)."""

from dnalm.jobs import start

start(snakemake)

from dnalm.evaluate import compare_models

compare_models(
    list(snakemake.input.metrics),
    snakemake.output.table,
    snakemake.params.runs,
    snakemake.output.runs,
    task_type=snakemake.params.task_type,
)
