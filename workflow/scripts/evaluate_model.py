import logging
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

from dnalm.evaluate import evaluate
from dnalm.store import WindowStore

evaluate(
    snakemake.input.best,
    WindowStore(snakemake.input.seq, snakemake.input.targets, snakemake.input.meta),
    snakemake.output.predictions,
    snakemake.output.metrics,
    site_threshold=snakemake.params.site_threshold,
    out_counterfactual=snakemake.output.counterfactual,
    threads=snakemake.threads,
)
