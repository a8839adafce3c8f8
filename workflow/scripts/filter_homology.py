import logging
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

from dnalm.homology import filter_splits

params = dict(snakemake.params.homology)
params["fastas"] = dict(params["fastas"])
params["threads"] = snakemake.threads
filter_splits(
    snakemake.input.windows,
    snakemake.output.windows,
    snakemake.output.homology,
    snakemake.output.summary,
    **params,
)
