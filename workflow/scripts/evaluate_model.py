"""Snakemake entry script for rule evaluate_model: test predictions, metrics and the species-token counterfactual."""

from dnalm.jobs import start

start(snakemake)

from dnalm.evaluate import evaluate
from dnalm.store import WindowStore

evaluate(
    snakemake.input.best,
    WindowStore(snakemake.input.meta),
    snakemake.output.predictions,
    snakemake.output.metrics,
    site_threshold=snakemake.params.site_threshold,
    out_counterfactual=snakemake.output.counterfactual,
    threads=snakemake.threads,
)
