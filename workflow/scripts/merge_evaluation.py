"""Snakemake entry script for rule merge_evaluation: evaluate_model's outputs from the shards' saved outputs."""

from dnalm.jobs import start

start(snakemake)

from dnalm.evaluate_shards import merge_evaluation
from dnalm.store import WindowStore

merge_evaluation(
    snakemake.input.best,
    WindowStore(snakemake.input.meta),
    list(snakemake.input.parts),
    snakemake.output.predictions,
    snakemake.output.metrics,
    out_counterfactual=snakemake.output.counterfactual,
    val_store=WindowStore(snakemake.input.val_meta),
    **snakemake.params.settings,
)
