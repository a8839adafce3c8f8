import logging
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

from dnalm.evaluate import sweep_table

sweep_table(list(snakemake.input.metrics), list(snakemake.input.histories), snakemake.params.runs,
            snakemake.output.table)
