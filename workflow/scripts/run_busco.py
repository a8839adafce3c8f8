"""Snakemake entry script for rule run_busco: BUSCO completeness of one genome or proteome, offline."""

import logging
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

from dnalm.qc.tools import run_busco  # noqa: E402

run_busco(
    snakemake.input.sequences,  # noqa: F821
    out=snakemake.output.scores,  # noqa: F821
    workdir=snakemake.params.workdir,  # noqa: F821
    threads=snakemake.threads,  # noqa: F821
    **snakemake.params.busco,  # noqa: F821
)
