"""Snakemake entry script for rule sketch_genome: Mash sketch of one genome."""

import logging
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

from dnalm.qc.tools import mash_sketch  # noqa: E402

mash_sketch(snakemake.input.fasta, snakemake.output.sketch, **snakemake.params.mash)  # noqa: F821
