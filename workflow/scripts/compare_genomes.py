"""Snakemake entry script for rule compare_genomes: the Mash distance matrix of all genomes (mash triangle)."""

import logging
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

from dnalm.qc.tools import write_mash_matrix  # noqa: E402

sketches = dict(zip(snakemake.params.species, snakemake.input.sketches, strict=True))  # noqa: F821
write_mash_matrix(sketches, snakemake.output.matrix)  # noqa: F821
