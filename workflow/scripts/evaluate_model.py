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
    val_store=WindowStore(snakemake.input.val_meta),
    **snakemake.params.settings,
    out_counterfactual=getattr(snakemake.output, "counterfactual", None),
    threads=snakemake.threads,
)
