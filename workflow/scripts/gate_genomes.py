"""Snakemake entry script for rule gate_genomes: QC summary, thresholds applied and the genomes admitted."""

import logging
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

from dnalm.qc.gate import gate_genomes  # noqa: E402

output = snakemake.output  # noqa: F821
gate_genomes(
    list(snakemake.input.genomes),  # noqa: F821
    output.summary,
    output.pretrain,
    output.thresholds,
    thresholds=snakemake.params.thresholds,  # noqa: F821
    busco_skipped=snakemake.params.busco_skipped,  # noqa: F821
)
