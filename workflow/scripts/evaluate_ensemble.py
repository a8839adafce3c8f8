"""Snakemake entry script for rule fold_ensemble: test metrics of the models that never trained on a fold's test
windows, their predictions averaged (dnalm.crossfold)."""

from dnalm.jobs import start

start(snakemake)

from dnalm.evaluate import evaluate_ensemble
from dnalm.store import WindowStore

evaluate_ensemble(
    list(snakemake.input.members),
    WindowStore(snakemake.input.meta),
    snakemake.output.predictions,
    snakemake.output.metrics,
    **snakemake.params.settings,
    threads=snakemake.threads,
)
