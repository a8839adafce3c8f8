import logging
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

from dnalm.splits import assign_splits

assign_splits(
    snakemake.input.windows,
    snakemake.input.fai,
    snakemake.output.windows,
    snakemake.output.counts,
    folds_tsv=getattr(snakemake.input, "folds", None),
    extra=list(snakemake.input.extra),
    **snakemake.params.split,
)
