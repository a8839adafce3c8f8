"""Snakemake entry script for rule assess_genome: the QC measures of one genome (results/qc/<species>.json)."""

import logging
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

from dnalm.qc.gate import assess_genome  # noqa: E402

inputs = snakemake.input  # noqa: F821
assess_genome(
    fasta=inputs.fasta,
    out=snakemake.output.qc,  # noqa: F821
    annotation=inputs.get("annotation"),
    sketch=inputs.sketch,
    reference_sketch=inputs.get("reference_sketch"),
    busco=inputs.get("busco"),
    **snakemake.params.qc,  # noqa: F821
)
