import logging
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

from dnalm.evaluate import compare_models

compare_models(list(snakemake.input.metrics), snakemake.output.table, snakemake.params.runs, snakemake.output.runs)
